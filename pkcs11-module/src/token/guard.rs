//! Check and act in one card transaction (STYLE.md practice 14).
//!
//! Another process may change the card between this module's reads and
//! its writes: two renewal clients, a renewal and its cancellation, or any
//! other PKCS#11 or PC/SC application. So every destructive operation
//! re-reads its precondition inside the same card transaction as the
//! write, against what this module last showed the application for that
//! object (its cache — what C_FindObjects and C_GetAttributeValue
//! answered):
//!
//! * deleting a private key: the slot still holds the key the handle
//!   showed (GET METADATA, public key compared);
//! * moving a private key: the source still holds that key (the card
//!   itself refuses a destination that holds one: 6A80);
//! * deleting a certificate: the container still holds that certificate;
//! * writing a certificate: it certifies the key the card holds now in
//!   the slot it is for (or in the CKA_UKEY_PROMOTE_FROM slot);
//! * replacing or deleting the renewal data object: it still holds the
//!   value the handle showed; creating it: there is none.
//!
//! When the card differs, nothing is written, the cache takes what the
//! card holds, and the caller gets `CKR_OBJECT_HANDLE_INVALID` (the object
//! the handle named is gone; a new search finds what is there now) or, for
//! a certificate that does not fit the key now in the slot,
//! `CKR_TEMPLATE_INCONSISTENT`.

use super::state::{RenewalData, Token, TokenState};
use crate::error::{Error, Result};
use crate::key::PublicKey;
use crate::keyinfo::{CertInfo, KeyInfo};
use apdu::piv::{CertContainer, Slot};
use apdu::Session;
use std::sync::Arc;

/// What the module last showed for an object (the expectation of a write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown<T> {
    /// Never read (or forgotten): nothing to compare with.
    Unknown,
    Absent,
    Present(T),
}

impl Token {
    /// The key of `slot` as this module last showed it.
    pub(super) fn shown_key(st: &TokenState, slot: Slot) -> Shown<PublicKey> {
        match st.slots.get(&slot).and_then(|c| c.key.clone()) {
            None => Shown::Unknown,
            Some(None) => Shown::Absent,
            Some(Some(k)) => Shown::Present(k.public.clone()),
        }
    }

    /// The certificate of `slot` (DER) as this module last showed it.
    pub(super) fn shown_cert(st: &TokenState, slot: Slot) -> Shown<Vec<u8>> {
        match st.slots.get(&slot).and_then(|c| c.cert.clone()) {
            None => Shown::Unknown,
            Some(None) => Shown::Absent,
            Some(Some(c)) => Shown::Present(c.der.clone()),
        }
    }

    /// The renewal object's value as this module last showed it.
    pub(super) fn shown_renewal(st: &TokenState) -> Shown<Arc<Vec<u8>>> {
        match &st.renewal {
            None => Shown::Unknown,
            Some(RenewalData::Ours(v)) => Shown::Present(v.clone()),
            Some(_) => Shown::Absent,
        }
    }

    /// In the running transaction: the key in `slot` now (the cache
    /// updated to it).
    pub(super) fn key_now(
        s: &mut Session<'_>,
        st: &mut TokenState,
        slot: Slot,
    ) -> Result<Option<Arc<KeyInfo>>> {
        st.slots.entry(slot).or_default().key = None;
        Self::key_cached(s, st, slot)
    }

    /// In the running transaction: `slot` still holds the key `shown`.
    pub(super) fn require_key(
        s: &mut Session<'_>,
        st: &mut TokenState,
        slot: Slot,
        shown: &Shown<PublicKey>,
    ) -> Result<Arc<KeyInfo>> {
        let Shown::Present(expected) = shown else {
            return Err(Error::ObjectHandleInvalid);
        };
        match Self::key_now(s, st, slot)? {
            Some(k) if k.public == *expected => Ok(k),
            now => {
                tracing::info!(
                    %slot,
                    present = now.is_some(),
                    "the key changed on the card since it was read: nothing done"
                );
                Err(Error::ObjectHandleInvalid)
            }
        }
    }

    /// In the running transaction: `slot` still holds the certificate `shown`.
    pub(super) fn require_cert(
        s: &mut Session<'_>,
        st: &mut TokenState,
        slot: Slot,
        shown: &Shown<Vec<u8>>,
    ) -> Result<()> {
        let Shown::Present(expected) = shown else {
            return Err(Error::ObjectHandleInvalid);
        };
        st.slots.entry(slot).or_default().cert = None;
        let now = Self::cert_cached(s, st, slot)?;
        if now.as_ref().is_some_and(|c| c.der == *expected) {
            return Ok(());
        }
        // An unparseable container is cached as "none": look at the bytes.
        let raw = s
            .get_data_opt(slot.cert_object())?
            .and_then(|c| CertContainer::parse(&c).ok().flatten());
        if raw.is_some_and(|c| c.der == *expected) {
            return Ok(());
        }
        tracing::info!(%slot, "the certificate changed on the card since it was read: nothing done");
        Err(Error::ObjectHandleInvalid)
    }

    /// In the running transaction: the key the card holds now in
    /// `key_slot` is the one `cert` certifies. Cards without GET METADATA
    /// cannot show a key without its certificate: nothing to check there.
    pub(super) fn require_certified_key(
        s: &mut Session<'_>,
        st: &mut TokenState,
        key_slot: Slot,
        cert: &CertInfo,
    ) -> Result<()> {
        if !Self::metadata_works(st) {
            return Ok(());
        }
        match Self::key_now(s, st, key_slot)? {
            Some(k) if k.public == cert.public => Ok(()),
            _ => {
                tracing::info!(%key_slot, "the certificate is not for the key the card holds now");
                Err(Error::TemplateInconsistent)
            }
        }
    }

    /// In the running transaction: the renewal object holds what was
    /// shown (`create`: holds nothing of ours). Reads the card, not the cache.
    pub(super) fn require_renewal(
        s: &mut Session<'_>,
        st: &mut TokenState,
        shown: &Shown<Arc<Vec<u8>>>,
        create: bool,
    ) -> Result<()> {
        st.renewal = None;
        let now = Self::renewal_lookup(s, st)?;
        match (now, create) {
            (RenewalData::Foreign, _) => Err(Error::ActionProhibited(
                "the renewal data object holds another application's data",
            )),
            (RenewalData::Ours(_), true) => Err(Error::ActionProhibited(
                "the token already holds a renewal data object: set its CKA_VALUE",
            )),
            (RenewalData::Absent, true) => Ok(()),
            (RenewalData::Ours(v), false) if *shown == Shown::Present(v.clone()) => Ok(()),
            (_, false) => {
                tracing::info!("the renewal data object changed on the card since it was read");
                Err(Error::ObjectHandleInvalid)
            }
        }
    }
}
