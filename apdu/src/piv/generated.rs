//! ukey's record of keys it generated on cards that cannot report them.
//!
//! A PIV card without GET METADATA (a YubiKey 4, a plain PIV card, a card
//! whose metadata answers are empty) shows a key only through its
//! certificate. A key generated there has none yet, so the next process
//! would not see it: it could not write the certificate for it, and would
//! take the public key of a slot's *old* certificate for the new key's. So
//! after GENERATE on such a card, the public key is recorded where every
//! later process looks:
//!
//! 1. on the card, in the vendor data object [`GENERATED_KEYS_OBJECT`]
//!    (5FFF0B; every host sees it), where the card keeps it;
//! 2. otherwise (the card answers `6A80` for objects it does not know) in a
//!    host file, `$XDG_STATE_HOME/ukey/generated-keys/<card identity>`
//!    (`~/.local/state/...` without `XDG_STATE_HOME`), the card's identity
//!    being its serial or its CHUID's GUID.
//!
//! An entry goes when the slot's certificate is written or its key is
//! replaced or deleted. Both places hold the same encoding:
//! `80 "ukey generated keys"`, then per key
//! `A0 { 81 key-ref, 01 algorithm, 82 generated-at (u64, Unix seconds), 7F49 { public key } }`.
//! Nothing secret is in it (public keys only); the host file is still
//! private to its user (0600 in a 0700 directory).

use super::{Algorithm, ObjectId, PublicKey, Session, Slot};
use crate::tlv::{self, Builder};
use crate::Error;
use std::path::{Path, PathBuf};

/// The vendor data object (SP 800-73-4 leaves 5FFF00..5FFF15 to the card
/// vendor; YubiKeys keep what is written there).
pub const GENERATED_KEYS_OBJECT: ObjectId = ObjectId(0x5F_FF0B);
const APPLICATION: &[u8] = b"ukey generated keys";
/// Largest host file read (a full record of 24 RSA-4096 keys is ~13 KiB).
const MAX_HOST_FILE: u64 = 64 * 1024;

/// One generated key whose public key the card cannot report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    pub slot: Slot,
    pub public: PublicKey,
    /// When it was generated (Unix seconds): a certificate issued later for
    /// another key means the key was replaced by another tool since.
    pub generated_at: u64,
}

impl GeneratedKey {
    /// A key generated now.
    pub fn now(slot: Slot, public: PublicKey) -> Self {
        let generated_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            slot,
            public,
            generated_at,
        }
    }
}

/// The record: at most one key per slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedKeys {
    keys: Vec<GeneratedKey>,
}

impl GeneratedKeys {
    /// Parse the object's content. `Ok(None)`: it holds another
    /// application's data (never shown, never overwritten). Empty content
    /// is an empty record.
    pub fn parse(content: &[u8]) -> Result<Option<Self>, Error> {
        if content.is_empty() {
            return Ok(Some(Self::default()));
        }
        let m = |_| Error::Malformed("generated keys record");
        match tlv::find(content, 0x80u32) {
            Ok(Some(app)) if app == APPLICATION => {}
            _ => return Ok(None),
        }
        let mut out = Self::default();
        for t in tlv::iter(content) {
            let t = t.map_err(m)?;
            if t.tag.0 != 0xA0 {
                continue;
            }
            let byte = |tag: u32| -> Result<u8, Error> {
                match tlv::require(t.value, tag).map_err(m)? {
                    [b] => Ok(*b),
                    _ => Err(Error::Malformed("generated keys record")),
                }
            };
            let slot = Slot::from_key_ref(byte(0x81)?)
                .filter(|s| *s != Slot::Attestation)
                .ok_or(Error::Malformed("generated keys slot"))?;
            let alg = Algorithm::from_code(byte(0x01)?)
                .filter(|a| !a.is_symmetric())
                .ok_or(Error::Malformed("generated keys algorithm"))?;
            let when: [u8; 8] = tlv::require(t.value, 0x82u32)
                .map_err(m)?
                .try_into()
                .map_err(|_| Error::Malformed("generated keys time"))?;
            let public = PublicKey::parse(alg, tlv::require(t.value, 0x7F49u32).map_err(m)?)?;
            out.set(GeneratedKey {
                slot,
                public,
                generated_at: u64::from_be_bytes(when),
            });
        }
        Ok(Some(out))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Builder::new().add(0x80u32, APPLICATION);
        for k in &self.keys {
            b = b.nested(0xA0u32, |b| {
                b.add(0x81u32, &[k.slot.key_ref()])
                    .add(0x01u32, &[k.public.algorithm().code()])
                    .add(0x82u32, &k.generated_at.to_be_bytes())
                    .add(0x7F49u32, &k.public.encode_content())
            });
        }
        b.build()
    }

