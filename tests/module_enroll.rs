//! What enrollment clients send, through `cryptoki` against the built
//! module: OpenSSL 3's pkcs11-provider templates (a random 16-byte CKA_ID
//! and a CKA_LABEL; the provider is not packaged for Debian 12), names kept
//! on the card and found again in another process, certificates placed by
//! the key they certify, key generation that never replaces a key, the
//! destroy policy, and the error for a management key a PIN cannot unlock.

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use std::process::Command;
use ukey_pkcs11::CKA_UKEY_OVERWRITE;
use ukey_tests::*;

const P256_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const DEFAULT_MGMT: &str = "010203040506070801020304050607080102030405060708";

fn rw_user(env: &ModuleEnv) -> Session {
    let slot = env.p11.get_slots_with_token().unwrap()[0];
    let s = env.p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    s
}

/// What pkcs11-provider sends for `openssl genpkey` with a `pkcs11:` URI
/// naming `object=` and no `id=`.
fn provider_keygen(
    s: &Session,
    id: &[u8],
    label: &str,
) -> cryptoki::error::Result<(ObjectHandle, ObjectHandle)> {
    let common = vec![
        Attribute::Token(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let mut public = common.clone();
    public.extend([
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(cryptoki::object::KeyType::EC),
        Attribute::EcParams(P256_OID.to_vec()),
        Attribute::Verify(true),
        Attribute::Private(false),
    ]);
    let mut private = common;
    private.extend([
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(cryptoki::object::KeyType::EC),
        Attribute::Sign(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ]);
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
}

fn find(s: &Session, template: &[Attribute]) -> Vec<ObjectHandle> {
    s.find_objects(template).unwrap()
}

fn bytes(s: &Session, h: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match s.get_attributes(h, &[t]).unwrap().remove(0) {
        Attribute::Id(v) | Attribute::Label(v) | Attribute::Value(v) => v,
        other => panic!("{other:?}"),
    }
}

/// `pkcs11-tool` (another process, another vendor's client) lists the
/// objects of the simulated tokens `env` uses.
fn pkcs11_tool(env: &ModuleEnv, args: &[&str]) -> String {
    let out = run_ok(
        Command::new("pkcs11-tool")
            .arg("--module")
            .arg(module())
            .args(args)
            .env(
                "UKEY_SIM",
                std::env::join_paths(&env.states).expect("paths"),
            )
            .env("UKEY_NO_PCSC", "1"),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn provider_templates_keygen_with_a_random_id_and_a_label_found_again_and_signing() {
    require_tools(&["pkcs11-tool"]);
    let mut env = ModuleEnv::new(vec![Start::Demo]);
    let id: [u8; 16] = rand::random();
    let label = "provider key 2026";
    let s = rw_user(&env);
    let (public, private) = provider_keygen(&s, &id, label).unwrap();
    assert_eq!(bytes(&s, private, AttributeType::Id), id);
    assert_eq!(bytes(&s, public, AttributeType::Label), label.as_bytes());
    drop(s);
    // A new application run: the names come from the card.
    env.restart();
    let slot = env.p11.get_slots_with_token().unwrap()[0];
    let s = env.p11.open_ro_session(slot).unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    let by_id = find(
        &s,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(id.to_vec()),
        ],
    );
    let by_label = find(
        &s,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    );
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id, by_label);
    // The slot's OpenSC ID (retired 1 = 05) finds it as well.
    assert_eq!(
        find(
            &s,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(vec![0x05])
            ]
        ),
        by_id
    );
    let pubkey = find(
        &s,
        &[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    );
    assert_eq!(pubkey.len(), 1);
    let spki = public_key_info(&s, pubkey[0]);
    let msg = b"signed by the provider's key";
    let sig = s
        .sign(&Mechanism::EcdsaSha256, by_label[0], msg)
        .expect("sign");
    use p256::pkcs8::DecodePublicKey;
    use signature::Verifier;
    let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
    vk.verify(msg, &p256::ecdsa::Signature::from_slice(&sig).unwrap())
        .expect("the signature verifies");
    drop(s);
    // Other processes, another vendor's client: OpenSC's pkcs11-tool lists
    // the key with its label and ID, and signs with the key it finds by that
    // ID (its --sign picks keys by ID only).
    let listing = pkcs11_tool(&env, &["--login", "--pin", "123456", "-O"]);
    let block = listing
        .split("Private Key Object")
        .find(|b| b.contains(&hex::encode(id)))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(block.contains(&format!("label:      {label}")), "{listing}");
    let msg_path = env.dir.path().join("msg");
    std::fs::write(&msg_path, msg).unwrap();
    let sig_path = env.dir.path().join("sig");
    pkcs11_tool(
        &env,
        &[
            "--login",
            "--pin",
            "123456",
            "--sign",
            "-m",
            "ECDSA-SHA256",
            "--id",
            &hex::encode(id),
            "-i",
            msg_path.to_str().unwrap(),
            "-o",
            sig_path.to_str().unwrap(),
        ],
    );
    let sig = std::fs::read(&sig_path).unwrap();
    vk.verify(msg, &p256::ecdsa::Signature::from_slice(&sig).unwrap())
        .expect("pkcs11-tool's signature by ID verifies");
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn key_generation_never_replaces_a_key_and_picks_a_free_slot() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = rw_user(&env);
    let before = env.state(0);
    // The slot 01 names (9A) holds a key: refused, with or without a
    // certificate, the same ID twice too.
    let e = provider_keygen(&s, &[0x01], "over 9a").unwrap_err();
    assert_eq!(rv(e), RvError::ActionProhibited);
    let id = [0xAA; 16];
    provider_keygen(&s, &id, "first").unwrap();
    // Same application ID again: a second key in the next free slot, the
    // first one untouched (PKCS#11 IDs need not be unique).
    let first = env.state(0).keys["82"].private_key.clone();
    provider_keygen(&s, &id, "second").unwrap();
    let after = env.state(0);
    assert_eq!(after.keys["82"].private_key, first);
    assert!(after.keys.contains_key("83"));
    // Over the first key by its slot's OpenSC ID: refused unless asked for.
    let e = provider_keygen(&s, &[0x05], "again").unwrap_err();
    assert_eq!(rv(e), RvError::ActionProhibited);
    assert_eq!(env.state(0).keys["82"].private_key, first);
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Id(vec![0x05]),
        Attribute::VendorDefined((AttributeType::VendorDefined(CKA_UKEY_OVERWRITE), vec![1])),
    ];
    private.push(Attribute::Sign(true));
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::EcParams(P256_OID.to_vec()),
        ],
        &private,
    )
    .unwrap();
    assert_ne!(env.state(0).keys["82"].private_key, first);
    for slot in ["9a", "9c", "9d", "9e"] {
        assert_eq!(
            env.state(0).keys[slot].private_key,
            before.keys[slot].private_key
        );
    }
}

