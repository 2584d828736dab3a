//! Slot and token management (PKCS#11 v3.0 §5.5).

use super::{live_session, pad};
use crate::error::{Error, Result};
use crate::ffi::ptr::{InBytes, Out, OutArray};
use crate::library;
use crate::mechanism;
use crate::token::{Counter, Login};
use apdu::piv::Pin;
use cryptoki_sys::*;

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

fn counter_flags(c: Counter, low: CK_FLAGS, final_try: CK_FLAGS, locked: CK_FLAGS) -> CK_FLAGS {
    match (c.left, c.total.unwrap_or(3)) {
        (Some(0), _) => locked,
        (Some(1), _) => final_try,
        (Some(l), total) if l < total => low,
        _ => 0,
    }
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
    let mut st = token.lock();
    let info = token.info(&mut st).inspect_err(|e| {
        if *e == Error::DeviceRemoved {
            lib.slots.forget_token(id, token.generation);
        }
    })?;
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
    let v = info.version.map_or((0, 0), |v| (v.0, v.1));
    let (manufacturer, model) = if info.yubikey {
        ("Yubico", format!("YubiKey YK{}", v.0))
    } else {
        ("PIV", "PIV card".to_string())
    };
    let rw = sessions.iter().filter(|(_, rw)| *rw).count();
    drop(st);
    out.write(CK_TOKEN_INFO {
        label: pad(&info.label()),
        manufacturerID: pad(manufacturer),
        model: pad(&model),
        serialNumber: pad(&info.serial),
        flags,
        ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
        ulSessionCount: sessions.len() as CK_ULONG,
        ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
        ulRwSessionCount: rw as CK_ULONG,
        ulMaxPinLen: 8,
        ulMinPinLen: 6,
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
    lib.slots.known_token(id)?;
    out.write(&mechanism::list())
}

/// §5.5.6 C_GetMechanismInfo: no reader polling; the card's identity (its
/// largest RSA key) is read once per insertion, as C_GetTokenInfo reads it,
/// and kept.
pub fn get_mechanism_info(
    id: CK_SLOT_ID,
    kind: CK_MECHANISM_TYPE,
    out: Out<CK_MECHANISM_INFO>,
) -> Result<()> {
    let lib = library::get()?;
    let token = lib.slots.known_token(id)?;
    let max_rsa = {
        let mut st = token.lock();
        token.info(&mut st)?.max_rsa_bits()
    };
    out.write(mechanism::info(kind, max_rsa)?)
}

/// §5.5.7 C_InitToken: a PIV card is initialised by its issuer; the
/// factory reset is `ukey reset`.
pub fn init_token(id: CK_SLOT_ID) -> Result<()> {
    library::get()?.slots.token(id)?;
    Err(Error::FunctionNotSupported)
}

/// Longest secret a caller gives: a 256-bit management key in hex.
pub(crate) const MAX_SECRET_LEN: usize = 64;

/// A PIN or PUK from the caller: 6–8 bytes, no FF. Another length is
/// `wrong_len` (`CKR_PIN_LEN_RANGE` where a PIN is set, `CKR_PIN_INCORRECT`
/// at a login), decided before the caller's buffer is read.
pub(crate) fn pin_arg(b: &InBytes, wrong_len: Error) -> Result<Pin> {
    if !(6..=8).contains(&b.len()?) {
        return Err(wrong_len);
    }
    let v = b.secret(8, wrong_len)?;
    Pin::new(&v).map_err(|_| Error::PinInvalid)
}

/// §5.5.8 C_InitPIN: as SO with the PUK, unblock and set the user PIN.
pub fn init_pin(h: CK_SESSION_HANDLE, new_pin: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    let pin = pin_arg(&new_pin, Error::PinLenRange)?;
    let mut st = s.token.lock();
    if !matches!(st.login, Login::SoPuk | Login::SoManagementKey) {
        return Err(Error::UserNotLoggedIn);
    }
    if !s.rw {
        return Err(Error::SessionReadOnly);
    }
    s.token.unblock_pin(&mut st, &pin)
}

/// §5.5.9 C_SetPIN: the user's PIN (user or public session), or as SO the
/// PUK or the management key (hex), whichever the SO logged in with.
pub fn set_pin(h: CK_SESSION_HANDLE, old: InBytes, new: InBytes) -> Result<()> {
    let (_, s) = live_session(h)?;
    if !s.rw {
        return Err(Error::SessionReadOnly);
    }
    let mut st = s.token.lock();
    match st.login {
        Login::SoManagementKey => {
            let (old, new) = (
                old.secret(MAX_SECRET_LEN, Error::PinLenRange)?,
                new.secret(MAX_SECRET_LEN, Error::PinLenRange)?,
            );
            s.token.change_management_key(&mut st, &old, &new)
        }
        Login::SoPuk => {
            let old = pin_arg(&old, Error::PinLenRange)?;
            let new = pin_arg(&new, Error::PinLenRange)?;
            s.token.change_puk(&mut st, &old, &new)
        }
        Login::User | Login::None => {
            let old = pin_arg(&old, Error::PinLenRange)?;
            let new = pin_arg(&new, Error::PinLenRange)?;
            s.token.change_pin(&mut st, &old, &new)
        }
    }
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
