//! Helpers both `ukey` test files use: running the binary, reading the
//! simulated card's memory, and the demo token.

// Each test file uses its own part of these.
#![allow(dead_code)]

pub mod renewal;
pub mod ui;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use ukey_sim::demo::{self, DemoOptions};
use ukey_sim::state::Persistent;

pub const PIN: &str = "123456";

/// `ukey` with no PC/SC and nothing (secrets, tokens, module, log level)
/// taken from the environment.
pub fn ukey() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ukey"));
    c.env("UKEY_NO_PCSC", "1");
    for v in [
        "UKEY_SIM",
        "UKEY_PIN",
        "UKEY_PUK",
        "UKEY_NEW_PIN",
        "UKEY_NEW_PUK",
        "UKEY_MGMT_KEY",
        "UKEY_LOG",
        "UKEY_MODULE",
    ] {
        c.env_remove(v);
    }
    c
}

/// (stdout, stderr) as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run and expect success; returns (stdout, stderr).
pub fn ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().expect("the command runs");
    let (so, se) = text(&out);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{so}\n--- stderr\n{se}",
        out.status
    );
    (so, se)
}

/// Run and expect failure with `code` and no panic; returns (stdout, stderr).
pub fn fails(cmd: &mut Command, code: i32) -> (String, String) {
    let out = cmd.output().expect("the command runs");
    let (so, se) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}:\n--- stdout\n{so}\n--- stderr\n{se}"
    );
    assert!(
        !se.contains("panicked") && !se.contains("RUST_BACKTRACE"),
        "{se}"
    );
    (so, se)
}

/// A `ukey --json` document, checked against docs/ukey-json.schema.json
/// (every document the tests read goes through here).
pub fn json(s: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"));
    schema_check(None, &v);
    v
}

/// The schema file.
pub fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ukey-json.schema.json")
}

/// Validate `doc` against the schema (or its `$defs/<def>`) with Python's
/// `jsonschema` (Debian python3-jsonschema, draft 2020-12): a validator we
/// did not write judges what we print.
pub fn schema_check(def: Option<&str>, doc: &serde_json::Value) {
    use std::io::Write;
    const CHECK: &str = r##"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
target = schema if sys.argv[2] == "" else {"$ref": "#/$defs/" + sys.argv[2], "$defs": schema["$defs"]}
v = jsonschema.Draft202012Validator(target)
errors = sorted(v.iter_errors(json.load(sys.stdin)), key=lambda e: list(e.path))
for e in errors:
    print("/".join(map(str, e.path)) + ": " + e.message)
sys.exit(1 if errors else 0)
"##;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .arg(schema_path())
        .arg(def.unwrap_or(""))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/install-deps installs python3-jsonschema)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not valid against {}{}:\n{}{}\n{doc:#}",
        schema_path().display(),
        def.map(|d| format!(" #/$defs/{d}")).unwrap_or_default(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl ARGS`, which must succeed; returns stdout and stderr together.
pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    let (so, se) = text(&out);
    assert!(out.status.success(), "openssl {args:?}:\n{so}{se}");
    format!("{so}{se}")
}

/// The card memory in a state file.
pub fn load(state: &Path) -> Persistent {
    Persistent::load(state).unwrap()
}

/// Change the card memory in a state file.
pub fn change(state: &Path, f: impl FnOnce(&mut Persistent)) {
    let mut p = load(state);
    f(&mut p);
    p.save(state).unwrap();
}

/// The demo token with serial `serial` (9A expires in 25 days) saved as
/// `dir/NAME.json`, and its CA in `dir/ca`. Returns the state file's path.
pub fn provision_demo(dir: &Path, name: &str, serial: u32) -> PathBuf {
    let ca = demo::demo_ca(&dir.join("ca")).unwrap();
    let mut p = Persistent::factory(serial);
    demo::provision(&mut p, &ca, &DemoOptions::default()).unwrap();
    let state = dir.join(format!("{name}.json"));
    p.save(&state).unwrap();
    state
}
