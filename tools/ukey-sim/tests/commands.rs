//! One test per PIV command and status word: the `apdu` crate's typed API
//! against the simulated card, in-process.

use apdu::piv::*;
use apdu::{Error, PivCard, StatusWord, Transport};
use hex_literal::hex;
use std::sync::OnceLock;
use ukey_sim::state::Persistent;
use ukey_sim::{Fault, SimCard, SimTransport};

fn fresh() -> PivCard<SimTransport> {
    PivCard::new(SimTransport::new(
        SimCard::new(Persistent::factory(12345678)).shared(),
    ))
}

/// A demo token (generated once: RSA key generation takes a while).
fn demo_state() -> Persistent {
    static DEMO: OnceLock<Persistent> = OnceLock::new();
    DEMO.get_or_init(|| {
        let mut p = Persistent::factory(4242);
        let ca = ukey_sim::ca::Ca::new("CN=Test CA").unwrap();
        ukey_sim::demo::provision(&mut p, &ca, &ukey_sim::demo::DemoOptions::default()).unwrap();
        p
    })
    .clone()
}

fn demo() -> PivCard<SimTransport> {
    PivCard::new(SimTransport::new(SimCard::new(demo_state()).shared()))
}

fn pin(s: &str) -> Pin {
    Pin::new(s.as_bytes()).unwrap()
}

fn sw(e: Error) -> StatusWord {
    e.status()
        .unwrap_or_else(|| panic!("expected a status word, got {e:?}"))
}

fn default_mgmt() -> ManagementKey {
    ManagementKey::default_for(Algorithm::Aes192).unwrap()
}

fn tries(card: &mut PivCard<SimTransport>) -> (u8, u8) {
    let t = card.transport().card().lock().unwrap();
    (t.persistent().pin.tries_left, t.persistent().puk.tries_left)
}

#[test]
fn select_answers_the_yubikey_template() {
    let mut c = fresh();
    let ap = c.transaction(|s| s.select()).unwrap();
    assert_eq!(ap.aid, hex!("00 00 10 00 01 00"));
    assert_eq!(ap.authority.as_deref(), Some(&PIV_RID[..]));
}

#[test]
fn commands_before_select_are_refused() {
    let mut c = fresh();
    assert_eq!(
        sw(c.transaction(|s| s.version()).unwrap_err()),
        StatusWord::InsNotSupported
    );
}

#[test]
fn select_of_another_applet_is_not_found_and_keeps_selection() {
    let mut c = fresh();
    c.transaction(|s| {
        s.select()?;
        let r =
            s.transmit(&apdu::Command::new(0, 0xA4, 4, 0).with_data(hex!("A0 00 00 05 27 21 01")))?;
        assert_eq!(r.sw, StatusWord::FileNotFound);
        assert_eq!(s.version()?, Version(5, 7, 1));
        Ok(())
    })
    .unwrap();
}

#[test]
fn version_and_serial() {
    let mut c = fresh();
    let (v, serial) = c
        .transaction(|s| Ok((s.select().and(s.version())?, s.serial()?)))
        .unwrap();
    assert_eq!(v, Version(5, 7, 1));
    assert_eq!(serial, 12345678);
}

#[test]
fn discovery_object_is_always_there() {
    let mut c = fresh();
    let d = c
        .transaction(|s| s.select().and(s.get_data(ObjectId::DISCOVERY)))
        .unwrap();
    assert_eq!(Discovery::parse(&d).unwrap(), Discovery::default());
}

#[test]
fn missing_object_is_not_found() {
    let mut c = fresh();
    let e = c
        .transaction(|s| s.select().and(s.get_data(ObjectId::CHUID)))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::FileNotFound);
}

#[test]
fn put_data_needs_the_management_key() {
    let mut c = fresh();
    let e = c
        .transaction(|s| s.select().and(s.put_data(ObjectId::CHUID, &hex!("30 00"))))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::SecurityStatusNotSatisfied);
}

#[test]
fn put_then_get_data_round_trips_a_long_object() {
    let mut c = fresh();
    let der = vec![0x5A; 1900];
    let content = CertContainer {
        der: der.clone(),
        compressed: false,
    }
    .encode()
    .unwrap();
    let back = c
        .transaction(|s| {
            s.select()?;
            s.authenticate(&default_mgmt())?;
            s.put_data(ObjectId::CERT_9A, &content)?;
            s.get_data(ObjectId::CERT_9A)
        })
        .unwrap();
    assert_eq!(CertContainer::parse(&back).unwrap().unwrap().der, der);
}

