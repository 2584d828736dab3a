//! The token's own state: the [`Token`] (one per insertion: how to reach
//! the card, whether it is gone) and the [`TokenState`] behind its mutex
//! (connection, identity, login, secrets held for recovery, caches), with
//! the small values they hold. Every operation lives in a sibling file.

use super::card_info::CardInfo;
use crate::error::{Error, Result};
use crate::keyinfo::{CertInfo, KeyInfo};
use apdu::piv::generated::KeyRecords;
use apdu::piv::{Algorithm, KeyHistory, ManagementKey, Pin, Slot};
use apdu::{PivCard, StatusWord, Transport};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A slot with what is in it.
pub type SlotContents = (Slot, Option<Arc<CertInfo>>, Option<Arc<KeyInfo>>);

/// What the renewal object holds.
#[derive(Debug, Clone)]
pub enum RenewalData {
    Absent,
    /// Our container: `80 "ukey renewal" 81 value`; the value is the caller's.
    Ours(Arc<Vec<u8>>),
    /// Something else is stored there: never shown, never overwritten.
    Foreign,
}

/// How to reach the card.
pub enum Connector {
    Pcsc {
        ctx: pcsc::Context,
        reader: std::ffi::CString,
    },
    #[cfg(any(test, feature = "sim"))]
    Sim(ukey_sim::SimReader),
    #[cfg(any(test, feature = "test-readers"))]
    Test(crate::testing::readers::Connect),
}

impl Connector {
    pub(super) fn connect(&self) -> Result<Box<dyn Transport>> {
        let t: Box<dyn Transport> = match self {
            Connector::Pcsc { ctx, reader } => {
                Box::new(apdu::pcsc::PcscTransport::connect(ctx, reader).map_err(map_connect)?)
            }
            #[cfg(any(test, feature = "sim"))]
            Connector::Sim(r) => Box::new(r.connect().map_err(map_connect)?),
            #[cfg(any(test, feature = "test-readers"))]
            Connector::Test(connect) => connect().map_err(map_connect)?,
        };
        Ok(t)
    }
}

pub(super) fn map_connect(e: apdu::transport::TransportError) -> Error {
    use apdu::transport::TransportError as T;
    match e {
        T::NoCard | T::CardRemoved | T::ReaderUnavailable => Error::DeviceRemoved,
        other => Error::DeviceError(other.to_string()),
    }
}

/// A retry counter as last seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub left: Option<u8>,
    pub total: Option<u8>,
}

impl Counter {
    pub(super) fn set_left(&mut self, left: u8) {
        self.left = Some(left);
    }
    pub(super) fn reset(&mut self) {
        self.left = self.total.or(Some(3));
    }
}

/// Who is logged in (PKCS#11 login state is per token, shared by sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    None,
    User,
    SoPuk,
    SoManagementKey,
}

/// The lazily filled picture of one PIV slot.
#[derive(Default, Clone)]
pub(super) struct SlotCache {
    pub(super) cert: Option<Option<Arc<CertInfo>>>,
    pub(super) key: Option<Option<Arc<KeyInfo>>>,
}

/// Mutable token state, behind the token's mutex.
pub struct TokenState {
    pub(super) card: Option<PivCard<Box<dyn Transport>>>,
    pub(super) selected: bool,
    pub(super) info: Option<CardInfo>,
    pub pin: Counter,
    pub puk: Counter,
    pub login: Login,
    pub(super) cached_pin: Option<Pin>,
    /// No private-key operation has run since C_Login(CKU_USER): the PIN
    /// given there may still authorise one use of a PIN-always key.
    pub(super) login_pin_unused: bool,
    /// The card's PIN was already verified, by another application, when
    /// we logged in: ending our login leaves it so (see `Token::logout`).
    pub(super) pin_found_verified: bool,
    pub(super) so_key: Option<ManagementKey>,
    pub(super) so_puk: Option<Pin>,
    pub(super) mgmt_authenticated: bool,
    pub(super) mgmt_alg: Option<Algorithm>,
    pub(super) mgmt_protected: Option<bool>,
    pub(super) slots: HashMap<Slot, SlotCache>,
    pub(super) retired_bound: Option<u8>,
    pub(super) key_history: Option<Option<KeyHistory>>,
    /// What the renewal data object holds (`None`: not read yet).
    pub(super) renewal: Option<RenewalData>,
    /// Applications' CKA_ID and CKA_LABEL (`None`: not read yet).
    pub(crate) names: Option<super::names_object::NamesState>,
    /// GET CHALLENGE works (probed with the card's identity).
    pub rng: Option<bool>,
    /// MOVE KEY works (probed when first needed; see [`Token::can_move_keys`]).
    pub(super) move_key: Option<bool>,
    /// ukey's record of keys generated on this card that it cannot report
    /// (read when first needed, on cards whose GET METADATA does not work).
    pub(super) records: Option<KeyRecords>,
    /// The last transaction was C_Login(CKU_CONTEXT_SPECIFIC)'s successful
    /// VERIFY: the card's PIN-always verification may still be fresh.
    pub(super) context_verified: bool,
    /// What `context_verified` was when the running transaction began.
    pub(super) pin_fresh: bool,
}

/// A card in a slot. A new `Token` is made for every insertion.
pub struct Token {
    pub slot_id: cryptoki_sys::CK_SLOT_ID,
    /// Unique per insertion: handles of an old token never resolve to a new one.
    pub generation: u64,
    pub(super) connector: Connector,
    pub(super) state: Mutex<TokenState>,
    pub(super) removed: AtomicBool,
    /// Restore the login after a reset with the PIN held in memory.
    pub(super) restore_login: bool,
}

/// Result of a PIN verification for the caller.
pub(super) fn pin_error(sw: Option<StatusWord>, counter: &mut Counter) -> Option<Error> {
    match sw {
        Some(StatusWord::VerifyFailed { tries_left }) => {
            counter.set_left(tries_left);
            Some(Error::PinIncorrect)
        }
        Some(StatusWord::Blocked) => {
            counter.set_left(0);
            Some(Error::PinLocked)
        }
        _ => None,
    }
}

impl Token {
    /// A token for the card behind `connector`; `restore_login`: after
    /// another application reset the card, log in again with the PIN held
    /// in memory (the configuration's `restore_login`).
    pub fn new(
        slot_id: cryptoki_sys::CK_SLOT_ID,
        generation: u64,
        connector: Connector,
        restore_login: bool,
    ) -> Self {
        Self {
            slot_id,
            generation,
            connector,
            state: Mutex::new(TokenState {
                card: None,
                selected: false,
                info: None,
                pin: Counter::default(),
                puk: Counter::default(),
                login: Login::None,
                cached_pin: None,
                login_pin_unused: false,
                pin_found_verified: false,
                so_key: None,
                so_puk: None,
                mgmt_authenticated: false,
                mgmt_alg: None,
                mgmt_protected: None,
                slots: HashMap::new(),
                retired_bound: None,
                key_history: None,
                renewal: None,
                names: None,
                rng: None,
                move_key: None,
                records: None,
                context_verified: false,
                pin_fresh: false,
            }),
            removed: AtomicBool::new(false),
            restore_login,
        }
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    pub fn mark_removed(&self) {
        self.removed.store(true, Ordering::SeqCst);
    }

    /// Lock the state. A panic while holding it leaves the data consistent
    /// enough (every field is independently valid), so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, TokenState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
