//! Certificates and public keys: reading certificate containers, X.509
//! summaries, SubjectPublicKeyInfo to and from the card's public keys, PEM.

use crate::access::optional;
use crate::error::{CliError, Result};
use apdu::piv::spki::SpkiError;
use apdu::piv::{CertContainer, PublicKey, Slot};
use apdu::Session;
use der::{Decode, Encode};
use serde::Serialize;
use std::str::FromStr;
use std::time::SystemTime;
use x509_cert::name::Name;
use x509_cert::Certificate;

/// What `status` and the renewal commands need from a certificate.
#[derive(Debug, Clone)]
pub struct CertSummary {
    pub subject: Name,
    pub issuer: Name,
    pub serial_hex: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// notBefore in Unix seconds (0 before 1970).
    pub not_before_unix: u64,
    pub not_before_text: String,
    pub not_after_text: String,
    pub spki_der: Vec<u8>,
}

/// The certificate part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct CertReport {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
}

impl CertSummary {
    pub fn parse(der: &[u8]) -> Result<Self> {
        let cert = Certificate::from_der(der)
            .map_err(|e| CliError::new(format!("not an X.509 certificate: {e}")))?;
        let tbs = &cert.tbs_certificate;
        let spki_der = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| CliError::new(format!("certificate public key: {e}")))?;
        Ok(Self {
            subject: tbs.subject.clone(),
            issuer: tbs.issuer.clone(),
            serial_hex: hex::encode(tbs.serial_number.as_bytes()),
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            not_before_unix: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_before_text: tbs.validity.not_before.to_date_time().to_string(),
            not_after_text: tbs.validity.not_after.to_date_time().to_string(),
            spki_der,
        })
    }

    pub fn report(&self, now: SystemTime) -> CertReport {
        CertReport {
            subject: self.subject.to_string(),
            issuer: self.issuer.to_string(),
            serial: self.serial_hex.clone(),
            not_before: self.not_before_text.clone(),
            not_after: self.not_after_text.clone(),
            days_left: crate::verdict::days_left(self.not_after, now),
        }
    }
}

/// The DER certificate in `slot`'s container (`None`: empty or absent).
pub fn read_cert(s: &mut Session<'_>, slot: Slot) -> Result<Option<Vec<u8>>> {
    read_cert_lenient(s, slot)?.transpose()
}

/// Like [`read_cert`], but a malformed container is an inner error (so a
/// report can show it against the slot and go on); card errors are outer.
pub fn read_cert_lenient(s: &mut Session<'_>, slot: Slot) -> Result<Option<Result<Vec<u8>>>> {
    let Some(content) = optional(s.get_data(slot.cert_object()))? else {
        return Ok(None);
    };
    if content.is_empty() {
        return Ok(None);
    }
    Ok(match CertContainer::parse(&content) {
        Ok(Some(c)) => Some(Ok(c.der)),
        Ok(None) => None,
        Err(e) => Some(Err(CliError::new(format!(
            "certificate container of slot {slot}: {e}"
        )))),
    })
}

/// SubjectPublicKeyInfo DER of a key the card reported.
pub fn spki_der(pk: &PublicKey) -> Result<Vec<u8>> {
    pk.to_spki_der().map_err(|e| match e {
        SpkiError::Unsupported => {
            CliError::new(format!("{} keys are not supported by ukey", pk.algorithm()))
        }
        SpkiError::Invalid(e) => CliError::new(format!("the token's public key is unusable: {e}")),
    })
}

/// The card-style public key of a SubjectPublicKeyInfo (RSA, P-256, P-384).
pub fn public_key_from_spki(spki: &[u8]) -> Result<PublicKey> {
    PublicKey::from_spki_der(spki)
        .map_err(|_| CliError::new("the certificate's key is not RSA, P-256 or P-384"))
}

/// PEM text.
pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// The largest certificate file read: a certificate chain is kilobytes.
pub const MAX_CERT_FILE: u64 = 1 << 20;

/// Read at most [`MAX_CERT_FILE`] bytes of `path` (a device such as
/// /dev/zero or a huge file is refused at once, without reading it all).
pub fn read_limited(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let bad = |e: String| {
        CliError::new(format!("{}: {e}", path.display()))
            .with_kind(crate::error::ErrorKind::BadInput)
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_CERT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_CERT_FILE {
        return Err(bad(format!(
            "larger than {} KiB: not a certificate file (a certificate with its chain is a \
             few kilobytes)",
            MAX_CERT_FILE / 1024
        ))
        .with_reason("too_large"));
    }
    Ok(bytes)
}

/// A certificate file: PEM (the first CERTIFICATE block) or DER.
pub fn load_cert_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes = read_limited(path)?;
    let der = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let start = text.find("-----BEGIN CERTIFICATE-----").ok_or_else(|| {
                CliError::new(format!(
                    "{}: no CERTIFICATE in the PEM file",
                    path.display()
                ))
            })?;
            let rest = &text[start..];
            let end = rest
                .find("-----END CERTIFICATE-----")
                .map(|i| i + "-----END CERTIFICATE-----".len())
                .ok_or_else(|| CliError::new(format!("{}: truncated PEM", path.display())))?;
            der::pem::decode_vec(&rest.as_bytes()[..end])
                .map_err(|e| CliError::new(format!("{}: bad PEM: {e}", path.display())))?
                .1
        }
        _ => bytes,
    };
    Certificate::from_der(&der)
        .map_err(|e| CliError::new(format!("{}: not an X.509 certificate: {e}", path.display())))?;
    Ok(der)
}

