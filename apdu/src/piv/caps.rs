//! What a PIV card can do, learned from its own answers, never from the
//! version number it claims.
//!
//! Cards that are not YubiKeys (government PIV/CAC cards, other vendors'
//! PIV applets, older YubiKeys) answer the YubiKey extensions in every way:
//! `6D00`, `6A81`, a made-up GET VERSION, an empty `9000` to GET METADATA,
//! `6A80` for objects they do not know. Each of those means "this card
//! cannot tell": the caller falls back to what every PIV card has (the
//! certificates for keys, an empty VERIFY for the PIN tries, the CHUID for
//! the card's identity). Only answers to what the user asked for are errors.
//!
//! The module and the CLI both probe with [`CardFacts::probe`] once per
//! insertion (SELECT done) and keep the result.

use super::{Chuid, Metadata, ObjectId, PinRef, PinStatus, PublicKey, Session, Slot, Version};
use crate::command::Command;
use crate::sw::StatusWord;
use crate::Error;

/// Whether an error to an optional command or object means "this card
/// cannot tell" (the instruction, object or reference is unknown to it, or
/// its answer is unusable) rather than a failure worth reporting. Transport
/// errors (a pulled card) and security refusals are never "cannot tell".
pub fn cannot_tell(e: &Error) -> bool {
    match e {
        Error::Malformed(_) => true,
        Error::Status(sw) => matches!(
            sw,
            StatusWord::InsNotSupported
                | StatusWord::ClaNotSupported
                | StatusWord::FunctionNotSupported
                | StatusWord::IncorrectData
                | StatusWord::ReferenceNotFound
                | StatusWord::FileNotFound
                | StatusWord::WrongP1P2
                | StatusWord::IncorrectP1P2
                | StatusWord::WrongLength
        ),
        Error::Transport(_) | Error::InvalidArgument(_) => false,
    }
}

/// The answer to an optional command: `None` when the card cannot tell.
pub fn optional<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if cannot_tell(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the instruction itself is missing (not just this use of it):
/// `6D00`, `6E00` or `6A81`.
pub fn instruction_missing(e: &Error) -> bool {
    matches!(
        e.status(),
        Some(
            StatusWord::InsNotSupported
                | StatusWord::ClaNotSupported
                | StatusWord::FunctionNotSupported
        )
    )
}

/// How far the card's GET METADATA (YubiKey 5.3+) can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSupport {
    /// It answered the PIN's retry counter: its answers are believed, `6A88`
    /// to a key slot means "no key".
    Works,
    /// It answered, but empty or malformed: each key's answer is used when
    /// it describes a key, anything else means "cannot tell".
    Unreliable,
    /// The card has no GET METADATA (or no YubiKey extensions at all).
    Absent,
}

/// A PIN or PUK retry counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    pub left: u8,
    /// Unknown when only an empty VERIFY could tell.
    pub total: Option<u8>,
    /// Still the factory value (GET METADATA only).
    pub default: Option<bool>,
}

impl Tries {
    fn from_metadata(md: &Metadata) -> Option<Self> {
        md.retries.map(|(total, left)| Tries {
            left,
            total: Some(total),
            default: md.is_default,
        })
    }
}

/// What an attempt to read the PIN counter found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCount {
    Tries(Tries),
    /// An empty VERIFY answered `9000`: verified in this card session, and
    /// such a card gives no count then.
    Verified,
}

/// Who the card is and which optional parts of PIV it answers: GET VERSION,
/// GET SERIAL, the CHUID (when there is no serial) and GET METADATA of the
/// PIN. Probed once per insertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFacts {
    /// What GET VERSION answered (YubiKey extension; any number, even a
    /// made-up one: it is shown, never used to decide what to send).
    pub version: Option<Version>,
    /// GET SERIAL (YubiKey 5 extension).
    pub serial: Option<u32>,
    /// The CHUID, read for the card's identity when it has no serial.
    pub chuid: Option<Chuid>,
    pub metadata: MetadataSupport,
    /// The PIN counter, when GET METADATA told it during the probe.
    pub pin: Option<Tries>,
}

