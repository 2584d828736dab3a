//! `ukey renew request | install | status | cancel`: the real binary (and
//! through it the built PKCS#11 module) against simulated tokens, one test
//! per case, with third-party judges where there are any: `openssl req
//! -verify` for requests, `openssl verify` for issued certificates,
//! `openssl dgst -verify` for signatures, and the card's own memory (the
//! state file) for what was or was not written.
//!
//! Needs the release build of the whole workspace (the module must sit
//! next to the `ukey` binary): `cargo build --release --workspace`.

use apdu::piv::{Algorithm, ObjectId, PinPolicy, Slot};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;
use ukey_sim::ca::{self, Ca, LeafUse, DAY};
use ukey_sim::demo::{self, DemoOptions};
use ukey_sim::state::Persistent;
use ukey_sim::Control;

mod common;
use common::*;

use common::renewal::*;

fn request(state: &Path, out: &Path) -> (String, String) {
    ok(ukey()
        .arg("--sim")
        .arg(state)
        .args(["--pin", PIN, "renew", "request", "--slot", "9a", "--out"])
        .arg(out))
}

fn install(state: &Path, cert: &Path) -> Command {
    let mut c = ukey();
    c.arg("--sim")
        .arg(state)
        .args(["--pin", PIN, "renew", "install"])
        .arg(cert);
    c
}

fn renew_status(state: &Path) -> serde_json::Value {
    let (so, _) = ok(ukey()
        .arg("--sim")
        .arg(state)
        .args(["--json", "renew", "status"]));
    json(&so)
}

fn slot_status(state: &Path, name: &str) -> serde_json::Value {
    let (so, _) = ok(ukey().arg("--sim").arg(state).args(["--json", "status"]));
    json(&so)["tokens"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no slot {name}"))
}

// ---- request ----

#[test]
fn request_refuses_a_certificate_that_is_not_due_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path());
    let before = load(&t);
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin", PIN, "renew", "request", "--slot", "9c"]),
        1,
    );
    assert!(
        err.contains("slot 9c: the certificate is not due for renewal"),
        "{err}"
    );
    assert!(
        err.contains("700 days left") || err.contains("699 days left"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    let after = load(&t);
    assert_eq!(after.pin.tries_left, 3, "no PIN try spent");
    assert_eq!(after.keys.len(), before.keys.len(), "no key generated");
    assert!(!after.objects.contains_key(&RENEWAL_OBJECT));
}

#[test]
fn force_renews_a_certificate_not_yet_due_and_keeps_9c_pin_always() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path());
    let req = dir.path().join("req.pem");
    ok(ukey().arg("--sim").arg(&t).args([
        "--pin",
        PIN,
        "renew",
        "request",
        "--slot",
        "9c",
        "--force",
        "--out",
        req.to_str().unwrap(),
    ]));
    // The P-256 9C key is PIN-always: so is its successor (signing the
    // request needed the context-specific login the module asks for).
    let p = load(&t);
    let staged = p.key(Slot::Retired(1)).expect("the new key is in 82");
    assert_eq!(staged.algorithm(), Some(Algorithm::EccP256));
    assert_eq!(staged.pin_policy(), PinPolicy::Always);
    let v = openssl(&["req", "-in", req.to_str().unwrap(), "-verify", "-noout"]);
    assert!(v.contains("verify OK"), "{v}");
}

#[test]
fn request_refuses_an_expired_certificate_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path());
    let ca = demo_ca();
    change(&t, |p| {
        let spki = key_spki(p, Slot::Authentication).unwrap();
        let now = SystemTime::now();
        let der = ca
            .issue_leaf(
                &ca::parse_name("CN=Demo User,O=Example Pharma Ltd").unwrap(),
                &spki,
                now - 400 * DAY,
                now - 3 * DAY,
                LeafUse::Signing,
            )
            .unwrap();
        demo::put_certificate(p, Slot::Authentication, &der).unwrap();
    });
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin", PIN, "renew", "request", "--slot", "9a"]),
        1,
    );
    assert!(err.contains("slot 9a: the certificate expired on"), "{err}");
    assert!(
        err.contains("online renewal is no longer possible; the CA must issue a new certificate"),
        "{err}"
    );
    assert_eq!(load(&t).pin.tries_left, 3, "no PIN try spent");
    assert!(load(&t).key(Slot::Retired(1)).is_none());
}

#[test]
fn request_with_a_wrong_pin_shows_the_tries_left_and_stages_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path());
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin", "999999", "renew", "request", "--slot", "9a"]),
        3,
    );
    assert!(err.contains("ukey: wrong PIN, 2 tries left"), "{err}");
    let p = load(&t);
    assert_eq!(p.pin.tries_left, 2, "exactly the one try the user spent");
    assert!(p.key(Slot::Retired(1)).is_none());
    assert!(!p.objects.contains_key(&RENEWAL_OBJECT));
    // The next wrong PIN would block it: the CLI says so.
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin", "999999", "renew", "request", "--slot", "9a"]),
        3,
    );
    assert!(
        err.contains("1 try left") && err.contains("WARNING"),
        "{err}"
    );
}

