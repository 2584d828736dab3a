//! The `ukey` CLI through real PC/SC: pcscd + vsmartcard's vpcd +
//! `ukey-sim serve`, so the reader, ATR and transaction handling are the
//! ones a USB key gets.

use std::path::Path;
use ukey_tests::*;

/// `ukey ARGS` as a line of a `with_pcscd` script (PC/SC only).
fn ukey_line(args: &str) -> String {
    format!(
        "env -u UKEY_SIM -u UKEY_NO_PCSC -u UKEY_PIN {} {args}",
        bin("ukey").display()
    )
}

/// The JSON document printed by a script (stdout and stderr are merged).
fn json_in(out: &str) -> serde_json::Value {
    let start = out
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in:\n{out}"));
    let end = out
        .rfind('}')
        .unwrap_or_else(|| panic!("no JSON in:\n{out}"));
    serde_json::from_str(&out[start..=end]).unwrap_or_else(|e| panic!("{e}:\n{out}"))
}

fn slot<'a>(token: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    token["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == name)
        .unwrap_or_else(|| panic!("no slot {name}: {token:#}"))
}

fn demo(dir: &Path) -> std::path::PathBuf {
    init_token(dir, "card", &["--demo", "--serial", "5550001"])
}

#[test]
fn status_through_pcscd_reports_the_demo_token_and_spends_no_pin_try() {
    let dir = tempfile::tempdir().unwrap();
    let card = demo(dir.path());
    let out = with_pcscd(dir.path(), &[&card], &ukey_line("--json status"));
    let st = json_in(&out);
    let t = &st["tokens"][0];
    assert_eq!(st["tokens"].as_array().unwrap().len(), 1, "{st:#}");
    assert_eq!(t["source"], "pcsc");
    assert_eq!(t["reader"], "Virtual PCD 00 00");
    assert_eq!(t["serial"], 5_550_001);
    assert_eq!(t["pin"]["tries_left"], 3);
    assert_eq!(t["puk"]["tries_left"], 3);
    assert_eq!(slot(t, "9a")["verdict"], "renewable");
    assert_eq!(slot(t, "9d")["verdict"], "ok");
    assert_eq!(tries(&card), (3, 3), "status spent no PIN or PUK try");
    // pcscd's own log (-a) counts what went over the wire.
    let apdus = pcscd_apdu_count(dir.path());
    eprintln!("ukey status: {apdus} APDUs through pcscd");
    assert!((1..=40).contains(&apdus), "{apdus} APDUs");
}

#[test]
fn readers_through_pcscd_show_the_card_and_the_empty_reader() {
    let dir = tempfile::tempdir().unwrap();
    let card = demo(dir.path());
    let out = with_pcscd(dir.path(), &[&card], &ukey_line("--json readers"));
    let r = json_in(&out);
    assert_eq!(r["pcsc"]["available"], true, "{r:#}");
    let readers = r["readers"].as_array().unwrap();
    let with_card = readers
        .iter()
        .find(|x| x["name"] == "Virtual PCD 00 00")
        .unwrap();
    assert_eq!(with_card["card_present"], true);
    assert_eq!(with_card["piv"], true);
    assert_eq!(with_card["serial"], 5_550_001);
    assert!(with_card["atr"].as_str().unwrap().starts_with("3BFD"));
    let empty = readers
        .iter()
        .find(|x| x["name"] == "Virtual PCD 00 01")
        .unwrap();
    assert_eq!(empty["card_present"], false);
    assert_eq!(tries(&card), (3, 3));
}

#[test]
fn no_card_in_any_reader_is_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = with_pcscd(
        dir.path(),
        &[],
        &format!("{} || echo \"rc=$?\"", ukey_line("status")),
    );
    assert!(
        out.contains("ukey: no token found: no card in any reader (Virtual PCD 00 00"),
        "{out}"
    );
    assert!(out.contains("rc=1"), "{out}");
}

#[test]
fn pin_verify_through_pcscd_shows_tries_left() {
    let dir = tempfile::tempdir().unwrap();
    let card = demo(dir.path());
    let out = with_pcscd(
        dir.path(),
        &[&card],
        &format!("{} || echo \"rc=$?\"", ukey_line("pin verify --pin 999999")),
    );
    assert!(out.contains("wrong PIN, 2 tries left"), "{out}");
    assert!(out.contains("rc=3"), "{out}");
    assert_eq!(tries(&card), (2, 3));
}

#[test]
fn renewal_request_and_install_through_pcscd() {
    let dir = tempfile::tempdir().unwrap();
    let card = demo(dir.path());
    let before = ukey_sim::state::Persistent::load(&card).unwrap();
    let out = with_pcscd(
        dir.path(),
        &[&card],
        &format!(
            r#"{request}
               openssl req -in req.pem -verify -noout
               "$UKEY_SIM_BIN" ca issue --ca-dir demo-ca --csr req.pem --days 365 --out cert.pem
               openssl verify -CAfile demo-ca/ca.pem cert.pem
               {install}
               {status}"#,
            request = ukey_line("renew request --slot 9a --pin 123456 --out req.pem"),
            install = ukey_line("renew install cert.pem --pin 123456"),
            status = ukey_line("--json status"),
        ),
    );
    assert!(out.contains("Renewal of slot 9a staged"), "{out}");
    assert!(out.contains("verify OK"), "{out}");
    assert!(out.contains("cert.pem: OK"), "{out}");
    assert!(
        out.contains("Renewed: slot 9a holds the new key and certificate"),
        "{out}"
    );
    let st = json_in(&out[out.rfind("\n{").unwrap_or(0)..]);
    let t = &st["tokens"][0];
    assert_eq!(t["source"], "pcsc");
    assert_eq!(slot(t, "9a")["verdict"], "ok", "{t:#}");
    assert!(slot(t, "9a")["certificate"]["days_left"].as_i64().unwrap() >= 364);
    // The card itself: a new 9A key, the retired slot empty again.
    let after = ukey_sim::state::Persistent::load(&card).unwrap();
    assert_ne!(after.keys["9a"].private_key, before.keys["9a"].private_key);
    assert!(!after.keys.contains_key("82"));
    assert_eq!(tries(&card), (3, 3));
}
