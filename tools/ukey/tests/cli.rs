//! The real `ukey` binary against simulated tokens (`--sim` / `UKEY_SIM`),
//! one test per case. Token states are made with the `ukey_sim` library;
//! PIN/PUK counters are read back from the state file, so "spends no try"
//! is checked on the card's own counter.

use apdu::piv::{ObjectId, Slot};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};
use ukey_sim::ca::{self, Ca, LeafUse, DAY};
use ukey_sim::demo;
use ukey_sim::state::Persistent;

mod common;
use common::*;

const SERIAL: u32 = 4_242_001;
const PUK: &str = "12345678";

/// The demo token (made once: RSA key generation is slow) and its CA.
struct Template {
    _dir: tempfile::TempDir,
    state: PathBuf,
    ca_dir: PathBuf,
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        Template {
            state: provision_demo(dir.path(), "template", SERIAL),
            ca_dir: dir.path().join("ca"),
            _dir: dir,
        }
    })
}

/// A fresh copy of the demo token in `dir` (9A expires in 25 days).
fn demo_token(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::copy(&template().state, &path).unwrap();
    path
}

fn demo_ca() -> Ca {
    Ca::load(&template().ca_dir).unwrap()
}

fn status_json(state: &Path, extra: &[&str]) -> serde_json::Value {
    let (so, _) = ok(ukey()
        .arg("--sim")
        .arg(state)
        .args(["--json", "status"])
        .args(extra));
    json(&so)
}

fn slot<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["tokens"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == name)
        .unwrap_or_else(|| panic!("no slot {name} in {status:#}"))
}

fn pin_tries(state: &Path) -> u8 {
    load(state).pin.tries_left
}

fn set_pin_tries(state: &Path, n: u8) {
    change(state, |p| p.pin.tries_left = n);
}

// ---- status verdicts ----

#[test]
fn status_says_renewable_for_the_demo_9a_expiring_in_25_days() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let st = status_json(&t, &[]);
    let a = slot(&st, "9a");
    assert_eq!(a["verdict"], "renewable", "{a:#}");
    let days = a["certificate"]["days_left"].as_i64().unwrap();
    assert!((24..=25).contains(&days), "{days}");
    assert_eq!(a["key"]["algorithm"], "rsa2048");
    assert_eq!(a["key_matches_certificate"], true);
    assert!(a["certificate"]["subject"]
        .as_str()
        .unwrap()
        .contains("CN=Demo User"));
    let tok = &st["tokens"][0];
    assert_eq!(tok["serial"], SERIAL);
    assert_eq!(tok["version"], "5.7.1");
    assert_eq!(tok["pin"]["tries_left"], 3);
    assert_eq!(tok["puk"]["tries_left"], 3);
    assert_eq!(tok["management_key"]["protected"], true);
    assert_eq!(tok["management_key"]["algorithm"], "aes192");
    // And in words.
    let (text, _) = ok(ukey().arg("--sim").arg(&t).arg("status"));
    assert!(text.contains("RENEWABLE now"), "{text}");
}

#[test]
fn status_says_ok_outside_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let st = status_json(&t, &[]);
    for s in ["9c", "9d", "9e"] {
        assert_eq!(slot(&st, s)["verdict"], "ok", "{s}");
    }
}

#[test]
fn status_window_option_moves_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let st = status_json(&t, &["--window", "10"]);
    assert_eq!(st["window_days"], 10);
    assert_eq!(slot(&st, "9a")["verdict"], "ok");
    let st = status_json(&t, &["--window", "800"]);
    assert_eq!(slot(&st, "9c")["verdict"], "renewable");
}

#[test]
fn status_says_expired_and_that_online_renewal_is_impossible() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let ca = demo_ca();
    change(&t, |p| {
        let spki = p.key(Slot::Signature).unwrap().key().unwrap().spki_der();
        let now = SystemTime::now();
        let der = ca
            .issue_leaf(
                &ca::parse_name("CN=Demo User,O=Example Pharma Ltd").unwrap(),
                &spki,
                now - 400 * DAY,
                now - 5 * DAY,
                LeafUse::Signing,
            )
            .unwrap();
        demo::put_certificate(p, Slot::Signature, &der).unwrap();
    });
    let st = status_json(&t, &[]);
    let c = slot(&st, "9c");
    assert_eq!(c["verdict"], "expired", "{c:#}");
    assert!(c["certificate"]["days_left"].as_i64().unwrap() <= -4);
    let (text, _) = ok(ukey().arg("--sim").arg(&t).arg("status"));
    assert!(
        text.contains("EXPIRED: online renewal is no longer possible"),
        "{text}"
    );
}