#[test]
fn request_writes_a_csr_openssl_verifies_with_the_current_subject() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path());
    let req = dir.path().join("req.pem");
    let (so, _) = request(&t, &req);
    assert!(so.contains("new rsa2048 key in slot 82"), "{so}");
    let v = openssl(&[
        "req",
        "-in",
        req.to_str().unwrap(),
        "-verify",
        "-noout",
        "-subject",
    ]);
    assert!(v.contains("verify OK"), "{v}");
    assert!(
        v.contains("subject=C = CN, O = Example Pharma Ltd, OU = Purchasing, CN = Demo User"),
        "{v}"
    );
    // The request carries the new key, not the one in use.
    let req_key = openssl(&["req", "-in", req.to_str().unwrap(), "-pubkey", "-noout"]);
    let p = load(&t);
    let new_key = ca::pem_encode("PUBLIC KEY", &key_spki(&p, Slot::Retired(1)).unwrap());
    assert_eq!(req_key.trim(), new_key.trim());
}

#[test]
fn the_staged_key_lives_in_a_retired_slot_and_9a_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path());
    let before = load(&t);
    request(&t, &dir.path().join("req.pem"));
    let after = load(&t);
    assert_eq!(
        after.keys["9a"].private_key, before.keys["9a"].private_key,
        "the key in use is the same"
    );
    assert_eq!(
        after.objects[&ObjectId::CERT_9A.0],
        before.objects[&ObjectId::CERT_9A.0],
        "and so is its certificate"
    );
    assert!(
        after.key(Slot::Retired(1)).is_some(),
        "the new key is in 82"
    );
    assert!(
        after.objects.contains_key(&RENEWAL_OBJECT),
        "remembered on the token"
    );
    // The old pair still works for third-party software until the install.
    third_party_signature(
        dir.path(),
        &t,
        Slot::Authentication,
        &cert_der(&after, Slot::Authentication).unwrap(),
    );
    assert_eq!(slot_status(&t, "9a")["verdict"], "renewable");
}

#[test]
fn the_staging_is_visible_from_a_fresh_process() {
    let dir = tempfile::tempdir().unwrap();
    // "Another PC": a new process, nothing but the token.
    let t = staged_token(dir.path());
    let st = renew_status(&t);
    let r = &st["renewals"][0];
    assert_eq!(st["renewals"].as_array().unwrap().len(), 1, "{st:#}");
    assert_eq!(r["target"], "9a");
    assert_eq!(r["staged_slot"], "82");
    assert_eq!(r["algorithm"], "rsa2048");
    assert_eq!(r["phase"], "awaiting-certificate");
    assert_eq!(r["staged_key_present"], true);
    assert_eq!(r["certificate_written"], false);
    assert!(r["subject"].as_str().unwrap().contains("CN=Demo User"));
    assert_eq!(load(&t).pin.tries_left, 3, "status spends no PIN try");
    let (text, _) = ok(ukey().arg("--sim").arg(&t).args(["renew", "status"]));
    assert!(text.contains("Renewal of slot 9a"), "{text}");
    assert!(text.contains("ukey renew install CERT"), "{text}");
}

#[test]
fn running_request_again_writes_the_request_for_the_same_staged_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let before = load(&t);
    let req = dir.path().join("again.pem");
    let (so, err) = ok(ukey().arg("--sim").arg(&t).args([
        "--json",
        "--pin",
        PIN,
        "renew",
        "request",
        "--slot",
        "9a",
        "--out",
        req.to_str().unwrap(),
    ]));
    assert!(err.contains("writing its request again"), "{err}");
    assert_eq!(json(&so)["key"], "existing");
    let after = load(&t);
    assert_eq!(after.keys.len(), before.keys.len(), "no second key");
    let req_key = openssl(&["req", "-in", req.to_str().unwrap(), "-pubkey", "-noout"]);
    let staged = ca::pem_encode("PUBLIC KEY", &key_spki(&after, Slot::Retired(1)).unwrap());
    assert_eq!(req_key.trim(), staged.trim());
}

#[test]
fn renewal_needs_a_pin_protected_management_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("plain.json");
    let ca = demo_ca();
    let mut p = Persistent::factory(77);
    demo::provision(
        &mut p,
        &ca,
        &DemoOptions {
            keys: vec![(Slot::Authentication, Algorithm::EccP256)],
            protect_management_key: false,
            ..DemoOptions::default()
        },
    )
    .unwrap();
    p.save(&t).unwrap();
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin", PIN, "renew", "request", "--slot", "9a"]),
        1,
    );
    assert!(err.contains("no PIN-protected management key"), "{err}");
    assert_eq!(load(&t).pin.tries_left, 3);
}

// ---- install ----

#[test]
fn install_refuses_a_certificate_for_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    // A certificate from the same CA, same subject, for another key.
    let other = ukey_sim::keys::PrivateKey::generate(Algorithm::EccP256).unwrap();
    let now = SystemTime::now();
    let der = demo_ca()
        .issue_leaf(
            &ca::parse_name("CN=Demo User,OU=Purchasing,O=Example Pharma Ltd,C=CN").unwrap(),
            &other.spki_der(),
            now,
            now + 365 * DAY,
            LeafUse::Signing,
        )
        .unwrap();
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, ca::pem_encode("CERTIFICATE", &der)).unwrap();
    let before = std::fs::read(&t).unwrap();
    let (_, err) = fails(&mut install(&t, &wrong), 1);
    assert!(err.contains("wrong.pem is for another key"), "{err}");
    assert!(err.contains("9a (new key in slot 82 since"), "{err}");
    assert!(err.contains("Nothing was written"), "{err}");
    assert_eq!(std::fs::read(&t).unwrap(), before, "the card is unchanged");
}

