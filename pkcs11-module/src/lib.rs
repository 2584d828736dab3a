//! `libukey_pkcs11.so`: a PKCS#11 3.0 module for PIV tokens.
//!
//! The export surface is three symbols; everything else is reached through
//! the static function tables in [`ffi`]. Raw pointers are handled only in
//! [`ffi::ptr`]; the functions in [`fns`] are safe Rust working on
//! [`slots`], [`token`]s and [`session`]s.

pub mod backend;
pub mod digest;
pub mod error;
pub mod ffi;
pub mod fns;
pub mod key;
pub mod keyinfo;
pub mod library;
pub mod log;
pub mod mechanism;
pub mod object;
pub mod pad;
pub mod session;
pub mod slots;
pub mod token;
pub mod values;

#[cfg(any(test, feature = "test-readers"))]
pub mod testing;

#[cfg(test)]
mod hostile;

pub use token::edits::{
    CKA_UKEY_OVERWRITE, CKA_UKEY_PIN_POLICY, CKA_UKEY_PROMOTE_FROM, CKA_UKEY_TOUCH_POLICY,
};
/// The format of the names object (applications' CKA_ID and CKA_LABEL on a PIV card).
pub use token::names_object as names;
pub use token::naming::{CKA_UKEY_DESTROY, CKA_UKEY_MOVABLE};
pub use token::{RENEWAL_APPLICATION, RENEWAL_OBJECT};

use cryptoki_sys::*;

/// PKCS#11 v3.0 §5.4.4: the 2.40 function table.
///
/// # Safety
/// `list` is NULL or points to writable memory for one pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    // SAFETY: forwarded with the caller's own contract.
    unsafe { ffi::entry::C_GetFunctionList(list) }
}

/// PKCS#11 v3.0 §5.4.5: the interfaces (3.0 and 2.40).
///
/// # Safety
/// `list` is NULL or has room for `*count` interfaces; `count` is valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    list: *mut CK_INTERFACE,
    count: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: forwarded with the caller's own contract.
    unsafe { ffi::entry::C_GetInterfaceList(list, count) }
}

/// PKCS#11 v3.0 §5.4.6: one interface by name and version.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `version` is NULL or readable; `iface`
/// is writable.
#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    iface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    // SAFETY: forwarded with the caller's own contract.
    unsafe { ffi::entry::C_GetInterface(name, version, iface, flags) }
}
