//! Renewal on a card without MOVE KEY (a simulated YubiKey 5.4): the new
//! pair stays in the retired slot it was generated in. `renew request`
//! says so before the PIN and asks (a decline spends no try and writes
//! nothing); after the install `status` shows the target slot superseded
//! by the retired slot, which carries the role; OpenSC's `pkcs11-tool`
//! signs with the new key through our module and `openssl` verifies it.
//! A YubiKey 5.7 is asked nothing (its path is `renew.rs`).
//!
//! Needs the release build of the whole workspace (the module must sit
//! next to the `ukey` binary).

use apdu::piv::Slot;
use std::path::{Path, PathBuf};
use std::process::Command;
use ukey_sim::ca::{self, LeafUse};
use ukey_sim::profile::Profile;

mod common;
use common::renewal::*;
use common::*;

/// The demo token (9A expiring in 25 days) on a card of `profile`.
fn token_on(dir: &Path, profile: Profile) -> PathBuf {
    let p = ukey_sim::demo::with_profile(&load(&template().demo), profile).unwrap();
    let path = dir.join("token.json");
    p.save(&path).unwrap();
    path
}

fn on(state: &Path) -> Command {
    let mut c = ukey();
    c.arg("--sim").arg(state);
    c
}

fn pin_tries(state: &Path) -> u8 {
    load(state).pin.tries_left
}

/// The demo CA's certificate for the request in `req`, as DER (also
/// written as PEM to `out`).
fn issue(req: &Path, out: &Path) -> Vec<u8> {
    let csr = ca::pem_decode(&std::fs::read_to_string(req).unwrap()).unwrap();
    let der = demo_ca()
        .issue_for_request(&csr, 365, LeafUse::Signing)
        .unwrap();
    std::fs::write(out, ca::pem_encode("CERTIFICATE", &der)).unwrap();
    der
}

fn status_json(state: &Path) -> serde_json::Value {
    let (so, _) = ok(on(state).args(["--json", "status"]));
    json(&so)["tokens"][0].clone()
}

fn slot<'a>(token: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    token["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == name)
        .unwrap_or_else(|| panic!("slot {name}: {token:#}"))
}

