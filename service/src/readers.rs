//! PC/SC readers and what is in them, without a word to any card: the
//! readers the PKCS#11 module shows as slots and the CLI chooses from.

use apdu::pcsc::ReaderStatus;
use apdu::TransportError;
use std::time::{Duration, Instant};

pub use apdu::pcsc::ReaderStatus as Reader;

/// How long to wait before asking an unreachable PC/SC service again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A PC/SC context kept between scans: established when first needed,
/// dropped when the service fails (pcscd went away), asked again no sooner
/// than [`RETRY_AFTER`] later.
#[derive(Default)]
pub struct PcscReaders {
    ctx: Option<pcsc::Context>,
    retry_at: Option<Instant>,
}

impl PcscReaders {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every reader with its presence, ATR and event count (one
    /// SCardGetStatusChange, no card connected). `Err` when the service
    /// cannot be reached or failed; scanning again retries it.
    pub fn scan(&mut self) -> Result<Vec<ReaderStatus>, TransportError> {
        if self.ctx.is_none() {
            if let Some(at) = self.retry_at {
                if Instant::now() < at {
                    // The last attempt failed moments ago.
                    return Err(TransportError::NoService);
                }
            }
            match apdu::pcsc::context() {
                Ok(c) => self.ctx = Some(c),
                Err(e) => {
                    self.retry_at = Some(Instant::now() + RETRY_AFTER);
                    return Err(e);
                }
            }
        }
        let ctx = self.ctx.as_ref().ok_or(TransportError::NoService)?;
        match apdu::pcsc::list_readers(ctx) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.ctx = None;
                self.retry_at = Some(Instant::now() + RETRY_AFTER);
                Err(e)
            }
        }
    }

    /// The context of the last good scan (to connect to a reader).
    pub fn context(&self) -> Option<&pcsc::Context> {
        self.ctx.as_ref()
    }

    /// Keep the context (after a scan), for connecting later.
    pub fn into_context(self) -> Option<pcsc::Context> {
        self.ctx
    }
}

/// Why PC/SC cannot be used, in a sentence for a person.
pub fn unavailable(e: &TransportError) -> String {
    match e {
        TransportError::NoService => {
            "the smart card service (pcscd) is not running: start it (systemctl start pcscd) \
             or install it (apt install pcscd)"
                .into()
        }
        other => format!("PC/SC failed: {other}"),
    }
}
