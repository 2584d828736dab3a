//! PIV data objects and command payloads, parsed into types
//! (SP 800-73-4 Part 1 Appendix A, Part 2; Yubico PIV extensions).
//!
//! Every parser takes bytes from a card and returns a typed value or
//! [`Error::Malformed`]; none panics on any input (fuzzed).

use super::types::{Algorithm, KeyOrigin, PinPolicy, TouchPolicy};
use crate::tlv::{self, Builder};
use crate::Error;
use std::io::Read;
use zeroize::Zeroizing;

/// The full PIV application identifier.
pub const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
/// The 5-byte RID libykpiv and ykman select by.
pub const PIV_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];

/// Largest certificate we accept after decompression.
pub const MAX_CERT_LEN: usize = 16 * 1024;

fn malformed(what: &'static str) -> impl Fn(tlv::TlvError) -> Error {
    move |_| Error::Malformed(what)
}

/// Application property template from SELECT (SP 800-73-4 Part 2 §3.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationProperties {
    /// Application identifier (tag 4F): the PIX, or the full AID on some cards.
    pub aid: Vec<u8>,
    /// Coexistent tag allocation authority's AID (79/4F).
    pub authority: Option<Vec<u8>>,
    /// Application label (50).
    pub label: Option<String>,
    /// Algorithms announced in the cryptographic algorithm identifier template (AC/80).
    pub algorithms: Vec<u8>,
}

impl ApplicationProperties {
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let m = malformed("application property template");
        let inner = tlv::unwrap(data, 0x61u32).map_err(&m)?;
        let aid = tlv::require(inner, 0x4Fu32).map_err(&m)?.to_vec();
        let authority = match tlv::find(inner, 0x79u32).map_err(&m)? {
            Some(v) => tlv::find(v, 0x4Fu32).map_err(&m)?.map(<[u8]>::to_vec),
            None => None,
        };
        let label = tlv::find(inner, 0x50u32)
            .map_err(&m)?
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let mut algorithms = Vec::new();
        if let Some(ac) = tlv::find(inner, 0xACu32).map_err(&m)? {
            for t in tlv::iter(ac) {
                let t = t.map_err(&m)?;
                if t.tag == tlv::Tag(0x80) {
                    algorithms.extend_from_slice(t.value);
                }
            }
        }
        Ok(Self {
            aid,
            authority,
            label,
            algorithms,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        Builder::new()
            .nested(0x61u32, |b| {
                let b = b.add(0x4Fu32, &self.aid);
                let b = match &self.authority {
                    Some(a) => b.nested(0x79u32, |b| b.add(0x4Fu32, a)),
                    None => b,
                };
                let b = b.add_opt(0x50u32, self.label.as_deref().map(str::as_bytes));
                if self.algorithms.is_empty() {
                    b
                } else {
                    b.nested(0xACu32, |mut b| {
                        for a in &self.algorithms {
                            b = b.add(0x80u32, &[*a]);
                        }
                        b.add(0x06u32, &[0x00])
                    })
                }
            })
            .build()
    }
}

/// A certificate container (`53 { 70 cert, 71 info, FE LRC }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertContainer {
    /// DER of the X.509 certificate (decompressed).
    pub der: Vec<u8>,
    /// Whether the card stored it gzip-compressed (CertInfo = 01).
    pub compressed: bool,
}

impl CertContainer {
    /// Parse the content of a certificate object (inside `53`). A container
    /// with an empty `70` is "no certificate" and yields `None`.
    pub fn parse(content: &[u8]) -> Result<Option<Self>, Error> {
        let m = malformed("certificate container");
        let cert = tlv::require(content, 0x70u32).map_err(&m)?;
        if cert.is_empty() {
            return Ok(None);
        }
        let info = tlv::find(content, 0x71u32).map_err(&m)?.unwrap_or(&[0]);
        let compressed = info.first().copied().unwrap_or(0) & 0x01 != 0;
        let der = if compressed {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(cert)
                .take(MAX_CERT_LEN as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|_| Error::Malformed("compressed certificate"))?;
            if out.len() > MAX_CERT_LEN {
                return Err(Error::Malformed("oversized compressed certificate"));
            }
            out
        } else {
            cert.to_vec()
        };
        Ok(Some(Self { der, compressed }))
    }

