//! PIV's key vocabulary in the module's neutral terms (`key.rs`), and back
//! where the card must be asked: algorithms, public keys, PIN policies,
//! origins, and a slot as the opaque [`KeyRef`] of its objects.

use crate::error::{Error, Result};
use crate::key::{KeyAlg, KeyAuth, Origin, PublicKey};
use crate::keyinfo::{CertInfo, KeyInfo};
use crate::object::KeyRef;
use apdu::piv::{self, Algorithm, KeyOrigin, PinPolicy, Slot};

/// A slot's objects are named by its key reference (9A, 82…).
pub fn key_ref(slot: Slot) -> KeyRef {
    KeyRef(u32::from(slot.key_ref()))
}

/// The slot a key reference names, if it names one.
pub fn slot_of(key: KeyRef) -> Option<Slot> {
    u8::try_from(key.0).ok().and_then(Slot::from_key_ref)
}

/// An asymmetric PIV algorithm in neutral terms.
pub fn key_alg(a: Algorithm) -> Option<KeyAlg> {
    Some(match a {
        Algorithm::Rsa1024 => KeyAlg::Rsa1024,
        Algorithm::Rsa2048 => KeyAlg::Rsa2048,
        Algorithm::Rsa3072 => KeyAlg::Rsa3072,
        Algorithm::Rsa4096 => KeyAlg::Rsa4096,
        Algorithm::EccP256 => KeyAlg::EcP256,
        Algorithm::EccP384 => KeyAlg::EcP384,
        Algorithm::Ed25519 => KeyAlg::Ed25519,
        Algorithm::X25519 => KeyAlg::X25519,
        Algorithm::Tdes | Algorithm::Aes128 | Algorithm::Aes192 | Algorithm::Aes256 => return None,
    })
}

/// The PIV algorithm of a key, as GENERAL AUTHENTICATE and GENERATE name it.
pub fn piv_alg(a: KeyAlg) -> Algorithm {
    match a {
        KeyAlg::Rsa1024 => Algorithm::Rsa1024,
        KeyAlg::Rsa2048 => Algorithm::Rsa2048,
        KeyAlg::Rsa3072 => Algorithm::Rsa3072,
        KeyAlg::Rsa4096 => Algorithm::Rsa4096,
        KeyAlg::EcP256 => Algorithm::EccP256,
        KeyAlg::EcP384 => Algorithm::EccP384,
        KeyAlg::Ed25519 => Algorithm::Ed25519,
        KeyAlg::X25519 => Algorithm::X25519,
    }
}

fn alg(a: Algorithm) -> Result<KeyAlg> {
    key_alg(a).ok_or_else(|| Error::DeviceError(format!("not a key pair's algorithm: {a}")))
}

/// A public key read from the card.
pub fn public(p: &piv::PublicKey) -> Result<PublicKey> {
    Ok(match p {
        piv::PublicKey::Rsa { modulus, exponent } => PublicKey::Rsa {
            modulus: modulus.clone(),
            exponent: exponent.clone(),
        },
        piv::PublicKey::Ec { alg: a, point } => PublicKey::Ec {
            alg: alg(*a)?,
            point: point.clone(),
        },
        piv::PublicKey::Curve25519 { alg: a, key } => PublicKey::Curve25519 {
            alg: alg(*a)?,
            key: key.clone(),
        },
    })
}

/// A neutral public key as PIV holds it (ukey's generated-key records).
pub fn piv_public(p: &PublicKey) -> piv::PublicKey {
    match p {
        PublicKey::Rsa { modulus, exponent } => piv::PublicKey::Rsa {
            modulus: modulus.clone(),
            exponent: exponent.clone(),
        },
        PublicKey::Ec { alg, point } => piv::PublicKey::Ec {
            alg: piv_alg(*alg),
            point: point.clone(),
        },
        PublicKey::Curve25519 { alg, key } => piv::PublicKey::Curve25519 {
            alg: piv_alg(*alg),
            key: key.clone(),
        },
    }
}

/// When a key of `slot` with `policy` needs the PIN (the slot's default
/// where the card reports none).
pub fn auth(slot: Slot, policy: PinPolicy) -> KeyAuth {
    let policy = match policy {
        PinPolicy::Default => slot.default_pin_policy(),
        p => p,
    };
    match policy {
        PinPolicy::Never => KeyAuth::Never,
        PinPolicy::Always | PinPolicy::MatchAlways => KeyAuth::Always,
        _ => KeyAuth::Login,
    }
}

pub fn origin(o: KeyOrigin) -> Origin {
    match o {
        KeyOrigin::Generated => Origin::Generated,
        KeyOrigin::Imported => Origin::Imported,
    }
}

/// From GET METADATA, which knows the real PIN policy (an answer without
/// algorithm or key is "cannot tell", never this).
pub fn key_from_metadata(slot: Slot, md: &piv::Metadata) -> Result<KeyInfo> {
    let a = md
        .algorithm
        .ok_or_else(|| Error::DeviceError("metadata without algorithm".into()))?;
    let p = md
        .public_key
        .as_ref()
        .ok_or_else(|| Error::DeviceError("metadata without public key".into()))?;
    Ok(KeyInfo {
        alg: alg(a)?,
        public: public(p)?,
        auth: auth(slot, md.policy.map_or(PinPolicy::Default, |p| p.0)),
        origin: md.origin.map(origin),
    })
}

/// From the certificate, on cards without GET METADATA.
pub fn key_from_cert(slot: Slot, cert: &CertInfo) -> KeyInfo {
    KeyInfo {
        alg: cert.public.algorithm(),
        public: cert.public.clone(),
        auth: auth(slot, PinPolicy::Default),
        origin: None,
    }
}

/// From ukey's record of a key it generated on a card that cannot report
/// it (see `apdu::piv::generated`).
pub fn key_from_record(slot: Slot, p: &piv::PublicKey) -> Result<KeyInfo> {
    let public = public(p)?;
    Ok(KeyInfo {
        alg: public.algorithm(),
        public,
        auth: auth(slot, PinPolicy::Default),
        origin: Some(Origin::Generated),
    })
}
