//! One error type for everything a vendor library can answer, with the
//! `SAR_*` codes mapped once ([`Error::from_sar`]).

use std::path::PathBuf;
use ukey_skf_sys::*;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, neutral enough for the PKCS#11 module (`CKR_*`) and
/// the CLI (one line) to map without knowing SKF.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `dlopen` failed.
    #[error("{}: cannot be loaded: {reason}", path.display())]
    Load { path: PathBuf, reason: String },
    /// The library lacks a function every SKF library must have.
    #[error("{}: has no {function}: not a usable SKF library", path.display())]
    MissingFunction {
        path: PathBuf,
        function: &'static str,
    },
    /// The library lacks the function, or answered `SAR_NOTSUPPORTYETERR`.
    #[error("{0}: not supported by this SKF library")]
    NotSupported(&'static str),
    /// `SAR_DEVICE_REMOVED`.
    #[error("the device was removed")]
    Removed,
    /// `SAR_PIN_INCORRECT`, with the tries left when the library said.
    #[error("wrong PIN{}", match tries_left { Some(n) => format!(" ({n} tries left)"), None => String::new() })]
    PinIncorrect { tries_left: Option<u32> },
    /// `SAR_PIN_LOCKED`.
    #[error("the PIN is locked")]
    PinLocked,
    /// `SAR_PIN_INVALID`, `SAR_PIN_LEN_RANGE`.
    #[error("the device does not accept this PIN (length or characters)")]
    PinInvalid,
    /// `SAR_USER_NOT_LOGGED_IN`.
    #[error("{0}: the PIN must be verified first")]
    NotLoggedIn(&'static str),
    /// The application, container, key, certificate or file does not exist.
    #[error("{function}: not found ({})", sar_name(*code))]
    NotFound { function: &'static str, code: ULONG },
    /// `SAR_APPLICATION_EXISTS`, `SAR_FILE_ALREADY_EXIST`.
    #[error("{0}: already exists")]
    Exists(&'static str),
    /// `SAR_NO_ROOM`, `SAR_REACH_MAX_CONTAINER_COUNT`.
    #[error("{0}: no room left on the device")]
    NoRoom(&'static str),
    /// `SAR_TIMEOUTERR`.
    #[error("{0}: timed out")]
    Timeout(&'static str),
    /// `SAR_INVALIDHANDLEERR` (some libraries say this for a pulled device).
    #[error("{0}: invalid handle")]
    InvalidHandle(&'static str),
    /// An answer that breaks the standard's contract (lengths, missing
    /// terminators, invalid points); never trusted further.
    #[error("{function}: malformed answer from the SKF library: {what}")]
    Malformed {
        function: &'static str,
        what: String,
    },
    /// Our caller's input cannot be passed to the library.
    #[error("{0}")]
    Argument(String),
    /// Any other result code.
    #[error("{function}: {} ({code:#010x})", sar_name(*code))]
    Sar { function: &'static str, code: ULONG },
}

impl Error {
    /// The error a `SAR_*` code other than `SAR_OK` stands for.
    pub fn from_sar(function: &'static str, code: ULONG) -> Self {
        match code {
            SAR_DEVICE_REMOVED => Error::Removed,
            SAR_PIN_INCORRECT => Error::PinIncorrect { tries_left: None },
            SAR_PIN_LOCKED => Error::PinLocked,
            SAR_PIN_INVALID | SAR_PIN_LEN_RANGE => Error::PinInvalid,
            SAR_USER_NOT_LOGGED_IN => Error::NotLoggedIn(function),
            SAR_NOTSUPPORTYETERR => Error::NotSupported(function),
            SAR_APPLICATION_NOT_EXISTS
            | SAR_FILE_NOT_EXIST
            | SAR_KEYNOTFOUNTERR
            | SAR_CERTNOTFOUNTERR => Error::NotFound { function, code },
            SAR_APPLICATION_EXISTS | SAR_FILE_ALREADY_EXIST => Error::Exists(function),
            SAR_NO_ROOM | SAR_REACH_MAX_CONTAINER_COUNT => Error::NoRoom(function),
            SAR_TIMEOUTERR => Error::Timeout(function),
            SAR_INVALIDHANDLEERR => Error::InvalidHandle(function),
            _ => Error::Sar { function, code },
        }
    }

    pub(crate) fn malformed(function: &'static str, what: impl Into<String>) -> Self {
        Error::Malformed {
            function,
            what: what.into(),
        }
    }
}

/// `Ok(())` for `SAR_OK`, else the mapped error.
pub(crate) fn check(function: &'static str, code: ULONG) -> Result<()> {
    if code == SAR_OK {
        Ok(())
    } else {
        Err(Error::from_sar(function, code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_their_meaning() {
        assert_eq!(Error::from_sar("f", SAR_DEVICE_REMOVED), Error::Removed);
        assert_eq!(
            Error::from_sar("f", SAR_PIN_INCORRECT),
            Error::PinIncorrect { tries_left: None }
        );
        assert_eq!(Error::from_sar("f", SAR_PIN_LOCKED), Error::PinLocked);
        assert_eq!(Error::from_sar("f", SAR_PIN_LEN_RANGE), Error::PinInvalid);
        assert_eq!(
            Error::from_sar("f", SAR_NOTSUPPORTYETERR),
            Error::NotSupported("f")
        );
        assert!(matches!(
            Error::from_sar("f", SAR_CERTNOTFOUNTERR),
            Error::NotFound { .. }
        ));
        assert_eq!(
            Error::from_sar("f", SAR_REACH_MAX_CONTAINER_COUNT),
            Error::NoRoom("f")
        );
        assert_eq!(
            Error::from_sar("SKF_X", 0x0A00_0001).to_string(),
            "SKF_X: SAR_FAIL (0x0a000001)"
        );
        assert_eq!(
            Error::from_sar("SKF_X", 0x1234).to_string(),
            "SKF_X: unknown SAR code (0x00001234)"
        );
        assert_eq!(
            Error::PinIncorrect {
                tries_left: Some(9)
            }
            .to_string(),
            "wrong PIN (9 tries left)"
        );
        assert_eq!(check("f", SAR_OK), Ok(()));
    }
}