#[test]
fn a_certificate_goes_to_the_slot_of_the_key_it_certifies() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = rw_user(&env);
    let (public, _) = provider_keygen(&s, &[0x42; 20], "new key").unwrap();
    let der = issue_for("CN=placed by its key", &public_key_info(&s, public));
    let old_9a = env.state(0).objects[&0x5F_C105].clone();
    // The template names 9A's ID (and a label): the certificate still goes
    // next to its key, in retired 1, with that label.
    let cert = s
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Id(vec![0x01]),
            Attribute::Label(b"placed".to_vec()),
            Attribute::Value(der.clone()),
        ])
        .unwrap();
    assert_eq!(bytes(&s, cert, AttributeType::Label), b"placed");
    assert_eq!(bytes(&s, cert, AttributeType::Id), [0x42; 20]);
    assert_eq!(env.state(0).objects[&0x5F_C105], old_9a);
    assert!(env.state(0).objects.contains_key(&0x5F_C10D));
    // A certificate whose key is on no token: refused, nothing written.
    let key = p256::SecretKey::random(&mut rand::thread_rng());
    use p256::pkcs8::EncodePublicKey;
    let spki = key.public_key().to_public_key_der().unwrap();
    let foreign = issue_for("CN=elsewhere", spki.as_bytes());
    let before = env.state(0).objects;
    let e = s
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Token(true),
            Attribute::Value(foreign),
        ])
        .unwrap_err();
    assert_eq!(rv(e), RvError::TemplateInconsistent);
    assert_eq!(env.state(0).objects, before);
}

fn cert_handle(s: &Session, id: u8) -> ObjectHandle {
    find(
        s,
        &[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![id]),
        ],
    )[0]
}

fn key_handle(s: &Session, id: u8) -> ObjectHandle {
    find(
        s,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![id]),
        ],
    )[0]
}

