//! A hostile card: every APDU answered with pseudo-random garbage, valid
//! status words in the wrong places, truncated TLVs and huge lengths. The
//! module must answer every call with a CK_RV and never panic.

use crate::ffi::entry::*;
use apdu::transport::{Link, TransactionBody, Transport, TransportError};
use cryptoki_sys::*;
use std::ptr::null_mut;
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

/// Drive the usual application sequence; every answer must be a CK_RV.
/// SAFETY (for the calls): all pointers are to live locals of the right size.
fn drive() {
    // SAFETY: see above; every call gets valid pointers.
    unsafe {
        C_Initialize(null_mut());
        let mut slots = [0 as CK_SLOT_ID; 8];
        let mut n: CK_ULONG = 8;
        C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n);
        for &slot in &slots[..(n as usize).min(8)] {
            let mut ti: CK_TOKEN_INFO = std::mem::zeroed();
            C_GetTokenInfo(slot, &mut ti);
            let mut h = 0;
            if C_OpenSession(
                slot,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                null_mut(),
                None,
                &mut h,
            ) != CKR_OK
            {
                continue;
            }
            let mut pin = *b"123456";
            C_Login(h, CKU_USER, pin.as_mut_ptr(), 6);
            C_FindObjectsInit(h, null_mut(), 0);
            let mut objs = [0 as CK_OBJECT_HANDLE; 32];
            let mut found: CK_ULONG = 0;
            C_FindObjects(h, objs.as_mut_ptr(), 32, &mut found);
            C_FindObjectsFinal(h);
            for &o in &objs[..(found as usize).min(32)] {
                let mut buf = [0u8; 4096];
                let mut attrs = [CK_ATTRIBUTE {
                    type_: CKA_VALUE,
                    pValue: buf.as_mut_ptr() as *mut std::ffi::c_void,
                    ulValueLen: buf.len() as CK_ULONG,
                }];
                C_GetAttributeValue(h, o, attrs.as_mut_ptr(), 1);
                for mech in [CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA256] {
                    let mut m = CK_MECHANISM {
                        mechanism: mech,
                        pParameter: null_mut(),
                        ulParameterLen: 0,
                    };
                    if C_SignInit(h, &mut m, o) == CKR_OK {
                        let mut data = *b"data";
                        let mut sig = [0u8; 1024];
                        let mut len: CK_ULONG = 1024;
                        C_Sign(h, data.as_mut_ptr(), 4, sig.as_mut_ptr(), &mut len);
                    }
                }
            }
            let mut random = [0u8; 32];
            C_GenerateRandom(h, random.as_mut_ptr(), 32);
            C_CloseSession(h);
        }
        C_Finalize(null_mut());
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
        let result = std::panic::catch_unwind(drive);
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
