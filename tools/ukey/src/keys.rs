//! Private-key operations on the token and their checks on the host:
//! signatures (PKCS#1 v1.5 padded on the host for RSA, ECDSA on a digest),
//! RSA decryption and ECDH round trips.

use crate::error::{CliError, Result};
use apdu::piv::{ecdsa_input, Algorithm, PublicKey, Slot};
use apdu::Session;
use der::asn1::Any;
use sha2::{Digest, Sha256, Sha384};
use spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

fn rsa_key(modulus: &[u8], exponent: &[u8]) -> Result<rsa::RsaPublicKey> {
    rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(modulus),
        rsa::BigUint::from_bytes_be(exponent),
    )
    .map_err(|e| CliError::new(format!("RSA public key: {e}")))
}

fn unsupported(alg: Algorithm) -> CliError {
    CliError::new(format!("{alg} keys are not supported by ukey"))
}

/// The X.509 signature algorithm `sign` uses for a key.
pub fn signature_algorithm(pk: &PublicKey) -> Result<AlgorithmIdentifierOwned> {
    use const_oid::db::rfc5912::{
        ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, SHA_256_WITH_RSA_ENCRYPTION,
    };
    Ok(match pk {
        PublicKey::Rsa { .. } => AlgorithmIdentifierOwned {
            oid: SHA_256_WITH_RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        PublicKey::Ec {
            alg: Algorithm::EccP256,
            ..
        } => AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_256,
            parameters: None,
        },
        PublicKey::Ec {
            alg: Algorithm::EccP384,
            ..
        } => AlgorithmIdentifierOwned {
            oid: ECDSA_WITH_SHA_384,
            parameters: None,
        },
        other => return Err(unsupported(other.algorithm())),
    })
}

/// EMSA-PKCS1-v1_5 encoding of SHA-256(msg) for a `k`-byte modulus (RFC 8017 §9.2).
fn pkcs1_sha256_block(msg: &[u8], k: usize) -> Result<Vec<u8>> {
    let mut t = rsa::Pkcs1v15Sign::new::<Sha256>().prefix.into_vec();
    t.extend_from_slice(&Sha256::digest(msg));
    apdu::piv::pkcs1_sign_input(k, &t)
        .ok_or_else(|| CliError::new("RSA key too short for a SHA-256 signature"))
}

fn left_pad(mut v: Vec<u8>, k: usize) -> Vec<u8> {
    if v.len() < k {
        let mut out = vec![0u8; k - v.len()];
        out.append(&mut v);
        out
    } else {
        v
    }
}

/// Sign `msg` with the key in `slot` (SHA-256 for RSA and P-256, SHA-384
/// for P-384). The signature is as X.509 wants it: the RSA block, or a DER
/// `SEQUENCE { r, s }`. The PIN must be verified (just before, for 9C).
pub fn sign(s: &mut Session<'_>, slot: Slot, pk: &PublicKey, msg: &[u8]) -> Result<Vec<u8>> {
    match pk {
        PublicKey::Rsa { modulus, .. } => {
            let alg = pk.algorithm();
            let em = pkcs1_sha256_block(msg, modulus.len())?;
            let sig = s.sign_raw(slot, alg, &em)?;
            Ok(left_pad(sig.to_vec(), modulus.len()))
        }
        PublicKey::Ec { alg, .. } => {
            let digest = match alg {
                Algorithm::EccP256 => Sha256::digest(msg).to_vec(),
                Algorithm::EccP384 => Sha384::digest(msg).to_vec(),
                other => return Err(unsupported(*other)),
            };
            Ok(s.sign_raw(slot, *alg, &ecdsa_input(*alg, &digest))?
                .to_vec())
        }
        other => Err(unsupported(other.algorithm())),
    }
}

