//! Writes under the management key: key generation, certificates, deleting
//! and moving keys, changing the management key.

use super::convert;
use super::state::{Login, Token, TokenState};
use crate::error::{Error, Result};
use crate::key::Origin;
use crate::keyinfo::{CertInfo, KeyInfo};
use apdu::piv::caps::{self, KeyAnswer, MetadataSupport};
use apdu::piv::generated::{self, GeneratedKey, RecordPlace};
use apdu::piv::{
    AdminData, Algorithm, CertContainer, KeyHistory, ManagementKey, ObjectId, PinPolicy,
    ProtectedManagementKey, PublicKey, Slot, TouchPolicy, MANAGEMENT_KEY_REF,
};
use apdu::{Session, StatusWord};
use std::sync::Arc;
use ukey_token::mgmt::{self, AuthError};
use zeroize::Zeroizing;

impl Token {
    /// Authenticate with the management key: the SO's, or the PIN-protected
    /// one read after the user's login (never shown to anyone).
    pub(super) fn ensure_management(&self, s: &mut Session<'_>, st: &mut TokenState) -> Result<()> {
        if st.mgmt_authenticated {
            return Ok(());
        }
        let key = match (st.login, st.so_key.clone()) {
            (Login::SoManagementKey, Some(k)) => k,
            (Login::User, _) => {
                let protected = match st.mgmt_protected {
                    Some(p) => p,
                    None => {
                        let p = mgmt::pin_protected(s)?;
                        st.mgmt_protected = Some(p);
                        p
                    }
                };
                if !protected {
                    tracing::warn!(
                        "this token's management key is not PIN-protected, so the user's PIN \
                         cannot authorise key generation or certificate writes: protect it once \
                         with `ukey mgmt-key protect` (or log in as SO with the management key)"
                    );
                    return Err(Error::ManagementKeyNotProtected);
                }
                let printed = match s.get_data(ObjectId::PRINTED_INFORMATION) {
                    Ok(p) => p,
                    // Readable only with the PIN verified: another
                    // application logged the card out; log in again.
                    Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied) => {
                        if !self.login_again(s, st)? {
                            return Err(Error::UserNotLoggedIn);
                        }
                        s.get_data(ObjectId::PRINTED_INFORMATION)
                            .map_err(|e| match e.status() {
                                Some(StatusWord::SecurityStatusNotSatisfied) => {
                                    Error::UserNotLoggedIn
                                }
                                _ => e.into(),
                            })?
                    }
                    Err(e) => return Err(e.into()),
                };
                let stored = ProtectedManagementKey::parse(&printed)?;
                // The algorithm the card accepted before, else what its
                // metadata says, else each that fits the key's length in
                // turn (24 bytes: 3DES, then AES-192), as the CLI does.
                let known = match st.mgmt_alg {
                    Some(a) => Some(a),
                    None => match st.info.as_ref() {
                        Some(info) => mgmt::reported_algorithm(s, &info.facts).ok().flatten(),
                        None => s
                            .metadata(MANAGEMENT_KEY_REF)
                            .ok()
                            .and_then(|m| m.algorithm),
                    },
                };
                return match mgmt::authenticate(s, &stored.key, known) {
                    Ok(alg) => {
                        st.mgmt_alg = Some(alg);
                        st.mgmt_authenticated = true;
                        Ok(())
                    }
                    Err(e @ (AuthError::NoAlgorithm(_) | AuthError::Refused(_))) => {
                        Err(Error::FunctionFailed(e.to_string()))
                    }
                    // Removed or reset: reported as such (transact recovers from a reset).
                    Err(AuthError::Card(e)) => Err(e.into()),
                };
            }
            _ => return Err(Error::UserNotLoggedIn),
        };
        match s.authenticate(&key) {
            Ok(()) => {
                st.mgmt_authenticated = true;
                Ok(())
            }
            // The card refused the key, or failed to prove it holds it.
            Err(e @ (apdu::Error::Status(_) | apdu::Error::Malformed(_))) => Err(
                Error::FunctionFailed(format!("management key authentication failed: {e}")),
            ),
            // Removed or reset: reported as such (transact recovers from a reset).
            Err(e) => Err(e.into()),
        }
    }

    /// Grow the key history before a retired slot is used, so enumeration
    /// keeps finding it even if the card is pulled right after.
    ///
    /// SP 800-73-4 Part 1 §3.3.2 numbers the retired keys with on-card
    /// certificates first (retired 1 up to `keysWithOnCardCerts`), then
    /// those whose certificates live off the card. OpenSC reads only the
    /// first `keysWithOnCardCerts` retired certificates (and shows keys only
    /// where it finds one), so a certificate written to retired `n` makes
    /// the on-card count reach `n`.
    pub(super) fn cover_retired(
        s: &mut Session<'_>,
        st: &mut TokenState,
        slot: Slot,
        with_cert: bool,
    ) -> Result<()> {
        let Slot::Retired(n) = slot else {
            return Ok(());
        };
        let kh = match &st.key_history {
            Some(k) => k.clone(),
            None => match s.get_data_opt(ObjectId::KEY_HISTORY)? {
                Some(c) => KeyHistory::parse(&c).ok(),
                None => None,
            },
        };
        let mut kh = kh.unwrap_or_default();
        let covered = kh.on_card_certs.saturating_add(kh.off_card_certs);
        if covered >= n && (!with_cert || kh.on_card_certs >= n) {
            st.key_history = Some(Some(kh));
            return Ok(());
        }
        let total = covered.max(n);
        let on_card = if with_cert {
            kh.on_card_certs.max(n)
        } else {
            kh.on_card_certs.min(total)
        };
        kh.on_card_certs = on_card;
        kh.off_card_certs = total - on_card;
        s.put_data(ObjectId::KEY_HISTORY, &kh.encode())?;
        st.key_history = Some(Some(kh));
        st.retired_bound = Some(total);
        Ok(())
    }

    /// Run a write that needs the management key; re-authenticates once if
    /// the card forgot (another application, a reset).
    pub(crate) fn write_op<R>(
        &self,
        st: &mut TokenState,
        op: &mut dyn FnMut(&mut Session<'_>, &mut TokenState) -> Result<R>,
    ) -> Result<R> {
        self.info(st)?;
        let mut tries = 0;
        loop {
            tries += 1;
            let r = self.transact(st, &mut |s, st| {
                self.ensure_management(s, st)?;
                op(s, st)
            });
            match r {
                Err(Error::UserNotLoggedIn) if st.mgmt_authenticated && tries == 1 => {
                    st.mgmt_authenticated = false;
                }
                other => return other,
            }
        }
    }

    /// GENERATE ASYMMETRIC KEY PAIR in `slot`.
    pub fn generate(
        &self,
        st: &mut TokenState,
        slot: Slot,
        alg: Algorithm,
        pin: PinPolicy,
        touch: TouchPolicy,
    ) -> Result<Arc<KeyInfo>> {
        self.write_op(st, &mut |s, st| {
            Self::cover_retired(s, st, slot, false)?;
            let public = match s.generate(slot, alg, pin, touch) {
                Ok(p) => p,
                Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied) => {
                    return Err(Error::UserNotLoggedIn)
                }
                Err(e) if e.status() == Some(StatusWord::IncorrectData) => {
                    return Err(Error::KeySizeRange)
                }
                Err(e) => return Err(e.into()),
            };
            let info = Arc::new(KeyInfo {
                alg: convert::key_alg(alg).ok_or(Error::MechanismInvalid)?,
                public: convert::public(&public)?,
                auth: convert::auth(slot, pin),
                origin: Some(Origin::Generated),
            });
            st.slots.entry(slot).or_default().key = Some(Some(info.clone()));
            Self::keep_visible(s, st, slot, &public)?;
            Ok(info)
        })
    }

    /// After GENERATE: on a card that cannot report the new key (no working
    /// GET METADATA for it), record its public key where every later
    /// process finds it — on the card, else on this host — until its
    /// certificate is written. A card that reports it needs no record (an
    /// old one for the slot goes).
    pub(super) fn keep_visible(
        s: &mut Session<'_>,
        st: &mut TokenState,
        slot: Slot,
        public: &PublicKey,
    ) -> Result<()> {
        let Some(facts) = st.info.as_ref().map(|i| i.facts.clone()) else {
            return Ok(());
        };
        if facts.reports_key(s, slot, public)? {
            if st.records.as_ref().is_some_and(|r| r.get(slot).is_some()) {
                Self::records(s, st)?.forget(s, slot)?;
            }
            return Ok(());
        }
        let place = Self::records(s, st)?.record(s, GeneratedKey::now(slot, public.clone()))?;
        match place {
            RecordPlace::Card => {
                tracing::info!(%slot, "the card cannot report the new key: its public key is kept in object {}", generated::GENERATED_KEYS_OBJECT)
            }
            RecordPlace::Host(path) => tracing::info!(
                %slot, path = %path.display(),
                "the card cannot report the new key and keeps no ukey object: its public key is kept on this host"
            ),
            RecordPlace::Nowhere => tracing::warn!(
                %slot,
                "the card cannot report the new key and has no identity (serial or CHUID) to record it under: \
                 later processes will not see it until its certificate is written"
            ),
        }
        Ok(())
    }

    /// Write `der` as the certificate of `slot` (one chained PUT DATA; the
    /// cache changes only after the card confirmed), if it certifies the
    /// key the card holds in `key_slot` — checked in the same transaction.
    pub fn write_cert(
        &self,
        st: &mut TokenState,
        slot: Slot,
        der: &[u8],
        key_slot: Slot,
    ) -> Result<Arc<CertInfo>> {
        let info = Arc::new(CertInfo::parse(der).map_err(|_| Error::AttributeValueInvalid)?);
        let plain = CertContainer {
            der: der.to_vec(),
            compressed: false,
        }
        .encode()?;
        let content = if plain.len() > 3052 {
            CertContainer {
                der: der.to_vec(),
                compressed: true,
            }
            .encode()?
        } else {
            plain
        };
        self.write_op(st, &mut |s, st| {
            Self::require_certified_key(s, st, key_slot, &info)?;
            Self::cover_retired(s, st, slot, true)?;
            match s.put_data(slot.cert_object(), &content) {
                Ok(()) => {}
                Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied) => {
                    return Err(Error::UserNotLoggedIn)
                }
                Err(e) => return Err(e.into()),
            }
            // Read it back: what the card answers from now on is what counts.
            st.slots.entry(slot).or_default().cert = None;
            let back = s.get_data_opt(slot.cert_object())?;
            let stored = back
                .as_deref()
                .map(|c| CertContainer::parse(c))
                .transpose()?
                .flatten();
            if stored.as_ref().map(|c| &c.der[..]) != Some(der) {
                return Err(Error::DeviceError(format!(
                    "the certificate read back from slot {slot} differs from the one written"
                )));
            }
            st.slots.entry(slot).or_default().cert = Some(Some(info.clone()));
            // The certificate shows the key from now on: its record goes.
            if !Self::metadata_works(st) {
                Self::records(s, st)?.forget(s, slot)?;
            }
            Ok(info.clone())
        })
    }

    /// Empty the certificate container of `slot`, if it still holds the
    /// certificate this module showed (checked in the same transaction). On
    /// a card that cannot report keys, the key it certified stays visible:
    /// its public key is recorded first (as after GENERATE).
    pub fn delete_cert(&self, st: &mut TokenState, slot: Slot) -> Result<()> {
        let shown = Self::shown_cert(st, slot);
        self.write_op(st, &mut |s, st| {
            Self::require_cert(s, st, slot, &shown)?;
            if !Self::metadata_works(st) && Self::records(s, st)?.get(slot).is_none() {
                if let Some(key) = Self::key_cached(s, st, slot)? {
                    Self::keep_visible(s, st, slot, &convert::piv_public(&key.public))?;
                }
            }
            s.delete_data(slot.cert_object())
                .map_err(|e| match e.status() {
                    Some(StatusWord::SecurityStatusNotSatisfied) => Error::UserNotLoggedIn,
                    _ => e.into(),
                })?;
            st.slots.entry(slot).or_default().cert = Some(None);
            Ok(())
        })
    }

    /// Whether the card has MOVE KEY / DELETE KEY (YubiKey 5.7), asked once
    /// per insertion and only when needed: with a move between two slots
    /// the card reported empty (`apdu::piv::caps::probe_move_key`). A card
    /// whose GET METADATA does not work cannot report empty slots, so it is
    /// never asked (and taken not to move keys).
    pub fn can_move_keys(&self, st: &mut TokenState) -> Result<bool> {
        if let Some(b) = st.move_key {
            return Ok(b);
        }
        let info = self.info(st)?;
        if info.metadata() != MetadataSupport::Works {
            st.move_key = Some(false);
            return Ok(false);
        }
        let can = self.transact(st, &mut |s, st| {
            let mut empty = Vec::new();
            for slot in (1..=20u8).rev().map(Slot::Retired) {
                let known = st.slots.get(&slot).and_then(|c| c.key.clone());
                match known {
                    Some(Some(_)) => continue,
                    Some(None) => empty.push(slot),
                    None => match info.facts.key(s, slot)? {
                        KeyAnswer::Empty => {
                            st.slots.entry(slot).or_default().key = Some(None);
                            empty.push(slot);
                        }
                        KeyAnswer::Reported(md) => {
                            st.slots.entry(slot).or_default().key =
                                Some(Some(Arc::new(convert::key_from_metadata(slot, &md)?)));
                        }
                        KeyAnswer::CannotTell => {}
                    },
                }
                if let [to, from] = empty[..] {
                    return Ok(caps::probe_move_key(s, to, from)?);
                }
            }
            // Every retired slot holds a key: nothing safe to ask with.
            Ok(false)
        })?;
        st.move_key = Some(can);
        Ok(can)
    }

    /// A MOVE KEY answer that says the card has no such instruction.
    pub(super) fn no_move_key(st: &mut TokenState, e: &apdu::Error) -> Option<Error> {
        caps::instruction_missing(e).then(|| {
            st.move_key = Some(false);
            Error::ActionProhibited("the card cannot move or delete keys (no MOVE KEY)")
        })
    }

    /// Delete the private key of `slot` (YubiKey 5.7 MOVE KEY with P1 = FF),
    /// if it is still the key this module showed (checked in the same
    /// transaction: never "read now, delete later").
    pub fn delete_key(&self, st: &mut TokenState, slot: Slot) -> Result<()> {
        if !self.can_move_keys(st)? {
            return Err(Error::ActionProhibited("the card cannot delete keys"));
        }
        let shown = Self::shown_key(st, slot);
        self.write_op(st, &mut |s, st| {
            Self::require_key(s, st, slot, &shown)?;
            match s.delete_key(slot) {
                Ok(()) => {}
                Err(e) if e.status() == Some(StatusWord::ReferenceNotFound) => {}
                Err(e) => return Err(Self::no_move_key(st, &e).unwrap_or_else(|| e.into())),
            }
            st.slots.entry(slot).or_default().key = Some(None);
            Ok(())
        })
    }

    /// Move the private key from `from` to the empty `to` (YubiKey 5.7), if
    /// `from` still holds the key this module showed (checked in the same
    /// transaction; the card refuses a destination holding a key).
    /// Certificates stay in their containers.
    pub fn move_key(&self, st: &mut TokenState, to: Slot, from: Slot) -> Result<()> {
        if !self.can_move_keys(st)? {
            return Err(Error::ActionProhibited("the card cannot move keys"));
        }
        let shown = Self::shown_key(st, from);
        self.write_op(st, &mut |s, st| {
            Self::require_key(s, st, from, &shown)?;
            Self::cover_retired(s, st, to, false)?;
            match s.move_key(to, from) {
                Ok(()) => {}
                // 6A80: the destination holds a key; 6A88: no key to move.
                Err(e) if e.status() == Some(StatusWord::IncorrectData) => {
                    st.slots.entry(to).or_default().key = None;
                    return Err(Error::ActionProhibited("the destination slot holds a key"));
                }
                Err(e) if e.status() == Some(StatusWord::ReferenceNotFound) => {
                    st.slots.entry(from).or_default().key = Some(None);
                    return Err(Error::ObjectHandleInvalid);
                }
                Err(e) => return Err(Self::no_move_key(st, &e).unwrap_or_else(|| e.into())),
            }
            let k = st.slots.entry(from).or_default().key.take().flatten();
            st.slots.entry(from).or_default().key = Some(None);
            st.slots.entry(to).or_default().key = Some(k);
            Ok(())
        })
    }

    /// C_SetPIN as SO with the management key: set a new management key
    /// (same algorithm); a PIN-protected copy is kept in step.
    pub fn change_management_key(
        &self,
        st: &mut TokenState,
        old_hex: &[u8],
        new_hex: &[u8],
    ) -> Result<()> {
        let current = st.so_key.clone().ok_or(Error::UserNotLoggedIn)?;
        let parse = |h: &[u8]| -> Result<Zeroizing<Vec<u8>>> {
            let t = std::str::from_utf8(h).map_err(|_| Error::PinInvalid)?;
            Ok(Zeroizing::new(
                hex::decode(t).map_err(|_| Error::PinInvalid)?,
            ))
        };
        let old = parse(old_hex)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&old[..], current.as_bytes())) {
            return Err(Error::PinIncorrect);
        }
        let new = parse(new_hex)?;
        let key = ManagementKey::new(current.algorithm(), &new).map_err(|_| Error::PinLenRange)?;
        self.write_op(st, &mut |s, st| {
            s.set_management_key(&key, false)?;
            let protected = s
                .get_data_opt(ObjectId::ADMIN_DATA)?
                .and_then(|c| AdminData::parse(&c).ok())
                .is_some_and(|a| a.management_key_protected());
            if protected {
                s.put_data(
                    ObjectId::PRINTED_INFORMATION,
                    &ProtectedManagementKey::encode(key.as_bytes()),
                )?;
            }
            st.so_key = Some(key.clone());
            Ok(())
        })
    }
}