#[test]
fn short_apdus_chain_and_collect_61xx() {
    let mut c = fresh();
    c.set_extended_length(false);
    let content = vec![0x11; 2000];
    c.transaction(|s| {
        s.select()?;
        s.authenticate(&default_mgmt())?;
        s.put_data(ObjectId::FACIAL_IMAGE, &content)
    })
    .unwrap();
    let log: Vec<_> = c.transport().card().lock().unwrap().log().to_vec();
    let chained = log
        .iter()
        .filter(|e| e.command[0] == 0x10 && e.ins() == 0xDB)
        .count();
    assert_eq!(chained, 7, "2000+ bytes in 255-byte pieces");
    c.transport().card().lock().unwrap().clear_log();
    let back = c.transaction(|s| {
        s.verify_pin(&pin("123456"))?;
        s.get_data(ObjectId::FACIAL_IMAGE)
    });
    assert_eq!(back.unwrap().to_vec(), content);
    let log: Vec<_> = c.transport().card().lock().unwrap().log().to_vec();
    assert_eq!(
        log.iter().filter(|e| e.ins() == 0xC0).count(),
        7,
        "GET RESPONSE rounds"
    );
}

#[test]
fn extended_length_reads_in_one_apdu() {
    let mut c = fresh();
    assert!(
        c.extended_length(),
        "the YubiKey ATR announces extended length"
    );
    let content = vec![0x22; 2000];
    c.transaction(|s| {
        s.select()?;
        s.authenticate(&default_mgmt())?;
        s.put_data(ObjectId::KEY_HISTORY, &content)?;
        s.get_data(ObjectId::KEY_HISTORY)
    })
    .unwrap();
    let log: Vec<_> = c.transport().card().lock().unwrap().log().to_vec();
    assert_eq!(log.len(), 5, "select, 2 x mgmt auth, put, get: {log:02X?}");
}

#[test]
fn oversized_object_is_refused() {
    let mut c = fresh();
    let e = c
        .transaction(|s| {
            s.select()?;
            s.authenticate(&default_mgmt())?;
            s.put_data(ObjectId::CERT_9C, &vec![0; 3100])
        })
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::NotEnoughMemory);
}

#[test]
fn wrong_pin_counts_down_blocks_and_correct_pin_resets() {
    let mut c = fresh();
    let r: Vec<_> = (0..2)
        .map(|_| {
            c.transaction(|s| s.select().and(s.verify_pin(&pin("999999"))))
                .unwrap_err()
        })
        .map(sw)
        .collect();
    assert_eq!(
        r,
        [
            StatusWord::VerifyFailed { tries_left: 2 },
            StatusWord::VerifyFailed { tries_left: 1 }
        ]
    );
    c.transaction(|s| s.verify_pin(&pin("123456"))).unwrap();
    assert_eq!(tries(&mut c), (3, 3));
    for expect in [2, 1, 0] {
        let e = c.transaction(|s| s.verify_pin(&pin("999999"))).unwrap_err();
        assert_eq!(sw(e), StatusWord::VerifyFailed { tries_left: expect });
    }
    let e = c.transaction(|s| s.verify_pin(&pin("123456"))).unwrap_err();
    assert_eq!(sw(e), StatusWord::Blocked);
    assert_eq!(
        c.transaction(|s| s.pin_status()).unwrap(),
        PinStatus::Blocked
    );
    assert_eq!(tries(&mut c), (0, 3));
}

#[test]
fn empty_verify_reports_without_spending() {
    let mut c = fresh();
    for _ in 0..5 {
        assert_eq!(
            c.transaction(|s| s.select().and(s.pin_status())).unwrap(),
            PinStatus::TriesLeft(3)
        );
    }
    assert_eq!(tries(&mut c), (3, 3));
    c.transaction(|s| s.verify_pin(&pin("123456"))).unwrap();
    assert_eq!(
        c.transaction(|s| s.pin_status()).unwrap(),
        PinStatus::Verified
    );
}

#[test]
fn verify_with_bad_length_spends_no_try() {
    let mut c = fresh();
    let r = c
        .transaction(|s| {
            s.select()?;
            s.transmit(&apdu::Command::new(0, 0x20, 0, 0x80).with_data(b"1234".to_vec()))
        })
        .unwrap();
    assert_eq!(r.sw, StatusWord::IncorrectData);
    assert_eq!(tries(&mut c), (3, 3));
}

