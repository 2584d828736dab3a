//! What a PKCS#11 caller hands the module: attribute templates (read for
//! searches and writes, filled for C_GetAttributeValue) and mechanism
//! parameters (PSS, OAEP with a label, ECDH with a peer point), built from
//! fuzzer bytes in memory that really holds what the lengths say. Then the
//! scheme selection, the host-side padding for every demo key, and host
//! verification of a fuzzer-chosen signature.
//!
//! Input: a selector byte, then sections the parser below takes in order;
//! running out of input just ends the case.

use apdu::piv::{PinPolicy, Slot};
use cryptoki_sys::*;
use std::ffi::c_void;
use ukey_pkcs11::ffi::ptr::{AttrAnswer, InMechanism, Template};
use ukey_pkcs11::key::{KeyAlg, PublicKey};
use ukey_pkcs11::keyinfo::KeyInfo;
use ukey_pkcs11::mechanism;
use ukey_pkcs11::object::{matches, token_attribute, Kind, Names};
use ukey_pkcs11::token::convert;

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn u32(&mut self) -> u32 {
        let b = self.bytes(4);
        b.iter().fold(0, |acc, x| (acc << 8) | u32::from(*x))
    }
}

const MECHANISMS: &[CK_MECHANISM_TYPE] = &[
    CKM_RSA_PKCS,
    CKM_RSA_X_509,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_RSA_PKCS_OAEP,
    CKM_SHA256_RSA_PKCS,
    CKM_ECDSA,
    CKM_ECDSA_SHA384,
    CKM_ECDH1_DERIVE,
    CKM_AES_CBC,
    CKM_EC_KEY_PAIR_GEN,
];

/// Demo keys with public halves only (that is all the host side uses).
fn keys() -> &'static [KeyInfo] {
    use std::sync::OnceLock;
    static KEYS: OnceLock<Vec<KeyInfo>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let p = &crate::sim::state(crate::sim::Start::Demo).persistent;
        p.keys
            .iter()
            .filter_map(|(r, e)| {
                let slot = Slot::from_key_ref(u8::from_str_radix(r, 16).ok()?)?;
                let key = e.key()?;
                Some(KeyInfo {
                    alg: convert::key_alg(key.algorithm())?,
                    public: convert::public(&key.public()).ok()?,
                    auth: convert::auth(slot, PinPolicy::Default),
                    origin: None,
                })
            })
            .collect()
    })
}

