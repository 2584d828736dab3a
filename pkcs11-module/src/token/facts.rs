//! The card's facts and counters: identity, PIN and PUK tries (no try
//! spent), whether GET CHALLENGE works; random numbers from the card.

use super::card_info::{read_card_info, CardInfo};
use super::state::{Counter, Login, Token, TokenState};
use crate::error::{Error, Result};
use apdu::piv::caps;
use apdu::Session;
use ukey_token::counters;

impl Token {
    /// Identify the card and read the PIN/PUK counters (no try spent).
    pub fn info(&self, st: &mut TokenState) -> Result<CardInfo> {
        if let Some(i) = &st.info {
            return Ok(i.clone());
        }
        self.transact(st, &mut |s, st| {
            let info = read_card_info(s)?;
            match info.facts.pin {
                Some(t) => st.pin = state_counter(t.into()),
                None if st.login == Login::None => read_pin_status(s, &info, st)?,
                None => {}
            }
            if let Some(c) = counters::puk_counter(s, &info.facts)? {
                st.puk = state_counter(c);
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

/// The PIN's state without spending a try (an empty VERIFY on a card
/// whose GET METADATA does not work): a status the card answers instead
/// of a count leaves the counter as it was.
fn read_pin_status(s: &mut Session<'_>, info: &CardInfo, st: &mut TokenState) -> Result<()> {
    match counters::pin_counter(s, &info.facts) {
        Ok(Some(c)) => st.pin.set_left(c.tries_left),
        Ok(None) => {}
        Err(e) if e.status().is_some() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The shared counter as the token state keeps it (a count from GET
/// METADATA, which always knows the total).
fn state_counter(c: counters::Counter) -> Counter {
    Counter {
        left: Some(c.tries_left),
        total: c.tries_total,
    }
}
