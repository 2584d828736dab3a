//! The state file holds private keys, the PIN and the PUK: it is created
//! 0600 (the demo CA's key too), keeps a stricter mode its owner set, and
//! nothing is ever read or written through a symbolic link another user
//! planted in a shared directory. The module and the tools never create a
//! state file by opening a path: `ukey-sim init` makes tokens.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use ukey_sim::state::Persistent;
use ukey_sim::SimCard;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ukey-sim"))
}

fn init(state: &Path, demo: bool) -> std::process::Output {
    let mut c = sim();
    c.arg("init").arg("--state").arg(state).arg("--force");
    if demo {
        c.arg("--demo");
    }
    c.output().unwrap()
}

#[test]
fn state_file_and_demo_ca_key_are_0600_and_a_stricter_mode_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("card.json");
    let out = init(&state, true);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&state), 0o600, "state file");
    assert_eq!(mode(&dir.path().join("demo-ca/ca.key")), 0o600, "CA key");
    assert_eq!(
        mode(&dir.path().join("demo-ca/ca.pem")),
        0o644,
        "CA certificate"
    );

    // Every write by the card keeps 0600 (it was 0644 after each write).
    let mut card = SimCard::open(&state).unwrap();
    card.update(|p| p.pin.tries_left = 2).unwrap();
    assert_eq!(mode(&state), 0o600);
    // A looser mode set by hand is tightened, a stricter one kept.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    card.update(|p| p.pin.tries_left = 3).unwrap();
    assert_eq!(mode(&state), 0o600);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o400)).unwrap();
    card.update(|p| p.pin.tries_left = 1).unwrap();
    assert_eq!(mode(&state), 0o400);
    assert_eq!(Persistent::load(&state).unwrap().pin.tries_left, 1);
}

#[test]
fn opening_never_creates_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let e = SimCard::open(&missing).err().expect("refused");
    assert!(e.to_string().contains("ukey-sim init"), "{e}");
    assert!(!missing.exists());
    let nested = dir.path().join("no-such-dir/card.json");
    assert!(SimCard::open(&nested).is_err());
    assert!(!dir.path().join("no-such-dir").exists());
    let e = SimCard::open(dir.path()).err().expect("a directory");
    assert!(e.to_string().contains("directory"), "{e}");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, b"{\"not\": \"a token\"}").unwrap();
    let e = SimCard::open(&junk).err().expect("not a token");
    assert!(e.to_string().contains("not a token state file"), "{e}");
    assert_eq!(std::fs::read(&junk).unwrap(), b"{\"not\": \"a token\"}");
    // `ukey-sim serve` and `show` refuse a missing file the same way.
    let out = sim()
        .args(["show", "--state"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!missing.exists());
}

/// A world-writable sticky directory like /tmp, and a root-only file
/// elsewhere that another user would like root to overwrite.
struct Shared {
    _root: tempfile::TempDir,
    shared: PathBuf,
    precious: PathBuf,
}

impl Shared {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let private = root.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let precious = private.join("precious");
        std::fs::write(&precious, b"root only").unwrap();
        std::fs::set_permissions(&precious, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self {
            _root: root,
            shared,
            precious,
        }
    }

    /// `nobody` plants a symbolic link at `name` pointing to `target`.
    fn plant(&self, name: &str, target: &Path) -> PathBuf {
        let link = self.shared.join(name);
        let out = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "ln",
                "-s",
            ])
            .arg(target)
            .arg(&link)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::symlink_metadata(&link).unwrap().uid(), 65534);
        link
    }

    fn untouched(&self) {
        assert_eq!(std::fs::read(&self.precious).unwrap(), b"root only");
        assert_eq!(mode(&self.precious), 0o600);
    }
}

fn as_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

#[test]
fn links_planted_by_another_user_are_refused_as_root() {
    assert!(
        as_root(),
        "this test plants links as nobody: run it as root (CI does)"
    );
    let s = Shared::new();
    // At the state path: init, open, save and show all refuse it.
    let link = s.plant("card.json", &s.precious);
    let out = init(&link, false);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symbolic link"),
        "{out:?}"
    );
    assert!(SimCard::open(&link).is_err());
    assert!(Persistent::factory(1).save(&link).is_err());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    s.untouched();

    // A dangling link: following it would create a file where it points.
    let created = s.precious.with_file_name("created-by-root");
    let dangling = s.plant("dangling.json", &created);
    assert!(!init(&dangling, false).status.success());
    assert!(!created.exists(), "nothing created outside");

    // A real token in the shared directory: links planted at its temp
    // name, lock file and control file are not followed either.
    let state = s.shared.join("token.json");
    assert!(init(&state, false).status.success());
    let tmp_link = s.plant("token.json.tmp.planted", &s.precious);
    assert!(ukey_sim::files::create_new(&tmp_link, 0o600).is_err());
    let lock = s.plant("token.json.lock", &s.precious);
    let e = SimCard::open(&state).err().expect("lock file is a link");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    std::fs::remove_file(&lock).unwrap();
    let mut card = SimCard::open(&state).unwrap();
    card.update(|p| p.pin.tries_left = 2).unwrap();
    s.plant("token.json.ctl", &s.precious);
    assert!(ukey_sim::Control::Reset.send(&state).is_err());
    s.untouched();
    // Every temp file went away; the planted links are still links.
    let names: Vec<String> = std::fs::read_dir(&s.shared)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().filter(|n| n.contains(".tmp.")).count() == 1,
        "only the planted temp name: {names:?}"
    );
    assert_eq!(Persistent::load(&state).unwrap().pin.tries_left, 2);
}

#[test]
fn root_rewriting_a_users_state_file_leaves_it_theirs() {
    assert!(as_root(), "run as root (CI does)");
    let s = Shared::new();
    let state = s.shared.join("users.json");
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_ukey-sim"))
        .args(["init", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::metadata(&state).unwrap().uid(), 65534);
    let mut card = SimCard::open(&state).unwrap();
    card.update(|p| p.pin.tries_left = 2).unwrap();
    let m = std::fs::metadata(&state).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (65534, 65534, 0o600));
}
