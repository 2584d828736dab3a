//! Readers with a transport supplied by a test or fuzzer (feature
//! `test-readers`): the module then runs end to end over whatever that
//! transport answers, e.g. a hostile card. Register before C_Initialize.

use crate::ffi::entry::*;
use apdu::transport::{Transport, TransportError};
use cryptoki_sys::*;
use std::ptr::null_mut;
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

pub(crate) fn readers() -> Vec<(String, Connect)> {
    READERS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// What an application does with a token, start to end: initialize, slot
/// and token info, listing before and after login, every attribute a
/// client reads, signing and decryption with every key, random numbers,
/// logout, finalize. Used by the hostile-card test and fuzz target; every
/// answer must be a CK_RV.
pub fn drive_application() {
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
