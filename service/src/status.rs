//! The status model: what `ukey status` reports (and a GUI shows), per
//! token, the PIN/PUK counters (never spending a try), the management key
//! mode, and every slot's key and certificate with its renewal verdict,
//! staged renewals and renewed pairs. The types are `Serialize`: their
//! JSON is the `status` document (docs/ukey-json.schema.json).
//!
//! APDUs, on a card whose GET METADATA works (YubiKey 5.3+): SELECT,
//! version, serial, metadata of PIN, PUK and management key, ADMIN DATA,
//! metadata of all 24 slots, and the certificates of the four main slots
//! and of any retired slot holding a key. Where it does not (older and
//! other makers' cards, found out from their answers): an empty VERIFY for
//! the PIN, the 24 certificate objects (algorithms then come from
//! certificates) and ukey's record of keys it generated there.

use crate::access::{optional, Inventory, Selection, Source, Token};
use crate::certs::{
    canonical_spki, public_key_from_spki, read_cert_lenient, CertReport, CertSummary,
};
use crate::counters::{first_pin_counter, puk_counter, Counter};
use crate::error::Result;
use crate::marker::{key_hash, KeyHash, Marker, MarkerError};
use crate::mgmt::{mgmt_info, MgmtInfo};
use crate::phase::{phase_of, utc, Phase, SlotKeys};
use crate::slotkey::{Found, Keys, SlotKey};
use crate::verdict::{judge, Verdict};
use apdu::piv::caps::KeyAnswer;
use apdu::piv::generated::KeySource;
use apdu::piv::Slot;
use serde::Serialize;
use std::time::SystemTime;

#[derive(Serialize)]
pub struct KeyReport {
    pub algorithm: String,
    /// "metadata" (asked the card), "certificate" (inferred from it) or
    /// "ukey-record" (ukey generated it on a card that cannot report it).
    pub known_from: &'static str,
    pub origin: Option<String>,
    pub pin_policy: Option<String>,
    pub touch_policy: Option<String>,
}

#[derive(Serialize)]
pub struct SlotReport {
    pub slot: String,
    pub role: String,
    pub key: Option<KeyReport>,
    pub certificate: Option<CertReport>,
    pub verdict: Verdict,
    /// Whether the certificate is for the key in the slot (when both are known).
    pub key_matches_certificate: Option<bool>,
    pub problem: Option<String>,
    /// A renewal of this slot is staged (see `ukey renew status`).
    pub renewal: Option<SlotRenewal>,
    /// This retired slot holds the new key of the renewal of that slot.
    pub staged_for: Option<String>,
    /// A renewed pair in this retired slot holds the role of that slot (a
    /// card without MOVE KEY left it here).
    pub renewal_of: Option<SlotLink>,
    /// The role of this slot is held by the renewed pair in that retired
    /// slot: the pair here is the old one (verdict `superseded`).
    pub superseded_by: Option<SlotLink>,
    /// The card said this slot holds no key.
    #[serde(skip)]
    key_absent: bool,
    #[serde(skip)]
    key_hash: Option<KeyHash>,
    #[serde(skip)]
    cert_key_hash: Option<KeyHash>,
    #[serde(skip)]
    cert_not_before: Option<SystemTime>,
}

/// The other slot of a renewed pair left in a retired slot, and when the
/// renewal was installed.
#[derive(Serialize)]
pub struct SlotLink {
    pub slot: String,
    pub renewed: String,
}

/// A staged renewal, next to the slot it renews.
#[derive(Serialize)]
pub struct SlotRenewal {
    pub staged_slot: String,
    pub staged_since: String,
    pub phase: Phase,
    /// What to do next (or not to do).
    pub next: String,
}

#[derive(Serialize)]
pub struct TokenReport {
    pub reader: String,
    pub source: Source,
    pub serial: Option<u32>,
    /// The card's identity where it has no serial: its CHUID's GUID (hex).
    pub chuid_guid: Option<String>,
    pub version: Option<String>,
    /// `null` only on a card without GET METADATA whose PIN is verified in
    /// this card session (an empty VERIFY then gives no count).
    pub pin: Option<Counter>,
    pub puk: Option<Counter>,
    pub management_key: MgmtInfo,
    pub slots: Vec<SlotReport>,
    /// The staging marker cannot be used (and how to clean it up).
    pub renewal_problem: Option<String>,
}