/// `renew request --slot 9a` on a terminal (`script` gives ukey one),
/// typing `input`; returns what the terminal showed.
fn request_on_a_terminal(state: &Path, req: &Path, input: &str) -> String {
    let cmd = format!(
        "{} --sim {} renew request --slot 9a --out {}",
        env!("CARGO_BIN_EXE_ukey"),
        state.display(),
        req.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '{input}' | script -qec '{cmd}' /dev/null"))
        .env("UKEY_NO_PCSC", "1")
        .env_remove("UKEY_SIM")
        .env_remove("UKEY_PIN")
        .output()
        .expect("script (util-linux) runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const WARNING: &str = "This token cannot move keys";

#[test]
fn the_warning_comes_before_the_pin_and_a_decline_spends_no_try_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = token_on(dir.path(), Profile::Yk54);
    let req = dir.path().join("req.pem");
    let before = std::fs::read(&t).unwrap();
    let shown = request_on_a_terminal(&t, &req, "no\\n");
    // What will happen, said before anything is asked.
    for says in [
        WARNING,
        "generated in retired slot 82 and stay there after the install",
        "slot 9a keeps its old key and certificate until they expire",
        "Firefox",
        "`pkcs11:id=%01`",
        "yubico-piv-tool -s 9a",
        "Windows smart-card logon",
        "Renew slot 9a of token 4242005",
    ] {
        assert!(shown.contains(says), "{says:?} not in:\n{shown}");
    }
    assert!(
        !shown.contains("PIN:"),
        "no PIN asked after a decline:\n{shown}"
    );
    assert!(shown.contains("nothing was asked or written"), "{shown}");
    assert_eq!(pin_tries(&t), 3, "no PIN try spent");
    assert_eq!(std::fs::read(&t).unwrap(), before, "nothing written");
    assert!(!req.exists());

    // Accepted: the PIN is asked after the warning, and the renewal staged.
    let shown = request_on_a_terminal(&t, &req, "yes\\n123456\\n");
    let warned = shown.find(WARNING).expect("the warning");
    let pin = shown.find("PIN:").unwrap_or_else(|| panic!("{shown}"));
    assert!(warned < pin, "the warning comes before the PIN:\n{shown}");
    assert!(shown.contains("Renewal of slot 9a staged"), "{shown}");
    assert!(load(&t).key(Slot::Retired(1)).is_some());
    assert_eq!(pin_tries(&t), 3);
}

#[test]
fn without_a_terminal_or_the_flag_the_request_is_refused_with_its_own_kind() {
    let dir = tempfile::tempdir().unwrap();
    let t = token_on(dir.path(), Profile::Yk54);
    let before = std::fs::read(&t).unwrap();
    // Even with the PIN on the command line, nothing is verified.
    let (so, se) = fails(
        on(&t).args(["--json", "--pin", PIN, "renew", "request", "--slot", "9a"]),
        1,
    );
    let e = json(&so);
    assert_eq!(e["kind"], "retired_slot_not_confirmed", "{e:#}");
    assert!(
        e["error"].as_str().unwrap().contains("--retired-slot-ok"),
        "{e:#}"
    );
    assert!(se.contains(WARNING), "the warning on stderr: {se}");
    assert_eq!(pin_tries(&t), 3);
    assert_eq!(std::fs::read(&t).unwrap(), before, "nothing written");
}

#[test]
fn a_card_with_move_key_is_asked_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = token_on(dir.path(), Profile::Yk57);
    let req = dir.path().join("req.pem");
    let (so, se) = ok(on(&t)
        .args([
            "--json", "--pin", PIN, "renew", "request", "--slot", "9a", "--out",
        ])
        .arg(&req));
    let r = json(&so);
    assert_eq!(r["stays_in_retired_slot"], false, "{r:#}");
    assert_eq!(r["current_slot"], "9a");
    assert!(!se.contains(WARNING), "{se}");
}

/// `renew request` (accepted with the flag), the CA, `renew install`:
/// returns the new certificate.
fn renew(dir: &Path, t: &Path, name: &str, extra: &[&str]) -> (serde_json::Value, Vec<u8>) {
    let req = dir.join(format!("{name}.pem"));
    let (so, _) = ok(on(t)
        .args(["--json", "--pin", PIN, "renew", "request", "--slot", "9a"])
        .args(["--retired-slot-ok"])
        .args(extra)
        .arg("--out")
        .arg(&req));
    let r = json(&so);
    let v = openssl(&["req", "-in", req.to_str().unwrap(), "-verify", "-noout"]);
    assert!(v.contains("verify OK"), "{v}");
    let cert = dir.join(format!("{name}-cert.pem"));
    let der = issue(&req, &cert);
    let (so, _) = ok(on(t)
        .args(["--json", "--pin", PIN, "renew", "install"])
        .arg(&cert));
    let i = json(&so);
    assert_eq!(i["promoted"], false, "{i:#}");
    assert_eq!(i["installed_in"], r["staged_slot"], "{i:#}");
    (r, der)
}

/// What `status` must show after a renewal left 9A's pair in `live`.
fn check_superseded(t: &Path, live: &str, new: &serde_json::Value) {
    let tok = status_json(t);
    let a = slot(&tok, "9a");
    assert_eq!(a["verdict"], "superseded", "{a:#}");
    assert_eq!(a["superseded_by"]["slot"], live, "{a:#}");
    assert!(a["renewal_of"].is_null());
    let r = slot(&tok, live);
    assert_eq!(r["role"], "PIV Authentication", "{r:#}");
    assert_eq!(r["renewal_of"]["slot"], "9a", "{r:#}");
    assert_eq!(r["verdict"], "ok", "its own verdict: {r:#}");
    assert!(r["superseded_by"].is_null());
    assert!(r["problem"].is_null(), "{r:#}");
    assert_eq!(r["certificate"]["serial"], new["serial"], "{r:#}");
    let (text, _) = ok(on(t).arg("status"));
    assert!(
        text.contains(&format!(
            "verdict  superseded by retired slot {live} (renewed "
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Slot {live} PIV Authentication (renewed pair of slot 9a, installed "
        )),
        "{text}"
    );
    assert!(!text.contains("RENEWABLE now"), "{text}");
}

fn cert_serial(der: &[u8]) -> serde_json::Value {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(der).unwrap();
    serde_json::json!({ "serial": hex::encode(c.tbs_certificate.serial_number.as_bytes()) })
}

#[test]
fn after_the_install_status_shows_9a_superseded_by_the_retired_slot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = token_on(d, Profile::Yk54);
    let old_9a = cert_der(&load(&t), Slot::Authentication).unwrap();
    let (r, new) = renew(d, &t, "req", &[]);
    assert_eq!(r["staged_slot"], "82");
    assert_eq!(r["stays_in_retired_slot"], true);
    let id = cert_serial(&new);
    // Every `ukey` run is a new process reading the card afresh (power-up).
    check_superseded(&t, "82", &id);
    check_superseded(&t, "82", &id);
    // The old pair is untouched in 9A; the new one is complete in 82.
    let p = load(&t);
    assert_eq!(cert_der(&p, Slot::Authentication), Some(old_9a));
    assert_eq!(cert_der(&p, Slot::Retired(1)), Some(new.clone()));
    // Nothing is staged any more, and nothing is left to clean up.
    let (so, _) = ok(on(&t).args(["--json", "renew", "status"]));
    let st = json(&so);
    assert!(st["renewals"].as_array().unwrap().is_empty(), "{st:#}");
    assert!(st["problem"].is_null(), "{st:#}");
    assert!(st["orphaned"].as_array().unwrap().is_empty(), "{st:#}");
    // The live pair cannot be deleted as left-over staging.
    let before = std::fs::read(&t).unwrap();
    let (_, se) = fails(
        on(&t).args(["--pin", PIN, "renew", "clean", "--slot", "82", "--yes"]),
        1,
    );
    assert!(se.contains("holds the renewed pair of slot 9a"), "{se}");
    let (so, _) = ok(on(&t).args(["renew", "clean", "--yes"]));
    assert!(so.contains("nothing to clean"), "{so}");
    assert_eq!(std::fs::read(&t).unwrap(), before);
    // Third parties: OpenSC's pkcs11-tool finds the new key by the retired
    // slot's CKA_ID through our module and signs; openssl verifies it with
    // the new certificate, which the CA's certificate verifies.
    third_party_signature(d, &t, Slot::Retired(1), &new);
    let v = openssl(&[
        "verify",
        "-CAfile",
        template().ca_dir.join("ca.pem").to_str().unwrap(),
        d.join("req-cert.pem").to_str().unwrap(),
    ]);
    assert!(v.contains(": OK"), "{v}");
    assert_eq!(pin_tries(&t), 3);
}

#[test]
fn the_superseded_role_renews_again_into_the_next_retired_slot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = token_on(d, Profile::Yk54);
    let (_, first) = renew(d, &t, "first", &[]);
    // The pair in 82 is not due yet: --force, as for any slot.
    let (r, second) = renew(d, &t, "second", &["--force"]);
    assert_eq!(r["current_slot"], "82", "{r:#}");
    assert_eq!(r["staged_slot"], "83", "{r:#}");
    assert_eq!(r["current_certificate_days_left"], 365, "{r:#}");
    check_superseded(&t, "83", &cert_serial(&second));
    let tok = status_json(&t);
    let older = slot(&tok, "82");
    assert_eq!(older["verdict"], "superseded", "{older:#}");
    assert_eq!(older["superseded_by"]["slot"], "83");
    assert_eq!(older["renewal_of"]["slot"], "9a");
    assert_eq!(
        older["certificate"]["serial"],
        cert_serial(&first)["serial"]
    );
    third_party_signature(d, &t, Slot::Retired(2), &second);
    // Both renewed pairs stay: the card cannot delete keys.
    let p = load(&t);
    assert_eq!(cert_der(&p, Slot::Retired(1)), Some(first));
    assert_eq!(cert_der(&p, Slot::Retired(2)), Some(second));
}

