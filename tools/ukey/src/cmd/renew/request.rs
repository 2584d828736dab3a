//! `ukey renew request --slot 9a`: stage a renewal. The current key and
//! certificate stay untouched and usable during the CA's review.
//!
//! Order on the card, so that a pulled token never loses track of a key:
//! 1. the marker reserves a free retired slot (entry without key hash);
//! 2. the new key is generated there (same algorithm and policies as the
//!    key in use);
//! 3. the marker records the new key's hash.
//!
//! Re-running after a pull adopts a key found in the reserved slot (no
//! other writer uses a slot the marker reserves), or generates it; with the
//! key recorded, it only writes the request again.

use super::{
    day, hash_of, home_slot, lock, look, pin_login, read_marker, require_protected, subject_text,
    utc, write_marker, Phase,
};
use super::{Feedback, PinFrom, Terminal};
use crate::auth::prepare_write;
use crate::certs::{pem, public_key_from_spki, CertSummary};
use crate::cmd::csr::build_with;
use crate::cmd::{role, who, write_file, Ctx};
use crate::error::{CliError, ErrorKind, Result};
use crate::marker::{Marker, Staged};
use crate::p11::P11Token;
use crate::token::Token;
use crate::verdict::{days_left, judge, Verdict};
use apdu::piv::caps::KeyAnswer;
use apdu::piv::{Algorithm, Slot, TouchPolicy};
use der::{Decode, Encode};
use serde::Serialize;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What `renew request` did (the `renew_request` JSON document).
#[derive(Serialize)]
pub struct RequestReport {
    pub target: String,
    pub staged_slot: String,
    pub algorithm: &'static str,
    pub subject: String,
    /// "generated", "adopted" (found after an interrupted run) or "existing".
    pub key: &'static str,
    pub staged_since: String,
    /// Where the pair being renewed is: the target slot, or the retired
    /// slot an earlier renewal left it in (a card without MOVE KEY).
    pub current_slot: String,
    /// The card cannot move keys: the renewed pair will stay in
    /// `staged_slot` after the install (accepted before the PIN).
    pub stays_in_retired_slot: bool,
    pub current_certificate_days_left: i64,
    pub verdict: Verdict,
    pub file: Option<String>,
    pub csr_pem: String,
}

/// A retired slot with no key that no staged renewal reserves.
fn free_slot(p: &P11Token, marker: &Marker) -> Result<Slot> {
    for r in Slot::retired() {
        if marker.reserves(r) {
            continue;
        }
        if p.public_key(r)?.is_none() && p.cert(r)?.is_none() {
            return Ok(r);
        }
    }
    Err(CliError::new(
        "no free retired slot on the token: all 20 hold keys or certificates",
    ))
}

/// `ukey renew request`: the core, then the file and the report.
pub fn request(
    ctx: &mut Ctx,
    target: Slot,
    out: Option<&Path>,
    force: bool,
    window: u32,
    retired_slot_ok: bool,
) -> Result<()> {
    let t = ctx.token()?;
    let fb = Terminal::default();
    let mut report = request_core(
        t,
        target,
        force,
        window,
        retired_slot_ok,
        PinFrom::Ask(&mut ctx.secrets),
        &fb,
    )?;
    if let Some(path) = out {
        write_file(path, report.csr_pem.as_bytes())?;
    }
    report.file = out.map(|p| p.display().to_string());
    let staged = &report.staged_slot;
    ctx.out.emit(&report, || {
        let mut s = format!(
            "Renewal of slot {target} staged: new {} key in slot {staged} (the key in use \
             stays in {}).\n",
            report.algorithm, report.current_slot
        );
        if report.stays_in_retired_slot {
            s += &format!(
                "This token cannot move keys: after the install the new pair stays in slot \
                 {staged}, and `ukey status` shows slot {target} as superseded by it.\n"
            );
        }
        match out {
            Some(path) => {
                s += &format!(
                    "Request for {} (signed on the token) written to {}.\n",
                    report.subject,
                    path.display()
                );
                s += "Send it to the CA; once it issues the certificate: ukey renew install CERT\n";
            }
            None => s += &report.csr_pem,
        }
        s
    })
}

