//! PIV vocabulary: key slots, algorithms, data objects, policies and
//! secrets. Each code ↔ enum table is written once.

use crate::Error;
use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Defines an enum with its byte codes, written once.
macro_rules! byte_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident = $code:expr),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn code(self) -> u8 { match self { $($name::$variant => $code),+ } }
            pub fn from_code(code: u8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

byte_enum! {
    /// Cryptographic algorithm identifiers (SP 800-78-4 Table 6-2, YubiKey additions).
    pub enum Algorithm {
        Tdes = 0x03,
        Aes128 = 0x08,
        Aes192 = 0x0A,
        Aes256 = 0x0C,
        Rsa1024 = 0x06,
        Rsa2048 = 0x07,
        Rsa3072 = 0x05,
        Rsa4096 = 0x16,
        EccP256 = 0x11,
        EccP384 = 0x14,
        Ed25519 = 0xE0,
        X25519 = 0xE1,
    }
}

impl Algorithm {
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Self::Rsa1024 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096
        )
    }
    pub fn is_ec(self) -> bool {
        matches!(self, Self::EccP256 | Self::EccP384)
    }
    pub fn is_symmetric(self) -> bool {
        matches!(
            self,
            Self::Tdes | Self::Aes128 | Self::Aes192 | Self::Aes256
        )
    }
    /// RSA modulus bits, EC field bits, or symmetric key bits.
    pub fn bits(self) -> usize {
        match self {
            Self::Tdes | Self::Aes192 => 192,
            Self::Aes128 => 128,
            Self::Aes256 | Self::EccP256 | Self::Ed25519 | Self::X25519 => 256,
            Self::Rsa1024 => 1024,
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
            Self::EccP384 => 384,
        }
    }
    /// Bytes of a raw RSA block or EC coordinate.
    pub fn size_bytes(self) -> usize {
        self.bits().div_ceil(8)
    }
    /// Symmetric key length in bytes (management keys).
    pub fn key_len(self) -> Option<usize> {
        match self {
            Self::Tdes | Self::Aes192 => Some(24),
            Self::Aes128 => Some(16),
            Self::Aes256 => Some(32),
            _ => None,
        }
    }
    /// Block size of a symmetric algorithm.
    pub fn block_len(self) -> Option<usize> {
        match self {
            Self::Tdes => Some(8),
            Self::Aes128 | Self::Aes192 | Self::Aes256 => Some(16),
            _ => None,
        }
    }
    pub fn rsa_from_bits(bits: usize) -> Option<Self> {
        match bits {
            1024 => Some(Self::Rsa1024),
            2048 => Some(Self::Rsa2048),
            3072 => Some(Self::Rsa3072),
            4096 => Some(Self::Rsa4096),
            _ => None,
        }
    }
    /// Short name as users type it (`p256`, `rsa2048`, `aes192`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Tdes => "3des",
            Self::Aes128 => "aes128",
            Self::Aes192 => "aes192",
            Self::Aes256 => "aes256",
            Self::Rsa1024 => "rsa1024",
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::EccP256 => "p256",
            Self::EccP384 => "p384",
            Self::Ed25519 => "ed25519",
            Self::X25519 => "x25519",
        }
    }
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

byte_enum! {
    /// PIN policy of a key (YubiKey extension, tag AA).
    pub enum PinPolicy {
        Default = 0x00,
        Never = 0x01,
        Once = 0x02,
        Always = 0x03,
        MatchOnce = 0x04,
        MatchAlways = 0x05,
    }
}

byte_enum! {
    /// Touch policy of a key (YubiKey extension, tag AB).
    pub enum TouchPolicy {
        Default = 0x00,
        Never = 0x01,
        Always = 0x02,
        Cached = 0x03,
    }
}

byte_enum! {
    /// Where a key came from (GET METADATA tag 03).
    pub enum KeyOrigin {
        Generated = 0x01,
        Imported = 0x02,
    }
}

