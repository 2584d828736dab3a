//! `ukey-skf`, the client layer of vendor SKF libraries, against
//! `libukey_skf_sim.so` on demo devices (`ukey-sim skf init --demo`): two
//! devices at once, exact PIN counts, wrong PINs counting down to a lock
//! and an unblock, the demo container's pairs, signatures OpenSSL verifies
//! against the certificate, keygen in a new container with a request the
//! CA and OpenSSL accept, certificate and envelope import, a pulled device.
//! PIN counters are read from the state files: listing never spends a try.
//! Each scenario runs in a process of its own (the library reads
//! `UKEY_SKF_SIM` once).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use ukey_skf::crypto::{ec_point, sm2_e, DEFAULT_ID};
use ukey_skf::*;
use ukey_tests::skf::{control, init, isolated, library, openssl, openssl_ok};
use ukey_tests::{require_tools, run_ok};

const DISTID: &str = "distid:1234567812345678";

fn load() -> Arc<Library> {
    Library::load(&library()).expect("load libukey_skf_sim.so")
}

fn name(s: &str) -> Name {
    Name::try_from(s).unwrap()
}

fn pin(s: &str) -> Pin {
    Pin::new(s.as_bytes()).unwrap()
}

fn app(lib: &Arc<Library>, dev: &str) -> (Device, Application) {
    let d = lib.connect(&name(dev)).expect("connect");
    let a = d
        .open_application(&name("UKEY_APP"))
        .expect("open UKEY_APP");
    (d, a)
}

/// (user, admin) tries left, as the device's state file has them.
fn saved_tries(state: &Path) -> (u64, u64) {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state).expect("state")).expect("json");
    let a = &v["applications"]["UKEY_APP"];
    (
        a["user_pin"]["remaining"].as_u64().expect("user"),
        a["admin_pin"]["remaining"].as_u64().expect("admin"),
    )
}

fn write(dir: &Path, file: &str, data: &[u8]) {
    std::fs::write(dir.join(file), data).expect("write");
}

fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).expect("pem")
}

/// r‖s as the DER OpenSSL verifies.
fn sig_der(rs: &[u8; 64]) -> Vec<u8> {
    let (mut r, mut s) = ([0u8; 64], [0u8; 64]);
    r[32..].copy_from_slice(&rs[..32]);
    s[32..].copy_from_slice(&rs[32..]);
    ukey_tests::skf::sig_der(&ukey_tests::skf::ECCSignatureBlob { r, s })
}

/// `openssl pkeyutl -verify -rawin -digest sm3` of `msg` against the key
/// of `cert_pem` (or a PUBLIC KEY PEM with `pubin`).
fn openssl_verifies(
    dir: &Path,
    key_pem: &str,
    pubin: bool,
    id: &str,
    msg: &[u8],
    rs: &[u8; 64],
) -> bool {
    write(dir, "key.pem", key_pem.as_bytes());
    write(dir, "msg.bin", msg);
    write(dir, "sig.der", &sig_der(rs));
    let distid = format!("distid:{id}");
    let mut args = vec!["pkeyutl", "-verify", "-inkey", "key.pem"];
    args.push(if pubin { "-pubin" } else { "-certin" });
    args.extend(["-rawin", "-digest", "sm3", "-pkeyopt", &distid]);
    args.extend(["-in", "msg.bin", "-sigfile", "sig.der"]);
    openssl_ok(dir, &args)
}