/// The `status` JSON document.
#[derive(Serialize)]
pub struct Report {
    pub window_days: u32,
    pub tokens: Vec<TokenResult>,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum TokenResult {
    Ok(Box<TokenReport>),
    Failed { reader: String, error: String },
}

fn lower<T: std::fmt::Debug>(v: T) -> String {
    format!("{v:?}").to_lowercase()
}

fn key_report(k: &SlotKey) -> KeyReport {
    let md = k.metadata.as_ref();
    KeyReport {
        algorithm: k.public.algorithm().name().to_string(),
        known_from: match k.source {
            KeySource::Metadata => "metadata",
            KeySource::Certificate => "certificate",
            KeySource::Record => "ukey-record",
        },
        origin: match k.source {
            KeySource::Record => Some("generated".into()),
            _ => md.and_then(|m| m.origin).map(lower),
        },
        pin_policy: md.and_then(|m| m.policy).map(|(p, _)| lower(p)),
        touch_policy: md.and_then(|m| m.policy).map(|(_, t)| lower(t)),
    }
}

/// Read one slot: `None` for an empty retired slot (not worth a line).
fn slot_report(
    s: &mut apdu::Session<'_>,
    keys: &mut Keys<'_>,
    slot: Slot,
    now: SystemTime,
    window: u32,
) -> Result<Option<SlotReport>> {
    let main = !matches!(slot, Slot::Retired(_));
    let answer = keys.reported(s, slot)?;
    // Where the card reports keys, an empty retired slot is not read further.
    let cert_der = if main || !keys.metadata_works() || matches!(answer, KeyAnswer::Reported(_)) {
        read_cert_lenient(s, slot)?
    } else {
        None
    };
    let mut problem = None;
    let had_cert = cert_der.is_some();
    let cert = match cert_der.map(|r| r.and_then(|der| CertSummary::parse(&der))) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            problem = Some(format!("unreadable certificate: {}", e.message));
            None
        }
        None => None,
    };
    let found = keys.resolve(s, slot, answer, cert.as_ref())?;
    if !main && found.key().is_none() && !had_cert {
        return Ok(None);
    }
    let cert_key = cert
        .as_ref()
        .and_then(|c| public_key_from_spki(&c.spki_der).ok());
    let key = found.key().map(key_report);
    let key_matches_certificate = match (found.key(), &cert_key) {
        (Some(k), Some(c)) if k.source != KeySource::Certificate => Some(k.public == *c),
        _ => None,
    };
    if matches!(found, Found::NoKey) && cert.is_some() {
        problem = Some("a certificate but no key in this slot".into());
    }
    if key_matches_certificate == Some(false) {
        problem = Some("the certificate is not for the key in this slot".into());
    }
    let mut verdict = judge(cert.as_ref(), now, window);
    if cert.is_some() && problem.is_some() {
        verdict = Verdict::Unusable;
    }
    Ok(Some(SlotReport {
        slot: slot.to_string(),
        role: role(slot),
        key,
        verdict,
        renewal: None,
        staged_for: None,
        renewal_of: None,
        superseded_by: None,
        key_absent: matches!(found, Found::NoKey),
        // The key as the card (or ukey's record) reports it, not as a
        // certificate suggests it.
        key_hash: found
            .key()
            .filter(|k| k.source != KeySource::Certificate)
            .and_then(|k| crate::certs::spki_der(&k.public).ok())
            .map(|d| key_hash(&d)),
        cert_key_hash: cert
            .as_ref()
            .and_then(|c| canonical_spki(&c.spki_der).ok())
            .map(|d| key_hash(&d)),
        cert_not_before: cert.as_ref().map(|c| c.not_before),
        certificate: cert.as_ref().map(|c| c.report(now)),
        key_matches_certificate,
        problem,
    }))
}

