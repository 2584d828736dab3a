//! Every parser of PIV data a card sends (`apdu::piv::objects`): the first
//! input byte picks the parser, the rest is the card's bytes.
//!
//! | byte % 11 | parser |
//! | --- | --- |
//! | 0 | `ApplicationProperties::parse` (SELECT answer) |
//! | 1 | `CertContainer::parse` (certificate objects, gzip-compressed too) |
//! | 2 | `Chuid::parse` |
//! | 3 | `Ccc::parse` |
//! | 4 | `KeyHistory::parse` |
//! | 5 | `Discovery::parse` |
//! | 6 | `AdminData::parse` |
//! | 7 | `ProtectedManagementKey::parse` |
//! | 8 | `PublicKey::parse` (second byte: algorithm) |
//! | 9 | `PublicKey::parse_generated` (second byte: algorithm) |
//! | 10 | `Metadata::parse` |
//!
//! None may panic; card bytes that do not parse are `Error::Malformed`
//! (only a caller asking for a public key of a symmetric algorithm gets
//! `InvalidArgument`); what parses encodes back into bytes that parse to
//! the same value; a decompressed certificate is never over `MAX_CERT_LEN`.

use apdu::piv::{
    AdminData, Algorithm, ApplicationProperties, Ccc, CertContainer, Chuid, Discovery, KeyHistory,
    Metadata, ProtectedManagementKey, PublicKey, MAX_CERT_LEN,
};
use apdu::Error;

/// Number of parsers the selector byte chooses from.
pub const PARSERS: u8 = 11;

pub fn run(data: &[u8]) {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    match selector % PARSERS {
        0 => round_trip(ApplicationProperties::parse(content), |v| {
            ApplicationProperties::parse(&v.encode())
        }),
        1 => cert_container(content),
        2 => round_trip(Chuid::parse(content), |v| Chuid::parse(&v.encode())),
        3 => round_trip(Ccc::parse(content), |v| Ccc::parse(&v.encode())),
        4 => round_trip(KeyHistory::parse(content), |v| {
            KeyHistory::parse(&v.encode())
        }),
        5 => round_trip(Discovery::parse(content), |v| Discovery::parse(&v.encode())),
        6 => round_trip(AdminData::parse(content), |v| AdminData::parse(&v.encode())),
        7 => match ProtectedManagementKey::parse(content) {
            Ok(k) => {
                let again = ProtectedManagementKey::parse(&ProtectedManagementKey::encode(&k.key))
                    .expect("re-encoded key parses");
                assert_eq!(&again.key[..], &k.key[..]);
            }
            Err(e) => assert_malformed(&e),
        },
        sel @ (8 | 9) => {
            let Some((&alg, content)) = content.split_first() else {
                return;
            };
            let alg = Algorithm::ALL[usize::from(alg) % Algorithm::ALL.len()];
            let parsed = if sel == 8 {
                PublicKey::parse(alg, content)
            } else {
                PublicKey::parse_generated(alg, content)
            };
            if !(alg.is_rsa()
                || alg.is_ec()
                || matches!(alg, Algorithm::Ed25519 | Algorithm::X25519))
            {
                assert!(
                    matches!(
                        parsed,
                        Err(Error::InvalidArgument(_)) | Err(Error::Malformed(_))
                    ),
                    "{parsed:?}"
                );
                return;
            }
            if let Ok(k) = &parsed {
                assert_eq!(k.algorithm(), alg, "{k:?}");
            }
            round_trip(parsed, |k| PublicKey::parse(alg, &k.encode_content()));
        }
        _ => round_trip(Metadata::parse(content), |v| Metadata::parse(&v.encode())),
    }
}

fn assert_malformed(e: &Error) {
    assert!(
        matches!(e, Error::Malformed(_)),
        "card data that does not parse must be Malformed, got {e:?}"
    );
}

/// Parsed values encode into bytes that parse back to the same value;
/// failures are `Malformed`.
fn round_trip<T: PartialEq + core::fmt::Debug>(
    parsed: Result<T, Error>,
    again: impl Fn(&T) -> Result<T, Error>,
) {
    match parsed {
        Ok(v) => {
            let back =
                again(&v).unwrap_or_else(|e| panic!("{v:?} encodes into bytes that fail: {e:?}"));
            assert_eq!(back, v, "encode/parse round trip");
        }
        Err(e) => assert_malformed(&e),
    }
}

fn cert_container(content: &[u8]) {
    match CertContainer::parse(content) {
        Ok(Some(c)) => {
            assert!(
                c.der.len() <= MAX_CERT_LEN || !c.compressed,
                "{} bytes",
                c.der.len()
            );
            if !c.compressed {
                let raw = apdu::tlv::require(content, 0x70u32).expect("parsed");
                assert_eq!(raw, &c.der[..]);
            }
            let enc = c.encode().expect("a parsed container encodes");
            assert_eq!(CertContainer::parse(&enc).expect("re-encoded"), Some(c));
        }
        Ok(None) => {}
        Err(e) => assert_malformed(&e),
    }
}
