//! The module's vendor extensions for renewal clients, through `cryptoki`
//! as a client uses them:
//! * a CKO_DATA object with CKA_APPLICATION "ukey renewal" (object 5FFF10)
//!   that remembers a staged renewal on the token itself;
//! * C_SetAttributeValue(CKA_ID) on a private key = MOVE KEY (YubiKey 5.7);
//! * CKA_UKEY_PROMOTE_FROM on a certificate write: the certificate is for
//!   the key about to be moved into its slot.
//!
//! Together with key generation, signing, certificate writes and C_DestroyObject
//! they make the whole promotion of a renewed key reachable through PKCS#11.

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use ukey_pkcs11::{CKA_UKEY_PROMOTE_FROM, RENEWAL_APPLICATION, RENEWAL_OBJECT};
use ukey_tests::*;

const SUBJECT: &str = "CN=Demo User,O=Example Pharma Ltd";
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

fn user(env: &ModuleEnv) -> Session {
    let slot = env.p11.get_slots_with_token().unwrap()[0];
    let s = env.p11.open_rw_session(slot).unwrap();
    s.login(UserType::User, Some(&pin("123456"))).unwrap();
    s
}

fn app() -> Vec<u8> {
    RENEWAL_APPLICATION.as_bytes().to_vec()
}

fn find_marker(s: &Session) -> Vec<ObjectHandle> {
    s.find_objects(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Application(app()),
    ])
    .unwrap()
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

fn create_marker(s: &Session, v: &[u8]) -> Result<ObjectHandle, Error> {
    s.create_object(&[
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Application(app()),
        Attribute::Value(v.to_vec()),
    ])
}

fn generate_p256(s: &Session, id: u8) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::Id(vec![id]),
            Attribute::EcParams(P256_OID.to_vec()),
        ],
        &[
            Attribute::Token(true),
            Attribute::Id(vec![id]),
            Attribute::Sign(true),
        ],
    )
    .unwrap()
}

fn cert_template(id: u8, der: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Id(vec![id]),
        Attribute::Value(der.to_vec()),
    ]
}

fn private_key(s: &Session, id: u8) -> Option<ObjectHandle> {
    s.find_objects(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Id(vec![id]),
    ])
    .unwrap()
    .first()
    .copied()
}

/// CKA_UKEY_MOVABLE: the card can move the key (CKA_MODIFIABLE is true for
/// every object: CKA_ID and CKA_LABEL can be set).
fn modifiable(s: &Session, h: ObjectHandle) -> bool {
    assert_eq!(
        s.get_attributes(h, &[AttributeType::Modifiable]).unwrap(),
        vec![Attribute::Modifiable(true)]
    );
    match s
        .get_attributes(
            h,
            &[AttributeType::VendorDefined(ukey_pkcs11::CKA_UKEY_MOVABLE)],
        )
        .unwrap()
        .remove(0)
    {
        Attribute::VendorDefined((_, v)) => v == [1],
        other => panic!("{other:?}"),
    }
}

#[test]
fn renewal_data_object_is_created_read_updated_and_destroyed() {
    let mut env = ModuleEnv::new(vec![Start::Demo]);
    {
        let s = user(&env);
        assert!(find_marker(&s).is_empty(), "none on a fresh demo token");
        let h = create_marker(&s, b"first").unwrap();
        assert_eq!(value(&s, h), b"first");
        assert_eq!(find_marker(&s), vec![h]);
        assert_eq!(
            rv(create_marker(&s, b"second").unwrap_err()),
            RvError::ActionProhibited,
            "one renewal object per token: update it instead"
        );
        s.update_attributes(h, &[Attribute::Value(b"second".to_vec())])
            .unwrap();
        assert_eq!(value(&s, h), b"second");
        assert_eq!(
            rv(s.update_attributes(h, &[Attribute::Label(b"x".to_vec())])
                .unwrap_err()),
            RvError::AttributeReadOnly
        );
    }
    // On the card: 5FFF10 holds it, and a fresh process sees it without a login.
    assert!(env.state(0).objects.contains_key(&RENEWAL_OBJECT.0));
    env.restart();
    {
        let slot = env.p11.get_slots_with_token().unwrap()[0];
        let ro = env.p11.open_ro_session(slot).unwrap();
        let found = find_marker(&ro);
        assert_eq!(found.len(), 1);
        assert_eq!(value(&ro, found[0]), b"second");
        let attrs = ro
            .get_attributes(
                found[0],
                &[
                    AttributeType::Private,
                    AttributeType::Token,
                    AttributeType::Label,
                ],
            )
            .unwrap();
        assert_eq!(
            attrs,
            vec![
                Attribute::Private(false),
                Attribute::Token(true),
                Attribute::Label(app())
            ]
        );
        assert_eq!(
            rv(ro.destroy_object(found[0]).unwrap_err()),
            RvError::SessionReadOnly
        );
    }
    let s = user(&env);
    let h = find_marker(&s)[0];
    s.destroy_object(h).unwrap();
    assert!(find_marker(&s).is_empty());
    assert!(!env.state(0).objects.contains_key(&RENEWAL_OBJECT.0));
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn renewal_data_object_needs_its_application_name_and_a_login() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let slot = env.p11.get_slots_with_token().unwrap()[0];
    let public = env.p11.open_rw_session(slot).unwrap();
    assert_eq!(
        rv(create_marker(&public, b"x").unwrap_err()),
        RvError::UserNotLoggedIn
    );
    drop(public);
    let s = user(&env);
    let e = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Application(b"someone else".to_vec()),
            Attribute::Value(b"x".to_vec()),
        ])
        .unwrap_err();
    assert_eq!(rv(e), RvError::AttributeValueInvalid);
    let e = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Application(app()),
            Attribute::Private(true),
            Attribute::Value(b"x".to_vec()),
        ])
        .unwrap_err();
    assert_eq!(rv(e), RvError::TemplateInconsistent, "it is never private");
    assert!(!env.state(0).objects.contains_key(&RENEWAL_OBJECT.0));
}

