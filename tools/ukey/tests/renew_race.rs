//! Two renewal commands at once on one token (in-process simulated card,
//! each `ukey` its own process sharing the state file as processes share
//! a card through pcscd): `renew install` twice, and `renew install` next
//! to `renew cancel`, round after round, also with the token pulled at
//! each APDU of the one that goes first. After every round: the state
//! file loads, a complete pair is on the token and signs (the card signs,
//! `openssl dgst -verify` checks it against the certificate's key), and
//! `status` tells the truth about slot 9a. The same over pcscd is in
//! `tests/renew_race_pcsc.rs`.

use apdu::piv::{Algorithm, Pin, Slot};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;
use ukey_sim::Control;

mod common;
use common::renewal::*;
use common::*;

/// Rounds per pairing without pulls (the issue asks for at least 50).
const ROUNDS: u32 = 50;
/// What `renew cancel` prints once it holds the lock, before the PIN.
const CANCEL_START: &str = "Cancelling the renewal of";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rival {
    Install,
    Cancel,
}

fn spawn(state: &Path, rival: Rival) -> Child {
    let mut c = ukey();
    // The PIN comes on stdin, so a pull can be set up before the first
    // write (both print their start line before they read it).
    c.arg("--sim").arg(state).args(["--pin-stdin", "renew"]);
    match rival {
        Rival::Install => c.arg("install").arg(&template().cert),
        Rival::Cancel => c.args(["cancel", "--yes"]),
    };
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Run an install and `rival` at once; with `pull`, the token is pulled
/// after that many APDUs of whichever starts writing first. Returns each
/// process's exit code and output.
fn round(state: &Path, rival: Rival, pull: Option<u32>) -> Vec<(Option<i32>, String)> {
    let children = vec![spawn(state, Rival::Install), spawn(state, rival)];
    let (tx, rx) = mpsc::channel::<()>();
    let mut readers = Vec::new();
    let mut waits = Vec::new();
    let mut stdins = Vec::new();
    for mut child in children {
        stdins.push(child.stdin.take().unwrap());
        let err = child.stderr.take().unwrap();
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut seen = String::new();
            for line in BufReader::new(err).lines() {
                let line = line.unwrap_or_default();
                if line.contains(INSTALL_START) || line.contains(CANCEL_START) {
                    let _ = tx.send(());
                }
                seen += &line;
                seen.push('\n');
            }
            seen
        }));
        waits.push(child);
    }
    drop(tx);
    if let Some(n) = pull {
        // The first "start" line comes from the lock holder.
        if rx.recv().is_ok() {
            Control::RemoveAfter(n).send(state).unwrap();
        }
    }
    for mut stdin in stdins {
        // A process that ended early has closed its end: nothing to say.
        let _ = stdin.write_all(format!("{PIN}\n").as_bytes());
    }
    let mut out = Vec::new();
    for (child, reader) in waits.into_iter().zip(readers) {
        let o = child.wait_with_output().unwrap();
        let mut text = reader.join().unwrap();
        text += &String::from_utf8_lossy(&o.stdout);
        assert!(
            !text.contains("panicked") && !text.contains("internal error"),
            "{text}"
        );
        out.push((o.status.code(), text));
    }
    out
}

/// Sign with the key in `slot` on the card and have openssl verify the
/// signature with the public key of `cert` (DER).
fn openssl_verifies(dir: &Path, state: &Path, slot: Slot, cert: &[u8]) -> bool {
    use sha2::Digest;
    let msg = b"a complete pair after a race";
    let digest = sha2::Sha256::digest(msg);
    let mut t = rsa::Pkcs1v15Sign::new::<sha2::Sha256>().prefix.into_vec();
    t.extend_from_slice(&digest);
    let em = apdu::piv::pkcs1_sign_input(256, &t).unwrap();
    let reader = ukey_sim::SimReader::open(state).unwrap();
    let mut card = apdu::PivCard::new(reader.connect().unwrap());
    let sig = card
        .transaction(|s| {
            s.select()?;
            s.verify_pin(&Pin::new(PIN.as_bytes()).unwrap())?;
            s.sign_raw(slot, Algorithm::Rsa2048, &em)
        })
        .unwrap();
    let (m, sg, pk) = (dir.join("m"), dir.join("sig"), dir.join("pub.pem"));
    std::fs::write(&m, msg).unwrap();
    std::fs::write(&sg, sig).unwrap();
    std::fs::write(
        &pk,
        ukey_sim::ca::pem_encode("PUBLIC KEY", &cert_spki(cert)),
    )
    .unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pk)
        .arg("-signature")
        .arg(&sg)
        .arg(&m)
        .output()
        .expect("openssl");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

/// Which pair slot 9a holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    Old,
    New,
    /// No complete pair in 9a: the new one is complete in 82.
    NewInRetired,
}

