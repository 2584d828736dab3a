//! The built `libukey_pkcs11.so`, loaded through the `cryptoki` crate as an
//! application loads it, against in-process simulated tokens. Signatures
//! and decryptions are checked with RustCrypto, not with our own code.

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use rsa::traits::PublicKeyParts;
use sha2::Digest;
use ukey_tests::{pin, rv, ModuleEnv, Start};

fn slot(env: &ModuleEnv, i: usize) -> Slot {
    env.p11.get_slots_with_token().unwrap()[i]
}

fn user_session(env: &ModuleEnv, i: usize) -> Session {
    let s = env.p11.open_ro_session(slot(env, i)).unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    s
}

fn private_key(s: &Session, id: u8) -> ObjectHandle {
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![id]),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "private key {id:02x}");
    found[0]
}

fn rsa_public(s: &Session, key: ObjectHandle) -> rsa::RsaPublicKey {
    let attrs = s
        .get_attributes(
            key,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )
        .unwrap();
    let (mut n, mut e) = (None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n.unwrap()),
        rsa::BigUint::from_bytes_be(&e.unwrap()),
    )
    .unwrap()
}

/// The uncompressed point, from the public key object's CKA_EC_POINT (DER OCTET STRING).
fn ec_point(s: &Session, id: u8) -> Vec<u8> {
    let pubkey = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(vec![id]),
        ])
        .unwrap()[0];
    let Attribute::EcPoint(der) = s
        .get_attributes(pubkey, &[AttributeType::EcPoint])
        .unwrap()
        .remove(0)
    else {
        panic!()
    };
    assert_eq!(der[0], 0x04, "DER OCTET STRING");
    der[2..].to_vec()
}

#[test]
fn slots_and_token_info() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let slots = env.p11.get_slots_with_token().unwrap();
    assert_eq!(slots.len(), 1);
    let si = env.p11.get_slot_info(slots[0]).unwrap();
    assert!(si.removable_device() && si.hardware_slot() && si.token_present());
    let ti = env.p11.get_token_info(slots[0]).unwrap();
    assert_eq!(ti.serial_number(), "20000000");
    assert_eq!(ti.label(), "UKey PIV #20000000");
    assert_eq!(ti.model(), "YubiKey YK5");
    assert_eq!(ti.firmware_version().major(), 5);
    assert_eq!(ti.firmware_version().minor(), 7);
    assert!(ti.login_required() && ti.user_pin_initialized() && ti.token_initialized());
    assert!(!ti.user_pin_count_low() && !ti.user_pin_locked());
    assert_eq!((ti.min_pin_length(), ti.max_pin_length()), (6, 8));
}

#[test]
fn mechanisms_are_listed_with_sizes() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let slot = slot(&env, 0);
    let list = env.p11.get_mechanism_list(slot).unwrap();
    for m in [
        MechanismType::ECDSA,
        MechanismType::ECDSA_SHA256,
        MechanismType::RSA_PKCS,
        MechanismType::RSA_PKCS_PSS,
        MechanismType::SHA256_RSA_PKCS,
        MechanismType::RSA_PKCS_OAEP,
        MechanismType::RSA_X_509,
        MechanismType::ECDH1_DERIVE,
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::ECC_KEY_PAIR_GEN,
    ] {
        assert!(list.contains(&m), "{m} missing");
    }
    let info = env
        .p11
        .get_mechanism_info(slot, MechanismType::RSA_PKCS)
        .unwrap();
    assert_eq!((info.min_key_size(), info.max_key_size()), (1024, 4096));
    assert!(info.hardware() && info.sign() && info.decrypt());
    let info = env
        .p11
        .get_mechanism_info(slot, MechanismType::ECDSA)
        .unwrap();
    assert_eq!((info.min_key_size(), info.max_key_size()), (256, 384));
    assert!(info.sign() && !info.decrypt());
    let e = env
        .p11
        .get_mechanism_info(slot, MechanismType::AES_CBC)
        .unwrap_err();
    assert_eq!(rv(e), RvError::MechanismInvalid);
}

#[test]
fn objects_before_and_after_login() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = env.p11.open_ro_session(slot(&env, 0)).unwrap();
    let certs = s
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .unwrap();
    assert_eq!(certs.len(), 4);
    let pubs = s
        .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY)])
        .unwrap();
    assert_eq!(pubs.len(), 4);
    // Only the card authentication key (PIN policy never) is public.
    let privs = s
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap();
    assert_eq!(privs.len(), 1);
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    let privs = s
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap();
    assert_eq!(privs.len(), 4);
    assert_eq!(s.find_objects(&[]).unwrap().len(), 12);
    assert_eq!(env.tries(0), (3, 3), "listing spent no try");
}

