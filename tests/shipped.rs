//! What ukey ships (`scripts/build-ship`: the module and the CLI that
//! `scripts/install-module` and `scripts/build-deb` install) has no
//! simulator: nothing of `ukey-sim` is linked in, no demo CA or simulator
//! text is in the files, and neither reads `UKEY_SIM` or takes `--sim`.
//! Each check is made on the workspace build too, which has the simulator,
//! so that a check that could not fail is seen failing.

use std::process::Command;
use ukey_tests::*;

/// Text only the simulator, its demo CA or its readers put into a binary.
const SIM_MARKERS: &[&str] = &[
    "UKEY_SIM",
    "ukey_sim",
    "ukey-sim",
    ukey_sim::demo::DEMO_CA_SUBJECT,
    "ukey Demo CA",
    "PIV Attestation",
];

fn markers_in(path: &std::path::Path) -> Vec<&'static str> {
    let bytes = std::fs::read(path).unwrap();
    SIM_MARKERS
        .iter()
        .copied()
        .filter(|m| bytes.windows(m.len()).any(|w| w == m.as_bytes()))
        .collect()
}

#[test]
fn the_shipped_build_links_no_simulator() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = |extra: &[&str]| {
        let out = run_ok(
            Command::new(&cargo)
                .current_dir(repo_root())
                .args(["tree", "--locked", "--offline", "-e", "normal"])
                .args(["-p", "ukey-pkcs11", "-p", "ukey", "--no-default-features"])
                .args(extra),
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let shipped = tree(&[]);
    assert!(
        shipped.contains("ukey-pkcs11 v") && shipped.contains("ukey-config v"),
        "{shipped}"
    );
    assert!(!shipped.contains("ukey-sim"), "{shipped}");
    let with_sim = tree(&["--features", "ukey-pkcs11/sim"]);
    assert!(with_sim.contains("ukey-sim v"), "{with_sim}");
}

#[test]
fn the_shipped_files_hold_no_simulator_text() {
    for name in ["libukey_pkcs11.so", "ukey"] {
        assert_eq!(markers_in(&shipped(name)), Vec::<&str>::new(), "{name}");
        assert!(
            markers_in(&bin(name)).contains(&"UKEY_SIM"),
            "the workspace {name} has the simulator"
        );
    }
    assert!(markers_in(&module()).contains(&"ukey_sim"));
}

#[test]
fn the_shipped_module_does_not_read_ukey_sim_and_the_cli_takes_no_sim() {
    require_tools(&["pkcs11-tool"]);
    let card = DemoCard::new();
    let list = |module: &std::path::Path| {
        let out = Command::new("pkcs11-tool")
            .arg("--module")
            .arg(module)
            .arg("-L")
            .env("UKEY_SIM", &card.state)
            .env("UKEY_NO_PCSC", "1")
            .env("UKEY_CONFIG", "")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let shipped_list = list(&shipped("libukey_pkcs11.so"));
    assert!(!shipped_list.contains(&card.label()), "{shipped_list}");
    assert!(
        shipped_list.contains("Available slots:") || shipped_list.contains("No slots"),
        "{shipped_list}"
    );
    let sim_list = list(&module());
    assert!(sim_list.contains(&card.label()), "{sim_list}");

    let ukey = |bin: &std::path::Path, args: &[&str]| {
        Command::new(bin)
            .args(args)
            .env("UKEY_SIM", &card.state)
            .env("UKEY_NO_PCSC", "1")
            .env("UKEY_CONFIG", "")
            .output()
            .unwrap()
    };
    let serial = card.serial.to_string();
    let out = ukey(&shipped("ukey"), &["readers"]);
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains(&serial) && !text.contains("simulated"),
        "{text}"
    );
    let out = ukey(
        &shipped("ukey"),
        &["--sim", card.state.to_str().unwrap(), "readers"],
    );
    assert_eq!(out.status.code(), Some(2), "clap refuses --sim");
    let out = ukey(&bin("ukey"), &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&serial),
        "the workspace CLI reads UKEY_SIM: {text}"
    );
}