#[test]
fn two_devices_listed_described_with_exact_pin_counts_spending_no_try() {
    isolated(
        "two_devices_listed_described_with_exact_pin_counts_spending_no_try",
        &["a", "b"],
        |dir| {
            init(dir, "a", &["--demo", "--serial", "SKF00000001"]);
            init(dir, "b", &["--demo", "--serial", "SKF00000002"]);
        },
        |dir| {
            let lib = load();
            let caps = lib.capabilities();
            assert!(
                caps.missing().next().is_none(),
                "the soft token has every function: {caps:?}"
            );
            let devs: Vec<String> = lib
                .devices(true)
                .unwrap()
                .iter()
                .map(|n| n.to_string())
                .collect();
            assert_eq!(devs, ["a", "b"]);
            let before = (
                saved_tries(&dir.join("a.json")),
                saved_tries(&dir.join("b.json")),
            );
            assert_eq!(before, ((10, 10), (10, 10)));
            for (dev, serial) in [("a", "SKF00000001"), ("b", "SKF00000002")] {
                let (d, a) = app(&lib, dev);
                let info = d.info().unwrap();
                assert_eq!(info.serial, serial);
                assert!(
                    !info.label.is_empty() && !info.manufacturer.is_empty(),
                    "{info:?}"
                );
                assert_eq!(info.dev_auth_alg_id, ukey_skf_sys::SGD_SM4_ECB);
                assert_eq!(d.applications().unwrap(), [name("UKEY_APP")]);
                for kind in [PinKind::User, PinKind::Admin] {
                    assert_eq!(
                        a.pin_info(kind).unwrap(),
                        PinInfo {
                            max_retries: 10,
                            retries_left: 10,
                            default_pin: true
                        },
                        "{dev} {kind:?}"
                    );
                }
                let cs = a.containers().unwrap();
                assert_eq!(cs, [name("UKEY_CONTAINER")]);
                let c = a.open_container(&cs[0]).unwrap();
                assert_eq!(c.kind().unwrap(), ContainerType::Ecc);
                for u in [KeyUse::Signing, KeyUse::Encryption] {
                    assert!(c.public_key(u).unwrap().is_some(), "{dev} {u:?}");
                    assert!(c.certificate(u).unwrap().is_some(), "{dev} {u:?}");
                }
            }
            // Both devices connected at once, on two threads.
            let threads: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|dev| {
                    let lib = lib.clone();
                    std::thread::spawn(move || {
                        let (d, a) = app(&lib, dev);
                        for _ in 0..5 {
                            d.info().unwrap();
                            a.pin_info(PinKind::User).unwrap();
                        }
                        d.info().unwrap().serial
                    })
                })
                .collect();
            let serials: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(serials, ["SKF00000001", "SKF00000002"]);
            let after = (
                saved_tries(&dir.join("a.json")),
                saved_tries(&dir.join("b.json")),
            );
            assert_eq!(after, before, "listing and PIN info spend no try");
        },
    );
}

#[test]
fn wrong_pins_count_down_to_a_lock_and_the_admin_pin_unblocks() {
    isolated(
        "wrong_pins_count_down_to_a_lock_and_the_admin_pin_unblocks",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            let state = dir.join("demo.json");
            let lib = load();
            let (_d, a) = app(&lib, "demo");
            for left in (0..10).rev() {
                let e = a.verify_pin(PinKind::User, &mut pin("000000")).unwrap_err();
                assert!(
                    e == Error::PinIncorrect {
                        tries_left: Some(left)
                    } || (left == 0 && e == Error::PinLocked),
                    "{left}: {e:?}"
                );
                assert_eq!(saved_tries(&state).0, left as u64);
                let info = a.pin_info(PinKind::User).unwrap();
                assert_eq!((info.retries_left, info.max_retries), (left, 10));
            }
            assert!(a.pin_info(PinKind::User).unwrap().locked());
            assert_eq!(
                a.verify_pin(PinKind::User, &mut pin("123456")),
                Err(Error::PinLocked)
            );
            assert_eq!(saved_tries(&state), (0, 10));
            // A wrong admin PIN spends an admin try and says how many are left.
            assert_eq!(
                a.unblock_pin(&mut pin("87654321"), &mut pin("654321")),
                Err(Error::PinIncorrect {
                    tries_left: Some(9)
                })
            );
            assert_eq!(saved_tries(&state), (0, 9));
            a.unblock_pin(&mut pin("12345678"), &mut pin("654321"))
                .unwrap();
            let info = a.pin_info(PinKind::User).unwrap();
            assert_eq!((info.retries_left, info.default_pin), (10, false));
            a.verify_pin(PinKind::User, &mut pin("654321")).unwrap();
            a.change_pin(PinKind::User, &mut pin("654321"), &mut pin("111111"))
                .unwrap();
            assert_eq!(
                a.change_pin(PinKind::User, &mut pin("654321"), &mut pin("222222")),
                Err(Error::PinIncorrect {
                    tries_left: Some(9)
                })
            );
            a.verify_pin(PinKind::User, &mut pin("111111")).unwrap();
            assert_eq!(saved_tries(&state), (10, 10));
        },
    );
}

