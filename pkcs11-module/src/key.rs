//! The key vocabulary the PKCS#11 layer speaks, whatever kind of token
//! holds the key: its algorithm, its public half, when it needs the PIN and
//! where it came from. Each backend says how its own types map onto these
//! (PIV: `token/convert.rs`).

use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;

/// A key's algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    Rsa1024,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcP256,
    EcP384,
    Ed25519,
    X25519,
}

impl KeyAlg {
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Self::Rsa1024 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096
        )
    }

    /// A Weierstrass curve this module signs ECDSA and derives ECDH with.
    pub fn is_ec(self) -> bool {
        matches!(self, Self::EcP256 | Self::EcP384)
    }

    /// RSA modulus bits, or the curve's field bits.
    pub fn bits(self) -> usize {
        match self {
            Self::Rsa1024 => 1024,
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
            Self::EcP256 | Self::Ed25519 | Self::X25519 => 256,
            Self::EcP384 => 384,
        }
    }

    pub fn size_bytes(self) -> usize {
        self.bits().div_ceil(8)
    }

    pub fn rsa_from_bits(bits: usize) -> Option<Self> {
        match bits {
            1024 => Some(Self::Rsa1024),
            2048 => Some(Self::Rsa2048),
            3072 => Some(Self::Rsa3072),
            4096 => Some(Self::Rsa4096),
            _ => None,
        }
    }

    /// Short name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa1024 => "rsa1024",
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::EcP256 => "p256",
            Self::EcP384 => "p384",
            Self::Ed25519 => "ed25519",
            Self::X25519 => "x25519",
        }
    }
}

impl std::fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The public half of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// Uncompressed SEC1 point (04 ‖ x ‖ y).
    Ec {
        alg: KeyAlg,
        point: Vec<u8>,
    },
    /// 32-byte Ed25519 / X25519 public key.
    Curve25519 {
        alg: KeyAlg,
        key: Vec<u8>,
    },
}

impl PublicKey {
    pub fn algorithm(&self) -> KeyAlg {
        match self {
            Self::Rsa { modulus, .. } => {
                KeyAlg::rsa_from_bits(modulus.len() * 8).unwrap_or(KeyAlg::Rsa2048)
            }
            Self::Ec { alg, .. } | Self::Curve25519 { alg, .. } => *alg,
        }
    }

    /// The SubjectPublicKeyInfo (DER); `None` for a key it cannot express.
    pub fn to_spki_der(&self) -> Option<Vec<u8>> {
        let doc = match self {
            PublicKey::Rsa { modulus, exponent } => rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(modulus),
                rsa::BigUint::from_bytes_be(exponent),
            )
            .ok()?
            .to_public_key_der(),
            PublicKey::Ec {
                alg: KeyAlg::EcP256,
                point,
            } => p256::PublicKey::from_sec1_bytes(point)
                .ok()?
                .to_public_key_der(),
            PublicKey::Ec {
                alg: KeyAlg::EcP384,
                point,
            } => p384::PublicKey::from_sec1_bytes(point)
                .ok()?
                .to_public_key_der(),
            _ => return None,
        };
        Some(doc.ok()?.as_bytes().to_vec())
    }

    /// The key in a SubjectPublicKeyInfo: RSA, P-256 or P-384 (as an
    /// uncompressed point); `None` for anything else.
    pub fn from_spki_der(der: &[u8]) -> Option<Self> {
        if let Ok(k) = rsa::RsaPublicKey::from_public_key_der(der) {
            return Some(PublicKey::Rsa {
                modulus: k.n().to_bytes_be(),
                exponent: k.e().to_bytes_be(),
            });
        }
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Some(PublicKey::Ec {
                alg: KeyAlg::EcP256,
                point: p256::EncodedPoint::from(k).as_bytes().to_vec(),
            });
        }
        if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
            return Some(PublicKey::Ec {
                alg: KeyAlg::EcP384,
                point: p384::EncodedPoint::from(k).as_bytes().to_vec(),
            });
        }
        None
    }
}

/// When a private key needs the user's PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAuth {
    /// Usable without any login (CKA_PRIVATE false).
    Never,
    /// Usable while the user is logged in.
    Login,
    /// Needs the PIN again before every use (CKA_ALWAYS_AUTHENTICATE).
    Always,
}

/// Where a private key came from, when the token can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Generated,
    Imported,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_round_trips() {
        let ec = p256::SecretKey::random(&mut rand::rngs::OsRng).public_key();
        let pk = PublicKey::Ec {
            alg: KeyAlg::EcP256,
            point: p256::EncodedPoint::from(ec).as_bytes().to_vec(),
        };
        let der = pk.to_spki_der().unwrap();
        assert_eq!(PublicKey::from_spki_der(&der), Some(pk.clone()));
        let mut off = pk;
        if let PublicKey::Ec { point, .. } = &mut off {
            point[40] ^= 1;
        }
        assert_eq!(off.to_spki_der(), None);
        assert_eq!(KeyAlg::rsa_from_bits(3072), Some(KeyAlg::Rsa3072));
        assert_eq!(KeyAlg::EcP384.size_bytes(), 48);
    }
}
