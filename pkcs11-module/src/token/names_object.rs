//! CKA_ID and CKA_LABEL chosen by applications, kept on the card.
//!
//! A PIV card has no place for a key's label or an application's key ID:
//! every slot shows OpenSC's ID (01..04, 05..24) and labels. Enrollment
//! clients name what they create (NSS sets CKA_ID to the SHA-1 of the public
//! key, certmonger and `certutil -A` give labels, p11tool and OpenSSL's
//! pkcs11-provider send their own CKA_ID and CKA_LABEL) and find it again by
//! those names in another process. They live in one vendor data object:
//!
//! ```text
//! object 5FFF0A (SP 800-73-4 leaves 5FFF00..5FFF15 to the vendor; Yubico
//! uses 5FFF00, 5FFF01 and 5FFF10..5FFF15):
//!   80 "ukey names"   81 01 (format 1)
//!   A1 { 82 key reference, [83 CKA_ID], [84 private-key CKA_LABEL],
//!        [85 public-key CKA_LABEL], [86 certificate CKA_LABEL] }   per named slot
//! ```
//! One CKA_ID per slot (PIV binds a slot's key pair and certificate), one
//! label per object. An ID that names a PIV slot (OpenSC's one-byte IDs) is
//! never stored: the slot's own ID keeps matching searches, the custom one
//! too, and C_GetAttributeValue answers the custom one.
//!
//! The object is read once per insertion and rewritten (one PUT DATA, read
//! back through the cache) under the management key (`token/names.rs`). A card that refuses it
//! keeps the names in memory until it is removed, with one warning.

use crate::error::{Error, Result};
use crate::object::Kind;
use apdu::piv::{ObjectId, Slot};
use apdu::tlv::Builder;
use std::collections::BTreeMap;

/// Where the names live.
pub const NAMES_OBJECT: ObjectId = ObjectId(0x5F_FF0A);
/// The container's application tag.
pub const NAMES_APPLICATION: &str = "ukey names";
const FORMAT: u8 = 1;
/// Longest CKA_ID stored (NSS and p11tool use 20 bytes, pkcs11-provider 16).
pub const MAX_ID_LEN: usize = 64;
/// Longest CKA_LABEL stored.
pub const MAX_LABEL_LEN: usize = 255;
/// Largest object content a YubiKey stores.
pub const MAX_NAMES_LEN: usize = 3052;

/// What applications named in one slot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SlotNames {
    pub id: Option<Vec<u8>>,
    pub private_label: Option<Vec<u8>>,
    pub public_label: Option<Vec<u8>>,
    pub cert_label: Option<Vec<u8>>,
}

impl SlotNames {
    pub fn label(&self, kind: Kind) -> Option<&[u8]> {
        match kind {
            Kind::PrivateKey => self.private_label.as_deref(),
            Kind::PublicKey => self.public_label.as_deref(),
            Kind::Certificate => self.cert_label.as_deref(),
            Kind::Data => None,
        }
    }

    pub fn set_label(&mut self, kind: Kind, label: Option<Vec<u8>>) {
        let l = match kind {
            Kind::PrivateKey => &mut self.private_label,
            Kind::PublicKey => &mut self.public_label,
            Kind::Certificate => &mut self.cert_label,
            Kind::Data => return,
        };
        *l = label;
    }

    fn is_empty(&self) -> bool {
        *self == SlotNames::default()
    }
}

/// Every slot's names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Names {
    slots: BTreeMap<Slot, SlotNames>,
}

impl Names {
    pub fn get(&self, slot: Slot) -> Option<&SlotNames> {
        self.slots.get(&slot)
    }

    /// The slots whose custom CKA_ID is `id`.
    pub fn slots_with_id(&self, id: &[u8]) -> Vec<Slot> {
        self.slots
            .iter()
            .filter(|(_, n)| n.id.as_deref() == Some(id))
            .map(|(s, _)| *s)
            .collect()
    }

    /// Change one slot's names (an empty result removes the entry).
    pub fn update(&mut self, slot: Slot, f: impl FnOnce(&mut SlotNames)) {
        let mut n = self.slots.remove(&slot).unwrap_or_default();
        f(&mut n);
        if !n.is_empty() {
            self.slots.insert(slot, n);
        }
    }

