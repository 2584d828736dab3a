//! Session management (PKCS#11 v3.0 §5.6).

use super::live_session;
use super::slot::{pin_arg, MAX_SECRET_LEN};
use crate::error::{Error, Result};
use crate::ffi::ptr::{InBytes, Out};
use crate::library;
use crate::token::Login;
use cryptoki_sys::*;

/// §5.6.1 C_OpenSession (no card traffic). Notification callbacks are
/// accepted and never called: the module has nothing to notify.
pub fn open_session(id: CK_SLOT_ID, flags: CK_FLAGS, out: Out<CK_SESSION_HANDLE>) -> Result<()> {
    let lib = library::get()?;
    if flags & CKF_SERIAL_SESSION == 0 {
        return Err(Error::SessionParallelNotSupported);
    }
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let token = lib.slots.token(id)?;
    let h = lib.open_session(token, flags & CKF_RW_SESSION != 0)?;
    out.write(h)
}

/// §5.6.2 C_CloseSession; the last session of a token logs it out.
pub fn close_session(h: CK_SESSION_HANDLE) -> Result<()> {
    library::get()?.close_session(h)
}

/// §5.6.3 C_CloseAllSessions.
pub fn close_all_sessions(id: CK_SLOT_ID) -> Result<()> {
    let lib = library::get()?;
    lib.slots.describe(id)?;
    lib.close_all(id);
    Ok(())
}

/// §5.6.4 C_GetSessionInfo (no card traffic).
pub fn get_session_info(h: CK_SESSION_HANDLE, out: Out<CK_SESSION_INFO>) -> Result<()> {
    let (_, s) = live_session(h)?;
    let login = s.token.lock().login;
    let state = match (login, s.rw) {
        (Login::User, true) => CKS_RW_USER_FUNCTIONS,
        (Login::User, false) => CKS_RO_USER_FUNCTIONS,
        (Login::SoPuk | Login::SoManagementKey, _) => CKS_RW_SO_FUNCTIONS,
        (Login::None, true) => CKS_RW_PUBLIC_SESSION,
        (Login::None, false) => CKS_RO_PUBLIC_SESSION,
    };
    out.write(CK_SESSION_INFO {
        slotID: s.slot_id,
        state,
        flags: CKF_SERIAL_SESSION | if s.rw { CKF_RW_SESSION } else { 0 },
        ulDeviceError: 0,
    })
}

/// §5.6.8 C_Login.
pub fn login(h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: InBytes) -> Result<()> {
    let (lib, s) = live_session(h)?;
    if pin.is_null() {
        // No protected authentication path on a PIV token.
        return Err(Error::ArgumentsBad);
    }
    match user {
        CKU_USER => {
            // A PIN of the wrong length cannot be the PIN: no VERIFY, no try.
            let pin = pin_arg(&pin, Error::PinIncorrect)?;
            let mut st = s.token.lock();
            s.token.login_user(&mut st, &pin)
        }
        CKU_SO => {
            if lib.sessions_of(&s.token).iter().any(|(_, rw)| !rw) {
                return Err(Error::SessionReadOnlyExists);
            }
            // The PUK (6-8) or the management key in hex (32/48/64); any
            // other length is refused before the buffer is read.
            if !matches!(pin.len()?, 6..=8 | 32 | 48 | 64) {
                return Err(Error::PinIncorrect);
            }
            let secret = pin.secret(MAX_SECRET_LEN, Error::PinIncorrect)?;
            let mut st = s.token.lock();
            s.token.login_so(&mut st, &secret)
        }
        CKU_CONTEXT_SPECIFIC => {
            let mut ops = s.ops();
            let pending = ops
                .sign
                .as_ref()
                .map(|o| o.key.always_authenticate())
                .or_else(|| ops.decrypt.as_ref().map(|o| o.key.always_authenticate()));
            match pending {
                None => return Err(Error::OperationNotInitialized),
                Some(false) => return Err(Error::OperationNotInitialized),
                Some(true) => {}
            }
            let pin = pin_arg(&pin, Error::PinIncorrect)?;
            {
                let mut st = s.token.lock();
                s.token.verify_context(&mut st, &pin)?;
            }
            if let Some(op) = ops.sign.as_mut() {
                op.context_pin = Some(pin);
            } else if let Some(op) = ops.decrypt.as_mut() {
                op.context_pin = Some(pin);
            }
            Ok(())
        }
        _ => Err(Error::UserTypeInvalid),
    }
}

/// §5.6.9 C_LoginUser: PIV has no user names.
pub fn login_user(
    h: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: InBytes,
    username: InBytes,
) -> Result<()> {
    if !username.is_empty()? {
        live_session(h)?;
        return Err(Error::FunctionNotSupported);
    }
    login(h, user, pin)
}

/// §5.6.10 C_Logout.
pub fn logout(h: CK_SESSION_HANDLE) -> Result<()> {
    let (_, s) = live_session(h)?;
    let mut st = s.token.lock();
    s.token.logout(&mut st)
}

/// §5.6.5 C_SessionCancel: drop the operations named in `flags`.
pub fn session_cancel(h: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
    let (_, s) = live_session(h)?;
    let mut ops = s.ops();
    if flags & CKF_FIND_OBJECTS != 0 {
        ops.find = None;
    }
    if flags & CKF_DIGEST != 0 {
        ops.digest = None;
    }
    if flags & CKF_SIGN != 0 {
        ops.sign = None;
    }
    if flags & CKF_VERIFY != 0 {
        ops.verify = None;
    }
    if flags & CKF_DECRYPT != 0 {
        ops.decrypt = None;
    }
    Ok(())
}

/// §5.6.6 C_GetOperationState / §5.6.7 C_SetOperationState: card operations have
/// no state that could be saved.
pub fn operation_state(h: CK_SESSION_HANDLE) -> Result<()> {
    live_session(h)?;
    Err(Error::FunctionNotSupported)
}
