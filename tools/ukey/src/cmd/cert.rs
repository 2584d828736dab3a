//! `ukey cert import|export|delete`.

use super::{who, write_file, Ctx};
use crate::auth::{authorize, gather_write, prepare_write};
use crate::certs::{load_cert_file, pem, public_key_from_spki, read_cert, CertSummary};
use crate::error::{CliError, Result};
use crate::output;
use crate::slotkey::{Found, Keys};
use crate::verdict::{days_left, judge, Verdict, DEFAULT_WINDOW_DAYS};
use apdu::piv::generated::KeySource;
use apdu::piv::{CertContainer, Slot};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::Path;
use std::time::SystemTime;

/// Largest object a YubiKey stores; bigger certificates go in gzip'd.
const MAX_OBJECT: usize = 3052;

#[derive(Serialize)]
struct Imported {
    slot: String,
    subject: String,
    not_after: String,
    verdict: Verdict,
    compressed: bool,
}

pub fn import(ctx: &mut Ctx, slot: Slot, file: &Path, force: bool) -> Result<()> {
    let der = load_cert_file(file)?;
    let cert = CertSummary::parse(&der)?;
    let cert_key = public_key_from_spki(&cert.spki_der)?;
    let mut t = ctx.token()?;
    let (prep, found) = t.piv(|s| {
        let prep = prepare_write(s)?;
        let current = read_cert(s, slot)?.and_then(|d| CertSummary::parse(&d).ok());
        let found = Keys::new(&prep.info).find(s, slot, current.as_ref())?;
        Ok((prep, found))
    })?;
    match &found {
        // A key the card reports, or ukey recorded when it generated it.
        Found::Key(k)
            if k.source != KeySource::Certificate && k.public != cert_key && !force =>
        {
            return Err(CliError::new(format!(
                "{} is not for the key in slot {slot}: refusing to install it (--force stores it anyway)",
                file.display()
            )))
        }
        Found::NoKey if !force => {
            return Err(CliError::new(format!(
                "slot {slot} holds no key, so the certificate would be useless: refusing \
                 (--force stores it anyway)"
            )))
        }
        Found::Key(k) if k.source == KeySource::Certificate => output::note(
            "note: this token cannot report its public keys (no GET METADATA): the \
             certificate is not checked against the key, only against the one it replaces",
        ),
        Found::Unknown => output::note(
            "note: this token cannot report its public keys (no GET METADATA): the \
             certificate is not checked against the key",
        ),
        _ => {}
    }
    let mut container = CertContainer {
        der: der.clone(),
        compressed: false,
    };
    if container.encode()?.len() > MAX_OBJECT {
        container.compressed = true;
    }
    let content = container.encode()?;
    let auth = gather_write(&prep, &mut ctx.secrets, false)?;
    t.piv(|s| {
        authorize(s, &auth)?;
        s.put_data(slot.cert_object(), &content)?;
        match read_cert(s, slot)? {
            Some(back) if back == der => {}
            _ => {
                return Err(CliError::new(format!(
                    "the certificate read back from slot {slot} differs from the one written"
                )))
            }
        }
        // The certificate shows the key from now on: ukey's record of it goes.
        Keys::new(&prep.info).certificate_written(s, slot)
    })?;
    let now = SystemTime::now();
    let verdict = judge(Some(&cert), now, DEFAULT_WINDOW_DAYS);
    let report = Imported {
        slot: slot.to_string(),
        subject: cert.subject.to_string(),
        not_after: cert.not_after_text.clone(),
        verdict,
        compressed: container.compressed,
    };
    ctx.out.emit(&report, || {
        format!(
            "Certificate for {} written to slot {slot} and read back.\nValid until {} ({}).\n",
            report.subject,
            report.not_after,
            verdict.explain(Some(days_left(cert.not_after, now)), DEFAULT_WINDOW_DAYS)
        )
    })
}

#[derive(Serialize)]
struct Exported {
    slot: String,
    subject: String,
    file: Option<String>,
    pem: Option<String>,
}

pub fn export(ctx: &Ctx, slot: Slot, out: Option<&Path>, as_der: bool) -> Result<()> {
    let mut t = ctx.token()?;
    let der = t
        .piv(|s| read_cert(s, slot))?
        .ok_or_else(|| CliError::new(format!("slot {slot} has no certificate")))?;
    let cert = CertSummary::parse(&der)?;
    let text = pem("CERTIFICATE", &der);
    let bytes = if as_der {
        der.clone()
    } else {
        text.clone().into_bytes()
    };
    if let Some(path) = out {
        write_file(path, &bytes)?;
    }
    let report = Exported {
        slot: slot.to_string(),
        subject: cert.subject.to_string(),
        file: out.map(|p| p.display().to_string()),
        pem: out.is_none().then(|| text.clone()),
    };
    if ctx.out.json {
        return ctx.out.emit(&report, String::new);
    }
    match out {
        Some(p) => output::stdout(
            format!(
                "Certificate for {} from slot {slot} written to {}.\n",
                report.subject,
                p.display()
            )
            .as_bytes(),
        ),
        None if as_der && std::io::stdout().is_terminal() => {
            return Err(CliError::new(
                "refusing to print DER to a terminal: use --out FILE or redirect stdout",
            ))
        }
        None => output::stdout(&bytes),
    }
    Ok(())
}

#[derive(Serialize)]
struct Deleted {
    slot: String,
    deleted: bool,
}

pub fn delete(ctx: &mut Ctx, slot: Slot, yes: bool) -> Result<()> {
    let mut t = ctx.token()?;
    let (prep, der) = t.piv(|s| Ok((prepare_write(s)?, read_cert(s, slot)?)))?;
    let Some(der) = der else {
        let report = Deleted {
            slot: slot.to_string(),
            deleted: false,
        };
        return ctx.out.emit(&report, || {
            format!("Slot {slot} has no certificate: nothing to delete.\n")
        });
    };
    let subject = CertSummary::parse(&der)
        .map(|c| c.subject.to_string())
        .unwrap_or_else(|_| "an unreadable certificate".into());
    output::confirm(
        &format!(
            "Delete the certificate for {subject} from slot {slot} of {}? The key stays; \
             keep a copy of the certificate (ukey cert export) if you may need it.",
            who(prep.info.serial, &t.reader)
        ),
        "yes",
        yes,
        "--yes",
    )?;
    let auth = gather_write(&prep, &mut ctx.secrets, false)?;
    t.piv(|s| {
        authorize(s, &auth)?;
        // On a card that cannot report keys the key would vanish with its
        // certificate: ukey records it first (as after keygen).
        let mut keys = Keys::new(&prep.info);
        if !keys.metadata_works() {
            let current = CertSummary::parse(&der).ok();
            if let Some(k) = keys.find(s, slot, current.as_ref())?.into_key() {
                if k.source == KeySource::Certificate {
                    keys.keep_visible(s, slot, &k.public)?;
                }
            }
        }
        s.delete_data(slot.cert_object())?;
        Ok(())
    })?;
    let report = Deleted {
        slot: slot.to_string(),
        deleted: true,
    };
    ctx.out.emit(&report, || {
        format!("Certificate deleted from slot {slot}.\n")
    })
}