#[test]
fn certificate_attributes() {
    use der::{Decode, Encode};
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = env.p11.open_ro_session(slot(&env, 0)).unwrap();
    let cert = s
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![1]),
        ])
        .unwrap()[0];
    let attrs = s
        .get_attributes(
            cert,
            &[
                AttributeType::Value,
                AttributeType::Subject,
                AttributeType::Issuer,
                AttributeType::SerialNumber,
                AttributeType::Label,
                AttributeType::EndDate,
            ],
        )
        .unwrap();
    let mut value = Vec::new();
    for a in &attrs {
        if let Attribute::Value(v) = a {
            value = v.clone();
        }
    }
    let parsed = x509_cert::Certificate::from_der(&value).unwrap();
    for a in attrs {
        match a {
            Attribute::Subject(v) => {
                assert_eq!(v, parsed.tbs_certificate.subject.to_der().unwrap())
            }
            Attribute::Issuer(v) => assert_eq!(v, parsed.tbs_certificate.issuer.to_der().unwrap()),
            Attribute::SerialNumber(v) => {
                assert_eq!(v, parsed.tbs_certificate.serial_number.to_der().unwrap())
            }
            Attribute::Label(v) => assert_eq!(v, b"Certificate for PIV Authentication"),
            Attribute::EndDate(d) => {
                let dt = parsed.tbs_certificate.validity.not_after.to_date_time();
                let expect = cryptoki::types::Date::new_from_str_slice(
                    &format!("{:04}", dt.year()),
                    &format!("{:02}", dt.month()),
                    &format!("{:02}", dt.day()),
                )
                .unwrap();
                assert_eq!(d, expect);
            }
            _ => {}
        }
    }
}

#[test]
fn private_key_attributes_and_sensitivity() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let k = private_key(&s, 2);
    let attrs = s
        .get_attributes(
            k,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::AlwaysAuthenticate,
                AttributeType::Sign,
                AttributeType::Derive,
                AttributeType::KeyType,
                AttributeType::EcParams,
            ],
        )
        .unwrap();
    for a in attrs {
        match a {
            Attribute::Sensitive(v)
            | Attribute::AlwaysSensitive(v)
            | Attribute::NeverExtractable(v) => assert!(v),
            Attribute::Extractable(v) => assert!(!v),
            Attribute::AlwaysAuthenticate(v) => assert!(v, "9C is PIN-always"),
            Attribute::Sign(v) | Attribute::Derive(v) => assert!(v),
            Attribute::KeyType(t) => assert_eq!(t, KeyType::EC),
            Attribute::EcParams(p) => assert_eq!(p, hex_literal_p256()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let a = private_key(&s, 1);
    let e = s
        .get_attributes(a, &[AttributeType::PrivateExponent])
        .unwrap();
    assert!(e.is_empty(), "sensitive attributes are not returned");
}

fn hex_literal_p256() -> Vec<u8> {
    vec![0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
}

#[test]
fn every_rsa_signature_mechanism_verifies_with_rustcrypto() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 1);
    let public = rsa_public(&s, key);
    let msg = b"purchase order 2026-11-24";
    type Verify = fn(&rsa::RsaPublicKey, &[u8], &[u8]) -> bool;
    let cases: Vec<(Mechanism, Verify)> = vec![
        (Mechanism::Sha1RsaPkcs, |k, m, s| {
            k.verify(
                rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(m),
                s,
            )
            .is_ok()
        }),
        (Mechanism::Sha224RsaPkcs, |k, m, s| {
            k.verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
                &sha2::Sha224::digest(m),
                s,
            )
            .is_ok()
        }),
        (Mechanism::Sha256RsaPkcs, |k, m, s| {
            k.verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(m),
                s,
            )
            .is_ok()
        }),
        (Mechanism::Sha384RsaPkcs, |k, m, s| {
            k.verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                &sha2::Sha384::digest(m),
                s,
            )
            .is_ok()
        }),
        (Mechanism::Sha512RsaPkcs, |k, m, s| {
            k.verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                &sha2::Sha512::digest(m),
                s,
            )
            .is_ok()
        }),
        (
            Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA256,
                mgf: PkcsMgfType::MGF1_SHA256,
                s_len: 32.into(),
            }),
            |k, m, s| {
                k.verify(
                    rsa::Pss::new_with_salt::<sha2::Sha256>(32),
                    &sha2::Sha256::digest(m),
                    s,
                )
                .is_ok()
            },
        ),
        (
            Mechanism::Sha384RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA384,
                mgf: PkcsMgfType::MGF1_SHA384,
                s_len: 48.into(),
            }),
            |k, m, s| {
                k.verify(
                    rsa::Pss::new_with_salt::<sha2::Sha384>(48),
                    &sha2::Sha384::digest(m),
                    s,
                )
                .is_ok()
            },
        ),
        (
            Mechanism::Sha512RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA512,
                mgf: PkcsMgfType::MGF1_SHA512,
                s_len: 0.into(),
            }),
            |k, m, s| {
                k.verify(
                    rsa::Pss::new_with_salt::<sha2::Sha512>(0),
                    &sha2::Sha512::digest(m),
                    s,
                )
                .is_ok()
            },
        ),
        (
            Mechanism::Sha1RsaPkcsPss(PkcsPssParams {
                hash_alg: MechanismType::SHA1,
                mgf: PkcsMgfType::MGF1_SHA1,
                s_len: 20.into(),
            }),
            |k, m, s| {
                k.verify(
                    rsa::Pss::new_with_salt::<sha1::Sha1>(20),
                    &sha1::Sha1::digest(m),
                    s,
                )
                .is_ok()
            },
        ),
    ];
    for (mech, check) in cases {
        let sig = s.sign(&mech, key, msg).unwrap();
        assert_eq!(sig.len(), 256);
        assert!(check(&public, msg, &sig), "{mech:?} does not verify");
        assert!(
            !check(&public, b"tampered", &sig),
            "{mech:?} verifies anything"
        );
    }
}

