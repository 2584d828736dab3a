//! Signing, verification and decryption (PKCS#11 v3.0 §5.13, §5.15, §5.10).
//! Hashing and padding run on the host; the card does one raw private-key
//! operation per signature or decryption.

use super::live_session;
use crate::backend::{KeyRef, LoginState, PrivateOp};
use crate::error::{Error, Result};
use crate::ffi::ptr::{InBytes, InMechanism, OutBytes};
use crate::key::PublicKey;
use crate::keyinfo::KeyInfo;
use crate::library::Library;
use crate::mechanism::{self, SignScheme};
use crate::object::{Kind, ObjectRef};
use crate::pad::Hasher;
use crate::session::{DecryptOp, Input, Session, SignOp, VerifyOp, MAX_RAW_INPUT};
use cryptoki_sys::*;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The token object a key handle names, with its key (for `kinds`).
pub(crate) fn key_of(
    lib: &Library,
    s: &Session,
    h: CK_OBJECT_HANDLE,
    kinds: &[Kind],
) -> Result<(KeyRef, Kind, Arc<KeyInfo>)> {
    let Some(ObjectRef::Token {
        generation, object, ..
    }) = lib.handles().get(h)
    else {
        return Err(Error::KeyHandleInvalid);
    };
    if generation != s.token.generation() || !kinds.contains(&object.kind) {
        return Err(Error::KeyHandleInvalid);
    }
    let key = s.token.key(object)?;
    Ok((object.key, object.kind, key))
}

fn new_input(scheme: &SignScheme) -> Input {
    match scheme.prehash() {
        Some(h) => Input::Hash(Box::new(Hasher::new(h))),
        None => Input::Data(Zeroizing::new(Vec::new())),
    }
}

fn feed(input: &mut Input, data: &[u8]) -> Result<()> {
    match input {
        Input::Hash(h) => {
            h.update(data);
            Ok(())
        }
        Input::Data(d) => {
            if d.len() + data.len() > MAX_RAW_INPUT {
                return Err(Error::DataLenRange);
            }
            d.extend_from_slice(data);
            Ok(())
        }
    }
}

fn take_input(input: &mut Input) -> Zeroizing<Vec<u8>> {
    match std::mem::replace(input, Input::Data(Zeroizing::new(Vec::new()))) {
        Input::Hash(h) => Zeroizing::new(h.finish()),
        Input::Data(d) => d,
    }
}

/// §5.13.1 C_SignInit.
pub fn sign_init(h: CK_SESSION_HANDLE, mech: InMechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let mech = mech.read()?;
    let mut ops = s.ops();
    if ops.sign.is_some() {
        return Err(Error::OperationActive);
    }
    let (key_ref, _, key) = key_of(&lib, &s, key, &[Kind::PrivateKey])?;
    let scheme = mechanism::sign_scheme(&mech, key.alg)?;
    if !key.needs_no_pin() && s.token.login_state() != LoginState::User {
        return Err(Error::UserNotLoggedIn);
    }
    ops.sign = Some(SignOp {
        key_ref,
        key,
        input: new_input(&scheme),
        scheme,
        multipart: false,
        context_pin: None,
        result: None,
    });
    Ok(())
}

/// Finish a signature over everything fed in; the op ends unless the
/// caller only asked for the length or gave a short buffer.
fn sign_finish(s: &Session, out: &OutBytes, data: Option<&[u8]>) -> Result<()> {
    let mut ops = s.ops();
    let op = ops.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
    if let Some(sig) = &op.result {
        out.write(sig)?;
        ops.sign = None;
        return Ok(());
    }
    let len = mechanism::signature_len(&op.key);
    if !out.reserve(len)? {
        return Ok(());
    }
    let r = (|| {
        if let Some(d) = data {
            feed(&mut op.input, d)?;
        }
        let input = take_input(&mut op.input);
        let block = mechanism::sign_block(&op.scheme, &op.key, &input)?;
        let raw = s.token.private_op(
            op.key_ref,
            &op.key,
            PrivateOp::Raw,
            &block,
            op.context_pin.as_deref().map(|p| &p[..]),
        )?;
        mechanism::finish_signature(&op.key, &raw)
    })();
    ops.sign = None;
    out.write(&r?)
}

/// §5.13.2 C_Sign.
pub fn sign(h: CK_SESSION_HANDLE, data: InBytes, out: OutBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let data = data.get().inspect_err(|_| s.ops().sign = None)?;
    {
        let ops = s.ops();
        let op = ops.sign.as_ref().ok_or(Error::OperationNotInitialized)?;
        if op.multipart {
            return Err(Error::OperationActive);
        }
    }
    sign_finish(&s, &out, Some(data))
}

/// §5.13.3 C_SignUpdate.
pub fn sign_update(h: CK_SESSION_HANDLE, data: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let data = data.get().inspect_err(|_| s.ops().sign = None)?;
    let mut ops = s.ops();
    let op = ops.sign.as_mut().ok_or(Error::OperationNotInitialized)?;
    op.multipart = true;
    if let Err(e) = feed(&mut op.input, data) {
        ops.sign = None;
        return Err(e);
    }
    Ok(())
}

