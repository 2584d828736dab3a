//! A hostile card driving the whole module: `libukey_pkcs11`'s C entry
//! points, from C_Initialize through listing, attribute reads, login,
//! signing, decryption and random numbers, over a card whose every answer
//! is the next fuzzer-chosen frame. A panic (the FFI guard re-raises them
//! under cfg(fuzzing)) or a host that never stops is a finding.

use crate::frames::Frames;
use apdu::transport::{Link, TransactionBody, Transport, TransportError};
use cryptoki_sys::*;
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};
use ukey_pkcs11::ffi::entry::*;

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

/// The calls an application makes, with valid pointers throughout.
pub fn drive() {
    // SAFETY: every pointer passed is to a live local of the stated size.
    unsafe {
        if C_Initialize(null_mut()) != CKR_OK {
            return;
        }
        let mut slots = [0 as CK_SLOT_ID; 4];
        let mut n: CK_ULONG = 4;
        C_GetSlotList(CK_TRUE, slots.as_mut_ptr(), &mut n);
        for &slot in &slots[..(n as usize).min(4)] {
            let mut ti: CK_TOKEN_INFO = std::mem::zeroed();
            C_GetTokenInfo(slot, &mut ti);
            let mut mi: CK_MECHANISM_INFO = std::mem::zeroed();
            C_GetMechanismInfo(slot, CKM_RSA_PKCS, &mut mi);
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
            let mut objs = [0 as CK_OBJECT_HANDLE; 64];
            let mut found: CK_ULONG = 0;
            C_FindObjectsInit(h, null_mut(), 0);
            C_FindObjects(h, objs.as_mut_ptr(), 64, &mut found);
            C_FindObjectsFinal(h);
            let mut pin = *b"123456";
            C_Login(h, CKU_USER, pin.as_mut_ptr(), 6);
            C_FindObjectsInit(h, null_mut(), 0);
            C_FindObjects(h, objs.as_mut_ptr(), 64, &mut found);
            C_FindObjectsFinal(h);
            for &o in &objs[..(found as usize).min(64)] {
                let mut value = vec![0u8; 8192];
                let mut label = [0u8; 256];
                let mut class = [0u8; 8];
                let mut attrs = [
                    CK_ATTRIBUTE {
                        type_: CKA_CLASS,
                        pValue: class.as_mut_ptr().cast(),
                        ulValueLen: 8,
                    },
                    CK_ATTRIBUTE {
                        type_: CKA_LABEL,
                        pValue: label.as_mut_ptr().cast(),
                        ulValueLen: 256,
                    },
                    CK_ATTRIBUTE {
                        type_: CKA_VALUE,
                        pValue: value.as_mut_ptr().cast(),
                        ulValueLen: 8192,
                    },
                    CK_ATTRIBUTE {
                        type_: CKA_PUBLIC_KEY_INFO,
                        pValue: null_mut(),
                        ulValueLen: 0,
                    },
                ];
                C_GetAttributeValue(h, o, attrs.as_mut_ptr(), 4);
                for mech in [CKM_SHA256_RSA_PKCS, CKM_ECDSA_SHA256, CKM_RSA_X_509] {
                    let mut m = CK_MECHANISM {
                        mechanism: mech,
                        pParameter: null_mut(),
                        ulParameterLen: 0,
                    };
                    if C_SignInit(h, &mut m, o) == CKR_OK {
                        let mut data = *b"hostile";
                        let mut sig = [0u8; 1024];
                        let mut len: CK_ULONG = 1024;
                        C_Sign(h, data.as_mut_ptr(), 7, sig.as_mut_ptr(), &mut len);
                    }
                }
                let mut m = CK_MECHANISM {
                    mechanism: CKM_RSA_PKCS,
                    pParameter: null_mut(),
                    ulParameterLen: 0,
                };
                if C_DecryptInit(h, &mut m, o) == CKR_OK {
                    let mut ct = [0x42u8; 256];
                    let mut out = [0u8; 512];
                    let mut len: CK_ULONG = 512;
                    C_Decrypt(h, ct.as_mut_ptr(), 256, out.as_mut_ptr(), &mut len);
                }
            }
            let mut random = [0u8; 48];
            C_GenerateRandom(h, random.as_mut_ptr(), 48);
            C_Logout(h);
            C_CloseSession(h);
        }
        C_Finalize(null_mut());
    }
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
    drive();
    ukey_pkcs11::testing::clear_readers();
}
