//! The PIV token as a [`Backend`]: what PKCS#11 asks of a token, answered
//! with the card's slots. Object changes (names, moves, certificates,
//! deletions, key generation) are in `edits.rs`; the destroy policy and
//! applications' names in `naming.rs`.

use super::convert::{key_ref, slot_of};
use super::naming::{self, SlotObject};
use super::state::{Counter, Login, RenewalData, Token, TokenState};
use super::vendor::{RENEWAL_APPLICATION, RENEWAL_KEY};
use crate::backend::{
    Answers, Backend, Ctx, KeyRef, LoginState, ObjectId, PrivateOp, SecretUse, TokenInfo,
};
use crate::error::{Error, Result};
use crate::key::KeyAlg;
use crate::keyinfo::KeyInfo;
use crate::mechanism;
use crate::object::{self, as_ulong, find, Kind};
use crate::values::{AttrAnswer, Attribute, Mechanism};
use apdu::piv::Pin;
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The objects a template can match (by CKA_CLASS).
struct Classes {
    /// Slot objects.
    kinds: Vec<Kind>,
    /// The renewal data object.
    renewal: bool,
}

fn kind_filter(template: &[Attribute]) -> Classes {
    let none = Classes {
        kinds: Vec::new(),
        renewal: false,
    };
    match find(template, CKA_CLASS).map(as_ulong) {
        None => Classes {
            kinds: vec![Kind::Certificate, Kind::PublicKey, Kind::PrivateKey],
            renewal: true,
        },
        Some(Some(CKO_DATA)) => Classes {
            renewal: true,
            ..none
        },
        Some(Some(c)) => Classes {
            kinds: Kind::from_class(c)
                .filter(|k| *k != Kind::Data)
                .into_iter()
                .collect(),
            ..none
        },
        Some(None) => none,
    }
}

/// Whether answering `asks` needs to know if the card can move or delete
/// keys (asked of the card only then: see `Token::can_move_keys`).
pub(super) fn asks_mobility(asks: &[CK_ATTRIBUTE_TYPE]) -> bool {
    asks.iter().any(|a| {
        matches!(
            *a,
            CKA_MODIFIABLE | CKA_DESTROYABLE | naming::CKA_UKEY_MOVABLE
        )
    })
}

/// Every attribute of the renewal data object holding `value`.
pub fn renewal_attribute(value: &[u8], attr: CK_ATTRIBUTE_TYPE) -> AttrAnswer {
    let name = RENEWAL_APPLICATION.as_bytes();
    let b = |v: bool| AttrAnswer::Value(vec![if v { CK_TRUE } else { CK_FALSE }]);
    match attr {
        CKA_CLASS => object::ulong(CKO_DATA),
        CKA_TOKEN | CKA_MODIFIABLE | CKA_DESTROYABLE => b(true),
        CKA_PRIVATE | CKA_COPYABLE => b(false),
        CKA_LABEL | CKA_APPLICATION => AttrAnswer::Value(name.to_vec()),
        // No OID names this kind of data: the spec's default, empty.
        CKA_OBJECT_ID => AttrAnswer::Value(Vec::new()),
        CKA_VALUE => AttrAnswer::Value(value.to_vec()),
        _ => AttrAnswer::Invalid,
    }
}

fn counter_flags(c: Counter, low: CK_FLAGS, final_try: CK_FLAGS, locked: CK_FLAGS) -> CK_FLAGS {
    match (c.left, c.total.unwrap_or(3)) {
        (Some(0), _) => locked,
        (Some(1), _) => final_try,
        (Some(l), total) if l < total => low,
        _ => 0,
    }
}

/// A PIN or PUK as the card takes it (6–8 bytes, no FF).
fn pin(bytes: &[u8]) -> Result<Pin> {
    Pin::new(bytes).map_err(|_| Error::PinInvalid)
}

impl Token {
    /// The slot of an object, if it names one.
    pub(super) fn slot_object(obj: ObjectId) -> Option<SlotObject> {
        let slot = slot_of(obj.key)?;
        (obj.kind != Kind::Data).then_some(SlotObject {
            slot,
            kind: obj.kind,
        })
    }

