//! What identifies and describes the card, read once per insertion: the
//! shared token service's ([`ukey_token::card`]), so the module and the
//! CLI show the same identity and use the same firmware thresholds.

use crate::error::Result;
use apdu::Session;

pub use ukey_token::card::{identity, CardInfo};

/// SELECTed already: who is this card, and what does it answer?
pub(super) fn read_card_info(s: &mut Session<'_>) -> Result<CardInfo> {
    Ok(ukey_token::card::read_card_info(s)?)
}