#[test]
fn the_demo_pairs_sign_and_openssl_verifies_against_the_certificate() {
    require_tools(&["openssl"]);
    isolated(
        "the_demo_pairs_sign_and_openssl_verifies_against_the_certificate",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            let lib = load();
            let (_d, a) = app(&lib, "demo");
            let c = a.open_container(&name("UKEY_CONTAINER")).unwrap();
            let cert = c.certificate(KeyUse::Signing).unwrap().unwrap();
            let cert_pem = pem("CERTIFICATE", &cert);
            write(dir, "sign.pem", cert_pem.as_bytes());
            // The certificate certifies the exported key; it chains to the demo CA.
            let key = c.public_key(KeyUse::Signing).unwrap().unwrap();
            let pub_pem = String::from_utf8(openssl(
                dir,
                &["x509", "-in", "sign.pem", "-noout", "-pubkey"],
            ))
            .unwrap();
            assert_eq!(pub_pem, ukey_tests::skf::spki_pem(&ec_point(&key)));
            assert!(openssl_ok(
                dir,
                &[
                    "verify",
                    "-CAfile",
                    "skf-demo-ca/ca.pem",
                    "-vfyopt",
                    DISTID,
                    "sign.pem"
                ]
            ));
            let enc = c.certificate(KeyUse::Encryption).unwrap().unwrap();
            write(dir, "enc.pem", pem("CERTIFICATE", &enc).as_bytes());
            let enc_pub = String::from_utf8(openssl(
                dir,
                &["x509", "-in", "enc.pem", "-noout", "-pubkey"],
            ))
            .unwrap();
            let enc_key = c.public_key(KeyUse::Encryption).unwrap().unwrap();
            assert_eq!(enc_pub, ukey_tests::skf::spki_pem(&ec_point(&enc_key)));
            assert_ne!(enc_key, key);

            let msg = b"an invoice signed through ukey-skf";
            let e = sm2_e(&key, DEFAULT_ID, msg).unwrap();
            assert_eq!(c.sign(&e), Err(Error::NotLoggedIn("SKF_ECCSignData")));
            a.verify_pin(PinKind::User, &mut pin("123456")).unwrap();
            let rs = c.sign(&e).unwrap();
            assert!(openssl_verifies(
                dir,
                &cert_pem,
                false,
                "1234567812345678",
                msg,
                &rs
            ));
            assert!(!openssl_verifies(
                dir,
                &cert_pem,
                false,
                "1234567812345678",
                b"another invoice",
                &rs
            ));
            // Another user ID: Z changes, and OpenSSL agrees only with that ID.
            let e = sm2_e(&key, b"alice@example.com", msg).unwrap();
            let rs = c.sign(&e).unwrap();
            assert!(openssl_verifies(
                dir,
                &cert_pem,
                false,
                "alice@example.com",
                msg,
                &rs
            ));
            assert!(!openssl_verifies(
                dir,
                &cert_pem,
                false,
                "1234567812345678",
                msg,
                &rs
            ));
        },
    );
}