#[test]
fn raw_rsa_mechanisms_verify_with_rustcrypto() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 1);
    let public = rsa_public(&s, key);
    let digest = sha2::Sha256::digest(b"data");
    // CKM_RSA_PKCS over a DigestInfo the caller built.
    let mut di = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    di.extend_from_slice(&digest);
    let sig = s.sign(&Mechanism::RsaPkcs, key, &di).unwrap();
    public
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
        .unwrap();
    // CKM_RSA_PKCS_PSS over a caller's hash.
    let params = PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    let sig = s
        .sign(&Mechanism::RsaPkcsPss(params), key, &digest)
        .unwrap();
    public
        .verify(rsa::Pss::new_with_salt::<sha2::Sha256>(32), &digest, &sig)
        .unwrap();
    // CKM_RSA_X_509: the raw private operation; the public one undoes it.
    let block = vec![0x11u8; 100];
    let sig = s.sign(&Mechanism::RsaX509, key, &block).unwrap();
    let back = rsa::hazmat::rsa_encrypt(&public, &rsa::BigUint::from_bytes_be(&sig))
        .unwrap()
        .to_bytes_be();
    assert_eq!(back, block);
}

#[test]
fn multi_part_signing_equals_single_part_verification() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 1);
    let public = rsa_public(&s, key);
    s.sign_init(&Mechanism::Sha256RsaPkcs, key).unwrap();
    s.sign_update(b"purchase ").unwrap();
    s.sign_update(b"order").unwrap();
    let sig = s.sign_final().unwrap();
    public
        .verify(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(b"purchase order"),
            &sig,
        )
        .unwrap();
    // And C_Verify through the module agrees.
    s.verify(&Mechanism::Sha256RsaPkcs, key, b"purchase order", &sig)
        .unwrap();
    let e = s
        .verify(&Mechanism::Sha256RsaPkcs, key, b"purchase orders", &sig)
        .unwrap_err();
    assert_eq!(rv(e), RvError::SignatureInvalid);
}

fn check_ecdsa(point: &[u8], msg: &[u8], hash: MechanismType, sig: &[u8]) {
    use signature::hazmat::PrehashVerifier;
    let digest = match hash {
        MechanismType::SHA1 => sha1::Sha1::digest(msg).to_vec(),
        MechanismType::SHA224 => sha2::Sha224::digest(msg).to_vec(),
        MechanismType::SHA256 => sha2::Sha256::digest(msg).to_vec(),
        MechanismType::SHA384 => sha2::Sha384::digest(msg).to_vec(),
        _ => sha2::Sha512::digest(msg).to_vec(),
    };
    // FIPS 186-4 §6.4: a digest shorter than the field is the same integer
    // left-padded; RustCrypto only accepts at least half the field size.
    let field = (point.len() - 1) / 2;
    let digest = if digest.len() < field {
        let mut v = vec![0u8; field - digest.len()];
        v.extend_from_slice(&digest);
        v
    } else {
        digest
    };
    if point.len() == 65 {
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(sig).expect("r || s of 64 bytes");
        vk.verify_prehash(&digest, &sig).unwrap();
    } else {
        let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
        let sig = p384::ecdsa::Signature::from_slice(sig).expect("r || s of 96 bytes");
        vk.verify_prehash(&digest, &sig).unwrap();
    }
}

