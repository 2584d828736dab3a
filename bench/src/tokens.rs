//! The simulated tokens the benchmarks run on, made with the simulator's own
//! demo provisioning (keys generated "on the card", certificates from a
//! throw-away CA, CHUID, CCC, PIN-protected management key):
//!
//! * `demo4`: 9A RSA-2048, 9C P-256 (PIN always), 9D RSA-2048, 9E P-256 —
//!   the 4-certificate card of the APDU scenarios and the throughput runs;
//! * `certs1`: the same card with only 9A (one certificate);
//! * `certs24`: `demo4` plus 20 retired slots (82..95) with P-256 keys and
//!   certificates, and a Key History object covering them;
//! * `demo4-<profile>`: `demo4`'s keys and certificates on the simulator's
//!   other card profiles (YubiKey 5.4 and 4, a plain PIV card, a
//!   third-party applet imitating a YubiKey); `demo4` is the YubiKey 5.7.
//!
//! RSA keys are generated once and shared, so the cards differ only in what
//! the comparison is about.

use apdu::piv::{Algorithm, ObjectId, Slot};
use std::path::{Path, PathBuf};
use ukey_sim::ca::Ca;
use ukey_sim::demo::{self, DemoOptions};
use ukey_sim::profile::Profile;
use ukey_sim::state::Persistent;

pub const DEMO4: &str = "demo4";
pub const CERTS1: &str = "certs1";
pub const CERTS24: &str = "certs24";

/// CKA_IDs of the keys the benchmarks use (DESIGN.md's mapping).
pub const ID_9A_RSA: u8 = 0x01;
pub const ID_9C_P256: u8 = 0x02;
pub const ID_9E_P256: u8 = 0x04;

/// The bench card of a profile: `demo4` (YubiKey 5.7) or `demo4-<name>`.
pub fn profile_card(profile: Profile) -> String {
    match profile {
        Profile::Yk57 => DEMO4.to_string(),
        p => format!("{DEMO4}-{}", p.name()),
    }
}

pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

fn options(keys: Vec<(Slot, Algorithm)>) -> DemoOptions {
    DemoOptions {
        keys,
        // Valid for the whole run: no certificate expires under the benchmark.
        auth_expires_in_days: 365,
        ..DemoOptions::default()
    }
}

/// Write the three cards into `dir`; `copies` extra copies of `demo4`
/// (`demo4-1.json`...) with their own serials, for the multi-token runs.
pub fn make(dir: &Path, copies: usize) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ca = Ca::new("CN=ukey bench CA,O=ukey benchmarks").map_err(|e| e.to_string())?;
    let mut d4 = Persistent::factory(30_000_004);
    demo::provision(
        &mut d4,
        &ca,
        &options(vec![
            (Slot::Authentication, Algorithm::Rsa2048),
            (Slot::Signature, Algorithm::EccP256),
            (Slot::KeyManagement, Algorithm::Rsa2048),
            (Slot::CardAuthentication, Algorithm::EccP256),
        ]),
    )
    .map_err(|e| e.to_string())?;
    save(&d4, &path(dir, DEMO4))?;

    let mut c1 = d4.clone();
    c1.serial = 30_000_001;
    for slot in [
        Slot::Signature,
        Slot::KeyManagement,
        Slot::CardAuthentication,
    ] {
        c1.remove_key(slot);
        c1.objects.remove(&slot.cert_object().0);
    }
    save(&c1, &path(dir, CERTS1))?;

    let mut c24 = d4.clone();
    c24.serial = 30_000_024;
    let retired: Vec<(Slot, Algorithm)> =
        Slot::retired().map(|s| (s, Algorithm::EccP256)).collect();
    demo::provision(&mut c24, &ca, &options(retired)).map_err(|e| e.to_string())?;
    let certs = c24
        .objects
        .keys()
        .filter(|t| Slot::all().any(|s| s.cert_object().0 == **t))
        .count();
    if certs != 24 || !c24.objects.contains_key(&ObjectId::KEY_HISTORY.0) {
        return Err(format!("certs24 has {certs} certificates"));
    }
    save(&c24, &path(dir, CERTS24))?;

    for (i, profile) in Profile::ALL.into_iter().enumerate() {
        if profile == Profile::Yk57 {
            continue;
        }
        let mut p = demo::with_profile(&d4, profile).map_err(|e| e.to_string())?;
        p.serial = 30_000_200 + i as u32;
        save(&p, &path(dir, &profile_card(profile)))?;
    }

    for i in 1..=copies {
        let mut c = d4.clone();
        c.serial = 30_000_100 + i as u32;
        save(&c, &path(dir, &format!("{DEMO4}-{i}")))?;
    }
    Ok(())
}

fn save(p: &Persistent, path: &Path) -> Result<(), String> {
    p.save(path).map_err(|e| format!("{}: {e}", path.display()))
}