#[test]
fn another_applications_data_in_5fff10_is_never_shown_or_overwritten() {
    let mut p = demo_template();
    let foreign = vec![0x01, 0x02, 0x03];
    p.objects.insert(RENEWAL_OBJECT.0, foreign.clone());
    let env = ModuleEnv::new(vec![Start::State(p)]);
    let s = user(&env);
    assert!(find_marker(&s).is_empty());
    let data = s
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap();
    assert!(data.is_empty());
    assert_eq!(
        rv(create_marker(&s, b"x").unwrap_err()),
        RvError::ActionProhibited
    );
    assert_eq!(env.state(0).objects[&RENEWAL_OBJECT.0], foreign);
}

#[test]
fn setting_the_id_of_a_private_key_moves_it_to_that_slot() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user(&env);
    let (_, private) = generate_p256(&s, 0x05);
    assert!(modifiable(&s, private), "CKA_ID is modifiable on 5.7");
    assert_eq!(
        rv(s.update_attributes(private, &[Attribute::Id(vec![0x01])])
            .unwrap_err()),
        RvError::ActionProhibited,
        "9A holds a key: never replaced by a move"
    );
    // A label is a name (kept on the card) and goes with the key.
    s.update_attributes(private, &[Attribute::Label(b"x".to_vec())])
        .unwrap();
    assert_eq!(
        rv(s.update_attributes(private, &[Attribute::Sign(false)])
            .unwrap_err()),
        RvError::AttributeReadOnly
    );
    s.update_attributes(private, &[Attribute::Id(vec![0x06])])
        .unwrap();
    assert_eq!(
        s.get_attributes(private, &[AttributeType::Label]).unwrap(),
        vec![Attribute::Label(b"x".to_vec())]
    );
    let st = env.state(0);
    assert!(st.keys.contains_key("83") && !st.keys.contains_key("82"));
    // The handle followed the key.
    assert_eq!(
        s.get_attributes(private, &[AttributeType::Id]).unwrap(),
        vec![Attribute::Id(vec![0x06])]
    );
    assert_eq!(private_key(&s, 0x06), Some(private));
    assert_eq!(private_key(&s, 0x05), None);
    let sig = s
        .sign(&Mechanism::EcdsaSha256, private, b"moved key signs")
        .unwrap();
    assert_eq!(sig.len(), 64);
}

#[test]
fn a_card_without_move_key_refuses_the_move() {
    // A YubiKey 5.4 (it answers MOVE KEY with 6D00).
    let mut p = demo_template();
    p.profile = ukey_sim::profile::Profile::Yk54;
    p.version = [5, 4, 3];
    let env = ModuleEnv::new(vec![Start::State(p)]);
    let s = user(&env);
    let (_, private) = generate_p256(&s, 0x05);
    assert!(!modifiable(&s, private));
    assert_eq!(
        rv(s.update_attributes(private, &[Attribute::Id(vec![0x06])])
            .unwrap_err()),
        RvError::ActionProhibited
    );
    assert!(env.state(0).keys.contains_key("82"));
}

