//! `ukey renew install CERT`: write the CA's certificate next to the staged
//! key, then promote the new pair into the target slot.
//!
//! # The install state machine
//!
//! T is the target slot (9A), R the retired slot holding the staged key.
//! K is the key in use, C its certificate; K' the staged key, C' the new
//! certificate (the file's, for K'). Every step is one card write (one
//! PUT DATA or one MOVE KEY / DELETE KEY APDU, which the card commits
//! whole), so the token is always in one of these states:
//!
//! | state | T       | R       | complete pair | next step                             |
//! |-------|---------|---------|---------------|---------------------------------------|
//! | S0    | K  + C  | K'      | T (old)       | 1. C' into R, read back               |
//! | S1    | K  + C  | K' + C' | T (old), R    | 2a. claim the marker entry            |
//! | S1'   | K  + C  | K' + C' | T (old), R    | 2. C' into T (for the key in R)       |
//! | S2    | K  + C' | K' + C' | R             | 3. delete K from T                    |
//! | S3    | C'      | K' + C' | R             | 4. MOVE KEY R → T                     |
//! | S4    | K' + C' | C'      | T (new)       | 5a. clear R's certificate             |
//! | S5    | K' + C' |         | T (new)       | 5b. drop the marker entry: done       |
//!
//! At every point a complete, usable key + certificate pair exists in one
//! slot: the old one in T until step 2, the new one in R from step 1 and
//! in T from step 4. Step 2 comes before step 3 so that no state has the
//! new key in T without its certificate (the certificate cannot follow a
//! moved key: MOVE KEY moves the private key only).
//!
//! The state is read from the card, not remembered: [`next_step`] looks at
//! which key (K' by the hash in the marker, or another) and which
//! certificate (C' or another) T and R hold, so re-running the command
//! after a pulled token finds the state it stopped in and goes on; a step
//! the card committed just before the pull (answer lost) is seen as done.
//!
//! Without MOVE KEY (firmware before 5.7: the module's CKA_UKEY_MOVABLE is
//! false) the install stops in S1: the renewed pair stays in R, and the
//! marker entry is replaced by a record that R now holds T's role (one
//! compare-and-swap; [`crate::supersede`]), so `status` shows T as
//! superseded and the next renewal of T starts from R. A certificate
//! for no staged key is refused before anything is written, and so is one
//! that cannot serve the slot (see [`super::checks`]); one not valid yet
//! is, with `--not-before-ok`, written next to the new key (S1) and
//! promoted by a later run once it is valid.
//!
//! # Other processes
//!
//! Two installs, or an install and a cancel, may run at once (two
//! terminals, a script and a GUI, two machines taking turns with the
//! token). Three things keep a complete pair on the token whatever they
//! do: ukey processes on one machine take the token's renewal lock
//! ([`crate::lock`]); the claim in step 2a is a compare-and-swap of the
//! marker on the card, so a cancel (which claims before it deletes the
//! staged key) and an install exclude each other; and every card write
//! is checked by the module in its own transaction against what this run
//! read (delete K only if T still holds K, move only if R still holds K'
//! and T is empty, C' into T only if R still holds K'). A write refused
//! that way changed nothing: the run reads the card again from a fresh
//! module and goes on from the state it finds.

use super::checks::{self, Allow};
use super::{
    hash_of, home_slot, lock, pin_login, read_marker, require_protected, subject_text, utc,
    write_marker, Feedback, Live, PinFrom, Terminal,
};
use crate::auth::prepare_write;
use crate::certs::{load_cert_bundle, CertSummary};
use crate::cmd::status::{slot_text, token_report, SlotReport, TokenReport};
use crate::cmd::Ctx;
use crate::error::{CliError, ErrorKind, Result, EXIT_INTERRUPTED, EXIT_REMOVED};
use crate::marker::{Claim, KeyHash, Marker, Renewed, Staged};
use crate::p11::P11Token;
use crate::token::{Token, TokenRef};
use crate::verdict::{days_left, judge, Verdict, DEFAULT_WINDOW_DAYS};
use apdu::piv::Slot;
use serde::Serialize;
use std::path::Path;
use std::time::SystemTime;

/// Which key a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyIn {
    None,
    /// The staged key K'.
    Staged,
    /// Another key (K in the target slot).
    Other,
}