/// Check a signature made by [`sign`] against the public key.
pub fn verify(pk: &PublicKey, msg: &[u8], sig: &[u8]) -> Result<bool> {
    use signature::Verifier;
    Ok(match pk {
        PublicKey::Rsa { modulus, exponent } => rsa_key(modulus, exponent)?
            .verify(
                rsa::Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(msg),
                sig,
            )
            .is_ok(),
        PublicKey::Ec {
            alg: Algorithm::EccP256,
            point,
        } => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|e| CliError::new(format!("P-256 public key: {e}")))?;
            p256::ecdsa::Signature::from_der(sig).is_ok_and(|sig| vk.verify(msg, &sig).is_ok())
        }
        PublicKey::Ec {
            alg: Algorithm::EccP384,
            point,
        } => {
            let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|e| CliError::new(format!("P-384 public key: {e}")))?;
            p384::ecdsa::Signature::from_der(sig).is_ok_and(|sig| vk.verify(msg, &sig).is_ok())
        }
        other => return Err(unsupported(other.algorithm())),
    })
}

/// Encrypt a random secret to the RSA key on the host, decrypt it on the
/// token (raw RSA), unpad and compare.
pub fn rsa_decrypt_round_trip(s: &mut Session<'_>, slot: Slot, pk: &PublicKey) -> Result<bool> {
    let PublicKey::Rsa { modulus, exponent } = pk else {
        return Err(CliError::new("not an RSA key"));
    };
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret[..]);
    let ct = rsa_key(modulus, exponent)?
        .encrypt(&mut rand::rngs::OsRng, rsa::Pkcs1v15Encrypt, &secret[..])
        .map_err(|e| CliError::new(format!("RSA encryption: {e}")))?;
    let raw = s.sign_raw(slot, pk.algorithm(), &ct)?;
    let em = Zeroizing::new(left_pad(raw.to_vec(), modulus.len()));
    // EME-PKCS1-v1_5: 00 02 PS (non-zero, 8+) 00 M
    let plain = match em.get(..2) {
        Some([0x00, 0x02]) => em[2..]
            .iter()
            .position(|b| *b == 0)
            .filter(|i| *i >= 8)
            .map(|i| &em[2 + i + 1..]),
        _ => None,
    };
    Ok(plain.is_some_and(|m| m == &secret[..]))
}

/// ECDH between an ephemeral host key and the token's key; both sides
/// must find the same shared secret.
pub fn ecdh_round_trip(s: &mut Session<'_>, slot: Slot, pk: &PublicKey) -> Result<bool> {
    let PublicKey::Ec { alg, point } = pk else {
        return Err(CliError::new("not an EC key"));
    };
    macro_rules! round_trip {
        ($curve:ident) => {{
            let eph = $curve::SecretKey::random(&mut rand::rngs::OsRng);
            let eph_point = $curve::EncodedPoint::from(eph.public_key());
            let card_pub = $curve::PublicKey::from_sec1_bytes(point)
                .map_err(|e| CliError::new(format!("EC public key: {e}")))?;
            let host = $curve::ecdh::diffie_hellman(eph.to_nonzero_scalar(), card_pub.as_affine());
            let card = s.ecdh(slot, *alg, eph_point.as_bytes())?;
            Ok(&card[..] == host.raw_secret_bytes().as_slice())
        }};
    }
    match alg {
        Algorithm::EccP256 => round_trip!(p256),
        Algorithm::EccP384 => round_trip!(p384),
        other => Err(unsupported(*other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_block_layout() {
        let em = pkcs1_sha256_block(b"abc", 256).unwrap();
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0x00, 0x01]);
        // 19-byte DigestInfo prefix + 32-byte digest at the end.
        assert_eq!(em[256 - 52], 0x00);
        assert!(em[2..256 - 52].iter().all(|b| *b == 0xFF));
        assert_eq!(&em[256 - 32..], Sha256::digest(b"abc").as_slice());
        assert!(pkcs1_sha256_block(b"abc", 40).is_err());
    }

    #[test]
    fn verify_accepts_host_signatures() {
        use signature::Signer;
        let k = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let sig: p256::ecdsa::Signature = k.sign(b"msg");
        let pk = PublicKey::Ec {
            alg: Algorithm::EccP256,
            point: k
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        };
        assert!(verify(&pk, b"msg", sig.to_der().as_bytes()).unwrap());
        assert!(!verify(&pk, b"other", sig.to_der().as_bytes()).unwrap());
    }
}
