//! One token (a card in a slot): its connection, what was read from it,
//! the login state PKCS#11 shares between an application's sessions, and
//! every card operation.
//!
//! All card traffic goes through [`Token::transact`], which runs one PC/SC
//! transaction, SELECTs the applet when needed, and recovers once from a
//! card reset by another application: re-SELECT, check it is the same card
//! (serial), restore the login with the PIN held in zeroizing memory, retry.
//! Caches are updated only after the card confirmed a change.
//!
//! The parts, one file each: [`state`] (the token and its state),
//! [`card_info`] and [`facts`] (identity, counters), [`connection`]
//! (transactions, reset recovery), [`login`], [`objects`] (certificates and
//! keys, cached), [`private`] (private-key operations), [`writes`] (under
//! the management key), [`renewal`] (ukey's staging marker), [`names`]
//! (applications' names on the card), [`guard`] (check-and-act guards) and
//! [`vendor`] (ukey's object numbers).
//! This file only names them: no part imports it.

pub mod card_info;
pub mod connection;
pub mod convert;
pub mod edits;
pub mod facts;
pub mod guard;
pub mod login;
pub mod names;
pub mod names_object;
pub mod naming;
pub mod objects;
pub mod p11;
pub mod private;
pub mod renewal;
pub mod state;
pub mod vendor;
pub mod writes;

#[cfg(test)]
mod tests;

pub use card_info::CardInfo;
pub use guard::Shown;
pub use state::{Connector, Counter, Login, RenewalData, SlotContents, Token, TokenState};
pub use vendor::{RENEWAL_APPLICATION, RENEWAL_OBJECT};
