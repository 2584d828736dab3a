//! `ukey renew status` (what is staged, read from the token: spends no PIN
//! try) and `ukey renew cancel` (discard a staged renewal: the staged key
//! and its marker entry; the key in use is never touched).

use super::{
    lock, look, pin_login, read_marker, require_protected, subject_text, utc, write_marker,
    Feedback, Live, Phase, PinFrom, Terminal,
};
use crate::auth::prepare_write;
use crate::cmd::{role, who, Ctx};
use crate::error::{CliError, ErrorKind, Result};
use crate::marker::{Claim, Marker, MarkerError, Staged};
use crate::output;
use crate::p11::P11Token;
use crate::token::Token;
use apdu::piv::Slot;
use serde::Serialize;

#[derive(Serialize)]
struct EntryReport {
    target: String,
    role: String,
    staged_slot: String,
    algorithm: &'static str,
    subject: String,
    staged_since: String,
    phase: Phase,
    /// The new key is in its retired slot.
    staged_key_present: bool,
    /// A certificate for the new key is on the token (retired slot or target).
    certificate_written: bool,
    /// The new key is in the target slot.
    promoted: bool,
    next: String,
}

#[derive(Serialize)]
struct StatusReport {
    reader: String,
    marker_version: Option<u8>,
    /// The marker cannot be used (unreadable, newer, or empty), and what to do.
    problem: Option<String>,
    renewals: Vec<EntryReport>,
    /// Keys in retired slots that no staged renewal claims and that have
    /// no certificate: left by an interrupted renewal whose marker is gone?
    orphaned: Vec<Orphan>,
}

#[derive(Serialize)]
struct Orphan {
    slot: String,
    algorithm: Option<String>,
    next: String,
}

/// Retired slots with a key, no certificate, and no marker entry.
fn orphans(p: &P11Token, marker: Option<&Marker>) -> Result<Vec<Orphan>> {
    let mut out = Vec::new();
    for r in Slot::retired() {
        if marker.is_some_and(|m| m.reserves(r)) {
            continue;
        }
        let Some(spki) = p.public_key(r)? else {
            continue;
        };
        if p.cert(r)?.is_some() {
            continue;
        }
        out.push(Orphan {
            slot: r.to_string(),
            algorithm: crate::certs::public_key_from_spki(&spki)
                .ok()
                .map(|k| k.algorithm().name().to_string()),
            next: format!(
                "a key without a certificate that no staged renewal claims (left by an \
                 interrupted renewal?); if nothing else uses it, `ukey renew clean --slot {r}` \
                 deletes it"
            ),
        });
    }
    Ok(out)
}

/// What is wrong with the marker, and the command that cleans it up.
fn marker_problem(value: Option<&[u8]>) -> (Option<Marker>, Option<String>) {
    match value {
        None => (Some(Marker::new()), None),
        Some(v) => match Marker::parse(v) {
            Ok(m) if m.is_empty() => (
                Some(m),
                Some(
                    "an empty renewal marker is on the token: `ukey renew clean` removes it".into(),
                ),
            ),
            Ok(m) => (Some(m), None),
            Err(e @ MarkerError::Newer(_)) => (None, Some(e.to_string())),
            Err(e @ MarkerError::Malformed(_)) => (
                None,
                Some(format!(
                    "{e}: `ukey renew clean` removes it (keys and certificates stay)"
                )),
            ),
        },
    }
}

fn entry_report(p: &P11Token, e: &Staged) -> Result<EntryReport> {
    let looked = super::look(p, e)?;
    let phase = looked.phase;
    Ok(EntryReport {
        target: e.target.to_string(),
        role: role(e.target),
        staged_slot: e.staged.to_string(),
        algorithm: e.algorithm.name(),
        subject: subject_text(&e.subject),
        staged_since: utc(e.created),
        phase,
        staged_key_present: looked.key_in_staged_slot,
        certificate_written: matches!(
            phase,
            Phase::CertificateWritten | Phase::Promoting | Phase::Promoted
        ),
        promoted: phase == Phase::Promoted,
        next: phase.explain(e),
    })
}