/// A certificate for the staged key, issued by `ca` with the given times
/// and usage, written to `dir/NAME.pem`.
fn staged_cert(
    dir: &Path,
    t: &Path,
    name: &str,
    ca: &Ca,
    from: SystemTime,
    to: SystemTime,
    usage: LeafUse,
) -> PathBuf {
    let spki = key_spki(&load(t), Slot::Retired(1)).unwrap();
    let der = ca
        .issue_leaf(
            &ca::parse_name("CN=Demo User,OU=Purchasing,O=Example Pharma Ltd,C=CN").unwrap(),
            &spki,
            from,
            to,
            usage,
        )
        .unwrap();
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, ca::pem_encode("CERTIFICATE", &der)).unwrap();
    path
}

/// A certificate for the staged key made by openssl with the extensions
/// in `ext` (an openssl extension section), by the demo CA.
fn openssl_cert(dir: &Path, t: &Path, name: &str, ext: &str) -> PathBuf {
    let spki = key_spki(&load(t), Slot::Retired(1)).unwrap();
    let pubkey = dir.join(format!("{name}-pub.pem"));
    std::fs::write(&pubkey, ca::pem_encode("PUBLIC KEY", &spki)).unwrap();
    let extfile = dir.join(format!("{name}.cnf"));
    std::fs::write(&extfile, format!("[v3]\n{ext}\n")).unwrap();
    let out = dir.join(format!("{name}.pem"));
    let ca_dir = &template().ca_dir;
    openssl(&[
        "x509",
        "-new",
        "-force_pubkey",
        pubkey.to_str().unwrap(),
        "-subj",
        "/C=CN/O=Example Pharma Ltd/OU=Purchasing/CN=Demo User",
        "-CA",
        ca_dir.join("ca.pem").to_str().unwrap(),
        "-CAkey",
        ca_dir.join("ca.key").to_str().unwrap(),
        "-days",
        "365",
        "-extfile",
        extfile.to_str().unwrap(),
        "-extensions",
        "v3",
        "-out",
        out.to_str().unwrap(),
    ]);
    out
}

/// `renew install FILE` is refused with `reason` and writes nothing: the
/// state file is byte for byte the same.
fn refused(t: &Path, file: &Path, reason: &str, says: &str) {
    let before = std::fs::read(t).unwrap();
    let (so, err) = fails(install(t, file).arg("--json"), 1);
    assert!(err.contains(says), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    let e = json(&so);
    assert_eq!(e["kind"], "certificate_refused", "{e:#}");
    assert_eq!(e["reason"], reason, "{e:#}");
    assert_eq!(std::fs::read(t).unwrap(), before, "the token is unchanged");
}

#[test]
fn install_refuses_a_ca_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let cert = openssl_cert(
        dir.path(),
        &t,
        "ca",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyCertSign",
    );
    refused(
        &t,
        &cert,
        "ca",
        "it is a CA certificate (basicConstraints CA:TRUE)",
    );
}

#[test]
fn install_refuses_a_certificate_only_for_signing_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let cert = openssl_cert(
        dir.path(),
        &t,
        "certsign",
        "keyUsage=critical,keyCertSign,cRLSign",
    );
    refused(&t, &cert, "ca", "only for signing certificates");
}

#[test]
fn install_refuses_a_certificate_not_valid_yet() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let now = SystemTime::now();
    let cert = staged_cert(
        dir.path(),
        &t,
        "later",
        &demo_ca(),
        now + 30 * DAY,
        now + 400 * DAY,
        LeafUse::Signing,
    );
    refused(&t, &cert, "not_yet_valid", "is not valid before");
}

#[test]
fn install_refuses_an_expired_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let now = SystemTime::now();
    let cert = staged_cert(
        dir.path(),
        &t,
        "old",
        &demo_ca(),
        now - 400 * DAY,
        now - DAY,
        LeafUse::Signing,
    );
    refused(&t, &cert, "expired", "the certificate expired on");
}

#[test]
fn install_refuses_a_key_usage_the_slot_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let now = SystemTime::now();
    // keyEncipherment only: a decryption certificate, not one to authenticate with.
    let cert = staged_cert(
        dir.path(),
        &t,
        "enc",
        &demo_ca(),
        now,
        now + 365 * DAY,
        LeafUse::Encryption,
    );
    refused(&t, &cert, "key_usage", "does not allow what slot 9a is for");
}

#[test]
fn install_refuses_another_issuer_without_a_terminal_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let now = SystemTime::now();
    let other = Ca::new("CN=Unrelated CA,O=Elsewhere").unwrap();
    let cert = staged_cert(
        dir.path(),
        &t,
        "other",
        &other,
        now,
        now + 365 * DAY,
        LeafUse::Signing,
    );
    refused(&t, &cert, "issuer_changed", "another issuer");
    let (_, err) = fails(&mut install(&t, &cert), 1);
    assert!(err.contains("now: CN=ukey Demo CA"), "{err}");
    assert!(err.contains("new: CN=Unrelated CA"), "{err}");
    // With the flag it installs (and says so).
    let (so, err) = ok(install(&t, &cert).arg("--new-issuer-ok"));
    assert!(err.contains("another issuer"), "{err}");
    assert!(so.contains("Renewed: slot 9a"), "{so}");
}

