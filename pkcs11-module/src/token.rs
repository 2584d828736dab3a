//! One token (a card in a slot): its connection, what was read from it,
//! the login state PKCS#11 shares between an application's sessions, and
//! every card operation.
//!
//! All card traffic goes through [`Token::transact`], which runs one PC/SC
//! transaction, SELECTs the applet when needed, and recovers once from a
//! card reset by another application: re-SELECT, check it is the same card
//! (serial), restore the login with the PIN held in zeroizing memory, retry.
//! Caches are updated only after the card confirmed a change.

use crate::error::{Error, Result};
use crate::keyinfo::{CertInfo, KeyInfo};
use apdu::piv::caps::{self, CardFacts, KeyAnswer, MetadataSupport};
use apdu::piv::generated::{self, GeneratedKey, KeyRecords, KeySource, RecordPlace};
use apdu::piv::{
    AdminData, Algorithm, CertContainer, KeyHistory, ManagementKey, ObjectId, Pin, PinPolicy,
    PinRef, PinStatus, ProtectedManagementKey, PublicKey, Slot, TouchPolicy, Version,
    MANAGEMENT_KEY_REF,
};
use apdu::tlv::Builder;
use apdu::{PivCard, Session, StatusWord, Transport};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use zeroize::Zeroizing;

mod guard;
pub use guard::Shown;

/// A slot with what is in it.
pub type SlotContents = (Slot, Option<Arc<CertInfo>>, Option<Arc<KeyInfo>>);

/// Where the renewal data object lives: a YubiKey-writable vendor object
/// that no PIV client reads (SP 800-73-4 leaves 5FFF00..5FFF15 to the card
/// vendor; Yubico uses 5FFF00 and 5FFF01 only).
pub const RENEWAL_OBJECT: ObjectId = ObjectId(0x5F_FF10);
/// CKA_APPLICATION (and CKA_LABEL) of the renewal data object.
pub const RENEWAL_APPLICATION: &str = "ukey renewal";

/// What the renewal object holds.
#[derive(Debug, Clone)]
pub enum RenewalData {
    Absent,
    /// Our container: `80 "ukey renewal" 81 value`; the value is the caller's.
    Ours(Arc<Vec<u8>>),
    /// Something else is stored there: never shown, never overwritten.
    Foreign,
}

/// The value of our container, `None` if it is not ours.
fn parse_renewal(content: &[u8]) -> Option<Vec<u8>> {
    let app = apdu::tlv::find(content, 0x80u32).ok()??;
    if app != RENEWAL_APPLICATION.as_bytes() {
        return None;
    }
    apdu::tlv::find(content, 0x81u32).ok()?.map(<[u8]>::to_vec)
}

/// How to reach the card.
pub enum Connector {
    Pcsc {
        ctx: pcsc::Context,
        reader: std::ffi::CString,
    },
    Sim(ukey_sim::SimReader),
    #[cfg(any(test, feature = "test-readers"))]
    Test(crate::testing::Connect),
}

impl Connector {
    fn connect(&self) -> Result<Box<dyn Transport>> {
        let t: Box<dyn Transport> = match self {
            Connector::Pcsc { ctx, reader } => {
                Box::new(apdu::pcsc::PcscTransport::connect(ctx, reader).map_err(map_connect)?)
            }
            Connector::Sim(r) => Box::new(r.connect().map_err(map_connect)?),
            #[cfg(any(test, feature = "test-readers"))]
            Connector::Test(connect) => connect().map_err(map_connect)?,
        };
        Ok(t)
    }
}

fn map_connect(e: apdu::transport::TransportError) -> Error {
    use apdu::transport::TransportError as T;
    match e {
        T::NoCard | T::CardRemoved | T::ReaderUnavailable => Error::DeviceRemoved,
        other => Error::DeviceError(other.to_string()),
    }
}

/// What identifies and describes the card.
#[derive(Debug, Clone)]
pub struct CardInfo {
    /// Serial as shown in CK_TOKEN_INFO (decimal YubiKey serial, else CHUID GUID hex).
    pub serial: String,
    pub version: Option<Version>,
    pub yubikey: bool,
    /// What the card answered when probed (once per insertion): which
    /// optional commands work is decided from these answers.
    pub facts: CardFacts,
}

impl CardInfo {
    pub fn label(&self) -> String {
        format!("UKey PIV #{}", self.serial)
    }

    /// How far GET METADATA can be believed.
    pub fn metadata(&self) -> MetadataSupport {
        self.facts.metadata
    }

    /// The largest RSA key to ask GENERATE for: 4096 where the card claims
    /// firmware 5.7 or later (a card that cannot refuses, which is
    /// reported as CKR_KEY_SIZE_RANGE), else 2048.
    pub fn max_rsa_bits(&self) -> usize {
        if self.version.is_some_and(|v| v >= Version(5, 7, 0)) {
            4096
        } else {
            2048
        }
    }
}