#[test]
fn every_ecdsa_mechanism_verifies_with_rustcrypto_p384() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 4);
    let point = ec_point(&s, 4);
    assert_eq!(point.len(), 97);
    let msg = b"ECDSA over P-384";
    for (mech, hash) in [
        (Mechanism::EcdsaSha1, MechanismType::SHA1),
        (Mechanism::EcdsaSha224, MechanismType::SHA224),
        (Mechanism::EcdsaSha256, MechanismType::SHA256),
        (Mechanism::EcdsaSha384, MechanismType::SHA384),
        (Mechanism::EcdsaSha512, MechanismType::SHA512),
    ] {
        let sig = s.sign(&mech, key, msg).unwrap();
        assert_eq!(sig.len(), 96, "{mech:?}: r || s");
        check_ecdsa(&point, msg, hash, &sig);
    }
    let digest = sha2::Sha384::digest(msg);
    let sig = s.sign(&Mechanism::Ecdsa, key, &digest).unwrap();
    check_ecdsa(&point, msg, MechanismType::SHA384, &sig);
}

#[test]
fn signature_key_needs_context_login_every_time() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 2);
    let point = ec_point(&s, 2);
    // The login's own PIN entry covers one use (see the next test).
    let sig = s.sign(&Mechanism::EcdsaSha256, key, b"x").unwrap();
    check_ecdsa(&point, b"x", MechanismType::SHA256, &sig);
    let e = s.sign(&Mechanism::EcdsaSha256, key, b"x").unwrap_err();
    assert_eq!(rv(e), RvError::UserNotLoggedIn, "no context login");
    for msg in [&b"first"[..], b"second"] {
        s.sign_init(&Mechanism::EcdsaSha256, key).unwrap();
        // Whatever the client asks in between costs no card traffic.
        let _ = s
            .get_attributes(
                key,
                &[AttributeType::Label, AttributeType::AlwaysAuthenticate],
            )
            .unwrap();
        s.login(UserType::ContextSpecific, Some(&pin("123456")))
            .unwrap();
        let _ = env.p11.get_token_info(slot(&env, 0)).unwrap();
        let _ = s.get_session_info().unwrap();
        // cryptoki's single-part sign() would call C_SignInit again: use
        // the multi-part calls, as a client that logs in in between must.
        s.sign_update(msg).unwrap();
        let sig = s.sign_final().unwrap();
        check_ecdsa(&point, msg, MechanismType::SHA256, &sig);
    }
    s.sign_init(&Mechanism::EcdsaSha256, key).unwrap();
    let e = s
        .login(UserType::ContextSpecific, Some(&pin("654321")))
        .unwrap_err();
    assert_eq!(rv(e), RvError::PinIncorrect);
    assert_eq!(env.tries(0).0, 2);
}

/// OpenSSH (ssh -I, ssh-add -s) logs in and signs at once, without
/// CKU_CONTEXT_SPECIFIC; OpenSC and ykcs11 let the card decide, and a PIV
/// card accepts one PIN-always operation right after the VERIFY. So the
/// PIN given to C_Login(CKU_USER) authorises the first private-key
/// operation after it, once; every further use needs a context login.
#[test]
fn pin_always_key_signs_once_right_after_login() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 2);
    let point = ec_point(&s, 2);
    let sig = s.sign(&Mechanism::EcdsaSha256, key, b"ssh").unwrap();
    check_ecdsa(&point, b"ssh", MechanismType::SHA256, &sig);
    let e = s.sign(&Mechanism::EcdsaSha256, key, b"ssh").unwrap_err();
    assert_eq!(rv(e), RvError::UserNotLoggedIn, "used up");

    // Any other private-key operation uses the login up as well.
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    let auth = private_key(&s, 1);
    s.sign(&Mechanism::Sha256RsaPkcs, auth, b"other").unwrap();
    let e = s.sign(&Mechanism::EcdsaSha256, key, b"ssh").unwrap_err();
    assert_eq!(rv(e), RvError::UserNotLoggedIn, "9A's signature used it");

    // A fresh login grants one use again; no PIN try is spent anywhere.
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    s.sign(&Mechanism::EcdsaSha256, key, b"again").unwrap();
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn rsa_decryption_pkcs1_oaep_and_raw() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 3);
    let public = rsa_public(&s, key);
    let secret = b"a 32-byte document key.........!";
    let mut rng = rand::rngs::OsRng;
    let ct = public
        .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, secret)
        .unwrap();
    assert_eq!(s.decrypt(&Mechanism::RsaPkcs, key, &ct).unwrap(), secret);
    let ct = public
        .encrypt(&mut rng, rsa::Oaep::new::<sha1::Sha1>(), secret)
        .unwrap();
    let oaep = PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    );
    assert_eq!(
        s.decrypt(&Mechanism::RsaPkcsOaep(oaep), key, &ct).unwrap(),
        secret
    );
    let ct = public
        .encrypt(
            &mut rng,
            rsa::Oaep::new_with_label::<sha2::Sha256, _>("renewal"),
            secret,
        )
        .unwrap();
    let oaep = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::data_specified(b"renewal"),
    );
    assert_eq!(
        s.decrypt(&Mechanism::RsaPkcsOaep(oaep), key, &ct).unwrap(),
        secret
    );
    let wrong = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::data_specified(b"other"),
    );
    let e = s
        .decrypt(&Mechanism::RsaPkcsOaep(wrong), key, &ct)
        .unwrap_err();
    assert_eq!(rv(e), RvError::EncryptedDataInvalid);
    let m = rsa::BigUint::from_bytes_be(&[0x42; 200]);
    let raw_ct = rsa::hazmat::rsa_encrypt(&public, &m).unwrap().to_bytes_be();
    let mut padded = vec![0u8; public.size() - raw_ct.len()];
    padded.extend(raw_ct);
    let plain = s.decrypt(&Mechanism::RsaX509, key, &padded).unwrap();
    assert_eq!(&plain[plain.len() - 200..], &[0x42; 200]);
}

