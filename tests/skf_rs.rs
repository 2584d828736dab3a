//! A third-party SKF binding, the `skf-rs` crate (libloading, its own
//! declarations from `skf-api`), drives `libukey_skf_sim.so` through a
//! demo device: enumerate, connect, device information, PIN, container,
//! public key, signature, certificate, random numbers, plug events.

use ukey_tests::skf::{init, library, openssl, spki_pem};

#[test]
fn the_skf_rs_crate_drives_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let state = init(dir.path(), "demo", &["--demo"]);
    // The only test in this binary: nothing else reads the environment.
    std::env::set_var("UKEY_SKF_SIM", &state);
    let lib = skf_rs::LibLoader::of_library_file(library().to_str().unwrap()).unwrap();
    let engine = skf_rs::Engine::new(lib);
    let manager = engine.device_manager().unwrap();
    assert_eq!(manager.enumerate_device_name(true).unwrap(), ["demo"]);
    assert_eq!(
        manager.device_state("demo").unwrap(),
        skf_rs::DEV_STATE_PRESENT
    );
    let dev = manager.connect("demo").unwrap();
    let info = dev.info().unwrap();
    assert_eq!(info.dev_auth_alg_id, 0x401, "SGD_SM4_ECB");
    assert_eq!(info.label, "ukey SKF sim");
    assert_eq!(dev.gen_random(16).unwrap().len(), 16);
    assert_eq!(dev.enumerate_app_name().unwrap(), ["UKEY_APP"]);
    let app = dev.open_app("UKEY_APP").unwrap();
    let pin = app.pin_info(1).unwrap();
    assert_eq!(
        (pin.max_retry_count, pin.remain_retry_count, pin.default_pin),
        (10, 10, true)
    );
    assert!(app.verify_pin(1, "654321").is_err());
    assert_eq!(app.pin_info(1).unwrap().remain_retry_count, 9);
    app.verify_pin(1, "123456").unwrap();
    assert_eq!(app.enumerate_container_name().unwrap(), ["UKEY_CONTAINER"]);
    let con = app.open_container("UKEY_CONTAINER").unwrap();
    assert_eq!(con.get_type().unwrap(), 2);
    let blob = con.ecc_export_public_key(true).unwrap();
    assert_eq!(blob.len(), 132);
    let sig = con.ecc_sign(&[0x11; 32]).unwrap();
    assert!(sig.r[..32].iter().all(|&b| b == 0) && sig.r[32..].iter().any(|&b| b != 0));
    // The certificate the crate reads certifies the key it exported.
    let cert = con.export_certificate(true).unwrap();
    std::fs::write(dir.path().join("sign.der"), &cert).unwrap();
    let cert_pub = openssl(
        dir.path(),
        &[
            "x509", "-inform", "DER", "-in", "sign.der", "-noout", "-pubkey",
        ],
    );
    let mut point = vec![4u8];
    point.extend_from_slice(&blob[36..68]);
    point.extend_from_slice(&blob[100..132]);
    assert_eq!(String::from_utf8(cert_pub).unwrap(), spki_pem(&point));
    // A plug event seen through the crate.
    std::fs::remove_file(&state).unwrap();
    let ev = manager.wait_plug_event().unwrap().expect("an event");
    assert_eq!((ev.device_name.as_str(), ev.event), ("demo", 2));
}
