//! The commands the simulated card knows, parsed into types before the
//! applet acts on them.
//!
//! [`Command::parse`] takes a de-chained command (header, whole data field,
//! Le) and gives one variant per instruction, its references as types: a
//! key as a [`Slot`], a PIN or PUK as a [`PinRef`], an algorithm as an
//! [`Algorithm`], a data object as an [`ObjectId`]. A command it refuses
//! gets the status word the card answers, in the card's order: the
//! profile's gates first (`6D00` for a YubiKey extension the card lacks,
//! `6A81` for GET CHALLENGE on cards without it), then P1/P2.
//!
//! Where the card checks its security state (management key, PIN) before
//! it reads the data field, the variant keeps the data, and the applet
//! parses it after that check with the parsers below ([`AuthTemplate`],
//! [`GenerateTemplate`], [`ObjectWrite`], [`new_management_key`],
//! [`ImportTemplate`]): a command lacking both the authentication and good
//! data is answered `6982`, as a card does, not `6A80`.
//!
//! Instructions and status words are the `iso7816` crate's
//! ([`Instruction`], [`Status`]). That crate names the ISO 7816-4
//! instructions only: GET CHALLENGE (84) and the YubiKey extensions are its
//! `Instruction::Unknown`, matched with the constants of [`apdu::piv::ins`].

use crate::applet::MAX_OBJECT_LEN;
use crate::keys::ImportFields;
use crate::profile::{MetadataMode, Spec};
use apdu::piv::{
    ins, Algorithm, ObjectId, Pin, PinPolicy, PinRef, Slot, TouchPolicy, MANAGEMENT_KEY_REF,
    PIV_AID, PIV_RID,
};
use apdu::tlv;
use apdu::ParsedCommand;
use iso7816::{Instruction, Status};
use std::num::NonZeroU8;

/// `63Cx`: a wrong PIN or PUK, `tries_left` tries left (at most 15 are
/// told).
pub fn tries_left(tries_left: u8) -> Status {
    Status::RemainingRetries(tries_left.min(15))
}

