//! A card's [`PublicKey`] to and from a SubjectPublicKeyInfo (RFC 5280
//! §4.1.2.7; RSA per RFC 8017 Appendix A.1, EC per RFC 5480), through the
//! RustCrypto key types so that what comes out is a valid key.

use super::{Algorithm, PublicKey};
use pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;

/// Why a key could not be turned into, or read from, a SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpkiError {
    /// Not RSA, P-256 or P-384.
    #[error("not an RSA, P-256 or P-384 key")]
    Unsupported,
    /// The key's numbers are no valid key of its kind.
    #[error("{0}")]
    Invalid(String),
}

impl PublicKey {
    /// SubjectPublicKeyInfo DER of this key.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, SpkiError> {
        let bad = |e: &dyn std::fmt::Display| SpkiError::Invalid(e.to_string());
        let doc = match self {
            PublicKey::Rsa { modulus, exponent } => rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(modulus),
                rsa::BigUint::from_bytes_be(exponent),
            )
            .map_err(|e| bad(&e))?
            .to_public_key_der(),
            PublicKey::Ec {
                alg: Algorithm::EccP256,
                point,
            } => p256::PublicKey::from_sec1_bytes(point)
                .map_err(|e| bad(&e))?
                .to_public_key_der(),
            PublicKey::Ec {
                alg: Algorithm::EccP384,
                point,
            } => p384::PublicKey::from_sec1_bytes(point)
                .map_err(|e| bad(&e))?
                .to_public_key_der(),
            _ => return Err(SpkiError::Unsupported),
        };
        Ok(doc.map_err(|e| bad(&e))?.as_bytes().to_vec())
    }

    /// The key in a SubjectPublicKeyInfo, in card terms: RSA of any size the
    /// `rsa` crate accepts, P-256 or P-384 as an uncompressed point.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SpkiError> {
        if let Ok(k) = rsa::RsaPublicKey::from_public_key_der(der) {
            return Ok(PublicKey::Rsa {
                modulus: k.n().to_bytes_be(),
                exponent: k.e().to_bytes_be(),
            });
        }
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey::Ec {
                alg: Algorithm::EccP256,
                point: p256::EncodedPoint::from(k).as_bytes().to_vec(),
            });
        }
        if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            return Ok(PublicKey::Ec {
                alg: Algorithm::EccP384,
                point: p384::EncodedPoint::from(k).as_bytes().to_vec(),
            });
        }
        Err(SpkiError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refusals() {
        let ec = p256::SecretKey::random(&mut rand::rngs::OsRng).public_key();
        let pk = PublicKey::Ec {
            alg: Algorithm::EccP256,
            point: p256::EncodedPoint::from(ec).as_bytes().to_vec(),
        };
        let der = pk.to_spki_der().unwrap();
        assert_eq!(der, ec.to_public_key_der().unwrap().as_bytes());
        assert_eq!(PublicKey::from_spki_der(&der).unwrap(), pk);

        // A point that is not on the curve is no key.
        let mut off = pk.clone();
        if let PublicKey::Ec { point, .. } = &mut off {
            point[40] ^= 1;
        }
        assert!(matches!(off.to_spki_der(), Err(SpkiError::Invalid(_))));

        let rsa = PublicKey::Rsa {
            modulus: vec![0xC3; 256],
            exponent: vec![1, 0, 1],
        };
        let der = rsa.to_spki_der().unwrap();
        assert_eq!(PublicKey::from_spki_der(&der).unwrap(), rsa);

        let x25519 = PublicKey::Curve25519 {
            alg: Algorithm::X25519,
            key: vec![9; 32],
        };
        assert_eq!(x25519.to_spki_der(), Err(SpkiError::Unsupported));
        assert_eq!(
            PublicKey::from_spki_der(b"\x30\x03\x02\x01\x00"),
            Err(SpkiError::Unsupported)
        );
    }
}