/// §5.13.4 C_SignFinal.
pub fn sign_final(h: CK_SESSION_HANDLE, out: OutBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    sign_finish(&s, &out, None)
}

/// §5.15.1 C_VerifyInit: with the public key of a key pair, on the host.
pub fn verify_init(h: CK_SESSION_HANDLE, mech: InMechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let mech = mech.read()?;
    let mut ops = s.ops();
    if ops.verify.is_some() {
        return Err(Error::OperationActive);
    }
    let (_, _, key) = key_of(&lib, &s, key, &[Kind::PublicKey, Kind::PrivateKey])?;
    let scheme = mechanism::sign_scheme(&mech, key.alg)?;
    ops.verify = Some(VerifyOp {
        public: key.public.clone(),
        input: new_input(&scheme),
        scheme,
        multipart: false,
    });
    Ok(())
}

fn verify_finish(s: &Session, data: Option<&[u8]>, signature: &[u8]) -> Result<()> {
    let mut op = s
        .ops()
        .verify
        .take()
        .ok_or(Error::OperationNotInitialized)?;
    if let Some(d) = data {
        feed(&mut op.input, d)?;
    }
    let input = take_input(&mut op.input);
    mechanism::verify(&op.scheme, &op.public, &input, signature)
}

/// §5.15.2 C_Verify.
pub fn verify(h: CK_SESSION_HANDLE, data: InBytes, signature: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let (data, signature) = match (data.get(), signature.get()) {
        (Ok(d), Ok(sig)) => (d, sig),
        (Err(e), _) | (_, Err(e)) => {
            s.ops().verify = None;
            return Err(e);
        }
    };
    if s.ops()
        .verify
        .as_ref()
        .ok_or(Error::OperationNotInitialized)?
        .multipart
    {
        return Err(Error::OperationActive);
    }
    verify_finish(&s, Some(data), signature)
}

/// §5.15.3 C_VerifyUpdate.
pub fn verify_update(h: CK_SESSION_HANDLE, data: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let data = data.get().inspect_err(|_| s.ops().verify = None)?;
    let mut ops = s.ops();
    let op = ops.verify.as_mut().ok_or(Error::OperationNotInitialized)?;
    op.multipart = true;
    if let Err(e) = feed(&mut op.input, data) {
        ops.verify = None;
        return Err(e);
    }
    Ok(())
}

/// §5.15.4 C_VerifyFinal.
pub fn verify_final(h: CK_SESSION_HANDLE, signature: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let signature = signature.get().inspect_err(|_| s.ops().verify = None)?;
    verify_finish(&s, None, signature)
}

/// §5.10.1 C_DecryptInit (RSA keys).
pub fn decrypt_init(h: CK_SESSION_HANDLE, mech: InMechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let mech = mech.read()?;
    let mut ops = s.ops();
    if ops.decrypt.is_some() {
        return Err(Error::OperationActive);
    }
    let (key_ref, _, key) = key_of(&lib, &s, key, &[Kind::PrivateKey])?;
    let scheme = mechanism::decrypt_scheme(&mech, key.alg)?;
    if !key.needs_no_pin() && s.token.login_state() != LoginState::User {
        return Err(Error::UserNotLoggedIn);
    }
    ops.decrypt = Some(DecryptOp {
        key_ref,
        key,
        scheme,
        context_pin: None,
        result: None,
    });
    Ok(())
}

/// §5.10.2 C_Decrypt: the plaintext length is known only after the card's
/// operation, so a short buffer keeps the result for the next call.
pub fn decrypt(h: CK_SESSION_HANDLE, data: InBytes, out: OutBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let data = data.get().inspect_err(|_| s.ops().decrypt = None)?;
    let mut ops = s.ops();
    let op = ops.decrypt.as_mut().ok_or(Error::OperationNotInitialized)?;
    if let Some(plain) = &op.result {
        out.write(plain)?;
        ops.decrypt = None;
        return Ok(());
    }
    let k = op.key.alg.size_bytes();
    if out.capacity()?.is_none() {
        // Size query: the plaintext is at most the modulus size.
        return out.set_len(k);
    }
    let r = (|| {
        if data.len() != k {
            return Err(Error::EncryptedDataLenRange);
        }
        if let PublicKey::Rsa { modulus, .. } = &op.key.public {
            if data >= modulus.as_slice() {
                return Err(Error::EncryptedDataInvalid);
            }
        }
        let raw = s.token.private_op(
            op.key_ref,
            &op.key,
            PrivateOp::Raw,
            data,
            op.context_pin.as_deref().map(|p| &p[..]),
        )?;
        let mut block = Zeroizing::new(vec![0u8; k.saturating_sub(raw.len())]);
        block.extend_from_slice(&raw);
        mechanism::finish_decrypt(&op.scheme, &block)
    })();
    match r {
        Ok(plain) => match out.write(&plain) {
            Err(Error::BufferTooSmall) => {
                op.result = Some(plain);
                Err(Error::BufferTooSmall)
            }
            other => {
                ops.decrypt = None;
                other
            }
        },
        Err(e) => {
            ops.decrypt = None;
            Err(e)
        }
    }
}