impl CardFacts {
    /// Ask the card (SELECTed): GET VERSION; then, on a card that knows it,
    /// GET SERIAL and GET METADATA of the PIN (a card without GET VERSION
    /// has none of the YubiKey extensions: they are not asked); the CHUID
    /// when there is no serial. 2 to 5 APDUs, no PIN try.
    pub fn probe(s: &mut Session<'_>) -> Result<Self, Error> {
        let mut facts = Self::probe_identity(s)?;
        let (metadata, pin) = if facts.yubikey_extensions() {
            match s.metadata(PinRef::Pin.code()) {
                Ok(md) => match Tries::from_metadata(&md) {
                    Some(t) => (MetadataSupport::Works, Some(t)),
                    None => (MetadataSupport::Unreliable, None),
                },
                Err(e) if instruction_missing(&e) => (MetadataSupport::Absent, None),
                Err(e @ Error::Transport(_)) => return Err(e),
                Err(_) => (MetadataSupport::Unreliable, None),
            }
        } else {
            (MetadataSupport::Absent, None)
        };
        facts.metadata = metadata;
        facts.pin = pin;
        Ok(facts)
    }

    /// Only who the card is (GET VERSION, GET SERIAL or the CHUID): enough
    /// to tell whether a reset card is still the same one. `metadata` is
    /// left `Absent`.
    pub fn probe_identity(s: &mut Session<'_>) -> Result<Self, Error> {
        let version = optional(s.version())?;
        let serial = if version.is_some() {
            optional(s.serial())?
        } else {
            None
        };
        let chuid = if serial.is_none() {
            match optional(s.get_data_opt(ObjectId::CHUID))?.flatten() {
                Some(c) => Chuid::parse(&c).ok(),
                None => None,
            }
        } else {
            None
        };
        Ok(Self {
            version,
            serial,
            chuid,
            metadata: MetadataSupport::Absent,
            pin: None,
        })
    }

    /// Whether the card answered GET VERSION, i.e. speaks the YubiKey
    /// extensions at all (a made-up version counts).
    pub fn yubikey_extensions(&self) -> bool {
        self.version.is_some()
    }

    /// A stable identity: the serial (decimal), else the CHUID's GUID, else
    /// its FASC-N (hex). `None` for a card with neither serial nor CHUID.
    pub fn identity(&self) -> Option<String> {
        if let Some(n) = self.serial {
            return Some(n.to_string());
        }
        let ch = self.chuid.as_ref()?;
        let nonzero = |v: &[u8]| !v.is_empty() && v.iter().any(|b| *b != 0);
        if nonzero(&ch.guid) {
            Some(hex::encode_upper(&ch.guid))
        } else if nonzero(&ch.fasc_n) {
            Some(hex::encode_upper(&ch.fasc_n))
        } else {
            None
        }
    }

    /// The PIN counter without spending a try: GET METADATA where it works,
    /// else an empty VERIFY (which gives no count once the PIN is verified).
    pub fn pin_count(&self, s: &mut Session<'_>) -> Result<Option<PinCount>, Error> {
        if self.metadata == MetadataSupport::Works {
            if let Some(t) = optional(s.metadata(PinRef::Pin.code()))?
                .as_ref()
                .and_then(Tries::from_metadata)
            {
                return Ok(Some(PinCount::Tries(t)));
            }
        }
        match optional(s.pin_status())? {
            Some(PinStatus::TriesLeft(n)) => Ok(Some(PinCount::Tries(Tries {
                left: n,
                total: None,
                default: None,
            }))),
            Some(PinStatus::Blocked) => Ok(Some(PinCount::Tries(Tries {
                left: 0,
                total: None,
                default: None,
            }))),
            Some(PinStatus::Verified) => Ok(Some(PinCount::Verified)),
            None => Ok(None),
        }
    }

    /// The PUK counter: only GET METADATA can tell (there is no VERIFY for
    /// the PUK), so `None` wherever it does not work — never a guess.
    pub fn puk_tries(&self, s: &mut Session<'_>) -> Result<Option<Tries>, Error> {
        if self.metadata != MetadataSupport::Works {
            return Ok(None);
        }
        Ok(optional(s.metadata(PinRef::Puk.code()))?
            .as_ref()
            .and_then(Tries::from_metadata))
    }

    /// GET METADATA of the management key (9B), when it describes one.
    pub fn management_key(&self, s: &mut Session<'_>) -> Result<Option<Metadata>, Error> {
        if self.metadata == MetadataSupport::Absent {
            return Ok(None);
        }
        Ok(optional(s.metadata(super::MANAGEMENT_KEY_REF))?
            .filter(|md| md.algorithm.is_some_and(|a| a.is_symmetric())))
    }

