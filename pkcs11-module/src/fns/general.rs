//! General-purpose functions (PKCS#11 v3.0 §5.4).

use super::pad;
use crate::error::{Error, Result};
use crate::ffi::ptr::{InInitArgs, Out};
use crate::library;
use cryptoki_sys::*;

/// §5.4.1 C_Initialize.
pub fn initialize(args: InInitArgs) -> Result<()> {
    library::initialize(args.read()?)
}

/// §5.4.2 C_Finalize: `pReserved` must be NULL.
pub fn finalize(reserved_is_null: bool) -> Result<()> {
    if !reserved_is_null {
        return Err(Error::ArgumentsBad);
    }
    library::finalize()
}

/// §5.4.3 C_GetInfo.
pub fn get_info(out: Out<CK_INFO>) -> Result<()> {
    library::get()?;
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.').map(|p| p.parse::<u8>().unwrap_or(0));
    out.write(CK_INFO {
        cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
        manufacturerID: pad("ukey"),
        flags: 0,
        libraryDescription: pad("ukey PIV PKCS#11 module"),
        libraryVersion: CK_VERSION {
            major: parts.next().unwrap_or(0),
            minor: parts.next().unwrap_or(0),
        },
    })
}