/// Which certificate a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertIn {
    None,
    /// The certificate being installed, C'.
    New,
    Other,
}

/// What the card shows in the target slot T and the staged slot R.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub target_key: KeyIn,
    pub target_cert: CertIn,
    pub staged_key: KeyIn,
    pub staged_cert: CertIn,
}

/// One card write of the install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// 1. C' into R (and read back).
    CertIntoStaged,
    /// 2a. Claim the marker entry (compare-and-swap): T may change now.
    Claim,
    /// 2. C' into T; `for_staged_key`: it certifies the key in R, which
    ///    is about to move in (the module's CKA_UKEY_PROMOTE_FROM).
    CertIntoTarget { for_staged_key: bool },
    /// 3. Delete the old key K from T.
    DeleteOldKey,
    /// 4. MOVE KEY R → T.
    MoveKey,
    /// 5a. Empty R's certificate container.
    ClearStaged,
    /// 5b. Drop the marker entry: the install is complete.
    Finish,
}

impl Step {
    /// The name reports (`--json`) use.
    fn name(self) -> &'static str {
        match self {
            Step::CertIntoStaged => "certificate-into-staged-slot",
            Step::Claim => "claim-renewal",
            Step::CertIntoTarget { .. } => "certificate-into-target-slot",
            Step::DeleteOldKey => "delete-old-key",
            Step::MoveKey => "move-key",
            Step::ClearStaged => "clear-staged-slot",
            Step::Finish => "clear-marker",
        }
    }

    fn describe(self, t: Slot, r: Slot) -> String {
        match self {
            Step::CertIntoStaged => {
                format!("certificate written next to the new key in slot {r} and read back")
            }
            Step::Claim => format!("renewal of slot {t} marked as being installed"),
            Step::CertIntoTarget { .. } => {
                format!("certificate written into slot {t} and read back")
            }
            Step::DeleteOldKey => format!("old key deleted from slot {t}"),
            Step::MoveKey => format!("new key moved from slot {r} into {t}"),
            Step::ClearStaged => format!("slot {r} emptied"),
            Step::Finish => "staging marker cleared".into(),
        }
    }
}

/// The staged key is nowhere on the token: nothing to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagedKeyGone;

/// The next step from what the card shows (see the table above).
/// `can_move`: the card has MOVE KEY (asked only while K' is in R);
/// `claimed`: the marker entry says an install is promoting it.
pub fn next_step(
    v: View,
    can_move: bool,
    claimed: bool,
) -> std::result::Result<Step, StagedKeyGone> {
    if v.target_key == KeyIn::Staged {
        return Ok(if v.target_cert != CertIn::New {
            Step::CertIntoTarget {
                for_staged_key: false,
            }
        } else if v.staged_key == KeyIn::None && v.staged_cert == CertIn::New {
            Step::ClearStaged
        } else {
            Step::Finish
        });
    }
    if v.staged_key != KeyIn::Staged {
        return Err(StagedKeyGone);
    }
    Ok(if v.staged_cert != CertIn::New {
        Step::CertIntoStaged
    } else if !can_move {
        Step::Finish
    } else if !claimed {
        Step::Claim
    } else if v.target_cert != CertIn::New {
        Step::CertIntoTarget {
            for_staged_key: true,
        }
    } else if v.target_key == KeyIn::Other {
        Step::DeleteOldKey
    } else {
        Step::MoveKey
    })
}

fn read_view(p: &P11Token, e: &Staged, hash: &KeyHash, new: &[u8]) -> Result<View> {
    let key_in = |slot: Slot| -> Result<KeyIn> {
        Ok(match p.public_key(slot)? {
            None => KeyIn::None,
            Some(spki) if hash_of(&spki)? == *hash => KeyIn::Staged,
            Some(_) => KeyIn::Other,
        })
    };
    let cert_in = |slot: Slot| -> Result<CertIn> {
        Ok(match p.cert(slot)? {
            None => CertIn::None,
            Some(d) if d == new => CertIn::New,
            Some(_) => CertIn::Other,
        })
    };
    Ok(View {
        target_key: key_in(e.target)?,
        target_cert: cert_in(e.target)?,
        staged_key: key_in(e.staged)?,
        staged_cert: cert_in(e.staged)?,
    })
}

/// Writes refused because another program changed the token meanwhile:
/// the run reads the card again and goes on, this many times at most.
const MAX_CONFLICTS: u32 = 8;