/// A command the card knows, with its parameters as types.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// SELECT (P1 04) of the PIV application by its AID or a prefix the
    /// card takes (the AID was checked: another one is `6A82`).
    Select,
    /// GET DATA (P1/P2 3FFF) of one object the card knows.
    GetData(ObjectId),
    /// PUT DATA (P1/P2 3FFF); its data is an [`ObjectWrite`], read once
    /// the management key is authenticated.
    PutData { data: &'a [u8] },
    /// VERIFY of the PIN (80): no other reference is verified (`6A88`).
    Verify(Verify<'a>),
    /// CHANGE REFERENCE DATA (P1 00) of the PIN or PUK: current value and
    /// new one.
    ChangeReference {
        reference: PinRef,
        old: &'a [u8; 8],
        new: Pin,
    },
    /// RESET RETRY COUNTER (P1 00, P2 80): the PUK and a new PIN.
    ResetRetry { puk: &'a [u8; 8], new: Pin },
    /// GENERAL AUTHENTICATE of the management key (P2 9B) with a block
    /// cipher; the data is an [`AuthTemplate`].
    AuthenticateManagement {
        algorithm: Algorithm,
        data: &'a [u8],
    },
    /// GENERAL AUTHENTICATE with the key in `slot`. P1 names the key's
    /// algorithm; `None` is a code the card does not know, refused (`6A80`)
    /// once the key is found, as any algorithm that is not the key's.
    GeneralAuthenticate {
        algorithm: Option<Algorithm>,
        slot: Slot,
        data: &'a [u8],
    },
    /// GENERATE ASYMMETRIC KEY PAIR (P1 00) in a key slot (not F9); the
    /// template is a [`GenerateTemplate`], read once the management key is
    /// authenticated.
    Generate { slot: Slot, template: &'a [u8] },
    /// GET CHALLENGE (P1/P2 0000) of `len` random bytes (Le 1..=256).
    GetChallenge { len: usize },
    /// YubiKey GET VERSION.
    GetVersion,
    /// YubiKey GET SERIAL.
    GetSerial,
    /// YubiKey GET METADATA.
    GetMetadata(MetadataRef),
    /// YubiKey GET METADATA of a reference the card's profile answers
    /// `9000` without data (profile `compat`: all but one key).
    MetadataWithheld,
    /// YubiKey SET MANAGEMENT KEY (P1 FF; P2 FF, or FE for touch always);
    /// the data (see [`new_management_key`]) is read once the current key
    /// is authenticated.
    SetManagementKey { touch: TouchPolicy, data: &'a [u8] },
    /// YubiKey SET PIN RETRIES. `None`: P1 or P2 is zero, refused (`6A86`)
    /// only after the management key and PIN checks, as the card does.
    SetPinRetries(Option<PinRetries>),
    /// YubiKey RESET of the application.
    Reset,
    /// YubiKey IMPORT ASYMMETRIC KEY of an algorithm the card generates
    /// too; the data is an [`ImportTemplate`], read once the management key
    /// is authenticated.
    ImportKey {
        algorithm: Algorithm,
        slot: Slot,
        data: &'a [u8],
    },
    /// YubiKey MOVE KEY between two different key slots (neither F9).
    MoveKey { from: Slot, to: Slot },
    /// YubiKey MOVE KEY with P1 FF: delete the key in a slot (not F9).
    DeleteKey(Slot),
    /// YubiKey ATTEST of the key in a slot.
    Attest(Slot),
}

/// What a VERIFY asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Verify<'a> {
    /// P1 FF, no data: forget the verification.
    Logout,
    /// No data: whether the PIN is verified, or its tries left.
    Status,
    /// The PIN, padded to 8 bytes.
    Pin(&'a [u8; 8]),
}

/// What GET METADATA is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataRef {
    Pin(PinRef),
    ManagementKey,
    Key(Slot),
}

/// Tries of the PIN and PUK for SET PIN RETRIES (P1 and P2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinRetries {
    pub pin: NonZeroU8,
    pub puk: NonZeroU8,
}

/// The profile's gates: instructions its card does not have.
fn gate(ins: u8, spec: &Spec) -> Result<(), Status> {
    let available = match ins {
        ins::YK_GET_VERSION => spec.version.is_some(),
        ins::YK_GET_SERIAL => spec.serial,
        ins::YK_GET_METADATA => spec.metadata != MetadataMode::Absent,
        ins::YK_MOVE_KEY => spec.move_key,
        ins::YK_ATTEST => spec.attestation,
        ins::YK_SET_MGMKEY | ins::YK_SET_PIN_RETRIES | ins::YK_RESET | ins::YK_IMPORT_KEY => {
            spec.yubikey_admin
        }
        ins::GET_CHALLENGE if !spec.challenge => return Err(Status::FunctionNotSupported),
        _ => true,
    };
    if available {
        Ok(())
    } else {
        Err(Status::InstructionNotSupportedOrInvalid)
    }
}

/// A key slot named by P1 or P2 (`6B00` for any other byte, as a YubiKey).
fn slot(key_ref: u8) -> Result<Slot, Status> {
    Slot::from_key_ref(key_ref).ok_or(Status::WrongParameters)
}

/// A slot a key can be generated in, imported to or moved between: not
/// the attestation key's.
fn key_slot(key_ref: u8) -> Option<Slot> {
    Slot::from_key_ref(key_ref).filter(|s| *s != Slot::Attestation)
}

fn p1p2(ok: bool) -> Result<(), Status> {
    if ok {
        Ok(())
    } else {
        Err(Status::IncorrectP1OrP2Parameter)
    }
}

/// The 8-byte current value and the new PIN of CHANGE REFERENCE and RESET
/// RETRY COUNTER (`6A80` unless 16 bytes with a well-padded new PIN).
fn old_and_new(data: &[u8]) -> Result<(&[u8; 8], Pin), Status> {
    let (old, new) = data
        .split_first_chunk::<8>()
        .filter(|(_, new)| new.len() == 8)
        .ok_or(Status::IncorrectDataParameter)?;
    let new = Pin::from_padded(new).map_err(|_| Status::IncorrectDataParameter)?;
    Ok((old, new))
}

/// A data object's tag (`5C`, one to three bytes), and what follows it.
fn object_tag(data: &[u8]) -> Result<(ObjectId, &[u8]), Status> {
    let (t, rest) = tlv::parse_one(data).map_err(|_| Status::IncorrectDataParameter)?;
    if t.tag != tlv::Tag(0x5C) || t.value.is_empty() || t.value.len() > 3 {
        return Err(Status::IncorrectDataParameter);
    }
    let id = t
        .value
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    Ok((ObjectId(id), rest))
}

impl<'a> Command<'a> {
    /// Parse a de-chained command for a card of the profile `spec`.
    pub fn parse(apdu: &ParsedCommand<'a>, spec: &Spec) -> Result<Self, Status> {
        gate(apdu.ins, spec)?;
        let (p1, p2, data) = (apdu.p1, apdu.p2, apdu.data);
        match Instruction::from(apdu.ins) {
            Instruction::Select => {
                p1p2(p1 == 0x04)?;
                // Some cards know their application only by its AID up to
                // the version (9 bytes), not by the RID alone.
                let shortest = if spec.full_aid { 9 } else { PIV_RID.len() };
                if data.len() < shortest || data.len() > PIV_AID.len() || !PIV_AID.starts_with(data)
                {
                    // Not ours: the current selection stays as it is
                    // (ISO 7816-4 §7.1.1).
                    return Err(Status::NotFound);
                }
                Ok(Command::Select)
            }
            Instruction::GetData => {
                p1p2((p1, p2) == (0x3F, 0xFF))?;
                let (object, rest) = object_tag(data)?;
                if !rest.is_empty() || !spec.knows_object(object.0) {
                    return Err(Status::IncorrectDataParameter);
                }
                Ok(Command::GetData(object))
            }
            Instruction::PutData => {
                p1p2((p1, p2) == (0x3F, 0xFF))?;
                Ok(Command::PutData { data })
            }
            Instruction::Verify => {
                if p2 != PinRef::Pin.code() {
                    return Err(Status::KeyReferenceNotFound);
                }
                match (p1, data) {
                    (0xFF, []) => Ok(Command::Verify(Verify::Logout)),
                    (0x00, []) => Ok(Command::Verify(Verify::Status)),
                    (0x00, pin) => pin
                        .try_into()
                        .map(|pin| Command::Verify(Verify::Pin(pin)))
                        .map_err(|_| Status::IncorrectDataParameter),
                    _ => Err(Status::IncorrectP1OrP2Parameter),
                }
            }
            Instruction::ChangeReferenceData => {
                p1p2(p1 == 0x00)?;
                let (old, new) = old_and_new(data)?;
                let reference = match p2 {
                    0x80 => PinRef::Pin,
                    0x81 => PinRef::Puk,
                    _ => return Err(Status::KeyReferenceNotFound),
                };
                Ok(Command::ChangeReference {
                    reference,
                    old,
                    new,
                })
            }
            Instruction::ResetRetryCounter => {
                p1p2((p1, p2) == (0x00, PinRef::Pin.code()))?;
                let (puk, new) = old_and_new(data)?;
                Ok(Command::ResetRetry { puk, new })
            }
            Instruction::GeneralAuthenticate if p2 == MANAGEMENT_KEY_REF => {
                let algorithm = Algorithm::from_code(p1)
                    .filter(|a| a.block_len().is_some())
                    .ok_or(Status::IncorrectP1OrP2Parameter)?;
                Ok(Command::AuthenticateManagement { algorithm, data })
            }
            Instruction::GeneralAuthenticate => Ok(Command::GeneralAuthenticate {
                slot: slot(p2)?,
                algorithm: Algorithm::from_code(p1),
                data,
            }),
            Instruction::GenerateAsymmetricKeyPair => {
                p1p2(p1 == 0x00)?;
                let slot = key_slot(p2).ok_or(Status::WrongParameters)?;
                Ok(Command::Generate {
                    slot,
                    template: data,
                })
            }
            Instruction::Unknown(ins::GET_CHALLENGE) => {
                p1p2((p1, p2) == (0x00, 0x00))?;
                let len = apdu
                    .le
                    .filter(|n| (1..=256).contains(n))
                    .ok_or(Status::WrongLength)?;
                Ok(Command::GetChallenge { len })
            }
            Instruction::Unknown(ins::YK_GET_VERSION) => Ok(Command::GetVersion),
            Instruction::Unknown(ins::YK_GET_SERIAL) => Ok(Command::GetSerial),
            Instruction::Unknown(ins::YK_GET_METADATA) => match spec.metadata {
                MetadataMode::EmptyExcept(s) if s.key_ref() != p2 => Ok(Command::MetadataWithheld),
                _ => Ok(Command::GetMetadata(match p2 {
                    0x80 => MetadataRef::Pin(PinRef::Pin),
                    0x81 => MetadataRef::Pin(PinRef::Puk),
                    MANAGEMENT_KEY_REF => MetadataRef::ManagementKey,
                    r => MetadataRef::Key(slot(r)?),
                })),
            },
            Instruction::Unknown(ins::YK_SET_MGMKEY) => {
                let touch = match (p1, p2) {
                    (0xFF, 0xFF) => TouchPolicy::Never,
                    (0xFF, 0xFE) => TouchPolicy::Always,
                    _ => return Err(Status::IncorrectP1OrP2Parameter),
                };
                Ok(Command::SetManagementKey { touch, data })
            }
            Instruction::Unknown(ins::YK_SET_PIN_RETRIES) => Ok(Command::SetPinRetries(
                NonZeroU8::new(p1)
                    .zip(NonZeroU8::new(p2))
                    .map(|(pin, puk)| PinRetries { pin, puk }),
            )),
            Instruction::Unknown(ins::YK_RESET) => Ok(Command::Reset),
            Instruction::Unknown(ins::YK_IMPORT_KEY) => {
                let algorithm = Algorithm::from_code(p1)
                    .filter(|a| spec.algorithms.contains(a))
                    .ok_or(Status::IncorrectP1OrP2Parameter)?;
                Ok(Command::ImportKey {
                    algorithm,
                    slot: slot(p2)?,
                    data,
                })
            }
            Instruction::Unknown(ins::YK_MOVE_KEY) => {
                let from = key_slot(p2).ok_or(Status::IncorrectP1OrP2Parameter)?;
                if p1 == 0xFF {
                    return Ok(Command::DeleteKey(from));
                }
                let to = key_slot(p1)
                    .filter(|s| *s != from)
                    .ok_or(Status::IncorrectP1OrP2Parameter)?;
                Ok(Command::MoveKey { from, to })
            }
            Instruction::Unknown(ins::YK_ATTEST) => Ok(Command::Attest(slot(p1)?)),
            _ => Err(Status::InstructionNotSupportedOrInvalid),
        }
    }
}

/// The dynamic authentication template (`7C`) of GENERAL AUTHENTICATE:
/// the first of each field it carries (other tags are passed over).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AuthTemplate<'a> {
    /// `80`: witness.
    pub witness: Option<&'a [u8]>,
    /// `81`: challenge.
    pub challenge: Option<&'a [u8]>,
    /// `82`: response.
    pub response: Option<&'a [u8]>,
    /// `85`: exponentiation (ECDH: the peer's point).
    pub exponentiation: Option<&'a [u8]>,
}

impl<'a> AuthTemplate<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, Status> {
        let bad = |_| Status::IncorrectDataParameter;
        let inner = tlv::unwrap(data, 0x7Cu32).map_err(bad)?;
        let mut t = AuthTemplate::default();
        for field in tlv::parse_all(inner).map_err(bad)? {
            let slot = match field.tag.0 {
                0x80 => &mut t.witness,
                0x81 => &mut t.challenge,
                0x82 => &mut t.response,
                0x85 => &mut t.exponentiation,
                _ => continue,
            };
            slot.get_or_insert(field.value);
        }
        Ok(t)
    }
}

