//! What identifies and describes the card, read once per insertion.

use crate::error::Result;
use apdu::piv::caps::{CardFacts, MetadataSupport};
use apdu::piv::Version;
use apdu::Session;

/// What identifies and describes the card.
#[derive(Debug, Clone)]
pub struct CardInfo {
    /// Serial as shown in CK_TOKEN_INFO (decimal YubiKey serial, else CHUID GUID hex).
    pub serial: String,
    pub version: Option<Version>,
    pub yubikey: bool,
    /// What the card answered when probed (once per insertion): which
    /// optional commands work is decided from these answers.
    pub facts: CardFacts,
}

impl CardInfo {
    pub fn label(&self) -> String {
        format!("UKey PIV #{}", self.serial)
    }

    /// How far GET METADATA can be believed.
    pub fn metadata(&self) -> MetadataSupport {
        self.facts.metadata
    }

    /// The largest RSA key to ask GENERATE for: 4096 where the card claims
    /// firmware 5.7 or later (a card that cannot refuses, which is
    /// reported as CKR_KEY_SIZE_RANGE), else 2048.
    pub fn max_rsa_bits(&self) -> usize {
        if self.version.is_some_and(|v| v >= Version(5, 7, 0)) {
            4096
        } else {
            2048
        }
    }
}

/// The serial shown in CK_TOKEN_INFO (16 characters at most): the card's
/// identity (a CHUID GUID's first 8 bytes in hex), "unknown" without
/// serial or CHUID.
pub(super) fn identity(facts: &CardFacts) -> String {
    let mut id = facts.identity().unwrap_or_else(|| "unknown".into());
    id.truncate(16);
    id
}

/// SELECTed already: who is this card, and what does it answer?
pub(super) fn read_card_info(s: &mut Session<'_>) -> Result<CardInfo> {
    let facts = CardFacts::probe(s)?;
    Ok(CardInfo {
        serial: identity(&facts),
        version: facts.version,
        yubikey: facts.yubikey_extensions(),
        facts,
    })
}