#[test]
fn status_says_missing_for_a_slot_without_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    change(&t, |p| {
        p.objects.remove(&ObjectId::CERT_9D.0);
    });
    let st = status_json(&t, &[]);
    let d = slot(&st, "9d");
    assert_eq!(d["verdict"], "missing", "{d:#}");
    assert!(d["certificate"].is_null());
    assert_eq!(
        d["key"]["algorithm"], "rsa2048",
        "the key is still reported"
    );
}

#[test]
fn status_shows_unreadable_certificates_against_their_slot_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    change(&t, |p| {
        // 9D: a container whose "gzip" is garbage; 9E: DER that is no certificate.
        p.objects.insert(
            ObjectId::CERT_9D.0,
            vec![0x70, 0x03, 1, 2, 3, 0x71, 0x01, 0x01],
        );
        p.objects.insert(
            ObjectId::CERT_9E.0,
            vec![0x70, 0x03, 1, 2, 3, 0x71, 0x01, 0x00, 0xFE, 0x00],
        );
    });
    let st = status_json(&t, &[]);
    for s in ["9d", "9e"] {
        let r = slot(&st, s);
        assert_eq!(r["verdict"], "missing", "{r:#}");
        assert!(
            r["problem"]
                .as_str()
                .unwrap()
                .contains("unreadable certificate"),
            "{r:#}"
        );
    }
    assert_eq!(slot(&st, "9a")["verdict"], "renewable");
}

#[test]
fn status_on_a_fresh_token_shows_factory_defaults_and_missing_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("new.json");
    Persistent::factory(777_010).save(&t).unwrap();
    let st = status_json(&t, &[]);
    let tok = &st["tokens"][0];
    assert_eq!(tok["management_key"]["default"], true);
    assert_eq!(tok["pin"]["default"], true);
    assert_eq!(tok["slots"].as_array().unwrap().len(), 4);
    for s in ["9a", "9c", "9d", "9e"] {
        assert_eq!(slot(&st, s)["verdict"], "missing");
        assert!(slot(&st, s)["key"].is_null());
    }
}

#[test]
fn status_reads_the_demo_token_in_few_apdus() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (_, err) = ok(ukey().arg("--sim").arg(&t).args(["--trace", "status"]));
    // SELECT, version, serial, metadata of PIN/PUK/9B, ADMIN DATA,
    // metadata of the 24 slots, the 4 certificates, the renewal marker.
    let apdus = err.lines().filter(|l| l.starts_with("apdu: >>")).count();
    assert_eq!(apdus, 36, "{err}");
}

// ---- no PIN try spent by reports ----

#[test]
fn status_spends_no_pin_try() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    set_pin_tries(&t, 2);
    let st = status_json(&t, &[]);
    assert_eq!(st["tokens"][0]["pin"]["tries_left"], 2);
    ok(ukey().arg("--sim").arg(&t).arg("status"));
    assert_eq!(pin_tries(&t), 2);
    assert_eq!(load(&t).puk.tries_left, 3);
}

#[test]
fn readers_spends_no_pin_try_and_shows_the_piv_applet() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    set_pin_tries(&t, 2);
    let (so, _) = ok(ukey().arg("--sim").arg(&t).args(["--json", "readers"]));
    let r = json(&so);
    let rd = &r["readers"][0];
    assert_eq!(rd["card_present"], true);
    assert_eq!(rd["piv"], true);
    assert_eq!(rd["serial"], SERIAL);
    assert_eq!(rd["atr"], hex::encode_upper(ukey_sim::ATR));
    assert_eq!(pin_tries(&t), 2);
}

// ---- PIN feedback ----