#[test]
fn keygen_in_a_new_container_a_request_the_ca_accepts_and_imports() {
    require_tools(&["openssl"]);
    isolated(
        "keygen_in_a_new_container_a_request_the_ca_accepts_and_imports",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            let lib = load();
            let (_d, a) = app(&lib, "demo");
            let renew = name("UKEY_RENEW");
            assert_eq!(
                a.generate_in_new_container(&renew).err(),
                Some(Error::NotLoggedIn("SKF_CreateContainer"))
            );
            a.verify_pin(PinKind::User, &mut pin("123456")).unwrap();
            let (c, key) = a.generate_in_new_container(&renew).unwrap();
            assert_eq!(
                a.containers().unwrap(),
                [name("UKEY_CONTAINER"), renew.clone()]
            );
            assert_eq!(c.public_key(KeyUse::Signing).unwrap(), Some(key));
            assert_eq!(c.certificate(KeyUse::Signing).unwrap(), None);

            // A PKCS#10 request signed on the token (SM3withSM2, Z of the default ID).
            let mut spki =
                hex::decode("3059301306072a8648ce3d020106082a811ccf5501822d034200").unwrap();
            spki.extend_from_slice(&ec_point(&key));
            let sm3_with_sm2 = const_oid::ObjectIdentifier::new_unwrap(pkcs11::SM3_WITH_SM2_OID);
            let csr = ukey_tests::build_csr("CN=ukey-skf renewal", &spki, |info| {
                let rs = c.sign(&sm2_e(&key, DEFAULT_ID, info).unwrap()).unwrap();
                (sig_der(&rs), ukey_tests::sig_alg(sm3_with_sm2, false))
            });
            write(dir, "req.der", &csr);
            assert!(openssl_ok(
                dir,
                &[
                    "req", "-inform", "DER", "-in", "req.der", "-noout", "-verify", "-vfyopt",
                    DISTID
                ]
            ));
            run_ok(
                Command::new(ukey_tests::bin("ukey-sim"))
                    .current_dir(dir)
                    .args([
                        "skf",
                        "ca",
                        "issue",
                        "--ca-dir",
                        "skf-demo-ca",
                        "--csr",
                        "req.der",
                    ])
                    .args([
                        "--out",
                        "new.pem",
                        "--envelope",
                        "env.bin",
                        "--enc-out",
                        "newenc.pem",
                    ]),
            );
            let der_of = |f: &str| openssl(dir, &["x509", "-in", f, "-outform", "DER"]);
            let (new, new_enc) = (der_of("new.pem"), der_of("newenc.pem"));
            c.import_certificate(KeyUse::Signing, &new).unwrap();
            assert_eq!(c.certificate(KeyUse::Signing).unwrap(), Some(new));
            // The encryption pair arrives enveloped for the new signing key.
            let env = std::fs::read(dir.join("env.bin")).unwrap();
            assert!(
                c.import_enveloped_key(&env[..env.len() - 1]).is_err(),
                "a truncated envelope"
            );
            c.import_enveloped_key(&env).unwrap();
            c.import_certificate(KeyUse::Encryption, &new_enc).unwrap();
            let enc_pub = String::from_utf8(openssl(
                dir,
                &["x509", "-in", "newenc.pem", "-noout", "-pubkey"],
            ))
            .unwrap();
            let enc_key = c.public_key(KeyUse::Encryption).unwrap().unwrap();
            assert_eq!(enc_pub, ukey_tests::skf::spki_pem(&ec_point(&enc_key)));
            // The new key signs; OpenSSL verifies against the new certificate.
            let msg = b"signed with the renewed key";
            let rs = c.sign(&sm2_e(&key, DEFAULT_ID, msg).unwrap()).unwrap();
            let cert_pem = std::fs::read_to_string(dir.join("new.pem")).unwrap();
            assert!(openssl_verifies(
                dir,
                &cert_pem,
                false,
                "1234567812345678",
                msg,
                &rs
            ));
            // Not a certificate: refused before the library sees it.
            assert!(matches!(
                c.import_certificate(KeyUse::Signing, b"junk"),
                Err(Error::Argument(_))
            ));
            drop(c);
            a.delete_container(&renew).unwrap();
            assert_eq!(a.containers().unwrap(), [name("UKEY_CONTAINER")]);
            assert!(matches!(
                a.open_container(&renew),
                Err(Error::NotFound { .. })
            ));
        },
    );
}

