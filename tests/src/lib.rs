//! Shared helpers for the integration tests: where the built artifacts
//! are, simulated tokens, and running clients next to a private pcscd.
//!
//! The tests use the release build (`cargo build --release --workspace`
//! first; `scripts/test` does both).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The release target directory (honours `CARGO_TARGET_DIR`).
pub fn release_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("release")
}

fn artifact(name: &str) -> PathBuf {
    let p = release_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release --workspace` first (scripts/test does)",
        p.display()
    );
    p
}

/// Path of a release binary of the workspace (`ukey`, `ukey-sim`).
pub fn bin(name: &str) -> PathBuf {
    artifact(name)
}

/// Path of the built PKCS#11 module.
pub fn module() -> PathBuf {
    artifact("libukey_pkcs11.so")
}

/// OpenSC's PKCS#11 module (Debian path).
pub const OPENSC_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// Fail (never skip) when a third-party tool the test relies on is missing.
pub fn require_tools(tools: &[&str]) {
    for t in tools {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{t} is not installed: run scripts/install-deps (CI does)"
        );
    }
}

/// Run a command and return its output, panicking with everything it printed on failure.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A token state file created with `ukey-sim init` in `dir`.
pub fn init_token(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let state = dir.join(format!("{name}.json"));
    run_ok(
        Command::new(bin("ukey-sim"))
            .arg("init")
            .arg("--state")
            .arg(&state)
            .arg("--force")
            .arg("--ca-dir")
            .arg(dir.join("demo-ca"))
            .args(args),
    );
    state
}

/// The token's persistent state as `ukey-sim show --json` prints it.
pub fn show(state: &Path) -> serde_json::Value {
    let out = run_ok(
        Command::new(bin("ukey-sim"))
            .arg("show")
            .arg("--json")
            .arg("--state")
            .arg(state),
    );
    serde_json::from_slice(&out.stdout).expect("show --json")
}

/// (PIN tries left, PUK tries left) from the state file.
pub fn tries(state: &Path) -> (u64, u64) {
    let v = show(state);
    (
        v["pin"]["tries_left"].as_u64().expect("pin tries"),
        v["puk"]["tries_left"].as_u64().expect("puk tries"),
    )
}

/// Run `script` (bash) next to a private pcscd with `cards` in vpcd readers
/// ("Virtual PCD 00 00", "00 01", ...). Returns stdout+stderr as text;
/// panics with it if the script fails. `cwd` is the script's directory.
pub fn with_pcscd(cwd: &Path, cards: &[&Path], script: &str) -> String {
    require_tools(&["pcscd", "unshare", "opensc-tool"]);
    let mut cmd = Command::new(repo_root().join("scripts/with-pcscd"));
    for c in cards {
        cmd.arg("--card").arg(c);
    }
    cmd.arg("--log").arg(cwd.join("pcsc-logs"));
    // One stream, in order: clients print their errors on stderr.
    cmd.arg("--")
        .arg("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\nexec 2>&1\n{script}"));
    cmd.current_dir(cwd);
    cmd.env("UKEY_SIM_BIN", bin("ukey-sim"));
    cmd.env("OPENSC_MODULE", OPENSC_MODULE);
    let out = cmd.output().unwrap_or_else(|e| panic!("with-pcscd: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "script failed ({}):\n{script}\n--- output\n{text}",
        out.status
    );
    text
}

/// Count the APDUs pcscd logged (`-a`) in a `with_pcscd` run in `cwd`.
pub fn pcscd_apdu_count(cwd: &Path) -> usize {
    std::fs::read_to_string(cwd.join("pcsc-logs/pcscd.log"))
        .map(|s| s.lines().filter(|l| l.contains(" APDU: ")).count())
        .unwrap_or(0)
}