#[test]
fn wrong_pin_shows_tries_left() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["pin", "verify", "--pin", "999999"]),
        3,
    );
    assert!(err.contains("wrong PIN, 2 tries left"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert_eq!(pin_tries(&t), 2);
}

#[test]
fn wrong_pin_leaving_one_try_warns_that_the_next_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    set_pin_tries(&t, 2);
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["pin", "verify", "--pin", "999999"]),
        3,
    );
    assert!(err.contains("1 try left"), "{err}");
    assert!(
        err.contains("WARNING: one more wrong PIN blocks the PIN"),
        "{err}"
    );
}

#[test]
fn final_try_is_announced_loudly_before_it_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    set_pin_tries(&t, 1);
    let (_, err) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["pin", "verify", "--pin", PIN]));
    assert!(err.contains("WARNING: LAST PIN TRY"), "{err}");
    assert_eq!(pin_tries(&t), 3, "the right PIN resets the counter");
}

#[test]
fn blocked_pin_points_to_unblock_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    set_pin_tries(&t, 0);
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["pin", "verify", "--pin", PIN]),
        4,
    );
    assert!(err.contains("the PIN is blocked"), "{err}");
    assert!(err.contains("ukey pin unblock"), "{err}");
}

#[test]
fn last_wrong_pin_blocks_and_points_to_unblock() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    set_pin_tries(&t, 1);
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["pin", "verify", "--pin", "999999"]),
        4,
    );
    assert!(err.contains("LAST PIN TRY"), "{err}");
    assert!(
        err.contains("0 tries left") && err.contains("ukey pin unblock"),
        "{err}"
    );
    assert_eq!(pin_tries(&t), 0);
}

#[test]
fn missing_pin_without_terminal_says_how_to_give_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (_, err) = fails(ukey().arg("--sim").arg(&t).args(["pin", "verify"]), 1);
    assert!(
        err.contains("--pin") && err.contains("UKEY_PIN") && err.contains("--pin-stdin"),
        "{err}"
    );
    assert_eq!(pin_tries(&t), 3);
}

#[test]
fn pin_from_environment_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .env("UKEY_PIN", PIN)
        .args(["pin", "verify"]));
    let mut child = ukey()
        .arg("--sim")
        .arg(&t)
        .args(["pin", "change", "--pin-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"123456\n24681357\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["pin", "verify", "--pin", "24681357"]));
    assert_eq!(pin_tries(&t), 3);
}

#[test]
fn pin_change_then_unblock_with_the_puk() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["pin", "change", "--pin", PIN, "--new-pin", "111222"]));
    fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["pin", "verify", "--pin", PIN]),
        3,
    );
    set_pin_tries(&t, 0);
    let (so, _) = ok(ukey().arg("--sim").arg(&t).args([
        "pin",
        "unblock",
        "--puk",
        PUK,
        "--new-pin",
        "333444",
    ]));
    assert!(so.contains("PIN unblocked"), "{so}");
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["pin", "verify", "--pin", "333444"]));
}

#[test]
fn wrong_puk_shows_tries_left() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (_, err) = fails(
        ukey().arg("--sim").arg(&t).args([
            "puk",
            "change",
            "--puk",
            "87654321",
            "--new-puk",
            "11223344",
        ]),
        3,
    );
    assert!(err.contains("wrong PUK, 2 tries left"), "{err}");
    assert_eq!(load(&t).puk.tries_left, 2);
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["puk", "change", "--puk", PUK, "--new-puk", "11223344"]));
    assert_eq!(load(&t).puk.tries_left, 3);
}

#[test]
fn blocked_puk_says_only_a_reset_helps() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    change(&t, |p| p.puk.tries_left = 0);
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["pin", "unblock", "--puk", PUK, "--new-pin", "333444"]),
        4,
    );
    assert!(
        err.contains("PUK is blocked") && err.contains("ukey reset"),
        "{err}"
    );
}

// ---- token selection ----

#[test]
fn two_tokens_and_no_choice_lists_them_and_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = demo_token(dir.path(), "a");
    let b = dir.path().join("b.json");
    Persistent::factory(777_001).save(&b).unwrap();
    let list = std::env::join_paths([&a, &b]).unwrap();
    let (_, err) = fails(
        ukey()
            .env("UKEY_SIM", &list)
            .args(["pin", "verify", "--pin", "999999"]),
        1,
    );
    assert!(err.contains("2 tokens are present"), "{err}");
    assert!(err.contains("--serial"), "{err}");
    assert!(err.contains(&format!("serial {SERIAL}")), "{err}");
    assert!(err.contains("serial 777001"), "{err}");
    assert_eq!(pin_tries(&a), 3, "no PIN sent to either");
    assert_eq!(pin_tries(&b), 3);
}