#[test]
fn the_whole_promotion_of_a_renewed_key_through_pkcs11() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user(&env);
    let old_key = env.state(0).keys["9a"].private_key.clone();
    // Staged: a new key in 82 with its new certificate.
    let (public, private) = generate_p256(&s, 0x05);
    let new_cert = issue_for(SUBJECT, &public_key_info(&s, public));
    s.create_object(&cert_template(0x05, &new_cert)).unwrap();
    // Without the vendor attribute a certificate goes next to the key it
    // certifies, whatever CKA_ID its template names: 9A stays as it was.
    let cert_9a = env.state(0).objects[&0x5F_C105].clone();
    s.create_object(&cert_template(0x01, &new_cert)).unwrap();
    assert_eq!(env.state(0).objects[&0x5F_C105], cert_9a);
    // ...and with it, a certificate for yet another key.
    let other = ukey_sim::keys::PrivateKey::generate(apdu::piv::Algorithm::EccP256).unwrap();
    let mut wrong = cert_template(0x01, &issue_for(SUBJECT, &other.spki_der()));
    wrong.push(Attribute::VendorDefined((
        AttributeType::VendorDefined(CKA_UKEY_PROMOTE_FROM),
        vec![0x05],
    )));
    assert_eq!(
        rv(s.create_object(&wrong).unwrap_err()),
        RvError::TemplateInconsistent
    );
    assert_eq!(
        env.state(0).keys["9a"].private_key,
        old_key,
        "nothing changed in 9A"
    );
    // The promotion: certificate into 9A for the key in 82, old key out, new key in.
    let mut promote = cert_template(0x01, &new_cert);
    promote.push(Attribute::VendorDefined((
        AttributeType::VendorDefined(CKA_UKEY_PROMOTE_FROM),
        vec![0x05],
    )));
    s.create_object(&promote).unwrap();
    let old = private_key(&s, 0x01).unwrap();
    // 9A's key goes only deliberately (as `ukey renew install` does it).
    assert_eq!(
        rv(s.destroy_object(old).unwrap_err()),
        RvError::ActionProhibited
    );
    mean_to_destroy(&s, old);
    s.destroy_object(old).unwrap();
    s.update_attributes(private, &[Attribute::Id(vec![0x01])])
        .unwrap();
    // 9A now holds the new pair: the certificate is for the key, and it signs.
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![0x01]),
        ])
        .unwrap();
    let pk = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(vec![0x01]),
        ])
        .unwrap()[0];
    assert_eq!(public_key_info(&s, pk), public_key_info(&s, public));
    assert_eq!(
        s.get_attributes(found[0], &[AttributeType::Value]).unwrap(),
        vec![Attribute::Value(new_cert.clone())]
    );
    let k = private_key(&s, 0x01).unwrap();
    assert_eq!(
        s.sign(&Mechanism::EcdsaSha256, k, b"renewed")
            .unwrap()
            .len(),
        64
    );
    let st = env.state(0);
    assert_ne!(st.keys["9a"].private_key, old_key);
    assert!(!st.keys.contains_key("82"));
}

// ---- check and act in one card transaction --------------------------------
//
// "Another process" changes the card between the module's read and its
// write (the state file is the card's memory, shared as a card is through
// pcscd): the write must not happen, the card must keep what the other
// process put there, and the stale handle must never act again.

/// Change the card's memory behind the module's back.
fn meanwhile(env: &ModuleEnv, f: impl FnOnce(&mut ukey_sim::state::Persistent)) {
    let mut p = env.state(0);
    f(&mut p);
    p.save(&env.states[0]).unwrap();
}

/// The renewal object's content as the module stores it: `80 app 81 value`.
fn renewal_content(value: &[u8]) -> Vec<u8> {
    let mut c = vec![0x80, app().len() as u8];
    c.extend(app());
    c.extend([0x81, value.len() as u8]);
    c.extend(value);
    c
}

#[test]
fn a_key_replaced_by_another_process_is_not_deleted() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user(&env);
    let h = private_key(&s, 0x01).unwrap();
    mean_to_destroy(&s, h);
    // Another process puts another key into 9A.
    meanwhile(&env, |p| {
        let other = p.keys["9d"].clone();
        p.keys.insert("9a".into(), other);
    });
    let replaced = env.state(0).keys["9a"].private_key.clone();
    assert_eq!(
        rv(s.destroy_object(h).unwrap_err()),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(env.state(0).keys["9a"].private_key, replaced, "kept");
    // The stale handle is dead for good; a new search shows the key there now.
    assert_eq!(
        rv(s.destroy_object(h).unwrap_err()),
        RvError::ObjectHandleInvalid
    );
    let now = private_key(&s, 0x01).unwrap();
    assert_ne!(now, h);
    mean_to_destroy(&s, now);
    s.destroy_object(now).unwrap();
    assert!(!env.state(0).keys.contains_key("9a"));
    assert_eq!(env.tries(0), (3, 3));
}

