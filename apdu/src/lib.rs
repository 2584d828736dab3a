//! The APDU layer of ukey: ISO 7816-4 command/response APDUs, BER-TLV,
//! typed status words, the PIV command set (SP 800-73-4 plus the YubiKey
//! extensions) and the [`Transport`] trait with its PC/SC implementation.
//!
//! Everything above a [`Transport`] is plain safe Rust and is tested
//! in-process against `ukey-sim`; the PC/SC transport is the only part
//! that needs a daemon.
#![forbid(unsafe_code)]

pub mod atr;
pub mod card;
pub mod command;
pub mod piv;
pub mod sw;
pub mod tlv;
pub mod transport;

#[cfg(feature = "pcsc")]
pub mod pcsc;

pub use card::{Card, CardSession};
pub use command::{Command, ParsedCommand, Response, Sensitivity};
pub use piv::{PivCard, Session};
pub use sw::StatusWord;
pub use tlv::{Tag, TlvError};
pub use transport::{Link, Transport, TransportError};

/// Everything that can go wrong talking to a card.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The card or reader could not be reached (removed, reset, no service).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The card answered with a status word the operation does not expect.
    #[error("card answered {0}")]
    Status(StatusWord),
    /// The card's answer could not be parsed.
    #[error("malformed {0} from the card")]
    Malformed(&'static str),
    /// The caller asked for something the protocol cannot express.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl From<TlvError> for Error {
    fn from(_: TlvError) -> Self {
        Error::Malformed("TLV")
    }
}

impl Error {
    /// The status word, when the card answered one.
    pub fn status(&self) -> Option<StatusWord> {
        match self {
            Error::Status(sw) => Some(*sw),
            _ => None,
        }
    }

    /// Whether the card went away (removed, or the reader vanished).
    pub fn is_removed(&self) -> bool {
        matches!(
            self,
            Error::Transport(TransportError::CardRemoved | TransportError::ReaderUnavailable)
        )
    }

    /// Whether the card was reset under us (another process, or a power cycle).
    pub fn is_reset(&self) -> bool {
        matches!(self, Error::Transport(TransportError::CardReset))
    }
}