pub fn status(ctx: &Ctx) -> Result<()> {
    let t = ctx.token()?;
    let tref = t.token_ref();
    drop(t);
    let p = P11Token::open(&tref.origin, &tref.reader)?;
    let value = p.renewal()?;
    let (marker, problem) = marker_problem(value.as_deref());
    let mut renewals = Vec::new();
    if let Some(m) = &marker {
        for e in &m.entries {
            renewals.push(entry_report(&p, e)?);
        }
    }
    // A marker that cannot be read reserves nothing we know of.
    let orphaned = orphans(&p, marker.as_ref())?;
    p.close();
    let report = StatusReport {
        reader: tref.reader.clone(),
        marker_version: marker.as_ref().map(|m| m.version),
        problem,
        renewals,
        orphaned,
    };
    ctx.out.emit(&report, || {
        let mut s = format!("Token in {}\n", report.reader);
        if let Some(p) = &report.problem {
            s += &format!("  ! {p}\n");
        } else if report.renewals.is_empty() {
            s += "  No renewal is staged (start one with `ukey renew request --slot 9a`).\n";
        }
        for o in &report.orphaned {
            s += &format!("  ! slot {}: {}\n", o.slot, o.next);
        }
        for r in &report.renewals {
            s += &format!(
                "  Renewal of slot {} ({}), staged {}\n",
                r.target, r.role, r.staged_since
            );
            s += &format!(
                "    new key      slot {}, {}, {}\n",
                r.staged_slot,
                r.algorithm,
                if r.promoted {
                    format!("moved into {}", r.target)
                } else if r.staged_key_present {
                    "on the token".into()
                } else {
                    "MISSING".into()
                }
            );
            s += &format!("    request      {}\n", r.subject);
            s += &format!(
                "    certificate  {}\n",
                if r.certificate_written {
                    "written to the token"
                } else {
                    "not yet installed"
                }
            );
            s += &format!("    next         {}\n", r.next);
        }
        s
    })
}

#[derive(Serialize)]
pub struct Cancelled {
    pub target: String,
    pub staged_slot: String,
    pub staged_key_deleted: bool,
    /// The card cannot delete keys (no DELETE KEY before firmware 5.7).
    pub staged_key_left: bool,
}

/// What `renew cancel` did (the `renew_cancel` JSON document).
#[derive(Serialize)]
pub struct CancelReport {
    pub cancelled: Vec<Cancelled>,
}

/// An install has claimed (or already changed the target slot of) `e`:
/// from there only finishing the install keeps a complete pair.
fn refuse_if_promoting(p: &P11Token, e: &Staged) -> Result<()> {
    let looked = look(p, e)?;
    if e.claim == Some(Claim::Promoting) || looked.phase.past_the_point_of_no_return() {
        return Err(CliError::new(format!(
            "the renewal of slot {} cannot be cancelled: an install has started promoting it; {}",
            e.target,
            looked.phase.explain(e)
        ))
        .with_kind(ErrorKind::Conflict));
    }
    Ok(())
}