    /// Encode as the content of the certificate object.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let (body, info) = if self.compressed {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut enc, &self.der)
                .map_err(|_| Error::InvalidArgument("compression failed"))?;
            (
                enc.finish()
                    .map_err(|_| Error::InvalidArgument("compression failed"))?,
                0x01,
            )
        } else {
            (self.der.clone(), 0x00)
        };
        Ok(Builder::new()
            .add(0x70u32, &body)
            .add(0x71u32, &[info])
            .add(0xFEu32, &[])
            .build())
    }
}

/// Card Holder Unique Identifier (SP 800-73-4 Part 1 Table 9).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chuid {
    /// FASC-N (30), 25 bytes.
    pub fasc_n: Vec<u8>,
    /// GUID (34), 16 bytes.
    pub guid: Vec<u8>,
    /// Expiration date (35), `YYYYMMDD`.
    pub expiry: String,
    /// Issuer asymmetric signature (3E), possibly empty.
    pub signature: Vec<u8>,
}

impl Chuid {
    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let m = malformed("CHUID");
        Ok(Self {
            fasc_n: tlv::find(content, 0x30u32)
                .map_err(&m)?
                .unwrap_or_default()
                .to_vec(),
            guid: tlv::find(content, 0x34u32)
                .map_err(&m)?
                .unwrap_or_default()
                .to_vec(),
            expiry: String::from_utf8_lossy(
                tlv::find(content, 0x35u32).map_err(&m)?.unwrap_or_default(),
            )
            .into_owned(),
            signature: tlv::find(content, 0x3Eu32)
                .map_err(&m)?
                .unwrap_or_default()
                .to_vec(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        Builder::new()
            .add(0x30u32, &self.fasc_n)
            .add(0x34u32, &self.guid)
            .add(0x35u32, self.expiry.as_bytes())
            .add(0x3Eu32, &self.signature)
            .add(0xFEu32, &[])
            .build()
    }

    /// The FASC-N that yubico-piv-tool writes (agency 9999, system 9999, credential 999999).
    pub const DEFAULT_FASC_N: [u8; 25] = [
        0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21,
        0x08, 0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
    ];
}

/// Card Capability Container (SP 800-73-4 Part 1 Table 8): we only need
/// its card identifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ccc {
    /// Card identifier (F0), 21 bytes.
    pub card_id: Vec<u8>,
}

impl Ccc {
    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let m = malformed("CCC");
        Ok(Self {
            card_id: tlv::find(content, 0xF0u32)
                .map_err(&m)?
                .unwrap_or_default()
                .to_vec(),
        })
    }

    /// Encode with the mandatory elements at their defaults (as yubico-piv-tool does).
    pub fn encode(&self) -> Vec<u8> {
        Builder::new()
            .add(0xF0u32, &self.card_id)
            .add(0xF1u32, &[0x21])
            .add(0xF2u32, &[0x21])
            .add(0xF3u32, &[])
            .add(0xF4u32, &[0x00])
            .add(0xF5u32, &[0x10])
            .add(0xF6u32, &[])
            .add(0xF7u32, &[])
            .add(0xFAu32, &[])
            .add(0xFBu32, &[])
            .add(0xFCu32, &[])
            .add(0xFDu32, &[])
            .add(0xFEu32, &[])
            .build()
    }
}

/// Key History object (SP 800-73-4 Part 1 Table 19).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyHistory {
    /// Retired keys with their certificate on the card (C1).
    pub on_card_certs: u8,
    /// Retired keys with their certificate elsewhere (C2).
    pub off_card_certs: u8,
    /// URL of the off-card certificates (F3).
    pub url: Option<String>,
}

impl KeyHistory {
    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let m = malformed("key history");
        let byte = |tag: u32| -> Result<u8, Error> {
            Ok(tlv::find(content, tag)
                .map_err(&m)?
                .and_then(|v| v.first().copied())
                .unwrap_or(0))
        };
        Ok(Self {
            on_card_certs: byte(0xC1)?,
            off_card_certs: byte(0xC2)?,
            url: tlv::find(content, 0xF3u32)
                .map_err(&m)?
                .filter(|v| !v.is_empty())
                .map(|v| String::from_utf8_lossy(v).into_owned()),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        Builder::new()
            .add(0xC1u32, &[self.on_card_certs])
            .add(0xC2u32, &[self.off_card_certs])
            .add_opt(0xF3u32, self.url.as_deref().map(str::as_bytes))
            .add(0xFEu32, &[])
            .build()
    }
}

/// Discovery object (SP 800-73-4 Part 1 Table 18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub aid: Vec<u8>,
    /// PIN usage policy (5F2F), 2 bytes.
    pub pin_policy: [u8; 2],
}