/// An asymmetric key slot (SP 800-73-4 Part 1 Table 4b, YubiKey F9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// 9A PIV Authentication.
    Authentication,
    /// 9C Digital Signature (PIN always).
    Signature,
    /// 9D Key Management.
    KeyManagement,
    /// 9E Card Authentication.
    CardAuthentication,
    /// 82..95: retired key management 1..=20.
    Retired(u8),
    /// F9: YubiKey attestation key.
    Attestation,
}

impl Slot {
    /// Every slot that can hold a user key, in PKCS#11 id order.
    pub fn all() -> impl Iterator<Item = Slot> {
        [
            Slot::Authentication,
            Slot::Signature,
            Slot::KeyManagement,
            Slot::CardAuthentication,
        ]
        .into_iter()
        .chain((1..=20).map(Slot::Retired))
    }

    /// The retired slots, 1..=20.
    pub fn retired() -> impl Iterator<Item = Slot> {
        (1..=20).map(Slot::Retired)
    }

    /// Key reference byte (P2 of GENERAL AUTHENTICATE).
    pub fn key_ref(self) -> u8 {
        match self {
            Slot::Authentication => 0x9A,
            Slot::Signature => 0x9C,
            Slot::KeyManagement => 0x9D,
            Slot::CardAuthentication => 0x9E,
            Slot::Retired(n) => 0x81 + n,
            Slot::Attestation => 0xF9,
        }
    }

    pub fn from_key_ref(r: u8) -> Option<Slot> {
        match r {
            0x9A => Some(Slot::Authentication),
            0x9C => Some(Slot::Signature),
            0x9D => Some(Slot::KeyManagement),
            0x9E => Some(Slot::CardAuthentication),
            0x82..=0x95 => Some(Slot::Retired(r - 0x81)),
            0xF9 => Some(Slot::Attestation),
            _ => None,
        }
    }

    /// The certificate data object of this slot.
    pub fn cert_object(self) -> ObjectId {
        match self {
            Slot::Authentication => ObjectId::CERT_9A,
            Slot::Signature => ObjectId::CERT_9C,
            Slot::KeyManagement => ObjectId::CERT_9D,
            Slot::CardAuthentication => ObjectId::CERT_9E,
            Slot::Retired(n) => ObjectId(0x5F_C10C + u32::from(n)),
            Slot::Attestation => ObjectId::ATTESTATION,
        }
    }

    /// The PKCS#11 `CKA_ID` byte (OpenSC's numbering: 01..04, then 05..09
    /// and 10..24 — the decimal-looking strings "05".."24" read as hex).
    pub fn cka_id(self) -> u8 {
        match self {
            Slot::Authentication => 0x01,
            Slot::Signature => 0x02,
            Slot::KeyManagement => 0x03,
            Slot::CardAuthentication => 0x04,
            Slot::Retired(n) => {
                let d = n + 4; // 5..=24, written in decimal digits
                ((d / 10) << 4) | (d % 10)
            }
            Slot::Attestation => 0x25,
        }
    }

    pub fn from_cka_id(id: u8) -> Option<Slot> {
        match id {
            0x01 => Some(Slot::Authentication),
            0x02 => Some(Slot::Signature),
            0x03 => Some(Slot::KeyManagement),
            0x04 => Some(Slot::CardAuthentication),
            0x25 => Some(Slot::Attestation),
            _ => {
                let (hi, lo) = (id >> 4, id & 0x0F);
                if lo > 9 {
                    return None;
                }
                let d = hi * 10 + lo;
                (5..=24).contains(&d).then(|| Slot::Retired(d - 4))
            }
        }
    }

    /// Whether the slot's key needs a fresh PIN for every use by default (9C).
    pub fn default_pin_policy(self) -> PinPolicy {
        match self {
            Slot::Signature => PinPolicy::Always,
            Slot::CardAuthentication => PinPolicy::Never,
            _ => PinPolicy::Once,
        }
    }