#[test]
fn device_authentication_with_the_default_key() {
    isolated(
        "device_authentication_with_the_default_key",
        &["fresh"],
        |dir| {
            init(dir, "fresh", &[]);
        },
        |_| {
            let lib = load();
            let d = lib.connect(&name("fresh")).unwrap();
            assert!(d.applications().unwrap().is_empty());
            assert!(d.authenticate(b"0000000000000000").is_err(), "a wrong key");
            d.authenticate(b"1234567812345678").unwrap();
            assert_eq!(d.random(32).unwrap().len(), 32);
        },
    );
}

#[test]
fn a_pulled_device_answers_removed_and_the_event_says_so() {
    isolated(
        "a_pulled_device_answers_removed_and_the_event_says_so",
        &["a", "b"],
        |dir| {
            init(dir, "a", &["--demo"]);
            init(dir, "b", &["--demo"]);
        },
        |dir| {
            let lib = load();
            let (d, a) = app(&lib, "a");
            let c = a.open_container(&name("UKEY_CONTAINER")).unwrap();
            let (other, _) = app(&lib, "b");
            let tries = saved_tries(&dir.join("a.json"));
            control(&dir.join("a.json"), &["remove"]);
            assert_eq!(d.info(), Err(Error::Removed));
            assert_eq!(a.pin_info(PinKind::User), Err(Error::Removed));
            assert_eq!(c.sign(&[1; 32]), Err(Error::Removed));
            assert_eq!(lib.devices(true).unwrap(), [name("b")]);
            assert!(other.info().is_ok(), "the other device is untouched");
            // The event: the waiter runs on its own thread; a watchdog cancels it.
            let watchdog = {
                let lib = lib.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_secs(10));
                    let _ = lib.cancel_wait();
                })
            };
            let removed = loop {
                match lib.wait_for_event().unwrap() {
                    Some(ev) if ev.name == name("a") && !ev.inserted => break true,
                    Some(_) => continue,
                    None => break false,
                }
            };
            assert!(removed, "no removal event within 10 s");
            drop(watchdog);
            assert_eq!(saved_tries(&dir.join("a.json")), tries);
        },
    );
}

#[test]
fn a_library_that_does_not_load_and_one_with_only_the_required_functions() {
    require_tools(&["gcc"]);
    let dir = tempfile::tempdir().unwrap();
    match Library::load(&dir.path().join("missing.so")) {
        Err(Error::Load { reason, .. }) => assert!(reason.contains("missing.so"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A shared library that is not an SKF library.
    let c = dir.path().join("none.c");
    std::fs::write(&c, "int not_skf(void) { return 0; }\n").unwrap();
    run_ok(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(dir.path().join("none.so"))
            .arg(&c),
    );
    match Library::load(&dir.path().join("none.so")) {
        Err(Error::MissingFunction { function, .. }) => assert_eq!(function, "SKF_EnumDev"),
        other => panic!("{other:?}"),
    }
    // Exactly the required functions: loads, every capability missing.
    let mut src = String::from("typedef unsigned int U;\n");
    for f in Functions::REQUIRED {
        if *f != "SKF_EnumDev" {
            src.push_str(&format!("U {f}() {{ return 0x0A000003; }}\n"));
        }
    }
    src.push_str(
        "U SKF_EnumDev(int p, char *l, U *n) { if (l && *n >= 2) { l[0] = 0; l[1] = 0; } *n = 2; return 0; }\n",
    );
    std::fs::write(&c, src).unwrap();
    let so = dir.path().join("required.so");
    run_ok(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&c),
    );
    let lib = Library::load(&so).unwrap();
    assert_eq!(
        lib.capabilities().iter().count(),
        0,
        "{:?}",
        lib.capabilities()
    );
    assert!(lib.devices(true).unwrap().is_empty());
    assert_eq!(
        lib.wait_for_event(),
        Err(Error::NotSupported("device events"))
    );
    assert_eq!(
        lib.connect(&name("x")).err(),
        Some(Error::NotSupported("SKF_ConnectDev"))
    );
}