#[test]
fn two_tokens_on_a_terminal_asks_which() {
    let dir = tempfile::tempdir().unwrap();
    let a = demo_token(dir.path(), "a");
    let b = dir.path().join("b.json");
    Persistent::factory(777_002).save(&b).unwrap();
    // `script` gives ukey a terminal; the answer "2" picks the second token.
    let cmd = format!(
        "{} --sim {} --sim {} pin verify --pin 999999",
        env!("CARGO_BIN_EXE_ukey"),
        a.display(),
        b.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '2\\n' | script -qec '{cmd}' /dev/null"))
        .env("UKEY_NO_PCSC", "1")
        .output()
        .expect("script (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Which token? [1-2]"), "{text}");
    assert!(text.contains("serial 777002"), "{text}");
    assert!(text.contains("wrong PIN, 2 tries left"), "{text}");
    assert_eq!(pin_tries(&a), 3, "the first token is untouched");
    assert_eq!(pin_tries(&b), 2, "the chosen one got the try");
}

#[test]
fn serial_picks_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let a = demo_token(dir.path(), "a");
    let b = dir.path().join("b.json");
    Persistent::factory(777_003).save(&b).unwrap();
    fails(
        ukey()
            .arg("--sim")
            .arg(&a)
            .arg("--sim")
            .arg(&b)
            .args(["--serial", "777003", "pin", "verify", "--pin", "999999"]),
        3,
    );
    assert_eq!((pin_tries(&a), pin_tries(&b)), (3, 2));
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&a)
            .arg("--sim")
            .arg(&b)
            .args(["--serial", "5", "pin", "verify", "--pin", PIN]),
        1,
    );
    assert!(err.contains("no token with serial 5"), "{err}");
}

#[test]
fn reader_option_picks_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let a = demo_token(dir.path(), "alpha");
    let b = demo_token(dir.path(), "beta");
    ok(ukey()
        .arg("--sim")
        .arg(&a)
        .arg("--sim")
        .arg(&b)
        .args(["--reader", "beta", "pin", "verify", "--pin", PIN]));
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&a)
            .arg("--sim")
            .arg(&b)
            .args(["--reader", "gamma", "status"]),
        1,
    );
    assert!(err.contains("no reader matches"), "{err}");
}

#[test]
fn status_reports_every_token_present() {
    let dir = tempfile::tempdir().unwrap();
    let a = demo_token(dir.path(), "a");
    let b = dir.path().join("b.json");
    Persistent::factory(777_004).save(&b).unwrap();
    let (so, _) = ok(ukey()
        .arg("--sim")
        .arg(&a)
        .arg("--sim")
        .arg(&b)
        .args(["--json", "status"]));
    let st = json(&so);
    let serials: Vec<_> = st["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(serials, vec![u64::from(SERIAL), 777_004]);
}

#[test]
fn no_pcscd_gives_a_clear_message() {
    // A private mount namespace whose /run/pcscd is empty: no pcscd socket.
    let script = format!(
        "mount -t tmpfs tmpfs /run/pcscd 2>/dev/null || {{ mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd; }}
         {ukey} readers; echo \"readers-rc=$?\"
         {ukey} status; echo \"status-rc=$?\"",
        ukey = env!("CARGO_BIN_EXE_ukey")
    );
    let out = Command::new("unshare")
        .args(["--mount", "--net", "--fork", "sh", "-c", &script])
        .env_remove("UKEY_SIM")
        .env_remove("UKEY_NO_PCSC")
        .output()
        .expect("unshare runs (tests run as root)");
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{so}\n{se}");
    assert!(so.contains("pcscd) is not running"), "{so}\n{se}");
    assert!(so.contains("readers-rc=0"), "{so}");
    assert!(so.contains("status-rc=1"), "{so}");
    assert!(
        se.contains("ukey: no token found: the smart card service (pcscd) is not running"),
        "{se}"
    );
    assert!(!se.contains("panicked"), "{se}");
}

// ---- keys, requests, certificates ----

#[test]
fn keygen_p256_then_csr_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let pub_pem = dir.path().join("pub.pem");
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args([
            "keygen", "--slot", "82", "--alg", "p256", "--pin", PIN, "--out",
        ])
        .arg(&pub_pem));
    let req = dir.path().join("req.pem");
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args([
            "csr",
            "--slot",
            "82",
            "--subject",
            "CN=Renewal Test,O=Example Pharma Ltd",
            "--pin",
            PIN,
            "--out",
        ])
        .arg(&req));
    let text = openssl(&[
        "req",
        "-in",
        req.to_str().unwrap(),
        "-verify",
        "-noout",
        "-subject",
    ]);
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("CN = Renewal Test"), "{text}");
    // The request carries the generated key.
    let req_key = openssl(&["req", "-in", req.to_str().unwrap(), "-pubkey", "-noout"]);
    assert_eq!(req_key, std::fs::read_to_string(&pub_pem).unwrap());
}