/// How a run of the state machine ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The new pair is in the target slot.
    Promoted,
    /// The card cannot move keys: the new pair stays in the retired slot.
    InRetired,
    /// The certificate is not valid yet (`--not-before-ok`): written next
    /// to the new key, the old pair stays in use until a later run.
    Held,
}

/// Run the state machine until the install is complete (or held).
fn drive(
    live: &mut Live<'_>,
    e: &Staged,
    hash: &KeyHash,
    new: &[u8],
    hold: bool,
    done: &mut Vec<Step>,
    fb: &dyn Feedback,
) -> Result<Outcome> {
    let (t, r) = (e.target, e.staged);
    let mut conflicts = 0;
    // Six steps at most from S0, plus what conflicts cost; the bound only
    // guards against a card that does not keep what it was given.
    for _ in 0..(8 + 2 * MAX_CONFLICTS) {
        let p = live.token();
        let mut marker = read_marker(p)?;
        let v = read_view(p, e, hash, new)?;
        let entry = marker.for_key(hash).cloned();
        let Some(mut entry) = entry else {
            // Not staged (any more): finished by another run, or cancelled.
            if v.target_key == KeyIn::Staged && v.target_cert == CertIn::New {
                return Ok(Outcome::Promoted);
            }
            return Err(CliError::new(format!(
                "the renewal of slot {t} is no longer staged (cancelled meanwhile?): slot {t} \
                 keeps its key and certificate; see `ukey renew status`"
            ))
            .with_kind(ErrorKind::NotStaged));
        };
        if entry.claim == Some(Claim::Cancelling) {
            return Err(CliError::new(format!(
                "the renewal of slot {t} is being cancelled (or a cancel was interrupted): \
                 `ukey renew cancel --slot {t}` finishes it; nothing was installed"
            ))
            .with_kind(ErrorKind::NotStaged));
        }
        let claimed = entry.claim == Some(Claim::Promoting);
        let can_move = if v.staged_key == KeyIn::Staged {
            p.can_move(r)?
        } else {
            true
        };
        let step = next_step(v, can_move, claimed).map_err(|_| {
            CliError::new(format!(
                "the staged key is no longer in slot {r} nor in {t}: nothing was installed; \
                 `ukey renew cancel --slot {t}` and request again"
            ))
            .with_kind(ErrorKind::NotStaged)
        })?;
        if hold && !claimed && step != Step::CertIntoStaged {
            return Ok(Outcome::Held);
        }
        live.stop_point()?;
        let wrote = match step {
            Step::CertIntoStaged => p.write_cert(r, new, None),
            Step::Claim => {
                entry.claim = Some(Claim::Promoting);
                marker.set(entry.clone());
                write_marker(p, &marker)
            }
            Step::CertIntoTarget { for_staged_key } => {
                p.write_cert(t, new, for_staged_key.then_some(r))
            }
            Step::DeleteOldKey => p.delete_key(t),
            Step::MoveKey => p.move_key(r, t),
            Step::ClearStaged => p.delete_cert(r),
            Step::Finish => {
                // One compare-and-swap: the staged entry goes and, when the
                // new pair stays in R, the record that it holds T's role
                // comes (see crate::supersede); promoted, T's older records go.
                marker.remove(t);
                if v.target_key == KeyIn::Staged {
                    marker.forget_renewed(t);
                } else {
                    marker.record_renewed(Renewed {
                        target: t,
                        slot: r,
                        installed: unix_now(),
                        key: *hash,
                    });
                }
                write_marker(p, &marker)
            }
        };
        match wrote {
            Ok(()) => {}
            Err(err) if err.kind == ErrorKind::Conflict && conflicts < MAX_CONFLICTS => {
                conflicts += 1;
                fb.note("  the token changed meanwhile (another program?): reading it again");
                live.reopen()?;
                continue;
            }
            Err(err) => return Err(err),
        }
        let said = if step == Step::Finish && v.target_key != KeyIn::Staged {
            format!("staging marker cleared; it records that slot {r} now holds the role of {t}")
        } else {
            step.describe(t, r)
        };
        fb.step(step.name(), &format!("  {said}"));
        done.push(step);
        if step == Step::Finish {
            return Ok(if v.target_key == KeyIn::Staged {
                Outcome::Promoted
            } else {
                Outcome::InRetired
            });
        }
    }
    Err(CliError::new(
        "the install does not converge: the token does not keep what is written to it, or \
         another program keeps changing it",
    ))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Read the result back from the card with a fresh module (no cache).
fn verify(tref: &TokenRef, slot: Slot, hash: &KeyHash, new: &[u8]) -> Result<()> {
    let p = P11Token::open(&tref.origin, &tref.reader)?;
    let key = p.public_key(slot)?;
    let cert = p.cert(slot)?;
    p.close();
    let key_ok = match key {
        Some(spki) => hash_of(&spki)? == *hash,
        None => false,
    };
    if key_ok && cert.as_deref() == Some(new) {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "reading slot {slot} back: the new key and certificate are not both there"
        )))
    }
}