    /// The renewal data object's value, if the token still has it.
    pub(super) fn renewal_value(&self, st: &mut TokenState) -> Result<Arc<Vec<u8>>> {
        if let Some(v) = Token::cached_renewal(st) {
            return Ok(v);
        }
        match self.renewal(st)? {
            RenewalData::Ours(v) => Ok(v),
            _ => Err(Error::ObjectHandleInvalid),
        }
    }

    /// The PIN that authorises this use of a PIN-always key: the one given
    /// to C_Login(CKU_CONTEXT_SPECIFIC) for this operation, else the one
    /// given to C_Login(CKU_USER) if nothing has used it yet (see
    /// `Token::take_login_pin`). Other keys need none beyond the login.
    fn pin_for_use(
        &self,
        st: &mut TokenState,
        key: &KeyInfo,
        context_pin: Option<&Pin>,
    ) -> Result<Option<Pin>> {
        match (context_pin, key.always_authenticate()) {
            (Some(pin), _) => Ok(Some(pin.clone())),
            (None, true) => self
                .take_login_pin(st)
                .map(Some)
                .ok_or(Error::UserNotLoggedIn),
            (None, false) => Ok(None),
        }
    }
}

/// An ECDSA signature from the card (DER `SEQUENCE { r, s }`) as r ‖ s.
fn ecdsa_raw(alg: KeyAlg, der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |_| Error::DeviceError("malformed ECDSA signature from the card".into());
    Ok(Zeroizing::new(match alg {
        KeyAlg::EcP256 => p256::ecdsa::Signature::from_der(der)
            .map_err(bad)?
            .to_bytes()
            .to_vec(),
        KeyAlg::EcP384 => p384::ecdsa::Signature::from_der(der)
            .map_err(bad)?
            .to_bytes()
            .to_vec(),
        _ => return Err(Error::KeyTypeInconsistent),
    }))
}

impl Backend for Token {
    fn slot_id(&self) -> CK_SLOT_ID {
        self.slot_id
    }

    fn generation(&self) -> u64 {
        self.generation
    }

    fn is_removed(&self) -> bool {
        Token::is_removed(self)
    }

    fn mark_removed(&self) {
        Token::mark_removed(self)
    }

    fn token_info(&self) -> Result<TokenInfo> {
        let mut st = self.lock();
        let info = self.info(&mut st)?;
        let mut flags = CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED;
        if st.rng != Some(false) {
            flags |= CKF_RNG;
        }
        flags |= counter_flags(
            st.pin,
            CKF_USER_PIN_COUNT_LOW,
            CKF_USER_PIN_FINAL_TRY,
            CKF_USER_PIN_LOCKED,
        );
        flags |= counter_flags(
            st.puk,
            CKF_SO_PIN_COUNT_LOW,
            CKF_SO_PIN_FINAL_TRY,
            CKF_SO_PIN_LOCKED,
        );
        let version = info.version.map_or((0, 0), |v| (v.0, v.1));
        let (manufacturer, model) = if info.yubikey {
            ("Yubico".to_string(), format!("YubiKey YK{}", version.0))
        } else {
            ("PIV".to_string(), "PIV card".to_string())
        };
        Ok(TokenInfo {
            label: info.label(),
            manufacturer,
            model,
            serial: info.serial.clone(),
            flags,
            min_pin: 6,
            max_pin: 8,
            version,
        })
    }

    fn mechanisms(&self) -> Vec<CK_MECHANISM_TYPE> {
        mechanism::list()
    }

