//! The staging marker: what `ukey renew request` remembers on the token
//! itself, so that the install (days later, maybe on another PC) knows
//! which key was staged for which slot.
//!
//! It is the value of the module's renewal data object (CKO_DATA,
//! CKA_APPLICATION "ukey renewal", stored in 5FFF10), a small versioned
//! BER-TLV with one entry per staged renewal (a user may renew 9C and 9D
//! at once):
//!
//! ```text
//! A0 {                               ukey renewal marker
//!   80 01 version                    (1)
//!   A1 {                             one staged renewal
//!     81 01 target key reference     (9A, 9C, 9D, 9E)
//!     82 01 staged key reference     (a retired slot, 82..95)
//!     83 01 algorithm                (PIV code: 07 RSA-2048, 11 P-256, ...)
//!     84 .. subject of the request   (DER Name)
//!     85 08 created                  (Unix seconds, big-endian)
//!     86 20 SHA-256 of the staged key's SubjectPublicKeyInfo
//!     87 01 claim                    (01 an install is promoting the new
//!   } ...                             pair; 02 a cancel is deleting it)
//!   A2 {                             a renewed pair that stays in a retired
//!     81 01 target key reference       slot (the card has no MOVE KEY)
//!     82 01 retired key reference
//!     85 08 installed                (Unix seconds, big-endian)
//!     86 20 SHA-256 of its key's SubjectPublicKeyInfo
//!   } ...
//! }                                  (86 is absent while the key is generated)
//! ```
//! Unknown tags inside an entry are skipped (later versions may add some);
//! a marker of a newer version is shown but never rewritten. A marker with
//! `A2` records is written as version 2, so that a ukey that knows only
//! version 1 (and would drop them when it rewrites the marker) leaves it
//! alone; one without is version 1, byte for byte as before.
//!
//! The `A2` records are what `ukey status` and the renewal commands know a
//! renewed pair in a retired slot by (see [`crate::supersede`]): `renew
//! install` writes one, in the same compare-and-swap that drops the staged
//! entry, when the card cannot move the new key into the target slot.
//!
//! Every change of the marker is a compare-and-swap on the card (the
//! module writes it only if it still holds what was read), so the claim
//! decides between an install and a cancel running at once, on one
//! machine or two: an install claims the entry before it touches the
//! target slot, a cancel before it deletes the staged key, and each
//! refuses an entry the other has claimed.

use apdu::piv::{Algorithm, Slot};
use apdu::tlv::{self, Builder};
use sha2::{Digest, Sha256};

/// The version of a marker without `A2` records (what older ukey reads).
pub const VERSION: u8 = 1;
/// The version of a marker with `A2` records, the newest this code reads.
pub const VERSION_RENEWED: u8 = 2;

const MARKER: u32 = 0xA0;
const VERSION_TAG: u32 = 0x80;
const ENTRY: u32 = 0xA1;
const TARGET: u32 = 0x81;
const STAGED: u32 = 0x82;
const ALGORITHM: u32 = 0x83;
const SUBJECT: u32 = 0x84;
const CREATED: u32 = 0x85;
const KEY_HASH: u32 = 0x86;
const CLAIM: u32 = 0x87;
const RENEWED: u32 = 0xA2;

/// Who has claimed a staged renewal (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// An install started promoting the new pair into the target slot:
    /// from here only an install may go on.
    Promoting,
    /// A cancel is deleting the staged key: only a cancel may go on.
    Cancelling,
}

impl Claim {
    fn code(self) -> u8 {
        match self {
            Claim::Promoting => 1,
            Claim::Cancelling => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Claim::Promoting),
            2 => Some(Claim::Cancelling),
            _ => None,
        }
    }
}

/// SHA-256 of a SubjectPublicKeyInfo: how the marker names the staged key.
pub type KeyHash = [u8; 32];

pub fn key_hash(spki_der: &[u8]) -> KeyHash {
    Sha256::digest(spki_der).into()
}

/// One staged renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The slot being renewed (its key and certificate stay in use until install).
    pub target: Slot,
    /// The retired slot holding the new key.
    pub staged: Slot,
    pub algorithm: Algorithm,
    /// DER of the request's subject.
    pub subject: Vec<u8>,
    /// Unix seconds.
    pub created: u64,
    /// The staged key; `None` between reserving the slot and generating the key.
    pub key: Option<KeyHash>,
    pub claim: Option<Claim>,
}