impl Discovery {
    /// Parse the content of `7E`.
    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let m = malformed("discovery object");
        let aid = tlv::require(content, 0x4Fu32).map_err(&m)?.to_vec();
        let p = tlv::require(content, 0x5F2Fu32).map_err(&m)?;
        let pin_policy = [
            *p.first().ok_or(Error::Malformed("discovery PIN policy"))?,
            p.get(1).copied().unwrap_or(0),
        ];
        Ok(Self { aid, pin_policy })
    }

    pub fn encode(&self) -> Vec<u8> {
        Builder::new()
            .add(0x4Fu32, &self.aid)
            .add(0x5F2Fu32, &self.pin_policy)
            .build()
    }

    /// Whether the PIV Card Application PIN satisfies the policy (bit 0x40).
    pub fn piv_pin(&self) -> bool {
        self.pin_policy[0] & 0x40 != 0
    }
}

impl Default for Discovery {
    fn default() -> Self {
        Self {
            aid: PIV_AID.to_vec(),
            pin_policy: [0x40, 0x00],
        }
    }
}

/// YubiKey ADMIN DATA (5FFF00): `80 { 81 flags, 82 salt, 83 PIN timestamp }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminData {
    /// Bit 0x02: management key stored in PRINTED; 0x01: PUK blocked.
    pub flags: u8,
    pub salt: Option<Vec<u8>>,
    pub pin_timestamp: Option<u32>,
}

impl AdminData {
    pub const FLAG_PUK_BLOCKED: u8 = 0x01;
    pub const FLAG_MGMT_KEY_STORED: u8 = 0x02;

    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let m = malformed("admin data");
        let inner = tlv::require(content, 0x80u32).map_err(&m)?;
        Ok(Self {
            flags: tlv::find(inner, 0x81u32)
                .map_err(&m)?
                .and_then(|v| v.first().copied())
                .unwrap_or(0),
            salt: tlv::find(inner, 0x82u32).map_err(&m)?.map(<[u8]>::to_vec),
            pin_timestamp: tlv::find(inner, 0x83u32)
                .map_err(&m)?
                .and_then(|v| <[u8; 4]>::try_from(v).ok())
                .map(u32::from_be_bytes),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        Builder::new()
            .nested(0x80u32, |b| {
                b.add(0x81u32, &[self.flags])
                    .add_opt(0x82u32, self.salt.as_deref())
                    .add_opt(
                        0x83u32,
                        self.pin_timestamp
                            .map(u32::to_be_bytes)
                            .as_ref()
                            .map(|a| &a[..]),
                    )
            })
            .build()
    }

    pub fn management_key_protected(&self) -> bool {
        self.flags & Self::FLAG_MGMT_KEY_STORED != 0
    }
}

/// The management key as stored in PRINTED (5FC109) on a YubiKey with a
/// PIN-protected management key: `88 { 89 key }`.
pub struct ProtectedManagementKey {
    pub key: Zeroizing<Vec<u8>>,
}

impl ProtectedManagementKey {
    pub fn parse(content: &[u8]) -> Result<Self, Error> {
        let m = malformed("protected management key");
        let inner = tlv::require(content, 0x88u32).map_err(&m)?;
        let key = tlv::require(inner, 0x89u32).map_err(&m)?;
        Ok(Self {
            key: Zeroizing::new(key.to_vec()),
        })
    }

    pub fn encode(key: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            Builder::new()
                .nested(0x88u32, |b| b.add(0x89u32, key))
                .build(),
        )
    }
}

/// A public key as the card returns it (`7F49` content, or metadata tag 04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// Uncompressed SEC1 point (04 ‖ x ‖ y).
    Ec {
        alg: Algorithm,
        point: Vec<u8>,
    },
    /// 32-byte Ed25519 / X25519 public key.
    Curve25519 {
        alg: Algorithm,
        key: Vec<u8>,
    },
}