#[test]
fn csr_for_the_rsa_9a_key_takes_the_certificate_subject() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let req = dir.path().join("req.pem");
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["csr", "--slot", "9a", "--pin", PIN, "--out"])
        .arg(&req));
    let text = openssl(&[
        "req",
        "-in",
        req.to_str().unwrap(),
        "-verify",
        "-noout",
        "-subject",
        "-text",
    ]);
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("CN = Demo User"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
}

#[test]
fn csr_with_the_pin_always_9c_key_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (so, _) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["csr", "--slot", "9c", "--pin", PIN]));
    let req = dir.path().join("req.pem");
    std::fs::write(&req, so).unwrap();
    let text = openssl(&["req", "-in", req.to_str().unwrap(), "-verify", "-noout"]);
    assert!(text.contains("verify OK"), "{text}");
}

#[test]
fn csr_with_the_9e_key_asks_no_pin() {
    // 9E's PIN policy is "never": no PIN is given, none is asked (no
    // terminal: asking would fail), none is verified.
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (so, _) = ok(ukey().arg("--sim").arg(&t).args(["csr", "--slot", "9e"]));
    let req = dir.path().join("req.pem");
    std::fs::write(&req, so).unwrap();
    let text = openssl(&["req", "-in", req.to_str().unwrap(), "-verify", "-noout"]);
    assert!(text.contains("verify OK"), "{text}");
    assert_eq!(load(&t).pin.tries_left, 3);
}

#[test]
fn keygen_rsa_shows_progress_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (so, err) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["keygen", "--slot", "83", "--alg", "rsa2048", "--pin", PIN]));
    assert!(
        err.contains("generating an RSA-2048 key pair on the token"),
        "{err}"
    );
    assert!(err.contains("done in"), "{err}");
    assert!(so.starts_with("-----BEGIN PUBLIC KEY-----"), "{so}");
    assert_eq!(load(&t).key(Slot::Retired(2)).unwrap().algorithm, 0x07);
}

#[test]
fn keygen_refuses_to_replace_a_key_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let before = load(&t)
        .key(Slot::Authentication)
        .unwrap()
        .private_key
        .clone();
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["keygen", "--slot", "9a", "--alg", "p256", "--pin", PIN]),
        1,
    );
    assert!(
        err.contains("already holds a key") && err.contains("--force"),
        "{err}"
    );
    assert!(load(&t).key(Slot::Authentication).unwrap().private_key == before);
}

#[test]
fn keygen_without_pin_protected_key_needs_the_management_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.json");
    let key = "00112233445566778899aabbccddeeff0011223344556677";
    let mut p = Persistent::factory(777_005);
    p.management_key.key = ukey_sim::state::SecretBytes::new(&hex::decode(key).unwrap());
    p.management_key.is_default = false;
    p.save(&t).unwrap();
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["keygen", "--slot", "9a", "--alg", "p256"]),
        1,
    );
    assert!(err.contains("--mgmt-key"), "{err}");
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["keygen", "--slot", "9a", "--alg", "p256", "--mgmt-key"])
            .arg("ffeeddccbbaa99887766554433221100ffeeddccbbaa9988"),
        1,
    );
    assert!(err.contains("management key is wrong"), "{err}");
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .env("UKEY_MGMT_KEY", key)
        .args(["keygen", "--slot", "9a", "--alg", "p256"]));
    assert!(load(&t).key(Slot::Authentication).is_some());
}

