//! Two processes on one card over pcscd: one signs in a loop (C_Sign with
//! the 9A key, logged in once) while the other runs `pkcs11-tool --login -O`
//! 20 times: initialize, log in, list every object, finalize. The PIV login
//! is card-wide, so how the second process ends its login decides whether
//! the first keeps working.
//!
//! ukey leaves the card as it found it: a login it made ends with a card
//! reset (which PC/SC announces to every other connection), not a silent
//! VERIFY P1=FF; a card that was already logged in by someone else stays so.
//! It recovers from another application's reset or logout by verifying
//! again with the PIN it holds. No combination may see a failed signature.
//! Before: ukey's signer failed 14,161 times next to ukey (and never signed
//! again), OpenSC's 5,802 times; next to OpenSC, ukey's signer failed none.
//!
//! The signer runs this test binary again inside the private pcscd
//! namespace (`UKEY_STRESS_INNER=1`), loading the module `SIGNER_MODULE`,
//! and goes on for a second after the last `pkcs11-tool` run.

use cryptoki::mechanism::Mechanism;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use ukey_tests::*;

/// Inside the namespace: log in once, sign until the other process is done.
fn signer_inside() {
    let module = PathBuf::from(std::env::var("SIGNER_MODULE").unwrap());
    let stop = PathBuf::from(std::env::var("SIGNER_STOP").unwrap());
    let ready = PathBuf::from(std::env::var("SIGNER_READY").unwrap());
    let (_p11, s, key) = pcsc_login_9a(&module);
    std::fs::write(&ready, b"").unwrap();
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !stop.exists() && Instant::now() < deadline {
        match s.sign(&Mechanism::Sha256RsaPkcs, key, b"purchase order") {
            Ok(_) => ok += 1,
            Err(e) => {
                failed += 1;
                *errors.entry(e.to_string()).or_default() += 1;
            }
        }
    }
    let after = s
        .sign(&Mechanism::Sha256RsaPkcs, key, b"afterwards")
        .is_ok();
    println!("SIGNER ok={ok} failed={failed} after={after} errors={errors:?}");
}

/// Run the signer with `signer` while `pkcs11-tool --module <disturber>
/// --login -O` runs 20 times; returns (signatures, failed signatures).
fn run(test: &str, signer: &str, disturber: &str) -> (u64, u64) {
    require_tools(&["pkcs11-tool"]);
    require_files(&[OPENSC_MODULE]);
    let card = DemoCard::new();
    let me = std::env::current_exe().unwrap();
    let out = card.run(&format!(
        r#"export SIGNER_MODULE="{signer}" SIGNER_STOP=$PWD/stop SIGNER_READY=$PWD/ready
           UKEY_STRESS_INNER=1 "{me}" {test} --exact --nocapture --test-threads 1 > signer.log 2>&1 &
           signer=$!
           for _ in $(seq 300); do [ -e ready ] && break; sleep 0.1; done
           [ -e ready ] || {{ cat signer.log; exit 1; }}
           for i in $(seq 20); do
             pkcs11-tool --module "{disturber}" --login --pin 123456 -O > list$i.txt
             grep -c "Private Key Object" list$i.txt > /dev/null
           done
           # The signer goes on for a second after the last login ended.
           sleep 1
           touch stop
           wait $signer
           cat signer.log"#,
        me = me.display()
    ));
    let line = out
        .lines()
        .find_map(|l| l.find("SIGNER ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no signer report:\n{out}"));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line}"))
    };
    println!("{test}: {line}");
    assert!(
        line.contains("after=true"),
        "the signer still signs: {line}"
    );
    assert!(field("ok") > 0, "{out}");
    assert_eq!(card.tries(), (3, 3), "no PIN try spent");
    (field("ok"), field("failed"))
}

fn ukey() -> String {
    module().display().to_string()
}

#[test]
fn ukey_signer_while_ukey_logs_in_and_out() {
    if inside_pcscd() {
        return signer_inside();
    }
    let (_, failed) = run("ukey_signer_while_ukey_logs_in_and_out", &ukey(), &ukey());
    assert_eq!(failed, 0);
}

#[test]
fn ukey_signer_while_opensc_logs_in_and_out() {
    if inside_pcscd() {
        return signer_inside();
    }
    let (_, failed) = run(
        "ukey_signer_while_opensc_logs_in_and_out",
        &ukey(),
        OPENSC_MODULE,
    );
    assert_eq!(failed, 0);
}

#[test]
fn opensc_signer_while_ukey_logs_in_and_out() {
    if inside_pcscd() {
        return signer_inside();
    }
    let (_, failed) = run(
        "opensc_signer_while_ukey_logs_in_and_out",
        OPENSC_MODULE,
        &ukey(),
    );
    assert_eq!(failed, 0);
}
