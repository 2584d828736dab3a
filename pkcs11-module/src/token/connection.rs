//! Card access: every APDU goes through [`Token::transact`], which runs
//! one PC/SC transaction, SELECTs the applet when needed, and recovers once
//! from a card reset by another application (same card? then the login is
//! restored with the PIN held in memory).

use super::card_info::identity;
use super::state::{pin_error, Login, Token, TokenState};
use crate::error::{Error, Result};
use apdu::piv::caps::CardFacts;
use apdu::{PivCard, Session};

impl Token {
    /// Run `op` under one transaction, with SELECT and reset recovery.
    pub fn transact<R>(
        &self,
        st: &mut TokenState,
        op: &mut dyn FnMut(&mut Session<'_>, &mut TokenState) -> Result<R>,
    ) -> Result<R> {
        if self.is_removed() {
            return Err(Error::DeviceRemoved);
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self.transact_once(st, op);
            match r {
                Err(Error::CardReset) if attempt == 1 => {
                    tracing::info!(
                        slot = self.slot_id,
                        "card reset by another application: recovering"
                    );
                    st.selected = false;
                    st.mgmt_authenticated = false;
                    self.recover(st)?;
                }
                Err(Error::CardReset) | Err(Error::DeviceRemoved) => {
                    self.mark_removed();
                    st.card = None;
                    return Err(Error::DeviceRemoved);
                }
                Err(Error::Reselect) if attempt == 1 => {
                    // Another application selected its own applet: ours again.
                    st.selected = false;
                }
                Err(Error::Reselect) => {
                    return Err(Error::DeviceError("the PIV applet does not answer".into()))
                }
                other => return other,
            }
        }
    }

    pub(super) fn transact_once<R>(
        &self,
        st: &mut TokenState,
        op: &mut dyn FnMut(&mut Session<'_>, &mut TokenState) -> Result<R>,
    ) -> Result<R> {
        // Any transaction but the one right after the context VERIFY finds
        // the PIN-always verification spent.
        st.pin_fresh = std::mem::take(&mut st.context_verified);
        let mut card = match st.card.take() {
            Some(c) => c,
            None => {
                st.selected = false;
                st.pin_fresh = false;
                PivCard::new(self.connector.connect()?)
            }
        };
        let r = card
            .transaction(|s| {
                if !st.selected {
                    s.select()?;
                    st.selected = true;
                    st.pin_fresh = false;
                }
                Ok(op(s, st))
            })
            .map_err(Error::from)
            .and_then(|r| r);
        st.card = Some(card);
        r
    }

    /// After a reset: same card? Then restore the login.
    pub(super) fn recover(&self, st: &mut TokenState) -> Result<()> {
        let expected = st.info.as_ref().map(|i| i.serial.clone());
        let restore = if self.restore_login && st.login == Login::User {
            st.cached_pin.clone()
        } else {
            None
        };
        let r = self.transact_once(st, &mut |s, st| {
            let serial = identity(&CardFacts::probe_identity(s)?);
            if expected.as_deref().is_some_and(|e| *e != serial) {
                return Err(Error::DeviceRemoved);
            }
            if let Some(pin) = &restore {
                match s.verify_pin(pin) {
                    Ok(()) => {
                        st.pin.reset();
                        // The card's verification is ours now.
                        st.pin_found_verified = false;
                    }
                    Err(e) => {
                        // The PIN changed elsewhere: never try it again.
                        pin_error(e.status(), &mut st.pin);
                        self.forget_login(st);
                    }
                }
            } else if st.login == Login::User {
                self.forget_login(st);
            }
            Ok(())
        });
        match r {
            Err(Error::DeviceRemoved) | Err(Error::CardReset) => {
                self.mark_removed();
                st.card = None;
                Err(Error::DeviceRemoved)
            }
            other => other,
        }
    }
}
