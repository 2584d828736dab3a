//! Mechanisms: the list and C_GetMechanismInfo, and how each one turns
//! caller data into the block the card's raw operation takes (hashing and
//! padding on the host) and the card's answer into the PKCS#11 format.

use crate::error::{Error, Result};
use crate::key::{KeyAlg, PublicKey};
use crate::keyinfo::KeyInfo;
use crate::pad::{self, HashAlg};
use crate::values::{MechParams, Mechanism};
use cryptoki_sys::*;

const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;

/// Every mechanism the module offers, with its flags; sizes come from the card.
const TABLE: &[(CK_MECHANISM_TYPE, CK_FLAGS)] = &[
    (CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_HW | CKF_GENERATE_KEY_PAIR),
    (CKM_RSA_PKCS, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_DECRYPT),
    (CKM_RSA_X_509, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_DECRYPT),
    (CKM_RSA_PKCS_OAEP, CKF_HW | CKF_DECRYPT),
    (CKM_RSA_PKCS_PSS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA1_RSA_PKCS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA224_RSA_PKCS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA256_RSA_PKCS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_RSA_PKCS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_RSA_PKCS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA1_RSA_PKCS_PSS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA224_RSA_PKCS_PSS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA256_RSA_PKCS_PSS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_RSA_PKCS_PSS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_RSA_PKCS_PSS, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (
        CKM_EC_KEY_PAIR_GEN,
        CKF_HW | CKF_GENERATE_KEY_PAIR | EC_FLAGS,
    ),
    (CKM_ECDSA, CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDSA_SHA1, CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDSA_SHA224, CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDSA_SHA256, CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDSA_SHA384, CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDSA_SHA512, CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS),
    (CKM_ECDH1_DERIVE, CKF_HW | CKF_DERIVE | EC_FLAGS),
];

/// The card's mechanisms, then the digests the module computes itself.
pub fn list() -> Vec<CK_MECHANISM_TYPE> {
    TABLE
        .iter()
        .map(|(m, _)| *m)
        .chain(crate::digest::DIGESTS.iter().map(|(m, _)| *m))
        .collect()
}

/// C_GetMechanismInfo for a card whose largest RSA key is `max_rsa` bits.
/// Digests take no key (sizes 0) and run in software (no CKF_HW).
pub fn info(kind: CK_MECHANISM_TYPE, max_rsa: usize) -> Result<CK_MECHANISM_INFO> {
    if crate::digest::algorithm(kind).is_some() {
        return Ok(CK_MECHANISM_INFO {
            ulMinKeySize: 0,
            ulMaxKeySize: 0,
            flags: CKF_DIGEST,
        });
    }
    let (_, flags) = TABLE
        .iter()
        .find(|(m, _)| *m == kind)
        .ok_or(Error::MechanismInvalid)?;
    let ec = flags & CKF_EC_F_P != 0;
    Ok(CK_MECHANISM_INFO {
        ulMinKeySize: if ec { 256 } else { 1024 },
        ulMaxKeySize: if ec { 384 } else { max_rsa as CK_ULONG },
        flags: *flags,
    })
}

fn hash_of(m: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    match m {
        CKM_SHA_1 => Some(HashAlg::Sha1),
        CKM_SHA224 => Some(HashAlg::Sha224),
        CKM_SHA256 => Some(HashAlg::Sha256),
        CKM_SHA384 => Some(HashAlg::Sha384),
        CKM_SHA512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

fn mgf_of(m: CK_RSA_PKCS_MGF_TYPE) -> Option<HashAlg> {
    match m {
        CKG_MGF1_SHA1 => Some(HashAlg::Sha1),
        CKG_MGF1_SHA224 => Some(HashAlg::Sha224),
        CKG_MGF1_SHA256 => Some(HashAlg::Sha256),
        CKG_MGF1_SHA384 => Some(HashAlg::Sha384),
        CKG_MGF1_SHA512 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// How a signature is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignScheme {
    /// PKCS#1 v1.5; with `hash` the data is hashed and wrapped in a DigestInfo.
    RsaPkcs1 { hash: Option<HashAlg> },
    /// PSS; with `prehash` the data is hashed first, else it is the hash.
    RsaPss {
        prehash: Option<HashAlg>,
        hash: HashAlg,
        mgf: HashAlg,
        salt_len: usize,
    },
    /// Raw RSA on a block (CKM_RSA_X_509).
    RsaRaw,
    /// ECDSA; with `hash` the data is hashed first, else it is the digest.
    Ecdsa { hash: Option<HashAlg> },
}

impl SignScheme {
    /// The hash run over multi-part input, if any.
    pub fn prehash(&self) -> Option<HashAlg> {
        match self {
            SignScheme::RsaPkcs1 { hash } | SignScheme::Ecdsa { hash } => *hash,
            SignScheme::RsaPss { prehash, .. } => *prehash,
            SignScheme::RsaRaw => None,
        }
    }
}

/// Check `mech` against the key and return how to sign with it.
pub fn sign_scheme(mech: &Mechanism, alg: KeyAlg) -> Result<SignScheme> {
    let rsa = alg.is_rsa();
    let need = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(Error::KeyTypeInconsistent)
        }
    };
    let no_params = || match mech.params {
        MechParams::None => Ok(()),
        _ => Err(Error::MechanismParamInvalid),
    };
    let scheme = match mech.kind {
        CKM_RSA_PKCS | CKM_SHA1_RSA_PKCS | CKM_SHA224_RSA_PKCS | CKM_SHA256_RSA_PKCS
        | CKM_SHA384_RSA_PKCS | CKM_SHA512_RSA_PKCS => {
            need(rsa)?;
            no_params()?;
            SignScheme::RsaPkcs1 {
                hash: match mech.kind {
                    CKM_SHA1_RSA_PKCS => Some(HashAlg::Sha1),
                    CKM_SHA224_RSA_PKCS => Some(HashAlg::Sha224),
                    CKM_SHA256_RSA_PKCS => Some(HashAlg::Sha256),
                    CKM_SHA384_RSA_PKCS => Some(HashAlg::Sha384),
                    CKM_SHA512_RSA_PKCS => Some(HashAlg::Sha512),
                    _ => None,
                },
            }
        }
        CKM_RSA_X_509 => {
            need(rsa)?;
            no_params()?;
            SignScheme::RsaRaw
        }
        CKM_RSA_PKCS_PSS
        | CKM_SHA1_RSA_PKCS_PSS
        | CKM_SHA224_RSA_PKCS_PSS
        | CKM_SHA256_RSA_PKCS_PSS
        | CKM_SHA384_RSA_PKCS_PSS
        | CKM_SHA512_RSA_PKCS_PSS => {
            need(rsa)?;
            let MechParams::Pss {
                hash,
                mgf,
                salt_len,
            } = &mech.params
            else {
                return Err(Error::MechanismParamInvalid);
            };
            let hash = hash_of(*hash).ok_or(Error::MechanismParamInvalid)?;
            let mgf = mgf_of(*mgf).ok_or(Error::MechanismParamInvalid)?;
            let prehash = match mech.kind {
                CKM_SHA1_RSA_PKCS_PSS => Some(HashAlg::Sha1),
                CKM_SHA224_RSA_PKCS_PSS => Some(HashAlg::Sha224),
                CKM_SHA256_RSA_PKCS_PSS => Some(HashAlg::Sha256),
                CKM_SHA384_RSA_PKCS_PSS => Some(HashAlg::Sha384),
                CKM_SHA512_RSA_PKCS_PSS => Some(HashAlg::Sha512),
                _ => None,
            };
            if prehash.is_some_and(|p| p != hash) {
                return Err(Error::MechanismParamInvalid);
            }
            if alg.size_bytes() < hash.output_len() + salt_len + 2 {
                return Err(Error::MechanismParamInvalid);
            }
            SignScheme::RsaPss {
                prehash,
                hash,
                mgf,
                salt_len: *salt_len,
            }
        }
        CKM_ECDSA | CKM_ECDSA_SHA1 | CKM_ECDSA_SHA224 | CKM_ECDSA_SHA256 | CKM_ECDSA_SHA384
        | CKM_ECDSA_SHA512 => {
            need(alg.is_ec())?;
            no_params()?;
            SignScheme::Ecdsa {
                hash: match mech.kind {
                    CKM_ECDSA_SHA1 => Some(HashAlg::Sha1),
                    CKM_ECDSA_SHA224 => Some(HashAlg::Sha224),
                    CKM_ECDSA_SHA256 => Some(HashAlg::Sha256),
                    CKM_ECDSA_SHA384 => Some(HashAlg::Sha384),
                    CKM_ECDSA_SHA512 => Some(HashAlg::Sha512),
                    _ => None,
                },
            }
        }
        m if TABLE.iter().any(|(t, _)| *t == m) => return Err(Error::MechanismInvalid),
        _ => return Err(Error::MechanismInvalid),
    };
    Ok(scheme)
}

/// Length of a signature of this key.
pub fn signature_len(key: &KeyInfo) -> usize {
    if key.is_rsa() {
        key.alg.size_bytes()
    } else {
        2 * key.alg.size_bytes()
    }
}

/// The block the card operates on, for the complete input (hashed if the
/// scheme hashes: `input` is then the digest).
pub fn sign_block(scheme: &SignScheme, key: &KeyInfo, input: &[u8]) -> Result<Vec<u8>> {
    let k = key.alg.size_bytes();
    match scheme {
        SignScheme::RsaPkcs1 { hash: Some(h) } => pad::pkcs1_sign_block(k, &h.digest_info(input)),
        SignScheme::RsaPkcs1 { hash: None } => pad::pkcs1_sign_block(k, input),
        SignScheme::RsaPss {
            hash,
            mgf,
            salt_len,
            ..
        } => pad::pss_encode(key.bits(), input, *hash, *mgf, *salt_len),
        SignScheme::RsaRaw => {
            if input.len() > k {
                return Err(Error::DataLenRange);
            }
            let mut block = vec![0u8; k - input.len()];
            block.extend_from_slice(input);
            if !rsa_block_below_modulus(&block, &key.public) {
                return Err(Error::DataInvalid);
            }
            Ok(block)
        }
        SignScheme::Ecdsa { .. } => {
            if input.is_empty() {
                return Err(Error::DataLenRange);
            }
            Ok(ecdsa_input(key.alg, input))
        }
    }
}

fn rsa_block_below_modulus(block: &[u8], public: &PublicKey) -> bool {
    match public {
        PublicKey::Rsa { modulus, .. } => block.len() < modulus.len() || block < modulus.as_slice(),
        _ => false,
    }
}

/// The ECDSA input for a digest: its leftmost bytes as long as the curve's
/// order, or the digest left-padded with zeros (SEC 1 §4.1.3 step 5, as
/// tokens take it).
pub fn ecdsa_input(alg: KeyAlg, digest: &[u8]) -> Vec<u8> {
    let n = alg.size_bytes();
    if digest.len() >= n {
        digest[..n].to_vec()
    } else {
        let mut v = vec![0u8; n - digest.len()];
        v.extend_from_slice(digest);
        v
    }
}

/// The backend's answer in the PKCS#11 signature format: RSA left-padded
/// to the modulus size; ECDSA r ‖ s of the curve's width, as the backend
/// gives it.
pub fn finish_signature(key: &KeyInfo, output: &[u8]) -> Result<Vec<u8>> {
    let k = key.alg.size_bytes();
    if key.alg.is_rsa() {
        if output.len() > k {
            return Err(Error::DeviceError(
                "RSA result longer than the modulus".into(),
            ));
        }
        let mut v = vec![0u8; k - output.len()];
        v.extend_from_slice(output);
        Ok(v)
    } else if key.alg.is_ec() {
        if output.len() != 2 * k {
            return Err(Error::DeviceError(
                "malformed ECDSA signature from the token".into(),
            ));
        }
        Ok(output.to_vec())
    } else {
        Err(Error::KeyTypeInconsistent)
    }
}

/// Verify on the host with the public key (C_Verify).
pub fn verify(
    scheme: &SignScheme,
    public: &PublicKey,
    input: &[u8],
    signature: &[u8],
) -> Result<()> {
    use signature::hazmat::PrehashVerifier;
    match public {
        PublicKey::Rsa { modulus, exponent } => {
            let k = modulus.len();
            if signature.len() != k {
                return Err(Error::SignatureLenRange);
            }
            let n = rsa::BigUint::from_bytes_be(modulus);
            let s = rsa::BigUint::from_bytes_be(signature);
            if s >= n {
                return Err(Error::SignatureInvalid);
            }
            let m = s
                .modpow(&rsa::BigUint::from_bytes_be(exponent), &n)
                .to_bytes_be();
            let mut block = vec![0u8; k - m.len()];
            block.extend_from_slice(&m);
            let ok = match scheme {
                SignScheme::RsaPkcs1 { hash: Some(h) } => {
                    pad::pkcs1_sign_block(k, &h.digest_info(input))? == block
                }
                SignScheme::RsaPkcs1 { hash: None } => pad::pkcs1_sign_block(k, input)? == block,
                SignScheme::RsaRaw => {
                    let mut expect = vec![0u8; k.saturating_sub(input.len())];
                    expect.extend_from_slice(input);
                    expect == block
                }
                SignScheme::RsaPss {
                    hash,
                    mgf,
                    salt_len,
                    ..
                } => pad::pss_verify(k * 8, input, &block, *hash, *mgf, *salt_len),
                SignScheme::Ecdsa { .. } => return Err(Error::KeyTypeInconsistent),
            };
            if ok {
                Ok(())
            } else {
                Err(Error::SignatureInvalid)
            }
        }
        PublicKey::Ec { alg, point } => {
            let digest = ecdsa_input(*alg, input);
            let ok = match alg {
                KeyAlg::EcP256 => {
                    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| Error::KeyTypeInconsistent)?;
                    let sig = p256::ecdsa::Signature::from_slice(signature)
                        .map_err(|_| Error::SignatureLenRange)?;
                    vk.verify_prehash(&digest, &sig).is_ok()
                }
                KeyAlg::EcP384 => {
                    let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                        .map_err(|_| Error::KeyTypeInconsistent)?;
                    let sig = p384::ecdsa::Signature::from_slice(signature)
                        .map_err(|_| Error::SignatureLenRange)?;
                    vk.verify_prehash(&digest, &sig).is_ok()
                }
                _ => return Err(Error::KeyTypeInconsistent),
            };
            if ok {
                Ok(())
            } else {
                Err(Error::SignatureInvalid)
            }
        }
        PublicKey::Curve25519 { .. } => Err(Error::KeyTypeInconsistent),
    }
}

/// How a decryption is finished on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptScheme {
    Pkcs1,
    Oaep {
        hash: HashAlg,
        mgf: HashAlg,
        label: Vec<u8>,
    },
    Raw,
}

