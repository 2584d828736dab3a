//! `ukey status`: the status model ([`ukey_token::status`]) read from every
//! token the selection allows, printed for people or as JSON.
//!
//! APDUs, on a card whose GET METADATA works (YubiKey 5.3+): SELECT,
//! version, serial, metadata of PIN, PUK and management key, ADMIN DATA,
//! metadata of all 24 slots, and the certificates of the four main slots
//! and of any retired slot holding a key. Where it does not (older and
//! other makers' cards, found out from their answers): an empty VERIFY for
//! the PIN, the 24 certificate objects (algorithms then come from
//! certificates) and ukey's record of keys it generated there.

use super::Ctx;
use crate::error::{CliError, Result};
#[cfg(feature = "sim")]
use crate::token::Source;
use crate::verdict::Verdict;
pub use ukey_token::status::{collect, token_report, Report, SlotReport, TokenReport, TokenResult};

pub fn run(ctx: &Ctx, window: u32) -> Result<()> {
    let report = collect(&ctx.sel, window)?;
    let all_failed = report
        .tokens
        .iter()
        .all(|r| matches!(r, TokenResult::Failed { .. }));
    if all_failed {
        // Nothing useful to show: one line per token, then the reason.
        let notes = report
            .tokens
            .iter()
            .filter_map(|r| match r {
                TokenResult::Failed { error, .. } => Some(error.clone()),
                TokenResult::Ok(_) => None,
            })
            .collect::<Vec<_>>();
        let msg = if notes.len() == 1 {
            notes[0].clone()
        } else {
            "no token could be read".to_string()
        };
        return Err(CliError::new(msg).with_notes(if notes.len() == 1 { vec![] } else { notes }));
    }
    ctx.out.emit(&report, || text(&report))
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    for (i, t) in r.tokens.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        match t {
            TokenResult::Failed { error, .. } => s += &format!("{error}\n"),
            TokenResult::Ok(t) => s += &token_text(t, r.window_days),
        }
    }
    s
}

fn token_text(t: &TokenReport, window: u32) -> String {
    let mut s = String::new();
    let id = match (&t.serial, &t.chuid_guid) {
        (Some(n), _) => format!("Token {n}"),
        (None, Some(guid)) => format!("Token with CHUID {guid}"),
        (None, None) => "Token (no serial)".into(),
    };
    #[cfg(feature = "sim")]
    let sim = if t.source == Source::Sim {
        " (simulated)"
    } else {
        ""
    };
    #[cfg(not(feature = "sim"))]
    let sim = "";
    s += &format!("{id} in {}{sim}", t.reader);
    if let Some(v) = &t.version {
        s += &format!(", PIV firmware {v}");
    }
    s.push('\n');
    let pin = match &t.pin {
        Some(c) => c.describe(),
        None => "verified in this session (this card shows no count then)".into(),
    };
    let puk = t
        .puk
        .map(|c| c.describe())
        .unwrap_or_else(|| "unknown (this card cannot tell without spending a try)".into());
    s += &format!("  PIN: {pin}    PUK: {puk}\n");
    let mk = &t.management_key;
    s += &format!(
        "  Management key: {}{}{}\n",
        mk.algorithm.map(|a| a.name()).unwrap_or("type unknown"),
        if mk.protected { ", PIN-protected" } else { "" },
        if mk.default == Some(true) {
            ", FACTORY DEFAULT"
        } else {
            ""
        }
    );
    if t.pin.is_some_and(|c| c.default == Some(true)) {
        s += "  ! the PIN is the factory default: change it with `ukey pin change`\n";
    }
    if t.pin.is_some_and(|c| c.blocked()) {
        s += "  ! the PIN is blocked: `ukey pin unblock` (needs the PUK)\n";
    }
    if let Some(p) = &t.renewal_problem {
        s += &format!("  ! {p}\n");
    }
    for slot in &t.slots {
        s += &slot_text(slot, window);
    }
    s
}

/// One slot of the report, as `status` prints it.
pub fn slot_text(slot: &SlotReport, window: u32) -> String {
    let mut s = format!("  Slot {} {}", slot.slot, slot.role);
    if let Some(of) = &slot.renewal_of {
        s += &format!(
            " (renewed pair of slot {}, installed {})",
            of.slot,
            of.renewed.get(..10).unwrap_or(&of.renewed)
        );
    }
    match &slot.key {
        Some(k) => {
            s += &format!(": {} key", k.algorithm);
            if let Some(o) = &k.origin {
                s += &format!(" ({o})");
            }
        }
        None => s += ": no key",
    }
    s.push('\n');
    if slot
        .key
        .as_ref()
        .is_some_and(|k| k.known_from == "ukey-record")
    {
        s += "    key      known from ukey's record of its generation (this card cannot report keys)\n";
    }
    if let Some(c) = &slot.certificate {
        s += &format!("    subject  {}\n", c.subject);
        s += &format!("    issuer   {}\n", c.issuer);
        let left = if c.days_left > 0 {
            format!("{} days left", c.days_left)
        } else {
            "expired".into()
        };
        s += &format!(
            "    valid    {} to {} ({left})\n",
            c.not_before, c.not_after
        );
    }
    if let Some(p) = &slot.problem {
        s += &format!("    ! {p}\n");
    }
    if let Some(t) = &slot.staged_for {
        s += &format!("    staged   the new key of the renewal of slot {t}\n");
    }
    match (&slot.superseded_by, slot.verdict) {
        (Some(by), Verdict::Superseded) => {
            s += &format!(
                "    verdict  superseded by retired slot {} (renewed {}): applications that find \
                 keys by certificate use the new pair there; those pinned to slot {} keep this \
                 old key until it expires (renew with `ukey renew request --slot {}`)\n",
                by.slot,
                by.renewed.get(..10).unwrap_or(&by.renewed),
                slot.slot,
                slot.renewal_of
                    .as_ref()
                    .map(|o| o.slot.as_str())
                    .unwrap_or(&slot.slot)
            )
        }
        _ => {
            s += &format!(
                "    verdict  {}\n",
                slot.verdict
                    .explain(slot.certificate.as_ref().map(|c| c.days_left), window)
            );
            if let Some(by) = &slot.superseded_by {
                s += &format!(
                    "    renewed  its role is held by retired slot {}\n",
                    by.slot
                );
            }
        }
    }
    if let Some(r) = &slot.renewal {
        s += &format!(
            "    renewal  staged {} (new key in slot {}): {}\n",
            r.staged_since.get(..10).unwrap_or(&r.staged_since),
            r.staged_slot,
            r.next
        );
    }
    s
}
