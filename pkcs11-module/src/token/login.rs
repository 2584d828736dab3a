//! Logins (user PIN, SO by PUK or management key), logout, the PIN held
//! for recovery and PIN-always keys, and PIN/PUK changes.

use super::state::{pin_error, Login, Token, TokenState};
use crate::error::{Error, Result};
use apdu::piv::caps::MetadataSupport;
use apdu::piv::{ManagementKey, Pin, PinRef, PinStatus};
use apdu::Session;
use zeroize::Zeroizing;

impl Token {
    /// C_Login(CKU_USER).
    pub fn login_user(&self, st: &mut TokenState, pin: &Pin) -> Result<()> {
        match st.login {
            Login::User => return Err(Error::UserAlreadyLoggedIn),
            Login::SoPuk | Login::SoManagementKey => return Err(Error::UserAnotherAlreadyLoggedIn),
            Login::None => {}
        }
        self.info(st)?;
        self.transact(st, &mut |s, st| {
            // Is the card logged in already (another application)? An empty
            // VERIFY tells without spending a try.
            let found = matches!(s.pin_status(), Ok(PinStatus::Verified));
            match s.verify_pin(pin) {
                Ok(()) => {
                    st.pin.reset();
                    st.login = Login::User;
                    st.cached_pin = Some(pin.clone());
                    st.login_pin_unused = true;
                    st.pin_found_verified = found;
                    Ok(())
                }
                Err(e) => Err(pin_error(e.status(), &mut st.pin).unwrap_or_else(|| e.into())),
            }
        })
    }

    /// C_Login(CKU_CONTEXT_SPECIFIC): check the PIN now. If the next
    /// transaction is the operation, the card's verification is still fresh
    /// and the operation is one APDU; otherwise it verifies again first.
    pub fn verify_context(&self, st: &mut TokenState, pin: &Pin) -> Result<()> {
        self.transact(st, &mut |s, st| match s.verify_pin(pin) {
            Ok(()) => {
                st.pin.reset();
                st.context_verified = true;
                Ok(())
            }
            Err(e) => Err(pin_error(e.status(), &mut st.pin).unwrap_or_else(|| e.into())),
        })
    }

    /// C_Login(CKU_SO): the PUK (6–8 characters) or the management key (hex).
    pub fn login_so(&self, st: &mut TokenState, secret: &[u8]) -> Result<()> {
        match st.login {
            Login::SoPuk | Login::SoManagementKey => return Err(Error::UserAlreadyLoggedIn),
            Login::User => return Err(Error::UserAnotherAlreadyLoggedIn),
            Login::None => {}
        }
        let info = self.info(st)?;
        if (6..=8).contains(&secret.len()) {
            let puk = Pin::new(secret).map_err(|_| Error::PinInvalid)?;
            // PIV has no VERIFY for the PUK: CHANGE REFERENCE DATA with
            // old = new checks it and changes nothing.
            return self.transact(
                st,
                &mut |s, st| match s.change_reference(PinRef::Puk, &puk, &puk) {
                    Ok(()) => {
                        st.puk.reset();
                        st.login = Login::SoPuk;
                        st.so_puk = Some(puk.clone());
                        Ok(())
                    }
                    Err(e) => Err(pin_error(e.status(), &mut st.puk).unwrap_or_else(|| e.into())),
                },
            );
        }
        // C_Login answers a secret that cannot be right by its length with
        // CKR_PIN_INCORRECT (CKR_PIN_LEN_RANGE is for setting a PIN).
        if !matches!(secret.len(), 32 | 48 | 64) {
            return Err(Error::PinIncorrect);
        }
        let text = std::str::from_utf8(secret).map_err(|_| Error::PinInvalid)?;
        let bytes = Zeroizing::new(hex::decode(text).map_err(|_| Error::PinInvalid)?);
        // The key's algorithm: as GET METADATA says, else every algorithm
        // a key of this length can have (24 bytes: 3DES, then AES-192), the
        // CLI's rule (ukey_token::mgmt). A management key has no retry
        // counter: a refused candidate costs nothing.
        let known = match st.mgmt_alg {
            Some(a) => Some(a),
            None if info.metadata() == MetadataSupport::Absent => None,
            None => self.transact(st, &mut |s, _| {
                Ok(ukey_token::mgmt::reported_algorithm(s, &info.facts)?)
            })?,
        };
        for alg in ukey_token::mgmt::candidates(known, bytes.len()) {
            let key = ManagementKey::new(alg, &bytes).map_err(|_| Error::PinIncorrect)?;
            let accepted = self.transact(st, &mut |s, st| match s.authenticate(&key) {
                Ok(()) => {
                    st.mgmt_authenticated = true;
                    st.mgmt_alg = Some(alg);
                    st.login = Login::SoManagementKey;
                    st.so_key = Some(key.clone());
                    Ok(true)
                }
                // Refused (6982, or the card does not take this algorithm),
                // or an answer that does not decrypt: not this key.
                Err(e) if e.status().is_some() => Ok(false),
                Err(apdu::Error::Malformed(_)) => Ok(false),
                Err(e) => Err(e.into()),
            })?;
            if accepted {
                return Ok(());
            }
        }
        Err(Error::PinIncorrect)
    }

