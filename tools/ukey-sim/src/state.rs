//! The card's memory: a persistent part (the state file) and a volatile
//! part that a power cycle or reset drops.
//!
//! The state file is written atomically (temp file, fsync, rename, fsync
//! of the directory), so a process killed mid-write leaves the old or the
//! new state, never a torn one.

use crate::keys::PrivateKey;
use crate::profile::Profile;
use apdu::piv::{Algorithm, KeyOrigin, PinPolicy, Slot, TouchPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use zeroize::Zeroizing;

/// Bytes that serialize as hex and zeroize on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(pub Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(v: &[u8]) -> Self {
        Self(Zeroizing::new(v.to_vec()))
    }
}

impl core::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "<{} secret bytes>", self.0.len())
    }
}

impl Serialize for SecretBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(hex::encode(&self.0[..])))
    }
}

impl<'de> Deserialize<'de> for SecretBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        hex::decode(&*s)
            .map(|v| SecretBytes(Zeroizing::new(v)))
            .map_err(serde::de::Error::custom)
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A PIN or PUK with its retry counter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Secret {
    /// Value padded to 8 bytes with FF.
    pub value: SecretBytes,
    pub tries_total: u8,
    pub tries_left: u8,
    /// Still the factory default.
    pub is_default: bool,
}

/// The management key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MgmtKey {
    pub algorithm: u8,
    pub key: SecretBytes,
    pub touch: u8,
    pub is_default: bool,
}

/// An asymmetric key in a slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    pub algorithm: u8,
    pub pin_policy: u8,
    pub touch_policy: u8,
    pub origin: u8,
    /// PKCS#8 DER.
    pub private_key: SecretBytes,
}

impl KeyEntry {
    pub fn new(key: &PrivateKey, pin: PinPolicy, touch: TouchPolicy, origin: KeyOrigin) -> Self {
        Self {
            algorithm: key.algorithm().code(),
            pin_policy: pin.code(),
            touch_policy: touch.code(),
            origin: origin.code(),
            private_key: SecretBytes(key.to_pkcs8()),
        }
    }

    pub fn algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_code(self.algorithm)
    }

    pub fn key(&self) -> Option<PrivateKey> {
        PrivateKey::from_pkcs8(self.algorithm()?, &self.private_key.0)
    }

    pub fn pin_policy(&self) -> PinPolicy {
        PinPolicy::from_code(self.pin_policy).unwrap_or(PinPolicy::Once)
    }

    pub fn touch_policy(&self) -> TouchPolicy {
        TouchPolicy::from_code(self.touch_policy).unwrap_or(TouchPolicy::Never)
    }
}

/// What survives power-off: the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Persistent {
    pub format: u32,
    /// Which card this is (see [`crate::profile`]); files from before
    /// profiles existed are YubiKey 5.7 cards.
    #[serde(default)]
    pub profile: Profile,
    pub serial: u32,
    pub version: [u8; 3],
    pub pin: Secret,
    pub puk: Secret,
    pub management_key: MgmtKey,
    /// Keys by key reference (hex, e.g. "9a").
    pub keys: BTreeMap<String, KeyEntry>,
    /// Algorithm of the factory default management key (AES-192 from
    /// firmware 5.7, 3DES before); RESET restores a key of this kind.
    #[serde(default = "default_factory_mgmt_alg")]
    pub factory_management_algorithm: u8,
    /// Data objects by tag (hex, e.g. "5fc105"): the content inside `53`.
    #[serde(with = "objects_serde")]
    pub objects: BTreeMap<u32, Vec<u8>>,
}