/// A renewed pair that stays in a retired slot because the card could not
/// move its key into the target slot (no MOVE KEY): it replaces the pair
/// in the target slot for applications that find keys by certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewed {
    /// The slot whose role the pair took over (9A, 9C, 9D, 9E).
    pub target: Slot,
    /// The retired slot holding it.
    pub slot: Slot,
    /// When the install finished (Unix seconds).
    pub installed: u64,
    /// Its key (checked against the card before the record is believed).
    pub key: KeyHash,
}

/// Every staged renewal on a token, and the renewed pairs in retired slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marker {
    pub version: u8,
    pub entries: Vec<Staged>,
    pub renewed: Vec<Renewed>,
}

/// Why a marker cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerError {
    Malformed(&'static str),
    /// Written by a newer ukey: shown, never rewritten.
    Newer(u8),
}

impl std::fmt::Display for MarkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MarkerError::Malformed(what) => write!(f, "the renewal marker is malformed ({what})"),
            MarkerError::Newer(v) => write!(
                f,
                "the renewal marker was written by a newer ukey (version {v}); update ukey"
            ),
        }
    }
}

fn byte(v: &[u8], what: &'static str) -> Result<u8, MarkerError> {
    match v {
        [b] => Ok(*b),
        _ => Err(MarkerError::Malformed(what)),
    }
}

impl Staged {
    fn parse(content: &[u8]) -> Result<Self, MarkerError> {
        let bad = MarkerError::Malformed;
        let field = |tag: u32, what: &'static str| -> Result<&[u8], MarkerError> {
            tlv::find(content, tag)
                .map_err(|_| bad("entry"))?
                .ok_or(bad(what))
        };
        let target = Slot::from_key_ref(byte(field(TARGET, "target")?, "target")?)
            .filter(|s| !matches!(s, Slot::Retired(_) | Slot::Attestation))
            .ok_or(bad("target slot"))?;
        let staged = Slot::from_key_ref(byte(field(STAGED, "staged slot")?, "staged slot")?)
            .filter(|s| matches!(s, Slot::Retired(_)))
            .ok_or(bad("staged slot"))?;
        let algorithm = Algorithm::from_code(byte(field(ALGORITHM, "algorithm")?, "algorithm")?)
            .filter(|a| a.is_rsa() || a.is_ec())
            .ok_or(bad("algorithm"))?;
        let created = <[u8; 8]>::try_from(field(CREATED, "created")?)
            .map(u64::from_be_bytes)
            .map_err(|_| bad("created"))?;
        let key = match tlv::find(content, KEY_HASH).map_err(|_| bad("entry"))? {
            None => None,
            Some(h) => Some(KeyHash::try_from(h).map_err(|_| bad("key hash"))?),
        };
        let claim = match tlv::find(content, CLAIM).map_err(|_| bad("entry"))? {
            None => None,
            Some(c) => Some(Claim::from_code(byte(c, "claim")?).ok_or(bad("claim"))?),
        };
        Ok(Self {
            target,
            staged,
            algorithm,
            subject: field(SUBJECT, "subject")?.to_vec(),
            created,
            key,
            claim,
        })
    }

    fn encode(&self, b: Builder) -> Builder {
        b.nested(ENTRY, |b| {
            b.add(TARGET, &[self.target.key_ref()])
                .add(STAGED, &[self.staged.key_ref()])
                .add(ALGORITHM, &[self.algorithm.code()])
                .add(SUBJECT, &self.subject)
                .add(CREATED, &self.created.to_be_bytes())
                .add_opt(KEY_HASH, self.key.as_ref().map(|h| &h[..]))
                .add_opt(
                    CLAIM,
                    self.claim.map(|c| [c.code()]).as_ref().map(|c| &c[..]),
                )
        })
    }
}