#[test]
fn ecdh_derive_agrees_with_the_host() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 4);
    let card_point = ec_point(&s, 4);
    let eph = p384::SecretKey::random(&mut rand::rngs::OsRng);
    let eph_point = p384::EncodedPoint::from(eph.public_key());
    let params = Ecdh1DeriveParams::new(EcKdf::null(), eph_point.as_bytes());
    let derived = s
        .derive_key(
            &Mechanism::Ecdh1Derive(params),
            key,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Token(false),
            ],
        )
        .unwrap();
    let Attribute::Value(v) = s
        .get_attributes(derived, &[AttributeType::Value])
        .unwrap()
        .remove(0)
    else {
        panic!()
    };
    let host = p384::ecdh::diffie_hellman(
        eph.to_nonzero_scalar(),
        p384::PublicKey::from_sec1_bytes(&card_point)
            .unwrap()
            .as_affine(),
    );
    assert_eq!(v, host.raw_secret_bytes().to_vec());
}

/// A digest mechanism, its type, and the RustCrypto hash that must agree with it.
type DigestCase = (Mechanism<'static>, MechanismType, fn(&[u8]) -> Vec<u8>);

fn digest_cases() -> Vec<DigestCase> {
    vec![
        (Mechanism::Sha1, MechanismType::SHA1, |d| {
            sha1::Sha1::digest(d).to_vec()
        }),
        (Mechanism::Sha224, MechanismType::SHA224, |d| {
            sha2::Sha224::digest(d).to_vec()
        }),
        (Mechanism::Sha256, MechanismType::SHA256, |d| {
            sha2::Sha256::digest(d).to_vec()
        }),
        (Mechanism::Sha384, MechanismType::SHA384, |d| {
            sha2::Sha384::digest(d).to_vec()
        }),
        (Mechanism::Sha512, MechanismType::SHA512, |d| {
            sha2::Sha512::digest(d).to_vec()
        }),
    ]
}

/// C_Digest and C_DigestUpdate/C_DigestFinal for every digest mechanism
/// agree with RustCrypto, for empty, block-edge and long inputs cut into
/// uneven parts; C_GetMechanismInfo says CKF_DIGEST only (the raw list is
/// checked in misuse.rs: `cryptoki` drops CKM_SHA224 from lists). Digests
/// need no login.
#[test]
fn digests_agree_with_rustcrypto_one_shot_and_multi_part() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let slot = slot(&env, 0);
    let s = env.p11.open_ro_session(slot).unwrap();
    let inputs: Vec<Vec<u8>> = [0usize, 1, 55, 56, 63, 64, 65, 111, 112, 128, 1000, 100_003]
        .iter()
        .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
        .collect();
    for (mech, kind, host) in digest_cases() {
        let info = env.p11.get_mechanism_info(slot, kind).unwrap();
        assert!(info.digest(), "{kind}: CKF_DIGEST");
        assert!(
            !info.hardware() && !info.sign() && !info.encrypt(),
            "{kind}: {info:?}"
        );
        assert_eq!((info.min_key_size(), info.max_key_size()), (0, 0), "{kind}");
        for data in &inputs {
            assert_eq!(
                s.digest(&mech, data).unwrap(),
                host(data),
                "{kind} one-shot, {} bytes",
                data.len()
            );
            s.digest_init(&mech).unwrap();
            for part in data.chunks(37).chain(std::iter::once(&[][..])) {
                s.digest_update(part).unwrap();
            }
            assert_eq!(
                s.digest_final().unwrap(),
                host(data),
                "{kind} multi-part, {} bytes",
                data.len()
            );
        }
    }
    let sent = env.state(0);
    assert_eq!((sent.pin.tries_left, sent.puk.tries_left), (3, 3));
}

