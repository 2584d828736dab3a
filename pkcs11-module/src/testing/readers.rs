//! Test readers: a name and a way to connect, registered by a test or a
//! fuzzer before C_Initialize; each becomes a slot with a card always
//! present (see `crate::slots`).

use apdu::transport::{Transport, TransportError};
use std::sync::{Arc, Mutex};

/// Makes a connection to the test card.
pub type Connect = Arc<dyn Fn() -> Result<Box<dyn Transport>, TransportError> + Send + Sync>;

static READERS: Mutex<Vec<(String, Connect)>> = Mutex::new(Vec::new());

/// Add a reader (with a card always present) to the next C_Initialize.
pub fn add_reader(name: &str, connect: Connect) {
    READERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((name.to_string(), connect));
}

/// Remove every registered reader.
pub fn clear_readers() {
    READERS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

pub(crate) fn registered() -> Vec<(String, Connect)> {
    READERS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