#[test]
fn logout_drops_verification() {
    let mut c = fresh();
    c.transaction(|s| s.select().and(s.verify_pin(&pin("123456"))))
        .unwrap();
    c.transaction(|s| s.logout()).unwrap();
    assert_eq!(
        c.transaction(|s| s.pin_status()).unwrap(),
        PinStatus::TriesLeft(3)
    );
}

#[test]
fn power_cycle_drops_volatile_state_only() {
    let mut c = fresh();
    c.transaction(|s| s.select().and(s.verify_pin(&pin("123456"))))
        .unwrap();
    let _ = c.transaction(|s| s.verify_pin(&pin("000000")));
    c.transport().card().lock().unwrap().power_cycle();
    assert_eq!(
        sw(c.transaction(|s| s.pin_status()).unwrap_err()),
        StatusWord::InsNotSupported
    );
    assert_eq!(
        c.transaction(|s| s.select().and(s.pin_status())).unwrap(),
        PinStatus::TriesLeft(2)
    );
}

#[test]
fn change_pin_and_puk() {
    let mut c = fresh();
    c.transaction(|s| {
        s.select()?;
        s.change_reference(PinRef::Pin, &pin("123456"), &pin("654321"))?;
        s.change_reference(PinRef::Puk, &pin("12345678"), &pin("87654321"))
    })
    .unwrap();
    let e = c.transaction(|s| s.verify_pin(&pin("123456"))).unwrap_err();
    assert_eq!(sw(e), StatusWord::VerifyFailed { tries_left: 2 });
    c.transaction(|s| s.verify_pin(&pin("654321"))).unwrap();
    let e = c
        .transaction(|s| s.change_reference(PinRef::Puk, &pin("12345678"), &pin("11111111")))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::VerifyFailed { tries_left: 2 });
}

#[test]
fn puk_check_by_changing_to_itself_changes_nothing() {
    let mut c = fresh();
    c.transaction(|s| {
        s.select()
            .and(s.change_reference(PinRef::Puk, &pin("12345678"), &pin("12345678")))
    })
    .unwrap();
    let p = c
        .transport()
        .card()
        .lock()
        .unwrap()
        .persistent()
        .puk
        .clone();
    assert!(p.is_default);
    assert_eq!(p.tries_left, 3);
}

#[test]
fn puk_unblocks_a_blocked_pin() {
    let mut c = fresh();
    c.transaction(|s| s.select().map(drop)).unwrap();
    for _ in 0..3 {
        let _ = c.transaction(|s| s.verify_pin(&pin("000000")));
    }
    let e = c
        .transaction(|s| s.unblock_pin(&pin("87654321"), &pin("222222")))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::VerifyFailed { tries_left: 2 });
    c.transaction(|s| s.unblock_pin(&pin("12345678"), &pin("222222")))
        .unwrap();
    assert_eq!(tries(&mut c), (3, 3));
    c.transaction(|s| s.verify_pin(&pin("222222"))).unwrap();
}

#[test]
fn blocked_puk_refuses_unblock() {
    let mut c = fresh();
    c.transaction(|s| s.select().map(drop)).unwrap();
    for _ in 0..3 {
        let _ = c.transaction(|s| s.unblock_pin(&pin("00000000"), &pin("222222")));
    }
    let e = c
        .transaction(|s| s.unblock_pin(&pin("12345678"), &pin("222222")))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::Blocked);
}

#[test]
fn management_key_authentication_aes_and_3des() {
    let mut c = fresh();
    c.transaction(|s| s.select().and(s.authenticate(&default_mgmt())))
        .unwrap();
    let tdes = ManagementKey::default_for(Algorithm::Tdes).unwrap();
    c.transaction(|s| s.set_management_key(&tdes, false))
        .unwrap();
    c.transport().card().lock().unwrap().power_cycle();
    let e = c
        .transaction(|s| s.select().and(s.authenticate(&default_mgmt())))
        .unwrap_err();
    assert_eq!(
        sw(e),
        StatusWord::IncorrectP1P2,
        "AES key against a 3DES card"
    );
    c.transaction(|s| s.authenticate(&tdes)).unwrap();
    for alg in [Algorithm::Aes128, Algorithm::Aes256] {
        let k = ManagementKey::random(alg).unwrap();
        c.transaction(|s| s.set_management_key(&k, false)).unwrap();
        c.transaction(|s| s.authenticate(&k)).unwrap();
    }
}