#[test]
fn not_before_ok_keeps_the_old_pair_until_the_certificate_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let before = load(&t);
    let now = SystemTime::now();
    let cert = staged_cert(
        dir.path(),
        &t,
        "later",
        &demo_ca(),
        now + 30 * DAY,
        now + 400 * DAY,
        LeafUse::Signing,
    );
    let (so, _) = ok(install(&t, &cert).arg("--not-before-ok"));
    assert!(
        so.contains("slot 9a keeps the pair in use until then"),
        "{so}"
    );
    let p = load(&t);
    // The new pair is complete in 82; 9A is untouched; the renewal stays staged.
    assert_eq!(p.keys["9a"].private_key, before.keys["9a"].private_key);
    assert_eq!(
        p.objects[&ObjectId::CERT_9A.0],
        before.objects[&ObjectId::CERT_9A.0]
    );
    let staged_cert_der = cert_der(&p, Slot::Retired(1)).unwrap();
    assert_eq!(
        cert_spki(&staged_cert_der),
        key_spki(&p, Slot::Retired(1)).unwrap()
    );
    assert!(p.objects.contains_key(&RENEWAL_OBJECT));
    let a = slot_status(&t, "9a");
    assert_eq!(a["verdict"], "renewable", "{a:#}");
    assert!(
        a["renewal"]["next"]
            .as_str()
            .unwrap()
            .contains("valid from"),
        "{a:#}"
    );
    // Run again before the date: still held, nothing more written.
    let bytes = std::fs::read(&t).unwrap();
    ok(install(&t, &cert).arg("--not-before-ok"));
    assert_eq!(std::fs::read(&t).unwrap(), bytes);
}

#[test]
fn install_of_dev_zero_ends_at_once_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let before = std::fs::read(&t).unwrap();
    let start = std::time::Instant::now();
    let out = install(&t, Path::new("/dev/zero"))
        .arg("--json")
        .output()
        .unwrap();
    let took = start.elapsed();
    let (so, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/dev/zero: larger than 1024 KiB: not a certificate file"),
        "{err}"
    );
    assert_eq!(json(&so)["kind"], "bad_input");
    assert!(took.as_secs_f64() < 1.0, "took {took:?}");
    assert_eq!(std::fs::read(&t).unwrap(), before);
    // Bounded memory: the process never held more than the cap (+ the program).
    let rss = max_rss_kib(&mut install(&t, Path::new("/dev/zero")));
    assert!(rss < 64 * 1024, "peak memory {rss} KiB");
    let (_, err) = fails(
        ukey().arg("--sim").arg(&t).args([
            "--pin",
            PIN,
            "cert",
            "import",
            "--slot",
            "9a",
            "/dev/zero",
        ]),
        1,
    );
    assert!(err.contains("larger than 1024 KiB"), "{err}");
}

/// Peak resident memory of a command, from GNU time's `%M` (KiB).
fn max_rss_kib(cmd: &mut Command) -> u64 {
    let mut t = Command::new("/usr/bin/time");
    t.arg("-f")
        .arg("maxrss=%M")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    let out = t.output().expect("/usr/bin/time (package time) runs");
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| l.strip_prefix("maxrss="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {err}"))
}

#[test]
fn install_into_a_pipe_that_closes_or_a_closed_stdout_never_panics() {
    // `ukey renew install ... 2>&1 | head -1`: the reader goes away after
    // the first line; the install goes on to its end.
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let cmd = format!(
        "{} --sim {} --pin {PIN} renew install {} 2>&1 | head -1; echo \"rc=${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_ukey"),
        t.display(),
        template().cert.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&cmd)
        .env("UKEY_NO_PCSC", "1")
        .output()
        .unwrap();
    let (so, se) = text(&out);
    assert!(so.contains("Installing the certificate"), "{so}{se}");
    assert!(so.contains("rc=0"), "finished, exit 0: {so}{se}");
    let p = load(&t);
    assert_eq!(cert_der(&p, Slot::Authentication), Some(new_cert_der()));
    assert_eq!(
        key_spki(&p, Slot::Authentication),
        Some(cert_spki(&new_cert_der()))
    );
    assert!(!p.objects.contains_key(&RENEWAL_OBJECT));
    // Stdout closed, and stderr too: no panic, no abort, the token renewed.
    for redirect in [">&-", ">&- 2>&-"] {
        let dir = tempfile::tempdir().unwrap();
        let t = staged_token(dir.path());
        let cmd = format!(
            "{} --sim {} --pin {PIN} renew install {} {redirect}; echo \"rc=$?\" >&2",
            env!("CARGO_BIN_EXE_ukey"),
            t.display(),
            template().cert.display()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&cmd)
            .env("UKEY_NO_PCSC", "1")
            .output()
            .unwrap();
        let (_, se) = text(&out);
        assert!(se.contains("rc=0"), "{redirect}: {se}");
        assert!(
            !se.contains("panicked") && !se.contains("internal error"),
            "{se}"
        );
        let p = load(&t);
        assert_eq!(
            cert_der(&p, Slot::Authentication),
            Some(new_cert_der()),
            "{redirect}"
        );
        assert_eq!(
            key_spki(&p, Slot::Authentication),
            Some(cert_spki(&new_cert_der()))
        );
    }
}

