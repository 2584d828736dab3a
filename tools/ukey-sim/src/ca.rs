//! A throw-away certificate authority for demos and tests, and the card's
//! attestation (YubiKey F9) certificates. Built on `x509-cert` types; the
//! signature comes from the same [`PrivateKey`] code the card uses.

use crate::keys::PrivateKey;
use crate::state::{KeyEntry, Persistent};
use apdu::piv::{Algorithm, CertContainer, KeyOrigin, ObjectId, PinPolicy, Slot, TouchPolicy};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use iso7816::Status;
use pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sha2::Digest;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};

/// Errors building certificates (only bad input can cause them).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("invalid name {0:?}")]
    Name(String),
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    #[error("key: {0}")]
    Key(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

pub const DAY: Duration = Duration::from_secs(86_400);

/// UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5).
pub fn x509_time(t: SystemTime) -> Result<Time, CaError> {
    let gt = der::asn1::GeneralizedTime::from_system_time(t)?;
    if gt.to_date_time().year() < 2050 {
        Ok(Time::UtcTime(der::asn1::UtcTime::from_system_time(t)?))
    } else {
        Ok(Time::GeneralTime(gt))
    }
}

pub fn parse_name(s: &str) -> Result<Name, CaError> {
    Name::from_str(s).map_err(|_| CaError::Name(s.to_string()))
}

fn random_serial() -> Result<SerialNumber, CaError> {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b[0] &= 0x7F;
    b[0] |= 0x01;
    Ok(SerialNumber::new(&b)?)
}

fn ext<T: Encode + AssociatedOid>(value: &T, critical: bool) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn raw_ext(oid: &str, value: Vec<u8>) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: ObjectIdentifier::new_unwrap(oid),
        critical: false,
        extn_value: OctetString::new(value)?,
    })
}

/// SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1).
pub fn key_id(spki_der: &[u8]) -> Result<Vec<u8>, CaError> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)?;
    Ok(sha1_digest(spki.subject_public_key.raw_bytes()))
}

fn sha1_digest(data: &[u8]) -> Vec<u8> {
    sha1::Sha1::digest(data).to_vec()
}

/// Everything a certificate needs besides its issuer.
pub struct CertRequest<'a> {
    pub subject: Name,
    pub spki_der: &'a [u8],
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub extensions: Vec<Extension>,
}

/// Sign a certificate for `req` with `issuer_key` as `issuer`.
pub fn issue(
    issuer_key: &PrivateKey,
    issuer: &Name,
    issuer_key_id: Option<&[u8]>,
    req: CertRequest<'_>,
) -> Result<Vec<u8>, CaError> {
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(req.spki_der)?;
    let mut extensions = req.extensions;
    extensions.push(ext(
        &SubjectKeyIdentifier(OctetString::new(key_id(req.spki_der)?)?),
        false,
    )?);
    if let Some(aki) = issuer_key_id {
        extensions.push(ext(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(aki)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?);
    }
    // The signature algorithm identifier must be known before signing.
    let (_, sig_alg) = issuer_key.sign_for_x509(b"");
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: random_serial()?,
        signature: sig_alg.clone(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: x509_time(req.not_before)?,
            not_after: x509_time(req.not_after)?,
        },
        subject: req.subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let (sig, _) = issuer_key.sign_for_x509(&tbs.to_der()?);
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sig_alg,
        signature: BitString::from_bytes(&sig)?,
    };
    Ok(cert.to_der()?)
}

/// What a leaf certificate is for, to pick its key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafUse {
    /// digitalSignature (9A, 9C, 9E).
    Signing,
    /// keyEncipherment (RSA) or keyAgreement (EC) (9D).
    Encryption,
}

/// A throw-away CA: a key and its self-signed certificate.
pub struct Ca {
    pub key: PrivateKey,
    pub name: Name,
    pub cert_der: Vec<u8>,
    key_id: Vec<u8>,
}

impl Ca {
    /// A new CA with a P-256 key, valid ten years.
    pub fn new(subject: &str) -> Result<Self, CaError> {
        let key = PrivateKey::generate(Algorithm::EccP256)
            .map_err(|sw| CaError::Key(format!("{sw:?}")))?;
        Self::with_key(subject, key)
    }