    fn mechanism_info(&self, kind: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO> {
        let max_rsa = {
            let mut st = self.lock();
            self.info(&mut st)?.max_rsa_bits()
        };
        mechanism::info(kind, max_rsa)
    }

    fn login_state(&self) -> LoginState {
        match self.lock().login {
            Login::None => LoginState::None,
            Login::User => LoginState::User,
            Login::SoPuk | Login::SoManagementKey => LoginState::So,
        }
    }

    fn secret_len_ok(&self, use_: SecretUse, len: usize) -> bool {
        let pin_len = (6..=8).contains(&len);
        match use_ {
            SecretUse::UserLogin | SecretUse::Init => pin_len,
            // The PUK, or the management key in hex (32/48/64).
            SecretUse::SoLogin => pin_len || matches!(len, 32 | 48 | 64),
            SecretUse::Change => match self.lock().login {
                // The management key in hex: checked by its change.
                Login::SoManagementKey => len <= crate::backend::MAX_SECRET_LEN,
                _ => pin_len,
            },
        }
    }

    fn login_user(&self, pin_bytes: &[u8]) -> Result<()> {
        let pin = pin(pin_bytes)?;
        let mut st = self.lock();
        Token::login_user(self, &mut st, &pin)
    }

    fn login_so(&self, secret: &[u8]) -> Result<()> {
        let mut st = self.lock();
        Token::login_so(self, &mut st, secret)
    }

    fn verify_context(&self, pin_bytes: &[u8]) -> Result<()> {
        let pin = pin(pin_bytes)?;
        let mut st = self.lock();
        Token::verify_context(self, &mut st, &pin)
    }

    fn logout(&self) -> Result<()> {
        let mut st = self.lock();
        Token::logout(self, &mut st)
    }

    fn forget_login(&self) {
        let mut st = self.lock();
        Token::forget_login(self, &mut st)
    }

    fn init_pin(&self, rw: bool, pin_bytes: &[u8]) -> Result<()> {
        let pin = pin(pin_bytes)?;
        let mut st = self.lock();
        if !matches!(st.login, Login::SoPuk | Login::SoManagementKey) {
            return Err(Error::UserNotLoggedIn);
        }
        if !rw {
            return Err(Error::SessionReadOnly);
        }
        self.unblock_pin(&mut st, &pin)
    }

    fn set_pin(&self, old: &[u8], new: &[u8]) -> Result<()> {
        let mut st = self.lock();
        match st.login {
            Login::SoManagementKey => self.change_management_key(&mut st, old, new),
            Login::SoPuk => {
                let (old, new) = (pin(old)?, pin(new)?);
                self.change_puk(&mut st, &old, &new)
            }
            Login::User | Login::None => {
                let (old, new) = (pin(old)?, pin(new)?);
                self.change_pin(&mut st, &old, &new)
            }
        }
    }

    fn random(&self, len: usize) -> Result<Vec<u8>> {
        let mut st = self.lock();
        Token::random(self, &mut st, len)
    }

    fn find(&self, _ctx: &Ctx<'_>, template: &[Attribute]) -> Result<Vec<ObjectId>> {
        let Classes { kinds, renewal } = kind_filter(template);
        let mut out = Vec::new();
        let slots = if kinds.is_empty() {
            None
        } else {
            let mut st = self.lock();
            naming::slot_filter(template, &mut || self.names(&mut st))?
        };
        if !kinds.is_empty() && slots.as_ref().is_none_or(|l| !l.is_empty()) {
            let mut st = self.lock();
            let names = if naming::needs_names(template) {
                Some(self.names(&mut st)?)
            } else {
                None
            };
            let logged_in = st.login == Login::User;
            let want_cert = kinds.contains(&Kind::Certificate);
            let want_key = kinds.iter().any(|k| *k != Kind::Certificate);
            let found = self.lookup(&mut st, slots.as_deref(), want_cert, want_key)?;
            let destroy = asks_mobility(&template.iter().map(|a| a.kind).collect::<Vec<_>>())
                && self.can_move_keys(&mut st).unwrap_or(false);
            drop(st);
            for (slot, cert, key) in found {
                for &kind in &kinds {
                    let present = match kind {
                        Kind::Certificate => cert.is_some(),
                        Kind::PublicKey => key.is_some(),
                        Kind::PrivateKey => key
                            .as_ref()
                            .is_some_and(|k| logged_in || !object::private_key_is_private(k)),
                        Kind::Data => false,
                    };
                    if !present {
                        continue;
                    }
                    let obj = SlotObject { slot, kind };
                    let ok = naming::named_matches(
                        template,
                        obj,
                        cert.as_deref(),
                        key.as_deref(),
                        destroy,
                        names.as_ref().and_then(|n| n.get(slot)),
                    );
                    if ok {
                        out.push(ObjectId {
                            key: key_ref(slot),
                            kind,
                        });
                    }
                }
            }
        }
        // The data object has no CKA_ID: a template naming one cannot match it.
        if renewal && slots.is_none() {
            let found = {
                let mut st = self.lock();
                self.renewal(&mut st)?
            };
            if let RenewalData::Ours(v) = found {
                if object::matches(template, |a| renewal_attribute(&v, a)) {
                    out.push(ObjectId {
                        key: RENEWAL_KEY,
                        kind: Kind::Data,
                    });
                }
            }
        }
        Ok(out)
    }

    fn attributes(&self, obj: ObjectId, asks: &[CK_ATTRIBUTE_TYPE]) -> Result<Answers> {
        if obj.kind == Kind::Data {
            if obj.key != RENEWAL_KEY {
                return Err(Error::ObjectHandleInvalid);
            }
            let v = {
                let mut st = self.lock();
                self.renewal_value(&mut st)?
            };
            return Ok(Box::new(move |a| renewal_attribute(&v, a)));
        }
        let object = Token::slot_object(obj).ok_or(Error::ObjectHandleInvalid)?;
        let mut st = self.lock();
        let (mut cert, mut key) = Token::cached(&st, object.slot);
        let needed = match object.kind {
            Kind::Certificate => cert.is_none(),
            _ => key.is_none() && cert.is_none(),
        };
        if needed {
            let found = self.lookup(&mut st, Some(&[object.slot]), true, true)?;
            if let Some((_, c, k)) = found.into_iter().next() {
                cert = c;
                key = k;
            }
        }
        let exists = match object.kind {
            Kind::Certificate => cert.is_some(),
            Kind::PublicKey => key.is_some() || cert.is_some(),
            _ => key.is_some(),
        };
        if !exists {
            return Err(Error::ObjectHandleInvalid);
        }
        let destroy = asks_mobility(asks) && self.can_move_keys(&mut st).unwrap_or(false);
        let names = match Token::cached_names(&st, object.slot) {
            Some(n) => Some(n),
            None => self.names(&mut st)?.get(object.slot).cloned(),
        };
        Ok(Box::new(move |a| {
            naming::named_attribute(
                object,
                cert.as_deref(),
                key.as_deref(),
                destroy,
                names.as_ref(),
                a,
            )
        }))
    }

    fn set_attributes(
        &self,
        ctx: &Ctx<'_>,
        handle: CK_OBJECT_HANDLE,
        obj: ObjectId,
        attrs: &[Attribute],
    ) -> Result<()> {
        self.edit_attributes(ctx, handle, obj, attrs)
    }

    fn create_object(&self, ctx: &Ctx<'_>, template: &[Attribute]) -> Result<ObjectId> {
        self.create(ctx, template)
    }

    fn destroy_object(&self, ctx: &Ctx<'_>, handle: CK_OBJECT_HANDLE, obj: ObjectId) -> Result<()> {
        self.destroy(ctx, handle, obj)
    }

    fn generate_key_pair(
        &self,
        ctx: &Ctx<'_>,
        mech: &Mechanism,
        public: &[Attribute],
        private: &[Attribute],
    ) -> Result<(ObjectId, ObjectId)> {
        self.generate_pair(ctx, mech, public, private)
    }

    fn key(&self, obj: ObjectId) -> Result<Arc<KeyInfo>> {
        let slot = slot_of(obj.key).ok_or(Error::KeyHandleInvalid)?;
        let mut st = self.lock();
        match Token::cached(&st, slot).1 {
            Some(k) => Ok(k),
            None => Token::key(self, &mut st, slot)?.ok_or(Error::KeyHandleInvalid),
        }
    }

    fn private_op(
        &self,
        key: KeyRef,
        info: &KeyInfo,
        op: PrivateOp,
        input: &[u8],
        context_pin: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let slot = slot_of(key).ok_or(Error::KeyHandleInvalid)?;
        let context_pin = context_pin.map(pin).transpose()?;
        let out = {
            let mut st = self.lock();
            let pin = self.pin_for_use(&mut st, info, context_pin.as_ref())?;
            Token::private_op(self, &mut st, slot, info, op, input, pin.as_ref())?
        };
        match op {
            PrivateOp::Raw if info.alg.is_ec() => ecdsa_raw(info.alg, &out),
            _ => Ok(out),
        }
    }
}
