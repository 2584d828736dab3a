//! A hostile card driving the whole module: `libukey_pkcs11`'s C entry
//! points, from C_Initialize through listing, attribute reads, login,
//! signing, decryption and random numbers, over a card whose every answer
//! is the next fuzzer-chosen frame. A panic (the FFI guard re-raises them
//! under cfg(fuzzing)) or a host that never stops is a finding.

use crate::frames::Frames;
use apdu::transport::{Link, TransactionBody, Transport, TransportError};
use std::sync::{Arc, Mutex};

/// Far more exchanges than this drive can honestly take.
const MAX_EXCHANGES: usize = 100_000;

struct Script {
    answers: Vec<Vec<u8>>,
    next: usize,
    sent: usize,
}

struct Card(Arc<Mutex<Script>>);

impl Link for Card {
    fn exchange(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.sent += 1;
        assert!(
            s.sent <= MAX_EXCHANGES,
            "the module does not stop: {} APDUs",
            s.sent
        );
        if s.next >= s.answers.len() {
            // The script is over: the card has gone.
            return Err(TransportError::CardRemoved);
        }
        let a = s.answers[s.next].clone();
        s.next += 1;
        Ok(a)
    }
}

struct HostileTransport(Arc<Mutex<Script>>);

impl Transport for HostileTransport {
    fn atr(&self) -> Vec<u8> {
        ukey_sim::ATR.to_vec()
    }
    fn exclusive(&mut self, body: &mut TransactionBody<'_>) -> Result<(), apdu::Error> {
        body(&mut Card(self.0.clone()))
    }
    fn reset(&mut self) -> Result<(), apdu::Error> {
        Ok(())
    }
}

fn setup_env() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::set_var("UKEY_NO_PCSC", "1");
        std::env::remove_var("UKEY_SIM");
        std::env::remove_var("UKEY_LOG");
    });
}

pub fn run(data: &[u8]) {
    setup_env();
    let script = Arc::new(Mutex::new(Script {
        answers: Frames::new(data).map(<[u8]>::to_vec).collect(),
        next: 0,
        sent: 0,
    }));
    ukey_pkcs11::testing::clear_readers();
    ukey_pkcs11::testing::add_reader(
        "hostile",
        Arc::new(move || Ok(Box::new(HostileTransport(script.clone())) as Box<dyn Transport>)),
    );
    ukey_pkcs11::testing::drive_application();
    ukey_pkcs11::testing::clear_readers();
}