#[test]
fn wrong_management_key_is_refused() {
    let mut c = fresh();
    let wrong = ManagementKey::new(Algorithm::Aes192, &[0x42; 24]).unwrap();
    let e = c
        .transaction(|s| s.select().and(s.authenticate(&wrong)))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::SecurityStatusNotSatisfied);
    let e = c
        .transaction(|s| s.put_data(ObjectId::CHUID, &hex!("30 00")))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::SecurityStatusNotSatisfied);
}

fn verify_ec(pk: &PublicKey, digest: &[u8], der: &[u8]) {
    use signature::hazmat::PrehashVerifier;
    let PublicKey::Ec { alg, point } = pk else {
        panic!("not EC")
    };
    match alg {
        Algorithm::EccP256 => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            vk.verify_prehash(digest, &p256::ecdsa::Signature::from_der(der).unwrap())
                .unwrap();
        }
        _ => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).unwrap();
            vk.verify_prehash(digest, &p384::ecdsa::Signature::from_der(der).unwrap())
                .unwrap();
        }
    }
}

#[test]
fn generate_and_sign_with_p256_and_p384() {
    let mut c = fresh();
    for (slot, alg) in [
        (Slot::Authentication, Algorithm::EccP256),
        (Slot::Retired(3), Algorithm::EccP384),
    ] {
        let pk = c
            .transaction(|s| {
                s.select()?;
                s.logout()?;
                s.authenticate(&default_mgmt())?;
                s.generate(slot, alg, PinPolicy::Default, TouchPolicy::Default)
            })
            .unwrap();
        let digest = vec![0x33; alg.size_bytes()];
        let e = c
            .transaction(|s| s.sign_raw(slot, alg, &digest))
            .unwrap_err();
        assert_eq!(
            sw(e),
            StatusWord::SecurityStatusNotSatisfied,
            "PIN policy once needs the PIN"
        );
        let der = c
            .transaction(|s| {
                s.verify_pin(&pin("123456"))
                    .and(s.sign_raw(slot, alg, &digest))
            })
            .unwrap();
        verify_ec(&pk, &digest, &der);
        let md = c.transaction(|s| s.metadata(slot.key_ref())).unwrap();
        assert_eq!(md.public_key, Some(pk));
        assert_eq!(md.origin, Some(KeyOrigin::Generated));
        assert_eq!(md.policy, Some((PinPolicy::Once, TouchPolicy::Never)));
    }
}

/// The card parses a key once and keeps it; a new key in the slot must be
/// used (and reported) from the next command on, never the kept one.
#[test]
fn a_regenerated_key_signs_with_the_new_key() {
    let mut c = fresh();
    let slot = Slot::Authentication;
    let digest = [0x5A; 32];
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (pk, der, md) = c
            .transaction(|s| {
                s.select()?;
                s.authenticate(&default_mgmt())?;
                let pk = s.generate(
                    slot,
                    Algorithm::EccP256,
                    PinPolicy::Default,
                    TouchPolicy::Default,
                )?;
                s.verify_pin(&pin("123456"))?;
                let der = s.sign_raw(slot, Algorithm::EccP256, &digest)?;
                Ok((pk, der, s.metadata(slot.key_ref())?))
            })
            .unwrap();
        verify_ec(&pk, &digest, &der);
        assert_eq!(md.public_key.as_ref(), Some(&pk));
        keys.push(pk);
    }
    assert_ne!(keys[0], keys[1]);
}

/// Demo keys in retired slots come with a Key History object covering them
/// (SP 800-73-4 Part 1 §3.3.2), or clients would never look there.
#[test]
fn demo_retired_keys_are_covered_by_the_key_history() {
    let mut p = Persistent::factory(7);
    let ca = ukey_sim::ca::Ca::new("CN=Test CA").unwrap();
    let opts = ukey_sim::demo::DemoOptions {
        keys: vec![
            (Slot::Signature, Algorithm::EccP256),
            (Slot::Retired(3), Algorithm::EccP256),
        ],
        ..ukey_sim::demo::DemoOptions::default()
    };
    ukey_sim::demo::provision(&mut p, &ca, &opts).unwrap();
    let mut c = PivCard::new(SimTransport::new(SimCard::new(p).shared()));
    let kh = c
        .transaction(|s| {
            s.select()?;
            s.get_data(ObjectId::KEY_HISTORY)
        })
        .unwrap();
    let kh = KeyHistory::parse(&kh).unwrap();
    assert_eq!((kh.on_card_certs, kh.off_card_certs), (3, 0));
}

