//! Readers with a transport supplied by a test or fuzzer (feature
//! `test-readers`): the module then runs end to end over whatever that
//! transport answers, e.g. a hostile card. Register before C_Initialize
//! ([`readers`]); [`drive_application`] then calls the module through its
//! C entry points as an application would.

pub(crate) mod readers;

pub use readers::{add_reader, clear_readers, Connect};

use crate::ffi::entry::*;
use cryptoki_sys::*;
use std::ptr::null_mut;

/// What [`drive_application`] reached: the steps that succeeded. A fuzz
/// corpus of honest answers must reach every one (see the fuzz crate's
/// `make_module_corpus`), so the fuzzer starts from runs that get all the
/// way through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DriveReport {
    pub user_logins: u32,
    pub signatures: u32,
    pub decrypted_pkcs1: u32,
    pub decrypted_oaep: u32,
    pub decrypted_raw: u32,
    pub so_puk_logins: u32,
    pub so_management_key_logins: u32,
    pub pins_reset: u32,
    pub digests: u32,
}

/// C_Decrypt of `ct` with `mech` and the key `o`, the way applications
/// call it: a size query first, then the buffer.
///
/// # Safety
/// `mech` is a valid mechanism whose parameters live through the call.
unsafe fn decrypt(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    mech: &mut CK_MECHANISM,
    ct: &mut [u8],
) -> bool {
    // SAFETY: pointers to live locals of the stated sizes (caller: `mech`).
    unsafe {
        if C_DecryptInit(h, mech, o) != CKR_OK {
            return false;
        }
        let mut len: CK_ULONG = 0;
        let n = ct.len() as CK_ULONG;
        if C_Decrypt(h, ct.as_mut_ptr(), n, null_mut(), &mut len) != CKR_OK {
            return false;
        }
        let mut out = vec![0u8; (len as usize).min(4096)];
        let mut len = out.len() as CK_ULONG;
        C_Decrypt(h, ct.as_mut_ptr(), n, out.as_mut_ptr(), &mut len) == CKR_OK
    }
}

/// Ciphertexts for an RSA key: PKCS#1 v1.5 and OAEP (SHA-256, label
/// "ukey") encryptions made on the host with the key's public half, with a
/// fixed-seed generator (a fuzz run must be repeatable), and a raw block.
/// Noise where the card's answers give no usable public key.
fn ciphertexts(modulus: &[u8], exponent: &[u8]) -> [Vec<u8>; 3] {
    use rand::SeedableRng;
    let k = modulus.len();
    let noise = vec![0x42u8; k];
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(modulus),
        rsa::BigUint::from_bytes_be(exponent),
    );
    let Ok(public) = public else {
        return [noise.clone(), noise.clone(), noise];
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x756B_6579);
    let pad = |v: Vec<u8>| {
        let mut out = vec![0u8; k.saturating_sub(v.len())];
        out.extend(v);
        out
    };
    let pkcs1 = public
        .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, b"hostile")
        .map_or_else(|_| noise.clone(), pad);
    let oaep = public
        .encrypt(
            &mut rng,
            rsa::Oaep::new_with_label::<sha2::Sha256, _>("ukey"),
            b"hostile",
        )
        .map_or_else(|_| noise.clone(), pad);
    let raw = pad(rsa::BigUint::from_bytes_be(b"a raw block")
        .modpow(
            &rsa::BigUint::from_bytes_be(exponent),
            &rsa::BigUint::from_bytes_be(modulus),
        )
        .to_bytes_be());
    [pkcs1, oaep, raw]
}

/// An RSA private key's modulus and public exponent, if it has them.
///
/// # Safety
/// Only calls the module with pointers to live locals.
unsafe fn rsa_public(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut n = vec![0u8; 512];
    let mut e = vec![0u8; 8];
    let mut attrs = [
        CK_ATTRIBUTE {
            type_: CKA_MODULUS,
            pValue: n.as_mut_ptr().cast(),
            ulValueLen: 512,
        },
        CK_ATTRIBUTE {
            type_: CKA_PUBLIC_EXPONENT,
            pValue: e.as_mut_ptr().cast(),
            ulValueLen: 8,
        },
    ];
    // SAFETY: the attributes point to live buffers of the stated sizes.
    if unsafe { C_GetAttributeValue(h, o, attrs.as_mut_ptr(), 2) } != CKR_OK {
        return None;
    }
    let (nl, el) = (attrs[0].ulValueLen as usize, attrs[1].ulValueLen as usize);
    if !(64..=512).contains(&nl) || !(1..=8).contains(&el) {
        return None;
    }
    n.truncate(nl);
    e.truncate(el);
    Some((n, e))
}