    /// The key's label, as OpenSC names PIV keys.
    pub fn key_label(self) -> String {
        match self {
            Slot::Authentication => "PIV AUTH key".into(),
            Slot::Signature => "SIGN key".into(),
            Slot::KeyManagement => "KEY MAN key".into(),
            Slot::CardAuthentication => "CARD AUTH key".into(),
            Slot::Retired(n) => format!("Retired KEY MAN {n}"),
            Slot::Attestation => "ATTESTATION key".into(),
        }
    }

    /// The certificate's label, as OpenSC names PIV certificates.
    pub fn cert_label(self) -> String {
        match self {
            Slot::Authentication => "Certificate for PIV Authentication".into(),
            Slot::Signature => "Certificate for Digital Signature".into(),
            Slot::KeyManagement => "Certificate for Key Management".into(),
            Slot::CardAuthentication => "Certificate for Card Authentication".into(),
            Slot::Retired(n) => format!("Retired Certificate for Key Management {n}"),
            Slot::Attestation => "Attestation Certificate".into(),
        }
    }

    /// Parse the form users type: `9a`, `9c`, `82`, `retired3`, `f9`.
    pub fn parse(s: &str) -> Option<Slot> {
        let s = s.trim().to_ascii_lowercase();
        if let Some(n) = s.strip_prefix("retired") {
            return n
                .parse::<u8>()
                .ok()
                .filter(|n| (1..=20).contains(n))
                .map(Slot::Retired);
        }
        u8::from_str_radix(s.trim_start_matches("0x"), 16)
            .ok()
            .and_then(Slot::from_key_ref)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.key_ref())
    }
}

/// A PIV data object tag (the value of `5C` in GET/PUT DATA).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub u32);

impl ObjectId {
    pub const DISCOVERY: ObjectId = ObjectId(0x7E);
    pub const BIOMETRIC_GROUP_TEMPLATE: ObjectId = ObjectId(0x7F61);
    pub const CARD_CAPABILITY_CONTAINER: ObjectId = ObjectId(0x5F_C107);
    pub const CHUID: ObjectId = ObjectId(0x5F_C102);
    pub const CERT_9A: ObjectId = ObjectId(0x5F_C105);
    pub const FINGERPRINTS: ObjectId = ObjectId(0x5F_C103);
    pub const SECURITY_OBJECT: ObjectId = ObjectId(0x5F_C106);
    pub const FACIAL_IMAGE: ObjectId = ObjectId(0x5F_C108);
    pub const PRINTED_INFORMATION: ObjectId = ObjectId(0x5F_C109);
    pub const CERT_9C: ObjectId = ObjectId(0x5F_C10A);
    pub const CERT_9D: ObjectId = ObjectId(0x5F_C10B);
    pub const KEY_HISTORY: ObjectId = ObjectId(0x5F_C10C);
    pub const CERT_9E: ObjectId = ObjectId(0x5F_C101);
    pub const IRIS_IMAGES: ObjectId = ObjectId(0x5F_C121);
    pub const PAIRING_CODE_REFERENCE: ObjectId = ObjectId(0x5F_C123);
    pub const SM_CERT_SIGNER: ObjectId = ObjectId(0x5F_C122);
    /// YubiKey ADMIN DATA (PIN-protected management key flags, salt).
    pub const ADMIN_DATA: ObjectId = ObjectId(0x5F_FF00);
    /// YubiKey attestation certificate (of the F9 key).
    pub const ATTESTATION: ObjectId = ObjectId(0x5F_FF01);

    /// Whether this is a certificate container (the 24 slots or F9's).
    pub fn cert_slot(self) -> Option<Slot> {
        Slot::all()
            .chain([Slot::Attestation])
            .find(|s| s.cert_object() == self)
    }

    /// Encoded tag bytes as they go into `5C`.
    pub fn tag_bytes(self) -> Vec<u8> {
        crate::tlv::Tag(self.0).to_bytes()
    }