pub fn run(data: &[u8]) {
    let mut inp = Input(data);
    let Some(n_attrs) = inp.byte() else { return };
    // ---- a template in real memory ----
    let mut values: Vec<Vec<u8>> = Vec::new();
    let mut shapes = Vec::new();
    for _ in 0..(n_attrs % 12) {
        let kind = CK_ATTRIBUTE_TYPE::from(inp.u32());
        let flags = inp.byte().unwrap_or(0);
        let len = usize::from(inp.byte().unwrap_or(0));
        values.push(inp.bytes(len).to_vec());
        shapes.push((kind, flags));
    }
    let mut attrs: Vec<CK_ATTRIBUTE> = values
        .iter_mut()
        .zip(&shapes)
        .map(|(v, (kind, flags))| CK_ATTRIBUTE {
            type_: *kind,
            // Bit 0: a NULL value with its length (the module must refuse it).
            pValue: if flags & 1 == 1 {
                std::ptr::null_mut()
            } else {
                v.as_mut_ptr() as *mut c_void
            },
            ulValueLen: v.len() as CK_ULONG,
        })
        .collect();
    // SAFETY: every pValue is NULL or points to ulValueLen bytes of `values`.
    let template = unsafe { Template::new(attrs.as_mut_ptr(), attrs.len() as CK_ULONG) };
    if let Ok(read) = template.read() {
        for key in keys() {
            let names = Names {
                id: &[1],
                label: b"PIV AUTH key",
            };
            for kind in [Kind::Certificate, Kind::PublicKey, Kind::PrivateKey] {
                let _ = matches(&read, |a| {
                    token_attribute(kind, &names, None, Some(key), true, a)
                });
            }
        }
    }
    // C_GetAttributeValue into the same buffers, whatever the answers.
    let mut fill = unsafe_template(&mut attrs);
    let answers = inp.bytes(attrs.len()).to_vec();
    let mut i = 0;
    let _ = fill.fill(|_| {
        let pick = answers.get(i).copied().unwrap_or(0);
        i += 1;
        match pick % 3 {
            0 => AttrAnswer::Value(vec![pick; usize::from(pick)]),
            1 => AttrAnswer::Sensitive,
            _ => AttrAnswer::Invalid,
        }
    });

    // ---- a mechanism with parameters in real memory ----
    let kind = MECHANISMS[usize::from(inp.byte().unwrap_or(0)) % MECHANISMS.len()];
    let shape = inp.byte().unwrap_or(0);
    let label = inp
        .bytes(usize::from(inp.0.first().copied().unwrap_or(0) % 64))
        .to_vec();
    let mut pss = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CK_MECHANISM_TYPE::from(inp.u32() % 0x300),
        mgf: CK_RSA_PKCS_MGF_TYPE::from(inp.u32() % 8),
        sLen: CK_ULONG::from(inp.u32() % 300),
    };
    let mut oaep = CK_RSA_PKCS_OAEP_PARAMS {
        hashAlg: CK_MECHANISM_TYPE::from(inp.u32() % 0x300),
        mgf: CK_RSA_PKCS_MGF_TYPE::from(inp.u32() % 8),
        source: if shape & 2 == 0 {
            CKZ_DATA_SPECIFIED
        } else {
            CK_ULONG::from(shape)
        },
        pSourceData: label.as_ptr() as *mut c_void,
        ulSourceDataLen: label.len() as CK_ULONG,
    };
    let mut public = inp
        .bytes(usize::from(inp.0.first().copied().unwrap_or(0)))
        .to_vec();
    let mut ecdh = CK_ECDH1_DERIVE_PARAMS {
        kdf: CK_ULONG::from(shape % 3),
        ulSharedDataLen: 0,
        pSharedData: std::ptr::null_mut(),
        ulPublicDataLen: public.len() as CK_ULONG,
        pPublicData: public.as_mut_ptr(),
    };
    let mut raw = inp.bytes(usize::from(shape % 40)).to_vec();
    // A parameter struct always comes with the mechanism it belongs to: the
    // pointers inside a struct are the caller's promise, so an OAEP struct
    // handed to ECDH (same size) is the caller's bug, not the module's.
    // Raw bytes never have the size of the struct the mechanism expects.
    let pss_len = std::mem::size_of_val(&pss);
    let oaep_len = std::mem::size_of_val(&oaep);
    let ecdh_len = std::mem::size_of_val(&ecdh);
    let expected = match kind {
        CKM_RSA_PKCS_PSS | CKM_SHA256_RSA_PKCS_PSS | CKM_SHA1_RSA_PKCS_PSS => Some(pss_len),
        CKM_RSA_PKCS_OAEP => Some(oaep_len),
        CKM_ECDH1_DERIVE => Some(ecdh_len),
        _ => None,
    };
    if expected == Some(raw.len()) {
        raw.push(0);
    }
    let (ptr, len): (*mut c_void, usize) = match (shape % 3, kind) {
        (0, _) => (std::ptr::null_mut(), 0),
        (1, CKM_RSA_PKCS_PSS | CKM_SHA256_RSA_PKCS_PSS | CKM_SHA1_RSA_PKCS_PSS) => {
            (&mut pss as *mut _ as *mut c_void, pss_len)
        }
        (1, CKM_RSA_PKCS_OAEP) => (&mut oaep as *mut _ as *mut c_void, oaep_len),
        (1, CKM_ECDH1_DERIVE) => (&mut ecdh as *mut _ as *mut c_void, ecdh_len),
        _ => (raw.as_mut_ptr() as *mut c_void, raw.len()),
    };
    let mech = CK_MECHANISM {
        mechanism: kind,
        pParameter: ptr,
        ulParameterLen: len as CK_ULONG,
    };
    // SAFETY: the parameter and every pointer inside it cover their lengths.
    let Ok(m) = (unsafe { InMechanism::new(&mech) }).read() else {
        return;
    };
    let message = inp.bytes(300).to_vec();
    let signature = inp.0.to_vec();
    for key in keys() {
        if let Ok(scheme) = mechanism::sign_scheme(&m, key.alg) {
            let input = match scheme.prehash() {
                Some(h) => h.digest(&message),
                None => message.clone(),
            };
            if let Ok(block) = mechanism::sign_block(&scheme, key, &input) {
                assert_eq!(block.len(), key.alg.size_bytes(), "{scheme:?}");
            }
            let _ = mechanism::verify(&scheme, &key.public, &input, &signature);
            let _ = mechanism::finish_signature(key, &signature);
        }
        if let Ok(scheme) = mechanism::decrypt_scheme(&m, key.alg) {
            let mut block = vec![0u8; key.alg.size_bytes()];
            for (b, s) in block.iter_mut().zip(&signature) {
                *b = *s;
            }
            let _ = mechanism::finish_decrypt(&scheme, &block);
        }
        if let PublicKey::Ec { .. } = key.public {
            assert!(matches!(key.alg, KeyAlg::EcP256 | KeyAlg::EcP384));
        }
    }
}

fn unsafe_template(attrs: &mut [CK_ATTRIBUTE]) -> Template {
    // SAFETY: as in `run`: every pValue is NULL or covers ulValueLen bytes,
    // which stay alive (in `values`) for the rest of `run`.
    unsafe { Template::new(attrs.as_mut_ptr(), attrs.len() as CK_ULONG) }
}
