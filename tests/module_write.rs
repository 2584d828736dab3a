//! The token side of a renewal through PKCS#11 alone: key generation,
//! requests signed by the new key, certificate writes, PIN/PUK/management
//! key changes, and pulling the card at every APDU of a write.

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use ukey_pkcs11::CKA_UKEY_OVERWRITE;
use ukey_tests::*;

const SUBJECT: &str = "CN=Renewed User,O=Example Pharma Ltd";
const DEFAULT_MGMT: &str = "010203040506070801020304050607080102030405060708";
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384_OID: [u8; 7] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

fn slot0(env: &ModuleEnv) -> Slot {
    env.p11.get_slots_with_token().unwrap()[0]
}

fn rw(env: &ModuleEnv, user: UserType, secret: &str) -> Session {
    let s = env.p11.open_rw_session(slot0(env)).unwrap();
    s.login(user, Some(&pin(secret))).unwrap();
    s
}

#[derive(Clone, Copy, Debug)]
enum Alg {
    P256,
    P384,
    Rsa2048,
}

fn generate(
    s: &Session,
    alg: Alg,
    id: Option<u8>,
    overwrite: bool,
) -> Result<(ObjectHandle, ObjectHandle), Error> {
    let mut public = vec![Attribute::Token(true), Attribute::Verify(true)];
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Sign(true),
        Attribute::Sensitive(true),
    ];
    if let Some(id) = id {
        public.push(Attribute::Id(vec![id]));
        private.push(Attribute::Id(vec![id]));
    }
    if overwrite {
        private.push(Attribute::VendorDefined((
            AttributeType::VendorDefined(CKA_UKEY_OVERWRITE),
            vec![1],
        )));
    }
    let mech = match alg {
        Alg::P256 => {
            public.push(Attribute::EcParams(P256_OID.to_vec()));
            Mechanism::EccKeyPairGen
        }
        Alg::P384 => {
            public.push(Attribute::EcParams(P384_OID.to_vec()));
            Mechanism::EccKeyPairGen
        }
        Alg::Rsa2048 => {
            public.push(Attribute::ModulusBits(2048.into()));
            public.push(Attribute::PublicExponent(vec![1, 0, 1]));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    s.generate_key_pair(&mech, &public, &private)
}

fn id_of(s: &Session, key: ObjectHandle) -> u8 {
    match s
        .get_attributes(key, &[AttributeType::Id])
        .unwrap()
        .remove(0)
    {
        Attribute::Id(v) => v[0],
        other => panic!("{other:?}"),
    }
}

/// A PKCS#10 request signed on the token by `key`.
fn csr(s: &Session, key: ObjectHandle, public: ObjectHandle, alg: Alg) -> Vec<u8> {
    use const_oid::db::rfc5912;
    build_csr(SUBJECT, &public_key_info(s, public), |info| match alg {
        Alg::Rsa2048 => (
            s.sign(&Mechanism::Sha256RsaPkcs, key, info).unwrap(),
            sig_alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION, true),
        ),
        Alg::P256 => (
            ecdsa_der(&s.sign(&Mechanism::EcdsaSha256, key, info).unwrap()),
            sig_alg(rfc5912::ECDSA_WITH_SHA_256, false),
        ),
        Alg::P384 => (
            ecdsa_der(&s.sign(&Mechanism::EcdsaSha384, key, info).unwrap()),
            sig_alg(rfc5912::ECDSA_WITH_SHA_384, false),
        ),
    })
}

fn write_cert(s: &Session, id: u8, der: &[u8]) -> Result<ObjectHandle, Error> {
    s.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Id(vec![id]),
        Attribute::Value(der.to_vec()),
    ])
}

fn read_cert(s: &Session, id: u8) -> Option<Vec<u8>> {
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![id]),
        ])
        .unwrap();
    found.first().map(|h| {
        match s
            .get_attributes(*h, &[AttributeType::Value])
            .unwrap()
            .remove(0)
        {
            Attribute::Value(v) => v,
            other => panic!("{other:?}"),
        }
    })
}