/// C_DigestKey digests the value of a secret key (an ECDH secret); the
/// card's keys never leave it (CKR_KEY_INDIGESTIBLE), a certificate is not
/// a key (CKR_KEY_HANDLE_INVALID), and either error ends the operation.
#[test]
fn digest_key_takes_secret_keys_only() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 4);
    let eph = p384::SecretKey::random(&mut rand::rngs::OsRng);
    let eph_point = p384::EncodedPoint::from(eph.public_key());
    let secret = s
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), eph_point.as_bytes())),
            key,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .unwrap();
    let Attribute::Value(value) = s
        .get_attributes(secret, &[AttributeType::Value])
        .unwrap()
        .remove(0)
    else {
        panic!()
    };
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_update(b"prefix").unwrap();
    s.digest_key(secret).unwrap();
    let expect = sha2::Sha256::digest([&b"prefix"[..], &value].concat()).to_vec();
    assert_eq!(s.digest_final().unwrap(), expect);

    let cert = s
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![1]),
        ])
        .unwrap()[0];
    for (object, expected) in [
        (key, RvError::KeyIndigestible),
        (cert, RvError::KeyHandleInvalid),
    ] {
        s.digest_init(&Mechanism::Sha256).unwrap();
        assert_eq!(rv(s.digest_key(object).unwrap_err()), expected);
        assert_eq!(
            rv(s.digest_final().unwrap_err()),
            RvError::OperationNotInitialized,
            "the error ended the operation"
        );
    }
}

#[test]
fn pin_flags_walk_count_low_final_try_locked() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let slot = slot(&env, 0);
    let s = env.p11.open_ro_session(slot).unwrap();
    let flags = |env: &ModuleEnv| {
        let t = env.p11.get_token_info(slot).unwrap();
        (
            t.user_pin_count_low(),
            t.user_pin_final_try(),
            t.user_pin_locked(),
        )
    };
    assert_eq!(flags(&env), (false, false, false));
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("000000"))).unwrap_err()),
        RvError::PinIncorrect
    );
    assert_eq!(flags(&env), (true, false, false));
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("000000"))).unwrap_err()),
        RvError::PinIncorrect
    );
    assert_eq!(flags(&env), (false, true, false));
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("000000"))).unwrap_err()),
        RvError::PinIncorrect
    );
    assert_eq!(flags(&env), (false, false, true));
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("123456"))).unwrap_err()),
        RvError::PinLocked
    );
    assert_eq!(env.tries(0), (0, 3));
}

#[test]
fn pin_length_and_wrong_pin_errors_are_exact() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = env.p11.open_ro_session(slot(&env, 0)).unwrap();
    // C_Login answers CKR_PIN_INCORRECT (CKR_PIN_LEN_RANGE is for the
    // functions that set a PIN), without a VERIFY.
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("12345"))).unwrap_err()),
        RvError::PinIncorrect
    );
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("123456789")))
            .unwrap_err()),
        RvError::PinIncorrect
    );
    assert_eq!(
        env.tries(0),
        (3, 3),
        "a PIN of the wrong length spends no try"
    );
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("654321"))).unwrap_err()),
        RvError::PinIncorrect
    );
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("123456"))).unwrap_err()),
        RvError::UserAlreadyLoggedIn
    );
    s.logout().unwrap();
    assert_eq!(rv(s.logout().unwrap_err()), RvError::UserNotLoggedIn);
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn login_is_shared_by_sessions_and_ends_with_the_last_one() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let a = env.p11.open_ro_session(slot(&env, 0)).unwrap();
    let b = env.p11.open_rw_session(slot(&env, 0)).unwrap();
    a.login(UserType::User, Some(&pin("123456"))).unwrap();
    assert_eq!(
        b.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RwUser
    );
    assert_eq!(private_key(&b, 1), private_key(&a, 1));
    drop(a);
    drop(b);
    let c = env.p11.open_ro_session(slot(&env, 0)).unwrap();
    assert_eq!(
        c.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoPublic
    );
}

#[test]
fn polling_and_listing_spend_no_try() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = env.p11.open_ro_session(slot(&env, 0)).unwrap();
    let _ = s.login(UserType::User, Some(&pin("000000")));
    for _ in 0..20 {
        let slots = env.p11.get_slots_with_token().unwrap();
        let _ = env.p11.get_token_info(slots[0]).unwrap();
        let _ = s.get_session_info().unwrap();
        let _ = s.find_objects(&[]).unwrap();
    }
    assert_eq!(env.tries(0), (2, 3));
    assert!(env
        .p11
        .get_token_info(slot(&env, 0))
        .unwrap()
        .user_pin_count_low());
}