    fn with_key(subject: &str, key: PrivateKey) -> Result<Self, CaError> {
        let name = parse_name(subject)?;
        let spki = key.spki_der();
        let now = SystemTime::now();
        let cert_der = issue(
            &key,
            &name,
            None,
            CertRequest {
                subject: name.clone(),
                spki_der: &spki,
                not_before: now - DAY,
                not_after: now + 3650 * DAY,
                extensions: vec![
                    ext(
                        &BasicConstraints {
                            ca: true,
                            path_len_constraint: None,
                        },
                        true,
                    )?,
                    ext(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
                ],
            },
        )?;
        let key_id = key_id(&spki)?;
        Ok(Self {
            key,
            name,
            cert_der,
            key_id,
        })
    }

    /// Issue a leaf certificate for `spki_der` valid from `not_before` to `not_after`.
    pub fn issue_leaf(
        &self,
        subject: &Name,
        spki_der: &[u8],
        not_before: SystemTime,
        not_after: SystemTime,
        usage: LeafUse,
    ) -> Result<Vec<u8>, CaError> {
        let is_rsa = spki::SubjectPublicKeyInfoRef::from_der(spki_der)?
            .algorithm
            .oid
            == const_oid::db::rfc5912::RSA_ENCRYPTION;
        let ku = match usage {
            LeafUse::Signing => KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
            LeafUse::Encryption if is_rsa => {
                KeyUsage(KeyUsages::KeyEncipherment | KeyUsages::DataEncipherment)
            }
            LeafUse::Encryption => KeyUsage(KeyUsages::KeyAgreement.into()),
        };
        issue(
            &self.key,
            &self.name,
            Some(&self.key_id),
            CertRequest {
                subject: subject.clone(),
                spki_der,
                not_before,
                not_after,
                extensions: vec![
                    ext(
                        &BasicConstraints {
                            ca: false,
                            path_len_constraint: None,
                        },
                        true,
                    )?,
                    ext(&ku, true)?,
                ],
            },
        )
    }

    /// Save as `ca.key` (PKCS#8 PEM) and `ca.pem` in `dir`.
    pub fn save(&self, dir: &std::path::Path) -> Result<(), CaError> {
        std::fs::create_dir_all(dir)?;
        let PrivateKey::P256(k) = &self.key else {
            return Err(CaError::Key("CA key must be P-256".into()));
        };
        let pem = k
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| CaError::Key(e.to_string()))?;
        // The key is a secret (0600, never through a link); the certificate is not.
        crate::files::write_atomic(
            &dir.join("ca.key"),
            pem.as_bytes(),
            crate::files::SECRET_MODE,
        )?;
        crate::files::write_atomic(
            &dir.join("ca.pem"),
            pem_encode("CERTIFICATE", &self.cert_der).as_bytes(),
            0o644,
        )?;
        Ok(())
    }

    /// Load a CA saved by [`Ca::save`].
    pub fn load(dir: &std::path::Path) -> Result<Self, CaError> {
        let pem = zeroize::Zeroizing::new(std::fs::read_to_string(dir.join("ca.key"))?);
        let k = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| CaError::Key(e.to_string()))?;
        let cert_pem = std::fs::read_to_string(dir.join("ca.pem"))?;
        let cert_der =
            pem_decode(&cert_pem).ok_or_else(|| CaError::Key("ca.pem is not PEM".into()))?;
        let cert = Certificate::from_der(&cert_der)?;
        let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
        Ok(Self {
            key: PrivateKey::P256(k),
            name: cert.tbs_certificate.subject.clone(),
            key_id: key_id(&spki)?,
            cert_der,
        })
    }
}

/// Check the self-signature of a PKCS#10 request (RFC 2986 §4.2): RSA
/// PKCS#1 v1.5 with SHA-256/384/512, ECDSA P-256 with SHA-256, P-384 with
/// SHA-384. Returns the request when it verifies.
pub fn verify_csr(csr_der: &[u8]) -> Result<x509_cert::request::CertReq, CaError> {
    use const_oid::db::rfc5912::{
        ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION, SECP_256_R_1,
        SECP_384_R_1, SHA_256_WITH_RSA_ENCRYPTION, SHA_384_WITH_RSA_ENCRYPTION,
        SHA_512_WITH_RSA_ENCRYPTION,
    };
    use signature::Verifier;
    let req = x509_cert::request::CertReq::from_der(csr_der)?;
    let tbs = req.info.to_der()?;
    let spki = &req.info.public_key;
    let sig = req.signature.raw_bytes();
    let bad = |why: &str| CaError::Key(format!("the request's signature does not verify: {why}"));
    let key_der = spki.to_der()?;
    let alg = req.algorithm.oid;
    if spki.algorithm.oid == RSA_ENCRYPTION {
        use pkcs8::DecodePublicKey;
        let key = rsa::RsaPublicKey::from_public_key_der(&key_der)
            .map_err(|e| CaError::Key(e.to_string()))?;
        let (scheme, digest) = if alg == SHA_256_WITH_RSA_ENCRYPTION {
            (
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                sha2::Sha256::digest(&tbs).to_vec(),
            )
        } else if alg == SHA_384_WITH_RSA_ENCRYPTION {
            (
                rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                sha2::Sha384::digest(&tbs).to_vec(),
            )
        } else if alg == SHA_512_WITH_RSA_ENCRYPTION {
            (
                rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
                sha2::Sha512::digest(&tbs).to_vec(),
            )
        } else {
            return Err(bad("unsupported RSA signature algorithm"));
        };
        key.verify(scheme, &digest, sig).map_err(|_| bad("RSA"))?;
    } else if spki.algorithm.oid == ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let point = spki.subject_public_key.raw_bytes();
        match (curve, alg) {
            (Some(SECP_256_R_1), ECDSA_WITH_SHA_256) => {
                let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|e| CaError::Key(e.to_string()))?;
                let s = p256::ecdsa::Signature::from_der(sig).map_err(|_| bad("ECDSA encoding"))?;
                vk.verify(&tbs, &s).map_err(|_| bad("ECDSA"))?;
            }
            (Some(SECP_384_R_1), ECDSA_WITH_SHA_384) => {
                let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|e| CaError::Key(e.to_string()))?;
                let s = p384::ecdsa::Signature::from_der(sig).map_err(|_| bad("ECDSA encoding"))?;
                vk.verify(&tbs, &s).map_err(|_| bad("ECDSA"))?;
            }
            _ => return Err(bad("unsupported curve or ECDSA digest")),
        }
    } else {
        return Err(bad("unsupported key type"));
    }
    Ok(req)
}