mod objects_serde {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Hex(#[serde(with = "hex_bytes")] Vec<u8>);

    pub fn serialize<S: Serializer>(m: &BTreeMap<u32, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<String, Hex> = m
            .iter()
            .map(|(k, v)| (format!("{k:x}"), Hex(v.clone())))
            .collect();
        m.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u32, Vec<u8>>, D::Error> {
        let m: BTreeMap<String, Hex> = BTreeMap::deserialize(d)?;
        m.into_iter()
            .map(|(k, v)| {
                u32::from_str_radix(&k, 16)
                    .map(|k| (k, v.0))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

fn default_factory_mgmt_alg() -> u8 {
    Algorithm::Aes192.code()
}

pub const DEFAULT_PIN: &[u8] = b"123456";
pub const DEFAULT_PUK: &[u8] = b"12345678";
pub const STATE_FORMAT: u32 = 1;

fn padded(v: &[u8]) -> SecretBytes {
    let mut p = Zeroizing::new(vec![0xFF; 8]);
    p[..v.len()].copy_from_slice(v);
    SecretBytes(p)
}

impl Persistent {
    /// A factory-fresh token: default PIN, PUK and management key, no keys
    /// but the attestation key, no data objects but the attestation certificate.
    pub fn factory(serial: u32) -> Self {
        Self::factory_for(Profile::Yk57, serial, None)
    }

    /// A factory-fresh YubiKey 5.7 whose default management key is of
    /// `mgmt_alg` (3DES or AES-192).
    pub fn factory_with(serial: u32, mgmt_alg: Algorithm) -> Self {
        Self::factory_for(Profile::Yk57, serial, Some(mgmt_alg))
    }

    /// A factory-fresh card of `profile`; its default management key is of
    /// `mgmt_alg` (3DES or AES-192) where the card takes it, else of the
    /// profile's factory algorithm.
    pub fn factory_for(profile: Profile, serial: u32, mgmt_alg: Option<Algorithm>) -> Self {
        let spec = profile.spec();
        let mgmt_alg = mgmt_alg
            .map(|a| {
                if a == Algorithm::Tdes {
                    a
                } else {
                    Algorithm::Aes192
                }
            })
            .filter(|a| spec.management_algorithm_ok(*a))
            .unwrap_or(spec.factory_management_algorithm);
        let mut p = Self {
            format: STATE_FORMAT,
            profile,
            serial,
            version: spec.version.unwrap_or([0, 0, 0]),
            pin: Secret {
                value: padded(DEFAULT_PIN),
                tries_total: 3,
                tries_left: 3,
                is_default: true,
            },
            puk: Secret {
                value: padded(DEFAULT_PUK),
                tries_total: 3,
                tries_left: 3,
                is_default: true,
            },
            management_key: MgmtKey {
                algorithm: mgmt_alg.code(),
                key: SecretBytes::new(&apdu::piv::DEFAULT_MANAGEMENT_KEY),
                touch: TouchPolicy::Never.code(),
                is_default: true,
            },
            factory_management_algorithm: mgmt_alg.code(),
            keys: BTreeMap::new(),
            objects: BTreeMap::new(),
        };
        if spec.attestation {
            crate::ca::install_attestation(&mut p);
        }
        p
    }

    /// Back to factory state, keeping profile, serial, version and the
    /// attestation key.
    pub fn reset_application(&mut self) {
        let alg =
            Algorithm::from_code(self.factory_management_algorithm).unwrap_or(Algorithm::Aes192);
        let mut fresh = Self::factory_for(self.profile, self.serial, Some(alg));
        fresh.version = self.version;
        let f9 = format!("{:02x}", Slot::Attestation.key_ref());
        if let Some(k) = self.keys.get(&f9) {
            fresh.keys.insert(f9, k.clone());
        }
        let att = apdu::piv::ObjectId::ATTESTATION.0;
        if let Some(c) = self.objects.get(&att) {
            fresh.objects.insert(att, c.clone());
        }
        *self = fresh;
    }

    pub fn slot_key(slot: Slot) -> String {
        format!("{:02x}", slot.key_ref())
    }

    pub fn key(&self, slot: Slot) -> Option<&KeyEntry> {
        self.keys.get(&Self::slot_key(slot))
    }

    pub fn set_key(&mut self, slot: Slot, entry: KeyEntry) {
        self.keys.insert(Self::slot_key(slot), entry);
    }

    pub fn remove_key(&mut self, slot: Slot) -> Option<KeyEntry> {
        self.keys.remove(&Self::slot_key(slot))
    }

    /// Load a state file: a regular file (never through a symbolic link)
    /// of at most [`MAX_STATE_FILE`] bytes, holding a token.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let bytes = crate::files::read_regular(path, MAX_STATE_FILE)?;
        let p: Persistent = serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a token state file: {e}", path.display()),
            )
        })?;
        if p.format != STATE_FORMAT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("state file format {} not supported", p.format),
            ));
        }
        Ok(p)
    }

    /// Write atomically (temp file in the same directory, fsync, rename,
    /// fsync of the directory), mode 0600 or the stricter mode the file had;
    /// a symbolic link at `path` is refused (see [`crate::files`]).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(self)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
        );
        crate::files::write_atomic(path, &json, crate::files::SECRET_MODE)
    }
}

/// Largest state file loaded: a card full of keys and 16 KiB certificates
/// is well under 2 MiB of JSON.
pub const MAX_STATE_FILE: u64 = 16 << 20;

/// What a power cycle drops.
#[derive(Default)]
pub struct Volatile {
    pub selected: bool,
    pub pin_verified: bool,
    /// A VERIFY happened since the last use of a PIN-always key.
    pub pin_fresh: bool,
    pub mgmt_authenticated: bool,
    /// Pending management-key authentication: what the host must prove.
    pub mgmt_pending: Option<MgmtPending>,
    /// Command chaining in progress: header and data so far.
    pub chain: Option<Chain>,
    /// Response bytes not yet fetched with GET RESPONSE.
    pub pending_response: Zeroizing<Vec<u8>>,
}

pub enum MgmtPending {
    /// We sent an encrypted witness; the host must return it decrypted.
    Witness(Zeroizing<Vec<u8>>),
    /// We sent a challenge; the host must return it encrypted.
    Challenge(Zeroizing<Vec<u8>>),
}

pub struct Chain {
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Zeroizing<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.json");
        let mut p = Persistent::factory(42);
        p.objects.insert(0x5FC102, vec![1, 2, 3]);
        p.save(&path).unwrap();
        let back = Persistent::load(&path).unwrap();
        assert_eq!(back.serial, 42);
        assert_eq!(back.objects.get(&0x5FC102), Some(&vec![1, 2, 3]));
        assert_eq!(back.pin, p.pin);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let p = Persistent::factory(1);
        let s = format!("{p:?}");
        assert!(!s.contains("313233343536"), "{s}");
    }

    #[test]
    fn reset_keeps_attestation() {
        let mut p = Persistent::factory(7);
        p.set_key(
            Slot::Authentication,
            KeyEntry::new(
                &PrivateKey::generate(Algorithm::EccP256).unwrap(),
                PinPolicy::Once,
                TouchPolicy::Never,
                KeyOrigin::Generated,
            ),
        );
        p.pin.tries_left = 0;
        p.reset_application();
        assert!(p.key(Slot::Authentication).is_none());
        assert!(p.key(Slot::Attestation).is_some());
        assert_eq!(p.pin.tries_left, 3);
    }
}
