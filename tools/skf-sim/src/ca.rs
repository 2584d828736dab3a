//! A throw-away SM2 certificate authority (SM3withSM2, OID
//! 1.2.156.10197.1.501; signatures with Z of the default ID
//! 1234567812345678, as OpenSSL and GmSSL expect), the dual-certificate
//! issuing side (a signing certificate for a request, and an encryption
//! key pair made by the CA, certified and delivered in an
//! ENVELOPEDKEYBLOB), and demo provisioning of an SKF state file.

use crate::crypto::{sm3_e, sm4mode, PublicPoint, Sm2Key};
use crate::state::{Application, Container, DeviceState, Pin, Secret};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, OctetString, UintRef};
use der::{Decode, Encode};
use sm3::Digest;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use ukey_skf_sys::*;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate};
use zeroize::Zeroizing;

/// SM2-with-SM3 (GM/T 0006).
pub const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// The SM2 curve, sm2p256v1.
pub const SM2_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

pub const DAY: Duration = Duration::from_secs(86_400);
pub const DEMO_CA_SUBJECT: &str = "CN=ukey SM2 Demo CA,O=ukey demo (not a real CA)";
pub const DEMO_SUBJECT: &str = "CN=Demo User,OU=Purchasing,O=Example Pharma Ltd,C=CN";
/// Names on a demo device.
pub const DEMO_APP: &str = "UKEY_APP";
pub const DEMO_CONTAINER: &str = "UKEY_CONTAINER";
pub const DEMO_USER_PIN: &[u8] = b"123456";
pub const DEMO_ADMIN_PIN: &[u8] = b"12345678";
pub const DEMO_RETRIES: u32 = 10;

/// Errors building certificates and envelopes (bad input or I/O).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("DER: {0}")]
    Der(#[from] der::Error),
    #[error("{0}")]
    Bad(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn bad(s: impl Into<String>) -> CaError {
    CaError::Bad(s.into())
}

/// The SubjectPublicKeyInfo of an SM2 key (id-ecPublicKey, curve sm2p256v1).
pub fn spki(p: &PublicPoint) -> Result<SubjectPublicKeyInfoOwned, CaError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ID_EC_PUBLIC_KEY,
            parameters: Some(der::Any::from_der(&SM2_CURVE.to_der()?)?),
        },
        subject_public_key: BitString::from_bytes(&p.sec1())?,
    })
}

/// The SM2 public key in a SubjectPublicKeyInfo.
pub fn point_of_spki(s: &SubjectPublicKeyInfoOwned) -> Result<PublicPoint, CaError> {
    if s.algorithm.oid != ID_EC_PUBLIC_KEY {
        return Err(bad("not an EC key"));
    }
    let curve = s
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if curve != Some(SM2_CURVE) {
        return Err(bad("not an SM2 key (curve 1.2.156.10197.1.301)"));
    }
    PublicPoint::from_sec1(s.subject_public_key.raw_bytes()).map_err(|_| bad("bad SM2 point"))
}

/// SM3withSM2 over `msg` (Z of the default ID), DER `SEQUENCE { r, s }`.
pub fn sign_der(key: &Sm2Key, msg: &[u8]) -> Result<Vec<u8>, CaError> {
    let e = sm3_e(&key.public().z(SM2_DEFAULT_ID).map_err(|_| bad("Z"))?, msg);
    let rs = key.sign_e(&e).map_err(|_| bad("SM2 signature failed"))?;
    let ints = vec![UintRef::new(&rs[..32])?, UintRef::new(&rs[32..])?];
    Ok(ints.to_der()?)
}

/// Verify a DER SM3withSM2 signature over `msg` (default ID).
pub fn verify_der(p: &PublicPoint, msg: &[u8], sig: &[u8]) -> Result<(), CaError> {
    let ints: Vec<UintRef<'_>> = Vec::from_der(sig)?;
    if ints.len() != 2 {
        return Err(bad("signature is not SEQUENCE { r, s }"));
    }
    let mut rs = [0u8; 64];
    for (i, n) in ints.iter().enumerate() {
        let b = n.as_bytes();
        if b.len() > 32 {
            return Err(bad("signature integer too long"));
        }
        rs[i * 32 + 32 - b.len()..(i + 1) * 32].copy_from_slice(b);
    }
    let e = sm3_e(&p.z(SM2_DEFAULT_ID).map_err(|_| bad("Z"))?, msg);
    if p.verify_e(&e, &rs) {
        Ok(())
    } else {
        Err(bad("the SM2 signature does not verify"))
    }
}

