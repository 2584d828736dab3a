//! Through real pcscd + vpcd: our module signing from many threads while a
//! second process uses the same card and resets it now and then; and the
//! simulator process killed in the middle of writes.
//!
//! The stress test runs itself inside the private pcscd namespace: the
//! outer test starts `scripts/with-pcscd`, which runs this same test binary
//! again with `UKEY_STRESS_INNER=1` next to a resetting `opensc-tool` loop.

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use ukey_tests::*;

/// Inside the namespace: 6 threads sign for a few seconds over PC/SC while
/// another process resets the card. Every signature must succeed: the
/// module recovers from each reset (re-SELECT, same serial, PIN restored).
fn stress_inside() {
    std::env::remove_var("UKEY_SIM");
    std::env::remove_var("UKEY_NO_PCSC");
    let p11 = Pkcs11::new(module()).unwrap();
    p11.initialize(CInitializeArgs::OsThreads).unwrap();
    let slot = p11.get_slots_with_token().unwrap()[0];
    let login = p11.open_ro_session(slot).unwrap();
    login
        .login(UserType::User, Some(&AuthPin::new("123456".into())))
        .unwrap();
    let signatures = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(6);
    std::thread::scope(|scope| {
        for t in 0..6 {
            let p11 = p11.clone();
            let signatures = &signatures;
            scope.spawn(move || {
                let s = p11.open_ro_session(slot).unwrap();
                let id = if t % 2 == 0 { 1 } else { 4 };
                let key = s
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Id(vec![id]),
                    ])
                    .unwrap()[0];
                let mech = if id == 1 {
                    Mechanism::Sha256RsaPkcs
                } else {
                    Mechanism::EcdsaSha384
                };
                while Instant::now() < deadline {
                    match s.sign(&mech, key, b"signed while another process resets the card") {
                        Ok(_) => {
                            signatures.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("thread {t}: {e:?}"),
                    }
                }
            });
        }
    });
    let n = signatures.into_inner();
    println!("STRESS signatures={n}");
    assert!(n > 50, "only {n} signatures");
}

#[test]
fn signing_over_pcsc_while_another_process_resets_the_card() {
    if inside_pcscd() {
        if std::env::var("UKEY_CARD_STATE").is_err() {
            stress_inside();
        }
        return;
    }
    require_tools(&["opensc-tool"]);
    let dir = tempfile::tempdir().unwrap();
    let card = init_token(dir.path(), "card", &["--demo"]);
    let me = std::env::current_exe().unwrap();
    let out = with_pcscd(
        dir.path(),
        &[&card],
        &format!(
            r#"( for i in $(seq 12); do sleep 0.4; opensc-tool -r "Virtual PCD 00 00" --reset >/dev/null 2>&1 && echo RESET; done ) > resets.txt &
               resetter=$!
               UKEY_STRESS_INNER=1 "{me}" signing_over_pcsc_while_another_process_resets_the_card --exact --nocapture --test-threads 1
               wait $resetter
               echo "resets: $(grep -c RESET resets.txt)""#,
            me = me.display()
        ),
    );
    assert!(out.contains("STRESS signatures="), "{out}");
    let resets: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("resets: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        resets >= 5,
        "the other process really reset the card ({resets} times):\n{out}"
    );
    let sigs = out
        .lines()
        .find_map(|l| {
            l.split_once("STRESS signatures=")
                .map(|(_, n)| n.trim().to_string())
        })
        .unwrap_or_default();
    eprintln!("{sigs} signatures across {resets} resets by another process");
    assert_eq!(tries(&card), (3, 3), "recovering logins spent no try");
}

