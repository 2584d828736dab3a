//! Secrets never reach the trace. Its own test binary: tracing is set up
//! once per process, at the module's first C_Initialize.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use ukey_tests::*;

const DEFAULT_MGMT: &str = "010203040506070801020304050607080102030405060708";
const NEW_MGMT: &str = "0F0E0D0C0B0A09080706050403020100F0E0D0C0B0A09080";

/// A full session with APDU tracing on: the PIN, the PUK and the
/// management keys must not appear in the log, in text or in hex.
#[test]
fn secrets_never_reach_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trace.log");
    std::env::set_var("UKEY_LOG", "apdu=debug,pkcs11=trace,debug");
    std::env::set_var("UKEY_LOG_FILE", &log);
    let env = ModuleEnv::new(vec![Start::Demo, Start::Fresh]);
    let slots = env.p11.get_slots_with_token().unwrap();
    {
        let s = env.p11.open_rw_session(slots[0]).unwrap();
        let _ = s.login(UserType::User, Some(&pin("999999")));
        s.login(UserType::User, Some(&pin("123456"))).unwrap();
        let key = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(vec![1]),
            ])
            .unwrap()[0];
        s.sign(&Mechanism::Sha256RsaPkcs, key, b"traced").unwrap();
        // Keygen reads the PIN-protected management key from the card.
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(vec![
                    0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07,
                ]),
            ],
            &[Attribute::Token(true), Attribute::Id(vec![0x05])],
        )
        .unwrap();
        s.set_pin(&pin("123456"), &pin("13572468")).unwrap();
        s.logout().unwrap();
        s.login(UserType::So, Some(&pin("12345678"))).unwrap();
        s.set_pin(&pin("12345678"), &pin("87654321")).unwrap();
        s.logout().unwrap();
        let f = env.p11.open_rw_session(slots[1]).unwrap();
        f.login(UserType::So, Some(&pin(DEFAULT_MGMT))).unwrap();
        f.set_pin(&pin(DEFAULT_MGMT), &pin(NEW_MGMT)).unwrap();
    }
    let protected_key = hex::encode_upper(&env.state(0).management_key.key.0[..]);
    drop(env);
    std::env::remove_var("UKEY_LOG");
    std::env::remove_var("UKEY_LOG_FILE");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().filter(|l| l.contains(">>")).count() > 20,
        "APDUs were traced:\n{text}"
    );
    assert!(text.contains("redacted"), "secret-bearing APDUs are marked");
    for secret in ["123456", "999999", "13572468", "12345678", "87654321"] {
        let hexed = hex::encode_upper(secret);
        assert!(!text.contains(secret), "{secret} in the trace");
        assert!(
            !text.contains(&hexed),
            "{secret} (hex {hexed}) in the trace"
        );
        assert!(
            !text.replace(' ', "").contains(&hexed),
            "{secret} (spaced hex) in the trace"
        );
    }
    for key in [DEFAULT_MGMT, NEW_MGMT, protected_key.as_str()] {
        assert!(
            !text.replace(' ', "").to_uppercase().contains(key),
            "management key {key} in the trace"
        );
    }
}
