//! The install story and p11-kit: `scripts/install-module` puts the module
//! in the multiarch PKCS#11 directory with a p11-kit module file, and
//! `scripts/build-deb` packages it (with the `ukey` CLI); then
//! `p11-kit list-modules` shows ukey and its token, and clients that go
//! through p11-kit's proxy (`p11-kit-proxy.so`, GnuTLS's default module
//! list) see and use the token with no module path given.
//!
//! System-wide installs happen inside the test's private mount namespace,
//! over copy-on-write overlays of /usr, /etc and /var
//! (`PRIVATE_SYSTEM_DIRS`): the machine itself is never touched, which
//! each test checks.

use std::path::Path;
use std::process::Command;
use ukey_tests::*;

const PKCS11_DIR: &str = "/usr/lib/x86_64-linux-gnu/pkcs11";
const INSTALLED_SO: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/libukey_pkcs11.so";
const MODULE_FILE: &str = "/usr/share/p11-kit/modules/ukey.module";
const PROXY: &str = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";

/// Neither file is on the machine before the test; returns a guard that
/// checks they are still absent afterwards.
struct Untouched(bool);

impl Untouched {
    fn check() -> Self {
        let clean = !Path::new(INSTALLED_SO).exists() && !Path::new(MODULE_FILE).exists();
        Untouched(clean)
    }
}

impl Drop for Untouched {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            assert!(
                !Path::new(INSTALLED_SO).exists() && !Path::new(MODULE_FILE).exists(),
                "the test installed onto the machine"
            );
        }
    }
}

#[test]
fn install_module_stages_the_module_and_its_p11kit_file_under_destdir() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let script = repo_root().join("scripts/install-module");
    run_ok(
        Command::new(&script)
            .arg("--destdir")
            .arg(&root)
            .env("PKCS11_DIR", PKCS11_DIR)
            .env("P11KIT_MODULE_DIR", "/usr/share/p11-kit/modules"),
    );
    let so = root.join(INSTALLED_SO.trim_start_matches('/'));
    let conf = root.join(MODULE_FILE.trim_start_matches('/'));
    assert_eq!(
        std::fs::read(&so).unwrap(),
        std::fs::read(shipped("libukey_pkcs11.so")).unwrap(),
        "the shipped build, unchanged"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&so).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.lines().any(|l| l == format!("module: {INSTALLED_SO}")),
        "{text}"
    );
    run_ok(
        Command::new(&script)
            .arg("--destdir")
            .arg(&root)
            .arg("--uninstall")
            .env("PKCS11_DIR", PKCS11_DIR)
            .env("P11KIT_MODULE_DIR", "/usr/share/p11-kit/modules"),
    );
    assert!(!so.exists() && !conf.exists(), "uninstalled");
}

