//! `ukey` on every card profile of the simulator (YubiKey 5.7, 5.4, 4, a
//! plain PIV card, a third-party applet imitating a YubiKey): status,
//! keygen → csr → cert import, and renew where the card allows it (the
//! clear refusal where it does not). One test per case and profile;
//! `openssl` judges requests, the state file judges what the card holds.
//!
//! Needs the release build of the whole workspace (renew loads the module
//! next to the `ukey` binary).

use apdu::piv::generated::GENERATED_KEYS_OBJECT;
use apdu::piv::Slot;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use ukey_sim::profile::Profile;
use ukey_sim::state::Persistent;

mod common;
use common::*;

const DEFAULT_MGMT: &str = "010203040506070801020304050607080102030405060708";
const RENEWAL_OBJECT: u32 = 0x5F_FF10;

/// The demo token and its CA, made once (RSA keys are slow to generate).
struct Template {
    _dir: tempfile::TempDir,
    demo: Persistent,
    ca_dir: PathBuf,
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let demo = load(&provision_demo(dir.path(), "demo", 4_242_015));
        let ca_dir = dir.path().join("ca");
        Template {
            _dir: dir,
            demo,
            ca_dir,
        }
    })
}

/// The demo token on a card of `profile`, in `dir`.
fn token(dir: &Path, profile: Profile) -> PathBuf {
    let p = ukey_sim::demo::with_profile(&template().demo, profile).unwrap();
    let path = dir.join("token.json");
    p.save(&path).unwrap();
    path
}

/// `ukey --sim STATE` with this test's own host-side state directory.
fn ukey_on(dir: &Path, state: &Path) -> Command {
    let mut c = ukey();
    c.env("XDG_STATE_HOME", dir.join("state"))
        .arg("--sim")
        .arg(state);
    c
}

/// What a write needs on this profile's demo card: the PIN where the
/// management key is PIN-protected, else the (default) management key.
fn write_auth(profile: Profile) -> Vec<&'static str> {
    if profile.spec().vendor_objects {
        vec!["--pin", PIN]
    } else {
        vec!["--mgmt-key", DEFAULT_MGMT]
    }
}

fn status(dir: &Path, state: &Path) -> serde_json::Value {
    let (so, _) = ok(ukey_on(dir, state).args(["--json", "status"]));
    json(&so)["tokens"][0].clone()
}

fn slot<'a>(token: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    token["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == name)
        .unwrap_or_else(|| panic!("slot {name}: {token:#}"))
}

/// The demo CA's certificate for the request in `req` (it checks the
/// request's signature first).
fn issue(req: &Path, cert: &Path) {
    use ukey_sim::ca::{self, Ca, LeafUse};
    let csr = ca::pem_decode(&std::fs::read_to_string(req).unwrap()).unwrap();
    let der = Ca::load(&template().ca_dir)
        .unwrap()
        .issue_for_request(&csr, 365, LeafUse::Signing)
        .unwrap();
    std::fs::write(cert, ca::pem_encode("CERTIFICATE", &der)).unwrap();
}

fn tries(state: &Path) -> (u8, u8) {
    let p = load(state);
    (p.pin.tries_left, p.puk.tries_left)
}

