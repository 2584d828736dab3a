//! Who the card is and what it answers: one [`CardInfo`], one identity
//! rule, and the firmware thresholds ukey still uses, each written once.
//!
//! What a card can do is probed from its answers ([`CardFacts`]), never
//! read off its version number: GET SERIAL is asked only of a card that
//! answered GET VERSION (the YubiKey extensions), GET METADATA is believed
//! only where it answered the PIN's counter. The version number decides
//! only what no probe can tell without changing the card: the largest RSA
//! key to ask GENERATE for ([`max_rsa_bits`]).

use apdu::piv::caps::{CardFacts, MetadataSupport};
use apdu::piv::Version;
use apdu::Session;

/// The YubiKey firmware versions ukey decides anything by.
pub mod firmware {
    use apdu::piv::Version;

    /// RSA 3072 and 4096 keys (GENERATE), from YubiKey 5.7.
    pub const RSA_4096: Version = Version(5, 7, 0);
}

/// The largest RSA key to ask GENERATE for: 4096 where the card claims
/// firmware 5.7 or later (a card that cannot refuses, which callers
/// report), else 2048.
pub fn max_rsa_bits(version: Option<Version>) -> usize {
    if version.is_some_and(|v| v >= firmware::RSA_4096) {
        4096
    } else {
        2048
    }
}

/// The longest serial shown (CK_TOKEN_INFO's `serialNumber` has 16 characters).
pub const SERIAL_LEN: usize = 16;

/// The card's identity as shown (16 characters at most): its serial
/// (decimal), else its CHUID's GUID (else FASC-N) in hex, "unknown" for a
/// card with neither.
pub fn identity(facts: &CardFacts) -> String {
    let mut id = facts.identity().unwrap_or_else(|| "unknown".into());
    id.truncate(SERIAL_LEN);
    id
}

/// What identifies and describes the card, read once per insertion.
#[derive(Debug, Clone)]
pub struct CardInfo {
    /// [`identity`]: the decimal serial, else CHUID hex.
    pub serial: String,
    pub version: Option<Version>,
    /// The card speaks the YubiKey extensions (it answered GET VERSION).
    pub yubikey: bool,
    /// What the card answered when probed: which optional commands work
    /// is decided from these answers.
    pub facts: CardFacts,
}

impl CardInfo {
    /// The card's description from its probed facts.
    pub fn new(facts: CardFacts) -> Self {
        Self {
            serial: identity(&facts),
            version: facts.version,
            yubikey: facts.yubikey_extensions(),
            facts,
        }
    }

    /// The token's label: "UKey PIV #<identity>".
    pub fn label(&self) -> String {
        format!("UKey PIV #{}", self.serial)
    }

    /// How far GET METADATA can be believed.
    pub fn metadata(&self) -> MetadataSupport {
        self.facts.metadata
    }

    /// [`max_rsa_bits`] of this card.
    pub fn max_rsa_bits(&self) -> usize {
        max_rsa_bits(self.version)
    }
}

/// SELECTed already: who is this card, and what does it answer? GET
/// VERSION, then on a card that answers it GET SERIAL and GET METADATA of
/// the PIN; the CHUID without a serial. 2 to 5 APDUs, no PIN try.
pub fn read_card_info(s: &mut Session<'_>) -> Result<CardInfo, apdu::Error> {
    Ok(CardInfo::new(CardFacts::probe(s)?))
}

/// Only who the card is (GET VERSION, GET SERIAL on a card that answered
/// it, else the CHUID): enough to tell cards apart, or whether a reset
/// card is still the same one.
pub fn read_identity(s: &mut Session<'_>) -> Result<CardFacts, apdu::Error> {
    CardFacts::probe_identity(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apdu::piv::Chuid;

    fn facts(version: Option<Version>, serial: Option<u32>, chuid: Option<Chuid>) -> CardFacts {
        CardFacts {
            version,
            serial,
            chuid,
            metadata: MetadataSupport::Absent,
            pin: None,
        }
    }

    #[test]
    fn rsa_4096_from_firmware_5_7() {
        assert_eq!(max_rsa_bits(None), 2048);
        assert_eq!(max_rsa_bits(Some(Version(5, 4, 3))), 2048);
        assert_eq!(max_rsa_bits(Some(Version(5, 6, 255))), 2048);
        assert_eq!(max_rsa_bits(Some(Version(5, 7, 0))), 4096);
        assert_eq!(max_rsa_bits(Some(Version(5, 7, 1))), 4096);
        assert_eq!(max_rsa_bits(Some(Version(6, 0, 0))), 4096);
        let info = CardInfo::new(facts(Some(Version(5, 7, 2)), Some(1), None));
        assert_eq!(info.max_rsa_bits(), 4096);
    }

    #[test]
    fn identity_is_serial_else_chuid_else_unknown() {
        let info = CardInfo::new(facts(Some(Version(5, 7, 1)), Some(12345678), None));
        assert_eq!(info.serial, "12345678");
        assert_eq!(info.label(), "UKey PIV #12345678");
        assert!(info.yubikey);

        let chuid = Chuid {
            guid: (1..=16).collect(),
            ..Chuid::default()
        };
        let info = CardInfo::new(facts(None, None, Some(chuid)));
        // The GUID in hex, cut to CK_TOKEN_INFO's 16 characters.
        assert_eq!(info.serial, "0102030405060708");
        assert!(!info.yubikey);

        let zero = Chuid {
            guid: vec![0; 16],
            ..Chuid::default()
        };
        assert_eq!(identity(&facts(None, None, Some(zero))), "unknown");
        assert_eq!(identity(&facts(None, None, None)), "unknown");
    }
}
