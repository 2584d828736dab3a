//! What ukey knows about a PIV token, written once for the PKCS#11 module
//! and the CLI, so the two cannot disagree:
//!
//! - [`card`]: who the card is ([`card::CardInfo`], its identity) and the
//!   firmware thresholds still used;
//! - [`counters`]: PIN and PUK tries, read without spending one;
//! - [`mgmt`]: how the management key is kept, and the algorithms a key of
//!   n bytes is tried with;
//! - [`readers`]: PC/SC readers with their presence.
//!
//! With feature `status`, the status model (what `ukey status` reports,
//! `Serialize`), a library a GUI can call: [`status`], on [`access`]
//! (reader choice, token access) with its parts ([`certs`], [`verdict`],
//! [`marker`], [`supersede`], [`slotkey`], [`phase`]) and [`error`] (the
//! error with the stable `kind` strings of the JSON). The PKCS#11 module
//! does not enable it.

pub mod card;
pub mod counters;
pub mod mgmt;
pub mod readers;

#[cfg(feature = "status")]
pub mod access;
#[cfg(feature = "status")]
pub mod certs;
#[cfg(feature = "status")]
pub mod error;
#[cfg(feature = "status")]
pub mod marker;
#[cfg(feature = "status")]
pub mod phase;
#[cfg(feature = "status")]
pub mod slotkey;
#[cfg(feature = "status")]
pub mod status;
#[cfg(feature = "status")]
pub mod supersede;
#[cfg(feature = "status")]
pub mod verdict;

/// The version of the JSON documents (docs/ukey-json.schema.json); every
/// document carries it as `schema_version`.
#[cfg(feature = "status")]
pub const SCHEMA_VERSION: u32 = 1;
