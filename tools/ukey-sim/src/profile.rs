//! Which PIV card the simulator plays: a profile, chosen at `ukey-sim init
//! --profile NAME` and kept in the state file. The applet's handlers
//! consult the profile's [`Spec`] (plain data) for what the card answers to
//! each optional part of PIV and of the YubiKey extensions, so one applet
//! plays cards that real clients meet:
//!
//! | profile | the card |
//! | --- | --- |
//! | `yk57` | YubiKey 5 with firmware 5.7 (the default): every extension, MOVE KEY, AES-192 default management key |
//! | `yk54` | YubiKey 5 with firmware 5.4: GET METADATA and AES management keys, no MOVE KEY (`6D00`), no RSA-3072/4096; 3DES default key |
//! | `yk4` | YubiKey 4 (4.3): no GET METADATA (`6D00`), no GET SERIAL in PIV, 3DES only, an ATR without extended length (short APDUs, `61xx`) |
//! | `generic` | a PIV card without any YubiKey extension: GET VERSION `6D00`, `6A80` for objects it does not know (the vendor range), no GET CHALLENGE (`6A81`), answers in 256-byte pieces (`61xx` + GET RESPONSE), data to a command without Le only through `61xx`, SELECT only with the full 9-byte AID |
//! | `compat` | a third-party applet imitating a YubiKey: a made-up GET VERSION (6.6.6), GET METADATA answering `9000` with no data except for 9A, `6A80` for unknown objects, no GET CHALLENGE, no MOVE KEY, 256-byte pieces with GET RESPONSE taking only a short Le; its demo card carries a Key History claiming off-card certificates |

use apdu::piv::{Algorithm, Slot};
use serde::{Deserialize, Serialize};

/// A card profile (stored in the state file; older files are `yk57`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Yk57,
    Yk54,
    Yk4,
    Generic,
    Compat,
}

/// How the card answers GET METADATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataMode {
    /// YubiKey 5.3+: PIN, PUK, management key and keys.
    Full,
    /// No such instruction (`6D00`).
    Absent,
    /// `9000` with no data, except real metadata for the key in this slot.
    EmptyExcept(Slot),
}

/// What a profile's card does; consulted by the applet's handlers.
#[derive(Debug)]
pub struct Spec {
    pub profile: Profile,
    pub name: &'static str,
    pub description: &'static str,
    pub atr: &'static [u8],
    /// What GET VERSION answers; `None`: `6D00`.
    pub version: Option<[u8; 3]>,
    /// GET SERIAL (`F8`) exists.
    pub serial: bool,
    pub metadata: MetadataMode,
    /// MOVE KEY / DELETE KEY (`F6`).
    pub move_key: bool,
    /// The other YubiKey extensions: SET MANAGEMENT KEY, SET PIN RETRIES,
    /// RESET, IMPORT, ATTEST (else `6D00`).
    pub yubikey_admin: bool,
    /// ATTEST and the attestation key/certificate (F9, 5FFF01).
    pub attestation: bool,
    /// AES management keys (YubiKey 5.4+).
    pub aes_management_key: bool,
    /// The factory management key's algorithm.
    pub factory_management_algorithm: Algorithm,
    /// GET CHALLENGE (else `6A81`).
    pub challenge: bool,
    /// The vendor objects 5FFF00..5FFF15 (else `6A80`, as for any object
    /// the card does not know).
    pub vendor_objects: bool,
    /// PIN and touch policies (AA, AB) in GENERATE (else `6A80`).
    pub key_policies: bool,
    /// Algorithms GENERATE (and IMPORT) accept.
    pub algorithms: &'static [Algorithm],
    /// Largest piece of a response: more comes with `61xx`, whatever the
    /// Le (`None`: up to the Le).
    pub response_piece: Option<usize>,
    /// GET RESPONSE takes only a short Le (an extended one: `6700`).
    pub short_get_response: bool,
    /// Data to a command sent without Le comes only with `61xx` + GET RESPONSE.
    pub data_needs_le: bool,
    /// SELECT needs the AID up to its version (9 bytes), not the RID.
    pub full_aid: bool,
    /// Demo cards get a Key History claiming this many off-card certificates
    /// (that are nowhere).
    pub demo_off_card_certs: u8,
}

/// ATR of a YubiKey 5 NFC: its historical bytes announce command chaining
/// and extended length, and clients recognise it as a YubiKey.
const ATR_YK5: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];
/// ATR of a YubiKey 4: "Yubikey4" in the historical bytes, no card
/// capabilities (a host uses short APDUs).
const ATR_YK4: [u8; 18] = [
    0x3B, 0xF8, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x59, 0x75, 0x62, 0x69, 0x6B, 0x65, 0x79,
    0x34, 0xD4,
];
/// A T=1 card with "PIV card" as historical bytes: no capabilities.
const ATR_GENERIC: [u8; 13] = [
    0x3B, 0x88, 0x80, 0x01, 0x50, 0x49, 0x56, 0x20, 0x63, 0x61, 0x72, 0x64, 0x72,
];
/// Like a YubiKey 5's (chaining and extended length announced), but
/// "PIVcomp" where a YubiKey says "YubiKey".
const ATR_COMPAT: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x50,
    0x49, 0x56, 0x63, 0x6F, 0x6D, 0x70, 0x6E,
];

