//! Where a staged renewal stands, from what its target and staged slots
//! hold: the phase `ukey status` shows next to a slot and the renewal
//! commands act on.

use crate::marker::{KeyHash, Staged};
use serde::Serialize;

/// Where a staged renewal stands, read from the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The slot is reserved; the key generation did not finish.
    KeyPending,
    /// The new key is in the retired slot: waiting for the CA.
    AwaitingCertificate,
    /// The certificate is next to the new key in the retired slot.
    CertificateWritten,
    /// The target slot holds the new certificate; the key is still to move.
    Promoting,
    /// The new key is in the target slot: only clean-up is left.
    Promoted,
    /// The staged key is nowhere on the token.
    KeyMissing,
}

impl Phase {
    /// What to do next, in a sentence.
    pub fn explain(self, e: &Staged) -> String {
        let (t, r) = (e.target, e.staged);
        if e.claim == Some(crate::marker::Claim::Cancelling) && self != Phase::Promoted {
            return format!(
                "a cancel of this renewal did not finish: `ukey renew cancel --slot {t}` \
                 finishes it (slot {t} keeps its key and certificate)"
            );
        }
        match self {
            Phase::KeyPending => format!(
                "the key generation in slot {r} did not finish: run `ukey renew request --slot {t}` \
                 again, or `ukey renew cancel --slot {t}`"
            ),
            Phase::AwaitingCertificate => format!(
                "waiting for the CA's certificate (do not apply again): install it with \
                 `ukey renew install CERT`; \
                 slot {t} keeps its key and certificate until then"
            ),
            Phase::CertificateWritten => format!(
                "the certificate is in slot {r} next to the new key; the install stopped before \
                 promoting it to {t}: run `ukey renew install CERT` again"
            ),
            Phase::Promoting => format!(
                "the install is promoting the new pair to {t} (it stopped halfway): run \
                 `ukey renew install CERT` again; the complete new pair is in slot {r}"
            ),
            Phase::Promoted => format!(
                "the new key and certificate are in {t}; clean-up of slot {r} is left: run \
                 `ukey renew install CERT` again"
            ),
            Phase::KeyMissing => format!(
                "the staged key is no longer on the token: `ukey renew cancel --slot {t}`, then \
                 request again"
            ),
        }
    }

    /// Whether the install already changed the target slot (no way back).
    pub fn past_the_point_of_no_return(self) -> bool {
        matches!(self, Phase::Promoting | Phase::Promoted)
    }
}

/// What a slot holds, by key hash (for [`phase_of`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotKeys {
    /// The key in the slot (`None`: no key).
    pub key: Option<KeyHash>,
    /// The key its certificate certifies (`None`: no usable certificate).
    pub cert: Option<KeyHash>,
}

/// Where `e` stands, from what its target and staged slots hold.
pub fn phase_of(e: &Staged, target: SlotKeys, staged: SlotKeys, key_in_r: bool) -> (Phase, bool) {
    let Some(hash) = e.key else {
        return (Phase::KeyPending, key_in_r);
    };
    if target.key == Some(hash) {
        return (Phase::Promoted, false);
    }
    if staged.key != Some(hash) {
        return (Phase::KeyMissing, false);
    }
    let phase = if target.cert == Some(hash) {
        Phase::Promoting
    } else if staged.cert == Some(hash) {
        Phase::CertificateWritten
    } else {
        Phase::AwaitingCertificate
    };
    (phase, true)
}

/// "2026-01-31" for Unix seconds.
pub fn day(secs: u64) -> String {
    let t = utc(secs);
    t.get(..10).unwrap_or(&t).to_string()
}

/// "2026-01-31T10:00:00Z" for Unix seconds.
pub fn utc(secs: u64) -> String {
    der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map(|d| d.to_string())
        .unwrap_or_else(|_| format!("{secs} (Unix time)"))
}