#[test]
fn primary_slots_are_destroyed_only_deliberately() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = rw_user(&env);
    let before = env.state(0);
    // What certmonger does with same-subject certificates and their keys.
    for id in [0x02, 0x03, 0x04] {
        assert_eq!(
            rv(s.destroy_object(cert_handle(&s, id)).unwrap_err()),
            RvError::ActionProhibited
        );
        assert_eq!(
            rv(s.destroy_object(key_handle(&s, id)).unwrap_err()),
            RvError::ActionProhibited
        );
    }
    let now = env.state(0);
    assert_eq!(now.objects, before.objects);
    assert_eq!(
        now.keys.keys().collect::<Vec<_>>(),
        before.keys.keys().collect::<Vec<_>>()
    );
    // Deliberately: CKA_UKEY_DESTROY on the handle first (what ukey does).
    let h = cert_handle(&s, 0x02);
    mean_to_destroy(&s, h);
    s.destroy_object(h).unwrap();
    assert!(!env.state(0).objects.contains_key(&0x5F_C10A));
    assert!(env.state(0).keys.contains_key("9c"));
    drop(s);
    drop(env);
    // Or as the SO (the management key: pkcs11-tool --login-type so).
    let mut fresh = ModuleEnv::new(vec![Start::Fresh]);
    let slot = fresh.p11.get_slots_with_token().unwrap()[0];
    let so = fresh.p11.open_rw_session(slot).unwrap();
    so.login(UserType::So, Some(&pin(DEFAULT_MGMT))).unwrap();
    let (public, _) = so
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(P256_OID.to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Id(vec![0x03]),
                Attribute::Sign(true),
            ],
        )
        .unwrap();
    let der = issue_for("CN=key management", &public_key_info(&so, public));
    so.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::Token(true),
        Attribute::Value(der),
    ])
    .unwrap();
    drop(so);
    fresh.restart();
    let slot = fresh.p11.get_slots_with_token().unwrap()[0];
    let s = fresh.p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    assert_eq!(
        rv(s.destroy_object(cert_handle(&s, 0x03)).unwrap_err()),
        RvError::ActionProhibited
    );
    assert_eq!(
        rv(s.destroy_object(key_handle(&s, 0x03)).unwrap_err()),
        RvError::ActionProhibited
    );
    s.logout().unwrap();
    s.login(UserType::So, Some(&pin(DEFAULT_MGMT))).unwrap();
    s.destroy_object(cert_handle(&s, 0x03)).unwrap();
    assert!(!fresh.state(0).objects.contains_key(&0x5F_C10B));
    assert!(fresh.state(0).keys.contains_key("9d"));
}