#[test]
fn keygen_with_the_factory_management_key_warns() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("fresh.json");
    Persistent::factory(777_011).save(&t).unwrap();
    let (_, err) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["keygen", "--slot", "9a", "--alg", "p384"]));
    assert!(err.contains("factory default management key"), "{err}");
    assert!(load(&t).key(Slot::Authentication).is_some());
}

/// A certificate from the demo CA for the key in `slot` of `state`.
fn issue_for(state: &Path, slot: Slot, days: u64) -> Vec<u8> {
    let p = load(state);
    let spki = p.key(slot).unwrap().key().unwrap().spki_der();
    let now = SystemTime::now();
    demo_ca()
        .issue_leaf(
            &ca::parse_name("CN=Demo User,O=Example Pharma Ltd").unwrap(),
            &spki,
            now - DAY,
            now + Duration::from_secs(days * 86_400),
            LeafUse::Signing,
        )
        .unwrap()
}

#[test]
fn cert_import_export_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let der = issue_for(&t, Slot::Authentication, 400);
    let file = dir.path().join("new.pem");
    std::fs::write(&file, ca::pem_encode("CERTIFICATE", &der)).unwrap();
    let (so, _) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["cert", "import", "--slot", "9a", "--pin", PIN])
        .arg(&file));
    assert!(so.contains("read back"), "{so}");
    // PEM on stdout, DER to a file: both are the certificate we wrote.
    let (pem, _) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["cert", "export", "--slot", "9a"]));
    assert_eq!(ca::pem_decode(&pem).unwrap(), der);
    let out = dir.path().join("back.der");
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["cert", "export", "--slot", "9a", "--der", "--out"])
        .arg(&out));
    assert_eq!(std::fs::read(&out).unwrap(), der);
    assert_eq!(slot(&status_json(&t, &[]), "9a")["verdict"], "ok");
}

#[test]
fn cert_import_refuses_a_certificate_for_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let der = issue_for(&t, Slot::Signature, 400); // 9C's key, not 9A's
    let file = dir.path().join("other.der");
    std::fs::write(&file, &der).unwrap();
    let before = load(&t).objects.get(&ObjectId::CERT_9A.0).cloned();
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["cert", "import", "--slot", "9a", "--pin", PIN])
            .arg(&file),
        1,
    );
    assert!(err.contains("is not for the key in slot 9a"), "{err}");
    assert_eq!(load(&t).objects.get(&ObjectId::CERT_9A.0).cloned(), before);
}

#[test]
fn cert_delete_needs_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["cert", "delete", "--slot", "9e", "--pin", PIN]),
        1,
    );
    assert!(err.contains("--yes"), "{err}");
    assert!(load(&t).objects.contains_key(&ObjectId::CERT_9E.0));
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["cert", "delete", "--slot", "9e", "--yes", "--pin", PIN]));
    assert!(!load(&t).objects.contains_key(&ObjectId::CERT_9E.0));
    assert_eq!(slot(&status_json(&t, &[]), "9e")["verdict"], "missing");
}

#[test]
fn cert_export_of_an_empty_slot_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["cert", "export", "--slot", "95"]),
        1,
    );
    assert!(err.contains("slot 95 has no certificate"), "{err}");
}

// ---- selftest, reset ----

#[test]
fn selftest_passes_on_the_demo_token() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (so, _) = ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["--json", "selftest", "--pin", PIN]));
    let r = json(&so);
    assert_eq!(r["passed"], true, "{r:#}");
    let keys = r["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 4);
    for k in keys {
        assert_eq!(k["sign"], "ok", "{k:#}");
        assert_eq!(k["exchange"], "ok", "{k:#}");
        assert_eq!(k["certificate_matches_key"], true, "{k:#}");
    }
    let kinds: Vec<_> = keys.iter().map(|k| k["exchange_kind"].clone()).collect();
    assert_eq!(kinds, ["decrypt", "ecdh", "decrypt", "ecdh"]);
    assert_eq!(pin_tries(&t), 3);
}

#[test]
fn selftest_flags_a_certificate_for_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let der = issue_for(&t, Slot::Signature, 400);
    change(&t, |p| {
        demo::put_certificate(p, Slot::Authentication, &der).unwrap()
    });
    let (so, err) = fails(
        ukey().arg("--sim").arg(&t).args(["selftest", "--pin", PIN]),
        1,
    );
    assert!(so.contains("FAILED: it is for another key"), "{so}");
    assert!(err.contains("selftest FAILED"), "{err}");
}