/// The certificate installed already, and where.
fn installed_already(p: &P11Token, certs: &[Vec<u8>]) -> Result<Option<(Slot, Vec<u8>)>> {
    for slot in Slot::all() {
        let Some(cert) = p.cert(slot)? else { continue };
        if !certs.contains(&cert) {
            continue;
        }
        let summary = CertSummary::parse(&cert)?;
        if let Some(spki) = p.public_key(slot)? {
            if matches!(
                (hash_of(&spki), hash_of(&summary.spki_der)),
                (Ok(a), Ok(b)) if a == b
            ) {
                return Ok(Some((slot, cert)));
            }
        }
    }
    Ok(None)
}

fn refusal(file: &Path, marker: &Marker) -> CliError {
    let shown = file.display();
    if marker.entries.is_empty() {
        return CliError::new(format!(
            "{shown} is not for a staged key: no renewal is staged on this token \
             (`ukey renew request --slot 9a` first); nothing was written"
        ))
        .with_kind(ErrorKind::NotStaged);
    }
    let staged: Vec<String> = marker
        .entries
        .iter()
        .map(|e| {
            format!(
                "{} (new key in slot {} since {})",
                e.target,
                e.staged,
                utc(e.created)
            )
        })
        .collect();
    CliError::new(format!(
        "{shown} is for another key: its public key is not the key staged for renewal \
         ({}); was it issued for another request? Nothing was written",
        staged.join("; ")
    ))
    .with_kind(ErrorKind::CertificateRefused)
    .with_reason("wrong_key")
}

/// The certificate of the file for a staged key, checked: what an install
/// of it would do.
struct Chosen {
    new: Vec<u8>,
    entry: Staged,
    hash: KeyHash,
    cert: CertSummary,
    /// Not valid yet: written next to the new key, promoted later.
    hold: bool,
    /// The issuer of the certificate in use in the target slot.
    current_issuer: Option<String>,
}

enum Found {
    Staged(Box<Chosen>),
    /// The file's certificate is on the token already, with its key.
    Installed(Slot, Vec<u8>),
}

/// Pick the file's certificate for a staged key and run every check on
/// it: nothing is written.
fn choose(
    p: &P11Token,
    certs: &[Vec<u8>],
    file: &Path,
    allow: Allow,
    now: SystemTime,
    fb: &dyn Feedback,
) -> Result<Found> {
    let marker = read_marker(p)?;
    // The certificate in the file for a staged key (a .p7b also holds the CA's).
    let mut chosen = None;
    for der in certs {
        let summary = CertSummary::parse(der)?;
        // A chain may hold CA keys of kinds a PIV key cannot be: not ours.
        let Ok(hash) = hash_of(&summary.spki_der) else {
            continue;
        };
        if let Some(e) = marker.for_key(&hash) {
            chosen = Some((der.clone(), e.clone(), hash));
            break;
        }
    }
    let Some((new, entry, hash)) = chosen else {
        if let Some((slot, der)) = installed_already(p, certs)? {
            return Ok(Found::Installed(slot, der));
        }
        return Err(refusal(file, &marker));
    };
    fb.check_passed("wrong_key");
    let target = entry.target;
    // Before anything is written: can this certificate serve the slot?
    // (Once an install has claimed the renewal, only finishing it is safe.)
    // The pair in use may be in a retired slot (an earlier renewal on a
    // card without MOVE KEY): its issuer is the one to compare with.
    let (home, _) = home_slot(p, &marker, target)?;
    let current = p
        .cert(home)?
        .and_then(|d| CertSummary::parse(&d).ok())
        .filter(|c| hash_of(&c.spki_der).ok() != Some(hash));
    let cert = if entry.claim == Some(Claim::Promoting) {
        CertSummary::parse(&new)?
    } else {
        checks::check(file, &new, target, current.as_ref(), allow, now, fb)?
    };
    let requested = subject_text(&entry.subject);
    if cert.subject.to_string() != requested {
        fb.warn(&format!(
            "the CA changed the subject: requested {requested}, issued {}",
            cert.subject
        ));
    }
    Ok(Found::Staged(Box::new(Chosen {
        hold: cert.not_before > now,
        current_issuer: current.map(|c| c.issuer.to_string()),
        new,
        entry,
        hash,
        cert,
    })))
}

