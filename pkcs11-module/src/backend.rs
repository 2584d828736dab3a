//! The seam between the PKCS#11 layer and a kind of token.
//!
//! Sessions, handles, operations in progress and the functions in `fns/`
//! know a token only through [`Backend`]: its objects by an opaque
//! [`ObjectId`], its keys as [`KeyInfo`] in the neutral vocabulary of
//! `key.rs`, its private-key operations as a [`PrivateOp`] on a block the
//! host prepared. Each kind of token implements it in its own folder (PIV:
//! `token/`); a new kind touches no `fns/` file. The backend keeps its own
//! state behind its own lock and does every card or vendor call itself.

use crate::error::Result;
use crate::keyinfo::KeyInfo;
use crate::object::Handles;
pub use crate::object::{KeyRef, ObjectId};
use crate::values::{AttrAnswer, Attribute, Mechanism};
use cryptoki_sys::{
    CK_ATTRIBUTE_TYPE, CK_FLAGS, CK_MECHANISM_INFO, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE,
    CK_SESSION_HANDLE, CK_SLOT_ID,
};
use std::sync::{Mutex, MutexGuard};
use zeroize::Zeroizing;

/// Who is logged in, as PKCS#11 sessions see it (the login is per token,
/// shared by an application's sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginState {
    None,
    User,
    So,
}

/// What a private-key operation does with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateOp {
    /// The raw private-key operation on a block the host prepared: an RSA
    /// signature or decryption, an ECDSA signature on a digest. An ECDSA
    /// signature comes back as r ‖ s.
    Raw,
    /// ECDH: the other party's public point in, the shared secret out.
    KeyAgreement,
}

/// Where a secret from the caller is used: its length is checked against
/// the token's rule before the caller's buffer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUse {
    /// C_Login(CKU_USER) and C_Login(CKU_CONTEXT_SPECIFIC).
    UserLogin,
    /// C_Login(CKU_SO).
    SoLogin,
    /// C_SetPIN's old and new values, for whoever is logged in.
    Change,
    /// C_InitPIN's new PIN.
    Init,
}

/// Longest secret any token takes from a caller (a 256-bit key in hex).
pub const MAX_SECRET_LEN: usize = 64;

/// The token's part of CK_TOKEN_INFO.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    /// CKF_ flags: login, RNG, PIN counters.
    pub flags: CK_FLAGS,
    pub min_pin: usize,
    pub max_pin: usize,
    /// Hardware and firmware version (major, minor).
    pub version: (u8, u8),
}

/// What a backend may need of the calling session: its handle and slot,
/// whether it is read-write, and the handle table (a write makes old
/// handles die, a move retargets one).
pub struct Ctx<'a> {
    pub slot_id: CK_SLOT_ID,
    pub session: CK_SESSION_HANDLE,
    pub rw: bool,
    pub handles: &'a Mutex<Handles>,
}

impl Ctx<'_> {
    pub fn handles(&self) -> MutexGuard<'_, Handles> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An object's attributes, answered from what was read.
pub type Answers = Box<dyn Fn(CK_ATTRIBUTE_TYPE) -> AttrAnswer>;

/// What the PKCS#11 layer needs from one token (one insertion of it).
pub trait Backend: Send + Sync {
    /// The slot it sits in.
    fn slot_id(&self) -> CK_SLOT_ID;
    /// Which insertion this is: handles of another insertion are invalid.
    fn generation(&self) -> u64;
    fn is_removed(&self) -> bool;
    fn mark_removed(&self);

    /// Identity and PIN state, read once and then kept from the token's own
    /// answers (polling spends no try).
    fn token_info(&self) -> Result<TokenInfo>;
    fn mechanisms(&self) -> Vec<CK_MECHANISM_TYPE>;
    fn mechanism_info(&self, kind: CK_MECHANISM_TYPE) -> Result<CK_MECHANISM_INFO>;

    fn login_state(&self) -> LoginState;
    /// Whether a secret of `len` bytes can be right for `use_` (decided
    /// before the caller's buffer is read; a wrong length spends no try).
    fn secret_len_ok(&self, use_: SecretUse, len: usize) -> bool;
    fn login_user(&self, pin: &[u8]) -> Result<()>;
    fn login_so(&self, secret: &[u8]) -> Result<()>;
    /// C_Login(CKU_CONTEXT_SPECIFIC): check the PIN for the next use of a
    /// key that needs it every time.
    fn verify_context(&self, pin: &[u8]) -> Result<()>;
    fn logout(&self) -> Result<()>;
    /// The token is gone: forget the login without talking to it.
    fn forget_login(&self);
    /// C_InitPIN (as the SO).
    fn init_pin(&self, rw: bool, pin: &[u8]) -> Result<()>;
    /// C_SetPIN for whoever is logged in.
    fn set_pin(&self, old: &[u8], new: &[u8]) -> Result<()>;
    fn random(&self, len: usize) -> Result<Vec<u8>>;

    /// The token objects a search template can match.
    fn find(&self, ctx: &Ctx<'_>, template: &[Attribute]) -> Result<Vec<ObjectId>>;
    /// The attributes of an object (`asks`: the ones wanted, where
    /// answering some costs the token a question).
    fn attributes(&self, obj: ObjectId, asks: &[CK_ATTRIBUTE_TYPE]) -> Result<Answers>;
    fn set_attributes(
        &self,
        ctx: &Ctx<'_>,
        handle: CK_OBJECT_HANDLE,
        obj: ObjectId,
        attrs: &[Attribute],
    ) -> Result<()>;
    fn create_object(&self, ctx: &Ctx<'_>, template: &[Attribute]) -> Result<ObjectId>;
    fn destroy_object(&self, ctx: &Ctx<'_>, handle: CK_OBJECT_HANDLE, obj: ObjectId) -> Result<()>;
    /// C_GenerateKeyPair: (public, private).
    fn generate_key_pair(
        &self,
        ctx: &Ctx<'_>,
        mech: &Mechanism,
        public: &[Attribute],
        private: &[Attribute],
    ) -> Result<(ObjectId, ObjectId)>;

    /// The key of a key object.
    fn key(&self, obj: ObjectId) -> Result<std::sync::Arc<KeyInfo>>;
    /// The private-key operation with `key`. `context_pin`: the PIN given
    /// for this use (keys that need it every time); without it such a key
    /// may use the PIN of the login, once.
    fn private_op(
        &self,
        key: KeyRef,
        info: &KeyInfo,
        op: PrivateOp,
        input: &[u8],
        context_pin: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>>;
}
