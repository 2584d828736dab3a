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
    /// Corrupt answers (the hostile card), or pass them on (an honest one).
    corrupt: bool,
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
        if !card.corrupt {
            return Ok(answer);
        }
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

/// A demo card with EC keys (fast to make) and an RSA-1024 key in 9D (for
/// the decryption paths), made once.
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
                (Slot::KeyManagement, Algorithm::Rsa1024),
                (Slot::CardAuthentication, Algorithm::EccP256),
            ],
            ..Default::default()
        };
        ukey_sim::demo::provision(&mut p, &ca, &opts).expect("demo");
        p
    })
    .clone()
}

/// Run the drive over `card`; panics are caught and reported as `None`.
/// The module is one per process: tests take turns.
fn drive(card: Card) -> Option<crate::testing::DriveReport> {
    static TURN: Mutex<()> = Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let card = Arc::new(Mutex::new(card));
    crate::testing::clear_readers();
    crate::testing::add_reader(
        "hostile",
        Arc::new(move || Ok(Box::new(HostileTransport(card.clone())) as Box<dyn Transport>)),
    );
    let report = std::panic::catch_unwind(crate::testing::drive_application).ok();
    crate::testing::clear_readers();
    report
}

/// The drive against an honest card reaches every step: signatures, all
/// three decryptions (PKCS#1, OAEP with a label, raw), the SO's logins and
/// the PIN reset. What the hostile card then corrupts is a complete run.
#[test]
fn an_honest_card_takes_the_drive_all_the_way() {
    std::env::set_var("UKEY_NO_PCSC", "1");
    std::env::remove_var("UKEY_SIM");
    let r = drive(Card {
        rng: Rng(1),
        sim: ukey_sim::SimCard::new(demo_state()),
        corrupt: false,
    })
    .expect("no panic");
    assert_eq!(r.user_logins, 1, "{r:?}");
    assert!(r.signatures >= 4, "{r:?}");
    assert_eq!(
        (r.decrypted_pkcs1, r.decrypted_oaep, r.decrypted_raw),
        (1, 1, 1),
        "{r:?}"
    );
    assert_eq!(
        (r.so_puk_logins, r.pins_reset, r.digests),
        (1, 1, 1),
        "{r:?}"
    );
    // The demo card's management key is PIN-protected and not the default.
    assert_eq!(r.so_management_key_logins, 0, "{r:?}");
    let mut factory = demo_state();
    factory.management_key = ukey_sim::state::Persistent::factory(2).management_key;
    let r = drive(Card {
        rng: Rng(1),
        sim: ukey_sim::SimCard::new(factory),
        corrupt: false,
    })
    .expect("no panic");
    assert_eq!(r.so_management_key_logins, 1, "{r:?}");
}

#[test]
fn a_hostile_card_never_panics_the_module() {
    std::env::set_var("UKEY_NO_PCSC", "1");
    std::env::remove_var("UKEY_SIM");
    let mut decrypted = 0;
    for seed in 1..=800u64 {
        let report = drive(Card {
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            sim: ukey_sim::SimCard::new(demo_state()),
            corrupt: true,
        });
        let r = report.unwrap_or_else(|| panic!("seed {seed} panicked the module"));
        decrypted += r.decrypted_pkcs1 + r.decrypted_oaep + r.decrypted_raw;
    }
    let n = EXCHANGES.load(std::sync::atomic::Ordering::Relaxed);
    let ops = PRIVATE_OPS.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "hostile card: {n} APDUs, {ops} private-key operations, {decrypted} decryptions over 800 rounds"
    );
    // Not vacuous: the rounds get past identification, listing and login
    // into signing and decryption, where most parsing happens.
    assert!(
        n > 8_000 && ops > 300 && decrypted > 50,
        "the hostile card answered only {n} APDUs ({ops} private-key operations, {decrypted} decryptions)"
    );
}