#[test]
fn generate_needs_the_management_key() {
    let mut c = fresh();
    let e = c
        .transaction(|s| {
            s.select()?;
            s.generate(
                Slot::Authentication,
                Algorithm::EccP256,
                PinPolicy::Default,
                TouchPolicy::Default,
            )
        })
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::SecurityStatusNotSatisfied);
}

#[test]
fn rsa2048_raw_operation_round_trips() {
    use rsa::traits::PublicKeyParts;
    let mut c = demo();
    let md = c.transaction(|s| s.select().and(s.metadata(0x9D))).unwrap();
    let Some(PublicKey::Rsa { modulus, exponent }) = md.public_key else {
        panic!()
    };
    let pubkey = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&modulus),
        rsa::BigUint::from_bytes_be(&exponent),
    )
    .unwrap();
    let msg = b"session key";
    let ct = pubkey
        .encrypt(&mut rand::rngs::OsRng, rsa::Pkcs1v15Encrypt, msg)
        .unwrap();
    assert_eq!(ct.len(), pubkey.size());
    let plain = c
        .transaction(|s| {
            s.verify_pin(&pin("123456")).and(s.sign_raw(
                Slot::KeyManagement,
                Algorithm::Rsa2048,
                &ct,
            ))
        })
        .unwrap();
    // PKCS#1 v1.5 type 2 block: 00 02 PS 00 msg
    assert_eq!(&plain[..2], &[0, 2]);
    assert_eq!(&plain[plain.len() - msg.len()..], msg);
    let too_big = vec![0xFF; 256];
    let e = c
        .transaction(|s| s.sign_raw(Slot::KeyManagement, Algorithm::Rsa2048, &too_big))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::IncorrectData);
}

#[test]
fn pin_always_key_needs_verify_right_before_each_use() {
    let mut c = demo();
    let digest = [0x44; 32];
    c.transaction(|s| s.select().and(s.verify_pin(&pin("123456"))))
        .unwrap();
    c.transaction(|s| s.version()).unwrap();
    let e = c
        .transaction(|s| s.sign_raw(Slot::Signature, Algorithm::EccP256, &digest))
        .unwrap_err();
    assert_eq!(
        sw(e),
        StatusWord::SecurityStatusNotSatisfied,
        "9C: an earlier login is not enough"
    );
    c.transaction(|s| {
        s.verify_pin(&pin("123456"))
            .and(s.sign_raw(Slot::Signature, Algorithm::EccP256, &digest))
    })
    .unwrap();
    let e = c
        .transaction(|s| s.sign_raw(Slot::Signature, Algorithm::EccP256, &digest))
        .unwrap_err();
    assert_eq!(
        sw(e),
        StatusWord::SecurityStatusNotSatisfied,
        "one verification, one signature"
    );
    let e = c
        .transaction(|s| {
            s.verify_pin(&pin("123456"))?;
            s.get_data(ObjectId::CERT_9C)?;
            s.sign_raw(Slot::Signature, Algorithm::EccP256, &digest)
        })
        .unwrap_err();
    assert_eq!(
        sw(e),
        StatusWord::SecurityStatusNotSatisfied,
        "no card traffic in between"
    );
}

#[test]
fn card_authentication_key_needs_no_pin() {
    let mut c = demo();
    c.transaction(|s| {
        s.select()
            .and(s.sign_raw(Slot::CardAuthentication, Algorithm::EccP384, &[1; 48]))
    })
    .unwrap();
}

#[test]
fn ecdh_agrees_with_the_host() {
    let mut c = demo();
    let md = c.transaction(|s| s.select().and(s.metadata(0x9E))).unwrap();
    let Some(PublicKey::Ec { point, .. }) = md.public_key else {
        panic!()
    };
    let eph = p384::SecretKey::random(&mut rand::rngs::OsRng);
    let eph_point = p384::EncodedPoint::from(eph.public_key());
    let card_x = c
        .transaction(|s| {
            s.ecdh(
                Slot::CardAuthentication,
                Algorithm::EccP384,
                eph_point.as_bytes(),
            )
        })
        .unwrap();
    let host = p384::ecdh::diffie_hellman(
        eph.to_nonzero_scalar(),
        p384::PublicKey::from_sec1_bytes(&point)
            .unwrap()
            .as_affine(),
    );
    assert_eq!(&card_x[..], host.raw_secret_bytes().as_slice());
}