/// `ukey renew install FILE`: the core, then the report.
pub fn install(ctx: &mut Ctx, file: &Path, allow: Allow) -> Result<()> {
    let certs = load_cert_bundle(file)?;
    let t = ctx.token()?;
    let fb = Terminal::default();
    let report = install_core(t, &certs, file, allow, PinFrom::Ask(&mut ctx.secrets), &fb)?;
    ctx.out.emit(&report, || install_text(&report))
}

/// Install the CA's certificate (one of `certs`, the file's) for a staged
/// key on `t` and promote the new pair, or finish an interrupted install:
/// what `ukey renew install` and the web page's "Install certificate" run.
/// `file` names the certificate in messages.
pub fn install_core(
    mut t: Token,
    certs: &[Vec<u8>],
    file: &Path,
    allow: Allow,
    pin: PinFrom<'_>,
    fb: &dyn Feedback,
) -> Result<InstallReport> {
    let tref = t.token_ref();
    let prep = t.piv(prepare_write)?;
    drop(t);
    let _lock = lock(&tref, &prep)?;
    let p = P11Token::open(&tref.origin, &tref.reader)?;
    let now = SystemTime::now();
    let chosen = match choose(&p, certs, file, allow, now, fb) {
        Ok(Found::Staged(c)) => c,
        Ok(Found::Installed(slot, der)) => {
            p.close();
            let done = Done {
                target: slot,
                staged: None,
                home: slot,
                outcome: if matches!(slot, Slot::Retired(_)) {
                    Outcome::InRetired
                } else {
                    Outcome::Promoted
                },
                steps: Vec::new(),
            };
            return done_report(&tref, file, &der, done, fb);
        }
        Err(e) => {
            p.close();
            return Err(e);
        }
    };
    let Chosen {
        new,
        entry,
        hash,
        cert,
        hold,
        ..
    } = *chosen;
    let (target, staged) = (entry.target, entry.staged);
    require_protected(&prep, &tref.reader)?;
    fb.note(&format!(
        "Installing the certificate for {} (valid until {}) for slot {target}; the new key \
         is in slot {staged}. Do not pull the token; should it be pulled, run this command \
         again to finish.",
        cert.subject, cert.not_after_text
    ));
    let mut p = p;
    let mut done = Vec::new();
    let run = match pin_login(pin, &mut p, &tref, &prep) {
        Ok(pin) => {
            let mut live = Live::new(p, &tref, pin);
            let run = drive(&mut live, &entry, &hash, &new, hold, &mut done, fb);
            live.close();
            run
        }
        Err(e) => {
            p.close();
            Err(e)
        }
    };
    let outcome = match run {
        Ok(o) => o,
        Err(e) if e.code == EXIT_REMOVED || e.code == EXIT_INTERRUPTED => {
            return Err(CliError {
                message: format!(
                    "{}: {} `ukey renew install {}` again to finish: a complete key and \
                     certificate pair is on it ({})",
                    e.message,
                    if e.code == EXIT_REMOVED {
                        "insert the token and run"
                    } else {
                        "run"
                    },
                    file.display(),
                    match done.last() {
                        None | Some(Step::CertIntoStaged) | Some(Step::Claim) =>
                            format!("the one in use in {target}"),
                        Some(Step::CertIntoTarget { .. }) | Some(Step::DeleteOldKey) => {
                            format!("the new one in slot {staged}")
                        }
                        Some(_) => format!("the new one in {target}"),
                    }
                ),
                ..e
            })
        }
        Err(e) => return Err(e),
    };
    let home = if outcome == Outcome::Promoted {
        target
    } else {
        staged
    };
    verify(&tref, home, &hash, &new)?;
    let done = Done {
        target,
        staged: Some(staged),
        home,
        outcome,
        steps: done,
    };
    done_report(&tref, file, &new, done, fb)
}