fn status_reports_counters_and_slots_without_spending_a_try(profile: Profile) {
    let dir = tempfile::tempdir().unwrap();
    let t = token(dir.path(), profile);
    let spec = profile.spec();
    let tok = status(dir.path(), &t);
    assert_eq!(tok["pin"]["tries_left"], 3, "{tok:#}");
    // The PUK count only where GET METADATA works: never a guess.
    let metadata = matches!(profile, Profile::Yk57 | Profile::Yk54);
    assert_eq!(tok["puk"].is_null(), !metadata, "{tok:#}");
    assert_eq!(tok["management_key"]["protected"], spec.vendor_objects);
    assert_eq!(
        tok["version"].as_str(),
        spec.version
            .map(|v| format!("{}.{}.{}", v[0], v[1], v[2]))
            .as_deref()
    );
    // Who the card is: its serial, else its CHUID.
    assert_eq!(tok["serial"].is_null(), !spec.serial);
    assert_eq!(tok["chuid_guid"].is_null(), spec.serial);
    for name in ["9a", "9c", "9d", "9e"] {
        let s = slot(&tok, name);
        assert!(s["certificate"].is_object(), "{name}: {s:#}");
        assert!(s["problem"].is_null(), "{name}: {s:#}");
        let known_from = match profile {
            Profile::Yk57 | Profile::Yk54 => "metadata",
            Profile::Compat if name == "9a" => "metadata",
            _ => "certificate",
        };
        assert_eq!(s["key"]["known_from"], known_from, "{name}: {s:#}");
    }
    // The text report too, and neither spends a try.
    let (text, _) = ok(ukey_on(dir.path(), &t).arg("status"));
    assert!(text.contains("PIN: 3"), "{text}");
    assert_eq!(tries(&t), (3, 3));
}

fn keygen_csr_and_cert_import(profile: Profile) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = token(d, profile);
    let pub_pem = d.join("pub.pem");
    ok(ukey_on(d, &t)
        .args(write_auth(profile))
        .args([
            "keygen", "--slot", "9c", "--alg", "p256", "--force", "--out",
        ])
        .arg(&pub_pem));
    // Until its certificate is installed the new key is what status shows,
    // in another run, with the old certificate flagged as not its own.
    let tok = status(d, &t);
    let s = slot(&tok, "9c");
    let known_from = match profile {
        Profile::Yk57 | Profile::Yk54 => "metadata",
        _ => "ukey-record",
    };
    assert_eq!(s["key"]["known_from"], known_from, "{s:#}");
    assert_eq!(s["key_matches_certificate"], false, "{s:#}");
    // The request is signed by the new key and carries it.
    let req = d.join("req.pem");
    ok(ukey_on(d, &t)
        .args(["--pin", PIN, "csr", "--slot", "9c", "--out"])
        .arg(&req));
    let verified = openssl(&["req", "-in", req.to_str().unwrap(), "-verify", "-noout"]);
    assert!(verified.contains("verify OK"), "{verified}");
    let req_key = openssl(&["req", "-in", req.to_str().unwrap(), "-pubkey", "-noout"]);
    assert_eq!(req_key, std::fs::read_to_string(&pub_pem).unwrap());
    // The CA's certificate goes in; the record of the key goes with it.
    let cert = d.join("cert.pem");
    issue(&req, &cert);
    ok(ukey_on(d, &t)
        .args(write_auth(profile))
        .args(["cert", "import", "--slot", "9c"])
        .arg(&cert));
    let tok = status(d, &t);
    let s = slot(&tok, "9c");
    assert!(s["problem"].is_null(), "{s:#}");
    assert_eq!(s["verdict"], "ok", "{s:#}");
    let p = load(&t);
    assert!(!p.objects.contains_key(&GENERATED_KEYS_OBJECT.0));
    assert!(
        !d.join("state/ukey/generated-keys").exists()
            || std::fs::read_dir(d.join("state/ukey/generated-keys"))
                .unwrap()
                .next()
                .is_none(),
        "no host record left"
    );
    assert_eq!(tries(&t), (3, 3));
}

