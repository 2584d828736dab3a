//! What the module knows about a slot's certificate and key, parsed once
//! from the card (certificate container, GET METADATA) and cached.

use crate::error::{Error, Result};
use crate::key::{KeyAlg, KeyAuth, Origin, PublicKey};
use der::{Decode, Encode};

/// DER of the named-curve OIDs, as CKA_EC_PARAMS carries them.
pub const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
pub const P384_PARAMS: [u8; 7] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// A calendar date (CK_DATE is "YYYYMMDD").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn ck_date(self) -> [u8; 8] {
        let s = format!("{:04}{:02}{:02}", self.year, self.month, self.day);
        let mut out = [b'0'; 8];
        out.copy_from_slice(&s.as_bytes()[..8]);
        out
    }
}

/// A certificate as found in a slot's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub der: Vec<u8>,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub serial: Vec<u8>,
    pub not_before: Date,
    /// notBefore in Unix seconds (0 before 1970).
    pub not_before_unix: u64,
    pub not_after: Date,
    pub public: PublicKey,
    /// Common name of the subject, for labels and messages.
    pub subject_cn: Option<String>,
}

fn date(t: &x509_cert::time::Time) -> Date {
    let dt = t.to_date_time();
    Date {
        year: dt.year(),
        month: dt.month(),
        day: dt.day(),
    }
}

/// The public key of a certificate's SubjectPublicKeyInfo, in card terms:
/// RSA of a size PIV cards have, P-256 or P-384.
fn public_from_spki(der: &[u8]) -> Result<PublicKey> {
    let bad = || Error::DeviceError("unsupported public key in certificate".into());
    let public = PublicKey::from_spki_der(der).ok_or_else(bad)?;
    match &public {
        PublicKey::Rsa { modulus, .. } if KeyAlg::rsa_from_bits(modulus.len() * 8).is_none() => {
            Err(bad())
        }
        _ => Ok(public),
    }
}

impl CertInfo {
    pub fn parse(der: &[u8]) -> Result<Self> {
        let bad = |_| Error::DeviceError("malformed certificate on the card".into());
        let cert = x509_cert::Certificate::from_der(der).map_err(bad)?;
        let tbs = &cert.tbs_certificate;
        let spki_der = tbs.subject_public_key_info.to_der().map_err(bad)?;
        let subject_cn = tbs
            .subject
            .0
            .iter()
            .rev()
            .flat_map(|rdn| rdn.0.iter())
            .find_map(|atv| {
                (atv.oid == const_oid::db::rfc4519::CN).then(|| {
                    der::asn1::Utf8StringRef::try_from(&atv.value)
                        .map(|s| s.as_str().to_string())
                        .or_else(|_| {
                            der::asn1::PrintableStringRef::try_from(&atv.value)
                                .map(|s| s.as_str().to_string())
                        })
                        .unwrap_or_default()
                })
            });
        Ok(Self {
            der: der.to_vec(),
            subject: tbs.subject.to_der().map_err(bad)?,
            issuer: tbs.issuer.to_der().map_err(bad)?,
            serial: tbs.serial_number.to_der().map_err(bad)?,
            not_before: date(&tbs.validity.not_before),
            not_before_unix: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: date(&tbs.validity.not_after),
            public: public_from_spki(&spki_der)?,
            subject_cn,
        })
    }
}

/// A private key on a token (and its public half).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub alg: KeyAlg,
    pub public: PublicKey,
    pub auth: KeyAuth,
    pub origin: Option<Origin>,
}

impl KeyInfo {
    pub fn is_rsa(&self) -> bool {
        self.alg.is_rsa()
    }

    /// Needs a fresh VERIFY before every use (CKA_ALWAYS_AUTHENTICATE).
    pub fn always_authenticate(&self) -> bool {
        self.auth == KeyAuth::Always
    }

    /// Usable without any login (CKA_PRIVATE false).
    pub fn needs_no_pin(&self) -> bool {
        self.auth == KeyAuth::Never
    }

    /// Modulus bits, or field bits for EC.
    pub fn bits(&self) -> usize {
        self.alg.bits()
    }
}

/// Encoded public-key attributes shared by public and private key objects.
pub fn ec_params(alg: KeyAlg) -> Option<&'static [u8]> {
    match alg {
        KeyAlg::EcP256 => Some(&P256_PARAMS),
        KeyAlg::EcP384 => Some(&P384_PARAMS),
        _ => None,
    }
}

/// CKA_EC_POINT: the uncompressed point wrapped in a DER OCTET STRING, the
/// form the spec, NSS and OpenSSL agree on.
pub fn ec_point_der(point: &[u8]) -> Vec<u8> {
    der::asn1::OctetStringRef::new(point)
        .and_then(|o| o.to_der())
        .unwrap_or_default()
}
