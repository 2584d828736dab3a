//! Two renewal commands at once on one token through real PC/SC (pcscd +
//! vpcd + `ukey-sim serve`), as on a user's machine: `renew install`
//! twice, and `renew install` next to `renew cancel`, 50 rounds each, and
//! the token pulled at each APDU of a pair of installs.
//!
//! (Not here: one command through pcscd and the other in-process on the
//! same state file. vpcd does not tell the card about PC/SC transactions,
//! so `ukey-sim serve` locks the card per APDU, and a process going around
//! pcscd can step between two APDUs of a transaction — something no real
//! card allows. It lost a pair under load in 1 of 25 rounds, a simulator
//! artefact; two processes on the state file, each with whole-transaction
//! locks, are `tools/ukey/tests/renew_race.rs`.)
//!
//! After every round: the card's memory loads, a complete pair is on the
//! token and signs (the card signs, `openssl dgst -verify` checks it
//! against the certificate), and `ukey status` read over pcscd right
//! after the round tells the truth about slot 9a. (In-process only:
//! `tools/ukey/tests/renew_race.rs`.)

use apdu::piv::{Algorithm, CertContainer, Pin, Slot};
use der::{Decode, Encode};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use ukey_sim::state::Persistent;
use ukey_tests::*;

const ROUNDS: u32 = 50;

fn cert_of(p: &Persistent, slot: Slot) -> Option<Vec<u8>> {
    p.objects
        .get(&slot.cert_object().0)
        .and_then(|c| CertContainer::parse(c).ok().flatten())
        .map(|c| c.der)
}

fn key_of(p: &Persistent, slot: Slot) -> Option<Vec<u8>> {
    p.key(slot).and_then(|k| k.key()).map(|k| k.spki_der())
}

fn spki_of(cert: &[u8]) -> Vec<u8> {
    x509_cert::Certificate::from_der(cert)
        .unwrap()
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap()
}

/// Sign on (a copy of) the card in `snap` with the key in `slot`; openssl
/// verifies with the public key of `cert`.
fn signs(dir: &Path, snap: &Path, slot: Slot, cert: &[u8]) -> bool {
    use sha2::Digest;
    let copy = dir.join("signer.json");
    std::fs::copy(snap, &copy).unwrap();
    let msg = b"a complete pair after a race over pcscd";
    let digest = sha2::Sha256::digest(msg);
    let mut t = rsa::Pkcs1v15Sign::new::<sha2::Sha256>().prefix.into_vec();
    t.extend_from_slice(&digest);
    let em = apdu::piv::pkcs1_sign_input(256, &t).unwrap();
    let reader = ukey_sim::SimReader::open(&copy).unwrap();
    let mut card = apdu::PivCard::new(reader.connect().unwrap());
    let sig = card
        .transaction(|s| {
            s.select()?;
            s.verify_pin(&Pin::new(b"123456").unwrap())?;
            s.sign_raw(slot, Algorithm::Rsa2048, &em)
        })
        .unwrap();
    let (m, sg, pk) = (dir.join("m"), dir.join("sig"), dir.join("pub.pem"));
    std::fs::write(&m, msg).unwrap();
    std::fs::write(&sg, sig).unwrap();
    std::fs::write(&pk, ukey_sim::ca::pem_encode("PUBLIC KEY", &spki_of(cert))).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pk)
        .arg("-signature")
        .arg(&sg)
        .arg(&m)
        .output()
        .expect("openssl");
    out.status.success()
}

