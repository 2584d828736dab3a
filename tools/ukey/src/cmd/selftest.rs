//! `ukey selftest`: every key on the token signs (verified here) and does a
//! decryption (RSA) or ECDH (EC) round trip; certificates are checked
//! against their keys.

use super::{role, Ctx};
use crate::auth::{announce, first_pin_counter, read_info, verify_pin, CardInfo};
use crate::certs::{public_key_from_spki, read_cert, CertSummary};
use crate::error::{CliError, Result};
use crate::keys;
use crate::output;
use crate::secrets::Kind;
use crate::slotkey::Keys;
use apdu::piv::caps::KeyAnswer;
use apdu::piv::generated::KeySource;
use apdu::piv::{PinPolicy, PublicKey, Slot, TouchPolicy};
use serde::Serialize;

struct KeyUnderTest {
    slot: Slot,
    pk: PublicKey,
    /// The PIN must be verified right before each use (9C, PIN policy always).
    pin_always: bool,
    touch: bool,
    cert_matches: Option<bool>,
}

#[derive(Serialize)]
struct Outcome {
    slot: String,
    role: String,
    algorithm: &'static str,
    sign: String,
    /// "decrypt" for RSA, "ecdh" for EC keys.
    exchange_kind: &'static str,
    exchange: String,
    certificate_matches_key: Option<bool>,
}

#[derive(Serialize)]
struct Report {
    passed: bool,
    keys: Vec<Outcome>,
}

fn result(r: Result<bool>, what: &str) -> String {
    match r {
        Ok(true) => "ok".into(),
        Ok(false) => format!("FAILED: {what} does not check out"),
        Err(e) => format!("FAILED: {}", e.message),
    }
}

fn find_keys(s: &mut apdu::Session<'_>, info: &CardInfo) -> Result<Vec<KeyUnderTest>> {
    let mut keys = Vec::new();
    let mut lookup = Keys::new(info);
    for slot in Slot::all() {
        let answer = lookup.reported(s, slot)?;
        let cert = if matches!(answer, KeyAnswer::Reported(_)) || !lookup.metadata_works() {
            read_cert(s, slot)?.and_then(|d| CertSummary::parse(&d).ok())
        } else {
            None
        };
        let cert_key = cert
            .as_ref()
            .and_then(|c| public_key_from_spki(&c.spki_der).ok());
        // Without working metadata a certificate (or ukey's record of a key
        // it generated) is the only sign of a key.
        let Some(found) = lookup.resolve(s, slot, answer, cert.as_ref())?.into_key() else {
            continue;
        };
        let from_cert = found.source == KeySource::Certificate;
        let (pk, policy) = (found.public, found.metadata.and_then(|m| m.policy));
        let pin_always = match policy {
            Some((p, _)) => matches!(p, PinPolicy::Always | PinPolicy::MatchAlways),
            None => slot == Slot::Signature,
        };
        let touch =
            policy.is_some_and(|(_, t)| matches!(t, TouchPolicy::Always | TouchPolicy::Cached));
        let cert_matches = if from_cert {
            None
        } else {
            cert_key.as_ref().map(|c| *c == pk)
        };
        keys.push(KeyUnderTest {
            slot,
            pk,
            pin_always,
            touch,
            cert_matches,
        });
    }
    Ok(keys)
}

pub fn run(ctx: &mut Ctx) -> Result<()> {
    let mut t = ctx.token()?;
    let (pin, keys) = t.piv(|s| {
        let info = read_info(s)?;
        let pin = first_pin_counter(s, &info)?;
        Ok((pin, find_keys(s, &info)?))
    })?;
    if keys.is_empty() {
        let report = Report {
            passed: true,
            keys: Vec::new(),
        };
        return ctx.out.emit(&report, || {
            "No keys on the token: nothing to test.\n".into()
        });
    }
    announce(Kind::Pin, pin.as_ref())?;
    let pin = ctx.secrets.pin(Kind::Pin)?;
    if keys.iter().any(|k| k.touch) {
        output::note("touch the key each time it blinks");
    }
    let progress = output::Progress::start(format!("testing {} key(s) on the token", keys.len()));
    let outcomes = t.piv(|s| {
        verify_pin(s, &pin)?;
        let mut outcomes = Vec::new();
        for k in &keys {
            let mut msg = b"ukey selftest ".to_vec();
            msg.extend_from_slice(&rand::random::<[u8; 16]>());
            if k.pin_always {
                verify_pin(s, &pin)?;
            }
            let sign =
                keys::sign(s, k.slot, &k.pk, &msg).and_then(|sig| keys::verify(&k.pk, &msg, &sig));
            if k.pin_always {
                verify_pin(s, &pin)?;
            }
            let (exchange_kind, exchange) = match &k.pk {
                PublicKey::Rsa { .. } => (
                    "decrypt",
                    result(
                        keys::rsa_decrypt_round_trip(s, k.slot, &k.pk),
                        "the decryption",
                    ),
                ),
                _ => (
                    "ecdh",
                    result(keys::ecdh_round_trip(s, k.slot, &k.pk), "the shared secret"),
                ),
            };
            outcomes.push(Outcome {
                slot: k.slot.to_string(),
                role: role(k.slot),
                algorithm: k.pk.algorithm().name(),
                sign: result(sign, "the signature"),
                exchange_kind,
                exchange,
                certificate_matches_key: k.cert_matches,
            });
        }
        Ok(outcomes)
    })?;
    progress.done();
    let failures = outcomes
        .iter()
        .map(|o| {
            usize::from(o.sign != "ok")
                + usize::from(o.exchange != "ok")
                + usize::from(o.certificate_matches_key == Some(false))
        })
        .sum::<usize>();
    let report = Report {
        passed: failures == 0,
        keys: outcomes,
    };
    ctx.out.emit(&report, || text(&report))?;
    if failures > 0 {
        return Err(CliError::new(format!(
            "selftest FAILED: {failures} check(s) failed"
        )));
    }
    Ok(())
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    for o in &r.keys {
        s += &format!("Slot {} {} ({}):\n", o.slot, o.role, o.algorithm);
        s += &format!("  sign + verify   {}\n", o.sign);
        s += &format!(
            "  {:<15} {}\n",
            if o.exchange_kind == "decrypt" {
                "decrypt"
            } else {
                "ECDH"
            },
            o.exchange
        );
        match o.certificate_matches_key {
            Some(true) => s += "  certificate     matches the key\n",
            Some(false) => s += "  certificate     FAILED: it is for another key\n",
            None => {}
        }
    }
    if r.passed {
        s += &format!("Selftest passed: {} key(s) work.\n", r.keys.len());
    }
    s
}
