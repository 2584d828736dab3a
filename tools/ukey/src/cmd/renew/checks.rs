//! What `renew install` checks about the CA's certificate before anything
//! is written: a certificate that cannot serve the slot must never
//! replace the pair in use.
//!
//! * a CA certificate (basicConstraints CA:TRUE, or a key usage that only
//!   signs certificates and CRLs) is refused;
//! * an expired one is refused;
//! * one not valid yet is refused, unless `--not-before-ok`: then it is
//!   written next to the new key and the old pair stays in use until a
//!   later `renew install` finds it valid (see `install.rs`);
//! * a key usage (when the certificate has one: RFC 5280 reads its absence
//!   as "any") that cannot serve the slot's role is refused: 9A and 9E
//!   authenticate (digitalSignature), 9C signs (digitalSignature or
//!   nonRepudiation), 9D decrypts or agrees keys (keyEncipherment or
//!   keyAgreement);
//! * another issuer than the current certificate's is shown, and installed
//!   only when the user confirms on a terminal or gives `--new-issuer-ok`.

use super::Feedback;
use crate::certs::CertSummary;
use crate::error::{CliError, ErrorKind, Result};
use apdu::piv::Slot;
use der::Decode;
use std::path::Path;
use std::time::SystemTime;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::Certificate;

/// What the user allowed on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allow {
    /// `--not-before-ok`.
    pub not_yet_valid: bool,
    /// `--new-issuer-ok`.
    pub new_issuer: bool,
}

fn refused(file: &Path, reason: &'static str, why: String) -> CliError {
    CliError::new(format!("{}: {why}; nothing was written", file.display()))
        .with_kind(ErrorKind::CertificateRefused)
        .with_reason(reason)
}

/// The usages a slot's key needs (any one of them).
fn role_usages(slot: Slot) -> (&'static [KeyUsages], &'static str) {
    match slot {
        Slot::Signature => (
            &[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation],
            "digitalSignature or nonRepudiation (slot 9c signs documents)",
        ),
        Slot::KeyManagement => (
            &[KeyUsages::KeyEncipherment, KeyUsages::KeyAgreement],
            "keyEncipherment or keyAgreement (slot 9d decrypts or agrees keys)",
        ),
        _ => (
            &[KeyUsages::DigitalSignature],
            "digitalSignature (slots 9a and 9e authenticate by signing)",
        ),
    }
}

const END_ENTITY: [KeyUsages; 5] = [
    KeyUsages::DigitalSignature,
    KeyUsages::NonRepudiation,
    KeyUsages::KeyEncipherment,
    KeyUsages::DataEncipherment,
    KeyUsages::KeyAgreement,
];

/// The certificate's extensions of one kind (decoded), if present.
fn extension<T: for<'a> Decode<'a> + const_oid::AssociatedOid>(
    cert: &Certificate,
) -> Result<Option<T>> {
    let Some(ext) = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == T::OID)
    else {
        return Ok(None);
    };
    T::from_der(ext.extn_value.as_bytes())
        .map(Some)
        .map_err(|e| CliError::new(format!("extension {}: {e}", T::OID)))
}

/// Check `der` (for `target`) before anything is written. `current` is
/// the certificate in use in the target slot, if any. Each check that
/// passes is told to `fb` (by the reason it would refuse with).
pub fn check(
    file: &Path,
    der: &[u8],
    target: Slot,
    current: Option<&CertSummary>,
    allow: Allow,
    now: SystemTime,
    fb: &dyn Feedback,
) -> Result<CertSummary> {
    let summary = CertSummary::parse(der)?;
    let cert = Certificate::from_der(der)
        .map_err(|e| CliError::new(format!("not an X.509 certificate: {e}")))?;
    let bad = |reason, why: String| refused(file, reason, why);
    if extension::<BasicConstraints>(&cert)?.is_some_and(|b| b.ca) {
        return Err(bad(
            "ca",
            "it is a CA certificate (basicConstraints CA:TRUE), not one for a key on the token \
             (did the CA send its own certificate?)"
                .into(),
        ));
    }
    let usage = extension::<KeyUsage>(&cert)?;
    if let Some(u) = usage {
        let signs_certs = u.0.contains(KeyUsages::KeyCertSign) || u.0.contains(KeyUsages::CRLSign);
        if signs_certs && !END_ENTITY.iter().any(|k| u.0.contains(*k)) {
            return Err(bad(
                "ca",
                "its key usage is only for signing certificates (keyCertSign/cRLSign): a CA's \
                 certificate, not one for a key on the token"
                    .into(),
            ));
        }
    }
    fb.check_passed("ca");
    if summary.not_after <= now {
        return Err(bad(
            "expired",
            format!("the certificate expired on {}", summary.not_after_text),
        ));
    }
    fb.check_passed("expired");
    if summary.not_before > now && !allow.not_yet_valid {
        return Err(bad(
            "not_yet_valid",
            format!(
                "the certificate is not valid before {}: installing it now would replace a pair \
                 that still works with one that does not yet (--not-before-ok writes it next to \
                 the new key and keeps the old pair in use until then)",
                summary.not_before_text
            ),
        ));
    }
    if summary.not_before <= now {
        fb.check_passed("not_yet_valid");
    }
    if let Some(u) = usage {
        let (need, text) = role_usages(target);
        if !need.iter().any(|k| u.0.contains(*k)) {
            return Err(bad(
                "key_usage",
                format!(
                    "its key usage ({}) does not allow what slot {target} is for: it needs {text}",
                    usage_names(&u)
                ),
            ));
        }
    }
    fb.check_passed("key_usage");
    if let Some(cur) = current {
        if cur.issuer != summary.issuer {
            let what = format!(
                "the certificate comes from another issuer than the one in use in slot {target}:\n  \
                 now: {}\n  new: {}",
                cur.issuer, summary.issuer
            );
            if !allow.new_issuer {
                if !fb.interactive() {
                    return Err(bad(
                        "issuer_changed",
                        format!(
                            "{what}\nrefused without a terminal to confirm it (--new-issuer-ok \
                             accepts it)"
                        ),
                    ));
                }
                fb.confirm(&format!("{what}\nInstall it anyway?"), "--new-issuer-ok")
                    .map_err(|e| {
                        e.with_kind(ErrorKind::CertificateRefused)
                            .with_reason("issuer_changed")
                    })?;
            } else {
                fb.warn(&what);
            }
        } else {
            fb.check_passed("issuer_changed");
        }
    }
    Ok(summary)
}

fn usage_names(u: &KeyUsage) -> String {
    let names = [
        (KeyUsages::DigitalSignature, "digitalSignature"),
        (KeyUsages::NonRepudiation, "nonRepudiation"),
        (KeyUsages::KeyEncipherment, "keyEncipherment"),
        (KeyUsages::DataEncipherment, "dataEncipherment"),
        (KeyUsages::KeyAgreement, "keyAgreement"),
        (KeyUsages::KeyCertSign, "keyCertSign"),
        (KeyUsages::CRLSign, "cRLSign"),
        (KeyUsages::EncipherOnly, "encipherOnly"),
        (KeyUsages::DecipherOnly, "decipherOnly"),
    ];
    let list: Vec<&str> = names
        .iter()
        .filter(|(k, _)| u.0.contains(*k))
        .map(|(_, n)| *n)
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}
