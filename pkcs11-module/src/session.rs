//! Sessions: which token, read-only or read-write, and the operation each
//! one has in progress (search, sign, verify, decrypt).

use crate::backend::{Backend, KeyRef};
use crate::key::PublicKey;
use crate::keyinfo::KeyInfo;
use crate::mechanism::{DecryptScheme, SignScheme};
use crate::pad::Hasher;
use cryptoki_sys::*;
use std::sync::{Arc, Mutex, MutexGuard};
use zeroize::Zeroizing;

pub struct Find {
    pub handles: Vec<CK_OBJECT_HANDLE>,
    pub pos: usize,
}

/// Input of a signature being built: raw data, or a running hash.
pub enum Input {
    Data(Zeroizing<Vec<u8>>),
    Hash(Box<Hasher>),
}

/// Largest single-part input kept for mechanisms without hashing.
pub const MAX_RAW_INPUT: usize = 64 * 1024;

pub struct SignOp {
    pub key_ref: KeyRef,
    pub key: Arc<KeyInfo>,
    pub scheme: SignScheme,
    pub input: Input,
    /// Multi-part (C_SignUpdate) was used: C_Sign is no longer allowed.
    pub multipart: bool,
    /// PIN given with C_Login(CKU_CONTEXT_SPECIFIC) for a PIN-always key.
    pub context_pin: Option<Zeroizing<Vec<u8>>>,
    /// A signature made but not yet delivered (the caller's buffer was short).
    pub result: Option<Vec<u8>>,
}

pub struct VerifyOp {
    pub public: PublicKey,
    pub scheme: SignScheme,
    pub input: Input,
    pub multipart: bool,
}

pub struct DecryptOp {
    pub key_ref: KeyRef,
    pub key: Arc<KeyInfo>,
    pub scheme: DecryptScheme,
    pub context_pin: Option<Zeroizing<Vec<u8>>>,
    pub result: Option<Zeroizing<Vec<u8>>>,
}

#[derive(Default)]
pub struct Ops {
    pub find: Option<Find>,
    pub digest: Option<crate::digest::DigestOp>,
    pub sign: Option<SignOp>,
    pub verify: Option<VerifyOp>,
    pub decrypt: Option<DecryptOp>,
}

pub struct Session {
    pub handle: CK_SESSION_HANDLE,
    pub slot_id: CK_SLOT_ID,
    pub token: Arc<dyn Backend>,
    pub rw: bool,
    ops: Mutex<Ops>,
}

impl Session {
    pub fn new(
        handle: CK_SESSION_HANDLE,
        slot_id: CK_SLOT_ID,
        token: Arc<dyn Backend>,
        rw: bool,
    ) -> Self {
        Self {
            handle,
            slot_id,
            token,
            rw,
            ops: Mutex::new(Ops::default()),
        }
    }

    pub fn ops(&self) -> MutexGuard<'_, Ops> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }
}