#[test]
fn install_completes_and_status_shows_9a_ok_with_the_new_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let staged_key = key_spki(&load(&t), Slot::Retired(1)).unwrap();
    let cert = &template().cert;
    let ca_pem = template().ca_dir.join("ca.pem");
    let v = openssl(&[
        "verify",
        "-CAfile",
        ca_pem.to_str().unwrap(),
        cert.to_str().unwrap(),
    ]);
    assert!(v.contains(": OK"), "{v}");
    let (so, err) = ok(&mut install(&t, cert));
    assert!(err.contains(INSTALL_START), "{err}");
    assert!(
        so.contains("Renewed: slot 9a holds the new key and certificate"),
        "{so}"
    );
    assert!(so.contains("365 days left"), "{so}");
    let p = load(&t);
    let new = new_cert_der();
    assert_eq!(cert_der(&p, Slot::Authentication), Some(new.clone()));
    assert_eq!(key_spki(&p, Slot::Authentication), Some(staged_key));
    assert_eq!(cert_spki(&new), key_spki(&p, Slot::Authentication).unwrap());
    assert!(
        p.key(Slot::Retired(1)).is_none(),
        "the retired slot is empty"
    );
    assert!(cert_der(&p, Slot::Retired(1)).is_none());
    assert!(
        !p.objects.contains_key(&RENEWAL_OBJECT),
        "the marker is gone"
    );
    assert_eq!(p.pin.tries_left, 3);
    let a = slot_status(&t, "9a");
    assert_eq!(a["verdict"], "ok", "{a:#}");
    let days = a["certificate"]["days_left"].as_i64().unwrap();
    assert!((364..=365).contains(&days), "{days}");
    assert_eq!(a["key_matches_certificate"], true);
    third_party_signature(dir.path(), &t, Slot::Authentication, &new);
    let st = renew_status(&t);
    assert!(st["renewals"].as_array().unwrap().is_empty());
    // Running it again changes nothing and says so.
    let (so, _) = ok(&mut install(&t, cert));
    assert!(so.contains("already installed in slot 9a"), "{so}");
}

#[test]
fn install_takes_a_p7b_with_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let p7b = dir.path().join("chain.p7b");
    let ca_pem = template().ca_dir.join("ca.pem");
    openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        ca_pem.to_str().unwrap(),
        "-certfile",
        template().cert.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        p7b.to_str().unwrap(),
    ]);
    let (so, _) = ok(install(&t, &p7b).arg("--json"));
    let r = json(&so);
    assert_eq!(r["promoted"], true, "{r:#}");
    assert_eq!(r["installed_in"], "9a");
    assert_eq!(
        r["steps"],
        serde_json::json!([
            "certificate-into-staged-slot",
            "claim-renewal",
            "certificate-into-target-slot",
            "delete-old-key",
            "move-key",
            "clear-staged-slot",
            "clear-marker"
        ])
    );
    assert_eq!(r["verdict"], "ok");
    assert_eq!(
        r["status"]["slots"][0]["slot"], "9a",
        "the new status is in the report"
    );
    assert_eq!(r["status"]["slots"][0]["verdict"], "ok");
    assert_eq!(
        cert_der(&load(&t), Slot::Authentication),
        Some(new_cert_der()),
        "the leaf for the staged key, not the CA's certificate"
    );
}

#[test]
fn a_token_without_move_key_keeps_the_renewed_pair_in_the_retired_slot() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    // A YubiKey 5.4: no MOVE KEY (the card answers 6D00; its version
    // number alone would decide nothing).
    change(&t, |p| {
        p.profile = ukey_sim::profile::Profile::Yk54;
        p.version = [5, 4, 3];
    });
    let before = load(&t);
    let (so, _) = ok(&mut install(&t, &template().cert));
    assert!(so.contains("this token cannot move keys"), "{so}");
    assert!(so.contains("stay in the retired slot 82"), "{so}");
    let p = load(&t);
    assert_eq!(cert_der(&p, Slot::Retired(1)), Some(new_cert_der()));
    assert_eq!(p.keys["9a"].private_key, before.keys["9a"].private_key);
    assert_eq!(
        p.objects[&ObjectId::CERT_9A.0],
        before.objects[&ObjectId::CERT_9A.0]
    );
    // Nothing is staged any more; the marker keeps the record that 82
    // holds 9A's role, which status shows (tests/renew_retired.rs).
    assert!(renew_status(&t)["renewals"].as_array().unwrap().is_empty());
    assert_eq!(slot_status(&t, "9a")["superseded_by"]["slot"], "82");
}

/// Run `renew install` and pull the card per `control`, sent once the
/// process has opened the card (it ignores control commands older than
/// that) and before it sends the first APDU after the PIN.
fn install_pulled(state: &Path, cert: &Path, control: Control) -> (Option<i32>, String) {
    let mut child = ukey()
        .arg("--sim")
        .arg(state)
        .args(["--pin-stdin", "renew", "install"])
        .arg(cert)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("install ended before asking for the PIN:\n{seen}");
        }
        seen += &line;
        if line.contains(INSTALL_START) {
            break;
        }
    }
    control.send(state).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{PIN}\n").as_bytes()).unwrap();
    drop(stdin);
    err.read_to_string(&mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    seen += &String::from_utf8_lossy(&out.stdout);
    (out.status.code(), seen)
}