fn sm2_sig_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: SM2_WITH_SM3,
        parameters: None,
    }
}

fn x509_time(t: SystemTime) -> Result<Time, CaError> {
    let gt = der::asn1::GeneralizedTime::from_system_time(t)?;
    if gt.to_date_time().year() < 2050 {
        Ok(Time::UtcTime(der::asn1::UtcTime::from_system_time(t)?))
    } else {
        Ok(Time::GeneralTime(gt))
    }
}

fn ext<T: Encode + const_oid::AssociatedOid>(v: &T, critical: bool) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(v.to_der()?)?,
    })
}

/// Key identifier: the first 20 bytes of SM3 of the public key bits.
fn key_id(p: &PublicPoint) -> Vec<u8> {
    sm3::Sm3::digest(p.sec1())[..20].to_vec()
}

fn random_serial() -> Result<SerialNumber, CaError> {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b[0] = (b[0] & 0x7F) | 0x01;
    Ok(SerialNumber::new(&b)?)
}

pub fn parse_name(s: &str) -> Result<Name, CaError> {
    Name::from_str(s).map_err(|_| bad(format!("invalid name {s:?}")))
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Ca,
    Signing,
    Encryption,
}

/// A throw-away SM2 CA.
pub struct Ca {
    pub key: Sm2Key,
    pub name: Name,
    pub cert_der: Vec<u8>,
}

impl Ca {
    pub fn new(subject: &str) -> Result<Self, CaError> {
        let key = Sm2Key::generate();
        let name = parse_name(subject)?;
        let now = SystemTime::now();
        let pubp = key.public();
        let cert_der = issue(
            &key,
            &name,
            &name,
            &pubp,
            now - DAY,
            now + 3650 * DAY,
            Usage::Ca,
        )?;
        Ok(Self {
            key,
            name,
            cert_der,
        })
    }

    /// Issue a certificate for `subject_key`.
    pub fn issue(
        &self,
        subject: &Name,
        subject_key: &PublicPoint,
        not_before: SystemTime,
        not_after: SystemTime,
        usage: Usage,
    ) -> Result<Vec<u8>, CaError> {
        issue(
            &self.key,
            &self.name,
            subject,
            subject_key,
            not_before,
            not_after,
            usage,
        )
    }

