//! The card's facts and counters: identity, PIN and PUK tries (no try
//! spent), whether GET CHALLENGE works; random numbers from the card.

use super::card_info::{read_card_info, CardInfo};
use super::state::{Counter, Login, Token, TokenState};
use crate::error::{Error, Result};
use apdu::piv::caps;
use apdu::piv::PinStatus;
use apdu::Session;

impl Token {
    /// Identify the card and read the PIN/PUK counters (no try spent).
    pub fn info(&self, st: &mut TokenState) -> Result<CardInfo> {
        if let Some(i) = &st.info {
            return Ok(i.clone());
        }
        self.transact(st, &mut |s, st| {
            let info = read_card_info(s)?;
            match info.facts.pin {
                Some(t) => {
                    st.pin = Counter {
                        left: Some(t.left),
                        total: t.total,
                    }
                }
                None if st.login == Login::None => read_pin_status(s, st)?,
                None => {}
            }
            if let Some(t) = info.facts.puk_tries(s)? {
                st.puk = Counter {
                    left: Some(t.left),
                    total: t.total,
                };
            }
            // CKF_RNG only where GET CHALLENGE answers.
            st.rng = Some(caps::probe_challenge(s)?);
            st.info = Some(info.clone());
            Ok(info)
        })
    }

    /// Random bytes from GET CHALLENGE.
    pub fn random(&self, st: &mut TokenState, out_len: usize) -> Result<Vec<u8>> {
        if st.rng == Some(false) {
            return Err(Error::RandomNoRng);
        }
        self.info(st)?;
        let r = self.transact(st, &mut |s, _| {
            let mut out = Vec::with_capacity(out_len);
            while out.len() < out_len {
                let n = (out_len - out.len()).min(256);
                out.extend(s.get_challenge(n)?);
            }
            Ok(out)
        });
        match r {
            Err(Error::DeviceError(_)) | Err(Error::Reselect) => {
                st.rng = Some(false);
                Err(Error::RandomNoRng)
            }
            other => {
                if other.is_ok() {
                    st.rng = Some(true);
                }
                other
            }
        }
    }
}

/// Empty VERIFY: the PIN's state without spending a try.
pub(super) fn read_pin_status(s: &mut Session<'_>, st: &mut TokenState) -> Result<()> {
    match s.pin_status() {
        Ok(PinStatus::TriesLeft(n)) => st.pin.set_left(n),
        Ok(PinStatus::Blocked) => st.pin.set_left(0),
        Ok(PinStatus::Verified) => {}
        Err(e) if e.status().is_some() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