/// A retry counter as last seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub left: Option<u8>,
    pub total: Option<u8>,
}

impl Counter {
    fn set_left(&mut self, left: u8) {
        self.left = Some(left);
    }
    fn reset(&mut self) {
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
struct SlotCache {
    cert: Option<Option<Arc<CertInfo>>>,
    key: Option<Option<Arc<KeyInfo>>>,
}

/// Mutable token state, behind the token's mutex.
pub struct TokenState {
    card: Option<PivCard<Box<dyn Transport>>>,
    selected: bool,
    info: Option<CardInfo>,
    pub pin: Counter,
    pub puk: Counter,
    pub login: Login,
    cached_pin: Option<Pin>,
    /// No private-key operation has run since C_Login(CKU_USER): the PIN
    /// given there may still authorise one use of a PIN-always key.
    login_pin_unused: bool,
    /// The card's PIN was already verified, by another application, when
    /// we logged in: ending our login leaves it so (see `Token::logout`).
    pin_found_verified: bool,
    so_key: Option<ManagementKey>,
    so_puk: Option<Pin>,
    mgmt_authenticated: bool,
    mgmt_alg: Option<Algorithm>,
    mgmt_protected: Option<bool>,
    slots: HashMap<Slot, SlotCache>,
    retired_bound: Option<u8>,
    key_history: Option<Option<KeyHistory>>,
    /// What the renewal data object holds (`None`: not read yet).
    renewal: Option<RenewalData>,
    /// Applications' CKA_ID and CKA_LABEL (`None`: not read yet).
    pub(crate) names: Option<crate::names::NamesState>,
    /// GET CHALLENGE works (probed with the card's identity).
    pub rng: Option<bool>,
    /// MOVE KEY works (probed when first needed; see [`Token::can_move_keys`]).
    move_key: Option<bool>,
    /// ukey's record of keys generated on this card that it cannot report
    /// (read when first needed, on cards whose GET METADATA does not work).
    records: Option<KeyRecords>,
    /// The last transaction was C_Login(CKU_CONTEXT_SPECIFIC)'s successful
    /// VERIFY: the card's PIN-always verification may still be fresh.
    context_verified: bool,
    /// What `context_verified` was when the running transaction began.
    pin_fresh: bool,
}

/// A card in a slot. A new `Token` is made for every insertion.
pub struct Token {
    pub slot_id: cryptoki_sys::CK_SLOT_ID,
    /// Unique per insertion: handles of an old token never resolve to a new one.
    pub generation: u64,
    connector: Connector,
    state: Mutex<TokenState>,
    removed: AtomicBool,
    /// Restore the login after a reset with the PIN held in memory.
    restore_login: bool,
}

/// Result of a PIN verification for the caller.
fn pin_error(sw: Option<StatusWord>, counter: &mut Counter) -> Option<Error> {
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
    pub fn new(slot_id: cryptoki_sys::CK_SLOT_ID, generation: u64, connector: Connector) -> Self {
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
            restore_login: crate::library::restore_login(),
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

    /// Run `op` under one transaction, with SELECT and reset recovery.
    pub fn transact<R>(
        &self,
        st: &mut TokenState,
        op: &mut dyn FnMut(&mut Session<'_>, &mut TokenState) -> Result<R>,
    ) -> Result<R> {
        if self.is_removed() {
            return Err(Error::DeviceRemoved);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self.transact_once(st, op);
            match r {
                Err(Error::CardReset) if attempt == 1 => {
                    tracing::info!(
                        slot = self.slot_id,
                        "card reset by another application: recovering"
                    );
                    st.selected = false;
                    st.mgmt_authenticated = false;
                    self.recover(st)?;
                }
                Err(Error::CardReset) | Err(Error::DeviceRemoved) => {
                    self.mark_removed();
                    st.card = None;
                    return Err(Error::DeviceRemoved);
                }
                Err(Error::Reselect) if attempt == 1 => {
                    // Another application selected its own applet: ours again.
                    st.selected = false;
                }
                Err(Error::Reselect) => {
                    return Err(Error::DeviceError("the PIV applet does not answer".into()))
                }
                other => return other,
            }
        }
    }

    fn transact_once<R>(
        &self,
        st: &mut TokenState,
        op: &mut dyn FnMut(&mut Session<'_>, &mut TokenState) -> Result<R>,
    ) -> Result<R> {
        // Any transaction but the one right after the context VERIFY finds
        // the PIN-always verification spent.
        st.pin_fresh = std::mem::take(&mut st.context_verified);
        let mut card = match st.card.take() {
            Some(c) => c,
            None => {
                st.selected = false;
                st.pin_fresh = false;
                PivCard::new(self.connector.connect()?)
            }
        };
        let r = card
            .transaction(|s| {
                if !st.selected {
                    s.select()?;
                    st.selected = true;
                    st.pin_fresh = false;
                }
                Ok(op(s, st))
            })
            .map_err(Error::from)
            .and_then(|r| r);
        st.card = Some(card);
        r
    }

    /// After a reset: same card? Then restore the login.
    fn recover(&self, st: &mut TokenState) -> Result<()> {
        let expected = st.info.as_ref().map(|i| i.serial.clone());
        let restore = if self.restore_login && st.login == Login::User {
            st.cached_pin.clone()
        } else {
            None
        };
        let r = self.transact_once(st, &mut |s, st| {
            let serial = identity(&CardFacts::probe_identity(s)?);
            if expected.as_deref().is_some_and(|e| *e != serial) {
                return Err(Error::DeviceRemoved);
            }
            if let Some(pin) = &restore {
                match s.verify_pin(pin) {
                    Ok(()) => {
                        st.pin.reset();
                        // The card's verification is ours now.
                        st.pin_found_verified = false;
                    }
                    Err(e) => {
                        // The PIN changed elsewhere: never try it again.
                        pin_error(e.status(), &mut st.pin);
                        self.forget_login(st);
                    }
                }
            } else if st.login == Login::User {
                self.forget_login(st);
            }
            Ok(())
        });
        match r {
            Err(Error::DeviceRemoved) | Err(Error::CardReset) => {
                self.mark_removed();
                st.card = None;
                Err(Error::DeviceRemoved)
            }
            other => other,
        }
    }

    /// Identify the card and read the PIN/PUK counters (no try spent).
    pub fn info(&self, st: &mut TokenState) -> Result<CardInfo> {
        if let Some(i) = &st.info {
            return Ok(i.clone());
        }
        self.transact(st, &mut |s, st| {
            let info = read_card_info(s)?;
            match info.facts.pin {
                Some(t) => {
                    st.pin = Counter {
                        left: Some(t.left),
                        total: t.total,
                    }
                }
                None if st.login == Login::None => read_pin_status(s, st)?,
                None => {}
            }
            if let Some(t) = info.facts.puk_tries(s)? {
                st.puk = Counter {
                    left: Some(t.left),
                    total: t.total,
                };
            }
            // CKF_RNG only where GET CHALLENGE answers.
            st.rng = Some(caps::probe_challenge(s)?);
            st.info = Some(info.clone());
            Ok(info)
        })
    }

    // ---- objects ----------------------------------------------------------

    fn cert_lookup(s: &mut Session<'_>, slot: Slot) -> Result<Option<Arc<CertInfo>>> {
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

    fn cert_cached(
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
    fn key_cached(
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
            KeyAnswer::Reported(md) => Some(Arc::new(KeyInfo::from_metadata(slot, &md)?)),
            KeyAnswer::Empty => None,
            KeyAnswer::CannotTell => {
                let cert = Self::cert_cached(s, st, slot)?;
                let records = Self::records(s, st)?;
                match generated::resolve(
                    records.get(slot),
                    cert.as_deref().map(|c| (&c.public, c.not_before_unix)),
                ) {
                    Some((pk, KeySource::Record)) => Some(Arc::new(KeyInfo::from_record(slot, pk))),
                    Some(_) => cert.map(|c| Arc::new(KeyInfo::from_cert(slot, &c))),
                    None => None,
                }
            }
        };
        st.slots.entry(slot).or_default().key = Some(k.clone());
        Ok(k)
    }

    /// ukey's record of keys generated on this card (read once).
    fn records<'a>(s: &mut Session<'_>, st: &'a mut TokenState) -> Result<&'a mut KeyRecords> {
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
    fn candidate_slots(s: &mut Session<'_>, st: &mut TokenState) -> Result<Vec<Slot>> {
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

    // ---- login ------------------------------------------------------------

    /// C_Login(CKU_USER).
    pub fn login_user(&self, st: &mut TokenState, pin: &Pin) -> Result<()> {
        match st.login {
            Login::User => return Err(Error::UserAlreadyLoggedIn),
            Login::SoPuk | Login::SoManagementKey => return Err(Error::UserAnotherAlreadyLoggedIn),
            Login::None => {}
        }
        self.info(st)?;
        self.transact(st, &mut |s, st| {
            // Is the card logged in already (another application)? An empty
            // VERIFY tells without spending a try.
            let found = matches!(s.pin_status(), Ok(PinStatus::Verified));
            match s.verify_pin(pin) {
                Ok(()) => {
                    st.pin.reset();
                    st.login = Login::User;
                    st.cached_pin = Some(pin.clone());
                    st.login_pin_unused = true;
                    st.pin_found_verified = found;
                    Ok(())
                }
                Err(e) => Err(pin_error(e.status(), &mut st.pin).unwrap_or_else(|| e.into())),
            }
        })
    }

    /// C_Login(CKU_CONTEXT_SPECIFIC): check the PIN now. If the next
    /// transaction is the operation, the card's verification is still fresh
    /// and the operation is one APDU; otherwise it verifies again first.
    pub fn verify_context(&self, st: &mut TokenState, pin: &Pin) -> Result<()> {
        self.transact(st, &mut |s, st| match s.verify_pin(pin) {
            Ok(()) => {
                st.pin.reset();
                st.context_verified = true;
                Ok(())
            }
            Err(e) => Err(pin_error(e.status(), &mut st.pin).unwrap_or_else(|| e.into())),
        })
    }

    /// C_Login(CKU_SO): the PUK (6–8 characters) or the management key (hex).
    pub fn login_so(&self, st: &mut TokenState, secret: &[u8]) -> Result<()> {
        match st.login {
            Login::SoPuk | Login::SoManagementKey => return Err(Error::UserAlreadyLoggedIn),
            Login::User => return Err(Error::UserAnotherAlreadyLoggedIn),
            Login::None => {}
        }
        let info = self.info(st)?;
        if (6..=8).contains(&secret.len()) {
            let puk = Pin::new(secret).map_err(|_| Error::PinInvalid)?;
            // PIV has no VERIFY for the PUK: CHANGE REFERENCE DATA with
            // old = new checks it and changes nothing.
            return self.transact(
                st,
                &mut |s, st| match s.change_reference(PinRef::Puk, &puk, &puk) {
                    Ok(()) => {
                        st.puk.reset();
                        st.login = Login::SoPuk;
                        st.so_puk = Some(puk.clone());
                        Ok(())
                    }
                    Err(e) => Err(pin_error(e.status(), &mut st.puk).unwrap_or_else(|| e.into())),
                },
            );
        }
        // C_Login answers a secret that cannot be right by its length with
        // CKR_PIN_INCORRECT (CKR_PIN_LEN_RANGE is for setting a PIN).
        if !matches!(secret.len(), 32 | 48 | 64) {
            return Err(Error::PinIncorrect);
        }
        let text = std::str::from_utf8(secret).map_err(|_| Error::PinInvalid)?;
        let bytes = Zeroizing::new(hex::decode(text).map_err(|_| Error::PinInvalid)?);
        let alg = self.management_algorithm(st, &info, bytes.len())?;
        let key = ManagementKey::new(alg, &bytes).map_err(|_| Error::PinIncorrect)?;
        self.transact(st, &mut |s, st| match s.authenticate(&key) {
            Ok(()) => {
                st.mgmt_authenticated = true;
                st.login = Login::SoManagementKey;
                st.so_key = Some(key.clone());
                Ok(())
            }
            Err(e)
                if matches!(
                    e.status(),
                    Some(StatusWord::SecurityStatusNotSatisfied | StatusWord::IncorrectP1P2)
                ) =>
            {
                Err(Error::PinIncorrect)
            }
            Err(apdu::Error::Malformed(_)) => Err(Error::PinIncorrect),
            Err(e) => Err(e.into()),
        })
    }

    fn management_algorithm(
        &self,
        st: &mut TokenState,
        info: &CardInfo,
        key_len: usize,
    ) -> Result<Algorithm> {
        if let Some(a) = st.mgmt_alg {
            return Ok(a);
        }
        let alg = if info.metadata() == MetadataSupport::Absent {
            None
        } else {
            self.transact(st, &mut |s, _| {
                Ok(info.facts.management_key(s)?.and_then(|m| m.algorithm))
            })?
        };
        let alg = alg.unwrap_or(match key_len {
            16 => Algorithm::Aes128,
            32 => Algorithm::Aes256,
            _ => Algorithm::Tdes,
        });
        st.mgmt_alg = Some(alg);
        Ok(alg)
    }

    /// C_Logout (also when the last session closes, and at C_Finalize):
    /// forget every secret held and leave the card as we found it.
    ///
    /// The PIV login is card-wide. If we verified the PIN (or authenticated
    /// the management key), that ends with a card reset: PC/SC reports it to
    /// every other connection before its next command, so they re-select and
    /// restore their own logins first (this module does), where a VERIFY
    /// P1=FF would log them out without telling them. If another application
    /// had verified the PIN before our login, the card stays verified: ending
    /// our login must not end theirs (OpenSC, for one, never logs in again by
    /// itself).
    pub fn logout(&self, st: &mut TokenState) -> Result<()> {
        if st.login == Login::None {
            return Err(Error::UserNotLoggedIn);
        }
        let card_state =
            (st.login == Login::User && !st.pin_found_verified) || st.mgmt_authenticated;
        self.forget_login(st);
        if card_state && !self.is_removed() {
            self.end_card_state(st);
        }
        Ok(())
    }

    /// Reset the card through our connection, so nothing we verified
    /// outlives our login; where the reset fails, VERIFY P1=FF at least
    /// drops the PIN (older cards may not know it: forgotten either way).
    fn end_card_state(&self, st: &mut TokenState) {
        st.selected = false;
        st.context_verified = false;
        st.pin_fresh = false;
        let reset = match st.card.as_mut() {
            Some(card) => card.transport_mut().reset().map_err(Error::from),
            None => Err(Error::DeviceRemoved),
        };
        match reset {
            Ok(()) => tracing::debug!(slot = self.slot_id, "login ended: card reset"),
            Err(e) => {
                tracing::debug!(slot = self.slot_id, "card reset failed ({e}): VERIFY P1=FF");
                let _ = self.transact(st, &mut |s, _| s.logout().map_err(Error::from));
            }
        }
    }

    /// Forget the login without card traffic (last session closed after removal).
    pub fn forget_login(&self, st: &mut TokenState) {
        st.login = Login::None;
        st.cached_pin = None;
        st.login_pin_unused = false;
        st.pin_found_verified = false;
        st.so_key = None;
        st.so_puk = None;
        st.mgmt_authenticated = false;
    }

    // ---- private key operations -------------------------------------------

    /// The PIN given to C_Login(CKU_USER) if no private-key operation has
    /// run since: it authorises one use of a PIN-always key, as the card
    /// itself accepts one operation right after a VERIFY. OpenSSH logs in
    /// and signs at once without CKU_CONTEXT_SPECIFIC, and OpenSC and ykcs11
    /// leave the decision to the card, so such a client works with them.
    /// Taking it uses it up; a second use needs CKU_CONTEXT_SPECIFIC.
    pub fn take_login_pin(&self, st: &mut TokenState) -> Option<Pin> {
        if st.login == Login::User && std::mem::take(&mut st.login_pin_unused) {
            st.cached_pin.clone()
        } else {
            None
        }
    }

    /// The private-key operation (GENERAL AUTHENTICATE) with the key in `slot`.
    /// With `context_pin` (PIN-always keys) the PIN is verified in the same
    /// transaction, right before the operation — unless C_Login's own VERIFY
    /// was the card's last command for us. Another application may have
    /// talked to the card in between: then the card refuses (6982) and the
    /// PIN is verified and the operation sent again.
    pub fn private_op(
        &self,
        st: &mut TokenState,
        slot: Slot,
        key: &KeyInfo,
        input_tag: u32,
        input: &[u8],
        context_pin: Option<&Pin>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if !key.needs_no_pin() && st.login != Login::User && context_pin.is_none() {
            return Err(Error::UserNotLoggedIn);
        }
        // Any private-key operation uses up the login's own PIN entry.
        st.login_pin_unused = false;
        self.transact(st, &mut |s, st| {
            let verify = |s: &mut Session<'_>, st: &mut TokenState, pin: &Pin| {
                s.verify_pin(pin)
                    .map_err(|e| pin_error(e.status(), &mut st.pin).unwrap_or_else(|| e.into()))
            };
            let skipped = match context_pin {
                Some(pin) if !st.pin_fresh => {
                    verify(s, st, pin)?;
                    None
                }
                other => other,
            };
            let mut r = s.general_authenticate(slot, key.alg, input_tag, input);
            let refused = |r: &std::result::Result<_, apdu::Error>| {
                matches!(r, Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied))
            };
            if let (Some(pin), true) = (skipped, refused(&r)) {
                verify(s, st, pin)?;
                r = s.general_authenticate(slot, key.alg, input_tag, input);
            } else if refused(&r) && context_pin.is_none() && st.login == Login::User {
                // A PIN-once key refused while we are logged in: another
                // application logged the card out (VERIFY P1=FF). Log in
                // again with the PIN held, as after a reset, or say truly
                // that the login is gone.
                if !self.login_again(s, st)? {
                    return Err(Error::UserNotLoggedIn);
                }
                r = s.general_authenticate(slot, key.alg, input_tag, input);
            }
            match r {
                Ok(out) => Ok(out),
                Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied) => {
                    Err(Error::UserNotLoggedIn)
                }
                Err(e) if e.status() == Some(StatusWord::IncorrectData) => Err(Error::DataInvalid),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The card forgot our PIN verification behind our back (another
    /// application's logout): verify again with the PIN held, in the
    /// running transaction, when restoring logins is on (as after a reset).
    /// `Ok(false)`, and no login left, when that is off or the PIN no
    /// longer works (then it is never tried again).
    fn login_again(&self, s: &mut Session<'_>, st: &mut TokenState) -> Result<bool> {
        let pin = match (&st.cached_pin, self.restore_login) {
            (Some(pin), true) => pin.clone(),
            _ => {
                tracing::info!(slot = self.slot_id, "the card was logged out elsewhere");
                self.forget_login(st);
                return Ok(false);
            }
        };
        tracing::info!(
            slot = self.slot_id,
            "the card was logged out elsewhere: logging in again"
        );
        match s.verify_pin(&pin) {
            Ok(()) => {
                st.pin.reset();
                st.pin_found_verified = false;
                Ok(true)
            }
            Err(e) if e.status().is_some() => {
                pin_error(e.status(), &mut st.pin);
                self.forget_login(st);
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    // ---- writes (management key) ------------------------------------------

    /// Authenticate with the management key: the SO's, or the PIN-protected
    /// one read after the user's login (never shown to anyone).
    fn ensure_management(&self, s: &mut Session<'_>, st: &mut TokenState) -> Result<()> {
        if st.mgmt_authenticated {
            return Ok(());
        }
        let key = match (st.login, st.so_key.clone()) {
            (Login::SoManagementKey, Some(k)) => k,
            (Login::User, _) => {
                let protected = match st.mgmt_protected {
                    Some(p) => p,
                    None => {
                        let p = s
                            .get_data_opt(ObjectId::ADMIN_DATA)?
                            .and_then(|c| AdminData::parse(&c).ok())
                            .is_some_and(|a| a.management_key_protected());
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
                let alg = match st.mgmt_alg {
                    Some(a) => a,
                    None => {
                        let a = s
                            .metadata(MANAGEMENT_KEY_REF)
                            .ok()
                            .and_then(|m| m.algorithm)
                            .unwrap_or(if stored.key.len() == 24 {
                                Algorithm::Tdes
                            } else {
                                Algorithm::Aes128
                            });
                        st.mgmt_alg = Some(a);
                        a
                    }
                };
                ManagementKey::new(alg, &stored.key)?
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
    fn cover_retired(
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
                alg,
                public,
                pin_policy: if pin == PinPolicy::Default {
                    slot.default_pin_policy()
                } else {
                    pin
                },
                origin: Some(apdu::piv::KeyOrigin::Generated),
            });
            st.slots.entry(slot).or_default().key = Some(Some(info.clone()));
            Self::keep_visible(s, st, slot, &info.public)?;
            Ok(info)
        })
    }

    /// After GENERATE: on a card that cannot report the new key (no working
    /// GET METADATA for it), record its public key where every later
    /// process finds it — on the card, else on this host — until its
    /// certificate is written. A card that reports it needs no record (an
    /// old one for the slot goes).
    fn keep_visible(
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
                    Self::keep_visible(s, st, slot, &key.public)?;
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
                                Some(Some(Arc::new(KeyInfo::from_metadata(slot, &md)?)));
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
    fn no_move_key(st: &mut TokenState, e: &apdu::Error) -> Option<Error> {
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

    // ---- the renewal data object ------------------------------------------

    fn renewal_lookup(s: &mut Session<'_>, st: &mut TokenState) -> Result<RenewalData> {
        if let Some(r) = &st.renewal {
            return Ok(r.clone());
        }
        let r = match s.get_data_opt(RENEWAL_OBJECT)? {
            None => RenewalData::Absent,
            Some(c) if c.is_empty() => RenewalData::Absent,
            Some(c) => match parse_renewal(&c) {
                Some(v) => RenewalData::Ours(Arc::new(v)),
                None => {
                    tracing::info!("object {RENEWAL_OBJECT} holds another application's data");
                    RenewalData::Foreign
                }
            },
        };
        st.renewal = Some(r.clone());
        Ok(r)
    }

    /// What the renewal object holds (from cache or card).
    pub fn renewal(&self, st: &mut TokenState) -> Result<RenewalData> {
        self.info(st)?;
        self.transact(st, &mut |s, st| Self::renewal_lookup(s, st))
    }

    /// Cached renewal value (no card traffic), for attribute reads.
    pub fn cached_renewal(st: &TokenState) -> Option<Arc<Vec<u8>>> {
        match &st.renewal {
            Some(RenewalData::Ours(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// Create (`create`: only if there is none) or replace the value of the
    /// renewal object (only if it still holds the value this module showed:
    /// a compare-and-swap, checked in the same transaction): one PUT DATA,
    /// read back. Never overwrites another application's data.
    pub fn write_renewal(&self, st: &mut TokenState, value: &[u8], create: bool) -> Result<()> {
        let content = Builder::new()
            .add(0x80u32, RENEWAL_APPLICATION.as_bytes())
            .add(0x81u32, value)
            .build();
        let shown = Self::shown_renewal(st);
        self.write_op(st, &mut |s, st| {
            Self::require_renewal(s, st, &shown, create)?;
            st.renewal = None;
            match s.put_data(RENEWAL_OBJECT, &content) {
                Ok(()) => {}
                Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied) => {
                    return Err(Error::UserNotLoggedIn)
                }
                Err(e) => return Err(e.into()),
            }
            match Self::renewal_lookup(s, st)? {
                RenewalData::Ours(v) if v[..] == *value => Ok(()),
                _ => {
                    st.renewal = None;
                    Err(Error::DeviceError(
                        "the renewal data read back differs from what was written".into(),
                    ))
                }
            }
        })
    }

    /// Empty the renewal object (only ours, and only if it still holds the
    /// value this module showed: checked in the same transaction).
    pub fn delete_renewal(&self, st: &mut TokenState) -> Result<()> {
        let shown = Self::shown_renewal(st);
        self.write_op(st, &mut |s, st| {
            Self::require_renewal(s, st, &shown, false)?;
            st.renewal = None;
            s.delete_data(RENEWAL_OBJECT)
                .map_err(|e| match e.status() {
                    Some(StatusWord::SecurityStatusNotSatisfied) => Error::UserNotLoggedIn,
                    _ => e.into(),
                })?;
            st.renewal = Some(RenewalData::Absent);
            Ok(())
        })
    }

    // ---- PIN / PUK / management key changes -------------------------------

    /// C_SetPIN in a user or public session: change the PIN.
    pub fn change_pin(&self, st: &mut TokenState, old: &Pin, new: &Pin) -> Result<()> {
        self.info(st)?;
        self.transact(
            st,
            &mut |s, st| match s.change_reference(PinRef::Pin, old, new) {
                Ok(()) => {
                    st.pin.reset();
                    if st.login == Login::User {
                        st.cached_pin = Some(new.clone());
                    }
                    Ok(())
                }
                Err(e) => Err(pin_error(e.status(), &mut st.pin).unwrap_or_else(|| e.into())),
            },
        )
    }

    /// C_SetPIN as SO with the PUK: change the PUK.
    pub fn change_puk(&self, st: &mut TokenState, old: &Pin, new: &Pin) -> Result<()> {
        self.transact(
            st,
            &mut |s, st| match s.change_reference(PinRef::Puk, old, new) {
                Ok(()) => {
                    st.puk.reset();
                    st.so_puk = Some(new.clone());
                    Ok(())
                }
                Err(e) => Err(pin_error(e.status(), &mut st.puk).unwrap_or_else(|| e.into())),
            },
        )
    }

    /// C_InitPIN as SO with the PUK: unblock and set the user PIN.
    pub fn unblock_pin(&self, st: &mut TokenState, new_pin: &Pin) -> Result<()> {
        let puk = match (st.login, st.so_puk.clone()) {
            (Login::SoPuk, Some(p)) => p,
            (Login::SoManagementKey, _) => {
                return Err(Error::ActionProhibited(
                    "resetting the PIN needs the SO logged in with the PUK",
                ))
            }
            _ => return Err(Error::UserNotLoggedIn),
        };
        self.transact(st, &mut |s, st| match s.unblock_pin(&puk, new_pin) {
            Ok(()) => {
                st.pin.reset();
                st.puk.reset();
                Ok(())
            }
            Err(e) => Err(pin_error(e.status(), &mut st.puk).unwrap_or_else(|| e.into())),
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

    /// Random bytes from GET CHALLENGE.
    pub fn random(&self, st: &mut TokenState, out_len: usize) -> Result<Vec<u8>> {
        if st.rng == Some(false) {
            return Err(Error::RandomNoRng);
        }
        self.info(st)?;
        let r = self.transact(st, &mut |s, _| {
            let mut out = Vec::with_capacity(out_len);
            while out.len() < out_len {
                let n = (out_len - out.len()).min(256);
                out.extend(s.get_challenge(n)?);
            }
            Ok(out)
        });
        match r {
            Err(Error::DeviceError(_)) | Err(Error::Reselect) => {
                st.rng = Some(false);
                Err(Error::RandomNoRng)
            }
            other => {
                if other.is_ok() {
                    st.rng = Some(true);
                }
                other
            }
        }
    }

    /// Whether a public key from a certificate matches the key in `slot`.
    pub fn public_matches(key: &KeyInfo, public: &PublicKey) -> bool {
        &key.public == public
    }
}

/// The serial shown in CK_TOKEN_INFO (16 characters at most): the card's
/// identity (a CHUID GUID's first 8 bytes in hex), "unknown" without
/// serial or CHUID.
fn identity(facts: &CardFacts) -> String {
    let mut id = facts.identity().unwrap_or_else(|| "unknown".into());
    id.truncate(16);
    id
}

/// SELECTed already: who is this card, and what does it answer?
fn read_card_info(s: &mut Session<'_>) -> Result<CardInfo> {
    let facts = CardFacts::probe(s)?;
    Ok(CardInfo {
        serial: identity(&facts),
        version: facts.version,
        yubikey: facts.yubikey_extensions(),
        facts,
    })
}

/// Empty VERIFY: the PIN's state without spending a try.
fn read_pin_status(s: &mut Session<'_>, st: &mut TokenState) -> Result<()> {
    match s.pin_status() {
        Ok(PinStatus::TriesLeft(n)) => st.pin.set_left(n),
        Ok(PinStatus::Blocked) => st.pin.set_left(0),
        Ok(PinStatus::Verified) => {}
        Err(e) if e.status().is_some() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;
    use ukey_sim::{SharedCard, SimCard, SimReader};

    /// A card with a P-256 key in 9C (PIN always) and a token on it.
    fn signature_card() -> (SharedCard, Token) {
        let mut p = ukey_sim::state::Persistent::factory(1);
        let ca = ukey_sim::ca::Ca::new("CN=t").unwrap();
        let opts = ukey_sim::demo::DemoOptions {
            keys: vec![(Slot::Signature, Algorithm::EccP256)],
            ..ukey_sim::demo::DemoOptions::default()
        };
        ukey_sim::demo::provision(&mut p, &ca, &opts).unwrap();
        let card = SimCard::new(p).shared();
        let token = Token::new(0, 1, Connector::Sim(SimReader::new(card.clone(), "t")));
        (card, token)
    }

    fn sent(card: &SharedCard) -> Vec<u8> {
        let mut c = card.lock().unwrap();
        let ins = c.log().iter().map(|e| e.ins()).collect();
        c.clear_log();
        ins
    }

    fn sign_9c(card: &SharedCard, token: &Token, between: impl FnOnce(&mut TokenState)) -> Vec<u8> {
        let pin = Pin::new(b"123456").unwrap();
        let mut st = token.lock();
        let key = token.key(&mut st, Slot::Signature).unwrap().unwrap();
        assert!(key.always_authenticate());
        token.verify_context(&mut st, &pin).unwrap();
        between(&mut st);
        sent(card);
        token
            .private_op(
                &mut st,
                Slot::Signature,
                &key,
                0x81,
                &[0x11; 32],
                Some(&pin),
            )
            .unwrap();
        sent(card)
    }

    /// Logging out resets the card: another connection to it is told
    /// (CardReset) instead of finding its PIN state gone, and no VERIFY
    /// P1=FF is sent.
    #[test]
    fn logout_resets_the_card_for_everyone_instead_of_verify_ff() {
        let (card, token) = signature_card();
        let mut other = apdu::PivCard::new(ukey_sim::SimTransport::new(card.clone()));
        other.transaction(|s| s.select()).unwrap();
        let pin = Pin::new(b"123456").unwrap();
        let mut st = token.lock();
        token.login_user(&mut st, &pin).unwrap();
        sent(&card);
        token.logout(&mut st).unwrap();
        assert_eq!(st.login, Login::None);
        assert!(!sent(&card).contains(&0x20), "no VERIFY (P1=FF)");
        let e = other.transaction(|s| s.select()).unwrap_err();
        assert!(
            matches!(
                e,
                apdu::Error::Transport(apdu::transport::TransportError::CardReset)
            ),
            "{e:?}"
        );
        // The card forgot the PIN; we select again by ourselves.
        assert_eq!(
            token
                .transact(&mut st, &mut |s, _| Ok(s.pin_status()?))
                .unwrap(),
            PinStatus::TriesLeft(3)
        );
    }

    #[test]
    fn pin_always_signature_right_after_the_context_login_is_one_apdu() {
        let (card, token) = signature_card();
        assert_eq!(sign_9c(&card, &token, |_| {}), [0x87]);
    }

    #[test]
    fn our_own_card_traffic_in_between_means_verify_first() {
        let (card, token) = signature_card();
        let ins = sign_9c(&card, &token, |st| {
            token.random(st, 8).unwrap();
        });
        assert_eq!(ins, [0x20, 0x87]);
    }

    #[test]
    fn another_application_in_between_costs_a_refusal_and_a_verify() {
        let (card, token) = signature_card();
        let ins = sign_9c(&card, &token, |_| {
            // Another application's command reaches the card first.
            let r = card
                .lock()
                .unwrap()
                .transmit(&hex!("00 FD 00 00 00"))
                .unwrap();
            assert!(r.ends_with(&[0x90, 0x00]));
        });
        assert_eq!(ins, [0x87, 0x20, 0x87]);
    }
}