/// The checks after one round (snapshot `snap-NAME.json`, status
/// `st-NAME.json`, outputs `o-NAME-a` / `o-NAME-b`). Returns whether a
/// command was pulled (exit 5).
fn check_round(dir: &Path, name: &str, old: &[u8], new: &[u8], settled: bool) -> bool {
    let snap = dir.join(format!("snap-{name}.json"));
    let p = Persistent::load(&snap)
        .unwrap_or_else(|e| panic!("{name}: the card's memory does not load: {e}"));
    let pair = |slot| match (key_of(&p, slot), cert_of(&p, slot)) {
        (Some(k), Some(c)) if spki_of(&c) == k => Some(c),
        _ => None,
    };
    let (slot, cert, in_9a) = match pair(Slot::Authentication) {
        Some(c) if c == old || c == new => (Slot::Authentication, c, true),
        Some(_) => panic!("{name}: 9a holds a certificate nobody wrote"),
        None => match pair(Slot::Retired(1)) {
            Some(c) if c == new => (Slot::Retired(1), c, false),
            _ => panic!("{name}: no complete key + certificate pair on the token"),
        },
    };
    assert!(
        signs(dir, &snap, slot, &cert),
        "{name}: the pair in {slot} does not sign"
    );
    assert_eq!(p.pin.tries_left, 3, "{name}: a PIN try was spent");
    let st = std::fs::read_to_string(dir.join(format!("st-{name}.json"))).unwrap();
    let st: serde_json::Value =
        serde_json::from_str(&st).unwrap_or_else(|e| panic!("{name}: status: {e}: {st}"));
    let a = st["tokens"][0]["slots"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: {st:#}"))
        .iter()
        .find(|s| s["slot"] == "9a")
        .cloned()
        .unwrap();
    assert_eq!(a["key_matches_certificate"] == true, in_9a, "{name}: {a:#}");
    let want = match (in_9a, cert == new) {
        (true, true) => "ok",
        (true, false) => "renewable",
        (false, _) => "unusable",
    };
    assert_eq!(a["verdict"], want, "{name}: {a:#}");
    if settled {
        assert!(in_9a, "{name}: settled with the pair in 82");
        assert!(p.key(Slot::Retired(1)).is_none(), "{name}: 82 holds a key");
        assert!(
            !p.objects.contains_key(&0x5F_FF10),
            "{name}: a marker is left"
        );
    }
    let mut pulled = false;
    for side in ["a", "b"] {
        let o = std::fs::read_to_string(dir.join(format!("o-{name}-{side}"))).unwrap();
        assert!(
            !o.contains("panicked") && !o.contains("internal error"),
            "{name}: {o}"
        );
        let rc = o
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("rc="))
            .unwrap_or("?");
        match rc {
            "0" | "1" => {}
            "5" => pulled = true,
            other => panic!("{name}/{side}: exit {other}: {o}"),
        }
    }
    pulled
}

/// One round in the script: restore the staged card (`fresh`), run A and
/// B at once.
fn round_lines(name: &str, fresh: bool, a: &str, b: &str) -> String {
    let restore = if fresh {
        "cp staged.json card.tmp && mv card.tmp card.json\n"
    } else {
        ""
    };
    format!(
        r#"{restore}( set +e; {a}; echo "rc=$?" ) >o-{name}-a 2>&1 &
( set +e; {b}; echo "rc=$?" ) >o-{name}-b 2>&1
wait
"#
    )
}

/// The card's memory, then `status` as soon as it reads the card (after a
/// pull, pcscd may take a while to see the card back on a loaded machine:
/// up to 30 s; the last answer is kept either way and judged).
fn snapshot_lines(name: &str, pcsc: &str) -> String {
    format!(
        r#"cp card.json snap-{name}.json
for t in $(seq 150); do {pcsc} --json status >st-{name}.json 2>/dev/null && break; sleep 0.2; done
"#
    )
}

/// A demo token (serial `serial`) with a renewal of 9a staged in-process
/// and the CA's certificate for it in `cert.pem`; `staged.json` is a copy
/// of that card to restore before each round.
struct Staged {
    card: std::path::PathBuf,
    old: Vec<u8>,
    new: Vec<u8>,
    /// `ukey` over pcscd only (no simulated tokens, no PIN from the environment).
    pcsc: String,
}

fn staged(d: &Path, serial: &str) -> Staged {
    let card = init_token(d, "card", &["--demo", "--serial", serial]);
    let ukey = bin("ukey");
    run_ok(
        Command::new(&ukey)
            .env("UKEY_NO_PCSC", "1")
            .env_remove("UKEY_SIM")
            .arg("--sim")
            .arg(&card)
            .args([
                "--pin", "123456", "renew", "request", "--slot", "9a", "--out",
            ])
            .arg(d.join("req.pem")),
    );
    run_ok(Command::new(bin("ukey-sim")).current_dir(d).args([
        "ca", "issue", "--ca-dir", "demo-ca", "--csr", "req.pem", "--out", "cert.pem",
    ]));
    std::fs::copy(&card, d.join("staged.json")).unwrap();
    let staged = Persistent::load(&card).unwrap();
    let old = cert_of(&staged, Slot::Authentication).unwrap();
    let new =
        ukey_sim::ca::pem_decode(&std::fs::read_to_string(d.join("cert.pem")).unwrap()).unwrap();
    let pcsc = format!(
        "env -u UKEY_SIM -u UKEY_NO_PCSC -u UKEY_PIN {}",
        ukey.display()
    );
    Staged {
        card,
        old,
        new,
        pcsc,
    }
}

#[test]
fn installs_and_cancels_at_once_over_pcscd() {
    require_tools(&["openssl"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Staged {
        card,
        old,
        new,
        pcsc,
    } = staged(d, "5550013");
    let install = |u: &str| format!("{u} --pin 123456 renew install cert.pem");
    let cancel = |u: &str| format!("{u} --pin 123456 renew cancel --yes");
    let mut script = String::new();
    let mut names = Vec::new();
    let pairs = [
        ("ii", ROUNDS, install(&pcsc), install(&pcsc)),
        ("ic", ROUNDS, install(&pcsc), cancel(&pcsc)),
    ];
    for (mode, rounds, a, b) in &pairs {
        for i in 0..*rounds {
            let name = format!("{mode}-{i}");
            script += &round_lines(&name, true, a, b);
            script += &snapshot_lines(&name, &pcsc);
            names.push(name);
        }
    }
    // Too long for one argument: a script file.
    std::fs::write(d.join("rounds.sh"), &script).unwrap();
    let start = Instant::now();
    with_pcscd(d, &[&card], "bash -eu rounds.sh");
    let took = start.elapsed();
    for name in &names {
        check_round(d, name, &old, &new, true);
    }
    eprintln!(
        "{} rounds over pcscd in {:.1} s",
        names.len(),
        took.as_secs_f64()
    );
}

#[test]
fn two_installs_over_pcscd_with_the_token_pulled_at_each_apdu() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Staged {
        card,
        old,
        new,
        pcsc,
    } = staged(d, "5550014");
    let install = format!("{pcsc} --pin 123456 renew install cert.pem");
    // The pull counts every APDU the card gets from the moment it is set
    // (both commands and pcscd's own): sweeping N covers each APDU of the
    // one that goes first. After the pull the card is reinserted, and the
    // pair runs again to settle.
    // Not seen after ~10 s: pull and insert again, as a user would (pcscd
    // can lose track of a card that came back before it noticed it gone;
    // see OUT_AFTER_PULL in ukey-sim's vpcd.rs).
    let replug =
        "if [ $((t % 50)) = 0 ]; then \"$UKEY_SIM_BIN\" control --state card.json remove; \
                  sleep 2; \"$UKEY_SIM_BIN\" control --state card.json insert; fi;";
    let mut script = String::new();
    let sweep = 70u32;
    for n in 0..sweep {
        let name = format!("pull-{n}");
        script += "cp staged.json card.tmp && mv card.tmp card.json\n";
        script += &format!("\"$UKEY_SIM_BIN\" control --state card.json remove-after {n}\n");
        script += &round_lines(&name, false, &install, &install);
        script += "\"$UKEY_SIM_BIN\" control --state card.json insert\n";
        script += &format!(
            "for t in $(seq 150); do {pcsc} status >/dev/null 2>&1 && break; {replug} sleep 0.2; done\n"
        );
        script += &snapshot_lines(&name, &pcsc);
        let again = format!("again-{n}");
        script += &round_lines(&again, false, &install, &install);
        script += &snapshot_lines(&again, &pcsc);
    }
    std::fs::write(d.join("rounds.sh"), &script).unwrap();
    let start = Instant::now();
    with_pcscd(d, &[&card], "bash -eu rounds.sh");
    let took = start.elapsed();
    let mut pulled_rounds = 0;
    for n in 0..sweep {
        if check_round(d, &format!("pull-{n}"), &old, &new, false) {
            pulled_rounds += 1;
        }
        check_round(d, &format!("again-{n}"), &old, &new, true);
    }
    eprintln!(
        "{sweep} pulls over pcscd ({pulled_rounds} interrupted a command) in {:.1} s",
        took.as_secs_f64()
    );
    assert!(pulled_rounds >= 20, "{pulled_rounds}");
}