    pub fn get(&self, slot: Slot) -> Option<&GeneratedKey> {
        self.keys.iter().find(|k| k.slot == slot)
    }

    /// Add or replace the slot's entry.
    pub fn set(&mut self, key: GeneratedKey) {
        self.keys.retain(|k| k.slot != key.slot);
        self.keys.push(key);
        self.keys.sort_by_key(|k| k.slot);
    }

    /// Drop the slot's entry; whether there was one.
    pub fn remove(&mut self, slot: Slot) -> bool {
        let n = self.keys.len();
        self.keys.retain(|k| k.slot != slot);
        n != self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.keys.iter().map(|k| k.slot)
    }
}

/// Where a key's public half is known from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The card's GET METADATA.
    Metadata,
    /// ukey's record of a key it generated.
    Record,
    /// The slot's certificate.
    Certificate,
}

impl KeySource {
    pub fn name(self) -> &'static str {
        match self {
            KeySource::Metadata => "metadata",
            KeySource::Record => "generated-key record",
            KeySource::Certificate => "certificate",
        }
    }
}

/// The key in a slot of a card that cannot report it: the recorded key,
/// unless the slot's certificate is for another key and was issued after
/// the record was made (another tool replaced the key since); else the
/// certificate's key. `cert` is the certificate's key and its notBefore
/// (Unix seconds).
pub fn resolve<'a>(
    record: Option<&'a GeneratedKey>,
    cert: Option<(&'a PublicKey, u64)>,
) -> Option<(&'a PublicKey, KeySource)> {
    match (record, cert) {
        (Some(r), Some((pk, not_before))) if *pk != r.public && not_before > r.generated_at => {
            Some((pk, KeySource::Certificate))
        }
        (Some(r), _) => Some((&r.public, KeySource::Record)),
        (None, Some((pk, _))) => Some((pk, KeySource::Certificate)),
        (None, None) => None,
    }
}

/// Where a recorded key was put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordPlace {
    /// In the card's object: every host sees it.
    Card,
    /// In this host's file (the card does not keep the object).
    Host(PathBuf),
    /// Nowhere: the card keeps no object and has no identity to key a host
    /// file with (no serial, no CHUID).
    Nowhere,
}

/// What the card's object holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CardStore {
    Ours(GeneratedKeys),
    /// No such object (or the card does not know it).
    Absent,
    /// Another application's data: left alone.
    Foreign,
}

/// The record of one card: its object and this host's file for it.
#[derive(Debug, Clone)]
pub struct KeyRecords {
    card: CardStore,
    host_path: Option<PathBuf>,
    host: GeneratedKeys,
}

impl KeyRecords {
    /// Read the card's object (one GET DATA; the card is SELECTed) and the
    /// host file for the card `identity` (see [`super::caps::CardFacts::identity`]).
    pub fn load(s: &mut Session<'_>, identity: Option<&str>) -> Result<Self, Error> {
        let card = match super::caps::optional(s.get_data_opt(GENERATED_KEYS_OBJECT))?.flatten() {
            None => CardStore::Absent,
            Some(c) => match GeneratedKeys::parse(&c) {
                Ok(Some(k)) => CardStore::Ours(k),
                Ok(None) => CardStore::Foreign,
                Err(e) => {
                    tracing::warn!("unreadable generated-keys record on the card: {e}");
                    CardStore::Foreign
                }
            },
        };
        let host_path = identity.and_then(host_path);
        let host = host_path.as_deref().map(read_host).unwrap_or_default();
        Ok(Self {
            card,
            host_path,
            host,
        })
    }

