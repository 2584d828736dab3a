//! A safe client of vendor GM/T 0016-2012 "SKF" libraries (the `.so` that
//! comes with a Chinese CA's SM2 USB key): the layer the PKCS#11 module's
//! SKF backend and `ukey` stand on.
//!
//! * [`Library::load`]: `libloading`, every symbol resolved once; a
//!   missing required function or a library that does not load is one
//!   [`Error`], a missing optional one a missing [`Capability`].
//! * [`Library::devices`] → [`Library::connect`] → [`Device`] →
//!   [`Application`] (PINs) → [`Container`] (keys, certificates, signing).
//! * [`crypto`]: e = SM3(Z‖M) for [`Container::sign`], SKF blobs ↔ SM2 keys.
//! * [`pkcs11`]: the SM2/SM3 numbers ukey's PKCS#11 module uses.
//!
//! Vendor answers are checked before they are believed (see [`raw`]):
//! lengths beyond the buffer or above 1 MiB, names without NUL, lists
//! without their double NUL, points off the curve are [`Error::Malformed`].
//! For what we assume of vendor code and threads, see [`Library`].

pub mod crypto;
mod device;
mod error;
mod library;
pub mod pkcs11;
pub mod raw;

pub use device::{
    Application, Container, ContainerType, Device, DeviceInfo, KeyUse, Pin, PinInfo, PinKind,
};
pub use error::{Error, Result};
pub use library::{Capabilities, Capability, DevState, DeviceEvent, Functions, Library};
pub use raw::Name;

#[cfg(test)]
mod fake_tests;