/// A complete pair on the card: the key in `slot` signs (through the card,
/// after a PIN verification), and its certificate's public key verifies it.
fn signs_with_its_certificate(state: &Path, slot: Slot, cert: &[u8]) -> bool {
    use apdu::piv::Pin;
    use rsa::pkcs8::DecodePublicKey;
    use sha2::Digest;
    let reader = ukey_sim::SimReader::open(state).unwrap();
    let mut card = apdu::PivCard::new(reader.connect().unwrap());
    let msg = b"a complete pair";
    let digest = sha2::Sha256::digest(msg);
    let mut t = rsa::Pkcs1v15Sign::new::<sha2::Sha256>().prefix.into_vec();
    t.extend_from_slice(&digest);
    let em = apdu::piv::pkcs1_sign_input(256, &t).unwrap();
    let sig = card
        .transaction(|s| {
            s.select()?;
            s.verify_pin(&Pin::new(PIN.as_bytes()).unwrap())?;
            s.sign_raw(slot, Algorithm::Rsa2048, &em)
        })
        .unwrap();
    let key = rsa::RsaPublicKey::from_public_key_der(&cert_spki(cert)).unwrap();
    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &sig)
        .is_ok()
}

/// After a pull: the card memory is intact and a complete pair is usable:
/// the old one in 9A, or the new one in 82 or 9A.
fn check_consistent(state: &Path, old: &[u8], new: &[u8], n: u32) {
    let p = Persistent::load(state).expect("the state file is a valid card memory");
    let mut usable = Vec::new();
    for slot in [Slot::Authentication, Slot::Retired(1)] {
        if let (Some(key), Some(cert)) = (key_spki(&p, slot), cert_der(&p, slot)) {
            if cert_spki(&cert) == key && (cert == old || cert == new) {
                usable.push((slot, cert));
            }
        }
    }
    let (slot, cert) = usable
        .first()
        .unwrap_or_else(|| panic!("pulled at APDU {n}: no complete key + certificate pair"));
    assert!(
        signs_with_its_certificate(state, *slot, cert),
        "pulled at APDU {n}: the pair in {slot} does not sign"
    );
    assert_eq!(p.pin.tries_left, 3, "pulled at APDU {n}: no PIN try lost");
}

fn pull_at_every_apdu(lose_response: bool) -> u32 {
    let old = cert_der(&load(&template().staged), Slot::Authentication).unwrap();
    let new = new_cert_der();
    let cert = &template().cert;
    for n in 0..100u32 {
        let dir = tempfile::tempdir().unwrap();
        let t = staged_token(dir.path());
        let control = if lose_response {
            Control::RemoveAfterProcessing(n)
        } else {
            Control::RemoveAfter(n)
        };
        let (code, out) = install_pulled(&t, cert, control);
        check_consistent(&t, &old, &new, n);
        if code == Some(0) {
            assert!(out.contains("Renewed: slot 9a"), "{out}");
            return n;
        }
        assert_eq!(code, Some(5), "pulled at APDU {n}: exit 5 (removed)\n{out}");
        assert!(out.contains("the token was removed"), "{out}");
        assert!(out.contains("run `ukey renew install"), "{out}");
        // Running the same command again finishes the install.
        ok(&mut install(&t, cert));
        let p = load(&t);
        assert_eq!(
            cert_der(&p, Slot::Authentication),
            Some(new.clone()),
            "n={n}"
        );
        assert_eq!(
            key_spki(&p, Slot::Authentication),
            Some(cert_spki(&new)),
            "n={n}"
        );
        assert!(p.key(Slot::Retired(1)).is_none(), "n={n}");
        assert!(cert_der(&p, Slot::Retired(1)).is_none(), "n={n}");
        assert!(!p.objects.contains_key(&RENEWAL_OBJECT), "n={n}");
        assert!(signs_with_its_certificate(&t, Slot::Authentication, &new));
    }
    panic!("the install never completed");
}

#[test]
fn pulling_the_token_at_every_apdu_of_the_install_then_rerunning_completes_it() {
    let n = pull_at_every_apdu(false);
    eprintln!("install: pulled before each of its {n} APDUs");
    assert!(n >= 10, "the install took {n} APDUs");
}

#[test]
fn pulling_the_token_right_after_every_apdu_of_the_install_answer_lost() {
    let n = pull_at_every_apdu(true);
    eprintln!("install: pulled after each of its {n} APDUs, answer lost");
    assert!(n >= 10, "the install took {n} APDUs");
}

// ---- cancel ----

#[test]
fn cancel_deletes_the_staged_key_and_marker_and_never_the_key_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let before = load(&t);
    let bytes = std::fs::read(&t).unwrap();
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin", PIN, "renew", "cancel"]),
        1,
    );
    assert!(err.contains("not confirmed"), "{err}");
    assert_eq!(
        std::fs::read(&t).unwrap(),
        bytes,
        "nothing without confirmation"
    );
    let (so, _) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["--pin", PIN, "renew", "cancel", "--yes"]));
    assert!(so.contains("Renewal of slot 9a cancelled"), "{so}");
    let p = load(&t);
    assert!(
        p.key(Slot::Retired(1)).is_none(),
        "the staged key is deleted"
    );
    assert!(!p.objects.contains_key(&RENEWAL_OBJECT), "and the marker");
    assert_eq!(p.keys["9a"].private_key, before.keys["9a"].private_key);
    assert_eq!(
        p.objects[&ObjectId::CERT_9A.0],
        before.objects[&ObjectId::CERT_9A.0]
    );
    assert_eq!(slot_status(&t, "9a")["verdict"], "renewable");
    // Nothing left to install.
    let (_, err) = fails(&mut install(&t, &template().cert), 1);
    assert!(err.contains("no renewal is staged"), "{err}");
}