/// The control template (`AC`) of GENERATE ASYMMETRIC KEY PAIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateTemplate {
    /// One the card's profile generates.
    pub algorithm: Algorithm,
    /// `Default` when the template has none (the slot's default applies).
    pub pin: PinPolicy,
    pub touch: TouchPolicy,
}

impl GenerateTemplate {
    /// `6A80` for anything wrong in it, policies on a card without them
    /// included.
    pub fn parse(data: &[u8], spec: &Spec) -> Result<Self, Status> {
        let bad = Status::IncorrectDataParameter;
        let template = tlv::unwrap(data, 0xACu32).map_err(|_| bad)?;
        let byte = |tag: u32| -> Result<Option<u8>, Status> {
            match tlv::find(template, tag).map_err(|_| bad)? {
                None => Ok(None),
                Some([b]) => Ok(Some(*b)),
                Some(_) => Err(bad),
            }
        };
        let algorithm = byte(0x80)?
            .and_then(Algorithm::from_code)
            .filter(|a| spec.algorithms.contains(a))
            .ok_or(bad)?;
        let (pin, touch) = (byte(0xAA)?, byte(0xAB)?);
        if !spec.key_policies && (pin.is_some() || touch.is_some()) {
            return Err(bad);
        }
        Ok(GenerateTemplate {
            algorithm,
            pin: pin
                .map_or(Some(PinPolicy::Default), PinPolicy::from_code)
                .ok_or(bad)?,
            touch: touch
                .map_or(Some(TouchPolicy::Default), TouchPolicy::from_code)
                .ok_or(bad)?,
        })
    }
}

