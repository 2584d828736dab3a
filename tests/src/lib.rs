//! Shared helpers for the integration tests: where the built artifacts
//! are, simulated tokens, and running clients next to a private pcscd.
//!
//! The tests use the release build (`cargo build --release --workspace`
//! first; `scripts/test` does both).

pub mod marionette;
pub mod skf;

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

/// Whether this test binary runs again inside a private pcscd, started by
/// [`rerun_inside_pcscd`] (or by a script that sets `UKEY_STRESS_INNER=1`).
pub fn inside_pcscd() -> bool {
    std::env::var("UKEY_STRESS_INNER").is_ok_and(|v| v == "1")
}

/// Run the test `test` of this very test binary again, next to a private
/// pcscd with `cards` (see [`with_pcscd`]), with `exports` (shell
/// `NAME=value` words) in its environment; there [`inside_pcscd`] is true.
/// Returns the output.
pub fn rerun_inside_pcscd(cwd: &Path, cards: &[&Path], test: &str, exports: &str) -> String {
    let me = std::env::current_exe().expect("test binary");
    with_pcscd(
        cwd,
        cards,
        &format!(
            r#"{exports} UKEY_STRESS_INNER=1 "{me}" {test} --exact --nocapture --test-threads 1"#,
            me = me.display()
        ),
    )
}

/// Inside a pcscd run: `module` initialized over PC/SC alone, a session on
/// the first token logged in with the PIN 123456, and its 9A private key
/// (CKA_ID 01, the same in OpenSC's module).
pub fn pcsc_login_9a(
    module: &Path,
) -> (
    cryptoki::context::Pkcs11,
    cryptoki::session::Session,
    cryptoki::object::ObjectHandle,
) {
    use cryptoki::object::{Attribute, ObjectClass};
    std::env::remove_var("UKEY_SIM");
    std::env::remove_var("UKEY_NO_PCSC");
    let p11 = cryptoki::context::Pkcs11::new(module).expect("load the module");
    p11.initialize(cryptoki::context::CInitializeArgs::OsThreads)
        .expect("C_Initialize");
    let slot = p11.get_slots_with_token().expect("slots")[0];
    let s = p11.open_ro_session(slot).expect("session");
    s.login(cryptoki::session::UserType::User, Some(&pin("123456")))
        .expect("C_Login");
    let key = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![1]),
        ])
        .expect("C_FindObjects")[0];
    (p11, s, key)
}

