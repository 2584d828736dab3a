//! The fuzz targets of ukey, as plain functions.
//!
//! Each target is a module of [`targets`] with `pub fn run(data: &[u8])`
//! that panics when an invariant breaks; `fuzz_targets/<name>.rs` hands it
//! to libFuzzer in one line, and `tests/corpus.rs` replays the committed
//! seed corpus through the same function on the stable toolchain. Adding a
//! target (X.509 fields, PKCS#11 templates, a hostile card driving the
//! module end to end) is: a module here, an entry in [`TARGETS`], a
//! `[[bin]]` in Cargo.toml, a `fuzz_targets/` file and a seed corpus.
//!
//! Shared pieces:
//! * [`frames`]: the length-prefixed framing every multi-message input uses
//!   (vpcd's wire format: 2-byte big-endian length, then the payload);
//! * [`link`]: a card that plays fuzzer-chosen answers to any command;
//! * [`sim`]: factory and demo states of `ukey-sim` made once per process,
//!   a scratch state file, and the consistency checks of a state file;
//! * [`seeds`]: turns a pcscd APDU log (`pcscd -a`) of real clients into
//!   seed files for every target (`examples/make_corpus.rs`).

pub mod frames;
pub mod link;
pub mod seeds;
pub mod sim;
pub mod targets;

/// A target's entry point: panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name (the names of the fuzz binaries and corpus folders).
pub const TARGETS: &[(&str, Target)] = &[
    ("tlv", targets::tlv::run),
    ("response", targets::response::run),
    ("piv_objects", targets::piv_objects::run),
    ("command_apdu", targets::command_apdu::run),
    ("atr", targets::atr::run),
    ("sim_dispatcher", targets::sim_dispatcher::run),
    ("x509_fields", targets::x509_fields::run),
    ("p11_template", targets::p11_template::run),
    ("hostile_card", targets::hostile_card::run),
];
