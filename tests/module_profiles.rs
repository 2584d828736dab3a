//! The built module on every card profile of the simulator (YubiKey 5.7,
//! 5.4, 4, a plain PIV card, a third-party applet imitating a YubiKey),
//! in-process through `cryptoki`: one test per case and profile. What a
//! card cannot do is asserted as the clear refusal it gets.

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use ukey_pkcs11::CKA_UKEY_OVERWRITE;
use ukey_sim::profile::Profile;
use ukey_tests::*;

const SUBJECT: &str = "CN=Profile User,O=Example Pharma Ltd";
const DEFAULT_MGMT: &str = "010203040506070801020304050607080102030405060708";
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// CKA_ID of retired slot 1 (82) and 2 (83).
const RETIRED_1: u8 = 0x05;
const RETIRED_2: u8 = 0x06;

fn env_on(profile: Profile) -> ModuleEnv {
    ModuleEnv::new(vec![Start::State(demo_on(profile))])
}

fn slot0(env: &ModuleEnv) -> cryptoki::slot::Slot {
    env.p11.get_slots_with_token().unwrap()[0]
}

fn user(env: &ModuleEnv) -> Session {
    let s = env.p11.open_rw_session(slot0(env)).unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    s
}

/// A session allowed to write: the user's PIN where the management key is
/// PIN-protected (the demo card where the card keeps ADMIN DATA), else the
/// SO with the (default) management key.
fn writer(env: &ModuleEnv, profile: Profile) -> Session {
    if profile.spec().vendor_objects {
        return user(env);
    }
    let s = env.p11.open_rw_session(slot0(env)).unwrap();
    s.login(UserType::So, Some(&pin(DEFAULT_MGMT))).unwrap();
    s
}

fn find(s: &Session, class: ObjectClass, id: Option<u8>) -> Vec<ObjectHandle> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(id) = id {
        t.push(Attribute::Id(vec![id]));
    }
    s.find_objects(&t).unwrap()
}

/// (CKA_ID, CKA_LABEL) of every object of `class`, sorted.
fn listing(s: &Session, class: ObjectClass) -> Vec<(u8, String)> {
    let mut v: Vec<_> = find(s, class, None)
        .into_iter()
        .map(|h| {
            let a = s
                .get_attributes(h, &[AttributeType::Id, AttributeType::Label])
                .unwrap();
            match &a[..] {
                [Attribute::Id(id), Attribute::Label(l)] => {
                    (id[0], String::from_utf8_lossy(l).into_owned())
                }
                other => panic!("{other:?}"),
            }
        })
        .collect();
    v.sort();
    v
}

fn value(s: &Session, h: ObjectHandle) -> Vec<u8> {
    match s
        .get_attributes(h, &[AttributeType::Value])
        .unwrap()
        .remove(0)
    {
        Attribute::Value(v) => v,
        other => panic!("{other:?}"),
    }
}

fn cert_of(s: &Session, id: u8) -> Vec<u8> {
    value(s, find(s, ObjectClass::CERTIFICATE, Some(id))[0])
}

fn generate_p256(s: &Session, id: u8, overwrite: bool) -> (ObjectHandle, ObjectHandle) {
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Sign(true),
        Attribute::Id(vec![id]),
    ];
    if overwrite {
        private.push(Attribute::VendorDefined((
            AttributeType::VendorDefined(CKA_UKEY_OVERWRITE),
            vec![1],
        )));
    }
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::Id(vec![id]),
            Attribute::EcParams(P256_OID.to_vec()),
        ],
        &private,
    )
    .unwrap()
}

fn write_cert(s: &Session, id: u8, der: &[u8]) -> Result<ObjectHandle, cryptoki::error::Error> {
    s.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Id(vec![id]),
        Attribute::Value(der.to_vec()),
    ])
}

/// A PKCS#10 request signed on the token by the P-256 key `id`.
fn p256_csr(s: &Session, id: u8) -> Vec<u8> {
    let public = find(s, ObjectClass::PUBLIC_KEY, Some(id))[0];
    let private = find(s, ObjectClass::PRIVATE_KEY, Some(id))[0];
    build_csr(SUBJECT, &public_key_info(s, public), |info| {
        (
            ecdsa_der(&s.sign(&Mechanism::EcdsaSha256, private, info).unwrap()),
            sig_alg(const_oid::db::rfc5912::ECDSA_WITH_SHA_256, false),
        )
    })
}

/// The card's identity as the module shows it: the serial where the card
/// answers GET SERIAL, else the CHUID's GUID.
fn identity(env: &ModuleEnv, profile: Profile) -> String {
    let p = env.state(0);
    if profile.spec().serial {
        p.serial.to_string()
    } else {
        let chuid = apdu::piv::Chuid::parse(&p.objects[&apdu::piv::ObjectId::CHUID.0]).unwrap();
        hex::encode_upper(chuid.guid)
    }
}