    /// C_Logout (also when the last session closes, and at C_Finalize):
    /// forget every secret held and leave the card as we found it.
    ///
    /// The PIV login is card-wide. If we verified the PIN (or authenticated
    /// the management key), that ends with a card reset: PC/SC reports it to
    /// every other connection before its next command, so they re-select and
    /// restore their own logins first (this module does), where a VERIFY
    /// P1=FF would log them out without telling them. If another application
    /// had verified the PIN before our login, the card stays verified: ending
    /// our login must not end theirs (OpenSC, for one, never logs in again by
    /// itself).
    pub fn logout(&self, st: &mut TokenState) -> Result<()> {
        if st.login == Login::None {
            return Err(Error::UserNotLoggedIn);
        }
        let card_state =
            (st.login == Login::User && !st.pin_found_verified) || st.mgmt_authenticated;
        self.forget_login(st);
        if card_state && !self.is_removed() {
            self.end_card_state(st);
        }
        Ok(())
    }

    /// Reset the card through our connection, so nothing we verified
    /// outlives our login; where the reset fails, VERIFY P1=FF at least
    /// drops the PIN (older cards may not know it: forgotten either way).
    pub(super) fn end_card_state(&self, st: &mut TokenState) {
        st.selected = false;
        st.context_verified = false;
        st.pin_fresh = false;
        let reset = match st.card.as_mut() {
            Some(card) => card.transport_mut().reset().map_err(Error::from),
            None => Err(Error::DeviceRemoved),
        };
        match reset {
            Ok(()) => tracing::debug!(slot = self.slot_id, "login ended: card reset"),
            Err(e) => {
                tracing::debug!(slot = self.slot_id, "card reset failed ({e}): VERIFY P1=FF");
                let _ = self.transact(st, &mut |s, _| s.logout().map_err(Error::from));
            }
        }
    }

    /// Forget the login without card traffic (last session closed after removal).
    pub fn forget_login(&self, st: &mut TokenState) {
        st.login = Login::None;
        st.cached_pin = None;
        st.login_pin_unused = false;
        st.pin_found_verified = false;
        st.so_key = None;
        st.so_puk = None;
        st.mgmt_authenticated = false;
    }

    /// The PIN given to C_Login(CKU_USER) if no private-key operation has
    /// run since: it authorises one use of a PIN-always key, as the card
    /// itself accepts one operation right after a VERIFY. OpenSSH logs in
    /// and signs at once without CKU_CONTEXT_SPECIFIC, and OpenSC and ykcs11
    /// leave the decision to the card, so such a client works with them.
    /// Taking it uses it up; a second use needs CKU_CONTEXT_SPECIFIC.
    pub fn take_login_pin(&self, st: &mut TokenState) -> Option<Pin> {
        if st.login == Login::User && std::mem::take(&mut st.login_pin_unused) {
            st.cached_pin.clone()
        } else {
            None
        }
    }

    /// The card forgot our PIN verification behind our back (another
    /// application's logout): verify again with the PIN held, in the
    /// running transaction, when restoring logins is on (as after a reset).
    /// `Ok(false)`, and no login left, when that is off or the PIN no
    /// longer works (then it is never tried again).
    pub(super) fn login_again(&self, s: &mut Session<'_>, st: &mut TokenState) -> Result<bool> {
        let pin = match (&st.cached_pin, self.restore_login) {
            (Some(pin), true) => pin.clone(),
            _ => {
                tracing::info!(slot = self.slot_id, "the card was logged out elsewhere");
                self.forget_login(st);
                return Ok(false);
            }
        };
        tracing::info!(
            slot = self.slot_id,
            "the card was logged out elsewhere: logging in again"
        );
        match s.verify_pin(&pin) {
            Ok(()) => {
                st.pin.reset();
                st.pin_found_verified = false;
                Ok(true)
            }
            Err(e) if e.status().is_some() => {
                pin_error(e.status(), &mut st.pin);
                self.forget_login(st);
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// C_SetPIN in a user or public session: change the PIN.
    pub fn change_pin(&self, st: &mut TokenState, old: &Pin, new: &Pin) -> Result<()> {
        self.info(st)?;
        self.transact(
            st,
            &mut |s, st| match s.change_reference(PinRef::Pin, old, new) {
                Ok(()) => {
                    st.pin.reset();
                    if st.login == Login::User {
                        st.cached_pin = Some(new.clone());
                    }
                    Ok(())
                }
                Err(e) => Err(pin_error(e.status(), &mut st.pin).unwrap_or_else(|| e.into())),
            },
        )
    }

    /// C_SetPIN as SO with the PUK: change the PUK.
    pub fn change_puk(&self, st: &mut TokenState, old: &Pin, new: &Pin) -> Result<()> {
        self.transact(
            st,
            &mut |s, st| match s.change_reference(PinRef::Puk, old, new) {
                Ok(()) => {
                    st.puk.reset();
                    st.so_puk = Some(new.clone());
                    Ok(())
                }
                Err(e) => Err(pin_error(e.status(), &mut st.puk).unwrap_or_else(|| e.into())),
            },
        )
    }

    /// C_InitPIN as SO with the PUK: unblock and set the user PIN.
    pub fn unblock_pin(&self, st: &mut TokenState, new_pin: &Pin) -> Result<()> {
        let puk = match (st.login, st.so_puk.clone()) {
            (Login::SoPuk, Some(p)) => p,
            (Login::SoManagementKey, _) => {
                return Err(Error::ActionProhibited(
                    "resetting the PIN needs the SO logged in with the PUK",
                ))
            }
            _ => return Err(Error::UserNotLoggedIn),
        };
        self.transact(st, &mut |s, st| match s.unblock_pin(&puk, new_pin) {
            Ok(()) => {
                st.pin.reset();
                st.puk.reset();
                Ok(())
            }
            Err(e) => Err(pin_error(e.status(), &mut st.puk).unwrap_or_else(|| e.into())),
        })
    }
}
