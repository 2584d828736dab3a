//! The committed seed corpus, replayed through every target on the stable
//! toolchain (no libFuzzer): `cargo test --manifest-path fuzz/Cargo.toml`.
//! A crash the fuzzer found becomes a regression check by adding its input
//! to `corpus/<target>/` as `regression-<what>` once fixed
//! (`fuzz/record-corpus` keeps those).

use std::path::Path;

fn replay(target: &str) {
    let run = ukey_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .expect("a target of that name");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    for f in files {
        let data = std::fs::read(&f).expect("seed file");
        eprintln!("{}", f.display());
        run(&data);
    }
}

#[test]
fn tlv() {
    replay("tlv");
}

#[test]
fn response() {
    replay("response");
}

#[test]
fn piv_objects() {
    replay("piv_objects");
}

#[test]
fn command_apdu() {
    replay("command_apdu");
}

#[test]
fn atr() {
    replay("atr");
}

#[test]
fn sim_dispatcher() {
    replay("sim_dispatcher");
}

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<_> = ukey_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "tlv",
            "response",
            "piv_objects",
            "command_apdu",
            "atr",
            "sim_dispatcher",
            "x509_fields",
            "p11_template",
            "hostile_card"
        ]
    );
}

#[test]
fn x509_fields() {
    replay("x509_fields");
}

#[test]
fn p11_template() {
    replay("p11_template");
}

#[test]
fn hostile_card() {
    replay("hostile_card");
}