#[test]
fn two_tokens_at_once() {
    let env = ModuleEnv::new(vec![Start::Demo, Start::Demo]);
    let slots = env.p11.get_slots_with_token().unwrap();
    assert_eq!(slots.len(), 2);
    let serials: Vec<String> = slots
        .iter()
        .map(|s| {
            env.p11
                .get_token_info(*s)
                .unwrap()
                .serial_number()
                .to_string()
        })
        .collect();
    assert_eq!(serials, ["20000000", "20000001"]);
    for i in 0..2 {
        let s = user_session(&env, i);
        let key = private_key(&s, 1);
        let public = rsa_public(&s, key);
        let sig = s.sign(&Mechanism::Sha256RsaPkcs, key, b"two").unwrap();
        public
            .verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(b"two"),
                &sig,
            )
            .unwrap();
    }
    // A wrong PIN on one token leaves the other alone.
    let s = env.p11.open_ro_session(slots[1]).unwrap();
    let _ = s.login(UserType::User, Some(&pin("000000")));
    assert_eq!((env.tries(0).0, env.tries(1).0), (3, 2));
}

#[test]
fn threads_and_sessions_sign_concurrently() {
    let env = ModuleEnv::new(vec![Start::Demo, Start::Demo]);
    let slots = env.p11.get_slots_with_token().unwrap();
    {
        let s = env.p11.open_ro_session(slots[0]).unwrap();
        s.login(UserType::User, Some(&pin("123456"))).unwrap();
        let s1 = env.p11.open_ro_session(slots[1]).unwrap();
        s1.login(UserType::User, Some(&pin("123456"))).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let p11 = env.p11.clone();
                let slot = slots[t % 2];
                scope.spawn(move || {
                    let s = p11.open_ro_session(slot).unwrap();
                    let rsa_key = private_key(&s, 1);
                    let ec_key = private_key(&s, 4);
                    for i in 0..25 {
                        let msg = format!("thread {t} message {i}");
                        s.sign(&Mechanism::Sha256RsaPkcs, rsa_key, msg.as_bytes())
                            .unwrap();
                        let sig = s
                            .sign(&Mechanism::EcdsaSha384, ec_key, msg.as_bytes())
                            .unwrap();
                        s.verify(&Mechanism::EcdsaSha384, ec_key, msg.as_bytes(), &sig)
                            .unwrap();
                        let _ = s
                            .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
                            .unwrap();
                    }
                });
            }
        });
    }
    assert_eq!((env.tries(0).0, env.tries(1).0), (3, 3));
}

#[test]
fn card_reset_by_another_application_restores_the_login() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 1);
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"before").unwrap();
    env.control(0, ukey_sim::Control::Reset);
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"after reset")
        .unwrap();
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoUser
    );
    assert_eq!(env.tries(0), (3, 3));
}

/// Another application logs the card out (VERIFY P1=FF, card-wide) while
/// we are logged in. The next signature with a PIN-once key used to fail
/// with CKR_USER_NOT_LOGGED_IN while C_GetSessionInfo still said "user";
/// now the PIN held in memory is verified again in the same transaction,
/// as after a reset: no failure, no try spent. A key generation (which
/// reads the PIN-protected management key) recovers the same way.
#[test]
fn another_applications_logout_is_recovered_with_the_pin_held() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = env.p11.open_rw_session(slot(&env, 0)).unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    let key = private_key(&s, 1);
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"before").unwrap();
    for round in 0..3 {
        env.control(0, ukey_sim::Control::Logout);
        s.sign(&Mechanism::Sha256RsaPkcs, key, b"after a logout elsewhere")
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(
            s.get_session_info().unwrap().session_state(),
            cryptoki::session::SessionState::RwUser
        );
    }
    env.control(0, ukey_sim::Control::Logout);
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::EcParams(vec![
                0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07,
            ]),
        ],
        &[Attribute::Token(true), Attribute::Id(vec![5])],
    )
    .unwrap();
    assert_eq!(env.tries(0), (3, 3));
}

