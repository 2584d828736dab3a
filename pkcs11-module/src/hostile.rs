//! A hostile card: every APDU answered with pseudo-random garbage, valid
//! status words in the wrong places, truncated TLVs and huge lengths. The
//! module must answer every call with a CK_RV and never panic.

use apdu::transport::{Link, TransactionBody, Transport, TransportError};
use std::sync::{Arc, Mutex};

/// xorshift64*: deterministic, so a failure is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A real card (the simulator's applet) whose answers are corrupted now
/// and then, so bad data reaches every parser, not just the first.
struct Card {
    rng: Rng,
    sim: ukey_sim::SimCard,
}

struct Hostile(Arc<Mutex<Card>>);

static EXCHANGES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PRIVATE_OPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Link for Hostile {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        EXCHANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if apdu.get(1) == Some(&0x87) {
            PRIVATE_OPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut card = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut answer = card.sim.transmit(apdu)?;
        let rng = &mut card.rng;
        match rng.next() % 20 {
            // Truncated anywhere, even before the status word.
            0 => answer.truncate((rng.next() as usize) % (answer.len() + 1)),
            // One byte flipped.
            1 if !answer.is_empty() => {
                let i = (rng.next() as usize) % answer.len();
                answer[i] ^= 1 << (rng.next() % 8);
            }
            // A status word that does not belong here.
            2 => {
                let n = answer.len();
                if n >= 2 {
                    let sws: [[u8; 2]; 6] = [
                        [0x61, rng.next() as u8],
                        [0x6C, rng.next() as u8],
                        [0x63, 0xC1],
                        [0x69, 0x83],
                        [0x6A, 0x82],
                        [0x90, 0x00],
                    ];
                    answer[n - 2..].copy_from_slice(&sws[(rng.next() % 6) as usize]);
                }
            }
            // Garbage appended before the status word.
            3 => {
                let n = answer.len().saturating_sub(2);
                let junk: Vec<u8> = (0..rng.next() % 300).map(|_| rng.next() as u8).collect();
                answer.splice(n..n, junk);
            }
            // Pure noise.
            4 => answer = (0..rng.next() % 64).map(|_| rng.next() as u8).collect(),
            _ => {}
        }
        Ok(answer)
    }
}

struct HostileTransport(Arc<Mutex<Card>>);

impl Transport for HostileTransport {
    fn atr(&self) -> Vec<u8> {
        ukey_sim::ATR.to_vec()
    }
    fn exclusive(&mut self, body: &mut TransactionBody<'_>) -> Result<(), apdu::Error> {
        body(&mut Hostile(self.0.clone()))
    }
    fn reset(&mut self) -> Result<(), apdu::Error> {
        Ok(())
    }
}

/// A demo card with EC keys (fast to make), made once.
fn demo_state() -> ukey_sim::state::Persistent {
    use std::sync::OnceLock;
    static DEMO: OnceLock<ukey_sim::state::Persistent> = OnceLock::new();
    DEMO.get_or_init(|| {
        use apdu::piv::{Algorithm, Slot};
        let ca = ukey_sim::ca::Ca::new("CN=hostile test CA").expect("CA");
        let mut p = ukey_sim::state::Persistent::factory(1);
        let opts = ukey_sim::demo::DemoOptions {
            keys: vec![
                (Slot::Authentication, Algorithm::EccP256),
                (Slot::Signature, Algorithm::EccP256),
                (Slot::KeyManagement, Algorithm::EccP384),
                (Slot::CardAuthentication, Algorithm::EccP256),
            ],
            ..Default::default()
        };
        ukey_sim::demo::provision(&mut p, &ca, &opts).expect("demo");
        p
    })
    .clone()
}

#[test]
fn a_hostile_card_never_panics_the_module() {
    std::env::set_var("UKEY_NO_PCSC", "1");
    std::env::remove_var("UKEY_SIM");
    for seed in 1..=800u64 {
        let card = Arc::new(Mutex::new(Card {
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            sim: ukey_sim::SimCard::new(demo_state()),
        }));
        crate::testing::clear_readers();
        crate::testing::add_reader(
            "hostile",
            Arc::new(move || Ok(Box::new(HostileTransport(card.clone())) as Box<dyn Transport>)),
        );
        let result = std::panic::catch_unwind(crate::testing::drive_application);
        assert!(result.is_ok(), "seed {seed} panicked the module");
    }
    crate::testing::clear_readers();
    let n = EXCHANGES.load(std::sync::atomic::Ordering::Relaxed);
    let ops = PRIVATE_OPS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("hostile card: {n} APDUs, {ops} private-key operations over 800 rounds");
    // Not vacuous: the rounds get past identification, listing and login
    // into signing, where most parsing happens.
    assert!(
        n > 8_000 && ops > 300,
        "the hostile card answered only {n} APDUs ({ops} signatures)"
    );
}
