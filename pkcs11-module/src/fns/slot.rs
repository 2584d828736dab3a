//! Slot and token management (PKCS#11 v3.0 §5.5).

use super::{live_session, pad};
use crate::backend::{Backend, SecretUse, MAX_SECRET_LEN};
use crate::error::{Error, Result};
use crate::ffi::ptr::{InBytes, Out, OutArray};
use crate::library;
use cryptoki_sys::*;
use zeroize::Zeroizing;

/// §5.5.1 C_GetSlotList: polls readers (no APDU).
pub fn get_slot_list(token_present: bool, out: OutArray<CK_SLOT_ID>) -> Result<()> {
    let lib = library::get()?;
    out.write(&lib.slots.ids(token_present))
}

/// §5.5.2 C_GetSlotInfo.
pub fn get_slot_info(id: CK_SLOT_ID, out: Out<CK_SLOT_INFO>) -> Result<()> {
    let lib = library::get()?;
    let (description, present) = lib.slots.describe(id)?;
    let mut flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
    if present {
        flags |= CKF_TOKEN_PRESENT;
    }
    out.write(CK_SLOT_INFO {
        slotDescription: pad(&description),
        manufacturerID: pad("ukey"),
        flags,
        hardwareVersion: CK_VERSION { major: 0, minor: 0 },
        firmwareVersion: CK_VERSION { major: 0, minor: 0 },
    })
}

/// §5.5.3 C_GetTokenInfo: identity and PIN state, read once per insertion
/// and then kept from the card's own answers (polling costs no APDU and
/// never spends a try).
pub fn get_token_info(id: CK_SLOT_ID, out: Out<CK_TOKEN_INFO>) -> Result<()> {
    let lib = library::get()?;
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let token = lib.slots.token(id)?;
    let sessions = lib.sessions_of(&token);
    let info = token.token_info().inspect_err(|e| {
        if *e == Error::DeviceRemoved {
            lib.slots.forget_token(id, token.generation());
        }
    })?;
    let v = info.version;
    let rw = sessions.iter().filter(|(_, rw)| *rw).count();
    out.write(CK_TOKEN_INFO {
        label: pad(&info.label),
        manufacturerID: pad(&info.manufacturer),
        model: pad(&info.model),
        serialNumber: pad(&info.serial),
        flags: info.flags,
        ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
        ulSessionCount: sessions.len() as CK_ULONG,
        ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
        ulRwSessionCount: rw as CK_ULONG,
        ulMaxPinLen: info.max_pin as CK_ULONG,
        ulMinPinLen: info.min_pin as CK_ULONG,
        ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
        hardwareVersion: CK_VERSION {
            major: v.0,
            minor: v.1,
        },
        firmwareVersion: CK_VERSION {
            major: v.0,
            minor: v.1,
        },
        utcTime: [b' '; 16],
    })
}

/// §5.5.5 C_GetMechanismList: no reader polling, no card traffic.
pub fn get_mechanism_list(id: CK_SLOT_ID, out: OutArray<CK_MECHANISM_TYPE>) -> Result<()> {
    let lib = library::get()?;
    let token = lib.slots.known_token(id)?;
    out.write(&token.mechanisms())
}

/// §5.5.6 C_GetMechanismInfo: no reader polling; what the token can do
/// (e.g. its largest RSA key) is read once per insertion, as C_GetTokenInfo
/// reads it, and kept.
pub fn get_mechanism_info(
    id: CK_SLOT_ID,
    kind: CK_MECHANISM_TYPE,
    out: Out<CK_MECHANISM_INFO>,
) -> Result<()> {
    let lib = library::get()?;
    let token = lib.slots.known_token(id)?;
    out.write(token.mechanism_info(kind)?)
}

/// §5.5.7 C_InitToken: a PIV card is initialised by its issuer; the
/// factory reset is `ukey reset`.
pub fn init_token(id: CK_SLOT_ID) -> Result<()> {
    library::get()?.slots.token(id)?;
    Err(Error::FunctionNotSupported)
}

/// A PIN, PUK or key from the caller for `use_`: a length the token's rule
/// refuses is `wrong_len` (`CKR_PIN_LEN_RANGE` where a PIN is set,
/// `CKR_PIN_INCORRECT` at a login), decided before the caller's buffer is
/// read.
pub(crate) fn secret_arg(
    token: &dyn Backend,
    use_: SecretUse,
    b: &InBytes,
    wrong_len: Error,
) -> Result<Zeroizing<Vec<u8>>> {
    if !token.secret_len_ok(use_, b.len()?) {
        return Err(wrong_len);
    }
    b.secret(MAX_SECRET_LEN, wrong_len)
}

/// §5.5.8 C_InitPIN: as SO, unblock and set the user PIN.
pub fn init_pin(h: CK_SESSION_HANDLE, new_pin: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let pin = secret_arg(&*s.token, SecretUse::Init, &new_pin, Error::PinLenRange)?;
    s.token.init_pin(s.rw, &pin)
}

/// §5.5.9 C_SetPIN: the secret of whoever is logged in (the user's PIN in
/// a public session).
pub fn set_pin(h: CK_SESSION_HANDLE, old: InBytes, new: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    if !s.rw {
        return Err(Error::SessionReadOnly);
    }
    let old = secret_arg(&*s.token, SecretUse::Change, &old, Error::PinLenRange)?;
    let new = secret_arg(&*s.token, SecretUse::Change, &new, Error::PinLenRange)?;
    s.token.set_pin(&old, &new)
}

/// §5.5.4 C_WaitForSlotEvent.
pub fn wait_for_slot_event(
    flags: CK_FLAGS,
    out: Out<CK_SLOT_ID>,
    reserved_is_null: bool,
) -> Result<()> {
    if !reserved_is_null || out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let lib = library::get()?;
    let id = lib.slots.wait_event(flags & CKF_DONT_BLOCK == 0)?;
    out.write(id)
}