#[test]
fn generate_in_9a_and_retired_slots_with_requests_openssl_verifies() {
    let env = ModuleEnv::new(vec![Start::Fresh]);
    for alg in [Alg::P256, Alg::P384, Alg::Rsa2048] {
        for id in [Some(0x01u8), None] {
            let so = rw(&env, UserType::So, DEFAULT_MGMT);
            // 9A's key of the previous round is replaced only when asked.
            let (public, private) = generate(&so, alg, id, id.is_some()).unwrap();
            let slot_id = id_of(&so, private);
            if id.is_none() {
                assert!(
                    (0x05..=0x24).contains(&slot_id),
                    "a retired slot: {slot_id:02x}"
                );
            }
            so.logout().unwrap();
            drop(so);
            let user = rw(&env, UserType::User, "123456");
            let req = csr(&user, private, public, alg);
            assert!(
                openssl_verifies_csr(env.dir.path(), &req),
                "{alg:?} in {slot_id:02x}"
            );
            drop(user);
        }
    }
    let retired_keys = env
        .state(0)
        .keys
        .keys()
        .filter(|k| k.starts_with('8'))
        .count();
    assert_eq!(
        retired_keys, 3,
        "three keys went to three free retired slots"
    );
}

/// CKA_TOKEN defaults to false (a session object), which a card cannot
/// hold: a template without CKA_TOKEN = true is refused with
/// CKR_TEMPLATE_INCONSISTENT before anything reaches the card. It used to
/// fill a retired slot with a persistent key.
#[test]
fn keygen_without_cka_token_is_refused_and_uses_no_slot() {
    let env = ModuleEnv::new(vec![Start::Fresh]);
    let so = rw(&env, UserType::So, DEFAULT_MGMT);
    let before = env.state(0);
    let curve = Attribute::EcParams(P256_OID.to_vec());
    let cases: [(&str, Vec<Attribute>, Vec<Attribute>); 4] = [
        ("neither", vec![curve.clone()], vec![Attribute::Sign(true)]),
        (
            "public only",
            vec![Attribute::Token(true), curve.clone()],
            vec![Attribute::Sign(true)],
        ),
        (
            "private only",
            vec![curve.clone()],
            vec![Attribute::Token(true), Attribute::Sign(true)],
        ),
        (
            "private false",
            vec![Attribute::Token(true), curve.clone()],
            vec![Attribute::Token(false)],
        ),
    ];
    for (what, public, private) in cases {
        let e = so
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .unwrap_err();
        assert_eq!(rv(e), RvError::TemplateInconsistent, "{what}");
    }
    let after = env.state(0);
    assert_eq!(
        after.keys.keys().collect::<Vec<_>>(),
        before.keys.keys().collect::<Vec<_>>(),
        "no key was generated on the card"
    );
    assert_eq!(
        after.objects, before.objects,
        "not even the key history changed"
    );
    // The same template with CKA_TOKEN = true in both works.
    generate(&so, Alg::P256, None, false).unwrap();
    assert_eq!(env.state(0).keys.len(), before.keys.len() + 1);
}

#[test]
fn certificate_write_survives_a_restart_and_a_mismatch_is_refused() {
    let mut env = ModuleEnv::new(vec![Start::Fresh]);
    let so = rw(&env, UserType::So, DEFAULT_MGMT);
    let (public, _) = generate(&so, Alg::P256, Some(0x05), false).unwrap();
    let cert = issue_for(SUBJECT, &public_key_info(&so, public));
    let other = ukey_sim::keys::PrivateKey::generate(apdu::piv::Algorithm::EccP256).unwrap();
    let e = write_cert(&so, 0x05, &issue_for(SUBJECT, &other.spki_der())).unwrap_err();
    assert_eq!(
        rv(e),
        RvError::TemplateInconsistent,
        "certificate for another key"
    );
    write_cert(&so, 0x05, &cert).unwrap();
    drop(so);
    env.restart();
    let s = env.p11.open_ro_session(slot0(&env)).unwrap();
    assert_eq!(read_cert(&s, 0x05).unwrap(), cert);
    let kh =
        apdu::piv::KeyHistory::parse(&env.state(0).objects[&apdu::piv::ObjectId::KEY_HISTORY.0])
            .unwrap();
    assert!(
        kh.on_card_certs + kh.off_card_certs >= 1,
        "key history covers the retired slot"
    );
}