impl PublicKey {
    /// Parse the content of `7F49` for a key of `alg`.
    pub fn parse(alg: Algorithm, content: &[u8]) -> Result<Self, Error> {
        let m = malformed("public key");
        if alg.is_rsa() {
            let strip = |v: &[u8]| {
                let i = v.iter().position(|b| *b != 0).unwrap_or(v.len());
                v[i..].to_vec()
            };
            let modulus = strip(tlv::require(content, 0x81u32).map_err(&m)?);
            let exponent = strip(tlv::require(content, 0x82u32).map_err(&m)?);
            if modulus.len() != alg.size_bytes() || exponent.is_empty() || exponent.len() > 8 {
                return Err(Error::Malformed("RSA public key size"));
            }
            Ok(Self::Rsa { modulus, exponent })
        } else if alg.is_ec() {
            let point = tlv::require(content, 0x86u32).map_err(&m)?.to_vec();
            if point.len() != 1 + 2 * alg.size_bytes() || point[0] != 0x04 {
                return Err(Error::Malformed("EC point"));
            }
            Ok(Self::Ec { alg, point })
        } else if matches!(alg, Algorithm::Ed25519 | Algorithm::X25519) {
            let key = tlv::require(content, 0x86u32).map_err(&m)?.to_vec();
            if key.len() != 32 {
                return Err(Error::Malformed("Curve25519 key"));
            }
            Ok(Self::Curve25519 { alg, key })
        } else {
            Err(Error::InvalidArgument("not an asymmetric algorithm"))
        }
    }

    /// Parse a GENERATE ASYMMETRIC KEY PAIR response (`7F49 { ... }`).
    pub fn parse_generated(alg: Algorithm, data: &[u8]) -> Result<Self, Error> {
        let inner = tlv::unwrap(data, 0x7F49u32).map_err(malformed("generated key"))?;
        Self::parse(alg, inner)
    }

    /// Encode as `7F49` content.
    pub fn encode_content(&self) -> Vec<u8> {
        match self {
            Self::Rsa { modulus, exponent } => Builder::new()
                .add(0x81u32, modulus)
                .add(0x82u32, exponent)
                .build(),
            Self::Ec { point, .. } => Builder::new().add(0x86u32, point).build(),
            Self::Curve25519 { key, .. } => Builder::new().add(0x86u32, key).build(),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Rsa { modulus, .. } => {
                Algorithm::rsa_from_bits(modulus.len() * 8).unwrap_or(Algorithm::Rsa2048)
            }
            Self::Ec { alg, .. } | Self::Curve25519 { alg, .. } => *alg,
        }
    }
}

/// GET METADATA answer (YubiKey 5.3+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Algorithm (01); `None` for PIN/PUK (FF).
    pub algorithm: Option<Algorithm>,
    /// PIN and touch policy (02).
    pub policy: Option<(PinPolicy, TouchPolicy)>,
    /// Origin (03).
    pub origin: Option<KeyOrigin>,
    /// Public key (04).
    pub public_key: Option<PublicKey>,
    /// Whether the PIN/PUK/management key still has its default value (05).
    pub is_default: Option<bool>,
    /// Retries: total and remaining (06).
    pub retries: Option<(u8, u8)>,
}

impl Metadata {
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let m = malformed("metadata");
        let mut md = Metadata::default();
        // Each field once: a second algorithm after the key would describe
        // a key the card did not send.
        let mut seen = 0u8;
        for t in tlv::iter(data) {
            let t = t.map_err(&m)?;
            if let 0x01..=0x06 = t.tag.0 {
                let bit = 1u8 << t.tag.0;
                if seen & bit != 0 {
                    return Err(Error::Malformed("metadata field repeated"));
                }
                seen |= bit;
            }
            match (t.tag.0, t.value) {
                (0x01, [a]) => md.algorithm = Algorithm::from_code(*a),
                (0x02, [p, tp]) => {
                    md.policy = Some((
                        PinPolicy::from_code(*p).ok_or(Error::Malformed("PIN policy"))?,
                        TouchPolicy::from_code(*tp).ok_or(Error::Malformed("touch policy"))?,
                    ))
                }
                (0x03, [o]) => md.origin = KeyOrigin::from_code(*o),
                (0x05, [d]) => md.is_default = Some(*d != 0),
                (0x06, [total, left]) => md.retries = Some((*total, *left)),
                (0x04, v) => {
                    // A key needs an asymmetric algorithm before it: PublicKey::parse
                    // calls any other a caller's error, but here the card sent it.
                    let alg =
                        md.algorithm
                            .filter(|a| !a.is_symmetric())
                            .ok_or(Error::Malformed(
                                "metadata key before an asymmetric algorithm",
                            ))?;
                    md.public_key = Some(PublicKey::parse(alg, v)?);
                }
                (0x01..=0x06, _) => return Err(Error::Malformed("metadata field")),
                _ => {}
            }
        }
        Ok(md)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Builder::new().add(0x01u32, &[self.algorithm.map_or(0xFF, Algorithm::code)]);
        if let Some((p, t)) = self.policy {
            b = b.add(0x02u32, &[p.code(), t.code()]);
        }
        if let Some(o) = self.origin {
            b = b.add(0x03u32, &[o.code()]);
        }
        if let Some(pk) = &self.public_key {
            b = b.add(0x04u32, &pk.encode_content());
        }
        if let Some(d) = self.is_default {
            b = b.add(0x05u32, &[u8::from(d)]);
        }
        if let Some((t, l)) = self.retries {
            b = b.add(0x06u32, &[t, l]);
        }
        b.build()
    }
}