/// (class, label, CKA_ID) of every key and certificate object in
/// `pkcs11-tool -O` output (OpenSC's data objects left aside).
pub fn pkcs11_tool_objects(listing: &str) -> std::collections::BTreeSet<(String, String, String)> {
    let mut set = std::collections::BTreeSet::new();
    let mut current: Option<(String, Option<String>, Option<String>)> = None;
    let mut flush = |c: &mut Option<(String, Option<String>, Option<String>)>| {
        if let Some((class, Some(label), Some(id))) = c.take() {
            set.insert((class, label, id));
        }
    };
    for line in listing.lines() {
        let kinds = [
            ("Private Key Object", "private"),
            ("Public Key Object", "public"),
            ("Certificate Object", "cert"),
            ("Data object", "data"),
        ];
        if let Some((_, class)) = kinds.iter().find(|(k, _)| line.starts_with(k)) {
            flush(&mut current);
            current = (*class != "data").then(|| (class.to_string(), None, None));
            continue;
        }
        let Some((_, label, id)) = current.as_mut() else {
            continue;
        };
        let t = line.trim_start();
        if let Some(v) = t.strip_prefix("label:") {
            label.get_or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("ID:") {
            id.get_or_insert_with(|| v.trim().to_string());
        }
    }
    flush(&mut current);
    set
}

/// Count the APDUs pcscd logged (`-a`) in a `with_pcscd` run in `cwd`.
pub fn pcscd_apdu_count(cwd: &Path) -> usize {
    std::fs::read_to_string(cwd.join("pcsc-logs/pcscd.log"))
        .map(|s| s.lines().filter(|l| l.contains(" APDU: ")).count())
        .unwrap_or(0)
}

// ---- the built module, loaded as an application loads it ---------------

use cryptoki::context::{CInitializeArgs, Pkcs11};
use std::sync::{Mutex, MutexGuard, OnceLock};
use ukey_sim::state::Persistent;

/// The module keeps process-wide state (as every PKCS#11 module does):
/// tests that load it in one process take turns.
static MODULE_LOCK: Mutex<()> = Mutex::new(());

/// A PIN, PUK or management key for `cryptoki`'s login calls.
pub fn pin(s: &str) -> cryptoki::types::AuthPin {
    cryptoki::types::AuthPin::new(s.to_string())
}

/// The CK_RV a `cryptoki` call failed with.
pub fn rv(e: cryptoki::error::Error) -> cryptoki::error::RvError {
    match e {
        cryptoki::error::Error::Pkcs11(rv, _) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// A demo token template (RSA key generation is slow: made once).
pub fn demo_template() -> Persistent {
    static DEMO: OnceLock<(Persistent, ukey_sim::ca::Ca)> = OnceLock::new();
    DEMO.get_or_init(|| {
        let ca = ukey_sim::ca::Ca::new("CN=ukey test CA,O=ukey tests").expect("CA");
        let mut p = Persistent::factory(1);
        ukey_sim::demo::provision(&mut p, &ca, &ukey_sim::demo::DemoOptions::default())
            .expect("demo");
        (p, ca)
    })
    .0
    .clone()
}

/// The demo template's keys, certificates and objects on a card of
/// `profile` (`ukey_sim::demo::with_profile`: what that card keeps).
pub fn demo_on(profile: ukey_sim::profile::Profile) -> Persistent {
    ukey_sim::demo::with_profile(&demo_template(), profile).expect("demo on a profile")
}

/// The CA that issued the demo template's certificates.
pub fn demo_ca() -> &'static ukey_sim::ca::Ca {
    static CA: OnceLock<ukey_sim::ca::Ca> = OnceLock::new();
    CA.get_or_init(|| ukey_sim::ca::Ca::new("CN=ukey test CA 2,O=ukey tests").expect("CA"))
}

/// What a simulated token starts as.
pub enum Start {
    /// The demo token: keys + certificates in 9A/9C/9D/9E, PIN-protected management key.
    Demo,
    /// Factory-fresh (AES-192 default management key).
    Fresh,
    /// Any prepared state.
    State(Persistent),
}

/// The module loaded over simulated tokens (no PC/SC).
pub struct ModuleEnv {
    pub p11: Pkcs11,
    pub states: Vec<std::path::PathBuf>,
    pub dir: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl ModuleEnv {
    /// Load the built `.so` with one simulated token per `start`.
    pub fn new(starts: Vec<Start>) -> Self {
        let turn = MODULE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        let mut states = Vec::new();
        for (i, start) in starts.into_iter().enumerate() {
            let serial = 20_000_000 + i as u32;
            let mut p = match start {
                Start::Demo => demo_template(),
                Start::Fresh => Persistent::factory(serial),
                Start::State(p) => p,
            };
            p.serial = serial;
            let path = dir.path().join(format!("token{i}.json"));
            p.save(&path).expect("save state");
            states.push(path);
        }
        let joined = std::env::join_paths(&states).expect("paths");
        // SAFETY-free in edition 2021; serialised by MODULE_LOCK.
        std::env::set_var("UKEY_SIM", joined);
        std::env::set_var("UKEY_NO_PCSC", "1");
        // Host-side records of generated keys stay in the test's directory.
        std::env::set_var("XDG_STATE_HOME", dir.path().join("state"));
        let p11 = Pkcs11::new(module()).expect("load module");
        p11.initialize(CInitializeArgs::OsThreads)
            .expect("C_Initialize");
        Self {
            p11,
            states,
            dir,
            _turn: turn,
        }
    }

    /// Finalize and initialize again (a fresh application run).
    pub fn restart(&mut self) {
        let p11 = Pkcs11::new(module()).expect("load module");
        let old = std::mem::replace(&mut self.p11, p11);
        old.finalize();
        self.p11
            .initialize(CInitializeArgs::OsThreads)
            .expect("C_Initialize");
    }

    /// The persistent state of token `i` as the card holds it now.
    pub fn state(&self, i: usize) -> Persistent {
        Persistent::load(&self.states[i]).expect("load state")
    }

    /// The host file where the module records keys generated on a card
    /// with this identity that the card cannot report.
    pub fn host_record(&self, identity: &str) -> PathBuf {
        self.dir
            .path()
            .join("state/ukey/generated-keys")
            .join(identity)
    }

    /// (PIN tries left, PUK tries left) of token `i`.
    pub fn tries(&self, i: usize) -> (u8, u8) {
        let p = self.state(i);
        (p.pin.tries_left, p.puk.tries_left)
    }

    /// Pull, insert or reset token `i`'s card.
    pub fn control(&self, i: usize, c: ukey_sim::Control) {
        c.send(&self.states[i]).expect("control");
    }

    /// Run `op` in a session from `open` with token 0's card pulled before
    /// APDU n, or right after it with the answer lost (`lose`), for n = 0,
    /// 1, ... until `op` completes. `op` may only succeed or see the card
    /// gone. After each reinsertion the state file must be a valid card
    /// memory, then `check` looks at the token (`true` once `op` completed).
    /// Returns the number of APDUs `op` took.
    pub fn tear_every_apdu(
        &self,
        lose: bool,
        mut open: impl FnMut() -> cryptoki::session::Session,
        mut op: impl FnMut(&cryptoki::session::Session) -> Result<(), cryptoki::error::Error>,
        mut check: impl FnMut(bool),
    ) -> u32 {
        use cryptoki::error::{Error, RvError};
        for n in 0..60u32 {
            let s = open();
            self.control(
                0,
                if lose {
                    ukey_sim::Control::RemoveAfterProcessing(n)
                } else {
                    ukey_sim::Control::RemoveAfter(n)
                },
            );
            let r = op(&s);
            match &r {
                Ok(()) | Err(Error::Pkcs11(RvError::DeviceRemoved, _)) => {}
                Err(e) => panic!("pulled at APDU {n} (lose={lose}): {e:?}"),
            }
            drop(s);
            self.control(0, ukey_sim::Control::Insert);
            Persistent::load(&self.states[0]).expect("the state file is a valid card memory");
            check(r.is_ok());
            if r.is_ok() {
                return n;
            }
        }
        panic!("the operation never completed");
    }
}

/// CKA_PUBLIC_KEY_INFO of `key`, read through the module.
pub fn public_key_info(
    s: &cryptoki::session::Session,
    key: cryptoki::object::ObjectHandle,
) -> Vec<u8> {
    use cryptoki::object::{Attribute, AttributeType};
    match s
        .get_attributes(key, &[AttributeType::PublicKeyInfo])
        .expect("CKA_PUBLIC_KEY_INFO")
        .remove(0)
    {
        Attribute::PublicKeyInfo(v) => v,
        other => panic!("{other:?}"),
    }
}

/// Set `CKA_UKEY_DESTROY` on `h`: this application means to destroy it (the
/// module refuses C_DestroyObject of objects in 9A/9C/9D/9E otherwise).
pub fn mean_to_destroy(s: &cryptoki::session::Session, h: cryptoki::object::ObjectHandle) {
    use cryptoki::object::{Attribute, AttributeType};
    s.update_attributes(
        h,
        &[Attribute::VendorDefined((
            AttributeType::VendorDefined(ukey_pkcs11::CKA_UKEY_DESTROY),
            vec![1],
        ))],
    )
    .expect("CKA_UKEY_DESTROY");
}

/// A one-year signing certificate for `subject` and `spki` from the demo CA.
pub fn issue_for(subject: &str, spki: &[u8]) -> Vec<u8> {
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86400);
    demo_ca()
        .issue_leaf(
            &ukey_sim::ca::parse_name(subject).expect("subject"),
            spki,
            now - std::time::Duration::from_secs(60),
            now + 365 * day,
            ukey_sim::ca::LeafUse::Signing,
        )
        .expect("issue")
}

// ---- PKCS#10 requests signed through the module -------------------------

/// Build a PKCS#10 request for `spki_der`, signed by `sign` (which gets the
/// DER of the CertificationRequestInfo and returns the signature value and
/// its algorithm identifier).
pub fn build_csr(
    subject: &str,
    spki_der: &[u8],
    sign: impl FnOnce(&[u8]) -> (Vec<u8>, spki::AlgorithmIdentifierOwned),
) -> Vec<u8> {
    use der::{Decode, Encode};
    use std::str::FromStr;
    let info = x509_cert::request::CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: x509_cert::name::Name::from_str(subject).expect("subject"),
        public_key: spki::SubjectPublicKeyInfoOwned::from_der(spki_der).expect("spki"),
        attributes: Default::default(),
    };
    let (signature, algorithm) = sign(&info.to_der().expect("info"));
    x509_cert::request::CertReq {
        info,
        algorithm,
        signature: der::asn1::BitString::from_bytes(&signature).expect("bits"),
    }
    .to_der()
    .expect("csr")
}

/// Algorithm identifiers for request signatures.
pub fn sig_alg(
    oid: const_oid::ObjectIdentifier,
    null_params: bool,
) -> spki::AlgorithmIdentifierOwned {
    spki::AlgorithmIdentifierOwned {
        oid,
        parameters: null_params.then(der::asn1::Any::null),
    }
}

/// PKCS#11 ECDSA (r ‖ s) to the DER X.509 wants.
pub fn ecdsa_der(rs: &[u8]) -> Vec<u8> {
    match rs.len() {
        64 => p256::ecdsa::Signature::from_slice(rs)
            .expect("sig")
            .to_der()
            .as_bytes()
            .to_vec(),
        96 => p384::ecdsa::Signature::from_slice(rs)
            .expect("sig")
            .to_der()
            .as_bytes()
            .to_vec(),
        n => panic!("ECDSA signature of {n} bytes"),
    }
}

/// `openssl req -verify` on a DER request: the third-party judge.
pub fn openssl_verifies_csr(dir: &Path, der: &[u8]) -> bool {
    let path = dir.join(format!("req-{}.der", std::process::id()));
    std::fs::write(&path, der).expect("write csr");
    let out = Command::new("openssl")
        .args(["req", "-inform", "DER", "-noout", "-verify", "-in"])
        .arg(&path)
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success() && text.contains("verify OK")
}

/// `openssl dgst -DIGEST -verify` with the public key of the certificate
/// `cert_der`: the third-party judge of a signature made on the token
/// (`sig` as OpenSSL takes it: the RSA block, or a DER ECDSA signature).
pub fn openssl_verifies_signature(
    dir: &Path,
    cert_der: &[u8],
    digest: &str,
    msg: &[u8],
    sig: &[u8],
) -> bool {
    let n = std::process::id();
    let (cert, public, data, signature) = (
        dir.join(format!("sig-cert-{n}.der")),
        dir.join(format!("sig-pub-{n}.pem")),
        dir.join(format!("sig-msg-{n}")),
        dir.join(format!("sig-{n}.bin")),
    );
    std::fs::write(&cert, cert_der).expect("write certificate");
    std::fs::write(&data, msg).expect("write message");
    std::fs::write(&signature, sig).expect("write signature");
    run_ok(
        Command::new("openssl")
            .args(["x509", "-inform", "DER", "-pubkey", "-noout", "-in"])
            .arg(&cert)
            .arg("-out")
            .arg(&public),
    );
    let out = Command::new("openssl")
        .arg("dgst")
        .arg(format!("-{digest}"))
        .arg("-verify")
        .arg(&public)
        .arg("-signature")
        .arg(&signature)
        .arg(&data)
        .output()
        .expect("openssl");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

// ---- the raw C ABI, for the misuse suite ----------------------------------

/// The module loaded with `dlopen`, its tables reached through the three
/// exported symbols only, as a C application does.
pub struct RawModule {
    pub f: &'static cryptoki_sys::CK_FUNCTION_LIST,
    pub f3: &'static cryptoki_sys::CK_FUNCTION_LIST_3_0,
    pub states: Vec<std::path::PathBuf>,
    pub dir: tempfile::TempDir,
    _lib: libloading::Library,
    _turn: MutexGuard<'static, ()>,
}

impl RawModule {
    /// Load (not initialize) the module over `tokens` demo tokens.
    pub fn load(tokens: usize) -> Self {
        let turn = MODULE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        let mut states = Vec::new();
        for i in 0..tokens {
            let mut p = demo_template();
            p.serial = 30_000_000 + i as u32;
            let path = dir.path().join(format!("raw{i}.json"));
            p.save(&path).expect("save");
            states.push(path);
        }
        std::env::set_var("UKEY_SIM", std::env::join_paths(&states).expect("paths"));
        std::env::set_var("UKEY_NO_PCSC", "1");
        // SAFETY: loading our own module; its initialisers have no preconditions.
        let lib = unsafe { libloading::Library::new(module()) }.expect("dlopen");
        let mut list: *mut cryptoki_sys::CK_FUNCTION_LIST = std::ptr::null_mut();
        let mut iface: *mut cryptoki_sys::CK_INTERFACE = std::ptr::null_mut();
        // SAFETY: the symbols have the PKCS#11 signatures; the out-pointers are valid.
        let (f, f3) = unsafe {
            let get: libloading::Symbol<cryptoki_sys::CK_C_GetFunctionList> =
                lib.get(b"C_GetFunctionList\0").expect("C_GetFunctionList");
            assert_eq!(get.expect("non-null")(&mut list), cryptoki_sys::CKR_OK);
            let get_iface: libloading::Symbol<cryptoki_sys::CK_C_GetInterface> =
                lib.get(b"C_GetInterface\0").expect("C_GetInterface");
            assert_eq!(
                get_iface.expect("non-null")(
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    &mut iface,
                    0
                ),
                cryptoki_sys::CKR_OK
            );
            (
                &*list,
                &*((*iface).pFunctionList as *const cryptoki_sys::CK_FUNCTION_LIST_3_0),
            )
        };
        Self {
            f,
            f3,
            states,
            dir,
            _lib: lib,
            _turn: turn,
        }
    }
}

impl Drop for RawModule {
    fn drop(&mut self) {
        // Leave the module finalized for the next test, whatever this one did.
        // SAFETY: C_Finalize with a NULL reserved pointer.
        unsafe {
            if let Some(fin) = self.f.C_Finalize {
                fin(std::ptr::null_mut());
            }
        }
    }
}

// ---- third-party clients over pcscd (the ecosystem tests) ----------------

/// A demo token for a client test, in its own temporary directory: keys and
/// certificates in 9A (RSA-2048), 9C (P-256, PIN always), 9D (RSA-2048) and
/// 9E (P-384, no PIN), issued by the demo CA in `<dir>/demo-ca/`.
pub struct DemoCard {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub serial: u64,
}

impl DemoCard {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = init_token(dir.path(), "card", &["--demo"]);
        let serial = show(&state)["serial"].as_u64().expect("serial");
        Self { dir, state, serial }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The token label our module shows: "UKey PIV #<serial>".
    pub fn label(&self) -> String {
        format!("UKey PIV #{}", self.serial)
    }

    /// `pkcs11:` URI of the token (RFC 7512 percent-encoding).
    pub fn token_uri(&self) -> String {
        format!("pkcs11:token=UKey%20PIV%20%23{}", self.serial)
    }

    /// (PIN tries left, PUK tries left) as the card holds them.
    pub fn tries(&self) -> (u64, u64) {
        tries(&self.state)
    }

    /// Run `script` (bash, `set -euo pipefail`, in the card's directory)
    /// next to a private pcscd with this card in "Virtual PCD 00 00".
    /// Exported: `UKEY` (our module), `OPENSC_MODULE`, `CA` (the demo CA's
    /// directory: ca.pem, ca.key), `TOKEN` (the label), `TOKEN_URI`,
    /// `SERIAL`, `STATE` (the card's state file), `UKEY_SIM_BIN`, `REPO`.
    pub fn run(&self, script: &str) -> String {
        let exports = format!(
            "export UKEY='{}' CA='{}' TOKEN='{}' TOKEN_URI='{}' SERIAL={} STATE='{}' REPO='{}'\n",
            module().display(),
            self.path().join("demo-ca").display(),
            self.label(),
            self.token_uri(),
            self.serial,
            self.state.display(),
            repo_root().display(),
        );
        with_pcscd(self.path(), &[&self.state], &(exports + script))
    }
}

impl Default for DemoCard {
    fn default() -> Self {
        Self::new()
    }
}

/// Bash that gives the rest of a `with_pcscd` script a copy-on-write view
/// of /usr, /etc and /var (overlay mounts in its private mount namespace):
/// system-wide installs (scripts/install-module, dpkg -i) land in a
/// temporary directory and vanish with the namespace.
pub const PRIVATE_SYSTEM_DIRS: &str = r#"
overlay_root=$(mktemp -d)
for d in /usr /etc /var; do
  n=${d//\//_}
  mkdir -p "$overlay_root/up$n" "$overlay_root/work$n"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$overlay_root/up$n,workdir=$overlay_root/work$n" "$d"
done
"#;

/// Fail (never skip) when a file a test relies on is missing.
pub fn require_files(files: &[&str]) {
    for f in files {
        assert!(
            Path::new(f).exists(),
            "{f} is missing: run scripts/install-deps (CI does)"
        );
    }
}