/// SP 800-73-4 numbers retired keys with on-card certificates first, and
/// OpenSC reads only the first `keysWithOnCardCerts` retired certificates:
/// a certificate written to retired 6 must raise that count to 6, or OpenSC
/// users never see the certificate nor its key.
#[test]
fn certificates_in_retired_slots_count_as_on_card_in_the_key_history() {
    let env = ModuleEnv::new(vec![Start::Fresh]);
    let so = rw(&env, UserType::So, DEFAULT_MGMT);
    let history = || {
        apdu::piv::KeyHistory::parse(&env.state(0).objects[&apdu::piv::ObjectId::KEY_HISTORY.0])
            .unwrap()
    };
    let (public, _) = generate(&so, Alg::P256, Some(0x10), false).unwrap();
    let kh = history();
    assert_eq!(
        (kh.on_card_certs, kh.off_card_certs),
        (0, 6),
        "a key alone in retired 6"
    );
    write_cert(
        &so,
        0x10,
        &issue_for(SUBJECT, &public_key_info(&so, public)),
    )
    .unwrap();
    let kh = history();
    assert_eq!(
        (kh.on_card_certs, kh.off_card_certs),
        (6, 0),
        "its certificate is on the card"
    );
    let (public, _) = generate(&so, Alg::P256, Some(0x05), false).unwrap();
    write_cert(
        &so,
        0x05,
        &issue_for(SUBJECT, &public_key_info(&so, public)),
    )
    .unwrap();
    let kh = history();
    assert_eq!((kh.on_card_certs, kh.off_card_certs), (6, 0), "unchanged");
    let (public, _) = generate(&so, Alg::P256, Some(0x24), false).unwrap();
    write_cert(
        &so,
        0x24,
        &issue_for(SUBJECT, &public_key_info(&so, public)),
    )
    .unwrap();
    let kh = history();
    assert_eq!((kh.on_card_certs, kh.off_card_certs), (20, 0), "retired 20");
}

#[test]
fn the_user_pin_alone_renews_on_a_token_with_a_protected_management_key() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = rw(&env, UserType::User, "123456");
    let (public, private) = generate(&s, Alg::P256, None, false).unwrap();
    let id = id_of(&s, private);
    let req = csr(&s, private, public, Alg::P256);
    assert!(openssl_verifies_csr(env.dir.path(), &req));
    let cert = issue_for(SUBJECT, &public_key_info(&s, public));
    write_cert(&s, id, &cert).unwrap();
    assert_eq!(read_cert(&s, id).unwrap(), cert);
    let sig = s
        .sign(
            &Mechanism::EcdsaSha256,
            private,
            b"signed with the renewed key",
        )
        .unwrap();
    assert_eq!(sig.len(), 64);
    assert_eq!(env.tries(0), (3, 3));
}

/// The demo card on a card without GET METADATA (the `yk4` profile's
/// answers: `6D00`) whose PIN-protected management key is AES-192, set
/// directly in its state (no real YubiKey 4 takes AES: it stands for any
/// card that keeps a 24-byte AES key and cannot say which algorithm it is).
fn aes_192_key_without_metadata() -> ukey_sim::state::Persistent {
    use apdu::piv::{Algorithm, ManagementKey};
    aes_192_key_without_metadata_with(&ManagementKey::random(Algorithm::Aes192).unwrap())
}

fn aes_192_key_without_metadata_with(
    key: &apdu::piv::ManagementKey,
) -> ukey_sim::state::Persistent {
    use apdu::piv::{Algorithm, ObjectId, ProtectedManagementKey, TouchPolicy};
    let mut p = demo_on(ukey_sim::profile::Profile::Yk4);
    assert_eq!(
        p.profile.spec().metadata,
        ukey_sim::profile::MetadataMode::Absent
    );
    p.management_key = ukey_sim::state::MgmtKey {
        algorithm: Algorithm::Aes192.code(),
        key: ukey_sim::state::SecretBytes::new(key.as_bytes()),
        touch: TouchPolicy::Never.code(),
        is_default: false,
    };
    p.objects.insert(
        ObjectId::PRINTED_INFORMATION.0,
        ProtectedManagementKey::encode(key.as_bytes()).to_vec(),
    );
    assert!(ukey_sim::applet::management_key_protected(&p));
    p
}

/// A 24-byte management key is 3DES or AES-192; a card without GET
/// METADATA cannot say which, so the module tries both (as the CLI does,
/// through `ukey_token::mgmt`): the user's PIN alone authorises a key
/// generation and a certificate write there too.
#[test]
fn a_pin_protected_aes_192_key_works_on_a_card_without_metadata() {
    let env = ModuleEnv::new(vec![Start::State(aes_192_key_without_metadata())]);
    let keys_before = env.state(0).keys.len();
    let s = rw(&env, UserType::User, "123456");
    let (public, private) = generate(&s, Alg::P256, None, false)
        .expect("the AES-192 management key authorises the key generation");
    assert_eq!(env.state(0).keys.len(), keys_before + 1);
    let id = id_of(&s, private);
    let cert = issue_for(SUBJECT, &public_key_info(&s, public));
    write_cert(&s, id, &cert).unwrap();
    assert_eq!(read_cert(&s, id).unwrap(), cert);
    assert_eq!(env.tries(0), (3, 3), "no PIN try spent");
    assert_eq!(
        env.state(0).management_key.algorithm,
        apdu::piv::Algorithm::Aes192.code(),
        "the management key is left as it was"
    );
}