#[test]
fn an_unrecorded_certificate_in_a_retired_slot_supersedes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = token_on(d, Profile::Yk54);
    // Another tool puts a pair in 82 whose certificate has 9A's subject and
    // issuer and starts later: no record names it, so it renews nothing.
    ok(on(&t).args(["--pin", PIN, "keygen", "--slot", "82", "--alg", "p256"]));
    let req = d.join("req.pem");
    ok(on(&t)
        .args(["--pin", PIN, "csr", "--slot", "82", "--subject"])
        .arg("CN=Demo User,OU=Purchasing,O=Example Pharma Ltd,C=CN")
        .arg("--out")
        .arg(&req));
    let cert = d.join("cert.pem");
    issue(&req, &cert);
    ok(on(&t)
        .args(["--pin", PIN, "cert", "import", "--slot", "82"])
        .arg(&cert));
    let tok = status_json(&t);
    assert_eq!(slot(&tok, "9a")["verdict"], "renewable", "{tok:#}");
    assert!(slot(&tok, "9a")["superseded_by"].is_null());
    assert!(slot(&tok, "82")["renewal_of"].is_null());
}

#[test]
fn a_record_the_card_no_longer_agrees_with_supersedes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = token_on(d, Profile::Yk54);
    renew(d, &t, "req", &[]);
    // Another tool replaces the key in 82: the record no longer holds, 9A
    // is judged on its own again (and 82 is unusable, never ok).
    ok(on(&t).args([
        "--pin", PIN, "keygen", "--slot", "82", "--alg", "p256", "--force",
    ]));
    let tok = status_json(&t);
    assert_eq!(slot(&tok, "9a")["verdict"], "renewable", "{tok:#}");
    assert!(slot(&tok, "82")["renewal_of"].is_null(), "{tok:#}");
    assert_eq!(slot(&tok, "82")["verdict"], "unusable", "{tok:#}");
}
