//! Demo provisioning: keys generated "on the card" in 9A/9C/9D/9E,
//! certificates from a throw-away demo CA (9A's expiring within 30 days, so
//! there is something to renew), CHUID and CCC, and a PIN-protected
//! management key — what a user's token looks like after enrolment.

use crate::ca::{self, Ca, CaError, LeafUse, DAY};
use crate::keys::PrivateKey;
use crate::profile::Profile;
use crate::state::{KeyEntry, MgmtKey, Persistent, SecretBytes};
use apdu::piv::{
    AdminData, Algorithm, Ccc, CertContainer, Chuid, KeyHistory, KeyOrigin, ManagementKey,
    ObjectId, ProtectedManagementKey, Slot, TouchPolicy,
};
use std::path::Path;
use std::time::SystemTime;

/// What to put on a demo token.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Keys to generate, with their algorithms.
    pub keys: Vec<(Slot, Algorithm)>,
    /// Days until the 9A certificate expires.
    pub auth_expires_in_days: u64,
    /// Subject of the user's certificates.
    pub subject: String,
    /// Protect the management key with the PIN (YubiKey convention).
    pub protect_management_key: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            keys: vec![
                (Slot::Authentication, Algorithm::Rsa2048),
                (Slot::Signature, Algorithm::EccP256),
                (Slot::KeyManagement, Algorithm::Rsa2048),
                (Slot::CardAuthentication, Algorithm::EccP384),
            ],
            auth_expires_in_days: 25,
            subject: "CN=Demo User,OU=Purchasing,O=Example Pharma Ltd,C=CN".into(),
            protect_management_key: true,
        }
    }
}

/// Subject of the demo CA.
pub const DEMO_CA_SUBJECT: &str = "CN=ukey Demo CA,O=ukey demo (not a real CA)";

/// Load the demo CA from `dir`, or create and save one there.
pub fn demo_ca(dir: &Path) -> Result<Ca, CaError> {
    if dir.join("ca.key").exists() {
        Ca::load(dir)
    } else {
        let ca = Ca::new(DEMO_CA_SUBJECT)?;
        ca.save(dir)?;
        Ok(ca)
    }
}

/// Write a certificate into `slot`'s container (as PUT DATA would).
pub fn put_certificate(p: &mut Persistent, slot: Slot, der: &[u8]) -> Result<(), CaError> {
    let content = CertContainer {
        der: der.to_vec(),
        compressed: false,
    }
    .encode()
    .map_err(|e| CaError::Key(e.to_string()))?;
    p.objects.insert(slot.cert_object().0, content);
    Ok(())
}

/// Provision `p` as a demo token with certificates issued by `ca`.
pub fn provision(p: &mut Persistent, ca: &Ca, opts: &DemoOptions) -> Result<(), CaError> {
    let subject = ca::parse_name(&opts.subject)?;
    let now = SystemTime::now();
    for &(slot, alg) in &opts.keys {
        let key = PrivateKey::generate(alg).map_err(|sw| CaError::Key(format!("{sw:?}")))?;
        let (not_before, not_after) = if slot == Slot::Authentication {
            let end = now + DAY * u32::try_from(opts.auth_expires_in_days).unwrap_or(u32::MAX);
            (end - 365 * DAY, end)
        } else {
            (now - 30 * DAY, now + 700 * DAY)
        };
        let usage = if slot == Slot::KeyManagement {
            LeafUse::Encryption
        } else {
            LeafUse::Signing
        };
        let cert = ca.issue_leaf(&subject, &key.spki_der(), not_before, not_after, usage)?;
        p.set_key(
            slot,
            KeyEntry::new(
                &key,
                slot.default_pin_policy(),
                TouchPolicy::Never,
                KeyOrigin::Generated,
            ),
        );
        put_certificate(p, slot, &cert)?;
    }
    cover_retired(p, opts.keys.iter().map(|(slot, _)| *slot));
    claim_off_card_certs(p);
    let mut guid = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut guid);
    p.objects.insert(
        ObjectId::CHUID.0,
        Chuid {
            fasc_n: Chuid::DEFAULT_FASC_N.to_vec(),
            guid: guid.to_vec(),
            expiry: "20351231".into(),
            signature: Vec::new(),
        }
        .encode(),
    );
    let mut card_id = vec![0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
    card_id.extend_from_slice(&guid[..14]);
    p.objects.insert(
        ObjectId::CARD_CAPABILITY_CONTAINER.0,
        Ccc { card_id }.encode(),
    );
    if opts.protect_management_key && p.profile.spec().vendor_objects {
        protect_management_key(p)?;
    }
    Ok(())
}