/// The same card, the SO logging in with that AES-192 key in hex
/// (`pkcs11-tool --login-type so --so-pin HEX`): both algorithms a 24-byte
/// key can have are tried; a wrong key of that length is CKR_PIN_INCORRECT.
#[test]
fn the_so_logs_in_with_an_aes_192_key_on_a_card_without_metadata() {
    use apdu::piv::{Algorithm, ManagementKey};
    let key = ManagementKey::random(Algorithm::Aes192).unwrap();
    let env = ModuleEnv::new(vec![Start::State(aes_192_key_without_metadata_with(&key))]);
    let keys_before = env.state(0).keys.len();
    let s = env.p11.open_rw_session(slot0(&env)).unwrap();
    let wrong = hex::encode([0x42u8; 24]);
    assert_eq!(
        rv(s.login(UserType::So, Some(&pin(&wrong))).unwrap_err()),
        RvError::PinIncorrect
    );
    s.login(UserType::So, Some(&pin(&hex::encode(key.as_bytes()))))
        .expect("the AES-192 key logs the SO in");
    generate(&s, Alg::P256, None, false).expect("the SO generates a key");
    assert_eq!(env.state(0).keys.len(), keys_before + 1);
    assert_eq!(env.tries(0), (3, 3), "no PIN try spent");
}

#[test]
fn keygen_never_replaces_a_key_in_use_by_accident() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = rw(&env, UserType::User, "123456");
    let before = env.state(0).keys["9a"].private_key.clone();
    let e = generate(&s, Alg::P256, Some(0x01), false).unwrap_err();
    assert_eq!(rv(e), RvError::ActionProhibited);
    assert_eq!(
        env.state(0).keys["9a"].private_key,
        before,
        "the key in use is untouched"
    );
    // Explicitly allowed:
    generate(&s, Alg::P256, Some(0x01), true).unwrap();
    assert_ne!(env.state(0).keys["9a"].private_key, before);
    // A key without its certificate is still a key: refused as well.
    let cert = s
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![0x03]),
        ])
        .unwrap()[0];
    mean_to_destroy(&s, cert);
    s.destroy_object(cert).unwrap();
    assert!(read_cert(&s, 0x03).is_none());
    let before = env.state(0).keys["9d"].private_key.clone();
    let e = generate(&s, Alg::Rsa2048, Some(0x03), false).unwrap_err();
    assert_eq!(rv(e), RvError::ActionProhibited);
    assert_eq!(env.state(0).keys["9d"].private_key, before);
    generate(&s, Alg::Rsa2048, Some(0x03), true).unwrap();
    assert_ne!(env.state(0).keys["9d"].private_key, before);
}

#[test]
fn destroy_a_private_key() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = rw(&env, UserType::User, "123456");
    let (_, private) = generate(&s, Alg::P256, Some(0x06), false).unwrap();
    s.destroy_object(private).unwrap();
    assert!(!env.state(0).keys.contains_key("83"));
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![0x06]),
        ])
        .unwrap();
    assert!(found.is_empty());
}

#[test]
fn writes_need_a_read_write_session_and_a_login() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let ro = env.p11.open_ro_session(slot0(&env)).unwrap();
    ro.login(UserType::User, Some(&pin("123456"))).unwrap();
    assert_eq!(
        rv(generate(&ro, Alg::P256, None, false).unwrap_err()),
        RvError::SessionReadOnly
    );
    ro.logout().unwrap();
    let rw_public = env.p11.open_rw_session(slot0(&env)).unwrap();
    assert_eq!(
        rv(generate(&rw_public, Alg::P256, None, false).unwrap_err()),
        RvError::UserNotLoggedIn
    );
}