// ---- several tokens ----

#[test]
fn two_tokens_present_and_no_choice_lists_them_and_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = copy(&template().demo, dir.path(), "a");
    let b = dir.path().join("b.json");
    Persistent::factory(777_005).save(&b).unwrap();
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&a)
            .arg("--sim")
            .arg(&b)
            .args(["--pin", PIN, "renew", "request", "--slot", "9a"]),
        1,
    );
    assert!(err.contains("2 tokens are present"), "{err}");
    assert!(err.contains(&format!("serial {SERIAL}")), "{err}");
    assert!(load(&a).key(Slot::Retired(1)).is_none());
}

#[test]
fn two_tokens_present_on_a_terminal_asks_which() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    Persistent::factory(777_006).save(&a).unwrap();
    let b = copy(&template().demo, dir.path(), "b");
    let req = dir.path().join("req.pem");
    // `script` gives ukey a terminal; the answer "2" picks the demo token.
    let cmd = format!(
        "{} --sim {} --sim {} --pin {PIN} renew request --slot 9a --out {}",
        env!("CARGO_BIN_EXE_ukey"),
        a.display(),
        b.display(),
        req.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '2\\n' | script -qec '{cmd}' /dev/null"))
        .env("UKEY_NO_PCSC", "1")
        .env_remove("UKEY_SIM")
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Which token? [1-2]"), "{text}");
    assert!(text.contains("serial 777006"), "{text}");
    assert!(text.contains("Renewal of slot 9a staged"), "{text}");
    assert!(load(&b).key(Slot::Retired(1)).is_some(), "the chosen token");
    assert!(
        load(&a).keys.keys().all(|k| k == "f9"),
        "the other is untouched"
    );
}

// ---- an interrupted request ----

/// A token whose 9A key is P-256 (fast to generate again and again).
fn p256_token(dir: &Path) -> PathBuf {
    static T: OnceLock<Persistent> = OnceLock::new();
    let p = T.get_or_init(|| {
        let mut p = Persistent::factory(SERIAL + 1);
        demo::provision(
            &mut p,
            &demo_ca(),
            &DemoOptions {
                keys: vec![(Slot::Authentication, Algorithm::EccP256)],
                ..DemoOptions::default()
            },
        )
        .unwrap();
        p
    });
    let path = dir.join("p256.json");
    p.save(&path).unwrap();
    path
}

/// Retired slots holding a key.
fn retired_keys(p: &Persistent) -> Vec<Slot> {
    Slot::retired().filter(|s| p.key(*s).is_some()).collect()
}

#[test]
fn pulling_the_token_at_every_apdu_of_a_request_then_rerunning_stages_one_key() {
    let mut covered = 0;
    for n in 0..60u32 {
        let dir = tempfile::tempdir().unwrap();
        let t = p256_token(dir.path());
        let before = load(&t);
        let req = dir.path().join("req.pem");
        let mut child = ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin-stdin", "renew", "request", "--slot", "9a", "--out"])
            .arg(&req)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("stay until the install") {
            let mut line = String::new();
            assert!(err.read_line(&mut line).unwrap() > 0, "{seen}");
            seen += &line;
        }
        Control::RemoveAfter(n).send(&t).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{PIN}\n").as_bytes()).unwrap();
        drop(stdin);
        err.read_to_string(&mut seen).unwrap();
        let status = child.wait().unwrap();
        // At every point: the key in use and its certificate are untouched,
        // and at most one new key exists.
        let p = load(&t);
        assert_eq!(
            p.keys["9a"].private_key, before.keys["9a"].private_key,
            "n={n}"
        );
        assert_eq!(
            p.objects[&ObjectId::CERT_9A.0],
            before.objects[&ObjectId::CERT_9A.0],
            "n={n}"
        );
        assert!(retired_keys(&p).len() <= 1, "n={n}");
        if status.success() {
            covered = n;
            break;
        }
        assert_eq!(status.code(), Some(5), "n={n}: {seen}");
        // Run again: the reserved slot is reused, one key is staged.
        ok(ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin", PIN, "renew", "request", "--slot", "9a", "--out"])
            .arg(&req));
        let p = load(&t);
        assert_eq!(retired_keys(&p), vec![Slot::Retired(1)], "n={n}");
        let st = renew_status(&t);
        assert_eq!(st["renewals"][0]["phase"], "awaiting-certificate", "n={n}");
        let req_key = openssl(&["req", "-in", req.to_str().unwrap(), "-pubkey", "-noout"]);
        let staged = ca::pem_encode("PUBLIC KEY", &key_spki(&p, Slot::Retired(1)).unwrap());
        assert_eq!(req_key.trim(), staged.trim(), "n={n}");
    }
    eprintln!("request: pulled before each of its {covered} APDUs");
    assert!(covered >= 5, "{covered}");
}

