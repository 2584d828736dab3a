//! `ukey keygen`: a new key pair generated on the token.

use super::{who, write_file, Ctx};
use crate::auth::{authorize, gather_write, prepare_write};
use crate::certs::{pem, read_cert, spki_der, CertSummary};
use crate::error::Result;
use crate::output::{self, Progress};
use crate::slotkey::Keys;
use apdu::piv::generated::RecordPlace;
use apdu::piv::{Algorithm, PinPolicy, Slot, TouchPolicy};
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct Report {
    slot: String,
    algorithm: &'static str,
    public_key_pem: String,
    replaced_key: bool,
    stale_certificate: Option<String>,
}

pub fn run(
    ctx: &mut Ctx,
    slot: Slot,
    alg: Algorithm,
    force: bool,
    out: Option<&Path>,
) -> Result<()> {
    let mut t = ctx.token()?;
    let (prep, had_key, cert) = t.piv(|s| {
        let prep = prepare_write(s)?;
        let cert = read_cert(s, slot)?.and_then(|d| CertSummary::parse(&d).ok());
        let had_key = Keys::new(&prep.info)
            .find(s, slot, cert.as_ref())?
            .key()
            .is_some();
        Ok((prep, had_key, cert))
    })?;
    if had_key || cert.is_some() {
        let what = match &cert {
            Some(c) => format!("a key with a certificate for {}", c.subject),
            None => "a key".into(),
        };
        output::confirm(
            &format!(
                "Slot {slot} of {} already holds {what}: a new key replaces it for good.",
                who(prep.info.serial, &t.reader)
            ),
            "yes",
            force,
            "--force",
        )?;
    }
    let auth = gather_write(&prep, &mut ctx.secrets, false)?;
    let progress = Progress::start(format!(
        "generating {} key pair on the token{}",
        match alg {
            Algorithm::Rsa2048 => "an RSA-2048",
            Algorithm::EccP384 => "a P-384",
            _ => "a P-256",
        },
        if alg.is_rsa() {
            " (a real card takes up to a minute)"
        } else {
            ""
        }
    ));
    let (pk, recorded) = t.piv(|s| {
        authorize(s, &auth)?;
        let pk = s.generate(slot, alg, PinPolicy::Default, TouchPolicy::Default)?;
        // A card that cannot report the key: keep it visible until its
        // certificate is installed.
        let recorded = Keys::new(&prep.info).keep_visible(s, slot, &pk)?;
        Ok((pk, recorded))
    })?;
    progress.done();
    match recorded {
        Some(RecordPlace::Host(path)) => output::note(format!(
            "note: this token cannot report its keys and keeps no ukey data: the new public key \
             is recorded in {} until its certificate is installed",
            path.display()
        )),
        Some(RecordPlace::Nowhere) => output::warn(
            "this token cannot report its keys, and ukey could not record the new one (the card \
             has no serial or CHUID to file it under): install its certificate now; until then \
             only this output shows the public key",
        ),
        Some(RecordPlace::Card) | None => {}
    }
    let public_key_pem = pem("PUBLIC KEY", &spki_der(&pk)?);
    if let Some(path) = out {
        write_file(path, public_key_pem.as_bytes())?;
    }
    if let Some(c) = &cert {
        output::note(format!(
            "note: the certificate in slot {slot} ({}) is for the old key: get a new one \
             (ukey csr --slot {slot}) and install it (ukey cert import --slot {slot} FILE)",
            c.subject
        ));
    }
    let report = Report {
        slot: slot.to_string(),
        algorithm: alg.name(),
        public_key_pem,
        replaced_key: had_key,
        stale_certificate: cert.map(|c| c.subject.to_string()),
    };
    ctx.out.emit(&report, || match out {
        Some(p) => format!(
            "Generated a new {} key in slot {slot}; public key written to {}.\n",
            report.algorithm,
            p.display()
        ),
        None => report.public_key_pem.clone(),
    })
}
