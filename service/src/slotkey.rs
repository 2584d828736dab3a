//! The key in a slot, as the card reports it (GET METADATA) or, where it
//! cannot, as ukey knows it: its record of a key it generated there, or the
//! slot's certificate (`apdu::piv::generated`; the PKCS#11 module decides
//! the same way).

use crate::certs::{public_key_from_spki, CertSummary};
use crate::error::Result;
use apdu::piv::caps::{CardFacts, KeyAnswer, MetadataSupport};
use apdu::piv::generated::{self, GeneratedKey, KeyRecords, KeySource, RecordPlace};
use apdu::piv::{Metadata, PublicKey, Slot};
use apdu::Session;

/// A key found in a slot.
#[derive(Debug, Clone)]
pub struct SlotKey {
    pub public: PublicKey,
    pub source: KeySource,
    /// GET METADATA's answer (policies, origin), where it described the key.
    pub metadata: Option<Metadata>,
}

/// What a slot holds, key-wise.
#[derive(Debug, Clone)]
pub enum Found {
    Key(SlotKey),
    /// The card said so (its GET METADATA works).
    NoKey,
    /// The card cannot tell, and neither a record nor a certificate shows a key.
    Unknown,
}

impl Found {
    pub fn key(&self) -> Option<&SlotKey> {
        match self {
            Found::Key(k) => Some(k),
            _ => None,
        }
    }

    pub fn into_key(self) -> Option<SlotKey> {
        match self {
            Found::Key(k) => Some(k),
            _ => None,
        }
    }
}

/// Looks up keys on one card; ukey's record is read once, when first needed.
pub struct Keys<'f> {
    facts: &'f CardFacts,
    records: Option<KeyRecords>,
}

impl<'f> Keys<'f> {
    pub fn new(facts: &'f CardFacts) -> Self {
        Self {
            facts,
            records: None,
        }
    }

    /// Whether GET METADATA answers can be taken as the whole truth.
    pub fn metadata_works(&self) -> bool {
        self.facts.metadata == MetadataSupport::Works
    }

    /// GET METADATA's word on `slot`, without falling back.
    pub fn reported(&self, s: &mut Session<'_>, slot: Slot) -> Result<KeyAnswer> {
        Ok(self.facts.key(s, slot)?)
    }

    /// ukey's record for this card.
    pub fn records(&mut self, s: &mut Session<'_>) -> Result<&mut KeyRecords> {
        let records = match self.records.take() {
            Some(r) => r,
            None => KeyRecords::load(s, self.facts.identity().as_deref())?,
        };
        Ok(self.records.insert(records))
    }

    /// The key in `slot`: from `answer` (GET METADATA's), or where it cannot
    /// tell, from ukey's record and the slot's certificate `cert`.
    pub fn resolve(
        &mut self,
        s: &mut Session<'_>,
        slot: Slot,
        answer: KeyAnswer,
        cert: Option<&CertSummary>,
    ) -> Result<Found> {
        match answer {
            KeyAnswer::Reported(md) => Ok(match md.public_key.clone() {
                Some(public) => Found::Key(SlotKey {
                    public,
                    source: KeySource::Metadata,
                    metadata: Some(md),
                }),
                None => Found::Unknown,
            }),
            KeyAnswer::Empty => Ok(Found::NoKey),
            KeyAnswer::CannotTell => {
                let cert_key = cert.and_then(|c| {
                    public_key_from_spki(&c.spki_der)
                        .ok()
                        .map(|pk| (pk, c.not_before_unix))
                });
                let records = self.records(s)?;
                Ok(
                    match generated::resolve(
                        records.get(slot),
                        cert_key.as_ref().map(|(pk, nb)| (pk, *nb)),
                    ) {
                        Some((pk, source)) => Found::Key(SlotKey {
                            public: pk.clone(),
                            source,
                            metadata: None,
                        }),
                        None => Found::Unknown,
                    },
                )
            }
        }
    }

    /// [`Self::reported`] then [`Self::resolve`].
    pub fn find(
        &mut self,
        s: &mut Session<'_>,
        slot: Slot,
        cert: Option<&CertSummary>,
    ) -> Result<Found> {
        let answer = self.reported(s, slot)?;
        self.resolve(s, slot, answer, cert)
    }

    /// After GENERATE (management key authenticated in this session): on a
    /// card that cannot report the new key, record it where later runs and
    /// the PKCS#11 module find it. Returns where, or `None` when the card
    /// reports it.
    pub fn keep_visible(
        &mut self,
        s: &mut Session<'_>,
        slot: Slot,
        public: &PublicKey,
    ) -> Result<Option<RecordPlace>> {
        if self.facts.reports_key(s, slot, public)? {
            if !self.metadata_works() {
                self.records(s)?.forget(s, slot)?;
            }
            return Ok(None);
        }
        let place = self
            .records(s)?
            .record(s, GeneratedKey::now(slot, public.clone()))?;
        Ok(Some(place))
    }

    /// The slot's certificate was written: its record (if any) goes.
    /// Needs the management key (authenticated in this session).
    pub fn certificate_written(&mut self, s: &mut Session<'_>, slot: Slot) -> Result<()> {
        if !self.metadata_works() {
            self.records(s)?.forget(s, slot)?;
        }
        Ok(())
    }
}
