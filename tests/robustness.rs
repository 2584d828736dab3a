//! Robustness through the built module: pulling the card at every APDU of
//! every credential change, secrets never reaching the trace, many threads
//! on many tokens at once, and a C application that ends its session from
//! an `atexit` handler with logging on.

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::{Session, UserType};
use ukey_tests::*;

const DEFAULT_MGMT: &str = "010203040506070801020304050607080102030405060708";
const NEW_MGMT: &str = "0F0E0D0C0B0A09080706050403020100F0E0D0C0B0A09080";

fn padded(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.resize(8, 0xFF);
    v
}

fn session(env: &ModuleEnv) -> Session {
    env.p11
        .open_rw_session(env.p11.get_slots_with_token().unwrap()[0])
        .unwrap()
}

#[test]
fn pulling_the_card_during_a_pin_change() {
    for lose in [false, true] {
        let env = ModuleEnv::new(vec![Start::Demo]);
        let current = std::cell::RefCell::new("123456".to_string());
        let n = env.tear_every_apdu(
            lose,
            || session(&env),
            |s| {
                // Alternate between two PINs so every round changes something.
                let cur = current.borrow().clone();
                let next = if cur == "123456" { "654321" } else { "123456" };
                s.set_pin(&pin(&cur), &pin(next))
            },
            |done| {
                let st = env.state(0);
                assert_eq!(st.pin.tries_left, 3, "no try lost to the pulled card");
                let now = if st.pin.value.0[..] == padded("123456")[..] {
                    "123456"
                } else {
                    assert_eq!(
                        st.pin.value.0[..],
                        padded("654321")[..],
                        "old or new PIN, nothing else"
                    );
                    "654321"
                };
                if done {
                    assert_ne!(now, *current.borrow());
                }
                *current.borrow_mut() = now.to_string();
                let s = session(&env);
                s.login(UserType::User, Some(&pin(now))).unwrap();
            },
        );
        assert!(n >= 1, "a PIN change is at least one APDU");
    }
}

#[test]
fn pulling_the_card_during_a_puk_unblock() {
    for lose in [false, true] {
        let env = ModuleEnv::new(vec![Start::Demo]);
        let block = |env: &ModuleEnv| {
            let s = session(env);
            while env.state(0).pin.tries_left > 0 {
                let _ = s.login(UserType::User, Some(&pin("000000")));
            }
        };
        block(&env);
        env.tear_every_apdu(
            lose,
            || session(&env),
            |s| {
                s.login(UserType::So, Some(&pin("12345678")))?;
                s.init_pin(&pin("24680135"))
            },
            |done| {
                let st = env.state(0);
                assert_eq!(
                    st.puk.tries_left, 3,
                    "the PUK never loses a try to a pulled card"
                );
                if st.pin.tries_left == 0 {
                    assert!(!done, "unblocked means unblocked");
                } else {
                    assert_eq!(
                        (st.pin.tries_left, &st.pin.value.0[..]),
                        (3, &padded("24680135")[..])
                    );
                    let s = session(&env);
                    s.login(UserType::User, Some(&pin("24680135"))).unwrap();
                    s.logout().unwrap();
                    drop(s);
                    if !done {
                        // Set the stage again for the next round.
                        block(&env);
                    }
                }
            },
        );
    }
}

#[test]
fn pulling_the_card_during_a_management_key_change() {
    for lose in [false, true] {
        let env = ModuleEnv::new(vec![Start::Fresh]);
        let current = std::cell::RefCell::new(DEFAULT_MGMT.to_string());
        env.tear_every_apdu(
            lose,
            || session(&env),
            |s| {
                let cur = current.borrow().clone();
                let next = if cur == DEFAULT_MGMT {
                    NEW_MGMT
                } else {
                    DEFAULT_MGMT
                };
                s.login(UserType::So, Some(&pin(&cur)))?;
                s.set_pin(&pin(&cur), &pin(next))
            },
            |done| {
                let key = hex::encode_upper(&env.state(0).management_key.key.0[..]);
                assert!(
                    key == DEFAULT_MGMT || key == NEW_MGMT,
                    "old or new key: {key}"
                );
                if done {
                    assert_ne!(key, *current.borrow());
                }
                let s = session(&env);
                s.login(UserType::So, Some(&pin(&key))).unwrap();
                *current.borrow_mut() = key;
            },
        );
    }
}