impl Ca {
    /// What a CA does with a renewal request: check its signature, then
    /// issue a certificate for its key and subject, valid `days` from now.
    pub fn issue_for_request(
        &self,
        csr_der: &[u8],
        days: u32,
        usage: LeafUse,
    ) -> Result<Vec<u8>, CaError> {
        let req = verify_csr(csr_der)?;
        let spki = req.info.public_key.to_der()?;
        let now = SystemTime::now();
        self.issue_leaf(
            &req.info.subject,
            &spki,
            now - Duration::from_secs(60),
            now + DAY * days,
            usage,
        )
    }
}

/// PEM-encode DER with `label`.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, LineEnding::LF, der).unwrap_or_default()
}

/// Decode the first PEM block in `text`.
pub fn pem_decode(text: &str) -> Option<Vec<u8>> {
    let start = text.find("-----BEGIN ")?;
    let end_marker = text[start..].find("-----END ")? + start;
    let end = text[end_marker..]
        .find('\n')
        .map_or(text.len(), |i| end_marker + i + 1);
    der::pem::decode_vec(&text.as_bytes()[start..end])
        .ok()
        .map(|(_, der)| der)
}

const ATTESTATION_SUBJECT: &str = "CN=ukey-sim PIV Attestation,O=ukey";

/// Put a factory attestation key (F9) and its certificate on a fresh card.
pub fn install_attestation(p: &mut Persistent) {
    let Ok(ca) = Ca::with_key(
        ATTESTATION_SUBJECT,
        PrivateKey::generate(Algorithm::EccP256).unwrap_or_else(|_| unreachable_key()),
    ) else {
        return;
    };
    p.set_key(
        Slot::Attestation,
        KeyEntry::new(
            &ca.key,
            PinPolicy::Never,
            TouchPolicy::Never,
            KeyOrigin::Imported,
        ),
    );
    if let Ok(content) = (CertContainer {
        der: ca.cert_der,
        compressed: false,
    })
    .encode()
    {
        p.objects.insert(ObjectId::ATTESTATION.0, content);
    }
}