#[test]
fn the_puk_unblocks_a_blocked_pin_through_init_pin() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    {
        let s = env.p11.open_rw_session(slot0(&env)).unwrap();
        for _ in 0..3 {
            let _ = s.login(UserType::User, Some(&pin("000000")));
        }
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin("123456"))).unwrap_err()),
            RvError::PinLocked
        );
        assert_eq!(
            rv(s.login(UserType::So, Some(&pin("87654321"))).unwrap_err()),
            RvError::PinIncorrect
        );
        assert!(env
            .p11
            .get_token_info(slot0(&env))
            .unwrap()
            .so_pin_count_low());
        s.login(UserType::So, Some(&pin("12345678"))).unwrap();
        s.init_pin(&pin("24680135")).unwrap();
        s.logout().unwrap();
        s.login(UserType::User, Some(&pin("24680135"))).unwrap();
    }
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn change_the_pin_and_the_puk() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = env.p11.open_rw_session(slot0(&env)).unwrap();
    assert_eq!(
        rv(s.set_pin(&pin("000000"), &pin("111111")).unwrap_err()),
        RvError::PinIncorrect
    );
    s.set_pin(&pin("123456"), &pin("111111")).unwrap();
    assert_eq!(
        rv(s.set_pin(&pin("111111"), &pin("123")).unwrap_err()),
        RvError::PinLenRange
    );
    s.login(UserType::User, Some(&pin("111111"))).unwrap();
    s.logout().unwrap();
    s.login(UserType::So, Some(&pin("12345678"))).unwrap();
    s.set_pin(&pin("12345678"), &pin("87654321")).unwrap();
    s.logout().unwrap();
    assert_eq!(
        rv(s.login(UserType::So, Some(&pin("12345678"))).unwrap_err()),
        RvError::PinIncorrect
    );
    s.login(UserType::So, Some(&pin("87654321"))).unwrap();
}

#[test]
fn change_the_management_key() {
    let env = ModuleEnv::new(vec![Start::Fresh]);
    let new_key = "0F0E0D0C0B0A09080706050403020100F0E0D0C0B0A09080";
    let s = env.p11.open_rw_session(slot0(&env)).unwrap();
    s.login(UserType::So, Some(&pin(DEFAULT_MGMT))).unwrap();
    assert_eq!(
        rv(s.set_pin(&pin(new_key), &pin(new_key)).unwrap_err()),
        RvError::PinIncorrect
    );
    s.set_pin(&pin(DEFAULT_MGMT), &pin(new_key)).unwrap();
    s.logout().unwrap();
    assert_eq!(
        rv(s.login(UserType::So, Some(&pin(DEFAULT_MGMT))).unwrap_err()),
        RvError::PinIncorrect
    );
    s.login(UserType::So, Some(&pin(new_key))).unwrap();
    assert!(generate(&s, Alg::P256, Some(0x07), false).is_ok());
    assert!(!env.state(0).management_key.is_default);
}

#[test]
fn pulling_the_card_at_every_apdu_of_a_certificate_write() {
    for lose_response in [false, true] {
        let env = ModuleEnv::new(vec![Start::Demo]);
        let (old, new) = {
            let s = rw(&env, UserType::User, "123456");
            let (public, _) = generate(&s, Alg::P256, Some(0x05), false).unwrap();
            let old = issue_for(SUBJECT, &public_key_info(&s, public));
            write_cert(&s, 0x05, &old).unwrap();
            (old, issue_for(SUBJECT, &public_key_info(&s, public)))
        };
        let apdus = env.tear_every_apdu(
            lose_response,
            || rw(&env, UserType::User, "123456"),
            |s| write_cert(s, 0x05, &new).map(drop),
            |done| {
                let s = rw(&env, UserType::User, "123456");
                let now = read_cert(&s, 0x05).expect("a certificate is always there");
                assert!(now == old || now == new, "never a broken certificate");
                if done {
                    assert_eq!(now, new);
                }
                let key = s
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Id(vec![5]),
                    ])
                    .unwrap()[0];
                s.sign(&Mechanism::EcdsaSha256, key, b"still usable")
                    .unwrap();
            },
        );
        assert!(apdus >= 3, "the write took {apdus} APDUs");
    }
}

#[test]
fn pulling_the_card_at_every_apdu_of_a_key_generation() {
    for lose_response in [false, true] {
        let env = ModuleEnv::new(vec![Start::Demo]);
        let apdus = env.tear_every_apdu(
            lose_response,
            || rw(&env, UserType::User, "123456"),
            // A retry after a lost answer finds the key the card made: it is
            // replaced on purpose here (never silently).
            |s| generate(s, Alg::P256, Some(0x06), true).map(drop),
            |done| {
                let s = rw(&env, UserType::User, "123456");
                let keys = s
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Id(vec![6]),
                    ])
                    .unwrap();
                if done {
                    assert_eq!(keys.len(), 1);
                }
                // Old (no key) or new (a working key), never half a key.
                for k in keys {
                    s.sign(&Mechanism::EcdsaSha256, k, b"new key works")
                        .unwrap();
                }
                // And the key in use was never touched.
                let k1 = s
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Id(vec![1]),
                    ])
                    .unwrap()[0];
                s.sign(&Mechanism::Sha256RsaPkcs, k1, b"old key works")
                    .unwrap();
            },
        );
        assert!(apdus >= 3, "key generation took {apdus} APDUs");
    }
}