    /// What GET METADATA says about the key in `slot`.
    pub fn key(&self, s: &mut Session<'_>, slot: Slot) -> Result<KeyAnswer, Error> {
        if self.metadata == MetadataSupport::Absent {
            return Ok(KeyAnswer::CannotTell);
        }
        match s.metadata(slot.key_ref()) {
            Ok(md)
                if md.algorithm.is_some_and(|a| !a.is_symmetric()) && md.public_key.is_some() =>
            {
                Ok(KeyAnswer::Reported(md))
            }
            Ok(_) => Ok(KeyAnswer::CannotTell),
            Err(e)
                if self.metadata == MetadataSupport::Works
                    && matches!(
                        e.status(),
                        Some(StatusWord::ReferenceNotFound | StatusWord::FileNotFound)
                    ) =>
            {
                Ok(KeyAnswer::Empty)
            }
            Err(e) if cannot_tell(&e) => Ok(KeyAnswer::CannotTell),
            Err(e) => Err(e),
        }
    }

    /// Whether the card itself shows `public` as the key in `slot` (just
    /// generated there): where GET METADATA works, it does; where its
    /// answers are unreliable, the slot's answer is asked; without it, no.
    pub fn reports_key(
        &self,
        s: &mut Session<'_>,
        slot: Slot,
        public: &PublicKey,
    ) -> Result<bool, Error> {
        Ok(match self.metadata {
            MetadataSupport::Works => true,
            MetadataSupport::Unreliable => matches!(
                self.key(s, slot)?,
                KeyAnswer::Reported(md) if md.public_key.as_ref() == Some(public)
            ),
            MetadataSupport::Absent => false,
        })
    }

    /// Whether the card has MOVE KEY, asked the only safe way
    /// ([`probe_move_key`] between two retired slots GET METADATA reported
    /// empty, searched from the last one): no card state changes, no PIN.
    /// A card whose GET METADATA does not work cannot report empty slots,
    /// so it is not asked and taken not to move keys (as the PKCS#11
    /// module does); so is a card with fewer than two empty retired slots.
    pub fn moves_keys(&self, s: &mut Session<'_>) -> Result<bool, Error> {
        if self.metadata != MetadataSupport::Works {
            return Ok(false);
        }
        let mut empty = Vec::new();
        for slot in (1..=20u8).rev().map(Slot::Retired) {
            if self.key(s, slot)? == KeyAnswer::Empty {
                empty.push(slot);
            }
            if let [to, from] = empty[..] {
                return probe_move_key(s, to, from);
            }
        }
        Ok(false)
    }
}

/// GET METADATA's word on a key slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAnswer {
    /// A key, with its algorithm and public key (and policies, origin).
    Reported(Metadata),
    /// No key: said by a card whose metadata works.
    Empty,
    /// The card cannot tell: look at its certificate (and ukey's record of
    /// keys it generated, see [`super::generated`]).
    CannotTell,
}

/// Whether GET CHALLENGE gives random bytes (`CKF_RNG`): one 8-byte
/// challenge. A card without it answers `6A81` or `6D00`.
pub fn probe_challenge(s: &mut Session<'_>) -> Result<bool, Error> {
    match s.get_challenge(8) {
        Ok(_) => Ok(true),
        Err(e @ Error::Transport(_)) => Err(e),
        Err(_) => Ok(false),
    }
}