/// Cancel one staged renewal: claim it (compare-and-swap on the card, so
/// an install running at the same time cannot start promoting it), delete
/// the certificate and key in its retired slot (each only if still the
/// staged one, checked by the module in the same card transaction), then
/// drop its marker entry. Another program changing the token meanwhile
/// makes it read the token again and go on from what it finds.
fn cancel_one(live: &mut Live<'_>, staged: &Staged, fb: &dyn Feedback) -> Result<Cancelled> {
    let (t, r) = (staged.target, staged.staged);
    let mut deleted = false;
    let mut left = false;
    let mut conflicts = 0;
    loop {
        let step = cancel_step(live, staged, &mut deleted, &mut left, fb);
        if matches!(step, Ok(true)) && !live_claimed(live, staged)? && !deleted && !left {
            // Gone before this run claimed it: installed (or cancelled) by
            // another program meanwhile; this run changed nothing.
            let p = live.token();
            let installed = look(p, staged).map(|l| l.phase == Phase::Promoted)?;
            return Err(CliError::new(format!(
                "the renewal of slot {t} was {} by another program meanwhile: nothing was \
                 cancelled; see `ukey status`",
                if installed {
                    "installed"
                } else {
                    "finished or cancelled"
                }
            ))
            .with_kind(ErrorKind::Conflict));
        }
        match step {
            Ok(true) => {
                return Ok(Cancelled {
                    target: t.to_string(),
                    staged_slot: r.to_string(),
                    staged_key_deleted: deleted,
                    staged_key_left: left,
                })
            }
            Ok(false) => {}
            Err(e) if e.kind == ErrorKind::Conflict && conflicts < 8 => {
                conflicts += 1;
                live.reopen()?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether this run claimed `staged` (set in [`cancel_step`]).
fn live_claimed(live: &Live<'_>, staged: &Staged) -> Result<bool> {
    Ok(live.claimed.contains(&staged.target))
}

/// One card write of a cancel; `Ok(true)` when nothing is left to do.
fn cancel_step(
    live: &mut Live<'_>,
    staged: &Staged,
    deleted: &mut bool,
    left: &mut bool,
    fb: &dyn Feedback,
) -> Result<bool> {
    let mut marker = read_marker(live.token())?;
    // The same renewal (not one requested again since).
    let Some(mut e) = marker
        .for_target(staged.target)
        .filter(|e| e.staged == staged.staged && e.created == staged.created)
        .cloned()
    else {
        return Ok(true);
    };
    if e.claim == Some(Claim::Cancelling) && !live.claimed.contains(&e.target) {
        // An interrupted cancel (or another one running): finish it.
        live.claimed.push(e.target);
    }
    let p = live.token();
    let r = e.staged;
    live.stop_point()?;
    if e.claim != Some(Claim::Cancelling) {
        refuse_if_promoting(p, &e)?;
        e.claim = Some(Claim::Cancelling);
        let target = e.target;
        marker.set(e);
        write_marker(p, &marker)?;
        live.claimed.push(target);
        return Ok(false);
    }
    let key = p.public_key(r)?;
    let ours = match (&key, &e.key) {
        (Some(spki), Some(h)) => super::hash_of(spki)? == *h,
        // Reserved, key hash not yet recorded: whatever the interrupted
        // request generated there is the staged key (no other writer uses
        // a slot the marker reserves).
        (Some(_), None) => true,
        (None, _) => false,
    };
    if ours {
        if let Some(h) = &e.key {
            if super::certifies(p.cert(r)?.as_deref(), h) {
                p.delete_cert(r)?;
                fb.note(&format!("  certificate deleted from slot {r}"));
                return Ok(false);
            }
        }
        if p.can_move(r)? {
            p.delete_key(r)?;
            fb.note(&format!("  new key deleted from slot {r}"));
            *deleted = true;
            return Ok(false);
        }
        *left = true;
    }
    marker.remove(e.target);
    write_marker(p, &marker)?;
    fb.note("  staging marker cleared");
    Ok(true)
}

/// `ukey renew cancel`: the core, then the report.
pub fn cancel(ctx: &mut Ctx, target: Option<Slot>, yes: bool) -> Result<()> {
    let t = ctx.token()?;
    let fb = Terminal::default();
    let report = cancel_core(t, target, yes, PinFrom::Ask(&mut ctx.secrets), &fb)?;
    ctx.out.emit(&report, || {
        if report.cancelled.is_empty() {
            return match target {
                Some(t) => format!("No renewal of slot {t} is staged: nothing to cancel.\n"),
                None => "No renewal is staged: nothing to cancel.\n".into(),
            };
        }
        let mut s = String::new();
        for c in &report.cancelled {
            s += &format!("Renewal of slot {} cancelled", c.target);
            if c.staged_key_deleted {
                s += &format!("; the new key in slot {} was deleted", c.staged_slot);
            } else if c.staged_key_left {
                s += &format!(
                    "; this token cannot delete keys (firmware before 5.7): the unused new key \
                     stays in slot {}",
                    c.staged_slot
                );
            }
            s += &format!(". Slot {} is unchanged.\n", c.target);
        }
        s
    })
}

/// Discard the renewal of `target` (every staged one with `None`) on `t`:
/// its new key and marker entry; the key in use stays. `yes`: the caller
/// has confirmed (else `fb` asks). What `ukey renew cancel` and the web
/// page's "Cancel renewal" run.
pub fn cancel_core(
    mut t: Token,
    target: Option<Slot>,
    yes: bool,
    pin: PinFrom<'_>,
    fb: &dyn Feedback,
) -> Result<CancelReport> {
    let tref = t.token_ref();
    let prep = t.piv(prepare_write)?;
    drop(t);
    let _lock = lock(&tref, &prep)?;
    let mut p = P11Token::open(&tref.origin, &tref.reader)?;
    let marker = read_marker(&p)?;
    let chosen: Vec<Staged> = marker
        .entries
        .iter()
        .filter(|e| target.is_none_or(|t| e.target == t))
        .cloned()
        .collect();
    if chosen.is_empty() {
        p.close();
        return Ok(CancelReport {
            cancelled: Vec::new(),
        });
    }
    for e in &chosen {
        refuse_if_promoting(&p, e)?;
    }
    require_protected(&prep, &tref.reader)?;
    let list: Vec<String> = chosen
        .iter()
        .map(|e| format!("slot {} (new key in slot {})", e.target, e.staged))
        .collect();
    if !yes {
        fb.confirm(
            &format!(
                "Cancel the renewal of {} on {}? The new key and its request are deleted; the \
                 key and certificate in use stay as they are.",
                list.join(", "),
                who(prep.info.serial, &tref.reader)
            ),
            "--yes",
        )?;
    }
    fb.note(&format!("Cancelling the renewal of {}.", list.join(", ")));
    let pin = pin_login(pin, &mut p, &tref, &prep)?;
    let mut live = Live::new(p, &tref, pin);
    let mut cancelled = Vec::new();
    for e in &chosen {
        cancelled.push(cancel_one(&mut live, e, fb)?);
    }
    live.close();
    Ok(CancelReport { cancelled })
}

#[derive(Serialize)]
struct CleanReport {
    /// The unusable or empty marker was removed.
    marker_removed: bool,
    /// The orphaned key deleted (a retired slot).
    key_deleted: Option<String>,
}

/// `ukey renew clean [--slot R]`: remove an empty or unreadable staging
/// marker, or (with `--slot`) delete a key that no staged renewal claims
/// from a retired slot holding no certificate — what `status` and `renew
/// status` report as orphaned staging. Each deletion asks first and is
/// checked by the module against what was shown, in one card transaction.
pub fn clean(ctx: &mut Ctx, slot: Option<Slot>, yes: bool) -> Result<()> {
    let mut t = ctx.token()?;
    let tref = t.token_ref();
    let prep = t.piv(prepare_write)?;
    drop(t);
    let _lock = lock(&tref, &prep)?;
    let mut p = P11Token::open(&tref.origin, &tref.reader)?;
    let value = p.renewal()?;
    let (marker, problem) = marker_problem(value.as_deref());
    let question = match slot {
        None => {
            let removable = value.is_some()
                && marker.as_ref().is_none_or(|m| m.is_empty())
                && !matches!(
                    value.as_deref().map(Marker::parse),
                    Some(Err(MarkerError::Newer(_)))
                );
            if !removable {
                p.close();
                let report = CleanReport {
                    marker_removed: false,
                    key_deleted: None,
                };
                return ctx.out.emit(&report, || {
                    "The staging marker is fine (or absent): nothing to clean. Orphaned keys: \
                     `ukey renew status` lists them; `ukey renew clean --slot R` deletes one.\n"
                        .into()
                });
            }
            format!(
                "Remove the renewal marker from {}? {} Keys and certificates stay.",
                who(prep.info.serial, &tref.reader),
                problem.unwrap_or_default()
            )
        }
        Some(r) => {
            if !matches!(r, Slot::Retired(_)) {
                return Err(CliError::new(format!(
                    "slot {r} is not a retired slot: `renew clean --slot` deletes only keys left \
                     in retired slots by a renewal"
                ))
                .with_kind(ErrorKind::Usage)
                .with_code(crate::error::EXIT_USAGE));
            }
            if marker.as_ref().is_some_and(|m| m.reserves(r)) {
                return Err(CliError::new(format!(
                    "slot {r} holds the key of a staged renewal: `ukey renew cancel` discards it"
                )));
            }
            if marker.is_none() {
                return Err(CliError::new(format!(
                    "the renewal marker cannot be read, so whether slot {r} belongs to a staged \
                     renewal is unknown: `ukey renew clean` (without --slot) removes the marker \
                     first"
                )));
            }
            if p.public_key(r)?.is_none() {
                return Err(CliError::new(format!(
                    "slot {r} holds no key: nothing to clean"
                )));
            }
            if p.cert(r)?.is_some() {
                if let Some(rec) = marker.as_ref().and_then(|m| m.renewed_in(r)) {
                    return Err(CliError::new(format!(
                        "slot {r} holds the renewed pair of slot {} (installed {}; this token \
                         cannot move keys): it is in use; nothing was deleted",
                        rec.target,
                        super::day(rec.installed)
                    )));
                }
                return Err(CliError::new(format!(
                    "slot {r} holds a certificate too: a complete pair, not a key left by a \
                     renewal; nothing was deleted"
                )));
            }
            format!(
                "Delete the key in slot {r} of {}? It has no certificate and no staged renewal \
                 claims it; a deleted key cannot be recovered.",
                who(prep.info.serial, &tref.reader)
            )
        }
    };
    require_protected(&prep, &tref.reader)?;
    output::confirm(&question, "yes", yes, "--yes")?;
    let pin = pin_login(PinFrom::Ask(&mut ctx.secrets), &mut p, &tref, &prep)?;
    let live = Live::new(p, &tref, pin);
    let p = live.token();
    let mut report = CleanReport {
        marker_removed: false,
        key_deleted: None,
    };
    match slot {
        None => {
            p.delete_renewal()?;
            report.marker_removed = true;
        }
        Some(r) => {
            if !p.can_move(r)? {
                return Err(CliError::new(
                    "this token cannot delete keys (DELETE KEY needs firmware 5.7): the key \
                     stays; a later `ukey renew request` cannot use this slot",
                )
                .with_kind(ErrorKind::Unsupported));
            }
            p.delete_key(r)?;
            report.key_deleted = Some(r.to_string());
        }
    }
    live.close();
    ctx.out.emit(&report, || match &report.key_deleted {
        Some(r) => format!("The key in slot {r} was deleted.\n"),
        None => "The renewal marker was removed.\n".into(),
    })
}