    /// Every object SP 800-73-4 defines, plus the YubiKey ones.
    pub fn all() -> Vec<ObjectId> {
        let mut v = vec![
            Self::CARD_CAPABILITY_CONTAINER,
            Self::CHUID,
            Self::SECURITY_OBJECT,
            Self::FINGERPRINTS,
            Self::FACIAL_IMAGE,
            Self::PRINTED_INFORMATION,
            Self::KEY_HISTORY,
            Self::IRIS_IMAGES,
            Self::SM_CERT_SIGNER,
            Self::PAIRING_CODE_REFERENCE,
            Self::DISCOVERY,
            Self::BIOMETRIC_GROUP_TEMPLATE,
            Self::ADMIN_DATA,
            Self::ATTESTATION,
        ];
        v.extend(Slot::all().map(Slot::cert_object));
        v
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({:X})", self.0)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", self.0)
    }
}

/// PIN or PUK reference for VERIFY / CHANGE REFERENCE DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRef {
    /// 80: the PIV Card Application PIN.
    Pin,
    /// 81: the PIN Unblocking Key.
    Puk,
}

impl PinRef {
    pub fn code(self) -> u8 {
        match self {
            PinRef::Pin => 0x80,
            PinRef::Puk => 0x81,
        }
    }
}

/// A PIN or PUK, padded to 8 bytes with FF as PIV requires. Zeroized on drop;
/// its `Debug` never shows the value.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Pin {
    padded: [u8; 8],
    len: u8,
}

impl Pin {
    /// PIV PINs are 6–8 bytes (SP 800-73-4 Part 2 §2.4.3); so is the PUK.
    pub fn new(value: &[u8]) -> Result<Pin, Error> {
        if !(6..=8).contains(&value.len()) {
            return Err(Error::InvalidArgument("PIN/PUK must be 6 to 8 characters"));
        }
        if value.contains(&0xFF) {
            return Err(Error::InvalidArgument("PIN/PUK must not contain byte FF"));
        }
        let mut padded = [0xFF; 8];
        padded[..value.len()].copy_from_slice(value);
        Ok(Pin {
            padded,
            len: value.len() as u8,
        })
    }

    /// Parse the 8-byte padded form a card receives.
    pub fn from_padded(padded: &[u8]) -> Result<Pin, Error> {
        let padded: [u8; 8] = padded
            .try_into()
            .map_err(|_| Error::InvalidArgument("padded PIN must be 8 bytes"))?;
        let len = padded.iter().position(|b| *b == 0xFF).unwrap_or(8);
        if padded[len..].iter().any(|b| *b != 0xFF) {
            return Err(Error::InvalidArgument("PIN padding is not FF"));
        }
        Pin::new(&padded[..len])
    }

    pub fn padded(&self) -> &[u8; 8] {
        &self.padded
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.padded[..usize::from(self.len)]
    }

    /// Constant-time comparison.
    pub fn ct_eq(&self, other: &Pin) -> bool {
        use subtle::ConstantTimeEq;
        self.padded.ct_eq(&other.padded).into()
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// A management key (9B): algorithm and key bytes, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ManagementKey {
    #[zeroize(skip)]
    alg: Algorithm,
    key: Zeroizing<Vec<u8>>,
}

/// The factory default management key.
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];

impl ManagementKey {
    pub fn new(alg: Algorithm, key: &[u8]) -> Result<Self, Error> {
        match alg.key_len() {
            Some(n) if n == key.len() => Ok(Self {
                alg,
                key: Zeroizing::new(key.to_vec()),
            }),
            Some(_) => Err(Error::InvalidArgument(
                "management key length does not match its algorithm",
            )),
            None => Err(Error::InvalidArgument("not a management key algorithm")),
        }
    }

    /// Parse hex (as users and PKCS#11 SO logins give it).
    pub fn from_hex(alg: Algorithm, hex_str: &str) -> Result<Self, Error> {
        let bytes = Zeroizing::new(
            hex::decode(hex_str.trim())
                .map_err(|_| Error::InvalidArgument("management key is not hex"))?,
        );
        Self::new(alg, &bytes)
    }

    /// Random key of `alg` (for changing the management key).
    pub fn random(alg: Algorithm) -> Result<Self, Error> {
        use rand::RngCore;
        let n = alg
            .key_len()
            .ok_or(Error::InvalidArgument("not a management key algorithm"))?;
        let mut key = Zeroizing::new(vec![0u8; n]);
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self::new(alg, &key)
    }