/// What installing a certificate file would do on `t`, found by the same
/// checks as the install (nothing is written, no PIN is needed): the
/// web page shows it before asking for the PIN.
#[derive(Serialize)]
pub struct Preview {
    /// The slot being renewed and the retired slot of its new key.
    pub target: String,
    pub staged_slot: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    /// The subject the request asked for (the CA may change it).
    pub requested_subject: Option<String>,
    /// The issuer of the certificate in use, when it differs.
    pub issuer_changed_from: Option<String>,
    /// Not valid yet: the install writes it next to the new key and
    /// promotes it on or after `not_before`.
    pub not_yet_valid: bool,
    /// An install of it started and was interrupted: this finishes it.
    pub finishing: bool,
    /// Installed already (in this slot): nothing to do.
    pub installed_in: Option<String>,
    /// The checks passed (by the reason each would refuse with).
    pub checks_passed: Vec<&'static str>,
    pub warnings: Vec<String>,
}

/// Records what the checks say, for [`preview`].
#[derive(Default)]
struct Collect {
    passed: std::sync::Mutex<Vec<&'static str>>,
    warnings: std::sync::Mutex<Vec<String>>,
}

impl Feedback for Collect {
    fn note(&self, _: &str) {}
    fn warn(&self, msg: &str) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(msg.to_string());
        }
    }
    fn slow_start(&self, _: &str) {}
    fn slow_done(&self, _: bool) {}
    fn interactive(&self) -> bool {
        false
    }
    fn confirm(&self, question: &str, flag: &str) -> Result<()> {
        Err(
            CliError::new(format!("{question} — not confirmed ({flag})"))
                .with_kind(ErrorKind::NotConfirmed),
        )
    }
    fn check_passed(&self, what: &'static str) {
        if let Ok(mut p) = self.passed.lock() {
            p.push(what);
        }
    }
}

/// What `install_core` would do with `certs` on `t`, without writing.
/// A certificate that is not valid yet or from another issuer is shown
/// as such (the install asks for them to be accepted); anything else the
/// install would refuse is the same error here.
pub fn preview(t: Token, certs: &[Vec<u8>], file: &Path) -> Result<Preview> {
    let tref = t.token_ref();
    drop(t);
    let p = P11Token::open(&tref.origin, &tref.reader)?;
    let now = SystemTime::now();
    let allow = Allow {
        not_yet_valid: true,
        new_issuer: true,
    };
    let fb = Collect::default();
    let found = choose(&p, certs, file, allow, now, &fb);
    p.close();
    let passed = fb.passed.into_inner().unwrap_or_default();
    let warnings = fb.warnings.into_inner().unwrap_or_default();
    Ok(match found? {
        Found::Installed(slot, der) => {
            let c = CertSummary::parse(&der)?;
            Preview {
                target: slot.to_string(),
                staged_slot: None,
                subject: c.subject.to_string(),
                issuer: c.issuer.to_string(),
                not_before: c.not_before_text.clone(),
                not_after: c.not_after_text.clone(),
                days_left: days_left(c.not_after, now),
                requested_subject: None,
                issuer_changed_from: None,
                not_yet_valid: false,
                finishing: false,
                installed_in: Some(slot.to_string()),
                checks_passed: passed,
                warnings,
            }
        }
        Found::Staged(c) => {
            let issuer = c.cert.issuer.to_string();
            Preview {
                target: c.entry.target.to_string(),
                staged_slot: Some(c.entry.staged.to_string()),
                subject: c.cert.subject.to_string(),
                not_before: c.cert.not_before_text.clone(),
                not_after: c.cert.not_after_text.clone(),
                days_left: days_left(c.cert.not_after, now),
                requested_subject: Some(subject_text(&c.entry.subject)),
                issuer_changed_from: c.current_issuer.filter(|i| *i != issuer),
                issuer,
                not_yet_valid: c.hold,
                finishing: c.entry.claim == Some(Claim::Promoting),
                installed_in: None,
                checks_passed: passed,
                warnings,
            }
        }
    })
}