    /// Parse our container; `None` if the object holds something else.
    pub fn parse(content: &[u8]) -> Option<Names> {
        let app = apdu::tlv::find(content, 0x80u32).ok()??;
        if app != NAMES_APPLICATION.as_bytes() {
            return None;
        }
        if apdu::tlv::find(content, 0x81u32).ok()? != Some(&[FORMAT][..]) {
            return None;
        }
        let mut names = Names::default();
        for t in apdu::tlv::iter(content) {
            let t = t.ok()?;
            if t.tag != apdu::Tag(0xA1) {
                continue;
            }
            let slot = match apdu::tlv::find(t.value, 0x82u32).ok()? {
                Some([r]) => Slot::from_key_ref(*r).filter(|s| *s != Slot::Attestation)?,
                _ => return None,
            };
            let field = |tag: u32, max: usize| -> Option<Option<Vec<u8>>> {
                match apdu::tlv::find(t.value, tag).ok()? {
                    Some(v) if v.len() <= max => Some(Some(v.to_vec())),
                    Some(_) => None,
                    None => Some(None),
                }
            };
            let n = SlotNames {
                id: field(0x83, MAX_ID_LEN)?.filter(|id| !names_a_slot(id)),
                private_label: field(0x84, MAX_LABEL_LEN)?,
                public_label: field(0x85, MAX_LABEL_LEN)?,
                cert_label: field(0x86, MAX_LABEL_LEN)?,
            };
            if !n.is_empty() {
                names.slots.insert(slot, n);
            }
        }
        Some(names)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Builder::new()
            .add(0x80u32, NAMES_APPLICATION.as_bytes())
            .add(0x81u32, &[FORMAT]);
        for (slot, n) in &self.slots {
            b = b.nested(0xA1u32, |e| {
                e.add(0x82u32, &[slot.key_ref()])
                    .add_opt(0x83u32, n.id.as_deref())
                    .add_opt(0x84u32, n.private_label.as_deref())
                    .add_opt(0x85u32, n.public_label.as_deref())
                    .add_opt(0x86u32, n.cert_label.as_deref())
            });
        }
        b.build()
    }
}

/// Whether a CKA_ID value is one of OpenSC's slot IDs (never stored: on a
/// private key it means "move the key there").
pub fn names_a_slot(id: &[u8]) -> bool {
    matches!(id, [b] if Slot::from_cka_id(*b).is_some_and(|s| s != Slot::Attestation))
}

/// Check a CKA_ID an application wants stored.
pub fn check_id(id: &[u8]) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Error::AttributeValueInvalid);
    }
    Ok(())
}

/// Check a CKA_LABEL an application wants stored.
pub fn check_label(label: &[u8]) -> Result<()> {
    if label.len() > MAX_LABEL_LEN {
        return Err(Error::AttributeValueInvalid);
    }
    Ok(())
}

/// The names as this insertion knows them.
#[derive(Debug, Clone)]
pub struct NamesState {
    pub names: Names,
    /// Names are written to the card (false: the card refused the object,
    /// or another application's data is there; names last until removal).
    pub on_card: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_slot_ids_are_never_stored() {
        let mut n = Names::default();
        n.update(Slot::Retired(3), |s| {
            s.id = Some(vec![0xAB; 20]);
            s.private_label = Some(b"my key".to_vec());
        });
        n.update(Slot::Authentication, |s| {
            s.cert_label = Some(b"Server-Cert".to_vec())
        });
        let enc = n.encode();
        assert_eq!(Names::parse(&enc), Some(n.clone()));
        assert_eq!(n.slots_with_id(&[0xAB; 20]), [Slot::Retired(3)]);
        assert!(names_a_slot(&[0x01]) && names_a_slot(&[0x24]));
        assert!(!names_a_slot(&[0x25]) && !names_a_slot(&[0x0A]) && !names_a_slot(&[1, 2]));
        // An entry emptied is dropped.
        n.update(Slot::Authentication, |s| s.cert_label = None);
        assert!(n.get(Slot::Authentication).is_none());
        // Someone else's data is not ours.
        assert_eq!(Names::parse(&[0x80, 0x01, 0x00]), None);
        let mut other = enc.clone();
        other[14] = 2; // format 2
        assert_eq!(other[12..15], [0x81, 0x01, 0x02]);
        assert_eq!(Names::parse(&other), None);
    }
}