#[test]
fn a_key_replaced_by_another_process_is_not_moved() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user(&env);
    generate_p256(&s, 0x05);
    let h = private_key(&s, 0x05).unwrap();
    meanwhile(&env, |p| {
        let other = p.keys["9c"].clone();
        p.keys.insert("82".into(), other);
    });
    let e = s
        .update_attributes(h, &[Attribute::Id(vec![0x06])])
        .unwrap_err();
    assert_eq!(rv(e), RvError::ObjectHandleInvalid);
    let st = env.state(0);
    assert!(!st.keys.contains_key("83"), "nothing moved into 83");
    assert_eq!(st.keys["82"].private_key, st.keys["9c"].private_key);
}

#[test]
fn a_certificate_for_a_key_another_process_replaced_is_not_written() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user(&env);
    let (public, _) = generate_p256(&s, 0x05);
    let cert = issue_for(SUBJECT, &public_key_info(&s, public));
    // The module has seen the new key in 82; another process replaces it.
    meanwhile(&env, |p| {
        let other = p.keys["9c"].clone();
        p.keys.insert("82".into(), other);
    });
    let before = env.state(0).objects.clone();
    assert_eq!(
        rv(s.create_object(&cert_template(0x05, &cert)).unwrap_err()),
        RvError::TemplateInconsistent
    );
    // Nor into 9A as the certificate of the key "about to move in" from 82.
    let mut promote = cert_template(0x01, &cert);
    promote.push(Attribute::VendorDefined((
        AttributeType::VendorDefined(CKA_UKEY_PROMOTE_FROM),
        vec![0x05],
    )));
    assert_eq!(
        rv(s.create_object(&promote).unwrap_err()),
        RvError::TemplateInconsistent
    );
    assert_eq!(env.state(0).objects, before, "no certificate written");
}

#[test]
fn a_certificate_replaced_by_another_process_is_not_deleted() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user(&env);
    let h = s
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![0x02]),
        ])
        .unwrap()[0];
    value(&s, h);
    mean_to_destroy(&s, h);
    let tag_9c = apdu::piv::ObjectId::CERT_9C.0;
    let tag_9d = apdu::piv::ObjectId::CERT_9D.0;
    meanwhile(&env, |p| {
        let other = p.objects[&tag_9d].clone();
        p.objects.insert(tag_9c, other);
    });
    assert_eq!(
        rv(s.destroy_object(h).unwrap_err()),
        RvError::ObjectHandleInvalid
    );
    let st = env.state(0);
    assert_eq!(st.objects[&tag_9c], st.objects[&tag_9d], "kept");
}

#[test]
fn the_renewal_object_changes_only_from_what_was_read() {
    let env = ModuleEnv::new(vec![Start::Demo]);
    let s = user(&env);
    let h = create_marker(&s, b"mine").unwrap();
    // Another process rewrites it: our update and our delete are refused.
    meanwhile(&env, |p| {
        p.objects
            .insert(RENEWAL_OBJECT.0, renewal_content(b"theirs"));
    });
    assert_eq!(
        rv(
            s.update_attributes(h, &[Attribute::Value(b"next".to_vec())])
                .unwrap_err()
        ),
        RvError::ObjectHandleInvalid
    );
    assert_eq!(
        env.state(0).objects[&RENEWAL_OBJECT.0],
        renewal_content(b"theirs")
    );
    assert_eq!(
        rv(s.destroy_object(h).unwrap_err()),
        RvError::ObjectHandleInvalid
    );
    // Read again, then it may change.
    let h = find_marker(&s)[0];
    assert_eq!(value(&s, h), b"theirs");
    s.update_attributes(h, &[Attribute::Value(b"next".to_vec())])
        .unwrap();
    // Another process creates one while we believe there is none.
    meanwhile(&env, |p| {
        p.objects.remove(&RENEWAL_OBJECT.0);
    });
    s.destroy_object(h).unwrap_err();
    assert!(find_marker(&s).is_empty());
    meanwhile(&env, |p| {
        p.objects
            .insert(RENEWAL_OBJECT.0, renewal_content(b"theirs"));
    });
    assert_eq!(
        rv(create_marker(&s, b"mine").unwrap_err()),
        RvError::ActionProhibited
    );
    assert_eq!(
        env.state(0).objects[&RENEWAL_OBJECT.0],
        renewal_content(b"theirs")
    );
}