#[test]
fn sign_with_wrong_algorithm_or_empty_slot() {
    let mut c = demo();
    let e = c.transaction(|s| {
        s.select()
            .and(s.sign_raw(Slot::CardAuthentication, Algorithm::EccP256, &[1; 32]))
    });
    assert_eq!(sw(e.unwrap_err()), StatusWord::IncorrectData);
    let e = c.transaction(|s| s.sign_raw(Slot::Retired(7), Algorithm::EccP256, &[1; 32]));
    assert_eq!(sw(e.unwrap_err()), StatusWord::ReferenceNotFound);
}

#[test]
fn metadata_of_pin_puk_and_management_key() {
    let mut c = fresh();
    let (pin_md, puk_md, mk) = c
        .transaction(|s| {
            s.select()?;
            Ok((s.metadata(0x80)?, s.metadata(0x81)?, s.metadata(0x9B)?))
        })
        .unwrap();
    assert_eq!(
        (pin_md.retries, pin_md.is_default),
        (Some((3, 3)), Some(true))
    );
    assert_eq!(puk_md.retries, Some((3, 3)));
    assert_eq!(
        (mk.algorithm, mk.is_default),
        (Some(Algorithm::Aes192), Some(true))
    );
    let e = c.transaction(|s| s.metadata(0x9A)).unwrap_err();
    assert_eq!(sw(e), StatusWord::ReferenceNotFound);
}

#[test]
fn protected_management_key_is_readable_only_after_pin() {
    let mut c = demo();
    let e = c
        .transaction(|s| s.select().and(s.get_data(ObjectId::PRINTED_INFORMATION)))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::SecurityStatusNotSatisfied);
    let admin =
        AdminData::parse(&c.transaction(|s| s.get_data(ObjectId::ADMIN_DATA)).unwrap()).unwrap();
    assert!(admin.management_key_protected());
    let printed = c
        .transaction(|s| {
            s.verify_pin(&pin("123456"))
                .and(s.get_data(ObjectId::PRINTED_INFORMATION))
        })
        .unwrap();
    let key = ProtectedManagementKey::parse(&printed).unwrap();
    let mk = ManagementKey::new(Algorithm::Aes192, &key.key).unwrap();
    c.transaction(|s| s.authenticate(&mk)).unwrap();
    assert_eq!(
        c.transaction(|s| s.metadata(0x9B)).unwrap().is_default,
        Some(false)
    );
}

#[test]
fn set_pin_retries_needs_pin_and_management_key() {
    let mut c = fresh();
    let e = c.transaction(|s| {
        s.select()
            .and(s.authenticate(&default_mgmt()))
            .and(s.set_pin_retries(5, 4))
    });
    assert_eq!(sw(e.unwrap_err()), StatusWord::SecurityStatusNotSatisfied);
    c.transaction(|s| s.verify_pin(&pin("123456")).and(s.set_pin_retries(5, 4)))
        .unwrap();
    let md = c.transaction(|s| s.metadata(0x80)).unwrap();
    assert_eq!(md.retries, Some((5, 5)));
}

#[test]
fn reset_only_when_pin_and_puk_are_blocked() {
    let mut c = demo();
    let e = c
        .transaction(|s| s.select().and(s.reset_application()))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::ConditionsNotSatisfied);
    for _ in 0..3 {
        let _ = c.transaction(|s| s.verify_pin(&pin("000000")));
        let _ =
            c.transaction(|s| s.change_reference(PinRef::Puk, &pin("00000000"), &pin("00000000")));
    }
    c.transaction(|s| s.reset_application()).unwrap();
    assert_eq!(tries(&mut c), (3, 3));
    let e = c
        .transaction(|s| s.get_data(ObjectId::CERT_9A))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::FileNotFound);
    c.transaction(|s| s.authenticate(&default_mgmt())).unwrap();
}

