//! The values the safe layer works with, copied out of the caller's memory
//! by [`crate::ffi::ptr`]: attributes, mechanisms with their parameters,
//! C_Initialize's arguments. No pointers: sessions, objects, mechanisms and
//! `fns/` take these, so nothing below `ffi/` depends on it.

use cryptoki_sys::*;
use zeroize::Zeroizing;

/// One attribute of an input template, copied.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: CK_ATTRIBUTE_TYPE,
    pub value: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Attribute({:#x}, {} bytes)", self.kind, self.value.len())
    }
}

/// What `C_GetAttributeValue` can say about one attribute.
pub enum AttrAnswer {
    Value(Vec<u8>),
    Sensitive,
    Invalid,
}

/// Mechanism parameters, parsed per mechanism type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MechParams {
    None,
    Pss {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt_len: usize,
    },
    Oaep {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        label: Vec<u8>,
    },
    Ecdh {
        kdf: CK_EC_KDF_TYPE,
        shared: Vec<u8>,
        public: Vec<u8>,
    },
    Bytes(Vec<u8>),
}

/// A mechanism with its parameters copied out of the caller's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    pub kind: CK_MECHANISM_TYPE,
    pub params: MechParams,
}

/// What `C_Initialize` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitArgs {
    pub os_locking_ok: bool,
    pub has_callbacks: bool,
    pub library_cant_create_os_threads: bool,
}
