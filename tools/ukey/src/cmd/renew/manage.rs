//! `ukey renew status` (what is staged, read from the token: spends no PIN
//! try) and `ukey renew cancel` (discard a staged renewal: the staged key
//! and its marker entry; the key in use is never touched).

use super::{
    lock, look, pin_login, read_marker, require_protected, subject_text, utc, write_marker, Live,
    Phase,
};
use crate::auth::prepare_write;
use crate::cmd::{role, who, Ctx};
use crate::error::{CliError, ErrorKind, Result};
use crate::marker::{Claim, Marker, MarkerError, Staged};
use crate::output;
use crate::p11::P11Token;
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
    problem: Option<String>,
    renewals: Vec<EntryReport>,
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
    let (marker, problem) = match p.renewal()? {
        None => (Some(Marker::new()), None),
        Some(v) => match Marker::parse(&v) {
            Ok(m) => (Some(m), None),
            Err(e @ (MarkerError::Newer(_) | MarkerError::Malformed(_))) => {
                (None, Some(e.to_string()))
            }
        },
    };
    let mut renewals = Vec::new();
    if let Some(m) = &marker {
        for e in &m.entries {
            renewals.push(entry_report(&p, e)?);
        }
    }
    p.close();
    let report = StatusReport {
        reader: tref.reader.clone(),
        marker_version: marker.as_ref().map(|m| m.version),
        problem,
        renewals,
    };
    ctx.out.emit(&report, || {
        let mut s = format!("Token in {}\n", report.reader);
        if let Some(p) = &report.problem {
            s += &format!("  ! {p}\n");
        } else if report.renewals.is_empty() {
            s += "  No renewal is staged (start one with `ukey renew request --slot 9a`).\n";
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
struct Cancelled {
    target: String,
    staged_slot: String,
    staged_key_deleted: bool,
    /// The card cannot delete keys (no DELETE KEY before firmware 5.7).
    staged_key_left: bool,
}

#[derive(Serialize)]
struct CancelReport {
    cancelled: Vec<Cancelled>,
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
fn cancel_one(live: &mut Live<'_>, staged: &Staged) -> Result<Cancelled> {
    let (t, r) = (staged.target, staged.staged);
    let mut deleted = false;
    let mut left = false;
    let mut conflicts = 0;
    loop {
        let step = cancel_step(live, staged, &mut deleted, &mut left);
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

/// One card write of a cancel; `Ok(true)` when nothing is left to do.
fn cancel_step(
    live: &mut Live<'_>,
    staged: &Staged,
    deleted: &mut bool,
    left: &mut bool,
) -> Result<bool> {
    let p = live.token();
    let mut marker = read_marker(p)?;
    // The same renewal (not one requested again since).
    let Some(mut e) = marker
        .for_target(staged.target)
        .filter(|e| e.staged == staged.staged && e.created == staged.created)
        .cloned()
    else {
        return Ok(true);
    };
    let r = e.staged;
    live.stop_point()?;
    if e.claim != Some(Claim::Cancelling) {
        refuse_if_promoting(p, &e)?;
        e.claim = Some(Claim::Cancelling);
        marker.set(e);
        write_marker(p, &marker)?;
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
                output::note(format!("  certificate deleted from slot {r}"));
                return Ok(false);
            }
        }
        if p.can_move(r)? {
            p.delete_key(r)?;
            output::note(format!("  new key deleted from slot {r}"));
            *deleted = true;
            return Ok(false);
        }
        *left = true;
    }
    marker.remove(e.target);
    write_marker(p, &marker)?;
    output::note("  staging marker cleared");
    Ok(true)
}

pub fn cancel(ctx: &mut Ctx, target: Option<Slot>, yes: bool) -> Result<()> {
    let mut t = ctx.token()?;
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
        let report = CancelReport {
            cancelled: Vec::new(),
        };
        return ctx.out.emit(&report, || match target {
            Some(t) => format!("No renewal of slot {t} is staged: nothing to cancel.\n"),
            None => "No renewal is staged: nothing to cancel.\n".into(),
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
    output::confirm(
        &format!(
            "Cancel the renewal of {} on {}? The new key and its request are deleted; the key \
             and certificate in use stay as they are.",
            list.join(", "),
            who(prep.info.serial, &tref.reader)
        ),
        "yes",
        yes,
        "--yes",
    )?;
    output::note(format!("Cancelling the renewal of {}.", list.join(", ")));
    let pin = pin_login(&mut ctx.secrets, &mut p, &tref, &prep)?;
    let mut live = Live::new(p, &tref, pin);
    let mut cancelled = Vec::new();
    for e in &chosen {
        cancelled.push(cancel_one(&mut live, e)?);
    }
    live.close();
    let report = CancelReport { cancelled };
    ctx.out.emit(&report, || {
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