#[test]
fn reset_is_refused_unless_pin_and_puk_are_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    set_pin_tries(&t, 0);
    let (_, err) = fails(ukey().arg("--sim").arg(&t).args(["reset", "--yes"]), 1);
    assert!(err.contains("reset refused"), "{err}");
    assert!(err.contains("PUK: 3 of 3 tries left"), "{err}");
    assert!(
        load(&t).key(Slot::Authentication).is_some(),
        "nothing erased"
    );
}

#[test]
fn reset_with_both_blocked_needs_confirmation_then_erases() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    change(&t, |p| {
        p.pin.tries_left = 0;
        p.puk.tries_left = 0;
    });
    let (_, err) = fails(ukey().arg("--sim").arg(&t).arg("reset"), 1);
    assert!(err.contains("--yes"), "{err}");
    assert!(load(&t).key(Slot::Authentication).is_some());
    ok(ukey().arg("--sim").arg(&t).args(["reset", "--yes"]));
    let p = load(&t);
    assert!(p.key(Slot::Authentication).is_none());
    assert_eq!((p.pin.tries_left, p.puk.tries_left), (3, 3));
    ok(ukey()
        .arg("--sim")
        .arg(&t)
        .args(["pin", "verify", "--pin", PIN]));
}

// ---- raw APDUs and traces ----

#[test]
fn apdu_sends_raw_commands_and_prints_responses() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (so, _) = ok(ukey().arg("--sim").arg(&t).args([
        "apdu",
        "00A4040005A000000308",
        "00 FD 00 00 00",
        "00F8000000",
    ]));
    assert!(so.contains("<< 050701 9000 (success)"), "{so}");
    assert!(so.contains(&format!("<< {:08X} 9000", SERIAL)), "{so}");
    let (so, _) = ok(ukey().arg("--sim").arg(&t).args([
        "--json",
        "apdu",
        "00A4040005A000000308",
        "00CB3FFF055C035FC10100",
    ]));
    let v = &json(&so)["exchanges"];
    assert_eq!(v[1]["sw"], "9000");
    assert!(v[1]["response"].as_str().unwrap().starts_with("53"));
}

#[test]
fn trace_shows_apdus_without_pin_or_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let mgmt = hex::encode_upper(&load(&t).management_key.key.0[..]);
    let (_, err) = ok(ukey().arg("--sim").arg(&t).args([
        "--trace", "keygen", "--slot", "84", "--alg", "p256", "--pin", PIN,
    ]));
    assert!(err.contains(">> 00A40400"), "{err}");
    assert!(err.contains(">> 0020008008 [8 bytes redacted]"), "{err}");
    assert!(err.contains("redacted"), "{err}");
    let pin_hex = hex::encode_upper(PIN);
    assert!(!err.contains(&pin_hex), "PIN bytes in trace:\n{err}");
    assert!(!err.contains(PIN), "PIN in trace:\n{err}");
    assert!(
        !err.to_uppercase().contains(&mgmt),
        "management key in trace:\n{err}"
    );
    // Wrong PIN too, and a raw VERIFY through `ukey apdu`.
    let (_, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--trace", "pin", "verify", "--pin", "765432"]),
        3,
    );
    assert!(!err.contains(&hex::encode_upper("765432")), "{err}");
    let (so, err) = ok(ukey().arg("--sim").arg(&t).args([
        "--trace",
        "apdu",
        "00A4040005A000000308",
        "002000800831323334353637FF",
    ]));
    assert!(
        !err.contains("31323334353637") && !so.contains("31323334353637"),
        "{so}\n{err}"
    );
}

#[test]
fn json_errors_are_json_and_one_line_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_token(dir.path(), "t");
    let (so, err) = fails(
        ukey()
            .arg("--sim")
            .arg(&t)
            .args(["--json", "pin", "verify", "--pin", "999999"]),
        3,
    );
    assert_eq!(json(&so)["error"], "wrong PIN, 2 tries left");
    assert_eq!(err.trim(), "ukey: wrong PIN, 2 tries left");
}