/// The certificates in the certs-only PKCS#7 (`.p7b`) `der`: ContentInfo
/// { signedData, [0] SignedData { version, digestAlgorithms,
/// encapContentInfo, [0] IMPLICIT certificates, ... } } (RFC 5652 §3, §5.1).
/// `None` when it is not one.
fn pkcs7_certs(der: &[u8]) -> Option<Vec<Vec<u8>>> {
    use der::asn1::{AnyRef, ObjectIdentifier};
    use der::{Reader, SliceReader, Tag, TagNumber, Tagged};
    const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    let explicit0 = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    let ci = AnyRef::from_der(der).ok()?;
    if ci.tag() != Tag::Sequence {
        return None;
    }
    let mut r = SliceReader::new(ci.value()).ok()?;
    let oid: ObjectIdentifier = r.decode().ok()?;
    let content: AnyRef<'_> = r.decode().ok()?;
    if oid != SIGNED_DATA || content.tag() != explicit0 {
        return None;
    }
    let sd = AnyRef::from_der(content.value()).ok()?;
    let mut r = SliceReader::new(sd.value()).ok()?;
    // version, digestAlgorithms, encapContentInfo
    for _ in 0..3 {
        let _: AnyRef<'_> = r.decode().ok()?;
    }
    let mut out = Vec::new();
    while !r.is_finished() {
        let item: AnyRef<'_> = r.decode().ok()?;
        if item.tag() == explicit0 {
            let mut certs = SliceReader::new(item.value()).ok()?;
            while !certs.is_finished() {
                let c: AnyRef<'_> = certs.decode().ok()?;
                let bytes = c.to_der().ok()?;
                if Certificate::from_der(&bytes).is_ok() {
                    out.push(bytes);
                }
            }
        }
    }
    Some(out)
}

/// Every certificate in a file: PEM (CERTIFICATE and PKCS7 blocks), a DER
/// certificate, or a DER PKCS#7 (`.p7b`, as CAs send a certificate with
/// its chain).
pub fn load_cert_bundle(path: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let bytes = read_limited(path)?;
    cert_bundle(&bytes, &path.display())
}

/// The certificates in `bytes` (a file's content, named `shown` in
/// errors), as [`load_cert_bundle`] reads them.
pub fn cert_bundle(bytes: &[u8], shown: &dyn std::fmt::Display) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let mut rest = text;
            while let Some(start) = rest.find("-----BEGIN ") {
                let block = &rest[start..];
                // The block ends after the dashes closing "-----END LABEL".
                let end = block
                    .find("-----END ")
                    .and_then(|e| block[e + 9..].find("-----").map(|i| e + 9 + i + 5))
                    .ok_or_else(|| CliError::new(format!("{shown}: truncated PEM")))?;
                let (label, der) = der::pem::decode_vec(&block.as_bytes()[..end])
                    .map_err(|e| CliError::new(format!("{shown}: bad PEM: {e}")))?;
                match label {
                    "CERTIFICATE" => out.push(der),
                    "PKCS7" => out.extend(pkcs7_certs(&der).ok_or_else(|| {
                        CliError::new(format!(
                            "{shown}: the PKCS7 block is not a certificate bundle"
                        ))
                    })?),
                    _ => {}
                }
                rest = &block[end..];
            }
        }
        _ => {
            if Certificate::from_der(bytes).is_ok() {
                out.push(bytes.to_vec());
            } else if let Some(certs) = pkcs7_certs(bytes) {
                out.extend(certs);
            } else {
                return Err(CliError::new(format!(
                    "{shown}: not a certificate (PEM, DER or PKCS#7 .p7b)"
                )));
            }
        }
    }
    for der in &out {
        Certificate::from_der(der)
            .map_err(|e| CliError::new(format!("{shown}: not an X.509 certificate: {e}")))?;
    }
    if out.is_empty() {
        return Err(CliError::new(format!("{shown}: no certificate in it")));
    }
    Ok(out)
}

/// A SubjectPublicKeyInfo in one canonical encoding (so keys compare
/// equal however a CA or a module encoded them).
pub fn canonical_spki(spki: &[u8]) -> Result<Vec<u8>> {
    spki_der(&public_key_from_spki(spki)?)
}

/// A subject as `CN=a,O=b` (RFC 4514) or OpenSSL's `/O=b/CN=a`.
pub fn parse_subject(s: &str) -> Result<Name> {
    let rfc4514 = if let Some(rest) = s.strip_prefix('/') {
        let escape = |v: &str| {
            let mut out = String::new();
            for c in v.chars() {
                if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        };
        let parts: Vec<String> = rest
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => format!("{k}={}", escape(v)),
                None => p.to_string(),
            })
            .collect();
        parts.into_iter().rev().collect::<Vec<_>>().join(",")
    } else {
        s.to_string()
    };
    let name = Name::from_str(&rfc4514)
        .map_err(|_| CliError::new(format!("{s:?} is not a subject like CN=Name,O=Org")))?;
    if name.0.is_empty() {
        return Err(CliError::new("the subject is empty"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_and_rfc4514_subjects_agree() {
        let a = parse_subject("CN=Demo User,O=Example Pharma").unwrap();
        let b = parse_subject("/O=Example Pharma/CN=Demo User").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "CN=Demo User,O=Example Pharma");
        assert!(parse_subject("nonsense").is_err());
        assert!(parse_subject("/").is_err());
    }

    #[test]
    fn spki_round_trips_for_ec_keys() {
        let k = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pk = PublicKey::Ec {
            alg: apdu::piv::Algorithm::EccP256,
            point: p256::EncodedPoint::from(k.public_key()).as_bytes().to_vec(),
        };
        let spki = spki_der(&pk).unwrap();
        assert_eq!(public_key_from_spki(&spki).unwrap(), pk);
    }
}