fn unreachable_key() -> PrivateKey {
    // P-256 generation from the OS RNG cannot fail.
    PrivateKey::P256(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
}

/// YubiKey ATTEST: a certificate for the generated key in `slot`, signed by F9.
pub fn attest(p: &Persistent, slot: Slot) -> Result<Vec<u8>, Status> {
    let entry = p.key(slot).ok_or(Status::KeyReferenceNotFound)?;
    if entry.origin != KeyOrigin::Generated.code() || slot == Slot::Attestation {
        return Err(Status::IncorrectDataParameter);
    }
    let key = entry.key().ok_or(Status::UnspecifiedCheckingError)?;
    let f9 = p
        .key(Slot::Attestation)
        .and_then(KeyEntry::key)
        .ok_or(Status::KeyReferenceNotFound)?;
    let f9_cert = p
        .objects
        .get(&ObjectId::ATTESTATION.0)
        .and_then(|c| CertContainer::parse(c).ok().flatten())
        .and_then(|c| Certificate::from_der(&c.der).ok())
        .ok_or(Status::KeyReferenceNotFound)?;
    let issuer = f9_cert.tbs_certificate.subject;
    let subject = parse_name(&format!("CN=YubiKey PIV Attestation {slot}"))
        .map_err(|_| Status::UnspecifiedCheckingError)?;
    let mut serial = vec![0x02, 0x04];
    serial.extend_from_slice(&p.serial.to_be_bytes());
    let exts = vec![
        raw_ext("1.3.6.1.4.1.41482.3.3", p.version.to_vec()),
        raw_ext("1.3.6.1.4.1.41482.3.7", serial),
        raw_ext(
            "1.3.6.1.4.1.41482.3.8",
            vec![entry.pin_policy, entry.touch_policy],
        ),
        raw_ext("1.3.6.1.4.1.41482.3.9", vec![0x01]),
    ]
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(|_| Status::UnspecifiedCheckingError)?;
    let now = SystemTime::now();
    issue(
        &f9,
        &issuer,
        None,
        CertRequest {
            subject,
            spki_der: &key.spki_der(),
            not_before: now - DAY,
            not_after: now + 3650 * DAY,
            extensions: exts,
        },
    )
    .map_err(|_| Status::UnspecifiedCheckingError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_issues_parseable_certificates() {
        let ca = Ca::new("CN=Test CA,O=ukey").unwrap();
        let leaf_key = PrivateKey::generate(Algorithm::EccP256).unwrap();
        let now = SystemTime::now();
        let der = ca
            .issue_leaf(
                &parse_name("CN=Alice,O=Example").unwrap(),
                &leaf_key.spki_der(),
                now,
                now + 30 * DAY,
                LeafUse::Signing,
            )
            .unwrap();
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(cert.tbs_certificate.issuer, ca.name);
        assert_eq!(
            cert.tbs_certificate.subject.to_string(),
            "CN=Alice,O=Example"
        );
        // Verify the CA's signature over the TBS.
        use signature::Verifier;
        let PrivateKey::P256(k) = &ca.key else {
            unreachable!()
        };
        let vk = k.verifying_key();
        let sig = p256::ecdsa::Signature::from_der(cert.signature.raw_bytes()).unwrap();
        vk.verify(&cert.tbs_certificate.to_der().unwrap(), &sig)
            .unwrap();
    }

    #[test]
    fn ca_save_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("CN=Saved CA").unwrap();
        ca.save(dir.path()).unwrap();
        let back = Ca::load(dir.path()).unwrap();
        assert_eq!(back.cert_der, ca.cert_der);
        assert_eq!(back.name, ca.name);
    }

    #[test]
    fn pem_round_trip() {
        let der = vec![0x30, 0x03, 1, 2, 3];
        assert_eq!(pem_decode(&pem_encode("CERTIFICATE", &der)), Some(der));
    }

    #[test]
    fn times_use_utctime_before_2050() {
        assert!(matches!(
            x509_time(SystemTime::now()).unwrap(),
            Time::UtcTime(_)
        ));
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(2_600_000_000);
        assert!(matches!(x509_time(far).unwrap(), Time::GeneralTime(_)));
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    fn csr(key: &PrivateKey, subject: &str) -> Vec<u8> {
        let info = x509_cert::request::CertReqInfo {
            version: x509_cert::request::Version::V1,
            subject: parse_name(subject).unwrap(),
            public_key: spki::SubjectPublicKeyInfoOwned::from_der(&key.spki_der()).unwrap(),
            attributes: Default::default(),
        };
        let (sig, algorithm) = key.sign_for_x509(&info.to_der().unwrap());
        x509_cert::request::CertReq {
            info,
            algorithm,
            signature: BitString::from_bytes(&sig).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn a_request_is_issued_for_its_key_and_subject() {
        let ca = Ca::new("CN=Request CA").unwrap();
        for alg in [Algorithm::EccP256, Algorithm::EccP384] {
            let key = PrivateKey::generate(alg).unwrap();
            let der = ca
                .issue_for_request(&csr(&key, "CN=Renewed,O=Example"), 365, LeafUse::Signing)
                .unwrap();
            let cert = Certificate::from_der(&der).unwrap();
            assert_eq!(
                cert.tbs_certificate.subject.to_string(),
                "CN=Renewed,O=Example"
            );
            assert_eq!(
                cert.tbs_certificate
                    .subject_public_key_info
                    .to_der()
                    .unwrap(),
                key.spki_der()
            );
        }
    }

    #[test]
    fn a_request_with_a_bad_signature_is_refused() {
        let ca = Ca::new("CN=Request CA").unwrap();
        let key = PrivateKey::generate(Algorithm::EccP256).unwrap();
        let mut der = csr(&key, "CN=Tampered");
        // Flip a bit in the subject's value: the signature no longer covers it.
        let at = der.windows(8).position(|w| w == b"Tampered").unwrap();
        der[at] ^= 0x01;
        let e = ca
            .issue_for_request(&der, 365, LeafUse::Signing)
            .unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
    }
}
