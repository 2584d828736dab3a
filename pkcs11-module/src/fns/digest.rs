//! Message digesting (PKCS#11 v3.0 §5.12), in software on the host.
//!
//! Buffers and the operation's life follow v3.0 §5.2 and §5.12: a size
//! query (NULL output) or `CKR_BUFFER_TOO_SMALL` keeps the operation so the
//! call can be repeated; any other error and every success end it; C_Digest
//! after C_DigestUpdate is `CKR_OPERATION_ACTIVE`.

use super::live_session;
use crate::digest::{self, DigestOp};
use crate::error::{Error, Result};
use crate::ffi::ptr::{InBytes, InMechanism, OutBytes};
use crate::object::{Kind, ObjectRef};
use crate::session::Ops;
use crate::values::MechParams;
use cryptoki_sys::*;

/// §5.12.1 C_DigestInit.
pub fn digest_init(h: CK_SESSION_HANDLE, mech: InMechanism) -> Result<()> {
    let (_, s) = live_session(h)?;
    let mech = mech.read()?;
    let mut ops = s.ops();
    if ops.digest.is_some() {
        return Err(Error::OperationActive);
    }
    let alg = digest::algorithm(mech.kind).ok_or(Error::MechanismInvalid)?;
    if mech.params != MechParams::None {
        return Err(Error::MechanismParamInvalid);
    }
    ops.digest = Some(DigestOp::new(alg));
    Ok(())
}

/// End the operation on `r`'s error, unless the caller is to call again
/// (a size query answered, or `CKR_BUFFER_TOO_SMALL`).
fn end_on_error<T>(ops: &mut Ops, r: Result<T>) -> Result<T> {
    if matches!(r, Err(ref e) if *e != Error::BufferTooSmall) {
        ops.digest = None;
    }
    r
}

/// Deliver the digest of the operation (fed with `data` first) into `out`:
/// `Ok(())` also for a size query, which keeps the operation.
fn finish(ops: &mut Ops, data: Option<&[u8]>, out: &OutBytes) -> Result<()> {
    let len = ops
        .digest
        .as_ref()
        .ok_or(Error::OperationNotInitialized)?
        .alg
        .output_len();
    if !end_on_error(ops, out.reserve(len))? {
        return Ok(());
    }
    let mut op = ops.digest.take().ok_or(Error::OperationNotInitialized)?;
    if let Some(d) = data {
        op.update(d);
    }
    out.write(&op.finish())
}

/// §5.12.2 C_Digest: single-part.
pub fn digest(h: CK_SESSION_HANDLE, data: InBytes, out: OutBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let mut ops = s.ops();
    let op = ops.digest.as_ref().ok_or(Error::OperationNotInitialized)?;
    if op.multipart {
        return Err(Error::OperationActive);
    }
    let data = end_on_error(&mut ops, data.get())?;
    finish(&mut ops, Some(data), &out)
}

/// §5.12.3 C_DigestUpdate.
pub fn digest_update(h: CK_SESSION_HANDLE, data: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let mut ops = s.ops();
    ops.digest.as_ref().ok_or(Error::OperationNotInitialized)?;
    let data = end_on_error(&mut ops, data.get())?;
    if let Some(op) = ops.digest.as_mut() {
        op.multipart = true;
        op.update(data);
    }
    Ok(())
}

/// §5.12.4 C_DigestKey: the value of a secret key (the session secrets
/// ECDH derivation makes). The keys on the card never leave it:
/// `CKR_KEY_INDIGESTIBLE`; a handle that is not a key, `CKR_KEY_HANDLE_INVALID`.
pub fn digest_key(h: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let object = lib.handles().get(key);
    let mut ops = s.ops();
    ops.digest.as_ref().ok_or(Error::OperationNotInitialized)?;
    let value = match object {
        Some(ObjectRef::Secret(k)) if k.generation == s.token.generation() => Ok(k.value.clone()),
        Some(ObjectRef::Token {
            generation, object, ..
        }) if generation == s.token.generation()
            && matches!(object.kind, Kind::PrivateKey | Kind::PublicKey) =>
        {
            Err(Error::KeyIndigestible)
        }
        _ => Err(Error::KeyHandleInvalid),
    };
    let value = end_on_error(&mut ops, value)?;
    if let Some(op) = ops.digest.as_mut() {
        op.multipart = true;
        op.update(&value);
    }
    Ok(())
}

/// §5.12.5 C_DigestFinal.
pub fn digest_final(h: CK_SESSION_HANDLE, out: OutBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let mut ops = s.ops();
    finish(&mut ops, None, &out)
}