/// The data of PUT DATA: an object the card lets a host write, and its new
/// content (empty: delete it).
#[derive(Debug, PartialEq, Eq)]
pub struct ObjectWrite<'a> {
    pub object: ObjectId,
    pub content: &'a [u8],
}

impl<'a> ObjectWrite<'a> {
    /// `6A80` for a malformed field or an object not writable on this
    /// card, `6A84` for content past the card's object size.
    pub fn parse(data: &'a [u8], spec: &Spec) -> Result<Self, Status> {
        let bad = Status::IncorrectDataParameter;
        let (object, rest) = object_tag(data)?;
        let writable = matches!(object.0, 0x5F_C101..=0x5F_C123 | 0x5F_FF00..=0x5F_FF15);
        if !writable || !spec.knows_object(object.0) {
            return Err(bad);
        }
        let (t, trailing) = tlv::parse_one(rest).map_err(|_| bad)?;
        if t.tag != tlv::Tag(0x53) || !trailing.is_empty() {
            return Err(bad);
        }
        if t.value.len() > MAX_OBJECT_LEN {
            return Err(Status::NotEnoughMemory);
        }
        Ok(ObjectWrite {
            object,
            content: t.value,
        })
    }
}

/// The data of SET MANAGEMENT KEY: algorithm, `9B`, length and key, for an
/// algorithm the card's profile takes as management key (else `6A80`).
pub fn new_management_key(data: &[u8], spec: &Spec) -> Result<apdu::piv::ManagementKey, Status> {
    let bad = Status::IncorrectDataParameter;
    let [alg, key_ref, len, key @ ..] = data else {
        return Err(bad);
    };
    let alg = Algorithm::from_code(*alg)
        .filter(|a| spec.management_algorithm_ok(*a))
        .ok_or(bad)?;
    if *key_ref != MANAGEMENT_KEY_REF || usize::from(*len) != key.len() {
        return Err(bad);
    }
    apdu::piv::ManagementKey::new(alg, key).map_err(|_| bad)
}

/// The data of IMPORT ASYMMETRIC KEY: the key's parts and policies.
pub struct ImportTemplate<'a> {
    pub fields: ImportFields<'a>,
    /// `Default` when absent (the slot's default applies).
    pub pin: PinPolicy,
    pub touch: TouchPolicy,
}