fn renew_where_the_card_allows(profile: Profile) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t = token(d, profile);
    let before = load(&t);
    let req = d.join("req.pem");
    if profile.spec().vendor_objects && !profile.spec().move_key {
        // No MOVE KEY: said before the PIN, and refused without a terminal
        // or --retired-slot-ok; nothing asked or written.
        let bytes = std::fs::read(&t).unwrap();
        let (so, se) = fails(
            ukey_on(d, &t)
                .args([
                    "--json", "--pin", PIN, "renew", "request", "--slot", "9a", "--out",
                ])
                .arg(&req),
            1,
        );
        assert_eq!(json(&so)["kind"], "retired_slot_not_confirmed", "{so}");
        assert!(se.contains("stay there after the install"), "{se}");
        assert_eq!(std::fs::read(&t).unwrap(), bytes);
        assert_eq!(tries(&t), (3, 3));
    }
    let out = ukey_on(d, &t)
        .args(["--pin", PIN, "renew", "request", "--slot", "9a", "--out"])
        .arg(&req)
        .args(
            (profile.spec().vendor_objects && !profile.spec().move_key)
                .then_some("--retired-slot-ok"),
        )
        .output()
        .unwrap();
    let (so, se) = text(&out);
    if !profile.spec().vendor_objects {
        // No ADMIN DATA on this card: no PIN-protected management key, so
        // the PIN alone cannot authorise a renewal. Refused before anything
        // was asked or written.
        assert_eq!(out.status.code(), Some(1), "{so}{se}");
        assert!(se.contains("no PIN-protected management key"), "{se}");
        assert!(!se.contains("panicked"), "{se}");
        let after = load(&t);
        assert_eq!(
            serde_json::to_value(&after.keys).unwrap(),
            serde_json::to_value(&before.keys).unwrap()
        );
        assert_eq!(after.objects, before.objects);
        return;
    }
    assert!(out.status.success(), "{so}{se}");
    let cert = d.join("cert.pem");
    issue(&req, &cert);
    let (so, _) = ok(ukey_on(d, &t)
        .args(["--pin", PIN, "--json", "renew", "install"])
        .arg(&cert));
    let r = json(&so);
    let after = load(&t);
    if profile.spec().move_key {
        assert_eq!(r["promoted"], true, "{r:#}");
        assert_eq!(r["installed_in"], "9a");
    } else {
        // No MOVE KEY: the renewed pair stays in the retired slot, said so;
        // the old pair in 9A is untouched (no key lost).
        assert_eq!(r["promoted"], false, "{r:#}");
        assert_eq!(r["installed_in"], "82", "{r:#}");
        let (text, _) = text(&ukey_on(d, &t).arg("renew").arg("status").output().unwrap());
        assert!(text.contains("No renewal is staged"), "{text}");
        assert_eq!(
            after.key(Slot::Authentication).map(|k| &k.private_key),
            before.key(Slot::Authentication).map(|k| &k.private_key)
        );
        assert_eq!(
            after.objects[&Slot::Authentication.cert_object().0],
            before.objects[&Slot::Authentication.cert_object().0]
        );
        assert!(after.key(Slot::Retired(1)).is_some());
        // The marker keeps only the record of the renewed pair: status
        // shows 9A superseded by 82, which carries the role.
        let tok = status(d, &t);
        assert_eq!(slot(&tok, "9a")["verdict"], "superseded", "{tok:#}");
        assert_eq!(slot(&tok, "9a")["superseded_by"]["slot"], "82", "{tok:#}");
        assert_eq!(slot(&tok, "82")["renewal_of"]["slot"], "9a", "{tok:#}");
        assert_eq!(slot(&tok, "82")["role"], "PIV Authentication", "{tok:#}");
        assert_eq!(slot(&tok, "82")["verdict"], "ok", "{tok:#}");
    }
    if profile.spec().move_key {
        assert!(!after.objects.contains_key(&RENEWAL_OBJECT));
    }
    assert!(!after.objects.contains_key(&GENERATED_KEYS_OBJECT.0));
    assert_eq!(tries(&t), (3, 3));
}

/// One test per case and profile.
macro_rules! on_every_profile {
    ($($name:ident => $profile:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            const PROFILE: Profile = $profile;

            #[test]
            fn status_reports_counters_and_slots_without_spending_a_try() {
                super::status_reports_counters_and_slots_without_spending_a_try(PROFILE)
            }

            #[test]
            fn keygen_csr_and_cert_import() {
                super::keygen_csr_and_cert_import(PROFILE)
            }

            #[test]
            fn renew_where_the_card_allows() {
                super::renew_where_the_card_allows(PROFILE)
            }
        }
    )*};
}

on_every_profile!(
    yk57 => Profile::Yk57,
    yk54 => Profile::Yk54,
    yk4 => Profile::Yk4,
    generic => Profile::Generic,
    compat => Profile::Compat,
);