/// The card's Key History (an empty one where it has none).
fn key_history(p: &Persistent) -> KeyHistory {
    p.objects
        .get(&ObjectId::KEY_HISTORY.0)
        .and_then(|c| KeyHistory::parse(c).ok())
        .unwrap_or_default()
}

/// What some cards carry (profile `compat`): a Key History claiming retired
/// keys whose certificates are elsewhere — and are nowhere.
fn claim_off_card_certs(p: &mut Persistent) {
    let off_card = p.profile.spec().demo_off_card_certs;
    if off_card == 0 {
        return;
    }
    let mut kh = key_history(p);
    kh.off_card_certs = off_card;
    p.objects.insert(ObjectId::KEY_HISTORY.0, kh.encode());
}

/// The keys, certificates and other objects of `p` on a card of `profile`,
/// as far as that card keeps them (tests and benchmarks compare profiles on
/// the same content without generating keys again): no attestation key
/// where the card has none, no vendor objects where it knows none (then
/// the management key is the factory default, not PIN-protected), a
/// PIN-protected key re-made where the card lacks its algorithm.
pub fn with_profile(p: &Persistent, profile: Profile) -> Result<Persistent, CaError> {
    let spec = profile.spec();
    let mut out = Persistent::factory_for(profile, p.serial, None);
    let attestation = Persistent::slot_key(Slot::Attestation);
    for (k, v) in &p.keys {
        if *k != attestation {
            out.keys.insert(k.clone(), v.clone());
        }
    }
    let protected = crate::applet::management_key_protected(p);
    for (tag, v) in &p.objects {
        let mgmt_copy = *tag == ObjectId::PRINTED_INFORMATION.0 && protected;
        if spec.knows_object(*tag) && *tag != ObjectId::ATTESTATION.0 && !mgmt_copy {
            out.objects.insert(*tag, v.clone());
        }
    }
    if protected && spec.vendor_objects {
        let alg = Algorithm::from_code(p.management_key.algorithm);
        if alg.is_some_and(|a| spec.management_algorithm_ok(a)) {
            out.management_key = p.management_key.clone();
            if let Some(printed) = p.objects.get(&ObjectId::PRINTED_INFORMATION.0) {
                out.objects
                    .insert(ObjectId::PRINTED_INFORMATION.0, printed.clone());
            }
        } else {
            protect_management_key(&mut out)?;
        }
    } else {
        out.objects.remove(&ObjectId::ADMIN_DATA.0);
    }
    claim_off_card_certs(&mut out);
    Ok(out)
}

/// Make the Key History object cover the retired slots in `slots` (their
/// certificates are on the card), as SP 800-73-4 Part 1 §3.3.2 asks of a
/// card with retired keys: clients enumerate retired slots only up to it.
pub fn cover_retired(p: &mut Persistent, slots: impl IntoIterator<Item = Slot>) {
    let Some(highest) = slots
        .into_iter()
        .filter_map(|s| match s {
            Slot::Retired(n) => Some(n),
            _ => None,
        })
        .max()
    else {
        return;
    };
    let mut kh = key_history(p);
    let covered = kh.on_card_certs.saturating_add(kh.off_card_certs);
    if covered >= highest {
        return;
    }
    kh.on_card_certs = highest - kh.off_card_certs.min(highest);
    p.objects.insert(ObjectId::KEY_HISTORY.0, kh.encode());
}

/// Replace the management key with a random key (AES-192, 3DES on cards
/// without AES) stored in PRINTED, readable only after PIN verification
/// (YubiKey's PIN-protected mode; it needs the vendor object ADMIN DATA,
/// which cards without the YubiKey extensions do not keep).
pub fn protect_management_key(p: &mut Persistent) -> Result<(), CaError> {
    let spec = p.profile.spec();
    if !spec.vendor_objects {
        return Err(CaError::Key(format!(
            "a {} card keeps no ADMIN DATA: its management key cannot be PIN-protected",
            spec.name
        )));
    }
    let alg = if spec.aes_management_key {
        Algorithm::Aes192
    } else {
        Algorithm::Tdes
    };
    let key = ManagementKey::random(alg).map_err(|e| CaError::Key(e.to_string()))?;
    p.management_key = MgmtKey {
        algorithm: alg.code(),
        key: SecretBytes::new(key.as_bytes()),
        touch: TouchPolicy::Never.code(),
        is_default: false,
    };
    p.objects.insert(
        ObjectId::PRINTED_INFORMATION.0,
        ProtectedManagementKey::encode(key.as_bytes()).to_vec(),
    );
    p.objects.insert(
        ObjectId::ADMIN_DATA.0,
        AdminData {
            flags: AdminData::FLAG_MGMT_KEY_STORED,
            salt: None,
            pin_timestamp: None,
        }
        .encode(),
    );
    Ok(())
}
