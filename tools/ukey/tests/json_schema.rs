//! Every `--json` document `ukey` prints is valid against
//! docs/ukey-json.schema.json (draft 2020-12), checked by Python's
//! `jsonschema` (Debian python3-jsonschema): each command once, in
//! success and in the failures a program must tell apart (usage, wrong
//! PIN with the tries left, blocked PIN, removed token, nothing staged,
//! a refused certificate, bad input). The other test files check every
//! document they read the same way (`common::json`).

use std::path::Path;
use std::process::Command;

mod common;
use common::renewal::*;
use common::*;

/// Run `ukey --json ARGS` on `state`; check stdout against `$defs/def`
/// and return it.
fn doc(state: &Path, args: &[&str], def: &str, code: i32) -> serde_json::Value {
    let out = ukey()
        .arg("--sim")
        .arg(state)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let (so, se) = text(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {so}{se}");
    let v: serde_json::Value =
        serde_json::from_str(&so).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {so}{se}"));
    schema_check(Some(def), &v);
    schema_check(None, &v);
    assert_eq!(v["schema_version"], 1);
    v
}

fn error(state: &Path, args: &[&str], code: i32, kind: &str) -> serde_json::Value {
    let v = doc(state, args, "error", code);
    assert_eq!(v["kind"], kind, "{args:?}: {v:#}");
    assert_eq!(v["exit_code"], code);
    v
}

#[test]
fn the_schema_file_is_a_valid_draft_2020_12_schema() {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys,jsonschema; jsonschema.Draft202012Validator.check_schema(json.load(open(sys.argv[1])))",
        ])
        .arg(schema_path())
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_command_prints_json_the_schema_describes() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let pin = ["--pin", PIN];
    doc(&t, &["status"], "status", 0);
    let st = doc(&t, &["renew", "status"], "renew_status", 0);
    assert_eq!(st["renewals"][0]["phase"], "awaiting-certificate");
    doc(&t, &["readers"], "readers", 0);
    doc(&t, &["pin", "verify", "--pin", PIN], "secret_changed", 0);
    doc(&t, &["cert", "export", "--slot", "9c"], "cert_export", 0);
    doc(&t, &["csr", "--slot", "9e"], "csr", 0);
    doc(&t, &["selftest", "--pin", PIN], "selftest", 0);
    doc(&t, &["apdu", "00A4040005A000000308"], "apdu", 0);
    doc(
        &t,
        &["keygen", "--slot", "85", "--alg", "p256", "--pin", PIN],
        "keygen",
        0,
    );
    let exported = dir.path().join("9c.pem");
    doc(
        &t,
        &[
            "cert",
            "export",
            "--slot",
            "9c",
            "--out",
            exported.to_str().unwrap(),
        ],
        "cert_export",
        0,
    );
    doc(
        &t,
        &[
            "cert",
            "import",
            "--slot",
            "9c",
            exported.to_str().unwrap(),
            "--pin",
            PIN,
        ],
        "cert_import",
        0,
    );
    // The orphan key in 85 (no certificate, no renewal claims it) is reported.
    let st = doc(&t, &["renew", "status"], "renew_status", 0);
    assert_eq!(st["orphaned"][0]["slot"], "85", "{st:#}");
    doc(
        &t,
        &["renew", "clean", "--slot", "85", "--yes", "--pin", PIN],
        "renew_clean",
        0,
    );
    doc(
        &t,
        &[
            "renew",
            "install",
            template().cert.to_str().unwrap(),
            "--pin",
            PIN,
        ],
        "renew_install",
        0,
    );
    let st = doc(&t, &["renew", "status"], "renew_status", 0);
    assert!(st["renewals"].as_array().unwrap().is_empty());
    doc(
        &t,
        &["cert", "delete", "--slot", "9e", "--yes", "--pin", PIN],
        "cert_delete",
        0,
    );
    doc(&t, &["renew", "cancel", "--yes"], "renew_cancel", 0);
    doc(&t, &["renew", "clean", "--yes"], "renew_clean", 0);
    let dir2 = tempfile::tempdir().unwrap();
    let t2 = demo_token(dir2.path());
    let req = dir.path().join("req.pem");
    let r = doc(
        &t2,
        &[
            "renew",
            "request",
            "--slot",
            "9a",
            "--out",
            req.to_str().unwrap(),
            pin[0],
            pin[1],
        ],
        "renew_request",
        0,
    );
    assert_eq!(r["key"], "generated");
    doc(
        &t2,
        &["renew", "cancel", "--yes", "--pin", PIN],
        "renew_cancel",
        0,
    );
}

#[test]
fn errors_carry_a_stable_kind_and_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    error(&t, &["status", "--bogus"], 2, "usage");
    error(&t, &["renew", "request"], 2, "usage");
    error(&t, &["pin", "verify", "--pin", "123"], 1, "secret_invalid");
    let e = error(
        &t,
        &["pin", "verify", "--pin", "999999"],
        3,
        "pin_incorrect",
    );
    assert_eq!(e["tries_left"], 2);
    let e = error(
        &t,
        &[
            "renew",
            "install",
            template().cert.to_str().unwrap(),
            "--pin",
            "999999",
        ],
        3,
        "pin_incorrect",
    );
    assert_eq!(e["tries_left"], 1);
    let e = error(&t, &["pin", "verify", "--pin", "999999"], 4, "pin_locked");
    assert_eq!(e["tries_left"], 0);
    let dir2 = tempfile::tempdir().unwrap();
    let d = demo_token(dir2.path());
    error(
        &d,
        &[
            "renew",
            "install",
            template().cert.to_str().unwrap(),
            "--pin",
            PIN,
        ],
        1,
        "not_staged",
    );
    error(&t, &["renew", "cancel"], 1, "not_confirmed");
    // No token at all.
    let out = ukey().args(["--json", "status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema_check(Some("error"), &v);
    assert_eq!(v["kind"], "no_token", "{v:#}");
}

#[test]
fn a_token_pulled_in_the_middle_is_kind_token_removed() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let mut child = ukey()
        .arg("--sim")
        .arg(&t)
        .args(["--json", "--pin-stdin", "renew", "install"])
        .arg(&template().cert)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains(INSTALL_START) {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0);
    }
    ukey_sim::Control::RemoveAfter(4).send(&t).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{PIN}\n").as_bytes()).unwrap();
    drop(stdin);
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{rest}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    schema_check(Some("error"), &v);
    assert_eq!(v["kind"], "token_removed", "{v:#}");
    assert_eq!(v["exit_code"], 5);
}