/// `ukey-sim serve` killed with SIGKILL while certificates are being written
/// through our module: every time, the state file is a valid card memory
/// holding the old or the new certificate.
#[test]
fn killing_the_simulator_mid_write_leaves_a_valid_state_file() {
    if inside_pcscd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let card = init_token(dir.path(), "card", &["--demo"]);
    let ca = dir.path().join("demo-ca");
    let out = with_pcscd(
        dir.path(),
        &[&card],
        &format!(
            r#"U="{module}"
               pkcs11-tool --module $U --keypairgen --key-type EC:prime256v1 --id 05 --login --pin 123456 >/dev/null
               pkcs11-tool --module $U --read-object --type pubkey --id 05 -o pub.der
               openssl pkey -pubin -inform der -in pub.der -out pub.pem
               for i in 1 2 3 4 5 6 7 8; do
                 openssl x509 -new -force_pubkey pub.pem -subj "/CN=cert $i/" -CA {ca}/ca.pem -CAkey {ca}/ca.key -days 30 -outform der -out c$i.der
               done
               sim_pid=$(echo $UKEY_SIM_PIDS | awk '{{print $1}}')
               # The simulator restarted below is this script's to stop.
               trap 'kill $sim_pid 2>/dev/null || true' EXIT
               for round in 1 2 3 4 5 6; do
                 ( for i in 1 2 3 4 5 6 7 8; do pkcs11-tool --module $U --write-object c$i.der --type cert --id 05 --login --pin 123456 >/dev/null 2>&1; done ) &
                 writer=$!
                 sleep 0.$((RANDOM % 6 + 2))
                 kill -9 $sim_pid 2>/dev/null || true
                 wait $writer || true
                 "{sim}" show --state "{card}" --json > state$round.json || {{ echo "STATE BROKEN in round $round"; exit 1; }}
                 UKEY_LOG=warn "{sim}" serve --state "{card}" --vpcd 127.0.0.1:35963 >>pcsc-logs/sim-restart.log 2>&1 &
                 sim_pid=$!
                 # Wait for pcscd to see the card again (no fixed sleep: a busy
                 # machine may need longer).
                 for t in $(seq 100); do
                   opensc-tool -l 2>/dev/null | grep -q "Yes.*Virtual PCD 00 00" && break
                   sleep 0.1
                 done
               done
               # pcscd may still show the killed card for a moment: retry as a user would.
               for t in $(seq 50); do
                 pkcs11-tool --module $U --read-object --type cert --id 05 -o final.der >/dev/null 2>&1 && break
                 sleep 0.2
               done
               for i in 1 2 3 4 5 6 7 8; do cmp -s final.der c$i.der && echo "FINAL IS c$i"; done
               echo ROUNDS DONE"#,
            module = module().display(),
            ca = ca.display(),
            sim = bin("ukey-sim").display(),
            card = card.display(),
        ),
    );
    assert!(out.contains("ROUNDS DONE"), "{out}");
    assert!(
        out.contains("FINAL IS c"),
        "the certificate is one that was written whole:\n{out}"
    );
    let state = ukey_sim::state::Persistent::load(&card).expect("state file loads");
    let content = &state.objects[&apdu::piv::ObjectId(0x5F_C10D).0];
    let cert = apdu::piv::CertContainer::parse(content)
        .unwrap()
        .expect("a certificate");
    assert!(!cert.der.is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(
        leftovers.len() <= 1,
        "at most the temp file of a killed write is left: {leftovers:?}"
    );
}

/// Inside the namespace: pull the card (stop `ukey-sim serve`), see the
/// module report it without crashing, put it back, and use it again.
fn hotplug_inside() {
    std::env::remove_var("UKEY_SIM");
    std::env::remove_var("UKEY_NO_PCSC");
    let state = std::env::var("UKEY_CARD_STATE").unwrap();
    let sim_pid: i32 = std::env::var("UKEY_SIM_PIDS")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (p11, s, key) = pcsc_login_9a(&module());
    let slot = s.get_session_info().unwrap().slot_id();
    s.sign(&Mechanism::Sha256RsaPkcs, key, b"before").unwrap();
    // Pull the card: the simulator's socket to vpcd closes.
    // SAFETY: signalling our own child process by pid.
    unsafe { libc::kill(sim_pid, libc::SIGKILL) };
    let until = Instant::now() + Duration::from_secs(5);
    while p11.get_slot_info(slot).unwrap().token_present() {
        assert!(Instant::now() < until, "removal never seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    match s.sign(&Mechanism::Sha256RsaPkcs, key, b"pulled") {
        Err(cryptoki::error::Error::Pkcs11(rv, _)) => {
            assert_eq!(rv, cryptoki::error::RvError::DeviceRemoved)
        }
        other => panic!("signing a pulled card: {other:?}"),
    }
    assert!(p11.get_slots_with_token().unwrap().is_empty());
    assert_eq!(p11.get_slot_event().unwrap(), Some(slot));
    // Put it back.
    let mut child = std::process::Command::new(bin("ukey-sim"))
        .args(["serve", "--state", &state, "--vpcd", "127.0.0.1:35963"])
        .env("UKEY_LOG", "warn")
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(8);
    while p11.get_slots_with_token().unwrap().is_empty() {
        assert!(Instant::now() < until, "reinsertion never seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s2 = p11.open_ro_session(slot).unwrap();
    s2.login(UserType::User, Some(&AuthPin::new("123456".into())))
        .unwrap();
    let key2 = s2
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![1]),
        ])
        .unwrap()[0];
    s2.sign(&Mechanism::Sha256RsaPkcs, key2, b"after").unwrap();
    let _ = child.kill();
    let _ = child.wait();
    println!("HOTPLUG OK");
}

#[test]
fn card_pulled_and_reinserted_through_pcsc() {
    if inside_pcscd() {
        if std::env::var("UKEY_CARD_STATE").is_ok() {
            hotplug_inside();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let card = init_token(dir.path(), "card", &["--demo"]);
    let out = rerun_inside_pcscd(
        dir.path(),
        &[&card],
        "card_pulled_and_reinserted_through_pcsc",
        &format!(r#"UKEY_CARD_STATE="{}""#, card.display()),
    );
    assert!(out.contains("HOTPLUG OK"), "{out}");
}

/// Inside the namespace: after the token was looked at once, 100 rounds of
/// C_GetMechanismList and C_GetMechanismInfo for every mechanism (what
/// some clients do in a loop) send pcscd no command at all: counted in
/// pcscd's own debug log, every "Received command" line.
fn mechanism_queries_inside() {
    std::env::remove_var("UKEY_SIM");
    std::env::remove_var("UKEY_NO_PCSC");
    let log = std::path::PathBuf::from(std::env::var("WITH_PCSCD_LOG").unwrap()).join("pcscd.log");
    let commands = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("Received command:"))
            .count()
    };
    let p11 = Pkcs11::new(module()).unwrap();
    p11.initialize(CInitializeArgs::OsThreads).unwrap();
    let slot = p11.get_slots_with_token().unwrap()[0];
    p11.get_token_info(slot).unwrap();
    let before = commands();
    let mut answers = 0;
    for _ in 0..100 {
        for m in p11.get_mechanism_list(slot).unwrap() {
            p11.get_mechanism_info(slot, m).unwrap();
            answers += 1;
        }
    }
    let after = commands();
    println!(
        "MECHANISM QUERIES: {answers} answers, {} pcscd commands",
        after - before
    );
}

#[test]
fn mechanism_queries_send_pcscd_nothing() {
    if inside_pcscd() {
        if std::env::var("UKEY_MECHANISM_QUERIES").is_ok() {
            mechanism_queries_inside();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let card = init_token(dir.path(), "card", &["--demo"]);
    let out = rerun_inside_pcscd(
        dir.path(),
        &[&card],
        "mechanism_queries_send_pcscd_nothing",
        "UKEY_MECHANISM_QUERIES=1",
    );
    assert!(
        out.contains("answers, 0 pcscd commands"),
        "no PC/SC traffic for mechanism queries:\n{out}"
    );
}