const ALL_ALGS: &[Algorithm] = &[
    Algorithm::Rsa1024,
    Algorithm::Rsa2048,
    Algorithm::Rsa3072,
    Algorithm::Rsa4096,
    Algorithm::EccP256,
    Algorithm::EccP384,
];
const YK_ALGS: &[Algorithm] = &[
    Algorithm::Rsa1024,
    Algorithm::Rsa2048,
    Algorithm::EccP256,
    Algorithm::EccP384,
];
const PIV_ALGS: &[Algorithm] = &[Algorithm::Rsa2048, Algorithm::EccP256, Algorithm::EccP384];

static YK57: Spec = Spec {
    profile: Profile::Yk57,
    name: "yk57",
    description: "YubiKey 5, firmware 5.7",
    atr: &ATR_YK5,
    version: Some([5, 7, 1]),
    serial: true,
    metadata: MetadataMode::Full,
    move_key: true,
    yubikey_admin: true,
    attestation: true,
    aes_management_key: true,
    factory_management_algorithm: Algorithm::Aes192,
    challenge: true,
    vendor_objects: true,
    key_policies: true,
    algorithms: ALL_ALGS,
    response_piece: None,
    short_get_response: false,
    data_needs_le: false,
    full_aid: false,
    demo_off_card_certs: 0,
};

static YK54: Spec = Spec {
    profile: Profile::Yk54,
    name: "yk54",
    description: "YubiKey 5, firmware 5.4 (no MOVE KEY)",
    version: Some([5, 4, 3]),
    move_key: false,
    factory_management_algorithm: Algorithm::Tdes,
    algorithms: YK_ALGS,
    ..YK57
};

static YK4: Spec = Spec {
    profile: Profile::Yk4,
    name: "yk4",
    description: "YubiKey 4 (no GET METADATA, 3DES management key)",
    atr: &ATR_YK4,
    version: Some([4, 3, 7]),
    serial: false,
    metadata: MetadataMode::Absent,
    aes_management_key: false,
    ..YK54
};

static GENERIC: Spec = Spec {
    profile: Profile::Generic,
    name: "generic",
    description: "a PIV card without YubiKey extensions",
    atr: &ATR_GENERIC,
    version: None,
    serial: false,
    metadata: MetadataMode::Absent,
    move_key: false,
    yubikey_admin: false,
    attestation: false,
    aes_management_key: true,
    factory_management_algorithm: Algorithm::Tdes,
    challenge: false,
    vendor_objects: false,
    key_policies: false,
    algorithms: PIV_ALGS,
    response_piece: Some(256),
    short_get_response: true,
    data_needs_le: true,
    full_aid: true,
    demo_off_card_certs: 0,
};

static COMPAT: Spec = Spec {
    profile: Profile::Compat,
    name: "compat",
    description: "a third-party PIV applet imitating a YubiKey (version 6.6.6, empty metadata)",
    atr: &ATR_COMPAT,
    version: Some([6, 6, 6]),
    serial: true,
    metadata: MetadataMode::EmptyExcept(Slot::Authentication),
    move_key: false,
    yubikey_admin: true,
    attestation: false,
    aes_management_key: false,
    factory_management_algorithm: Algorithm::Tdes,
    challenge: false,
    vendor_objects: false,
    key_policies: true,
    algorithms: YK_ALGS,
    response_piece: Some(256),
    short_get_response: true,
    data_needs_le: false,
    full_aid: false,
    demo_off_card_certs: 2,
};

impl Profile {
    pub const ALL: [Profile; 5] = [
        Profile::Yk57,
        Profile::Yk54,
        Profile::Yk4,
        Profile::Generic,
        Profile::Compat,
    ];

    pub fn spec(self) -> &'static Spec {
        match self {
            Profile::Yk57 => &YK57,
            Profile::Yk54 => &YK54,
            Profile::Yk4 => &YK4,
            Profile::Generic => &GENERIC,
            Profile::Compat => &COMPAT,
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn from_name(name: &str) -> Option<Profile> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl core::fmt::Display for Profile {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl Spec {
    /// Whether the card knows the data object `tag` at all.
    pub fn knows_object(&self, tag: u32) -> bool {
        match tag {
            0x5F_FF00..=0x5F_FFFF => self.vendor_objects && (tag != 0x5F_FF01 || self.attestation),
            _ => true,
        }
    }

    /// The management key algorithms the card takes.
    pub fn management_algorithm_ok(&self, alg: Algorithm) -> bool {
        match alg {
            Algorithm::Tdes => true,
            Algorithm::Aes128 | Algorithm::Aes192 | Algorithm::Aes256 => self.aes_management_key,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_atrs_are_well_formed() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_name(p.name()), Some(p));
            let atr = p.spec().atr;
            // TCK: the XOR of T0..TCK is zero (T=1 ATRs).
            assert_eq!(atr[1..].iter().fold(0u8, |a, b| a ^ b), 0, "{p}");
        }
        assert!(apdu::atr::parse(YK57.atr).extended_length);
        assert!(apdu::atr::parse(COMPAT.atr).extended_length);
        assert!(!apdu::atr::parse(YK4.atr).extended_length);
        assert!(!apdu::atr::parse(GENERIC.atr).extended_length);
    }

    #[test]
    fn profiles_serialize_by_name() {
        assert_eq!(
            serde_json::to_string(&Profile::Generic).unwrap(),
            "\"generic\""
        );
        assert_eq!(Profile::default(), Profile::Yk57);
    }
}