impl Renewed {
    fn parse(content: &[u8]) -> Result<Self, MarkerError> {
        let bad = MarkerError::Malformed;
        let field = |tag: u32, what: &'static str| -> Result<&[u8], MarkerError> {
            tlv::find(content, tag)
                .map_err(|_| bad("record"))?
                .ok_or(bad(what))
        };
        let target = Slot::from_key_ref(byte(field(TARGET, "record target")?, "record target")?)
            .filter(|s| !matches!(s, Slot::Retired(_) | Slot::Attestation))
            .ok_or(bad("record target"))?;
        let slot = Slot::from_key_ref(byte(field(STAGED, "record slot")?, "record slot")?)
            .filter(|s| matches!(s, Slot::Retired(_)))
            .ok_or(bad("record slot"))?;
        let installed = <[u8; 8]>::try_from(field(CREATED, "installed")?)
            .map(u64::from_be_bytes)
            .map_err(|_| bad("installed"))?;
        let key =
            KeyHash::try_from(field(KEY_HASH, "record key")?).map_err(|_| bad("record key"))?;
        Ok(Self {
            target,
            slot,
            installed,
            key,
        })
    }

    fn encode(&self, b: Builder) -> Builder {
        b.nested(RENEWED, |b| {
            b.add(TARGET, &[self.target.key_ref()])
                .add(STAGED, &[self.slot.key_ref()])
                .add(CREATED, &self.installed.to_be_bytes())
                .add(KEY_HASH, &self.key)
        })
    }
}

/// The marker in the content of the module's renewal object (5FFF10,
/// `80 "ukey renewal" 81 value`): `None` when the object is absent, empty
/// or another application's.
pub fn from_object(content: &[u8]) -> Option<Result<Marker, MarkerError>> {
    let app = tlv::find(content, 0x80u32).ok()??;
    if app != b"ukey renewal" {
        return None;
    }
    let value = tlv::find(content, 0x81u32).ok()??;
    Some(Marker::parse(value))
}

impl Marker {
    pub fn new() -> Self {
        Self {
            version: VERSION,
            entries: Vec::new(),
            renewed: Vec::new(),
        }
    }