#[test]
fn import_move_and_delete_keys() {
    let mut c = fresh();
    let sk = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let scalar = sk.to_bytes();
    c.transaction(|s| {
        s.select()?;
        s.authenticate(&default_mgmt())?;
        s.import_key(
            Slot::Retired(1),
            Algorithm::EccP256,
            &ImportKey::Ec(&scalar),
            PinPolicy::Never,
            TouchPolicy::Default,
        )
    })
    .unwrap();
    let md = c.transaction(|s| s.metadata(0x82)).unwrap();
    assert_eq!(md.origin, Some(KeyOrigin::Imported));
    let expected = PublicKey::Ec {
        alg: Algorithm::EccP256,
        point: p256::EncodedPoint::from(sk.public_key())
            .as_bytes()
            .to_vec(),
    };
    assert_eq!(md.public_key.as_ref(), Some(&expected));
    c.transaction(|s| s.move_key(Slot::Authentication, Slot::Retired(1)))
        .unwrap();
    assert_eq!(
        sw(c.transaction(|s| s.metadata(0x82)).unwrap_err()),
        StatusWord::ReferenceNotFound
    );
    assert_eq!(
        c.transaction(|s| s.metadata(0x9A)).unwrap().public_key,
        Some(expected)
    );
    // The destination must be empty, the source present.
    let e = c
        .transaction(|s| s.move_key(Slot::Authentication, Slot::Retired(2)))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::ReferenceNotFound);
    c.transaction(|s| {
        s.generate(
            Slot::Retired(2),
            Algorithm::EccP256,
            PinPolicy::Default,
            TouchPolicy::Default,
        )
        .map(drop)
    })
    .unwrap();
    let e = c
        .transaction(|s| s.move_key(Slot::Authentication, Slot::Retired(2)))
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::IncorrectData);
    c.transaction(|s| s.delete_key(Slot::Authentication))
        .unwrap();
    assert_eq!(
        sw(c.transaction(|s| s.metadata(0x9A)).unwrap_err()),
        StatusWord::ReferenceNotFound
    );
}

#[test]
fn attestation_certifies_generated_keys_only() {
    use der::Decode;
    let mut c = demo();
    let der = c
        .transaction(|s| s.select().and(s.attest(Slot::Authentication)))
        .unwrap();
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    assert!(cert
        .tbs_certificate
        .subject
        .to_string()
        .contains("YubiKey PIV Attestation 9a"));
    let att = c
        .transaction(|s| s.get_data(ObjectId::ATTESTATION))
        .unwrap();
    let f9 = x509_cert::Certificate::from_der(&CertContainer::parse(&att).unwrap().unwrap().der)
        .unwrap();
    assert_eq!(cert.tbs_certificate.issuer, f9.tbs_certificate.subject);
    let e = c.transaction(|s| s.attest(Slot::Retired(9))).unwrap_err();
    assert_eq!(sw(e), StatusWord::ReferenceNotFound);
}

#[test]
fn get_challenge_returns_what_was_asked() {
    let mut c = fresh();
    let (a, b) = c
        .transaction(|s| {
            s.select()
                .and(Ok((s.get_challenge(8)?, s.get_challenge(8)?)))
        })
        .unwrap();
    assert_eq!(a.len(), 8);
    assert_ne!(a, b);
}

#[test]
fn unknown_instruction_and_class() {
    let mut c = fresh();
    let (a, b) = c
        .transaction(|s| {
            s.select()?;
            Ok((
                s.transmit(&apdu::Command::new(0, 0x12, 0, 0))?.sw,
                s.transmit(&apdu::Command::new(0x80, 0xCB, 0x3F, 0xFF))?.sw,
            ))
        })
        .unwrap();
    assert_eq!(
        (a, b),
        (StatusWord::InsNotSupported, StatusWord::ClaNotSupported)
    );
}

#[test]
fn malformed_apdu_is_wrong_length() {
    let card = SimCard::new(Persistent::factory(1)).shared();
    let r = card
        .lock()
        .unwrap()
        .transmit(&hex!("00 A4 04 00 05 A0"))
        .unwrap();
    assert_eq!(r, hex!("67 00"));
}

#[test]
fn state_survives_in_the_file_and_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    Persistent::factory(4243).save(&path).unwrap();
    let mut a = PivCard::new(SimTransport::new(SimCard::open(&path).unwrap().shared()));
    let mut b = PivCard::new(SimTransport::new(SimCard::open(&path).unwrap().shared()));
    let _ = a.transaction(|s| s.select().and(s.verify_pin(&pin("000000"))));
    assert_eq!(
        b.transaction(|s| s.select().and(s.pin_status())).unwrap(),
        PinStatus::TriesLeft(2),
        "the second card instance sees the first one's try"
    );
    drop((a, b));
    assert_eq!(Persistent::load(&path).unwrap().pin.tries_left, 2);
}

