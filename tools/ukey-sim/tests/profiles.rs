//! The simulator's card profiles: what each answers to the optional parts
//! of PIV and to the YubiKey extensions, through the `apdu` crate in-process.

use apdu::piv::caps::{CardFacts, KeyAnswer, MetadataSupport};
use apdu::piv::*;
use apdu::tlv;
use apdu::{Command, Error, PivCard, StatusWord};
use hex_literal::hex;
use std::sync::OnceLock;
use ukey_sim::profile::Profile;
use ukey_sim::state::Persistent;
use ukey_sim::{SimCard, SimTransport};

/// A demo card of `profile` (keys made once: RSA generation is slow).
fn demo(profile: Profile) -> PivCard<SimTransport> {
    static DEMO: OnceLock<Persistent> = OnceLock::new();
    let base = DEMO.get_or_init(|| {
        let mut p = Persistent::factory(4242);
        let ca = ukey_sim::ca::Ca::new("CN=Test CA").unwrap();
        ukey_sim::demo::provision(&mut p, &ca, &ukey_sim::demo::DemoOptions::default()).unwrap();
        p
    });
    let p = ukey_sim::demo::with_profile(base, profile).unwrap();
    PivCard::new(SimTransport::new(SimCard::new(p).shared()))
}

fn sent(card: &PivCard<SimTransport>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = card.transport().card().lock().unwrap();
    let log = c
        .log()
        .iter()
        .map(|e| (e.command.clone(), e.response.clone()))
        .collect();
    c.clear_log();
    log
}

fn sw(e: Error) -> StatusWord {
    e.status()
        .unwrap_or_else(|| panic!("expected a status word, got {e:?}"))
}

fn facts(card: &mut PivCard<SimTransport>) -> CardFacts {
    card.transaction(|s| {
        s.select()?;
        CardFacts::probe(s)
    })
    .unwrap()
}

#[test]
fn each_profile_answers_the_yubikey_extensions_as_its_card_does() {
    let expect = [
        (
            Profile::Yk57,
            Some(Version(5, 7, 1)),
            true,
            MetadataSupport::Works,
        ),
        (
            Profile::Yk54,
            Some(Version(5, 4, 3)),
            true,
            MetadataSupport::Works,
        ),
        (
            Profile::Yk4,
            Some(Version(4, 3, 7)),
            false,
            MetadataSupport::Absent,
        ),
        (Profile::Generic, None, false, MetadataSupport::Absent),
        (
            Profile::Compat,
            Some(Version(6, 6, 6)),
            true,
            MetadataSupport::Unreliable,
        ),
    ];
    for (profile, version, serial, metadata) in expect {
        let mut c = demo(profile);
        let f = facts(&mut c);
        assert_eq!(f.version, version, "{profile}");
        assert_eq!(f.serial.is_some(), serial, "{profile}");
        assert_eq!(f.metadata, metadata, "{profile}");
        // Every card has an identity: its serial or its CHUID.
        assert!(f.identity().is_some(), "{profile}");
    }
}

#[test]
fn move_key_challenge_and_vendor_objects_per_profile() {
    for profile in Profile::ALL {
        let spec = profile.spec();
        let mut c = demo(profile);
        let (challenge, move_key, admin) = c
            .transaction(|s| {
                s.select()?;
                let challenge = caps::probe_challenge(s)?;
                let move_key = caps::probe_move_key(s, Slot::Retired(20), Slot::Retired(19))?;
                let admin = s.get_data(ObjectId::ADMIN_DATA).map(drop);
                Ok((challenge, move_key, admin))
            })
            .unwrap();
        assert_eq!(challenge, spec.challenge, "{profile}");
        assert_eq!(move_key, spec.move_key, "{profile}");
        if spec.vendor_objects {
            assert!(admin.is_ok(), "{profile}: {admin:?}");
        } else {
            // An object the card does not know: 6A80, not 6A82.
            assert_eq!(
                sw(admin.unwrap_err()),
                StatusWord::IncorrectData,
                "{profile}"
            );
        }
    }
}

#[test]
fn the_compat_card_answers_metadata_empty_except_for_9a() {
    let mut c = demo(Profile::Compat);
    let f = facts(&mut c);
    let answers = c
        .transaction(|s| {
            s.select()?;
            let raw = s.metadata(0x9C)?;
            Ok((
                f.key(s, Slot::Authentication)?,
                f.key(s, Slot::Signature)?,
                raw,
            ))
        })
        .unwrap();
    assert!(matches!(answers.0, KeyAnswer::Reported(_)));
    assert_eq!(answers.1, KeyAnswer::CannotTell);
    assert_eq!(answers.2, Metadata::default(), "9000 with no data");
}

#[test]
fn the_generic_card_needs_the_full_aid_and_no_yubikey_command() {
    let mut c = demo(Profile::Generic);
    let rid = Command::new(0, ins::SELECT, 0x04, 0x00)
        .with_data(PIV_RID.to_vec())
        .with_le(0);
    let r = c.transaction(|s| s.transmit(&rid)).unwrap();
    assert_eq!(
        r.sw,
        StatusWord::FileNotFound,
        "the RID alone is not enough"
    );
    c.transaction(|s| s.select().map(drop)).unwrap();
    for ins in [
        ins::YK_GET_VERSION,
        ins::YK_GET_SERIAL,
        ins::YK_GET_METADATA,
        ins::YK_MOVE_KEY,
        ins::YK_SET_MGMKEY,
        ins::YK_ATTEST,
    ] {
        let r = c
            .transaction(|s| s.transmit(&Command::new(0, ins, 0, 0x9A).with_le(0)))
            .unwrap();
        assert_eq!(r.sw, StatusWord::InsNotSupported, "INS {ins:02X}");
    }
    let e = c.transaction(|s| s.get_challenge(8)).unwrap_err();
    assert_eq!(sw(e), StatusWord::FunctionNotSupported);
}

