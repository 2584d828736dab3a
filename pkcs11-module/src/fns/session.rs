//! Session management (PKCS#11 v3.0 §5.6).

use super::live_session;
use super::slot::secret_arg;
use crate::backend::{LoginState, SecretUse};
use crate::error::{Error, Result};
use crate::ffi::ptr::{InBytes, Out};
use crate::library;
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
    let state = match (s.token.login_state(), s.rw) {
        (LoginState::User, true) => CKS_RW_USER_FUNCTIONS,
        (LoginState::User, false) => CKS_RO_USER_FUNCTIONS,
        (LoginState::So, _) => CKS_RW_SO_FUNCTIONS,
        (LoginState::None, true) => CKS_RW_PUBLIC_SESSION,
        (LoginState::None, false) => CKS_RO_PUBLIC_SESSION,
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
        // No protected authentication path.
        return Err(Error::ArgumentsBad);
    }
    match user {
        CKU_USER => {
            // A PIN of the wrong length cannot be the PIN: no VERIFY, no try.
            let pin = secret_arg(&*s.token, SecretUse::UserLogin, &pin, Error::PinIncorrect)?;
            s.token.login_user(&pin)
        }
        CKU_SO => {
            if lib.sessions_of(&s.token).iter().any(|(_, rw)| !rw) {
                return Err(Error::SessionReadOnlyExists);
            }
            let secret = secret_arg(&*s.token, SecretUse::SoLogin, &pin, Error::PinIncorrect)?;
            s.token.login_so(&secret)
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
            let pin = secret_arg(&*s.token, SecretUse::UserLogin, &pin, Error::PinIncorrect)?;
            s.token.verify_context(&pin)?;
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

/// §5.6.9 C_LoginUser: no token here has user names.
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
    s.token.logout()
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