/// Stage a renewal of `target` on the token `t` (or finish or repeat the
/// one staged) and return the request, signed on the token: what `ukey
/// renew request` and the web page's "Apply for renewal" run.
///
/// On a card without MOVE KEY the renewed pair will stay in the retired
/// slot: that is said before the PIN is asked (where the pair will live,
/// which applications follow it and which stay on the old key) and must
/// be accepted (`retired_slot_ok`, or a terminal answer); otherwise
/// nothing is asked or written (error kind `retired_slot_not_confirmed`).
pub fn request_core(
    mut t: Token,
    target: Slot,
    force: bool,
    window: u32,
    retired_slot_ok: bool,
    pin: PinFrom<'_>,
    fb: &dyn Feedback,
) -> Result<RequestReport> {
    let tref = t.token_ref();
    let prep = t.piv(prepare_write)?;
    drop(t);
    let _lock = lock(&tref, &prep)?;
    let mut p = P11Token::open(&tref.origin, &tref.reader)?;

    // Where the pair of the role lives: the slot itself, or the retired
    // slot an earlier renewal left it in (a card without MOVE KEY).
    let marker_now = read_marker(&p);
    let (home, renewed) = match &marker_now {
        Ok(m) => home_slot(&p, m, target)?,
        Err(_) => (target, None),
    };
    let in_home = |what: &str| match &renewed {
        Some(r) => format!(
            "slot {target} ({}, renewed into retired slot {home} on {}) {what}",
            role(target),
            day(r.installed)
        ),
        None => format!("slot {target} ({}) {what}", role(target)),
    };

    // The verdict first: nothing is asked or written for a refusal.
    let der = p
        .cert(home)?
        .ok_or_else(|| CliError::new(in_home("has no certificate to renew")))?;
    let cert = CertSummary::parse(&der)?;
    let now = SystemTime::now();
    let days = days_left(cert.not_after, now);
    let verdict = judge(Some(&cert), now, window);
    match verdict {
        Verdict::Expired => {
            return Err(CliError::new(format!(
                "slot {home}: the certificate expired on {}: {}",
                cert.not_after_text,
                verdict.explain(Some(days), window)
            )))
        }
        Verdict::Ok if !force => {
            return Err(CliError::new(format!(
                "slot {home}: the certificate is not due for renewal ({days} days left; {}): \
                 nothing was done (--force requests anyway)",
                verdict.explain(Some(days), window)
            )))
        }
        _ => {}
    }
    let current = p
        .public_key(home)?
        .ok_or_else(|| CliError::new(format!("slot {home} holds no key")))?;
    let current_pk = public_key_from_spki(&current)?;
    if public_key_from_spki(&cert.spki_der)? != current_pk {
        return Err(CliError::new(format!(
            "the certificate in slot {home} is not for the key there: see `ukey status`"
        )));
    }
    let alg = current_pk.algorithm();
    if !matches!(
        alg,
        Algorithm::Rsa2048
            | Algorithm::Rsa3072
            | Algorithm::Rsa4096
            | Algorithm::EccP256
            | Algorithm::EccP384
    ) {
        return Err(CliError::new(format!(
            "{alg} keys cannot be renewed by ukey"
        )));
    }
    // The new key gets the policies of the key it replaces (9C stays
    // PIN-always); whether it can move into the target slot later is
    // asked now, before the PIN (no card state changes, no try spent).
    let (md, moves) = tref.connect()?.piv(|s| {
        let md = match prep.info.key(s, home)? {
            KeyAnswer::Reported(md) => Some(md),
            KeyAnswer::Empty | KeyAnswer::CannotTell => None,
        };
        Ok((md, prep.info.moves_keys(s)?))
    })?;
    let (pin_policy, touch_policy) = md
        .and_then(|m| m.policy)
        .unwrap_or((target.default_pin_policy(), TouchPolicy::Default));
    require_protected(&prep, &tref.reader)?;

    let mut marker = marker_now?;
    let existing = marker.for_target(target).cloned();
    let (mut entry, plan) = match existing {
        Some(e) => {
            let looked = look(&p, &e)?;
            match looked.phase {
                Phase::AwaitingCertificate | Phase::CertificateWritten => (e, Plan::Existing),
                Phase::KeyPending if looked.key_in_staged_slot => (e, Plan::Adopt),
                Phase::KeyPending => (e, Plan::Generate),
                other => {
                    return Err(CliError::new(format!(
                        "a renewal of slot {target} is staged since {}: {}",
                        utc(e.created),
                        other.explain(&e)
                    )))
                }
            }
        }
        None => {
            let staged = free_slot(&p, &marker)?;
            let subject = cert
                .subject
                .to_der()
                .map_err(|e| CliError::new(format!("encoding the subject: {e}")))?;
            let created = now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let e = Staged {
                target,
                staged,
                algorithm: alg,
                subject,
                created,
                key: None,
                claim: None,
            };
            (e, Plan::Reserve)
        }
    };
    let staged = entry.staged;
    match plan {
        Plan::Existing => fb.note(&format!(
            "A renewal of slot {target} is staged since {} (new key in slot {staged}): \
             writing its request again.",
            utc(entry.created)
        )),
        Plan::Adopt | Plan::Generate => fb.note(&format!(
            "Finishing the renewal of slot {target} staged since {} (slot {staged}).",
            utc(entry.created)
        )),
        Plan::Reserve => fb.note(&format!(
            "{}: {}. A new {alg} key goes into the free retired slot {staged}; the key and \
             certificate in use stay until the install.",
            upper_first(&in_home("")).trim_end(),
            verdict.explain(Some(days), window)
        )),
    }
    if !moves && plan == Plan::Reserve {
        // Said and accepted before the PIN: nothing was asked or written.
        fb.note(&retired_slot_warning(target, staged, home));
        if !retired_slot_ok {
            fb.confirm(
                &format!(
                    "Renew slot {target} of {} into retired slot {staged}, where the new pair \
                     stays?",
                    who(prep.info.serial, &tref.reader)
                ),
                "--retired-slot-ok",
            )
            .map_err(|e| {
                CliError::new(format!("{}; nothing was asked or written", e.message))
                    .with_kind(ErrorKind::RetiredSlotNotConfirmed)
            })?;
        }
    }

    let pin = pin_login(pin, &mut p, &tref, &prep)?;

    if plan == Plan::Reserve {
        marker.set(entry.clone());
        write_marker(&p, &marker)?;
    }
    if matches!(plan, Plan::Reserve | Plan::Generate) {
        fb.slow_start(&format!(
            "generating the new {alg} key in slot {staged}{}",
            if alg.is_rsa() {
                " (a real card takes up to a minute)"
            } else {
                ""
            }
        ));
        let generated = p.generate(staged, entry.algorithm, pin_policy, touch_policy);
        fb.slow_done(generated.is_ok());
        generated?;
    }
    let spki = p
        .public_key(staged)?
        .ok_or_else(|| CliError::new(format!("slot {staged} holds no key after generation")))?;
    if entry.key.is_none() {
        entry.key = Some(hash_of(&spki)?);
        marker.set(entry.clone());
        write_marker(&p, &marker)?;
    }

    let pk = public_key_from_spki(&spki)?;
    let subject = x509_cert::name::Name::from_der(&entry.subject)
        .map_err(|e| CliError::new(format!("the staged subject: {e}")))?;
    let csr = build_with(staged, &pk, subject, |tbs| {
        p.sign(staged, pk.algorithm(), tbs, &pin)
    })?;
    p.close();
    Ok(RequestReport {
        target: target.to_string(),
        staged_slot: staged.to_string(),
        algorithm: entry.algorithm.name(),
        subject: subject_text(&entry.subject),
        key: match plan {
            Plan::Existing => "existing",
            Plan::Adopt => "adopted",
            Plan::Generate | Plan::Reserve => "generated",
        },
        staged_since: utc(entry.created),
        current_slot: home.to_string(),
        stays_in_retired_slot: !moves,
        current_certificate_days_left: days,
        verdict,
        file: None,
        csr_pem: pem("CERTIFICATE REQUEST", &csr),
    })
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// What happens on a card without MOVE KEY, said before the PIN.
pub fn retired_slot_warning(target: Slot, staged: Slot, home: Slot) -> String {
    let (id, label) = match target {
        Slot::Authentication => ("01", "PIV%20AUTH%20key"),
        Slot::Signature => ("02", "SIGN%20key"),
        Slot::KeyManagement => ("03", "KEY%20MAN%20key"),
        _ => ("04", "CARD%20AUTH%20key"),
    };
    let old = if home == target {
        format!("slot {target} keeps its old key and certificate until they expire")
    } else {
        format!(
            "the pair in use (in retired slot {home}) stays until it expires, as does the \
             older one in slot {target}"
        )
    };
    let mut pinned = format!(
        "whatever names slot {target} itself: `pkcs11:id=%{id}` or `object={label}` URIs, \
         `yubico-piv-tool -s {target}` and `ykman piv` commands for {target}"
    );
    if target == Slot::Authentication {
        pinned += ", Windows smart-card logon (its minidriver uses 9a)";
    }
    pinned += ", and OpenSSH servers whose authorized_keys lists only the old key (add the new \
               one from `ssh-keygen -D` after the install)";
    format!(
        "This token cannot move keys (MOVE KEY needs YubiKey firmware 5.7): the new key pair \
         will be generated in retired slot {staged} and stay there after the install; {old}.\n\
         \x20 Follow the new pair: applications that find keys by their certificate through \
         PKCS#11 (Firefox, Thunderbird, Chromium and other NSS applications, p11-kit clients, \
         OpenSSL with libp11 or pkcs11-provider choosing the key of a certificate).\n\
         \x20 Keep using the old key until it expires: {pinned}."
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Reserve a slot in the marker, generate, record.
    Reserve,
    /// The slot is reserved, the key missing: generate, record.
    Generate,
    /// The slot is reserved and holds the key: record it.
    Adopt,
    /// Everything is staged: only the request is written again.
    Existing,
}
