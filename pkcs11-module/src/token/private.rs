//! Private-key operations (GENERAL AUTHENTICATE on a host-prepared block),
//! with the PIN-always rules.

use super::convert::piv_alg;
use super::state::{pin_error, Login, Token, TokenState};
use crate::backend::PrivateOp;
use crate::error::{Error, Result};
use crate::keyinfo::KeyInfo;
use apdu::piv::{Pin, Slot};
use apdu::{Session, StatusWord};
use zeroize::Zeroizing;

/// The GENERAL AUTHENTICATE input tag of an operation.
trait InputTag {
    fn input_tag(self) -> u32;
}

impl InputTag for PrivateOp {
    /// The GENERAL AUTHENTICATE input tag (SP 800-73-4 Part 2 §3.2.4):
    /// 81 challenge, 85 exponentiation.
    fn input_tag(self) -> u32 {
        match self {
            PrivateOp::Raw => 0x81,
            PrivateOp::KeyAgreement => 0x85,
        }
    }
}

impl Token {
    /// The private-key operation (GENERAL AUTHENTICATE) with the key in `slot`.
    /// With `context_pin` (PIN-always keys) the PIN is verified in the same
    /// transaction, right before the operation — unless C_Login's own VERIFY
    /// was the card's last command for us. Another application may have
    /// talked to the card in between: then the card refuses (6982) and the
    /// PIN is verified and the operation sent again.
    pub fn private_op(
        &self,
        st: &mut TokenState,
        slot: Slot,
        key: &KeyInfo,
        op: PrivateOp,
        input: &[u8],
        context_pin: Option<&Pin>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if !key.needs_no_pin() && st.login != Login::User && context_pin.is_none() {
            return Err(Error::UserNotLoggedIn);
        }
        // Any private-key operation uses up the login's own PIN entry.
        st.login_pin_unused = false;
        let input_tag = op.input_tag();
        self.transact(st, &mut |s, st| {
            let verify = |s: &mut Session<'_>, st: &mut TokenState, pin: &Pin| {
                s.verify_pin(pin)
                    .map_err(|e| pin_error(e.status(), &mut st.pin).unwrap_or_else(|| e.into()))
            };
            let skipped = match context_pin {
                Some(pin) if !st.pin_fresh => {
                    verify(s, st, pin)?;
                    None
                }
                other => other,
            };
            let mut r = s.general_authenticate(slot, piv_alg(key.alg), input_tag, input);
            let refused = |r: &std::result::Result<_, apdu::Error>| {
                matches!(r, Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied))
            };
            if let (Some(pin), true) = (skipped, refused(&r)) {
                verify(s, st, pin)?;
                r = s.general_authenticate(slot, piv_alg(key.alg), input_tag, input);
            } else if refused(&r) && context_pin.is_none() && st.login == Login::User {
                // A PIN-once key refused while we are logged in: another
                // application logged the card out (VERIFY P1=FF). Log in
                // again with the PIN held, as after a reset, or say truly
                // that the login is gone.
                if !self.login_again(s, st)? {
                    return Err(Error::UserNotLoggedIn);
                }
                r = s.general_authenticate(slot, piv_alg(key.alg), input_tag, input);
            }
            match r {
                Ok(out) => Ok(out),
                Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied) => {
                    Err(Error::UserNotLoggedIn)
                }
                Err(e) if e.status() == Some(StatusWord::IncorrectData) => Err(Error::DataInvalid),
                Err(e) => Err(e.into()),
            }
        })
    }
}