/// Human name of a slot's role.
pub fn role(slot: Slot) -> String {
    match slot {
        Slot::Authentication => "PIV Authentication".into(),
        Slot::Signature => "Digital Signature".into(),
        Slot::KeyManagement => "Key Management".into(),
        Slot::CardAuthentication => "Card Authentication".into(),
        Slot::Retired(n) => format!("Retired Key Management {n}"),
        Slot::Attestation => "Attestation".into(),
    }
}

/// Put each staged renewal next to the slot it renews (and its staged
/// slot); report a marker that cannot be used, and keys in retired slots
/// that look left behind by a renewal. One GET DATA (the marker object).
fn annotate_renewals(
    s: &mut apdu::Session<'_>,
    slots: &mut [SlotReport],
    now: SystemTime,
) -> Result<Option<String>> {
    let content = optional(s.get_data(apdu::piv::ObjectId(0x5F_FF10)))?;
    let (marker, problem) = match content
        .as_deref()
        .and_then(|c| crate::marker::from_object(c))
    {
        None => (Marker::new(), None),
        Some(Ok(m)) if m.is_empty() => (
            m,
            Some(
                "an empty renewal marker is on the token (left by an older or interrupted \
                 ukey): `ukey renew clean` removes it"
                    .to_string(),
            ),
        ),
        Some(Ok(m)) => (m, None),
        Some(Err(e @ MarkerError::Newer(_))) => (Marker::new(), Some(e.to_string())),
        Some(Err(e)) => (
            Marker::new(),
            Some(format!(
                "{e}: `ukey renew clean` removes it (keys and certificates stay; a key it \
                 staged then shows as one no renewal claims)"
            )),
        ),
    };
    let find = |slots: &[SlotReport], slot: apdu::piv::Slot| {
        let name = slot.to_string();
        slots.iter().position(|r| r.slot == name)
    };
    let keys_of = |slots: &[SlotReport], i: Option<usize>| {
        i.map(|i| SlotKeys {
            key: slots[i].key_hash,
            cert: slots[i].cert_key_hash,
        })
        .unwrap_or_default()
    };
    for e in &marker.entries {
        let (ti, ri) = (find(slots, e.target), find(slots, e.staged));
        let key_in_r = ri.is_some_and(|i| slots[i].key.is_some());
        let (phase, _) = phase_of(e, keys_of(slots, ti), keys_of(slots, ri), key_in_r);
        let since = utc(e.created);
        let mut next = phase.explain(e);
        if phase == Phase::CertificateWritten {
            if let Some(nb) = ri
                .and_then(|i| slots[i].cert_not_before)
                .filter(|nb| *nb > now)
            {
                let from = der::DateTime::from_system_time(nb)
                    .map(|d| d.to_string())
                    .unwrap_or_default();
                next = format!(
                    "the new certificate is in slot {} and valid from {from}: on or after then, \
                     `ukey renew install CERT` promotes it to {} (the pair in use stays until \
                     then)",
                    e.staged, e.target
                );
            }
        }
        if let Some(i) = ti {
            slots[i].renewal = Some(SlotRenewal {
                staged_slot: e.staged.to_string(),
                staged_since: since.clone(),
                phase,
                next,
            });
        }
        if let Some(i) = ri {
            slots[i].staged_for = Some(e.target.to_string());
        }
    }
    supersessions(slots, &marker);
    for r in slots.iter_mut() {
        let retired = apdu::piv::Slot::parse(&r.slot)
            .is_some_and(|s| matches!(s, apdu::piv::Slot::Retired(_)));
        if retired && r.key.is_some() && r.certificate.is_none() && r.staged_for.is_none() {
            r.problem = Some(format!(
                "a key without a certificate that no staged renewal claims (left by an \
                 interrupted renewal?); if nothing else uses it, `ukey renew clean --slot {}` \
                 deletes it",
                r.slot
            ));
        }
    }
    Ok(problem)
}