#[test]
fn fault_injection_pulls_the_card() {
    let card = SimCard::new(Persistent::factory(1)).shared();
    let mut c = PivCard::new(SimTransport::new(card.clone()));
    card.lock().unwrap().inject(Fault {
        after: 1,
        lose_response: false,
    });
    let e = c.transaction(|s| s.select().and(s.version())).unwrap_err();
    assert!(e.is_removed(), "{e:?}");
    // The old handle stays dead after reinsertion; a new one works.
    card.lock().unwrap().insert();
    assert!(c
        .transaction(|s| s.select().map(drop))
        .unwrap_err()
        .is_removed());
    let mut c2 = PivCard::new(SimTransport::new(card));
    c2.transaction(|s| s.select().map(drop)).unwrap();
}

#[test]
fn chained_put_data_commits_only_on_its_last_apdu() {
    for after in 0..9u32 {
        let card = SimCard::new(Persistent::factory(1)).shared();
        let mut c = PivCard::new(SimTransport::new(card.clone()));
        c.set_extended_length(false);
        let old = CertContainer {
            der: vec![1; 800],
            compressed: false,
        }
        .encode()
        .unwrap();
        let new = CertContainer {
            der: vec![2; 1500],
            compressed: false,
        }
        .encode()
        .unwrap();
        c.transaction(|s| {
            s.select()?;
            s.authenticate(&default_mgmt())
        })
        .unwrap();
        c.transaction(|s| s.put_data(ObjectId::CERT_9A, &old))
            .unwrap();
        card.lock().unwrap().inject(Fault {
            after,
            lose_response: false,
        });
        let r = c.transaction(|s| s.put_data(ObjectId::CERT_9A, &new));
        card.lock().unwrap().insert();
        let stored = card
            .lock()
            .unwrap()
            .persistent()
            .objects
            .get(&ObjectId::CERT_9A.0)
            .cloned()
            .unwrap();
        match r {
            Ok(()) => assert_eq!(stored, new, "after {after}"),
            Err(e) => {
                assert!(e.is_removed());
                assert_eq!(
                    stored, old,
                    "pulled before APDU {after}: old certificate intact"
                );
            }
        }
    }
}

#[test]
fn control_file_drives_every_instance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    Persistent::factory(4244).save(&path).unwrap();
    let reader = ukey_sim::SimReader::open(&path).unwrap();
    assert!(reader.card_present());
    let mut t = reader.connect().unwrap();
    ukey_sim::Control::Remove.send(&path).unwrap();
    assert!(!reader.card_present());
    assert!(reader.connect().is_err());
    ukey_sim::Control::Insert.send(&path).unwrap();
    assert!(reader.card_present());
    assert!(PivCard::new(reader.connect().unwrap())
        .transaction(|s| s.select().map(drop))
        .is_ok());
    assert!(t.reset().is_err(), "handle from before the removal is dead");
    let mut live = PivCard::new(reader.connect().unwrap());
    live.transaction(|s| s.select().map(drop)).unwrap();
    ukey_sim::Control::Reset.send(&path).unwrap();
    let e = live.transaction(|s| s.version()).unwrap_err();
    assert!(e.is_reset(), "{e:?}");
    assert_eq!(
        sw(live.transaction(|s| s.version()).unwrap_err()),
        StatusWord::InsNotSupported,
        "reset deselected"
    );
}

#[test]
fn secrets_are_redacted_in_the_log() {
    let mut c = demo();
    c.transaction(|s| {
        s.select()?;
        s.verify_pin(&pin("123456"))?;
        let printed = s.get_data(ObjectId::PRINTED_INFORMATION)?;
        let key = ProtectedManagementKey::parse(&printed)?;
        s.authenticate(&ManagementKey::new(Algorithm::Aes192, &key.key)?)
    })
    .unwrap();
    let log = c.transport().card().lock().unwrap().log().to_vec();
    let all: Vec<u8> = log
        .iter()
        .flat_map(|e| e.command.iter().chain(&e.response).copied())
        .collect();
    assert!(!all.windows(6).any(|w| w == b"123456"), "PIN in the log");
    let key = c
        .transport()
        .card()
        .lock()
        .unwrap()
        .persistent()
        .management_key
        .key
        .0
        .to_vec();
    assert!(
        !all.windows(key.len()).any(|w| w == key.as_slice()),
        "management key in the log"
    );
}