impl<'a> ImportTemplate<'a> {
    /// `6A80` for a malformed or unknown field (RSA's CRT parts 03..05 are
    /// passed over: the card derives them).
    pub fn parse(data: &'a [u8]) -> Result<Self, Status> {
        let bad = Status::IncorrectDataParameter;
        let mut t = ImportTemplate {
            fields: ImportFields::default(),
            pin: PinPolicy::Default,
            touch: TouchPolicy::Default,
        };
        for field in tlv::iter(data) {
            let field = field.map_err(|_| bad)?;
            match (field.tag.0, field.value) {
                (0x01, v) => t.fields.p = Some(v),
                (0x02, v) => t.fields.q = Some(v),
                (0x03..=0x05, _) => {}
                (0x06, v) => t.fields.scalar = Some(v),
                (0xAA, [b]) => t.pin = PinPolicy::from_code(*b).ok_or(bad)?,
                (0xAB, [b]) => t.touch = TouchPolicy::from_code(*b).ok_or(bad)?,
                _ => return Err(bad),
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;
    use hex_literal::hex;

    fn parse_for(profile: Profile, raw: &[u8]) -> Result<Command<'_>, Status> {
        let apdu = ParsedCommand::parse(raw).expect("well-formed APDU");
        Command::parse(&apdu, profile.spec())
    }

    fn parse(raw: &[u8]) -> Result<Command<'_>, Status> {
        parse_for(Profile::Yk57, raw)
    }

    fn sw(raw: &[u8]) -> u16 {
        parse(raw)
            .map(|c| panic!("{c:?} parsed"))
            .unwrap_err()
            .into()
    }

    fn sw_for(profile: Profile, raw: &[u8]) -> u16 {
        parse_for(profile, raw)
            .map(|c| panic!("{c:?} parsed"))
            .unwrap_err()
            .into()
    }

    #[test]
    fn select() {
        assert_eq!(parse(&hex!("00A40400 05 A000000308")), Ok(Command::Select));
        assert_eq!(
            parse(&hex!("00A40400 0B A0000003080000100001 00 00")),
            Ok(Command::Select)
        );
        assert_eq!(sw(&hex!("00A40000 05 A000000308")), 0x6A86);
        assert_eq!(sw(&hex!("00A40400 05 A000000309")), 0x6A82);
        assert_eq!(sw(&hex!("00A40400 0C A000000308000010000100 01")), 0x6A82);
        // Profile generic takes the AID up to its version only.
        assert_eq!(
            sw_for(Profile::Generic, &hex!("00A40400 05 A000000308")),
            0x6A82
        );
        assert_eq!(
            parse_for(Profile::Generic, &hex!("00A40400 09 A00000030800001000")),
            Ok(Command::Select)
        );
    }

    #[test]
    fn get_data() {
        assert_eq!(
            parse(&hex!("00CB3FFF 05 5C035FC105 00")),
            Ok(Command::GetData(ObjectId::CERT_9A))
        );
        assert_eq!(
            parse(&hex!("00CB3FFF 03 5C017E 00")),
            Ok(Command::GetData(ObjectId::DISCOVERY))
        );
        assert_eq!(sw(&hex!("00CB3FFE 05 5C035FC105")), 0x6A86);
        assert_eq!(sw(&hex!("00CB3FFF 02 5C00")), 0x6A80);
        assert_eq!(sw(&hex!("00CB3FFF 06 5C0401020304")), 0x6A80);
        assert_eq!(sw(&hex!("00CB3FFF 06 5C035FC10500")), 0x6A80);
        assert_eq!(sw(&hex!("00CB3FFF 05 5D035FC105")), 0x6A80);
        assert_eq!(sw(&hex!("00CB3FFF")), 0x6A80);
        // The vendor objects only on cards that have them.
        assert_eq!(
            parse(&hex!("00CB3FFF 05 5C035FFF10")),
            Ok(Command::GetData(ObjectId(0x5F_FF10)))
        );
        assert_eq!(
            sw_for(Profile::Generic, &hex!("00CB3FFF 05 5C035FFF10")),
            0x6A80
        );
    }

    #[test]
    fn put_data() {
        let raw = hex!("00DB3FFF 08 5C035FC105 530100");
        assert_eq!(
            parse(&raw),
            Ok(Command::PutData {
                data: &hex!("5C035FC105 530100")
            })
        );
        assert_eq!(sw(&hex!("00DB3FFE 08 5C035FC105 530100")), 0x6A86);
        let spec = Profile::Yk57.spec();
        assert_eq!(
            ObjectWrite::parse(&hex!("5C035FC105 5302AABB"), spec),
            Ok(ObjectWrite {
                object: ObjectId::CERT_9A,
                content: &hex!("AABB"),
            })
        );
        // Not writable (discovery), a trailing byte, not 53.
        assert_eq!(
            ObjectWrite::parse(&hex!("5C017E 5300"), spec),
            Err(Status::IncorrectDataParameter)
        );
        assert_eq!(
            ObjectWrite::parse(&hex!("5C035FC105 530100 00"), spec),
            Err(Status::IncorrectDataParameter)
        );
        assert_eq!(
            ObjectWrite::parse(&hex!("5C035FC105 5400"), spec),
            Err(Status::IncorrectDataParameter)
        );
        let mut big = hex!("5C035FC105 53820BED").to_vec();
        big.resize(big.len() + MAX_OBJECT_LEN + 1, 0);
        assert_eq!(ObjectWrite::parse(&big, spec), Err(Status::NotEnoughMemory));
        assert_eq!(
            ObjectWrite::parse(&hex!("5C035FFF10 5300"), Profile::Generic.spec()),
            Err(Status::IncorrectDataParameter)
        );
    }

    #[test]
    fn verify() {
        assert_eq!(
            parse(&hex!("00200080 08 313233343536FFFF")),
            Ok(Command::Verify(Verify::Pin(b"123456\xFF\xFF")))
        );
        assert_eq!(
            parse(&hex!("00200080")),
            Ok(Command::Verify(Verify::Status))
        );
        assert_eq!(
            parse(&hex!("0020FF80")),
            Ok(Command::Verify(Verify::Logout))
        );
        // The global PIN (00) and the PUK are not verified here.
        assert_eq!(sw(&hex!("00200000 08 313233343536FFFF")), 0x6A88);
        assert_eq!(sw(&hex!("00200081 08 3132333435363738")), 0x6A88);
        assert_eq!(sw(&hex!("0020FF80 08 313233343536FFFF")), 0x6A86);
        assert_eq!(sw(&hex!("00200180")), 0x6A86);
        assert_eq!(sw(&hex!("00200080 06 313233343536")), 0x6A80);
    }

    #[test]
    fn change_reference_and_reset_retry() {
        let raw = hex!("00240081 10 3132333435363738 363534333231FFFF");
        let Ok(Command::ChangeReference {
            reference: PinRef::Puk,
            old,
            new,
        }) = parse(&raw)
        else {
            panic!("not a PUK change")
        };
        assert_eq!((old, new.as_bytes()), (b"12345678", &b"654321"[..]));
        let raw = hex!("002C0080 10 3132333435363738 363534333231FFFF");
        let Ok(Command::ResetRetry { puk, new }) = parse(&raw) else {
            panic!("not a RESET RETRY")
        };
        assert_eq!((puk, new.as_bytes()), (b"12345678", &b"654321"[..]));

        assert_eq!(
            sw(&hex!("00240180 10 3132333435363738 363534333231FFFF")),
            0x6A86
        );
        assert_eq!(
            sw(&hex!("00240080 0F 3132333435363738 363534333231FF")),
            0x6A80
        );
        // A new PIN that is too short, or padded with something else than FF.
        assert_eq!(
            sw(&hex!("00240080 10 3132333435363738 3635343332FFFFFF")),
            0x6A80
        );
        assert_eq!(
            sw(&hex!("00240080 10 3132333435363738 363534333231FF00")),
            0x6A80
        );
        // The data is checked before the reference.
        assert_eq!(
            sw(&hex!("00240082 10 3132333435363738 363534333231FFFF")),
            0x6A88
        );
        assert_eq!(sw(&hex!("00240082 01 00")), 0x6A80);
        assert_eq!(
            sw(&hex!("002C0081 10 3132333435363738 363534333231FFFF")),
            0x6A86
        );
        assert_eq!(sw(&hex!("002C0080 08 3132333435363738")), 0x6A80);
    }

    #[test]
    fn general_authenticate() {
        assert_eq!(
            parse(&hex!("0087119A 06 7C04 8200 8100 00")),
            Ok(Command::GeneralAuthenticate {
                algorithm: Some(Algorithm::EccP256),
                slot: Slot::Authentication,
                data: &hex!("7C04 8200 8100"),
            })
        );
        // An algorithm the card does not know is refused once the key is
        // found (the answer depends on the slot's content).
        assert_eq!(
            parse(&hex!("00874F9A 02 7C00")),
            Ok(Command::GeneralAuthenticate {
                algorithm: None,
                slot: Slot::Authentication,
                data: &hex!("7C00"),
            })
        );
        assert_eq!(sw(&hex!("00871199 02 7C00")), 0x6B00);
        assert_eq!(
            parse(&hex!("00870A9B 04 7C028000")),
            Ok(Command::AuthenticateManagement {
                algorithm: Algorithm::Aes192,
                data: &hex!("7C028000"),
            })
        );
        // Not a block cipher, not an algorithm.
        assert_eq!(sw(&hex!("0087119B 04 7C028000")), 0x6A86);
        assert_eq!(sw(&hex!("0087FF9B 04 7C028000")), 0x6A86);
    }

    #[test]
    fn auth_template() {
        assert_eq!(
            AuthTemplate::parse(&hex!("7C0B 8200 8102AABB 8101CC 8300")),
            Ok(AuthTemplate {
                response: Some(&[]),
                challenge: Some(&hex!("AABB")),
                ..AuthTemplate::default()
            })
        );
        assert_eq!(
            AuthTemplate::parse(&hex!("7C05 8500 8001EE")),
            Ok(AuthTemplate {
                exponentiation: Some(&[]),
                witness: Some(&hex!("EE")),
                ..AuthTemplate::default()
            })
        );
        for bad in [
            &hex!("")[..],
            &hex!("7D00"),
            &hex!("7C03 8102AA"),
            &hex!("7C"),
        ] {
            assert_eq!(
                AuthTemplate::parse(bad),
                Err(Status::IncorrectDataParameter),
                "{bad:02X?}"
            );
        }
    }

    #[test]
    fn generate() {
        assert_eq!(
            parse(&hex!("0047009C 05 AC03800111")),
            Ok(Command::Generate {
                slot: Slot::Signature,
                template: &hex!("AC03800111"),
            })
        );
        assert_eq!(sw(&hex!("0047019C 05 AC03800111")), 0x6A86);
        assert_eq!(sw(&hex!("004700F9 05 AC03800111")), 0x6B00);
        assert_eq!(sw(&hex!("00470099 05 AC03800111")), 0x6B00);

        let yk = Profile::Yk57.spec();
        assert_eq!(
            GenerateTemplate::parse(&hex!("AC09 800114 AA0103 AB0102"), yk),
            Ok(GenerateTemplate {
                algorithm: Algorithm::EccP384,
                pin: PinPolicy::Always,
                touch: TouchPolicy::Always,
            })
        );
        assert_eq!(
            GenerateTemplate::parse(&hex!("AC03 800111"), yk),
            Ok(GenerateTemplate {
                algorithm: Algorithm::EccP256,
                pin: PinPolicy::Default,
                touch: TouchPolicy::Default,
            })
        );
        for bad in [
            &hex!("AC03 800103")[..],
            &hex!("AC03 8001FF"),
            &hex!("AC04 80021111"),
            &hex!("AC06 800111 AA0109"),
            &hex!("AD03 800111"),
            &hex!("AC00"),
        ] {
            assert_eq!(
                GenerateTemplate::parse(bad, yk),
                Err(Status::IncorrectDataParameter),
                "{bad:02X?}"
            );
        }
        // Policies only on cards that have them; RSA-3072 only on 5.7.
        assert_eq!(
            GenerateTemplate::parse(&hex!("AC06 800111 AA0101"), Profile::Generic.spec()),
            Err(Status::IncorrectDataParameter)
        );
        assert_eq!(
            GenerateTemplate::parse(&hex!("AC03 800105"), Profile::Yk54.spec()),
            Err(Status::IncorrectDataParameter)
        );
    }

    #[test]
    fn get_challenge() {
        assert_eq!(
            parse(&hex!("00840000 08")),
            Ok(Command::GetChallenge { len: 8 })
        );
        assert_eq!(
            parse(&hex!("00840000 00")),
            Ok(Command::GetChallenge { len: 256 })
        );
        assert_eq!(sw(&hex!("00840100 08")), 0x6A86);
        assert_eq!(sw(&hex!("00840000")), 0x6700);
        assert_eq!(sw(&hex!("00840000 000200")), 0x6700);
        // The profile's gate comes first.
        assert_eq!(sw_for(Profile::Generic, &hex!("00840100 08")), 0x6A81);
        assert_eq!(sw_for(Profile::Compat, &hex!("00840000 08")), 0x6A81);
    }

    #[test]
    fn yubikey_reads() {
        assert_eq!(parse(&hex!("00FD0000")), Ok(Command::GetVersion));
        assert_eq!(parse(&hex!("00F80000")), Ok(Command::GetSerial));
        assert_eq!(
            parse(&hex!("00F70080")),
            Ok(Command::GetMetadata(MetadataRef::Pin(PinRef::Pin)))
        );
        assert_eq!(
            parse(&hex!("00F70081")),
            Ok(Command::GetMetadata(MetadataRef::Pin(PinRef::Puk)))
        );
        assert_eq!(
            parse(&hex!("00F7009B")),
            Ok(Command::GetMetadata(MetadataRef::ManagementKey))
        );
        assert_eq!(
            parse(&hex!("00F7009E")),
            Ok(Command::GetMetadata(MetadataRef::Key(
                Slot::CardAuthentication
            )))
        );
        assert_eq!(sw(&hex!("00F70099")), 0x6B00);
        // Gates: no GET VERSION on a plain PIV card, no GET SERIAL or GET
        // METADATA on a YubiKey 4.
        assert_eq!(sw_for(Profile::Generic, &hex!("00FD0000")), 0x6D00);
        assert_eq!(sw_for(Profile::Yk4, &hex!("00F80000")), 0x6D00);
        assert_eq!(sw_for(Profile::Yk4, &hex!("00F70080")), 0x6D00);
        // The third-party applet answers metadata for 9A only.
        assert_eq!(
            parse_for(Profile::Compat, &hex!("00F70099")),
            Ok(Command::MetadataWithheld)
        );
        assert_eq!(
            parse_for(Profile::Compat, &hex!("00F7009A")),
            Ok(Command::GetMetadata(MetadataRef::Key(Slot::Authentication)))
        );
    }

    #[test]
    fn yubikey_admin() {
        assert_eq!(
            parse(&hex!("00FFFFFE 03 0A9B00")),
            Ok(Command::SetManagementKey {
                touch: TouchPolicy::Always,
                data: &hex!("0A9B00"),
            })
        );
        assert_eq!(sw(&hex!("00FFFF00 03 0A9B00")), 0x6A86);
        assert_eq!(sw(&hex!("00FF00FF 03 0A9B00")), 0x6A86);
        assert_eq!(
            parse(&hex!("00FA0503")),
            Ok(Command::SetPinRetries(Some(PinRetries {
                pin: NonZeroU8::new(5).unwrap(),
                puk: NonZeroU8::new(3).unwrap(),
            })))
        );
        assert_eq!(parse(&hex!("00FA0500")), Ok(Command::SetPinRetries(None)));
        assert_eq!(parse(&hex!("00FB0000")), Ok(Command::Reset));
        assert_eq!(
            parse(&hex!("00FE119A 03 060100")),
            Ok(Command::ImportKey {
                algorithm: Algorithm::EccP256,
                slot: Slot::Authentication,
                data: &hex!("060100"),
            })
        );
        assert_eq!(sw(&hex!("00FE039A 03 060100")), 0x6A86);
        assert_eq!(sw(&hex!("00FE1199 03 060100")), 0x6B00);
        assert_eq!(sw_for(Profile::Yk54, &hex!("00FE059A 03 060100")), 0x6A86);
        assert_eq!(sw_for(Profile::Generic, &hex!("00FB0000")), 0x6D00);

        let spec = Profile::Yk57.spec();
        let key = new_management_key(&hex!("089B10 000102030405060708090A0B0C0D0E0F"), spec)
            .expect("an AES-128 key");
        assert_eq!(key.algorithm(), Algorithm::Aes128);
        for bad in [
            &hex!("089B0F 000102030405060708090A0B0C0D0E")[..],
            &hex!("089A10 000102030405060708090A0B0C0D0E0F"),
            &hex!("119B10 000102030405060708090A0B0C0D0E0F"),
            &hex!("089B11 000102030405060708090A0B0C0D0E0F"),
            &hex!("089B"),
        ] {
            assert_eq!(
                new_management_key(bad, spec).err(),
                Some(Status::IncorrectDataParameter),
                "{bad:02X?}"
            );
        }
        // A YubiKey 4 has 3DES management keys only.
        assert_eq!(
            new_management_key(
                &hex!("089B10 000102030405060708090A0B0C0D0E0F"),
                Profile::Yk4.spec()
            )
            .err(),
            Some(Status::IncorrectDataParameter)
        );
    }

    #[test]
    fn import_template() {
        let t = ImportTemplate::parse(&hex!("0602AABB 0401FF AA0102 AB0101")).expect("parses");
        assert_eq!(t.fields.scalar, Some(&hex!("AABB")[..]));
        assert_eq!((t.fields.p, t.fields.q), (None, None));
        assert_eq!((t.pin, t.touch), (PinPolicy::Once, TouchPolicy::Never));
        let t = ImportTemplate::parse(&hex!("0101AA 0201BB")).expect("parses");
        assert_eq!(
            (t.fields.p, t.fields.q),
            (Some(&[0xAA][..]), Some(&[0xBB][..]))
        );
        assert_eq!((t.pin, t.touch), (PinPolicy::Default, TouchPolicy::Default));
        for bad in [
            &hex!("0701AA")[..],
            &hex!("AA020101"),
            &hex!("AA0109"),
            &hex!("0602AA"),
        ] {
            assert_eq!(
                ImportTemplate::parse(bad).err(),
                Some(Status::IncorrectDataParameter),
                "{bad:02X?}"
            );
        }
    }

    #[test]
    fn move_delete_attest() {
        assert_eq!(
            parse(&hex!("00F6829A")),
            Ok(Command::MoveKey {
                from: Slot::Authentication,
                to: Slot::Retired(1),
            })
        );
        assert_eq!(
            parse(&hex!("00F6FF9A")),
            Ok(Command::DeleteKey(Slot::Authentication))
        );
        assert_eq!(sw(&hex!("00F69A9A")), 0x6A86);
        assert_eq!(sw(&hex!("00F6F99A")), 0x6A86);
        assert_eq!(sw(&hex!("00F6FFF9")), 0x6A86);
        assert_eq!(sw(&hex!("00F6FF99")), 0x6A86);
        assert_eq!(sw_for(Profile::Yk54, &hex!("00F6FF9A")), 0x6D00);
        assert_eq!(
            parse(&hex!("00F99A00")),
            Ok(Command::Attest(Slot::Authentication))
        );
        assert_eq!(sw(&hex!("00F99900")), 0x6B00);
        assert_eq!(sw_for(Profile::Generic, &hex!("00F99A00")), 0x6D00);
    }

    #[test]
    fn unknown_instructions() {
        // Neither GET RESPONSE (the applet answers it before parsing) nor
        // instructions of other applications.
        for raw in [
            &hex!("00C00000 00")[..],
            &hex!("00B00000 00"),
            &hex!("00880000"),
            &hex!("00000000"),
        ] {
            assert_eq!(sw(raw), 0x6D00, "{raw:02X?}");
        }
    }

    #[test]
    fn tries_left_caps_at_15() {
        assert_eq!(u16::from(tries_left(3)), 0x63C3);
        assert_eq!(u16::from(tries_left(200)), 0x63CF);
    }
}