#[test]
fn a_key_pair_this_application_just_made_may_be_cleaned_up_from_a_read_only_session() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let slot = env.p11.get_slots_with_token().unwrap()[0];
    let s = rw_user(&env);
    let (_, private) = provider_keygen(&s, &[0x11; 20], "half made").unwrap();
    // NSS's cleanup path: C_DestroyObject from its read-only session.
    let ro = env.p11.open_ro_session(slot).unwrap();
    ro.destroy_object(private).unwrap();
    assert!(!env.state(0).keys.contains_key("82"));
    // Nothing else goes from a read-only session, retired keys included.
    let (_, other) = provider_keygen(&s, &[0x12; 20], "kept").unwrap();
    let der = issue_for("CN=kept", &{
        let pubs = find(
            &s,
            &[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(vec![0x12; 20]),
            ],
        );
        public_key_info(&s, pubs[0])
    });
    s.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::Token(true),
        Attribute::Value(der),
    ])
    .unwrap();
    assert_eq!(
        rv(ro.destroy_object(other).unwrap_err()),
        RvError::SessionReadOnly
    );
    assert_eq!(
        rv(ro.destroy_object(key_handle(&ro, 0x01)).unwrap_err()),
        RvError::SessionReadOnly
    );
    assert!(env.state(0).keys.contains_key("82"));
    // From the read-write session a retired slot's key goes with the user's login.
    s.destroy_object(other).unwrap();
    assert!(!env.state(0).keys.contains_key("82"));
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn names_persist_on_the_card_and_opensc_ids_keep_matching() {
    let mut env = ModuleEnv::new(vec![Start::Demo]);
    let s = rw_user(&env);
    let cert = cert_handle(&s, 0x01);
    let sha1 = [0x5A; 20];
    s.update_attributes(
        cert,
        &[
            Attribute::Id(sha1.to_vec()),
            Attribute::Label(b"Server-Cert".to_vec()),
        ],
    )
    .unwrap();
    // The slot's three objects share the ID; labels are per object.
    let key = key_handle(&s, 0x01);
    assert_eq!(bytes(&s, key, AttributeType::Id), sha1);
    assert_eq!(bytes(&s, key, AttributeType::Label), b"PIV AUTH key");
    drop(s);
    env.restart();
    let s = rw_user(&env);
    for template in [
        vec![Attribute::Id(sha1.to_vec())],
        vec![Attribute::Id(vec![0x01])],
        vec![Attribute::Label(b"Server-Cert".to_vec())],
        vec![Attribute::Label(
            b"Certificate for PIV Authentication".to_vec(),
        )],
    ] {
        let mut t = vec![Attribute::Class(ObjectClass::CERTIFICATE)];
        t.extend(template);
        let found = find(&s, &t);
        assert_eq!(found.len(), 1, "{t:?}");
        assert_eq!(bytes(&s, found[0], AttributeType::Id), sha1);
        assert_eq!(bytes(&s, found[0], AttributeType::Label), b"Server-Cert");
    }
    // Another slot's ID on a certificate is no name; the slot's own clears it.
    let cert = cert_handle(&s, 0x01);
    assert_eq!(
        rv(s.update_attributes(cert, &[Attribute::Id(vec![0x02])])
            .unwrap_err()),
        RvError::AttributeValueInvalid
    );
    s.update_attributes(cert, &[Attribute::Id(vec![0x01]), Attribute::Label(vec![])])
        .unwrap();
    assert_eq!(bytes(&s, cert, AttributeType::Id), [0x01]);
    assert_eq!(
        bytes(&s, cert, AttributeType::Label),
        b"Certificate for PIV Authentication"
    );
    // Too long to keep: refused before anything is written.
    assert_eq!(
        rv(s.update_attributes(cert, &[Attribute::Id(vec![7; 65])])
            .unwrap_err()),
        RvError::AttributeValueInvalid
    );
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn a_pin_alone_cannot_write_with_an_unprotected_management_key_until_ukey_protects_it() {
    let env = ModuleEnv::new(vec![Start::Fresh]);
    let s = rw_user(&env);
    let e = provider_keygen(&s, &[0x33; 16], "needs the management key").unwrap_err();
    assert_eq!(rv(e), RvError::TokenWriteProtected);
    assert!(env.state(0).keys.keys().all(|k| k == "f9"));
    drop(s);
    // The fix the error names.
    let out = run_ok(
        Command::new(bin("ukey"))
            .args(["mgmt-key", "protect", "--pin", "123456", "--sim"])
            .arg(&env.states[0])
            .env("UKEY_NO_PCSC", "1")
            .env_remove("UKEY_SIM"),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("now a new random aes192 key"), "{text}");
    let p = env.state(0);
    assert!(!p.management_key.is_default);
    // The module sees the change after a new insertion (a new process).
    let mut env = env;
    env.restart();
    let s = rw_user(&env);
    provider_keygen(&s, &[0x33; 16], "now it works").unwrap();
    assert!(env.state(0).keys.contains_key("82"));
    // Running it again changes nothing.
    let out = run_ok(
        Command::new(bin("ukey"))
            .args(["mgmt-key", "protect", "--pin", "123456", "--sim"])
            .arg(&env.states[0])
            .env("UKEY_NO_PCSC", "1"),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("already PIN-protected"));
    assert_eq!(env.tries(0), (3, 3));
}

/// A card whose object 5FFF0A holds another application's data: it is
/// never overwritten, and names last until the token is removed (a new
/// application run finds OpenSC's names again); nothing fails.
#[test]
fn names_stay_in_memory_when_the_cards_object_belongs_to_someone_else() {
    let mut p = demo_template();
    let foreign = b"\x01\x02 someone else's data".to_vec();
    p.objects
        .insert(ukey_pkcs11::names::NAMES_OBJECT.0, foreign.clone());
    let mut env = ModuleEnv::new(vec![Start::State(p)]);
    let s = rw_user(&env);
    let (_, private) = provider_keygen(&s, &[0x77; 16], "in memory").unwrap();
    assert_eq!(bytes(&s, private, AttributeType::Label), b"in memory");
    assert_eq!(
        find(&s, &[Attribute::Id(vec![0x77; 16])]).len(),
        2,
        "the key pair, by its ID"
    );
    drop(s);
    assert_eq!(
        env.state(0).objects[&ukey_pkcs11::names::NAMES_OBJECT.0],
        foreign
    );
    env.restart();
    let s = rw_user(&env);
    assert!(find(&s, &[Attribute::Id(vec![0x77; 16])]).is_empty());
    let k = key_handle(&s, 0x05);
    assert_eq!(bytes(&s, k, AttributeType::Label), b"Retired KEY MAN 1");
}
