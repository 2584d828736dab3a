//! The management key: how the card keeps it (PIN-protected? its
//! algorithm, factory default?) and which algorithms a key of n bytes is
//! tried with. The PKCS#11 module and the CLI authenticate through
//! [`authenticate`], so a key one of them accepts the other does too.

use apdu::piv::caps::{optional, CardFacts};
use apdu::piv::{AdminData, Algorithm, ManagementKey, ObjectId};
use apdu::Session;

/// The algorithms to try for a management key of `len` bytes: the one GET
/// METADATA names (`known`), else by length. 24 bytes is 3DES (the
/// factory key before YubiKey 5.7) or AES-192 (from 5.7): both are tried,
/// 3DES first. Empty for a length no algorithm has.
pub fn candidates(known: Option<Algorithm>, len: usize) -> Vec<Algorithm> {
    match known {
        Some(a) => vec![a],
        None => match len {
            16 => vec![Algorithm::Aes128],
            24 => vec![Algorithm::Tdes, Algorithm::Aes192],
            32 => vec![Algorithm::Aes256],
            _ => Vec::new(),
        },
    }
}

/// The management key's algorithm as GET METADATA 9B reports it (`None`
/// where the card cannot tell).
pub fn reported_algorithm(
    s: &mut Session<'_>,
    facts: &CardFacts,
) -> Result<Option<Algorithm>, apdu::Error> {
    Ok(facts.management_key(s)?.and_then(|m| m.algorithm))
}

/// Whether ADMIN DATA says the management key is kept PIN-protected (in
/// PRINTED, readable after PIN verification); a card that keeps no ADMIN
/// DATA (or an unreadable one) has no PIN-protected key.
pub fn pin_protected(s: &mut Session<'_>) -> Result<bool, apdu::Error> {
    Ok(match optional(s.get_data(ObjectId::ADMIN_DATA))? {
        Some(content) => AdminData::parse(&content).is_ok_and(|a| a.management_key_protected()),
        None => false,
    })
}

/// How the management key is kept on the token.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MgmtInfo {
    /// Algorithm (metadata only).
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser_alg"))]
    pub algorithm: Option<Algorithm>,
    /// Still the factory key (metadata only).
    pub default: Option<bool>,
    /// Stored in PRINTED, readable after PIN verification (ADMIN DATA flag 0x02).
    pub protected: bool,
}

#[cfg(feature = "serde")]
fn ser_alg<S: serde::Serializer>(a: &Option<Algorithm>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.serialize_some(a.name()),
        None => s.serialize_none(),
    }
}

/// ADMIN DATA (protected?) and GET METADATA 9B (algorithm, default?).
pub fn mgmt_info(s: &mut Session<'_>, facts: &CardFacts) -> Result<MgmtInfo, apdu::Error> {
    let protected = pin_protected(s)?;
    let md = facts.management_key(s)?;
    Ok(MgmtInfo {
        algorithm: md.as_ref().and_then(|m| m.algorithm),
        default: md.as_ref().and_then(|m| m.is_default),
        protected,
    })
}

/// Why [`authenticate`] did not succeed.
#[derive(Debug)]
pub enum AuthError {
    /// No algorithm has keys of this many bytes (16, 24 or 32).
    NoAlgorithm(usize),
    /// The card refused the key (with every candidate algorithm), or did
    /// not prove it holds it: the last answer.
    Refused(apdu::Error),
    /// The card went away or was reset.
    Card(apdu::Error),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoAlgorithm(n) => write!(
                f,
                "a management key of {n} bytes fits no algorithm (16, 24 or 32 bytes)"
            ),
            Self::Refused(e) => write!(f, "management key authentication failed: {e}"),
            Self::Card(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AuthError {}

/// Authenticate with the management key `key` (mutual GENERAL
/// AUTHENTICATE), trying [`candidates`] in order; the algorithm the card
/// accepted. A refusal moves on to the next candidate (a management key
/// has no retry counter); a transport error ends the attempt.
pub fn authenticate(
    s: &mut Session<'_>,
    key: &[u8],
    known: Option<Algorithm>,
) -> Result<Algorithm, AuthError> {
    let algs = candidates(known, key.len());
    let mut last = None;
    for alg in algs {
        let mk = ManagementKey::new(alg, key).map_err(AuthError::Refused)?;
        match s.authenticate(&mk) {
            Ok(()) => return Ok(alg),
            Err(e @ apdu::Error::Transport(_)) => return Err(AuthError::Card(e)),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => AuthError::Refused(e),
        None => AuthError::NoAlgorithm(key.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_by_length_when_the_card_cannot_tell() {
        assert_eq!(candidates(None, 16), vec![Algorithm::Aes128]);
        assert_eq!(
            candidates(None, 24),
            vec![Algorithm::Tdes, Algorithm::Aes192]
        );
        assert_eq!(candidates(None, 32), vec![Algorithm::Aes256]);
        assert!(candidates(None, 5).is_empty());
        assert!(candidates(None, 0).is_empty());
    }

    #[test]
    fn metadata_decides_when_it_answers() {
        assert_eq!(
            candidates(Some(Algorithm::Aes192), 24),
            vec![Algorithm::Aes192]
        );
        assert_eq!(candidates(Some(Algorithm::Tdes), 24), vec![Algorithm::Tdes]);
    }
}

#[cfg(test)]
mod card_tests {
    use super::*;
    use apdu::piv::DEFAULT_MANAGEMENT_KEY;
    use apdu::PivCard;
    use ukey_sim::profile::Profile;
    use ukey_sim::state::Persistent;
    use ukey_sim::{SimCard, SimTransport};

    /// A card without GET METADATA whose factory key is of `alg`.
    fn card(alg: Algorithm) -> PivCard<SimTransport> {
        let p = Persistent::factory_for(Profile::Generic, 7, Some(alg));
        PivCard::new(SimTransport::new(SimCard::new(p).shared()))
    }

    fn auth(card: &mut PivCard<SimTransport>, key: &[u8]) -> Result<Algorithm, AuthError> {
        let mut out = None;
        card.transaction(|s| {
            s.select()?;
            let facts = CardFacts::probe(s)?;
            let known = reported_algorithm(s, &facts)?;
            assert_eq!(known, None, "this card cannot tell");
            out = Some(authenticate(s, key, known));
            Ok(())
        })
        .unwrap();
        out.unwrap()
    }

    #[test]
    fn a_24_byte_key_is_tried_as_3des_then_aes_192() {
        let mut aes = card(Algorithm::Aes192);
        assert_eq!(
            auth(&mut aes, &DEFAULT_MANAGEMENT_KEY).unwrap(),
            Algorithm::Aes192
        );
        let mut tdes = card(Algorithm::Tdes);
        assert_eq!(
            auth(&mut tdes, &DEFAULT_MANAGEMENT_KEY).unwrap(),
            Algorithm::Tdes
        );
    }

    #[test]
    fn a_wrong_key_is_refused_and_a_bad_length_fits_nothing() {
        let mut aes = card(Algorithm::Aes192);
        let mut wrong = DEFAULT_MANAGEMENT_KEY;
        wrong[0] ^= 1;
        assert!(matches!(auth(&mut aes, &wrong), Err(AuthError::Refused(_))));
        assert!(matches!(
            auth(&mut aes, &[1; 20]),
            Err(AuthError::NoAlgorithm(20))
        ));
    }
}