pub fn decrypt_scheme(mech: &Mechanism, alg: KeyAlg) -> Result<DecryptScheme> {
    match mech.kind {
        CKM_RSA_PKCS | CKM_RSA_X_509 | CKM_RSA_PKCS_OAEP if !alg.is_rsa() => {
            Err(Error::KeyTypeInconsistent)
        }
        CKM_RSA_PKCS => Ok(DecryptScheme::Pkcs1),
        CKM_RSA_X_509 => Ok(DecryptScheme::Raw),
        CKM_RSA_PKCS_OAEP => match &mech.params {
            MechParams::Oaep { hash, mgf, label } => Ok(DecryptScheme::Oaep {
                hash: hash_of(*hash).ok_or(Error::MechanismParamInvalid)?,
                mgf: mgf_of(*mgf).ok_or(Error::MechanismParamInvalid)?,
                label: label.clone(),
            }),
            _ => Err(Error::MechanismParamInvalid),
        },
        _ => Err(Error::MechanismInvalid),
    }
}

/// Remove the padding from a raw RSA decryption.
pub fn finish_decrypt(scheme: &DecryptScheme, block: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    match scheme {
        DecryptScheme::Pkcs1 => pad::pkcs1_decrypt_unpad(block),
        DecryptScheme::Oaep { hash, mgf, label } => pad::oaep_decode(block, label, *hash, *mgf),
        DecryptScheme::Raw => Ok(zeroize::Zeroizing::new(block.to_vec())),
    }
}
