//! The staged demo token both renewal test files start from: the demo
//! token after `renew request --slot 9a`, the CA's certificate for the
//! staged key, and readers of the simulated card's memory.

use super::*;
use apdu::piv::{CertContainer, Slot};
use der::{Decode, Encode};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use ukey_sim::ca::{self, Ca, LeafUse};
use ukey_sim::state::Persistent;

pub const SERIAL: u32 = 4_242_005;
pub const RENEWAL_OBJECT: u32 = 0x5F_FF10;
/// The line `renew install` prints on stderr before it asks for the PIN.
pub const INSTALL_START: &str = "Do not pull the token";

pub fn cert_der(p: &Persistent, slot: Slot) -> Option<Vec<u8>> {
    p.objects
        .get(&slot.cert_object().0)
        .and_then(|c| CertContainer::parse(c).ok().flatten())
        .map(|c| c.der)
}

pub fn key_spki(p: &Persistent, slot: Slot) -> Option<Vec<u8>> {
    p.key(slot).and_then(|k| k.key()).map(|k| k.spki_der())
}

pub fn cert_spki(der: &[u8]) -> Vec<u8> {
    x509_cert::Certificate::from_der(der)
        .unwrap()
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap()
}

// ---- tokens ----

pub struct Template {
    /// Holds the files below for the whole test run.
    _dir: tempfile::TempDir,
    /// The demo token (9A RSA-2048 expiring in 25 days).
    pub demo: PathBuf,
    /// The demo token after `renew request --slot 9a`.
    pub staged: PathBuf,
    /// The CA's certificate for the staged key.
    pub cert: PathBuf,
    pub ca_dir: PathBuf,
}

pub fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let demo = provision_demo(dir.path(), "demo", SERIAL);
        let ca_dir = dir.path().join("ca");
        let ca = Ca::load(&ca_dir).unwrap();
        let staged = dir.path().join("staged.json");
        std::fs::copy(&demo, &staged).unwrap();
        let req = dir.path().join("req.pem");
        ok(ukey()
            .arg("--sim")
            .arg(&staged)
            .args(["--pin", PIN, "renew", "request", "--slot", "9a", "--out"])
            .arg(&req));
        let csr = ca::pem_decode(&std::fs::read_to_string(&req).unwrap()).unwrap();
        let der = ca.issue_for_request(&csr, 365, LeafUse::Signing).unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, ca::pem_encode("CERTIFICATE", &der)).unwrap();
        Template {
            _dir: dir,
            demo,
            staged,
            cert,
            ca_dir,
        }
    })
}

pub fn copy(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(format!("{name}.json"));
    std::fs::copy(from, &to).unwrap();
    to
}

pub fn demo_token(dir: &Path) -> PathBuf {
    copy(&template().demo, dir, "token")
}

pub fn staged_token(dir: &Path) -> PathBuf {
    copy(&template().staged, dir, "token")
}

pub fn demo_ca() -> Ca {
    Ca::load(&template().ca_dir).unwrap()
}

pub fn new_cert_der() -> Vec<u8> {
    ca::pem_decode(&std::fs::read_to_string(&template().cert).unwrap()).unwrap()
}

/// Sign `msg` with the key in `slot` through our module with OpenSC's
/// pkcs11-tool, and check the signature with openssl against the public
/// key of `cert_der`: the pair is usable by third-party software.
pub fn third_party_signature(dir: &Path, state: &Path, slot: Slot, cert_der: &[u8]) {
    let module = PathBuf::from(env!("CARGO_BIN_EXE_ukey"))
        .parent()
        .unwrap()
        .join("libukey_pkcs11.so");
    let msg = dir.join("msg.txt");
    std::fs::write(&msg, b"signed with the key in use").unwrap();
    let sig = dir.join("sig.bin");
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&module)
        .args([
            "--login",
            "--pin",
            PIN,
            "--sign",
            "-m",
            "SHA256-RSA-PKCS",
            "--id",
        ])
        .arg(format!("{:02x}", slot.cka_id()))
        .arg("-i")
        .arg(&msg)
        .arg("-o")
        .arg(&sig)
        .env("UKEY_SIM", state)
        .env("UKEY_NO_PCSC", "1")
        .output()
        .expect("pkcs11-tool (opensc) runs");
    let (so, se) = text(&out);
    assert!(out.status.success(), "pkcs11-tool:\n{so}{se}");
    let cert = dir.join("signer.der");
    std::fs::write(&cert, cert_der).unwrap();
    let pubkey = dir.join("signer-pub.pem");
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        cert.to_str().unwrap(),
        "-pubkey",
        "-noout",
        "-out",
        pubkey.to_str().unwrap(),
    ]);
    let v = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        pubkey.to_str().unwrap(),
        "-signature",
        sig.to_str().unwrap(),
        msg.to_str().unwrap(),
    ]);
    assert!(v.contains("Verified OK"), "{v}");
}