    /// The recorded key of `slot` (the card's record first).
    pub fn get(&self, slot: Slot) -> Option<&GeneratedKey> {
        match &self.card {
            CardStore::Ours(k) => k.get(slot),
            _ => None,
        }
        .or_else(|| self.host.get(slot))
    }

    /// Slots with a recorded key.
    pub fn slots(&self) -> Vec<Slot> {
        let mut v: Vec<Slot> = match &self.card {
            CardStore::Ours(k) => k.slots().collect(),
            _ => Vec::new(),
        };
        v.extend(self.host.slots());
        v.sort();
        v.dedup();
        v
    }

    /// Record `key` (just generated; the management key is authenticated
    /// in this session): on the card where it keeps the object, else in the
    /// host file. The other place forgets the slot.
    pub fn record(&mut self, s: &mut Session<'_>, key: GeneratedKey) -> Result<RecordPlace, Error> {
        let slot = key.slot;
        if self.card != CardStore::Foreign {
            let mut keys = match &self.card {
                CardStore::Ours(k) => k.clone(),
                _ => GeneratedKeys::default(),
            };
            keys.set(key.clone());
            match s.put_data(GENERATED_KEYS_OBJECT, &keys.encode()) {
                Ok(()) => {
                    self.card = CardStore::Ours(keys);
                    self.forget_on_host(slot);
                    return Ok(RecordPlace::Card);
                }
                Err(e @ Error::Transport(_)) => return Err(e),
                Err(e) => {
                    tracing::info!(
                        "the card keeps no generated-keys record ({e}): recording on this host"
                    );
                }
            }
        }
        let Some(path) = self.host_path.clone() else {
            tracing::warn!(%slot, "the card has no identity to record its generated key under");
            return Ok(RecordPlace::Nowhere);
        };
        let mut host = self.host.clone();
        host.set(key);
        match write_host(&path, &host) {
            Ok(()) => {
                self.host = host;
                Ok(RecordPlace::Host(path))
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot record the generated key: {e}");
                Ok(RecordPlace::Nowhere)
            }
        }
    }

    /// Forget `slot` (its certificate was written, or its key replaced or
    /// deleted). Changing the card's object needs the management key.
    pub fn forget(&mut self, s: &mut Session<'_>, slot: Slot) -> Result<(), Error> {
        if let CardStore::Ours(k) = &self.card {
            if k.get(slot).is_some() {
                let mut keys = k.clone();
                keys.remove(slot);
                let content = if keys.is_empty() {
                    Vec::new()
                } else {
                    keys.encode()
                };
                s.put_data(GENERATED_KEYS_OBJECT, &content)?;
                self.card = CardStore::Ours(keys);
            }
        }
        self.forget_on_host(slot);
        Ok(())
    }

    fn forget_on_host(&mut self, slot: Slot) {
        let Some(path) = &self.host_path else { return };
        if !self.host.remove(slot) {
            return;
        }
        let r = if self.host.is_empty() {
            std::fs::remove_file(path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
        } else {
            write_host(path, &self.host)
        };
        if let Err(e) = r {
            tracing::warn!(path = %path.display(), "cannot update the generated-keys record: {e}");
        }
    }
}

/// The directory of the host files.
pub fn host_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| {
        let p = PathBuf::from(v);
        p.is_absolute().then_some(p)
    };
    std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/state"))
        })
        .map(|d| d.join("ukey").join("generated-keys"))
}

/// The host file of the card `identity` (letters and digits only).
pub fn host_path(identity: &str) -> Option<PathBuf> {
    host_path_in(&host_dir()?, identity)
}

