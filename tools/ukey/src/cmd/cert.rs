//! `ukey cert import|export|delete`.

use super::{who, write_file, Ctx};
use crate::auth::{authorize, gather_write, prepare_write};
use crate::certs::{load_cert_file, pem, public_key_from_spki, read_cert, CertSummary};
use crate::error::{CliError, Result};
use crate::output;
use crate::token::optional;
use crate::verdict::{days_left, judge, Verdict, DEFAULT_WINDOW_DAYS};
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
    let (prep, md) = t.piv(|s| {
        let prep = prepare_write(s)?;
        let md = if prep.info.has_metadata() {
            optional(s.metadata(slot.key_ref()))?
        } else {
            None
        };
        Ok((prep, md))
    })?;
    match (&md, prep.info.has_metadata()) {
        (Some(md), _) if md.public_key.as_ref() != Some(&cert_key) && !force => {
            return Err(CliError::new(format!(
                "{} is not for the key in slot {slot}: refusing to install it (--force stores it anyway)",
                file.display()
            )))
        }
        (None, true) if !force => {
            return Err(CliError::new(format!(
                "slot {slot} holds no key, so the certificate would be useless: refusing \
                 (--force stores it anyway)"
            )))
        }
        (None, false) => output::note(
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
            Some(back) if back == der => Ok(()),
            _ => Err(CliError::new(format!(
                "the certificate read back from slot {slot} differs from the one written"
            ))),
        }
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