    pub fn default_for(alg: Algorithm) -> Result<Self, Error> {
        Self::new(alg, &DEFAULT_MANAGEMENT_KEY)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.key
    }

    /// Encrypt one block (ECB), as PIV mutual authentication needs.
    pub fn encrypt_block(&self, block: &[u8]) -> Result<Vec<u8>, Error> {
        super::crypto::block(self.alg, &self.key, block, true)
    }

    /// Decrypt one block (ECB).
    pub fn decrypt_block(&self, block: &[u8]) -> Result<Vec<u8>, Error> {
        super::crypto::block(self.alg, &self.key, block, false)
    }
}

impl fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManagementKey({}, <redacted>)", self.alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_tables_round_trip() {
        let mut ids = std::collections::HashSet::new();
        for slot in Slot::all().chain([Slot::Attestation]) {
            assert_eq!(Slot::from_key_ref(slot.key_ref()), Some(slot));
            assert_eq!(Slot::from_cka_id(slot.cka_id()), Some(slot), "{slot:?}");
            assert_eq!(slot.cert_object().cert_slot(), Some(slot));
            assert!(ids.insert(slot.cka_id()));
        }
    }

    #[test]
    fn opensc_numbering_of_retired_slots() {
        assert_eq!(Slot::Retired(1).key_ref(), 0x82);
        assert_eq!(Slot::Retired(1).cka_id(), 0x05);
        assert_eq!(Slot::Retired(5).cka_id(), 0x09);
        assert_eq!(Slot::Retired(6).key_ref(), 0x87);
        assert_eq!(Slot::Retired(6).cka_id(), 0x10);
        assert_eq!(Slot::Retired(20).key_ref(), 0x95);
        assert_eq!(Slot::Retired(20).cka_id(), 0x24);
        assert_eq!(Slot::Retired(1).cert_object(), ObjectId(0x5F_C10D));
        assert_eq!(Slot::Retired(20).cert_object(), ObjectId(0x5F_C120));
        assert_eq!(Slot::from_cka_id(0x0A), None);
        assert_eq!(Slot::from_cka_id(0x25), Some(Slot::Attestation));
    }

    #[test]
    fn slot_parse() {
        assert_eq!(Slot::parse("9a"), Some(Slot::Authentication));
        assert_eq!(Slot::parse("9C"), Some(Slot::Signature));
        assert_eq!(Slot::parse("82"), Some(Slot::Retired(1)));
        assert_eq!(Slot::parse("retired20"), Some(Slot::Retired(20)));
        assert_eq!(Slot::parse("9b"), None);
        assert_eq!(Slot::parse("zz"), None);
    }

    #[test]
    fn algorithm_codes() {
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_code(a.code()), Some(*a));
            assert_eq!(Algorithm::from_name(a.name()), Some(*a));
        }
        assert_eq!(Algorithm::from_code(0x11), Some(Algorithm::EccP256));
        assert_eq!(Algorithm::from_code(0x99), None);
    }

    #[test]
    fn pin_padding() {
        let p = Pin::new(b"123456").unwrap();
        assert_eq!(p.padded(), b"123456\xFF\xFF");
        assert_eq!(Pin::from_padded(p.padded()).unwrap().as_bytes(), b"123456");
        assert!(Pin::new(b"12345").is_err());
        assert!(Pin::new(b"123456789").is_err());
        assert!(Pin::from_padded(b"1234\xFF5\xFF\xFF").is_err());
        assert_eq!(format!("{p:?}"), "Pin(<redacted>)");
    }

    #[test]
    fn management_key_debug_is_redacted() {
        let k = ManagementKey::default_for(Algorithm::Aes192).unwrap();
        assert!(!format!("{k:?}").contains("01"));
        assert!(ManagementKey::new(Algorithm::Aes128, &[0; 24]).is_err());
        assert!(ManagementKey::new(Algorithm::EccP256, &[0; 32]).is_err());
    }
}