/// What an application does with a token, start to end: initialize, slot
/// and token info, listing before and after login, every attribute a
/// client reads, signing and decryption (PKCS#1, OAEP with a label, raw)
/// with every key, a digest, random numbers, logout, the SO's logins (PUK,
/// then resetting the PIN with it; the default management key), finalize.
/// Used by the hostile-card test and fuzz target; every answer must be a
/// CK_RV. Returns what succeeded.
pub fn drive_application() -> DriveReport {
    let mut report = DriveReport::default();
    // SAFETY: every pointer passed is to a live local of the stated size.
    unsafe {
        if C_Initialize(null_mut()) != CKR_OK {
            return report;
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
            if C_Login(h, CKU_USER, pin.as_mut_ptr(), 6) == CKR_OK {
                report.user_logins += 1;
            }
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
                        if C_Sign(h, data.as_mut_ptr(), 7, sig.as_mut_ptr(), &mut len) == CKR_OK {
                            report.signatures += 1;
                        }
                    }
                }
                let Some((modulus, exponent)) = rsa_public(h, o) else {
                    continue;
                };
                let [mut pkcs1, mut oaep_ct, mut raw] = ciphertexts(&modulus, &exponent);
                let mut m = CK_MECHANISM {
                    mechanism: CKM_RSA_PKCS,
                    pParameter: null_mut(),
                    ulParameterLen: 0,
                };
                if decrypt(h, o, &mut m, &mut pkcs1) {
                    report.decrypted_pkcs1 += 1;
                }
                let mut label = *b"ukey";
                let mut params = CK_RSA_PKCS_OAEP_PARAMS {
                    hashAlg: CKM_SHA256,
                    mgf: CKG_MGF1_SHA256,
                    source: CKZ_DATA_SPECIFIED,
                    pSourceData: label.as_mut_ptr().cast(),
                    ulSourceDataLen: 4,
                };
                let mut m = CK_MECHANISM {
                    mechanism: CKM_RSA_PKCS_OAEP,
                    pParameter: (&mut params as *mut CK_RSA_PKCS_OAEP_PARAMS).cast(),
                    ulParameterLen: std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>() as CK_ULONG,
                };
                if decrypt(h, o, &mut m, &mut oaep_ct) {
                    report.decrypted_oaep += 1;
                }
                let mut m = CK_MECHANISM {
                    mechanism: CKM_RSA_X_509,
                    pParameter: null_mut(),
                    ulParameterLen: 0,
                };
                if decrypt(h, o, &mut m, &mut raw) {
                    report.decrypted_raw += 1;
                }
            }
            let mut sha = CK_MECHANISM {
                mechanism: CKM_SHA256,
                pParameter: null_mut(),
                ulParameterLen: 0,
            };
            let mut data = *b"hostile";
            let mut digest = [0u8; 32];
            let mut len: CK_ULONG = 32;
            if C_DigestInit(h, &mut sha) == CKR_OK
                && C_Digest(h, data.as_mut_ptr(), 7, digest.as_mut_ptr(), &mut len) == CKR_OK
            {
                report.digests += 1;
            }
            let mut random = [0u8; 48];
            C_GenerateRandom(h, random.as_mut_ptr(), 48);
            C_Logout(h);
            // The SO: the PUK (then the PIN reset with it, to the same
            // PIN), and the factory management key.
            let mut puk = *b"12345678";
            if C_Login(h, CKU_SO, puk.as_mut_ptr(), 8) == CKR_OK {
                report.so_puk_logins += 1;
                if C_InitPIN(h, pin.as_mut_ptr(), 6) == CKR_OK {
                    report.pins_reset += 1;
                }
                C_Logout(h);
            }
            let mut key = *b"010203040506070801020304050607080102030405060708";
            if C_Login(h, CKU_SO, key.as_mut_ptr(), 48) == CKR_OK {
                report.so_management_key_logins += 1;
                C_Logout(h);
            }
            C_CloseSession(h);
        }
        C_Finalize(null_mut());
    }
    report
}