/// With UKEY_RESTORE_LOGIN=0 the module does not log in again by itself:
/// after another application's logout the signature fails with
/// CKR_USER_NOT_LOGGED_IN, C_GetSessionInfo says so too, and C_Login works
/// again (it used to answer CKR_USER_ALREADY_LOGGED_IN: only C_Logout and
/// C_Login helped).
#[test]
fn without_restoring_logins_another_applications_logout_ends_ours_truthfully() {
    std::env::set_var("UKEY_RESTORE_LOGIN", "0");
    let env = ModuleEnv::new(vec![Start::Demo]);
    std::env::remove_var("UKEY_RESTORE_LOGIN");
    let s = user_session(&env, 0);
    let key = private_key(&s, 1);
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"before").unwrap();
    env.control(0, ukey_sim::Control::Logout);
    let e = s.sign(&Mechanism::Sha256RsaPkcs, key, b"x").unwrap_err();
    assert_eq!(rv(e), RvError::UserNotLoggedIn);
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoPublic
    );
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"logged in again")
        .unwrap();
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn removal_gives_device_removed_and_reinsertion_a_new_token() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let slot = slot(&env, 0);
    let s = user_session(&env, 0);
    let key = private_key(&s, 1);
    env.control(0, ukey_sim::Control::Remove);
    let e = s.sign(&Mechanism::Sha256RsaPkcs, key, b"x").unwrap_err();
    assert_eq!(rv(e), RvError::DeviceRemoved);
    assert!(env.p11.get_slots_with_token().unwrap().is_empty());
    assert_eq!(env.p11.get_all_slots().unwrap(), [slot]);
    assert_eq!(
        rv(env.p11.get_token_info(slot).unwrap_err()),
        RvError::TokenNotPresent
    );
    assert_eq!(
        rv(s.get_session_info().unwrap_err()),
        RvError::DeviceRemoved
    );
    env.control(0, ukey_sim::Control::Insert);
    assert_eq!(env.p11.get_slots_with_token().unwrap(), [slot]);
    let s2 = user_session(&env, 0);
    let key2 = private_key(&s2, 1);
    s2.sign(&Mechanism::Sha256RsaPkcs, key2, b"y").unwrap();
    // Old handles belong to the old insertion.
    assert_eq!(
        rv(s2.sign(&Mechanism::Sha256RsaPkcs, key, b"z").unwrap_err()),
        RvError::KeyHandleInvalid
    );
}

/// A forked child must not use its parent's library (sessions, logins,
/// PC/SC handles): there it is not initialized until the child initializes
/// it, and the parent carries on untouched.
#[test]
fn a_forked_child_sees_the_library_uninitialized() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    // SAFETY: the child only calls the module, then leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = match env.p11.get_slots_with_token() {
            Err(Error::Pkcs11(RvError::CryptokiNotInitialized, _)) => {
                let own = cryptoki::context::Pkcs11::new(ukey_tests::module()).expect("load");
                match own.initialize(cryptoki::context::CInitializeArgs::OsThreads) {
                    Ok(()) if own.get_slots_with_token().map_or(0, |v| v.len()) == 1 => 0,
                    _ => 2,
                }
            }
            _ => 1,
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: 1 = the inherited library answered, 2 = its own failed ({status:#x})"
    );
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        cryptoki::session::SessionState::RoUser
    );
}

#[test]
fn slot_events() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let slot = slot(&env, 0);
    assert_eq!(
        env.p11.get_slot_event().unwrap(),
        None,
        "start-up state is no event"
    );
    env.control(0, ukey_sim::Control::Remove);
    assert_eq!(env.p11.get_slot_event().unwrap(), Some(slot));
    assert_eq!(env.p11.get_slot_event().unwrap(), None);
    env.control(0, ukey_sim::Control::Insert);
    let p11 = env.p11.clone();
    let waiter = std::thread::spawn(move || p11.wait_for_slot_event());
    assert_eq!(waiter.join().unwrap().unwrap(), slot);
    assert!(env.p11.get_slot_info(slot).unwrap().token_present());
}

#[test]
fn random_from_the_card() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = env.p11.open_ro_session(slot(&env, 0)).unwrap();
    let a = s.generate_random_vec(300).unwrap();
    let b = s.generate_random_vec(300).unwrap();
    assert_eq!(a.len(), 300);
    assert_ne!(a, b);
    assert_eq!(
        rv(s.seed_random(b"seed").unwrap_err()),
        RvError::RandomSeedNotSupported
    );
    assert!(env.p11.get_token_info(slot(&env, 0)).unwrap().rng());
}

#[test]
fn a_different_card_after_a_reset_ends_the_old_sessions() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user_session(&env, 0);
    let key = private_key(&s, 1);
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"first card")
        .unwrap();
    // Another card appears in the reader: same memory layout, other serial.
    let mut other = env.state(0);
    other.serial += 1;
    other.save(&env.states[0]).unwrap();
    env.control(0, ukey_sim::Control::Reset);
    let e = s
        .sign(&Mechanism::Sha256RsaPkcs, key, b"second card")
        .unwrap_err();
    assert_eq!(rv(e), RvError::DeviceRemoved);
    assert_eq!(
        env.tries(0),
        (3, 3),
        "the old card's PIN was not tried on the new one"
    );
    // The reader now holds the other card, as a new token.
    let slot = slot(&env, 0);
    assert_eq!(
        env.p11.get_token_info(slot).unwrap().serial_number(),
        "20000001"
    );
    let s2 = user_session(&env, 0);
    let key2 = private_key(&s2, 1);
    s2.sign(&Mechanism::Sha256RsaPkcs, key2, b"second card")
        .unwrap();
}