/// Private key material for YubiKey IMPORT ASYMMETRIC KEY (FE).
pub enum ImportKey<'a> {
    /// CRT components p, q, dp, dq, qinv (tags 01..05).
    Rsa {
        p: &'a [u8],
        q: &'a [u8],
        dp: &'a [u8],
        dq: &'a [u8],
        qinv: &'a [u8],
    },
    /// Private scalar (tag 06).
    Ec(&'a [u8]),
}

impl ImportKey<'_> {
    pub fn encode(&self, pin: PinPolicy, touch: TouchPolicy) -> Zeroizing<Vec<u8>> {
        let mut b = match self {
            ImportKey::Rsa { p, q, dp, dq, qinv } => Builder::new()
                .add(0x01u32, p)
                .add(0x02u32, q)
                .add(0x03u32, dp)
                .add(0x04u32, dq)
                .add(0x05u32, qinv),
            ImportKey::Ec(s) => Builder::new().add(0x06u32, s),
        };
        if pin != PinPolicy::Default {
            b = b.add(0xAAu32, &[pin.code()]);
        }
        if touch != TouchPolicy::Default {
            b = b.add(0xABu32, &[touch.code()]);
        }
        Zeroizing::new(b.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn yubikey_select_answer() {
        let ap = ApplicationProperties::parse(&hex!(
            "61 11 4F 06 00 00 10 00 01 00 79 07 4F 05 A0 00 00 03 08"
        ))
        .unwrap();
        assert_eq!(ap.aid, hex!("00 00 10 00 01 00"));
        assert_eq!(ap.authority.as_deref(), Some(&PIV_RID[..]));
        assert_eq!(ApplicationProperties::parse(&ap.encode()).unwrap(), ap);
    }

    #[test]
    fn select_answer_with_label_and_algorithms() {
        let ap = ApplicationProperties {
            aid: PIV_AID.to_vec(),
            authority: None,
            label: Some("PIV".into()),
            algorithms: vec![0x07, 0x11],
        };
        assert_eq!(ApplicationProperties::parse(&ap.encode()).unwrap(), ap);
        assert!(ApplicationProperties::parse(&hex!("62 00")).is_err());
    }

    #[test]
    fn cert_container_plain_and_compressed() {
        let der: Vec<u8> = (0..900u32).map(|i| (i % 7) as u8).collect();
        for compressed in [false, true] {
            let c = CertContainer {
                der: der.clone(),
                compressed,
            };
            let enc = c.encode().unwrap();
            assert_eq!(CertContainer::parse(&enc).unwrap(), Some(c));
        }
        assert_eq!(
            CertContainer::parse(&hex!("70 00 71 01 00 FE 00")).unwrap(),
            None
        );
        assert!(CertContainer::parse(&hex!("71 01 00")).is_err());
        assert!(CertContainer::parse(&hex!("70 03 01 02 03 71 01 01")).is_err());
    }

    #[test]
    fn gzip_bomb_is_refused() {
        let big = vec![0u8; MAX_CERT_LEN * 4];
        let c = CertContainer {
            der: big,
            compressed: true,
        }
        .encode()
        .unwrap();
        assert!(CertContainer::parse(&c).is_err());
    }

    #[test]
    fn chuid_ccc_keyhistory_roundtrip() {
        let ch = Chuid {
            fasc_n: Chuid::DEFAULT_FASC_N.to_vec(),
            guid: vec![0x11; 16],
            expiry: "20301231".into(),
            signature: vec![],
        };
        assert_eq!(Chuid::parse(&ch.encode()).unwrap(), ch);
        let ccc = Ccc {
            card_id: vec![0xA0; 21],
        };
        assert_eq!(Ccc::parse(&ccc.encode()).unwrap(), ccc);
        let kh = KeyHistory {
            on_card_certs: 2,
            off_card_certs: 1,
            url: Some("http://x".into()),
        };
        assert_eq!(KeyHistory::parse(&kh.encode()).unwrap(), kh);
    }

    #[test]
    fn yubikey_discovery_object() {
        let d = Discovery::parse(&hex!(
            "4F 0B A0 00 00 03 08 00 00 10 00 01 00 5F 2F 02 40 00"
        ))
        .unwrap();
        assert_eq!(d, Discovery::default());
        assert!(d.piv_pin());
    }

    #[test]
    fn admin_data_and_protected_key() {
        let a = AdminData {
            flags: AdminData::FLAG_MGMT_KEY_STORED,
            salt: None,
            pin_timestamp: Some(1234),
        };
        let parsed = AdminData::parse(&a.encode()).unwrap();
        assert!(parsed.management_key_protected());
        assert_eq!(parsed, a);
        let p = ProtectedManagementKey::encode(&[7; 24]);
        assert_eq!(
            &ProtectedManagementKey::parse(&p).unwrap().key[..],
            &[7; 24]
        );
    }

    #[test]
    fn generated_keys() {
        let mut point = vec![0x04];
        point.extend([1u8; 64]);
        let data = Builder::new()
            .nested(0x7F49u32, |b| b.add(0x86u32, &point))
            .build();
        let pk = PublicKey::parse_generated(Algorithm::EccP256, &data).unwrap();
        assert_eq!(
            pk,
            PublicKey::Ec {
                alg: Algorithm::EccP256,
                point: point.clone()
            }
        );
        assert!(PublicKey::parse_generated(Algorithm::EccP384, &data).is_err());
        let rsa = Builder::new()
            .nested(0x7F49u32, |b| {
                b.add(0x81u32, &[0xC5; 256]).add(0x82u32, &hex!("01 00 01"))
            })
            .build();
        let pk = PublicKey::parse_generated(Algorithm::Rsa2048, &rsa).unwrap();
        assert_eq!(pk.algorithm(), Algorithm::Rsa2048);
    }

    #[test]
    fn metadata_pin_and_key() {
        let md = Metadata::parse(&hex!("01 01 FF 05 01 01 06 02 03 02")).unwrap();
        assert_eq!(md.algorithm, None);
        assert_eq!(md.is_default, Some(true));
        assert_eq!(md.retries, Some((3, 2)));
        let mut point = vec![0x04];
        point.extend([9u8; 96]);
        let key = Metadata {
            algorithm: Some(Algorithm::EccP384),
            policy: Some((PinPolicy::Once, TouchPolicy::Never)),
            origin: Some(KeyOrigin::Generated),
            public_key: Some(PublicKey::Ec {
                alg: Algorithm::EccP384,
                point,
            }),
            is_default: None,
            retries: None,
        };
        assert_eq!(Metadata::parse(&key.encode()).unwrap(), key);
        assert!(Metadata::parse(&hex!("02 01 02")).is_err());
    }

    #[test]
    fn metadata_fields_may_not_repeat() {
        // Found with the piv_objects round-trip check: a second algorithm
        // after a P-256 key gave Metadata { algorithm: P-384, key: P-256 }.
        let mut data = hex!("01 01 11 04 43 86 41 04").to_vec();
        data.extend([7u8; 64]);
        assert!(Metadata::parse(&data).is_ok());
        data.extend(hex!("01 01 14"));
        assert_eq!(
            Metadata::parse(&data),
            Err(Error::Malformed("metadata field repeated"))
        );
        assert!(Metadata::parse(&hex!("06 02 03 03 06 02 03 00")).is_err());
    }

    #[test]
    fn metadata_key_of_a_symmetric_algorithm_is_malformed() {
        // Found by fuzzing (piv_objects): card data, so Malformed, not InvalidArgument.
        assert_eq!(
            Metadata::parse(&hex!("01 01 0A 04 02 86 00")),
            Err(Error::Malformed(
                "metadata key before an asymmetric algorithm"
            ))
        );
    }
}
