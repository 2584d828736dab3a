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
    hash_of, lock, look, pin_login, read_marker, require_protected, subject_text, utc,
    write_marker, Phase,
};
use super::{Feedback, PinFrom, Terminal};
use crate::auth::prepare_write;
use crate::certs::{pem, public_key_from_spki, CertSummary};
use crate::cmd::csr::build_with;
use crate::cmd::{role, write_file, Ctx};
use crate::error::{CliError, Result};
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
) -> Result<()> {
    let t = ctx.token()?;
    let fb = Terminal::default();
    let mut report = request_core(
        t,
        target,
        force,
        window,
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
             stays in {target}).\n",
            report.algorithm
        );
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
pub fn request_core(
    mut t: Token,
    target: Slot,
    force: bool,
    window: u32,
    pin: PinFrom<'_>,
    fb: &dyn Feedback,
) -> Result<RequestReport> {
    let tref = t.token_ref();
    let (prep, md) = t.piv(|s| {
        let prep = prepare_write(s)?;
        let md = match prep.info.key(s, target)? {
            KeyAnswer::Reported(md) => Some(md),
            KeyAnswer::Empty | KeyAnswer::CannotTell => None,
        };
        Ok((prep, md))
    })?;
    drop(t);
    let _lock = lock(&tref, &prep)?;
    let mut p = P11Token::open(&tref.origin, &tref.reader)?;

    // The verdict first: nothing is asked or written for a refusal.
    let der = p.cert(target)?.ok_or_else(|| {
        CliError::new(format!(
            "slot {target} ({}) has no certificate to renew",
            role(target)
        ))
    })?;
    let cert = CertSummary::parse(&der)?;
    let now = SystemTime::now();
    let days = days_left(cert.not_after, now);
    let verdict = judge(Some(&cert), now, window);
    match verdict {
        Verdict::Expired => {
            return Err(CliError::new(format!(
                "slot {target}: the certificate expired on {}: {}",
                cert.not_after_text,
                verdict.explain(Some(days), window)
            )))
        }
        Verdict::Ok if !force => {
            return Err(CliError::new(format!(
                "slot {target}: the certificate is not due for renewal ({days} days left; {}): \
                 nothing was done (--force requests anyway)",
                verdict.explain(Some(days), window)
            )))
        }
        _ => {}
    }
    let current = p
        .public_key(target)?
        .ok_or_else(|| CliError::new(format!("slot {target} holds no key")))?;
    let current_pk = public_key_from_spki(&current)?;
    if public_key_from_spki(&cert.spki_der)? != current_pk {
        return Err(CliError::new(format!(
            "the certificate in slot {target} is not for the key there: see `ukey status`"
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
    // The new key gets the policies of the key it replaces (9C stays PIN-always).
    let (pin_policy, touch_policy) = md
        .and_then(|m| m.policy)
        .unwrap_or((target.default_pin_policy(), TouchPolicy::Default));
    require_protected(&prep, &tref.reader)?;

    let mut marker = read_marker(&p)?;
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
            "Slot {target} ({}): {}. A new {alg} key goes into the free retired slot \
             {staged}; the key and certificate in use stay until the install.",
            role(target),
            verdict.explain(Some(days), window)
        )),
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
        current_certificate_days_left: days,
        verdict,
        file: None,
        csr_pem: pem("CERTIFICATE REQUEST", &csr),
    })
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
