//! PC/SC transport on the `pcsc` crate: shared-mode connections, one
//! exclusive transaction per operation, card reset and removal reported as
//! typed errors (never retried blindly).

use crate::transport::{Link, TransactionBody, Transport, TransportError};
use crate::Error;
use pcsc::{Card, Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use std::ffi::{CStr, CString};

/// Map a PC/SC error to what it means for the caller.
pub fn map_error(e: pcsc::Error) -> TransportError {
    use pcsc::Error as E;
    match e {
        E::ResetCard => TransportError::CardReset,
        // NotTransacted: every exchange runs inside our own transaction, so
        // losing it means the card went away under us (pcscd has not yet
        // noticed a card pulled a moment ago).
        E::RemovedCard
        | E::NoSmartcard
        | E::UnpoweredCard
        | E::UnresponsiveCard
        | E::NotTransacted => TransportError::CardRemoved,
        E::ReaderUnavailable | E::UnknownReader => TransportError::ReaderUnavailable,
        E::SharingViolation => TransportError::SharingViolation,
        E::NoService | E::ServiceStopped => TransportError::NoService,
        E::NoReadersAvailable => TransportError::NoReaders,
        E::Timeout => TransportError::Timeout,
        other => TransportError::Other(other.to_string()),
    }
}

/// Establish a PC/SC context (fails with `NoService` when pcscd is not running).
pub fn context() -> Result<Context, TransportError> {
    Context::establish(Scope::User).map_err(map_error)
}

/// A reader and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderStatus {
    pub name: CString,
    pub card_present: bool,
    /// Another application holds the card exclusively.
    pub exclusive: bool,
    pub atr: Vec<u8>,
    /// Changes on every insertion/removal (pcsc-lite event counter).
    pub event_count: u32,
}

/// List readers with their card state, without connecting to any card.
pub fn list_readers(ctx: &Context) -> Result<Vec<ReaderStatus>, TransportError> {
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(map_error(e)),
    };
    let mut states: Vec<ReaderState> = names
        .into_iter()
        .map(|n| ReaderState::new(n, State::UNAWARE))
        .collect();
    if states.is_empty() {
        return Ok(Vec::new());
    }
    ctx.get_status_change(std::time::Duration::ZERO, &mut states)
        .or_else(|e| {
            if e == pcsc::Error::Timeout {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(map_error)?;
    Ok(states
        .iter()
        .map(|s| ReaderStatus {
            name: s.name().to_owned(),
            card_present: s.event_state().contains(State::PRESENT)
                && !s.event_state().contains(State::MUTE),
            exclusive: s.event_state().contains(State::EXCLUSIVE),
            atr: s.atr().to_vec(),
            event_count: s.event_count(),
        })
        .collect())
}

/// A shared-mode connection to the card in one reader.
pub struct PcscTransport {
    card: Option<Card>,
    reader: CString,
    atr: Vec<u8>,
    reconnect_pending: bool,
    /// Receive buffer for the largest extended-length answer, allocated
    /// once: zeroing 64 KiB for every APDU cost more than the rest of the
    /// host's work for a signature.
    buf: Vec<u8>,
}

struct PcscLink<'c> {
    card: &'c Card,
    reset_seen: &'c mut bool,
    buf: &'c mut [u8],
}

impl Link for PcscLink<'_> {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.card.transmit(apdu, self.buf) {
            // An empty answer is what a vanished card gives (INTEROP.md #4).
            Ok([]) => Err(TransportError::CardRemoved),
            Ok(r) => Ok(r.to_vec()),
            Err(e) => {
                let e = map_error(e);
                if e == TransportError::CardReset {
                    *self.reset_seen = true;
                }
                Err(e)
            }
        }
    }
}

impl PcscTransport {
    /// Connect to the card in `reader` (shared mode, T=0 or T=1).
    pub fn connect(ctx: &Context, reader: &CStr) -> Result<Self, TransportError> {
        let card = ctx
            .connect(reader, ShareMode::Shared, Protocols::ANY)
            .map_err(map_error)?;
        let atr = card
            .status2_owned()
            .map(|s| s.atr().to_vec())
            .map_err(map_error)?;
        Ok(Self {
            card: Some(card),
            reader: reader.to_owned(),
            atr,
            reconnect_pending: false,
            buf: vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }

    pub fn reader(&self) -> &CStr {
        &self.reader
    }

    fn card(&mut self) -> Result<&mut Card, TransportError> {
        self.card.as_mut().ok_or(TransportError::CardRemoved)
    }

    /// After `SCARD_W_RESET_CARD` pcsc-lite wants a reconnect before the
    /// handle works again; the card's volatile state is gone either way.
    fn reconnect(&mut self) -> Result<(), TransportError> {
        self.reconnect_pending = false;
        let card = self.card()?;
        card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
            .map_err(map_error)?;
        if let Ok(s) = card.status2_owned() {
            self.atr = s.atr().to_vec();
        }
        Ok(())
    }
}

impl Transport for PcscTransport {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn exclusive(&mut self, body: &mut TransactionBody<'_>) -> Result<(), Error> {
        if self.reconnect_pending {
            self.reconnect()?;
        }
        let mut reset_seen = false;
        let result = {
            let card = self.card.as_mut().ok_or(TransportError::CardRemoved)?;
            match card.transaction2() {
                Ok(tx) => {
                    let mut link = PcscLink {
                        card: &tx,
                        reset_seen: &mut reset_seen,
                        buf: &mut self.buf,
                    };
                    let r = body(&mut link);
                    // A failed end (card gone) changes nothing for the caller.
                    let _ = tx.end(Disposition::LeaveCard);
                    r
                }
                Err((_, e)) => {
                    let e = map_error(e);
                    if e == TransportError::CardReset {
                        reset_seen = true;
                    }
                    Err(Error::Transport(e))
                }
            }
        };
        if reset_seen {
            // Make the handle usable again; the caller re-selects and re-verifies.
            self.reconnect_pending = true;
            let _ = self.reconnect();
        }
        result
    }

    fn reset(&mut self) -> Result<(), Error> {
        let card = self.card()?;
        card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
            .map_err(map_error)?;
        if let Ok(s) = card.status2_owned() {
            self.atr = s.atr().to_vec();
        }
        Ok(())
    }
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        // pcsc's own Drop resets the card, logging out every other
        // application: leave it as it is instead.
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(Disposition::LeaveCard);
        }
    }
}
