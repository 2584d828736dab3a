//! The X.509 fields the PKCS#11 module extracts from a certificate on the
//! card (subject, issuer, serial, dates, public key), and every attribute
//! it then computes for the certificate, public-key and private-key
//! objects. Anything may be rejected; nothing may panic.

use apdu::piv::Slot;
use cryptoki_sys::*;
use ukey_pkcs11::keyinfo::{CertInfo, KeyInfo};
use ukey_pkcs11::object::{token_attribute, Kind, Names};
use ukey_pkcs11::token::convert;

/// Every attribute type the module knows, and a few it does not.
pub const ATTRIBUTES: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_VALUE,
    CKA_CERTIFICATE_TYPE,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_SUBJECT,
    CKA_ID,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_CHECK_VALUE,
    CKA_PUBLIC_KEY_INFO,
    CKA_KEY_TYPE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_SIGN,
    CKA_DECRYPT,
    CKA_DERIVE,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_KEY_GEN_MECHANISM,
    CKA_PRIVATE_EXPONENT,
    CKA_MODIFIABLE,
    CKA_DESTROYABLE,
    CKA_CERTIFICATE_CATEGORY,
    CKA_URL,
    0x7FFF_FFFF,
    CKA_VENDOR_DEFINED,
];

pub fn run(data: &[u8]) {
    let Ok(cert) = CertInfo::parse(data) else {
        return;
    };
    // What was parsed is consistent with itself.
    assert_eq!(cert.der, data);
    assert!(cert.not_before.month <= 12 && cert.not_after.month <= 12);
    for slot in [Slot::Authentication, Slot::Signature, Slot::Retired(20)] {
        let key: KeyInfo = convert::key_from_cert(slot, &cert);
        let id = [slot.cka_id()];
        for kind in [Kind::Certificate, Kind::PublicKey, Kind::PrivateKey] {
            let label = ukey_pkcs11::token::naming::default_label(slot, kind);
            let names = Names {
                id: &id,
                label: label.as_bytes(),
            };
            for &a in ATTRIBUTES {
                let _ = token_attribute(kind, &names, Some(&cert), Some(&key), true, a);
                let _ = token_attribute(kind, &names, Some(&cert), None, false, a);
            }
        }
    }
}
