//! The card's objects as PKCS#11 shows them: certificates and keys per PIV
//! slot, read lazily and cached per insertion; ukey's record of generated
//! keys on cards without GET METADATA.

use super::convert;
use super::state::{SlotContents, Token, TokenState};
use crate::error::Result;
use crate::key::PublicKey;
use crate::keyinfo::{CertInfo, KeyInfo};
use apdu::piv::caps::{KeyAnswer, MetadataSupport};
use apdu::piv::generated::{self, KeyRecords, KeySource};
use apdu::piv::{CertContainer, KeyHistory, ObjectId, Slot};
use apdu::Session;
use std::sync::Arc;

impl Token {
    pub(super) fn cert_lookup(s: &mut Session<'_>, slot: Slot) -> Result<Option<Arc<CertInfo>>> {
        let content = match s.get_data_opt(slot.cert_object()) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match CertContainer::parse(&content) {
            Ok(Some(c)) => match CertInfo::parse(&c.der) {
                Ok(info) => Ok(Some(Arc::new(info))),
                Err(e) => {
                    tracing::warn!(%slot, "unusable certificate on the card: {e}");
                    Ok(None)
                }
            },
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::warn!(%slot, "unusable certificate container: {e}");
                Ok(None)
            }
        }
    }

    pub(super) fn cert_cached(
        s: &mut Session<'_>,
        st: &mut TokenState,
        slot: Slot,
    ) -> Result<Option<Arc<CertInfo>>> {
        if let Some(c) = st.slots.get(&slot).and_then(|c| c.cert.clone()) {
            return Ok(c);
        }
        let c = Self::cert_lookup(s, slot)?;
        st.slots.entry(slot).or_default().cert = Some(c.clone());
        Ok(c)
    }

    /// The key in `slot`: GET METADATA where the card can tell; where it
    /// cannot, ukey's record of a key it generated there, or the slot's
    /// certificate (see `apdu::piv::generated::resolve`).
    pub(super) fn key_cached(
        s: &mut Session<'_>,
        st: &mut TokenState,
        slot: Slot,
    ) -> Result<Option<Arc<KeyInfo>>> {
        if let Some(k) = st.slots.get(&slot).and_then(|c| c.key.clone()) {
            return Ok(k);
        }
        let answer = match &st.info {
            Some(info) => info.facts.key(s, slot)?,
            None => KeyAnswer::CannotTell,
        };
        let k = match answer {
            KeyAnswer::Reported(md) => Some(Arc::new(convert::key_from_metadata(slot, &md)?)),
            KeyAnswer::Empty => None,
            KeyAnswer::CannotTell => {
                let cert = Self::cert_cached(s, st, slot)?;
                let cert_public = cert
                    .as_deref()
                    .map(|c| (convert::piv_public(&c.public), c.not_before_unix));
                let records = Self::records(s, st)?;
                match generated::resolve(
                    records.get(slot),
                    cert_public.as_ref().map(|(p, t)| (p, *t)),
                ) {
                    Some((pk, KeySource::Record)) => {
                        Some(Arc::new(convert::key_from_record(slot, pk)?))
                    }
                    Some(_) => cert.map(|c| Arc::new(convert::key_from_cert(slot, &c))),
                    None => None,
                }
            }
        };
        st.slots.entry(slot).or_default().key = Some(k.clone());
        Ok(k)
    }

    /// ukey's record of keys generated on this card (read once).
    pub(super) fn records<'a>(
        s: &mut Session<'_>,
        st: &'a mut TokenState,
    ) -> Result<&'a mut KeyRecords> {
        let records = match st.records.take() {
            Some(r) => r,
            None => {
                let id = st.info.as_ref().and_then(|i| i.facts.identity());
                KeyRecords::load(s, id.as_deref())?
            }
        };
        Ok(st.records.insert(records))
    }

    /// Whether keys here are known only through certificates and records.
    pub(super) fn metadata_works(st: &TokenState) -> bool {
        st.info
            .as_ref()
            .is_some_and(|i| i.metadata() == MetadataSupport::Works)
    }

    /// The PIV slots that may hold anything: the four named ones and the
    /// retired ones the key history covers (all twenty without one).
    pub(super) fn candidate_slots(s: &mut Session<'_>, st: &mut TokenState) -> Result<Vec<Slot>> {
        let bound = match st.retired_bound {
            Some(b) => b,
            None => {
                let kh = match s.get_data_opt(ObjectId::KEY_HISTORY)? {
                    Some(c) => KeyHistory::parse(&c).ok(),
                    None => None,
                };
                // SP 800-73-4 Part 1 §3.3.2: a card with retired keys has a
                // Key History object saying how many. Without one, searches
                // look at the four named slots only; a search by CKA_ID, and
                // key generation's search for a free slot, still look anywhere.
                let mut b = kh.as_ref().map_or(0, |k| {
                    k.on_card_certs.saturating_add(k.off_card_certs).min(20)
                });
                // Keys ukey generated where the card cannot report them.
                if !Self::metadata_works(st) {
                    for slot in Self::records(s, st)?.slots() {
                        if let Slot::Retired(n) = slot {
                            b = b.max(n);
                        }
                    }
                }
                st.key_history = Some(kh);
                st.retired_bound = Some(b);
                b
            }
        };
        Ok(Slot::all()
            .filter(|sl| !matches!(sl, Slot::Retired(n) if *n > bound))
            .collect())
    }

    /// Resolve what a search needs: certificates and/or keys of `slots`
    /// (all candidate slots when `None`). Returns (slot, cert, key) for slots
    /// with anything in them.
    pub fn lookup(
        &self,
        st: &mut TokenState,
        slots: Option<&[Slot]>,
        want_cert: bool,
        want_key: bool,
    ) -> Result<Vec<SlotContents>> {
        self.info(st)?;
        let fixed: Option<Vec<Slot>> = slots.map(<[Slot]>::to_vec);
        self.transact(st, &mut |s, st| {
            let list = match &fixed {
                Some(l) => l.clone(),
                None => Self::candidate_slots(s, st)?,
            };
            let mut out = Vec::new();
            let metadata = Self::metadata_works(st);
            for slot in list {
                // A retired slot without a key holds nothing worth a read in
                // a search of the whole token; a search by CKA_ID reads what
                // is there (a certificate left behind by a moved key).
                let key_first =
                    metadata && matches!(slot, Slot::Retired(_)) && want_cert && fixed.is_none();
                let key = if want_key || key_first {
                    Self::key_cached(s, st, slot)?
                } else {
                    None
                };
                let cert = if want_cert && (!key_first || key.is_some()) {
                    Self::cert_cached(s, st, slot)?
                } else {
                    None
                };
                let key = if want_key { key } else { None };
                if cert.is_some() || key.is_some() {
                    out.push((slot, cert, key));
                }
            }
            Ok(out)
        })
    }

    /// The key in `slot` (from cache or card).
    pub fn key(&self, st: &mut TokenState, slot: Slot) -> Result<Option<Arc<KeyInfo>>> {
        Ok(self
            .lookup(st, Some(&[slot]), false, true)?
            .pop()
            .and_then(|(_, _, k)| k))
    }

    /// The certificate in `slot` (from cache or card).
    pub fn cert(&self, st: &mut TokenState, slot: Slot) -> Result<Option<Arc<CertInfo>>> {
        Ok(self
            .lookup(st, Some(&[slot]), true, false)?
            .pop()
            .and_then(|(_, c, _)| c))
    }

    /// What is cached (no card traffic), for attribute reads.
    pub fn cached(st: &TokenState, slot: Slot) -> (Option<Arc<CertInfo>>, Option<Arc<KeyInfo>>) {
        st.slots.get(&slot).map_or((None, None), |c| {
            (c.cert.clone().flatten(), c.key.clone().flatten())
        })
    }

    /// Whether a public key from a certificate matches the key in `slot`.
    pub fn public_matches(key: &KeyInfo, public: &PublicKey) -> bool {
        &key.public == public
    }
}