#[test]
fn trace_shows_the_modules_apdus_without_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let (_, err) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["--trace", "--pin", PIN, "renew", "request", "--slot", "9a"])
        .arg("--out")
        .arg(dir.path().join("req.pem")));
    assert!(err.contains("0020008008 [8 bytes redacted]"), "{err}");
    assert!(!err.contains("313233343536"), "the PIN never shows: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "no terminal colours in a saved trace"
    );
}

#[test]
fn a_missing_module_is_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["renew", "status"])
            .env("UKEY_MODULE", dir.path().join("nowhere.so")),
        1,
    );
    assert!(
        err.contains("UKEY_MODULE") && err.contains("nowhere.so"),
        "{err}"
    );
    assert!(err.contains("no such file"), "{err}");
}

/// A closed terminal (SIGHUP) in the middle of an install: it stops at the
/// next point between two safe steps with exit 6 (never killed mid-way),
/// a complete pair on the token, and running it again finishes.
#[test]
fn a_hangup_during_the_install_stops_between_safe_steps() {
    let old = cert_der(&load(&template().staged), Slot::Authentication).unwrap();
    let new = new_cert_der();
    let mut stopped = 0;
    for attempt in 0..30 {
        let dir = tempfile::tempdir().unwrap();
        let t = staged_token(dir.path());
        let mut child = ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--pin-stdin", "renew", "install"])
            .arg(&template().cert)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PIN}\n").as_bytes())
            .unwrap();
        // The first step is done: the run is between steps from here on.
        while !seen.contains("certificate written next to the new key") {
            let mut line = String::new();
            assert!(err.read_line(&mut line).unwrap() > 0, "{seen}");
            seen += &line;
        }
        let _ = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status();
        err.read_to_string(&mut seen).unwrap();
        let status = child.wait().unwrap();
        check_consistent(&t, &old, &new, attempt);
        match status.code() {
            Some(0) => continue,
            Some(6) => {
                assert!(
                    seen.contains("stopped on request between two steps"),
                    "{seen}"
                );
                assert!(seen.contains("run `ukey renew install"), "{seen}");
                stopped += 1;
                ok(&mut install(&t, &template().cert));
                let p = load(&t);
                assert_eq!(cert_der(&p, Slot::Authentication), Some(new.clone()));
                assert!(!p.objects.contains_key(&RENEWAL_OBJECT));
            }
            other => panic!("attempt {attempt}: exit {other:?} (killed?): {seen}"),
        }
        if stopped >= 3 {
            break;
        }
    }
    assert!(
        stopped > 0,
        "the hangup never arrived before the end of an install"
    );
}

#[test]
fn status_shows_the_staged_renewal_next_to_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    let (so, _) = ok(ukey().arg("--sim").arg(&t).arg("status"));
    assert!(so.contains("renewal  staged 20"), "{so}");
    assert!(
        so.contains("waiting for the CA's certificate (do not apply again)"),
        "{so}"
    );
    assert!(
        so.contains("staged   the new key of the renewal of slot 9a"),
        "{so}"
    );
    let a = slot_status(&t, "9a");
    assert_eq!(a["renewal"]["staged_slot"], "82", "{a:#}");
    assert_eq!(a["renewal"]["phase"], "awaiting-certificate");
    assert_eq!(slot_status(&t, "82")["staged_for"], "9a");
}

#[test]
fn an_unreadable_marker_is_reported_and_renew_clean_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = staged_token(dir.path());
    // The marker's value garbled (the module's container kept).
    change(&t, |p| {
        let mut c = vec![0x80, 12];
        c.extend(b"ukey renewal");
        c.extend([0x81, 3, 0xA0, 0x01, 0xFF]);
        p.objects.insert(RENEWAL_OBJECT, c);
    });
    let (so, _) = ok(ukey().arg("--sim").arg(&t).arg("status"));
    assert!(so.contains("the renewal marker is malformed"), "{so}");
    assert!(so.contains("`ukey renew clean` removes it"), "{so}");
    let st = renew_status(&t);
    assert!(
        st["problem"].as_str().unwrap().contains("ukey renew clean"),
        "{st:#}"
    );
    // The staged key in 82, no longer claimed by a readable marker, is an orphan.
    assert_eq!(st["orphaned"][0]["slot"], "82", "{st:#}");
    let before = load(&t);
    let same_keys = |p: &Persistent, except: &[&str]| {
        let names = |q: &Persistent| -> Vec<String> {
            q.keys
                .keys()
                .filter(|k| !except.contains(&k.as_str()))
                .cloned()
                .collect()
        };
        names(p) == names(&before)
            && names(p)
                .iter()
                .all(|k| p.keys[k].private_key == before.keys[k].private_key)
    };
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["--pin", PIN, "renew", "clean", "--yes"]));
    let p = load(&t);
    assert!(
        !p.objects.contains_key(&RENEWAL_OBJECT),
        "the marker is gone"
    );
    assert!(same_keys(&p, &[]), "keys untouched");
    // Then the orphaned key, by name, after confirmation.
    let (so, _) = ok(ukey().arg("--sim").arg(&t).arg("status"));
    assert!(
        so.contains("`ukey renew clean --slot 82` deletes it"),
        "{so}"
    );
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["--pin", PIN, "renew", "clean", "--slot", "82", "--yes"]));
    let p = load(&t);
    assert!(p.key(Slot::Retired(1)).is_none());
    assert!(same_keys(&p, &["82"]), "every other key stays");
    assert_eq!(p.pin.tries_left, 3);
}