fn lists_the_certificates_and_keys(profile: Profile) {
    let env = env_on(profile);
    let s = env.p11.open_ro_session(slot0(&env)).unwrap();
    let certs = listing(&s, ObjectClass::CERTIFICATE);
    assert_eq!(
        certs,
        [
            (1, "Certificate for PIV Authentication".to_string()),
            (2, "Certificate for Digital Signature".into()),
            (3, "Certificate for Key Management".into()),
            (4, "Certificate for Card Authentication".into()),
        ]
    );
    let publics: Vec<u8> = listing(&s, ObjectClass::PUBLIC_KEY)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(publics, [1, 2, 3, 4]);
    // Before the login only the key that needs no PIN (9E).
    assert_eq!(
        listing(&s, ObjectClass::PRIVATE_KEY),
        [(4, "CARD AUTH key".to_string())]
    );
    drop(s);
    let s = user(&env);
    let privates: Vec<u8> = listing(&s, ObjectClass::PRIVATE_KEY)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(privates, [1, 2, 3, 4]);
    // Every public key is its certificate's.
    for id in 1..=4u8 {
        let public = find(&s, ObjectClass::PUBLIC_KEY, Some(id))[0];
        let cert = cert_of(&s, id);
        let parsed = <x509_cert::Certificate as der::Decode>::from_der(&cert).unwrap();
        let spki = der::Encode::to_der(&parsed.tbs_certificate.subject_public_key_info).unwrap();
        assert_eq!(public_key_info(&s, public), spki, "id {id}");
    }
    // The login was the only VERIFY with a PIN: no try spent.
    assert_eq!(env.tries(0), (3, 3));
}

fn token_info_and_random_follow_the_cards_answers(profile: Profile) {
    let env = env_on(profile);
    let info = env.p11.get_token_info(slot0(&env)).unwrap();
    let spec = profile.spec();
    // A CHUID's GUID is longer than CK_TOKEN_INFO's 16 characters: its
    // first 8 bytes serve.
    let mut serial = identity(&env, profile);
    serial.truncate(16);
    assert_eq!(info.serial_number(), serial);
    assert_eq!(info.label(), format!("UKey PIV #{serial}"));
    assert_eq!(
        info.rng(),
        spec.challenge,
        "CKF_RNG only with GET CHALLENGE"
    );
    assert!(!info.user_pin_count_low());
    let s = env.p11.open_ro_session(slot0(&env)).unwrap();
    let random = s.generate_random_vec(16);
    if spec.challenge {
        assert_eq!(random.unwrap().len(), 16);
    } else {
        assert_eq!(rv(random.unwrap_err()), RvError::RandomNoRng);
    }
    // A wrong PIN costs one try, and every card shows the count (GET
    // METADATA, or the wrong VERIFY's own answer).
    assert_eq!(
        rv(s.login(UserType::User, Some(&pin("000000"))).unwrap_err()),
        RvError::PinIncorrect
    );
    assert!(env
        .p11
        .get_token_info(slot0(&env))
        .unwrap()
        .user_pin_count_low());
    assert_eq!(env.tries(0), (2, 3));
}

fn signs_and_openssl_verifies(profile: Profile) {
    let env = env_on(profile);
    let s = user(&env);
    let msg = b"tender document";
    let dir = env.dir.path();
    // 9C: P-256, PIN always: the first signature after the login.
    let sign_key = find(&s, ObjectClass::PRIVATE_KEY, Some(2))[0];
    let sig = s.sign(&Mechanism::EcdsaSha256, sign_key, msg).unwrap();
    assert!(openssl_verifies_signature(
        dir,
        &cert_of(&s, 2),
        "sha256",
        msg,
        &ecdsa_der(&sig)
    ));
    // 9A: RSA-2048, PIN once.
    let rsa = find(&s, ObjectClass::PRIVATE_KEY, Some(1))[0];
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, rsa, msg).unwrap();
    assert!(openssl_verifies_signature(
        dir,
        &cert_of(&s, 1),
        "sha256",
        msg,
        &sig
    ));
    // 9E: P-384, no PIN.
    let card_auth = find(&s, ObjectClass::PRIVATE_KEY, Some(4))[0];
    let sig = s.sign(&Mechanism::EcdsaSha384, card_auth, msg).unwrap();
    assert!(openssl_verifies_signature(
        dir,
        &cert_of(&s, 4),
        "sha384",
        msg,
        &ecdsa_der(&sig)
    ));
    assert_eq!(env.tries(0), (3, 3));
}

/// Where the module keeps the public key of a key the card cannot report.
#[derive(Debug, PartialEq, Eq)]
enum Kept {
    /// Not needed: the card reports its keys (GET METADATA).
    Reported,
    /// In the card's ukey object 5FFF0B.
    OnCard,
    /// In the host file for the card.
    OnHost,
}

fn kept(env: &ModuleEnv, profile: Profile) -> Option<Kept> {
    let on_card = env
        .state(0)
        .objects
        .contains_key(&apdu::piv::generated::GENERATED_KEYS_OBJECT.0);
    let on_host = env.host_record(&identity(env, profile)).exists();
    match (on_card, on_host) {
        (false, false) => None,
        (true, false) => Some(Kept::OnCard),
        (false, true) => Some(Kept::OnHost),
        (true, true) => panic!("recorded twice"),
    }
}