/// Threads × sessions × tokens: sign, find, read attributes, log in and
/// out, poll slots — no errors but the ones the spec requires, no deadlock.
#[test]
fn threads_sessions_and_tokens_hammer_the_module() {
    let env = ModuleEnv::new(vec![Start::Demo, Start::Demo, Start::Demo]);
    let slots = env.p11.get_slots_with_token().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(4);
    let ops = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..12usize {
            let p11 = env.p11.clone();
            let slot = slots[t % slots.len()];
            let ops = &ops;
            scope.spawn(move || {
                let s = p11.open_rw_session(slot).unwrap();
                while std::time::Instant::now() < deadline {
                    match t % 4 {
                        // Signers keep the token logged in (shared login state).
                        0 | 1 => {
                            match s.login(UserType::User, Some(&pin("123456"))) {
                                Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                                Err(e) => panic!("login: {e:?}"),
                            }
                            let keys = s.find_objects(&[
                                Attribute::Class(ObjectClass::PRIVATE_KEY),
                                Attribute::Id(vec![4]),
                            ]);
                            let key = keys.unwrap()[0];
                            s.sign(&Mechanism::EcdsaSha256, key, b"stress").unwrap();
                        }
                        // Readers list and read attributes.
                        2 => {
                            for h in s
                                .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
                                .unwrap()
                            {
                                let _ = s
                                    .get_attributes(h, &[cryptoki::object::AttributeType::Value])
                                    .unwrap();
                            }
                            let _ = p11.get_token_info(slot).unwrap();
                        }
                        // Pollers: slot list, slot events, session info.
                        _ => {
                            let _ = p11.get_slots_with_token().unwrap();
                            let _ = p11.get_slot_event().unwrap();
                            let _ = s.get_session_info().unwrap();
                        }
                    }
                    ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let total = ops.into_inner();
    assert!(total > 100, "{total} operations in 4 s");
    for i in 0..3 {
        assert_eq!(env.tries(i), (3, 3));
    }
}

/// OpenSSL's cleanup closes PKCS#11 sessions from an `atexit` handler,
/// after the C library ran the thread-local destructors. With `UKEY_LOG`
/// on, the logout's APDU trace used to panic in tracing-subscriber's
/// thread-local buffer, and the FFI guard's own log line then aborted the
/// process (exit 134). A C program doing exactly that must exit 0, with the
/// module's lines logged from inside the handler.
#[test]
fn a_c_application_closing_its_session_at_exit_with_debug_logging_exits_cleanly() {
    require_tools(&["cc"]);
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("atexit_session");
    run_ok(
        std::process::Command::new("cc")
            .arg("-o")
            .arg(&program)
            .arg(repo_root().join("tests/c/atexit_session.c"))
            .arg("-ldl"),
    );
    let state = init_token(dir.path(), "card", &["--demo"]);
    for log_file in [false, true] {
        let log = dir.path().join("ukey.log");
        let mut cmd = std::process::Command::new(&program);
        cmd.arg(module())
            .arg("123456")
            .env("UKEY_SIM", &state)
            .env("UKEY_NO_PCSC", "1")
            .env("UKEY_LOG", "debug")
            .env_remove("UKEY_LOG_FILE");
        if log_file {
            cmd.env("UKEY_LOG_FILE", &log);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "log file: {log_file}\n{stderr}");
        assert!(
            stderr.contains("atexit: session closed, module finalized"),
            "{stderr}"
        );
        let text = if log_file {
            std::fs::read_to_string(&log).unwrap()
        } else {
            stderr
                .split("main: logged in")
                .nth(1)
                .unwrap_or("")
                .to_string()
        };
        assert!(
            text.contains("DEBUG apdu:"),
            "the module logged from the atexit handler (log file: {log_file}):\n{text}"
        );
    }
    assert_eq!(tries(&state), (3, 3));
}
