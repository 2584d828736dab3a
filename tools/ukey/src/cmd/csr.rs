//! `ukey csr`: a PKCS#10 request for the key in a slot, signed on the
//! token and verified here before it is written out.

use super::{write_file, Ctx};
use crate::auth::{announce, first_pin_counter, read_info, verify_pin};
use crate::certs::{parse_subject, pem, read_cert, spki_der, CertSummary};
use crate::error::{CliError, Result};
use crate::keys;
use crate::output;
use crate::secrets::Kind;
use crate::slotkey::Keys;
use apdu::piv::{PinPolicy, PublicKey, Slot, TouchPolicy};
use der::asn1::{BitString, SetOfVec};
use der::{Decode, Encode};
use serde::Serialize;
use spki::SubjectPublicKeyInfoOwned;
use std::path::Path;
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

#[derive(Serialize)]
struct Report {
    slot: String,
    subject: String,
    algorithm: &'static str,
    file: Option<String>,
    csr_pem: String,
}

/// Build a request for `pk` (the key in `slot`) and have the token sign it.
/// The PIN must already be verified in this transaction.
pub fn build(
    s: &mut apdu::Session<'_>,
    slot: Slot,
    pk: &PublicKey,
    subject: Name,
) -> Result<Vec<u8>> {
    build_with(slot, pk, subject, |tbs| keys::sign(s, slot, pk, tbs))
}

/// Build a request for `pk` (the key in `slot`) signed by `sign` (which gets
/// the DER of the CertificationRequestInfo and returns the signature as
/// X.509 carries it); the signature is verified here before it is used.
pub fn build_with(
    slot: Slot,
    pk: &PublicKey,
    subject: Name,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(&spki_der(pk)?)
        .map_err(|e| CliError::new(format!("public key: {e}")))?;
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: spki,
        attributes: SetOfVec::new(),
    };
    let tbs = info
        .to_der()
        .map_err(|e| CliError::new(format!("encoding the request: {e}")))?;
    let algorithm = keys::signature_algorithm(pk)?;
    let sig = sign(&tbs)?;
    if !keys::verify(pk, &tbs, &sig)? {
        return Err(CliError::new(format!(
            "the token's signature does not verify with the public key of slot {slot}"
        )));
    }
    let req = CertReq {
        info,
        algorithm,
        signature: BitString::from_bytes(&sig)
            .map_err(|e| CliError::new(format!("signature: {e}")))?,
    };
    req.to_der()
        .map_err(|e| CliError::new(format!("encoding the request: {e}")))
}

pub fn run(ctx: &mut Ctx, slot: Slot, subject: Option<&str>, out: Option<&Path>) -> Result<()> {
    let mut t = ctx.token()?;
    let (pin, key, cert) = t.piv(|s| {
        let info = read_info(s)?;
        let pin = first_pin_counter(s, &info)?;
        let cert = read_cert(s, slot)?.and_then(|d| CertSummary::parse(&d).ok());
        // The key itself (GET METADATA, or where the card cannot tell, ukey's
        // record of a key it generated, before an older certificate's key).
        let key = Keys::new(&info).find(s, slot, cert.as_ref())?.into_key();
        Ok((pin, key, cert))
    })?;
    let Some(key) = key else {
        return Err(CliError::new(format!("slot {slot} holds no key")));
    };
    let pk = key.public.clone();
    let md = key.metadata;
    let subject = match (subject, &cert) {
        (Some(s), _) => parse_subject(s)?,
        (None, Some(c)) => c.subject.clone(),
        (None, None) => {
            return Err(CliError::new(format!(
                "slot {slot} has no certificate to take the subject from: give --subject"
            )))
        }
    };
    // A key whose PIN policy is "never" (9E by default) signs without the
    // PIN: do not ask for one the operation does not need.
    let policy = md
        .as_ref()
        .and_then(|m| m.policy)
        .map(|(p, _)| p)
        .unwrap_or_else(|| slot.default_pin_policy());
    let pin = if policy == PinPolicy::Never {
        None
    } else {
        announce(Kind::Pin, pin.as_ref())?;
        Some(ctx.secrets.pin(Kind::Pin)?)
    };
    if md
        .and_then(|m| m.policy)
        .is_some_and(|(_, t)| matches!(t, TouchPolicy::Always | TouchPolicy::Cached))
    {
        output::note("touch the key when it blinks");
    }
    let subject_text = subject.to_string();
    let der = t.piv(|s| {
        if let Some(pin) = &pin {
            verify_pin(s, pin)?;
        }
        build(s, slot, &pk, subject)
    })?;
    let csr_pem = pem("CERTIFICATE REQUEST", &der);
    if let Some(p) = out {
        write_file(p, csr_pem.as_bytes())?;
    }
    let report = Report {
        slot: slot.to_string(),
        subject: subject_text,
        algorithm: pk.algorithm().name(),
        file: out.map(|p| p.display().to_string()),
        csr_pem,
    };
    ctx.out.emit(&report, || match out {
        Some(p) => format!(
            "Request for {} (key in slot {slot}, signed on the token) written to {}.\n",
            report.subject,
            p.display()
        ),
        None => report.csr_pem.clone(),
    })
}