/// The checks after every round (see the module documentation).
fn check(dir: &Path, state: &Path, what: &str) -> Holds {
    let p = ukey_sim::state::Persistent::load(state)
        .unwrap_or_else(|e| panic!("{what}: the state file does not load: {e}"));
    let old = cert_der(&load(&template().staged), Slot::Authentication).unwrap();
    let new = new_cert_der();
    let pair = |slot| match (key_spki(&p, slot), cert_der(&p, slot)) {
        (Some(k), Some(c)) if cert_spki(&c) == k => Some(c),
        _ => None,
    };
    let holds = match pair(Slot::Authentication) {
        Some(c) if c == old => Holds::Old,
        Some(c) if c == new => Holds::New,
        Some(_) => panic!("{what}: 9a holds a certificate nobody wrote"),
        None => match pair(Slot::Retired(1)) {
            Some(c) if c == new => Holds::NewInRetired,
            _ => panic!("{what}: no complete key + certificate pair on the token"),
        },
    };
    let (slot, cert) = match holds {
        Holds::Old => (Slot::Authentication, old),
        Holds::New => (Slot::Authentication, new),
        Holds::NewInRetired => (Slot::Retired(1), new),
    };
    assert!(
        openssl_verifies(dir, state, slot, &cert),
        "{what}: the pair in {slot} does not sign"
    );
    assert_eq!(p.pin.tries_left, 3, "{what}: a PIN try was spent");
    // `status` tells the truth about 9a.
    let (so, _) = ok(ukey().arg("--sim").arg(state).args(["--json", "status"]));
    let st = json(&so);
    let a = st["tokens"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == "9a")
        .cloned()
        .unwrap();
    let usable = holds != Holds::NewInRetired;
    assert_eq!(
        a["key_matches_certificate"] == true,
        usable,
        "{what}: status says {a:#}"
    );
    let verdict = a["verdict"].as_str().unwrap();
    if usable {
        let want = if holds == Holds::New {
            "ok"
        } else {
            "renewable"
        };
        assert_eq!(verdict, want, "{what}: {a:#}");
    } else {
        assert_eq!(verdict, "unusable", "{what}: {a:#}");
    }
    holds
}

/// After a round without pulls: both commands ended, nothing is staged,
/// 9a holds the old pair (the cancel went first) or the new one.
fn settled(dir: &Path, state: &Path, rival: Rival, outs: &[(Option<i32>, String)], n: u32) {
    let what = format!("{rival:?} round {n}");
    let holds = check(dir, state, &what);
    let p = load(state);
    assert!(
        p.key(Slot::Retired(1)).is_none(),
        "{what}: 82 still holds a key"
    );
    assert!(
        !p.objects.contains_key(&RENEWAL_OBJECT),
        "{what}: a marker is left"
    );
    for (code, text) in outs {
        match code {
            Some(0) => {}
            // The later one found nothing staged any more.
            Some(1) => assert!(
                text.contains("no renewal is staged")
                    || text.contains("is no longer staged")
                    || text.contains("nothing to cancel")
                    || text.contains("cannot be cancelled")
                    || text.contains("is being cancelled")
                    || text.contains("by another program meanwhile"),
                "{what}: {text}"
            ),
            other => panic!("{what}: exit {other:?}: {text}"),
        }
    }
    match rival {
        Rival::Install => assert_eq!(holds, Holds::New, "{what}"),
        Rival::Cancel => assert!(matches!(holds, Holds::New | Holds::Old), "{what}"),
    }
}

fn race(rival: Rival) {
    let start = Instant::now();
    let mut cancel_won = 0;
    for n in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let t = staged_token(dir.path());
        let outs = round(&t, rival, None);
        settled(dir.path(), &t, rival, &outs, n);
        if load(&t).keys["9a"].private_key == load(&template().staged).keys["9a"].private_key {
            cancel_won += 1;
        }
    }
    eprintln!(
        "{rival:?}: {ROUNDS} rounds in {:.1} s ({cancel_won} won by the cancel)",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn two_installs_at_once_always_leave_the_new_pair_and_a_true_status() {
    race(Rival::Install);
}

#[test]
fn install_and_cancel_at_once_always_leave_a_complete_pair_and_a_true_status() {
    race(Rival::Cancel);
}

/// Pull the token at each APDU of whichever goes first, until one round
/// runs to its end; after each pull the token is consistent and the same
/// commands run again finish the job.
fn race_with_pulls(rival: Rival) -> u32 {
    let start = Instant::now();
    // Rounds in a row that ran to their end without a pull: the winner
    // alternates between install and cancel, so wait for three.
    let mut unpulled = 0;
    for n in 0..200u32 {
        let dir = tempfile::tempdir().unwrap();
        let t = staged_token(dir.path());
        let outs = round(&t, rival, Some(n));
        let what = format!("{rival:?} pulled at APDU {n}");
        check(dir.path(), &t, &what);
        let pulled = outs.iter().any(|(c, _)| *c == Some(5));
        for (code, text) in &outs {
            assert!(
                matches!(code, Some(0) | Some(1) | Some(5)),
                "{what}: {code:?} {text}"
            );
            if *code == Some(5) {
                assert!(text.contains("the token was removed"), "{what}: {text}");
            }
        }
        // Run again what was interrupted: the token ends settled.
        let again = round(&t, rival, None);
        settled(dir.path(), &t, rival, &again, n);
        unpulled = if pulled { 0 } else { unpulled + 1 };
        if unpulled == 3 {
            eprintln!(
                "{rival:?}: pulled at each of {n} APDUs in {:.1} s",
                start.elapsed().as_secs_f64()
            );
            return n;
        }
    }
    panic!("{rival:?}: the first command never ran to its end");
}

#[test]
fn two_installs_at_once_with_the_token_pulled_at_each_apdu() {
    let n = race_with_pulls(Rival::Install);
    assert!(n >= 10, "{n}");
}

#[test]
fn install_and_cancel_at_once_with_the_token_pulled_at_each_apdu() {
    let n = race_with_pulls(Rival::Cancel);
    assert!(n >= 5, "{n}");
}