/// Whether the card has MOVE KEY (YubiKey 5.7), asked with a move between
/// two slots the card itself reported empty (GET METADATA `6A88`), so a
/// card that has the instruction has nothing to move: it answers `6A88`
/// (or `6982` before management-key authentication). A card without it
/// answers `6D00`. Never call it with slots not known to be empty: MOVE KEY
/// with P1 = FF deletes, so no other form of the probe is safe.
pub fn probe_move_key(
    s: &mut Session<'_>,
    empty_to: Slot,
    empty_from: Slot,
) -> Result<bool, Error> {
    if empty_to == empty_from {
        return Err(Error::InvalidArgument("MOVE KEY probe needs two slots"));
    }
    let r = s.transmit(&Command::new(
        0,
        super::ins::YK_MOVE_KEY,
        empty_to.key_ref(),
        empty_from.key_ref(),
    ))?;
    Ok(!matches!(
        r.sw,
        StatusWord::InsNotSupported
            | StatusWord::ClaNotSupported
            | StatusWord::FunctionNotSupported
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tests::Script;
    use hex_literal::hex;

    fn probe(steps: &[(&[u8], &[u8])]) -> CardFacts {
        let mut s = Script::new(steps);
        let f = CardFacts::probe(&mut Session::new(&mut s, false)).unwrap();
        assert!(s.done(), "APDUs left over");
        f
    }

    #[test]
    fn a_yubikey_5_with_metadata() {
        let f = probe(&[
            (&hex!("00 FD 00 00 00"), &hex!("05 07 01 90 00")),
            (&hex!("00 F8 00 00 00"), &hex!("01 02 03 04 90 00")),
            (
                &hex!("00 F7 00 80 00"),
                &hex!("01 01 FF 05 01 01 06 02 03 02 90 00"),
            ),
        ]);
        assert_eq!(f.version, Some(Version(5, 7, 1)));
        assert_eq!(f.identity().as_deref(), Some("16909060"));
        assert_eq!(f.metadata, MetadataSupport::Works);
        assert_eq!(f.pin.map(|t| (t.left, t.total)), Some((2, Some(3))));
    }

    #[test]
    fn a_made_up_version_with_empty_metadata_is_unreliable_not_fatal() {
        let f = probe(&[
            (&hex!("00 FD 00 00 00"), &hex!("06 06 06 90 00")),
            (&hex!("00 F8 00 00 00"), &hex!("6D 00")),
            (&hex!("00 CB 3F FF 05 5C 03 5F C1 02 00"), &hex!("6A 80")),
            (&hex!("00 F7 00 80 00"), &hex!("90 00")),
        ]);
        assert_eq!(f.metadata, MetadataSupport::Unreliable);
        assert_eq!(f.identity(), None);
        assert_eq!(f.pin, None);
    }

    #[test]
    fn a_plain_piv_card_is_asked_no_yubikey_extension_but_get_version() {
        let mut chuid = hex!("53 18 34 10").to_vec();
        chuid.extend([0xAB; 16]);
        chuid.extend(hex!("35 00 3E 00 FE 00 90 00"));
        let f = probe(&[
            (&hex!("00 FD 00 00 00"), &hex!("6D 00")),
            (&hex!("00 CB 3F FF 05 5C 03 5F C1 02 00"), &chuid),
        ]);
        assert_eq!(f.metadata, MetadataSupport::Absent);
        assert_eq!(
            f.identity().as_deref(),
            Some("ABABABABABABABABABABABABABABABAB")
        );
    }

    #[test]
    fn a_yubikey_4_has_no_metadata() {
        let f = probe(&[
            (&hex!("00 FD 00 00 00"), &hex!("04 03 07 90 00")),
            (&hex!("00 F8 00 00 00"), &hex!("6D 00")),
            (&hex!("00 CB 3F FF 05 5C 03 5F C1 02 00"), &hex!("6A 82")),
            (&hex!("00 F7 00 80 00"), &hex!("6D 00")),
        ]);
        assert_eq!(f.metadata, MetadataSupport::Absent);
    }

    #[test]
    fn a_pulled_card_is_an_error_not_a_missing_feature() {
        let mut s = Script::new(&[(&hex!("00 FD 00 00 00"), &[])]);
        assert!(CardFacts::probe(&mut Session::new(&mut s, false))
            .unwrap_err()
            .is_removed());
    }

    fn facts(metadata: MetadataSupport) -> CardFacts {
        CardFacts {
            version: None,
            serial: None,
            chuid: None,
            metadata,
            pin: None,
        }
    }

    #[test]
    fn key_answers() {
        let mut key = hex!("01 01 11 04 43 86 41 04").to_vec();
        key.extend([7u8; 64]);
        key.extend(hex!("90 00"));
        let mut s = Script::new(&[
            (&hex!("00 F7 00 9A 00"), &key),
            (&hex!("00 F7 00 9C 00"), &hex!("6A 88")),
            (&hex!("00 F7 00 9D 00"), &hex!("90 00")),
            (&hex!("00 F7 00 9E 00"), &hex!("6A 88")),
            (&hex!("00 F7 00 82 00"), &hex!("01 01 11 90 00")),
        ]);
        let mut sess = Session::new(&mut s, false);
        let works = facts(MetadataSupport::Works);
        assert!(matches!(
            works.key(&mut sess, Slot::Authentication).unwrap(),
            KeyAnswer::Reported(_)
        ));
        assert_eq!(
            works.key(&mut sess, Slot::Signature).unwrap(),
            KeyAnswer::Empty
        );
        let unreliable = facts(MetadataSupport::Unreliable);
        assert_eq!(
            unreliable.key(&mut sess, Slot::KeyManagement).unwrap(),
            KeyAnswer::CannotTell
        );
        // 6A88 from a card whose metadata was empty for the PIN: not believed.
        assert_eq!(
            unreliable.key(&mut sess, Slot::CardAuthentication).unwrap(),
            KeyAnswer::CannotTell
        );
        // An algorithm without its public key: cannot tell, never fatal.
        assert_eq!(
            works.key(&mut sess, Slot::Retired(1)).unwrap(),
            KeyAnswer::CannotTell
        );
        assert_eq!(
            facts(MetadataSupport::Absent)
                .key(&mut sess, Slot::Retired(2))
                .unwrap(),
            KeyAnswer::CannotTell
        );
        assert!(s.done());
    }

    #[test]
    fn pin_count_falls_back_to_an_empty_verify() {
        let mut s = Script::new(&[
            (&hex!("00 20 00 80"), &hex!("63 C2")),
            (&hex!("00 20 00 80"), &hex!("90 00")),
        ]);
        let mut sess = Session::new(&mut s, false);
        let f = facts(MetadataSupport::Unreliable);
        assert_eq!(
            f.pin_count(&mut sess).unwrap(),
            Some(PinCount::Tries(Tries {
                left: 2,
                total: None,
                default: None
            }))
        );
        assert_eq!(f.pin_count(&mut sess).unwrap(), Some(PinCount::Verified));
        assert_eq!(f.puk_tries(&mut sess).unwrap(), None);
    }

    #[test]
    fn challenge_and_move_key_probes() {
        let mut rnd = vec![0x11; 8];
        rnd.extend(hex!("90 00"));
        let mut s = Script::new(&[
            (&hex!("00 84 00 00 08"), &rnd),
            (&hex!("00 84 00 00 08"), &hex!("6A 81")),
            (&hex!("00 F6 95 94"), &hex!("6A 88")),
            (&hex!("00 F6 95 94"), &hex!("69 82")),
            (&hex!("00 F6 95 94"), &hex!("6D 00")),
        ]);
        let mut sess = Session::new(&mut s, false);
        assert!(probe_challenge(&mut sess).unwrap());
        assert!(!probe_challenge(&mut sess).unwrap());
        for expect in [true, true, false] {
            assert_eq!(
                probe_move_key(&mut sess, Slot::Retired(20), Slot::Retired(19)).unwrap(),
                expect
            );
        }
        assert!(probe_move_key(&mut sess, Slot::Retired(20), Slot::Retired(20)).is_err());
        assert!(s.done());
    }

    #[test]
    fn moves_keys_probes_only_between_two_slots_reported_empty() {
        let mut key = hex!("01 01 11 04 43 86 41 04").to_vec();
        key.extend([7u8; 64]);
        key.extend(hex!("90 00"));
        // 95 holds a key, 94 and 93 are empty: the probe moves 93 into 94.
        for (answer, expect) in [(hex!("6A 88"), true), (hex!("6D 00"), false)] {
            let mut s = Script::new(&[
                (&hex!("00 F7 00 95 00"), &key),
                (&hex!("00 F7 00 94 00"), &hex!("6A 88")),
                (&hex!("00 F7 00 93 00"), &hex!("6A 88")),
                (&hex!("00 F6 94 93"), &answer),
            ]);
            let f = facts(MetadataSupport::Works);
            assert_eq!(
                f.moves_keys(&mut Session::new(&mut s, false)).unwrap(),
                expect
            );
            assert!(s.done());
        }
        // Without working metadata nothing is asked.
        for m in [MetadataSupport::Unreliable, MetadataSupport::Absent] {
            let mut s = Script::new(&[]);
            assert!(!facts(m)
                .moves_keys(&mut Session::new(&mut s, false))
                .unwrap());
            assert!(s.done());
        }
    }

    #[test]
    fn unknown_objects_are_absent() {
        for sw in [hex!("6A 80"), hex!("6A 82"), hex!("6A 88")] {
            let mut s = Script::new(&[(&hex!("00 CB 3F FF 05 5C 03 5F FF 00 00"), &sw)]);
            assert_eq!(
                Session::new(&mut s, false)
                    .get_data_opt(ObjectId::ADMIN_DATA)
                    .unwrap(),
                None
            );
        }
    }
}