#[test]
fn the_generic_card_refuses_yubikey_key_policies_and_rsa_3072() {
    let mut c = demo(Profile::Generic);
    let key = ManagementKey::default_for(Algorithm::Tdes).unwrap();
    let r = c.transaction(|s| {
        s.select()?;
        s.authenticate(&key)?;
        let policy = s
            .generate(
                Slot::Retired(1),
                Algorithm::EccP256,
                PinPolicy::Always,
                TouchPolicy::Default,
            )
            .map(drop);
        let big = s
            .generate(
                Slot::Retired(1),
                Algorithm::Rsa3072,
                PinPolicy::Default,
                TouchPolicy::Default,
            )
            .map(drop);
        let plain = s.generate(
            Slot::Retired(1),
            Algorithm::EccP256,
            PinPolicy::Default,
            TouchPolicy::Default,
        )?;
        Ok((policy, big, plain))
    });
    let (policy, big, plain) = r.unwrap();
    assert_eq!(sw(policy.unwrap_err()), StatusWord::IncorrectData);
    assert_eq!(sw(big.unwrap_err()), StatusWord::IncorrectData);
    assert_eq!(plain.algorithm(), Algorithm::EccP256);
}

#[test]
fn yubikey_4_has_no_aes_management_key() {
    let mut c = PivCard::new(SimTransport::new(
        SimCard::new(Persistent::factory_for(Profile::Yk4, 1, None)).shared(),
    ));
    let tdes = ManagementKey::default_for(Algorithm::Tdes).unwrap();
    let aes = ManagementKey::new(Algorithm::Aes128, &[7; 16]).unwrap();
    let e = c
        .transaction(|s| {
            s.select()?;
            s.authenticate(&tdes)?;
            s.set_management_key(&aes, false)
        })
        .unwrap_err();
    assert_eq!(sw(e), StatusWord::IncorrectData);
}

/// A response over 256 bytes on cards that give 256-byte pieces: exactly
/// one APDU per piece (the first command's answer, then GET RESPONSE with
/// a short Le for each further piece), none wasted.
#[test]
fn long_answers_come_in_256_byte_pieces_at_one_apdu_each() {
    for profile in [Profile::Generic, Profile::Compat, Profile::Yk4] {
        let mut c = demo(profile);
        let der = c
            .transaction(|s| {
                s.select()?;
                s.get_data(ObjectId::CERT_9A)
            })
            .unwrap();
        sent(&c);
        c.transaction(|s| s.get_data(ObjectId::CERT_9A).map(drop))
            .unwrap();
        let log = sent(&c);
        // The answer: 53 82 LL LL + content, 90 00 at the end.
        let answer = der.len() + 4;
        assert_eq!(log.len(), answer.div_ceil(256), "{profile}: {log:02X?}");
        for (cmd, _) in &log[1..] {
            assert_eq!(cmd[1], ins::GET_RESPONSE, "{profile}");
            assert_eq!(cmd.len(), 5, "{profile}: a short Le");
        }
    }
}

#[test]
fn the_compat_card_takes_only_a_short_le_in_get_response() {
    let c = demo(Profile::Compat);
    let mut card = c.transport().card().lock().unwrap();
    let select = hex!("00 A4 04 00 05 A0 00 00 03 08 00");
    assert!(card.transmit(&select).unwrap().ends_with(&hex!("90 00")));
    let get_9a = Command::new(0, ins::GET_DATA, 0x3F, 0xFF)
        .with_data(tlv::encode(0x5Cu32, &ObjectId::CERT_9A.tag_bytes()))
        .with_le(0)
        .to_extended_bytes()
        .unwrap();
    let answer = card.transmit(&get_9a).unwrap();
    assert_eq!(answer.len(), 258, "256 bytes and 61xx, whatever the Le");
    assert_eq!(answer[256], 0x61);
    let extended_get_response = hex!("00 C0 00 00 00 00 00");
    assert_eq!(
        card.transmit(&extended_get_response).unwrap(),
        hex!("67 00")
    );
}

#[test]
fn the_generic_card_gives_data_to_a_command_without_le_only_through_61xx() {
    let mut c = demo(Profile::Generic);
    c.transaction(|s| s.select().map(drop)).unwrap();
    let mut card = c.transport().card().lock().unwrap();
    let no_le = hex!("00 CB 3F FF 05 5C 03 5F C1 02");
    let r = card.transmit(&no_le).unwrap();
    assert_eq!(r[0], 0x61, "{r:02X?}");
    assert_eq!(r.len(), 2, "no data with it");
    let rest = card.transmit(&[0x00, 0xC0, 0x00, 0x00, r[1]]).unwrap();
    assert_eq!(&rest[rest.len() - 2..], hex!("90 00"));
}

#[test]
fn the_profile_is_kept_in_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.json");
    for profile in Profile::ALL {
        let p = Persistent::factory_for(profile, 7, None);
        assert_eq!(
            p.factory_management_algorithm,
            profile.spec().factory_management_algorithm.code()
        );
        p.save(&path).unwrap();
        let back = Persistent::load(&path).unwrap();
        assert_eq!(back.profile, profile);
        // A reset keeps it.
        let mut reset = back.clone();
        reset.reset_application();
        assert_eq!(reset.profile, profile);
        // And the ATR is the profile's.
        let card = SimCard::open(&path).unwrap();
        assert_eq!(card.atr(), profile.spec().atr);
    }
    // A state file from before profiles is a YubiKey 5.7.
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("profile");
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(Persistent::load(&path).unwrap().profile, Profile::Yk57);
}
