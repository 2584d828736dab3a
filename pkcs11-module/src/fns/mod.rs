//! Safe implementations of the PKCS#11 functions, one module per family
//! (v3.0 §5.4 general, §5.5 slot and token, §5.6 session, §5.7 object,
//! §5.10 decryption, §5.12 digests, §5.13 signing, §5.15 verification,
//! §5.18 key management, §5.19 random numbers).

pub mod crypto;
pub mod digest;
pub mod general;
pub mod keys;
pub mod object;
pub mod session;
pub mod slot;

use crate::error::{Error, Result};
use crate::library::{self, Library};
use crate::session::Session;
use cryptoki_sys::CK_SESSION_HANDLE;
use std::sync::Arc;

/// The library and a live session.
pub(crate) fn live_session(h: CK_SESSION_HANDLE) -> Result<(Arc<Library>, Arc<Session>)> {
    let lib = library::get()?;
    let s = lib.session(h)?;
    if s.token.is_removed() {
        return Err(Error::DeviceRemoved);
    }
    Ok((lib, s))
}

/// Copy `s` into a blank-padded fixed-size field.
pub(crate) fn pad<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let bytes = s.as_bytes();
    let mut n = bytes.len().min(N);
    // Never cut a UTF-8 sequence in half.
    while n > 0 && !s.is_char_boundary(n) {
        n -= 1;
    }
    out[..n].copy_from_slice(&bytes[..n]);
    out
}