fn host_path_in(dir: &Path, identity: &str) -> Option<PathBuf> {
    let ok = !identity.is_empty()
        && identity.len() <= 64
        && identity.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then(|| dir.join(identity))
}

fn read_host(path: &Path) -> GeneratedKeys {
    use std::io::Read;
    let mut data = Vec::new();
    let r = std::fs::File::open(path).and_then(|f| f.take(MAX_HOST_FILE).read_to_end(&mut data));
    match r {
        Ok(_) => match GeneratedKeys::parse(&data) {
            Ok(Some(k)) => k,
            _ => {
                tracing::warn!(path = %path.display(), "ignoring an unreadable generated-keys record");
                GeneratedKeys::default()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => GeneratedKeys::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read the generated-keys record: {e}");
            GeneratedKeys::default()
        }
    }
}

/// Write atomically: a new temp file (0600) beside it, fsync, rename.
fn write_host(path: &Path, keys: &GeneratedKeys) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no directory"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("no file name"))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let r = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&keys.encode())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tests::Script;
    use hex_literal::hex;

    fn p256(fill: u8) -> PublicKey {
        let mut point = vec![0x04];
        point.extend([fill; 64]);
        PublicKey::Ec {
            alg: Algorithm::EccP256,
            point,
        }
    }

    #[test]
    fn record_round_trip_one_entry_per_slot() {
        let mut r = GeneratedKeys::default();
        r.set(GeneratedKey {
            slot: Slot::Retired(3),
            public: p256(1),
            generated_at: 7,
        });
        r.set(GeneratedKey {
            slot: Slot::Signature,
            public: PublicKey::Rsa {
                modulus: vec![0xC3; 256],
                exponent: vec![1, 0, 1],
            },
            generated_at: 9,
        });
        r.set(GeneratedKey {
            slot: Slot::Retired(3),
            public: p256(2),
            generated_at: 8,
        });
        let back = GeneratedKeys::parse(&r.encode()).unwrap().unwrap();
        assert_eq!(back, r);
        assert_eq!(back.get(Slot::Retired(3)).unwrap().public, p256(2));
        assert_eq!(
            back.slots().collect::<Vec<_>>(),
            [Slot::Signature, Slot::Retired(3)]
        );
        assert_eq!(
            GeneratedKeys::parse(&[]).unwrap(),
            Some(GeneratedKeys::default())
        );
        // Another application's data is not ours; broken entries are malformed.
        assert_eq!(GeneratedKeys::parse(&hex!("80 03 61 62 63")).unwrap(), None);
        let mut bad = r.encode();
        let n = bad.len();
        bad[n - 1] ^= 0xFF;
        bad.truncate(n - 3);
        assert!(GeneratedKeys::parse(&bad).is_err());
    }

    #[test]
    fn corrupted_records_are_malformed_or_round_trip_never_a_panic() {
        let mut r = GeneratedKeys::default();
        r.set(GeneratedKey {
            slot: Slot::Retired(20),
            public: p256(3),
            generated_at: u64::MAX,
        });
        r.set(GeneratedKey {
            slot: Slot::KeyManagement,
            public: PublicKey::Rsa {
                modulus: vec![0xC3; 128],
                exponent: vec![3],
            },
            generated_at: 0,
        });
        let good = r.encode();
        let check = |bytes: &[u8]| match GeneratedKeys::parse(bytes) {
            Ok(Some(k)) => assert_eq!(GeneratedKeys::parse(&k.encode()).unwrap(), Some(k)),
            Ok(None) => {}
            Err(e) => assert!(matches!(e, Error::Malformed(_)), "{e:?}"),
        };
        for i in 0..good.len() {
            check(&good[..i]);
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                check(&bad);
            }
        }
    }

    #[test]
    fn a_later_certificate_for_another_key_wins_over_the_record() {
        let rec = GeneratedKey {
            slot: Slot::Signature,
            public: p256(1),
            generated_at: 1000,
        };
        let old_cert = p256(2);
        // ukey keygen on a slot with a certificate: the old certificate is not the key.
        assert_eq!(
            resolve(Some(&rec), Some((&old_cert, 900))),
            Some((&rec.public, KeySource::Record))
        );
        // Another tool generated again and installed a certificate since.
        assert_eq!(
            resolve(Some(&rec), Some((&old_cert, 2000))),
            Some((&old_cert, KeySource::Certificate))
        );
        assert_eq!(
            resolve(None, Some((&old_cert, 1))),
            Some((&old_cert, KeySource::Certificate))
        );
        assert_eq!(resolve(None, None), None);
    }

    #[test]
    fn host_paths_take_only_plain_identities() {
        let dir = Path::new("/state/ukey/generated-keys");
        assert_eq!(host_path_in(dir, "ABC123").unwrap(), dir.join("ABC123"));
        for bad in ["", "../x", "a/b", "a b", &"9".repeat(65)] {
            assert_eq!(host_path_in(dir, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn recorded_on_the_card_when_it_keeps_the_object_else_on_the_host() {
        // The only test of this crate that sets XDG_STATE_HOME.
        let dir = std::env::temp_dir().join(format!("ukey-gen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::env::set_var("XDG_STATE_HOME", &dir);
        let key = GeneratedKey {
            slot: Slot::Retired(1),
            public: p256(5),
            generated_at: 42,
        };
        let mut expected = GeneratedKeys::default();
        expected.set(key.clone());
        let mut put = hex!("00 DB 3F FF").to_vec();
        let body = Builder::new()
            .add(0x5Cu32, &GENERATED_KEYS_OBJECT.tag_bytes())
            .add(0x53u32, &expected.encode())
            .build();
        put.push(body.len() as u8);
        put.extend(&body);
        // A card that keeps it.
        let mut s = Script::new(&[
            (&hex!("00 CB 3F FF 05 5C 03 5F FF 0B 00"), &hex!("6A 82")),
            (&put, &hex!("90 00")),
        ]);
        let mut sess = Session::new(&mut s, false);
        let mut r = KeyRecords::load(&mut sess, Some("CARD1")).unwrap();
        assert_eq!(r.record(&mut sess, key.clone()).unwrap(), RecordPlace::Card);
        assert_eq!(r.get(Slot::Retired(1)), Some(&key));
        assert!(s.done());
        // A card that does not: the host file, 0600.
        let mut s = Script::new(&[
            (&hex!("00 CB 3F FF 05 5C 03 5F FF 0B 00"), &hex!("6A 80")),
            (&put, &hex!("6A 80")),
        ]);
        let mut sess = Session::new(&mut s, false);
        let mut r = KeyRecords::load(&mut sess, Some("CARD2")).unwrap();
        let place = r.record(&mut sess, key.clone()).unwrap();
        let path = dir.join("ukey/generated-keys/CARD2");
        assert_eq!(place, RecordPlace::Host(path.clone()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A later process finds it; forgetting removes the file.
        let mut s = Script::new(&[(&hex!("00 CB 3F FF 05 5C 03 5F FF 0B 00"), &hex!("6A 80"))]);
        let mut sess = Session::new(&mut s, false);
        let mut again = KeyRecords::load(&mut sess, Some("CARD2")).unwrap();
        assert_eq!(again.get(Slot::Retired(1)), Some(&key));
        again.forget(&mut sess, Slot::Retired(1)).unwrap();
        assert!(!path.exists());
        // No identity, no card object: nowhere (the caller says so).
        let mut s = Script::new(&[
            (&hex!("00 CB 3F FF 05 5C 03 5F FF 0B 00"), &hex!("6A 80")),
            (&put, &hex!("6A 80")),
        ]);
        let mut sess = Session::new(&mut s, false);
        let mut r = KeyRecords::load(&mut sess, None).unwrap();
        assert_eq!(r.record(&mut sess, key).unwrap(), RecordPlace::Nowhere);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