/// How an install ended.
struct Done {
    target: Slot,
    staged: Option<Slot>,
    /// Where the renewed pair is.
    home: Slot,
    outcome: Outcome,
    steps: Vec<Step>,
}

/// What `renew install` did (the `renew_install` JSON document).
#[derive(Serialize)]
pub struct InstallReport {
    pub target: String,
    pub staged_slot: Option<String>,
    /// Where the renewed pair is now.
    pub installed_in: String,
    /// Promoted into the target slot (false: the card cannot move keys, or
    /// the certificate is not valid yet).
    pub promoted: bool,
    /// Not valid yet (`--not-before-ok`): written next to the new key, to
    /// be promoted by a run on or after this time.
    pub held_until: Option<String>,
    /// The writes this run made (none when it was installed already).
    pub steps: Vec<String>,
    pub subject: String,
    pub not_after: String,
    pub days_left: i64,
    pub verdict: Verdict,
    pub status: Option<TokenReport>,
    /// The certificate file, as messages name it.
    #[serde(skip)]
    file: String,
    #[serde(skip)]
    outcome: Option<Outcome>,
}

fn done_report(
    tref: &TokenRef,
    file: &Path,
    der: &[u8],
    done: Done,
    fb: &dyn Feedback,
) -> Result<InstallReport> {
    let Done {
        target,
        staged,
        home,
        outcome,
        steps,
    } = done;
    let promoted = outcome == Outcome::Promoted;
    let cert = CertSummary::parse(der)?;
    let now = SystemTime::now();
    let days = days_left(cert.not_after, now);
    let verdict = judge(Some(&cert), now, DEFAULT_WINDOW_DAYS);
    let status = tref
        .connect()
        .and_then(|mut t| token_report(&mut t, DEFAULT_WINDOW_DAYS))
        .map_err(|e| fb.warn(&format!("reading the new status: {}", e.message)))
        .ok();
    Ok(InstallReport {
        target: target.to_string(),
        staged_slot: staged.map(|s| s.to_string()),
        installed_in: home.to_string(),
        promoted,
        held_until: (outcome == Outcome::Held).then(|| cert.not_before_text.clone()),
        steps: steps.iter().map(|s| s.name().to_string()).collect(),
        subject: cert.subject.to_string(),
        not_after: cert.not_after_text.clone(),
        days_left: days,
        verdict,
        status,
        file: file.display().to_string(),
        outcome: Some(outcome),
    })
}