fn a_generated_key_stays_visible_until_its_certificate(profile: Profile) {
    let mut env = env_on(profile);
    let expected = match profile {
        Profile::Yk57 | Profile::Yk54 => Kept::Reported,
        Profile::Yk4 => Kept::OnCard,
        Profile::Generic | Profile::Compat => Kept::OnHost,
    };
    let w = writer(&env, profile);
    let (public, _) = generate_p256(&w, RETIRED_1, false);
    let spki = public_key_info(&w, public);
    drop(w);
    assert_eq!(
        kept(&env, profile),
        (expected != Kept::Reported).then_some(expected)
    );
    // A later process sees the key and signs a request with it.
    env.restart();
    let s = user(&env);
    let public = find(&s, ObjectClass::PUBLIC_KEY, Some(RETIRED_1));
    assert_eq!(public.len(), 1, "the new key is visible");
    assert_eq!(public_key_info(&s, public[0]), spki);
    let req = p256_csr(&s, RETIRED_1);
    assert!(openssl_verifies_csr(env.dir.path(), &req));
    drop(s);
    // Its certificate can be written, by this later process...
    let cert = issue_for(SUBJECT, &spki);
    let w = writer(&env, profile);
    write_cert(&w, RETIRED_1, &cert).unwrap();
    drop(w);
    // ...and from then on the certificate shows the key: the record is gone.
    assert_eq!(kept(&env, profile), None);
    env.restart();
    let s = env.p11.open_ro_session(slot0(&env)).unwrap();
    assert_eq!(cert_of(&s, RETIRED_1), cert);
    let public = find(&s, ObjectClass::PUBLIC_KEY, Some(RETIRED_1));
    assert_eq!(public_key_info(&s, public[0]), spki);
    drop(s);

    // A new key in a slot that still has the old key's certificate (9C):
    // later processes show the new key, not the certificate's.
    let w = writer(&env, profile);
    let (public, _) = generate_p256(&w, 0x02, true);
    let new_spki = public_key_info(&w, public);
    drop(w);
    env.restart();
    let s = user(&env);
    let public = find(&s, ObjectClass::PUBLIC_KEY, Some(0x02))[0];
    assert_eq!(public_key_info(&s, public), new_spki);
    // (The first private-key use after the login: 9C needs no context login.)
    let req = p256_csr(&s, 0x02);
    assert!(openssl_verifies_csr(env.dir.path(), &req));
    assert_eq!(env.tries(0), (3, 3));
}

fn moving_and_deleting_keys_where_the_card_can(profile: Profile) {
    let env = env_on(profile);
    let w = writer(&env, profile);
    let (_, private) = generate_p256(&w, RETIRED_1, false);
    // CKA_MODIFIABLE is true everywhere (names can be set: issue 12); the
    // vendor attribute CKA_UKEY_MOVABLE says whether the key can move.
    let movable = match w
        .get_attributes(
            private,
            &[AttributeType::VendorDefined(ukey_pkcs11::CKA_UKEY_MOVABLE)],
        )
        .unwrap()
        .remove(0)
    {
        Attribute::VendorDefined((_, v)) => v == [1],
        other => panic!("{other:?}"),
    };
    let can = profile.spec().move_key;
    assert_eq!(movable, can, "CKA_UKEY_MOVABLE says whether keys can move");
    let moved = w.update_attributes(private, &[Attribute::Id(vec![RETIRED_2])]);
    if can {
        moved.unwrap();
        assert!(env.state(0).keys.contains_key("83"));
        w.destroy_object(private).unwrap();
        assert!(!env.state(0).keys.contains_key("83"));
    } else {
        assert_eq!(rv(moved.unwrap_err()), RvError::ActionProhibited);
        assert_eq!(
            rv(w.destroy_object(private).unwrap_err()),
            RvError::ActionProhibited
        );
        assert!(
            env.state(0).keys.contains_key("82"),
            "the key is still there"
        );
    }
}

/// One test per case and profile.
macro_rules! on_every_profile {
    ($($name:ident => $profile:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            const PROFILE: Profile = $profile;

            #[test]
            fn lists_the_certificates_and_keys() {
                super::lists_the_certificates_and_keys(PROFILE)
            }

            #[test]
            fn token_info_and_random_follow_the_cards_answers() {
                super::token_info_and_random_follow_the_cards_answers(PROFILE)
            }

            #[test]
            fn signs_and_openssl_verifies() {
                super::signs_and_openssl_verifies(PROFILE)
            }

            #[test]
            fn a_generated_key_stays_visible_until_its_certificate() {
                super::a_generated_key_stays_visible_until_its_certificate(PROFILE)
            }

            #[test]
            fn moving_and_deleting_keys_where_the_card_can() {
                super::moving_and_deleting_keys_where_the_card_can(PROFILE)
            }
        }
    )*};
}

on_every_profile!(
    yk57 => Profile::Yk57,
    yk54 => Profile::Yk54,
    yk4 => Profile::Yk4,
    generic => Profile::Generic,
    compat => Profile::Compat,
);