/// Renewed pairs in retired slots (see [`crate::supersede`]): the target
/// slot is `superseded`, the retired slot carries its role.
fn supersessions(slots: &mut [SlotReport], marker: &Marker) {
    use crate::supersede::{KeySeen, Seen};
    let find = |slots: &[SlotReport], slot: Slot| {
        let name = slot.to_string();
        slots.iter().position(|r| r.slot == name)
    };
    for target in [
        Slot::Authentication,
        Slot::Signature,
        Slot::KeyManagement,
        Slot::CardAuthentication,
    ] {
        let home = crate::supersede::home::<std::convert::Infallible>(marker, target, |slot| {
            Ok(match find(slots, slot).map(|i| &slots[i]) {
                None => Seen {
                    key: KeySeen::Absent,
                    cert_key: None,
                    cert_not_before: None,
                },
                Some(r) => Seen {
                    key: match (r.key_hash, r.key_absent) {
                        (Some(h), _) => KeySeen::Known(h),
                        (None, true) => KeySeen::Absent,
                        (None, false) => KeySeen::Unknown,
                    },
                    cert_key: r.cert_key_hash,
                    cert_not_before: r.cert_not_before,
                },
            })
        });
        let Ok(Some(home)) = home else { continue };
        let link = |slot: Slot, installed: u64| SlotLink {
            slot: slot.to_string(),
            renewed: utc(installed),
        };
        let live = home.live;
        let superseded = std::iter::once((target, live.installed))
            .chain(home.older.iter().map(|r| (r.slot, r.installed)));
        for (slot, _) in superseded {
            if let Some(i) = find(slots, slot) {
                let s = &mut slots[i];
                s.superseded_by = Some(link(live.slot, live.installed));
                if !matches!(s.verdict, Verdict::Missing | Verdict::Unusable) {
                    s.verdict = Verdict::Superseded;
                }
            }
        }
        for r in std::iter::once(live).chain(home.older.iter().copied()) {
            if let Some(i) = find(slots, r.slot) {
                slots[i].renewal_of = Some(link(target, r.installed));
                slots[i].role = role(target);
            }
        }
    }
}

/// Everything `status` shows about one token.
pub fn token_report(t: &mut Token, window: u32) -> Result<TokenReport> {
    let now = SystemTime::now();
    let (reader, source) = (t.reader.clone(), t.source);
    t.piv(|s| {
        let info = crate::card::read_card_info(s)?.facts;
        let pin = first_pin_counter(s, &info)?;
        let puk = puk_counter(s, &info)?;
        let management_key = mgmt_info(s, &info)?;
        let mut keys = Keys::new(&info);
        let mut slots = Vec::new();
        for slot in Slot::all() {
            if let Some(r) = slot_report(s, &mut keys, slot, now, window)? {
                slots.push(r);
            }
        }
        let renewal_problem = annotate_renewals(s, &mut slots, now)?;
        Ok(TokenReport {
            reader,
            source,
            serial: info.serial,
            chuid_guid: info
                .chuid
                .as_ref()
                .filter(|c| info.serial.is_none() && c.guid.iter().any(|b| *b != 0))
                .map(|c| hex::encode_upper(&c.guid)),
            version: info.version.map(|v| v.to_string()),
            pin,
            puk,
            management_key,
            slots,
            renewal_problem,
        })
    })
}

/// Every token `sel` allows, read as `status` reports it (a token that
/// cannot be read is a `Failed` entry, not the end of the report).
pub fn collect(sel: &Selection, window: u32) -> Result<Report> {
    let tokens = Inventory::scan(sel)?.all(sel)?;
    let mut results = Vec::new();
    for (reader, token) in tokens {
        results.push(match token.and_then(|mut t| token_report(&mut t, window)) {
            Ok(r) => TokenResult::Ok(Box::new(r)),
            Err(e) => TokenResult::Failed {
                // Errors usually name the reader already.
                error: if e.message.contains(&reader) {
                    e.message
                } else {
                    format!("{reader}: {}", e.message)
                },
                reader,
            },
        });
    }
    Ok(Report {
        window_days: window,
        tokens: results,
    })
}