/// The text `renew install` prints.
fn install_text(report: &InstallReport) -> String {
    let (home, target, file) = (&report.installed_in, &report.target, &report.file);
    let mut s = String::new();
    if report.steps.is_empty() {
        s += &format!("{file} is already installed in slot {home}: nothing to do.\n");
    } else if report.outcome == Some(Outcome::Held) {
        s += &format!(
            "The certificate is valid from {}: it is written next to the new key in slot \
             {home}, and slot {target} keeps the pair in use until then. On or after that \
             date, run `ukey renew install {file}` again to promote the new pair into {target} \
             (`ukey status` says when).\n",
            report.held_until.as_deref().unwrap_or_default(),
        );
    } else if report.promoted {
        s += &format!(
            "Renewed: slot {home} holds the new key and certificate (read back from the \
             token).\n"
        );
    } else {
        s += &format!(
            "Installed in slot {home}: this token cannot move keys (MOVE KEY needs \
             firmware 5.7), so the renewed key and certificate stay in the retired slot \
             {home}, where applications find them by their certificate; slot {target} \
             keeps the old pair until it expires and is shown as superseded by slot {home}.\n"
        );
    }
    // The new status of the slots involved, read from the token.
    let shown: Vec<&SlotReport> = report
        .status
        .iter()
        .flat_map(|st| st.slots.iter())
        .filter(|r| r.slot == report.target || r.slot == report.installed_in)
        .collect();
    if shown.is_empty() {
        s += &format!(
            "Certificate for {}: valid until {} ({}).\n",
            report.subject,
            report.not_after,
            report
                .verdict
                .explain(Some(report.days_left), DEFAULT_WINDOW_DAYS)
        );
    }
    for r in shown {
        s += &slot_text(r, DEFAULT_WINDOW_DAYS);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(tk: KeyIn, tc: CertIn, sk: KeyIn, sc: CertIn) -> View {
        View {
            target_key: tk,
            target_cert: tc,
            staged_key: sk,
            staged_cert: sc,
        }
    }

    /// The table in the module documentation, row by row.
    #[test]
    fn every_state_has_its_next_step() {
        use CertIn as C;
        use KeyIn as K;
        let rows = [
            (
                "S0",
                view(K::Other, C::Other, K::Staged, C::None),
                Step::CertIntoStaged,
            ),
            (
                "S0 (R had another certificate)",
                view(K::Other, C::Other, K::Staged, C::Other),
                Step::CertIntoStaged,
            ),
            (
                "S1",
                view(K::Other, C::Other, K::Staged, C::New),
                Step::CertIntoTarget {
                    for_staged_key: true,
                },
            ),
            (
                "S2",
                view(K::Other, C::New, K::Staged, C::New),
                Step::DeleteOldKey,
            ),
            (
                "S3",
                view(K::None, C::New, K::Staged, C::New),
                Step::MoveKey,
            ),
            (
                "S4",
                view(K::Staged, C::New, K::None, C::New),
                Step::ClearStaged,
            ),
            (
                "S5",
                view(K::Staged, C::New, K::None, C::None),
                Step::Finish,
            ),
            (
                "T lost its certificate after the move",
                view(K::Staged, C::None, K::None, C::New),
                Step::CertIntoTarget {
                    for_staged_key: false,
                },
            ),
            (
                "R reused by another key after the move: left alone",
                view(K::Staged, C::New, K::Other, C::Other),
                Step::Finish,
            ),
        ];
        for (name, v, want) in rows {
            assert_eq!(next_step(v, true, true), Ok(want), "{name}");
        }
    }

    #[test]
    fn every_state_keeps_a_complete_pair_and_the_steps_reach_the_end() {
        // Simulate the card: apply each step to the view, check that a
        // complete pair exists in T (old or new) or R after every write.
        let mut v = view(KeyIn::Other, CertIn::Other, KeyIn::Staged, CertIn::None);
        let complete = |v: &View| {
            (v.target_key == KeyIn::Other && v.target_cert == CertIn::Other)
                || (v.target_key == KeyIn::Staged && v.target_cert == CertIn::New)
                || (v.staged_key == KeyIn::Staged && v.staged_cert == CertIn::New)
        };
        let mut steps = Vec::new();
        let mut claimed = false;
        loop {
            assert!(complete(&v), "{v:?}");
            let step = next_step(v, true, claimed).unwrap();
            steps.push(step);
            match step {
                Step::CertIntoStaged => v.staged_cert = CertIn::New,
                Step::Claim => claimed = true,
                Step::CertIntoTarget { .. } => v.target_cert = CertIn::New,
                Step::DeleteOldKey => v.target_key = KeyIn::None,
                Step::MoveKey => {
                    v.target_key = KeyIn::Staged;
                    v.staged_key = KeyIn::None;
                }
                Step::ClearStaged => v.staged_cert = CertIn::None,
                Step::Finish => break,
            }
        }
        assert_eq!(steps.len(), 7, "{steps:?}");
    }

    #[test]
    fn without_move_key_the_pair_stays_in_the_retired_slot() {
        let s0 = view(KeyIn::Other, CertIn::Other, KeyIn::Staged, CertIn::None);
        assert_eq!(next_step(s0, false, false), Ok(Step::CertIntoStaged));
        let s1 = view(KeyIn::Other, CertIn::Other, KeyIn::Staged, CertIn::New);
        assert_eq!(next_step(s1, false, false), Ok(Step::Finish));
    }

    #[test]
    fn the_target_slot_changes_only_after_the_claim() {
        let s1 = view(KeyIn::Other, CertIn::Other, KeyIn::Staged, CertIn::New);
        assert_eq!(next_step(s1, true, false), Ok(Step::Claim));
        assert_eq!(
            next_step(s1, true, true),
            Ok(Step::CertIntoTarget {
                for_staged_key: true
            })
        );
    }

    #[test]
    fn a_vanished_staged_key_stops_the_install() {
        for sk in [KeyIn::None, KeyIn::Other] {
            let v = view(KeyIn::Other, CertIn::Other, sk, CertIn::None);
            assert_eq!(next_step(v, true, false), Err(StagedKeyGone));
        }
    }
}