#[test]
fn p11kit_lists_the_installed_module_and_its_proxy_serves_the_token() {
    require_tools(&["p11-kit", "p11tool", "pkcs11-tool", "openssl"]);
    require_files(&[PROXY]);
    let _machine = Untouched::check();
    let card = DemoCard::new();
    let out = card.run(&format!(
        r#"{PRIVATE_SYSTEM_DIRS}
        "$REPO/scripts/install-module"
        echo "=== list-modules"
        p11-kit list-modules
        echo "=== p11tool"
        # No --provider: GnuTLS loads every module p11-kit knows.
        p11tool --list-token-urls
        GNUTLS_PIN=123456 p11tool --login --list-privkeys "$TOKEN_URI"
        echo "=== proxy"
        pkcs11-tool --module {PROXY} -L
        echo "signed through the proxy" > msg.txt
        pkcs11-tool --module {PROXY} --token-label "$TOKEN" --login --pin 123456 \
          --sign --id 01 -m SHA256-RSA-PKCS -i msg.txt -o sig.bin
        pkcs11-tool --module {PROXY} --token-label "$TOKEN" --read-object --type cert --id 01 -o cert.der
        openssl x509 -inform DER -in cert.der -noout -pubkey > pub.pem
        openssl dgst -sha256 -verify pub.pem -signature sig.bin msg.txt
        "$REPO/scripts/install-module" --uninstall
        p11-kit list-modules | grep -c '^ukey:' || echo "ukey is gone""#
    ));
    let (_, modules) = out.split_once("=== list-modules").unwrap();
    let (modules, rest) = modules.split_once("=== p11tool").unwrap();
    let ukey = modules
        .split_once(&format!("ukey: {INSTALLED_SO}\n"))
        .unwrap_or_else(|| panic!("{out}"))
        .1;
    assert!(
        ukey.contains("library-description: ukey PIV PKCS#11 module"),
        "{out}"
    );
    assert!(ukey.contains(&format!("token: {}", card.label())), "{out}");
    let (p11tool, proxy) = rest.split_once("=== proxy").unwrap();
    assert!(
        p11tool.contains(&format!(
            "pkcs11:model=YubiKey%20YK5;manufacturer=Yubico;serial={s};token=UKey%20PIV%20%23{s}",
            s = card.serial
        )),
        "{out}"
    );
    assert_eq!(p11tool.matches(";type=private").count(), 4, "{out}");
    assert!(
        proxy.contains(&format!("token label        : {}", card.label())),
        "{out}"
    );
    assert!(proxy.contains("Verified OK"), "{out}");
    assert!(out.contains("ukey is gone"), "{out}");
    assert_eq!(card.tries(), (3, 3));
}

#[test]
fn the_deb_package_installs_and_p11kit_loads_the_module() {
    require_tools(&["dpkg", "dpkg-deb", "p11-kit", "pkcs11-tool"]);
    require_files(&[PROXY]);
    let _machine = Untouched::check();
    let card = DemoCard::new();
    let built = run_ok(
        Command::new(repo_root().join("scripts/build-deb"))
            .arg("--out")
            .arg(card.path().join("deb")),
    );
    let deb = String::from_utf8(built.stdout).unwrap().trim().to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb}");
    let field = |f: &str| {
        let o = run_ok(Command::new("dpkg-deb").args(["-f", &deb, f]));
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    assert_eq!(field("Package"), "ukey");
    assert!(
        field("Depends").contains("libpcsclite1"),
        "{}",
        field("Depends")
    );
    let listing = run_ok(Command::new("dpkg-deb").args(["-c", &deb]));
    let listing = String::from_utf8(listing.stdout).unwrap();
    for f in [INSTALLED_SO, MODULE_FILE, "/usr/bin/ukey"] {
        assert!(listing.contains(&format!(".{f}\n")), "{f}:\n{listing}");
    }

    let out = card.run(&format!(
        r#"{PRIVATE_SYSTEM_DIRS}
        dpkg -i "{deb}"
        dpkg -s ukey | grep '^Status:'
        echo "=== list-modules"
        p11-kit list-modules | sed -n '/^ukey:/,/^[^ ]/p'
        echo "=== ukey"
        ukey readers
        echo "=== proxy"
        pkcs11-tool --module {PROXY} -L
        dpkg -r ukey
        test ! -e {INSTALLED_SO} && test ! -e {MODULE_FILE} && echo "removed cleanly""#
    ));
    assert!(out.contains("Status: install ok installed"), "{out}");
    let (_, modules) = out.split_once("=== list-modules").unwrap();
    assert!(
        modules.contains(&format!("ukey: {INSTALLED_SO}"))
            && modules.contains(&format!("token: {}", card.label())),
        "{out}"
    );
    let (_, cli) = out.split_once("=== ukey").unwrap();
    assert!(
        cli.contains(&format!("serial {}", card.serial)),
        "the packaged CLI sees the card: {out}"
    );
    assert!(
        out.contains(&format!("token label        : {}", card.label())),
        "{out}"
    );
    assert!(out.contains("removed cleanly"), "{out}");
}