    /// Nothing staged and no renewed pair recorded: the object can go.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.renewed.is_empty()
    }

    pub fn parse(value: &[u8]) -> Result<Self, MarkerError> {
        let bad = MarkerError::Malformed;
        let inner = tlv::unwrap(value, MARKER).map_err(|_| bad("outer tag"))?;
        let version = byte(
            tlv::find(inner, VERSION_TAG)
                .map_err(|_| bad("TLV"))?
                .ok_or(bad("version"))?,
            "version",
        )?;
        if version > VERSION_RENEWED {
            return Err(MarkerError::Newer(version));
        }
        if version == 0 {
            return Err(bad("version"));
        }
        let mut entries: Vec<Staged> = Vec::new();
        let mut renewed: Vec<Renewed> = Vec::new();
        for t in tlv::iter(inner) {
            let t = t.map_err(|_| bad("TLV"))?;
            if t.tag == tlv::Tag(RENEWED) {
                let r = Renewed::parse(t.value)?;
                if renewed.iter().any(|o| o.slot == r.slot) {
                    return Err(bad("two records for one slot"));
                }
                renewed.push(r);
            } else if t.tag == tlv::Tag(ENTRY) {
                let e = Staged::parse(t.value)?;
                if entries
                    .iter()
                    .any(|o| o.target == e.target || o.staged == e.staged)
                {
                    return Err(bad("two entries for one slot"));
                }
                entries.push(e);
            }
        }
        Ok(Self {
            version,
            entries,
            renewed,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let version = if self.renewed.is_empty() {
            VERSION
        } else {
            VERSION_RENEWED
        };
        Builder::new()
            .nested(MARKER, |b| {
                let mut b = b.add(VERSION_TAG, &[version]);
                for e in &self.entries {
                    b = e.encode(b);
                }
                for r in &self.renewed {
                    b = r.encode(b);
                }
                b
            })
            .build()
    }

    /// The renewal staged for `target`.
    pub fn for_target(&self, target: Slot) -> Option<&Staged> {
        self.entries.iter().find(|e| e.target == target)
    }

    /// The renewal whose staged key is `key`.
    pub fn for_key(&self, key: &KeyHash) -> Option<&Staged> {
        self.entries.iter().find(|e| e.key.as_ref() == Some(key))
    }

    /// Add or replace the entry for `e.target`.
    pub fn set(&mut self, e: Staged) {
        self.entries.retain(|o| o.target != e.target);
        self.entries.push(e);
    }

    pub fn remove(&mut self, target: Slot) {
        self.entries.retain(|o| o.target != target);
    }

    /// Whether a retired slot is taken by a staged renewal.
    pub fn reserves(&self, slot: Slot) -> bool {
        self.entries.iter().any(|e| e.staged == slot)
    }

    /// Record a renewed pair left in a retired slot (replacing an older
    /// record of that slot).
    pub fn record_renewed(&mut self, r: Renewed) {
        self.renewed.retain(|o| o.slot != r.slot);
        self.renewed.push(r);
    }

    /// The target slot holds its own pair again (promoted): its records go.
    pub fn forget_renewed(&mut self, target: Slot) {
        self.renewed.retain(|o| o.target != target);
    }

    /// The record of the renewed pair in `slot`, if any.
    pub fn renewed_in(&self, slot: Slot) -> Option<&Renewed> {
        self.renewed.iter().find(|r| r.slot == slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn entry(key: Option<KeyHash>) -> Staged {
        Staged {
            target: Slot::Authentication,
            staged: Slot::Retired(1),
            algorithm: Algorithm::Rsa2048,
            subject: hex!("30 0F 31 0D 30 0B 06 03 55 04 03 0C 04 44 65 6D 6F").to_vec(),
            created: 0x6789_ABCD,
            key,
            claim: None,
        }
    }

    #[test]
    fn encodes_to_the_documented_bytes() {
        let m = Marker {
            version: VERSION,
            entries: vec![entry(None)],
            renewed: vec![],
        };
        let bytes = m.encode();
        assert_eq!(
            bytes,
            hex!(
                "A0 2B 80 01 01"
                "A1 26 81 01 9A 82 01 82 83 01 07"
                "84 11 30 0F 31 0D 30 0B 06 03 55 04 03 0C 04 44 65 6D 6F"
                "85 08 00 00 00 00 67 89 AB CD"
            )
        );
        assert_eq!(Marker::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn round_trips_with_a_key_and_two_entries() {
        let mut m = Marker::new();
        m.set(entry(Some([7; 32])));
        m.set(Staged {
            target: Slot::KeyManagement,
            staged: Slot::Retired(6),
            algorithm: Algorithm::EccP256,
            ..entry(None)
        });
        let back = Marker::parse(&m.encode()).unwrap();
        assert_eq!(back, m);
        let mut claimed = m.clone();
        claimed.entries[0].claim = Some(Claim::Promoting);
        claimed.entries[1].claim = Some(Claim::Cancelling);
        assert_eq!(Marker::parse(&claimed.encode()).unwrap(), claimed);
        assert_eq!(
            back.for_key(&[7; 32]).map(|e| e.target),
            Some(Slot::Authentication)
        );
        assert!(back.reserves(Slot::Retired(6)));
        assert_eq!(
            back.for_target(Slot::KeyManagement).unwrap().staged,
            Slot::Retired(6)
        );
        let mut fewer = back.clone();
        fewer.remove(Slot::Authentication);
        assert_eq!(fewer.entries.len(), 1);
    }

    #[test]
    fn renewed_records_round_trip_as_version_2() {
        let mut m = Marker::new();
        m.set(entry(Some([7; 32])));
        m.record_renewed(Renewed {
            target: Slot::Authentication,
            slot: Slot::Retired(1),
            installed: 0x6789_ABCD,
            key: [9; 32],
        });
        let bytes = m.encode();
        // Version 2: a ukey that knows only version 1 shows it and never
        // rewrites it (it would drop the record).
        let back = Marker::parse(&bytes).unwrap();
        assert_eq!(back.entries, m.entries);
        assert_eq!(back.renewed, m.renewed);
        assert_eq!(back.version, 2);
        assert!(!back.is_empty());
        let rec = back.renewed_in(Slot::Retired(1)).unwrap();
        assert_eq!(
            (rec.target, rec.installed, rec.key),
            (Slot::Authentication, 0x6789_ABCD, [9; 32])
        );
        // A newer record of the same slot replaces the older one.
        let mut again = back.clone();
        again.record_renewed(Renewed {
            installed: 1,
            ..rec.clone()
        });
        assert_eq!(again.renewed.len(), 1);
        assert_eq!(again.renewed[0].installed, 1);
        // Promoted into the target: its records go, and with no record
        // left the marker is version 1 again, byte for byte.
        again.forget_renewed(Slot::Authentication);
        assert_eq!(Marker::parse(&again.encode()).unwrap().version, 1);
        again.remove(Slot::Authentication);
        assert!(again.is_empty());
        assert_eq!(Marker::parse(&raw(3, &[])), Err(MarkerError::Newer(3)));
    }

    #[test]
    fn malformed_records_are_errors() {
        let rec = |fields: &[(u32, &[u8])]| {
            Builder::new()
                .nested(MARKER, |b| {
                    b.add(VERSION_TAG, &[2]).nested(RENEWED, |mut b| {
                        for (tag, value) in fields {
                            b = b.add(*tag, value);
                        }
                        b
                    })
                })
                .build()
        };
        let good: [(u32, &[u8]); 4] = [
            (TARGET, &[0x9A]),
            (STAGED, &[0x82]),
            (CREATED, &CREATED_1),
            (KEY_HASH, &[1; 32]),
        ];
        assert_eq!(Marker::parse(&rec(&good)).unwrap().renewed.len(), 1);
        for (i, why) in [(0, "target"), (1, "slot"), (2, "installed"), (3, "key")] {
            let mut missing = good.to_vec();
            missing.remove(i);
            assert!(Marker::parse(&rec(&missing)).is_err(), "no {why}");
        }
        let mut in_9c = good.to_vec();
        in_9c[1] = (STAGED, &[0x9C]);
        assert!(
            Marker::parse(&rec(&in_9c)).is_err(),
            "a record for a primary slot"
        );
        let mut short = good.to_vec();
        short[3] = (KEY_HASH, &[1; 31]);
        assert!(Marker::parse(&rec(&short)).is_err(), "a short key hash");
    }

    /// A marker with one entry made of these raw fields.
    fn raw(version: u8, fields: &[(u32, &[u8])]) -> Vec<u8> {
        Builder::new()
            .nested(MARKER, |b| {
                b.add(VERSION_TAG, &[version]).nested(ENTRY, |mut b| {
                    for (tag, value) in fields {
                        b = b.add(*tag, value);
                    }
                    b
                })
            })
            .build()
    }

    const CREATED_1: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];

    #[test]
    fn unknown_fields_are_skipped_and_newer_versions_refused() {
        let fields: [(u32, &[u8]); 7] = [
            (TARGET, &[0x9C]),
            (STAGED, &[0x83]),
            (ALGORITHM, &[0x11]),
            (SUBJECT, &hex!("30 00")),
            (CREATED, &CREATED_1),
            (KEY_HASH, &[0x11; 32]),
            (0x8F, &[0x00]),
        ];
        let m = Marker::parse(&raw(1, &fields)).unwrap();
        assert_eq!(
            m.entries,
            vec![Staged {
                target: Slot::Signature,
                staged: Slot::Retired(2),
                algorithm: Algorithm::EccP256,
                subject: hex!("30 00").to_vec(),
                created: 1,
                key: Some([0x11; 32]),
                claim: None,
            }]
        );
        // Version 2 adds the A2 records; anything later is refused.
        assert_eq!(Marker::parse(&raw(2, &fields)).unwrap().entries, m.entries);
        assert_eq!(Marker::parse(&raw(3, &fields)), Err(MarkerError::Newer(3)));
    }

    #[test]
    fn malformed_markers_are_errors_not_panics() {
        let good: [(u32, &[u8]); 5] = [
            (TARGET, &[0x9C]),
            (STAGED, &[0x83]),
            (ALGORITHM, &[0x11]),
            (SUBJECT, &hex!("30 00")),
            (CREATED, &CREATED_1),
        ];
        assert!(Marker::parse(&raw(1, &good)).is_ok());
        let with = |tag: u32, value: &'static [u8]| {
            let mut f = good.to_vec();
            f.retain(|(t, _)| *t != tag);
            f.push((tag, value));
            raw(1, &f)
        };
        let without = |tag: u32| {
            let f: Vec<_> = good.iter().copied().filter(|(t, _)| *t != tag).collect();
            raw(1, &f)
        };
        for (bad, why) in [
            (hex!("").to_vec(), "empty"),
            (hex!("A0 00").to_vec(), "no version"),
            (hex!("A0 03 80 01 00").to_vec(), "version 0"),
            (hex!("A1 03 80 01 01").to_vec(), "wrong outer tag"),
            (hex!("A0 05 80 01 01 A1").to_vec(), "truncated"),
            (with(TARGET, &[0x82]), "target in a retired slot"),
            (with(STAGED, &[0x9A]), "staged key in 9A"),
            (with(ALGORITHM, &[0x0A]), "a management key algorithm"),
            (with(KEY_HASH, &[0]), "a key hash of the wrong size"),
            (with(CREATED, &[1, 2]), "a short time"),
            (without(SUBJECT), "no subject"),
            (without(TARGET), "no target"),
            (with(CLAIM, &[3]), "an unknown claim"),
        ] {
            assert!(Marker::parse(&bad).is_err(), "{why}");
        }
    }
}