    /// `ca.pem` and `ca.key` (PKCS#8 PEM, mode 0600) in `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), CaError> {
        use pkcs8::EncodePrivateKey;
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(dir)?;
        let sk = sm2::SecretKey::from_slice(&self.key.to_bytes()[..]).map_err(|_| bad("key"))?;
        let pem = sk
            .to_pkcs8_pem(der::pem::LineEnding::LF)
            .map_err(|e| bad(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dir.join("ca.key"))?;
        f.write_all(pem.as_bytes())?;
        std::fs::write(
            dir.join("ca.pem"),
            pem_encode("CERTIFICATE", &self.cert_der),
        )?;
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Self, CaError> {
        use pkcs8::DecodePrivateKey;
        let pem = Zeroizing::new(std::fs::read_to_string(dir.join("ca.key"))?);
        let sk = sm2::SecretKey::from_pkcs8_pem(&pem).map_err(|e| bad(e.to_string()))?;
        let key = Sm2Key::from_bytes(&sk.to_bytes()).map_err(|_| bad("ca.key"))?;
        let cert_der = pem_decode(&std::fs::read_to_string(dir.join("ca.pem"))?)
            .ok_or_else(|| bad("ca.pem is not PEM"))?;
        let cert = Certificate::from_der(&cert_der)?;
        Ok(Self {
            key,
            name: cert.tbs_certificate.subject.clone(),
            cert_der,
        })
    }

    /// Load the CA in `dir`, or create and save one there.
    pub fn demo(dir: &Path) -> Result<Self, CaError> {
        if dir.join("ca.key").exists() {
            Self::load(dir)
        } else {
            let ca = Self::new(DEMO_CA_SUBJECT)?;
            ca.save(dir)?;
            Ok(ca)
        }
    }
}

fn issue(
    issuer_key: &Sm2Key,
    issuer: &Name,
    subject: &Name,
    subject_key: &PublicPoint,
    not_before: SystemTime,
    not_after: SystemTime,
    usage: Usage,
) -> Result<Vec<u8>, CaError> {
    let (bc, ku) = match usage {
        Usage::Ca => (true, KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        Usage::Signing => (
            false,
            KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
        ),
        Usage::Encryption => (
            false,
            KeyUsages::KeyEncipherment | KeyUsages::DataEncipherment | KeyUsages::KeyAgreement,
        ),
    };
    let extensions = vec![
        ext(
            &BasicConstraints {
                ca: bc,
                path_len_constraint: None,
            },
            true,
        )?,
        ext(&KeyUsage(ku), true)?,
        ext(
            &SubjectKeyIdentifier(OctetString::new(key_id(subject_key))?),
            false,
        )?,
        ext(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(key_id(&issuer_key.public()))?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?,
    ];
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: random_serial()?,
        signature: sm2_sig_alg(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: x509_time(not_before)?,
            not_after: x509_time(not_after)?,
        },
        subject: subject.clone(),
        subject_public_key_info: spki(subject_key)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let sig = sign_der(issuer_key, &tbs.to_der()?)?;
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sm2_sig_alg(),
        signature: BitString::from_bytes(&sig)?,
    }
    .to_der()?)
}

/// Check an SM2 PKCS#10 request's signature (SM3withSM2, default ID):
/// its subject and public key.
pub fn verify_request(csr_der: &[u8]) -> Result<(Name, PublicPoint), CaError> {
    let req = x509_cert::request::CertReq::from_der(csr_der)?;
    if req.algorithm.oid != SM2_WITH_SM3 {
        return Err(bad(format!(
            "the request is signed with {}, not SM3withSM2 (1.2.156.10197.1.501)",
            req.algorithm.oid
        )));
    }
    let p = point_of_spki(&req.info.public_key)?;
    verify_der(&p, &req.info.to_der()?, req.signature.raw_bytes())
        .map_err(|e| bad(format!("the request's signature: {e}")))?;
    Ok((req.info.subject.clone(), p))
}

/// An ENVELOPEDKEYBLOB (§6.4) delivering `enc_key` to a token whose
/// signing public key is `to`: a fresh SM4 key encrypts the 64-byte
/// `PrivateKey` field of an ECCPRIVATEKEYBLOB (32 zero bytes, then d) in
/// ECB, and is itself SM2-encrypted to `to`. Returned as the 373 bytes of
/// the structure plus the 15 further bytes of its 16-byte `Cipher`.
pub fn envelope(enc_key: &Sm2Key, to: &PublicPoint) -> Result<Zeroizing<Vec<u8>>, CaError> {
    let mut sym = Zeroizing::new([0u8; 16]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut sym[..]);
    let mut field = Zeroizing::new([0u8; 64]);
    field[32..].copy_from_slice(&enc_key.to_bytes()[..]);
    let enc_priv = sm4mode::ecb_encrypt(&sym, &field[..]).map_err(|_| bad("SM4"))?;
    let wrapped = to.encrypt(&sym[..]).map_err(|_| bad("SM2 encryption"))?;
    let (px, py) = enc_key.public().xy();
    let mut v = Zeroizing::new(Vec::with_capacity(ENVELOPED_CIPHER_OFFSET + 180));
    v.extend_from_slice(&ENVELOPEDKEYBLOB_VERSION.to_le_bytes());
    v.extend_from_slice(&SGD_SM4_ECB.to_le_bytes());
    v.extend_from_slice(&256u32.to_le_bytes());
    v.extend_from_slice(&enc_priv);
    v.extend_from_slice(&256u32.to_le_bytes());
    v.extend_from_slice(&[0u8; 32]);
    v.extend_from_slice(&px);
    v.extend_from_slice(&[0u8; 32]);
    v.extend_from_slice(&py);
    debug_assert_eq!(v.len(), ENVELOPED_CIPHER_OFFSET);
    v.extend_from_slice(&crate::ptr::cipher_blob_bytes(&wrapped));
    Ok(v)
}

pub fn pem_encode(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// The first PEM block in `text`.
pub fn pem_decode(text: &str) -> Option<Vec<u8>> {
    let start = text.find("-----BEGIN ")?;
    let end_marker = text[start..].find("-----END ")? + start;
    let end = text[end_marker..]
        .find('\n')
        .map_or(text.len(), |i| end_marker + i + 1);
    der::pem::decode_vec(&text.as_bytes()[start..end])
        .ok()
        .map(|(_, d)| d)
}

/// PEM or DER bytes as DER.
pub fn der_of(bytes: Vec<u8>) -> Result<Vec<u8>, CaError> {
    match std::str::from_utf8(&bytes) {
        Ok(t) if t.contains("-----BEGIN") => pem_decode(t).ok_or_else(|| bad("bad PEM")),
        _ => Ok(bytes),
    }
}

/// Provision `s` as a demo device: application `UKEY_APP` (user PIN
/// 123456, admin PIN 12345678, 10 tries each), container `UKEY_CONTAINER`
/// with an SM2 signing pair whose certificate expires in
/// `sign_expires_in_days`, and an encryption pair made by the CA with its
/// certificate (two years).
pub fn provision_demo(
    s: &mut DeviceState,
    ca: &Ca,
    sign_expires_in_days: u32,
) -> Result<(), CaError> {
    let subject = parse_name(DEMO_SUBJECT)?;
    let now = SystemTime::now();
    let sign = Sm2Key::generate();
    let end = now + DAY * sign_expires_in_days;
    let sign_cert = ca.issue(
        &subject,
        &sign.public(),
        end - 365 * DAY,
        end,
        Usage::Signing,
    )?;
    let enc = Sm2Key::generate();
    let enc_cert = ca.issue(
        &subject,
        &enc.public(),
        now - DAY,
        now + 730 * DAY,
        Usage::Encryption,
    )?;
    let mut app = Application {
        admin_pin: Pin::new(DEMO_ADMIN_PIN, DEMO_RETRIES),
        user_pin: Pin::new(DEMO_USER_PIN, DEMO_RETRIES),
        create_file_rights: SECURE_ANYONE_ACCOUNT,
        files: Default::default(),
        containers: Default::default(),
    };
    app.containers.insert(
        DEMO_CONTAINER.into(),
        Container {
            sign_key: Some(Secret::new(&sign.to_bytes()[..])),
            enc_key: Some(Secret::new(&enc.to_bytes()[..])),
            sign_cert: Some(sign_cert),
            enc_cert: Some(enc_cert),
        },
    );
    s.applications.insert(DEMO_APP.into(), app);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_verify_with_the_issuer_key() {
        let ca = Ca::new(DEMO_CA_SUBJECT).unwrap();
        let cert = Certificate::from_der(&ca.cert_der).unwrap();
        let tbs = cert.tbs_certificate.to_der().unwrap();
        verify_der(&ca.key.public(), &tbs, cert.signature.raw_bytes()).unwrap();
        let p = point_of_spki(&cert.tbs_certificate.subject_public_key_info).unwrap();
        assert_eq!(p, ca.key.public());
    }

    #[test]
    fn an_envelope_holds_the_key_for_the_signing_key() {
        let signer = Sm2Key::generate();
        let enc = Sm2Key::generate();
        let env = envelope(&enc, &signer.public()).unwrap();
        assert_eq!(
            env.len(),
            ENVELOPED_CIPHER_OFFSET + ECC_CIPHER_BLOB_HEADER + 16
        );
        assert_eq!(env.len(), core::mem::size_of::<EnvelopedKeyBlob>() + 15);
        let c = crate::ptr::cipher_blob_from_bytes(&env[ENVELOPED_CIPHER_OFFSET..], 64).unwrap();
        let sym = signer.decrypt(&c).unwrap();
        let sym: [u8; 16] = sym[..].try_into().unwrap();
        let field = sm4mode::ecb_decrypt(&sym, &env[12..76]).unwrap();
        assert_eq!(&field[32..], &enc.to_bytes()[..]);
    }
}
