//! The PIV command set (SP 800-73-4 Part 2 §3) and the YubiKey extensions,
//! as typed requests and responses over a [`Transport`].
//!
//! A [`PivCard`] is a [`Card`] (generic card access: `crate::card`);
//! [`PivCard::transaction`] runs a closure with a [`Session`] under one
//! exclusive transaction, so a multi-command
//! operation (VERIFY then GENERAL AUTHENTICATE for a PIN-always key) cannot
//! be interleaved with another application's commands.

pub mod caps;
pub mod crypto;
pub mod generated;
pub mod objects;
#[cfg(feature = "spki")]
pub mod spki;
pub mod types;

pub use objects::*;
pub use types::*;

use crate::card::{Card, CardSession};
use crate::command::{Command, Response};
use crate::sw::StatusWord;
use crate::tlv::{self, Builder};
use crate::transport::{Link, Transport};
use crate::Error;
use zeroize::Zeroizing;

/// Instruction bytes.
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const GET_DATA: u8 = 0xCB;
    pub const PUT_DATA: u8 = 0xDB;
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE: u8 = 0x24;
    pub const RESET_RETRY: u8 = 0x2C;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const GENERATE_ASYMMETRIC: u8 = 0x47;
    pub const GET_CHALLENGE: u8 = 0x84;
    pub const GET_RESPONSE: u8 = 0xC0;
    pub const YK_GET_VERSION: u8 = 0xFD;
    pub const YK_GET_SERIAL: u8 = 0xF8;
    pub const YK_GET_METADATA: u8 = 0xF7;
    pub const YK_SET_MGMKEY: u8 = 0xFF;
    pub const YK_SET_PIN_RETRIES: u8 = 0xFA;
    pub const YK_RESET: u8 = 0xFB;
    pub const YK_IMPORT_KEY: u8 = 0xFE;
    pub const YK_MOVE_KEY: u8 = 0xF6;
    pub const YK_ATTEST: u8 = 0xF9;
}

/// Key reference of the management key.
pub const MANAGEMENT_KEY_REF: u8 = 0x9B;

/// What an empty VERIFY says about the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// Verified in this card session (no count is given then).
    Verified,
    /// Not verified; this many tries left.
    TriesLeft(u8),
    /// Blocked: only the PUK can unblock it.
    Blocked,
}

/// Firmware version (YubiKey GET VERSION).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u8, pub u8, pub u8);

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A card with the PIV application, over some transport: a [`Card`] whose
/// transactions hand out PIV [`Session`]s.
pub struct PivCard<T: Transport> {
    card: Card<T>,
}

impl<T: Transport> PivCard<T> {
    /// Wrap a transport; extended length is used when the ATR announces it.
    pub fn new(transport: T) -> Self {
        Self {
            card: Card::new(transport),
        }
    }

    /// Force extended length on or off (e.g. for a reader that mangles it).
    pub fn set_extended_length(&mut self, on: bool) {
        self.card.set_extended_length(on);
    }

    pub fn extended_length(&self) -> bool {
        self.card.extended_length()
    }

    pub fn transport(&self) -> &T {
        self.card.transport()
    }

    pub fn transport_mut(&mut self) -> &mut T {
        self.card.transport_mut()
    }

    pub fn into_transport(self) -> T {
        self.card.into_transport()
    }

    /// Run `f` under one exclusive transaction.
    pub fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut Session<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        self.card.transaction(|card| {
            f(&mut Session {
                card: card.reborrow(),
            })
        })
    }
}

/// PIV commands on a card inside one transaction.
pub struct Session<'a> {
    card: CardSession<'a>,
}

fn ga_template(input_tag: u32, input: &[u8]) -> Vec<u8> {
    Builder::new()
        .nested(0x7Cu32, |b| b.add(0x82u32, &[]).add(input_tag, input))
        .build()
}

fn ga_output(data: &[u8], tag: u32) -> Result<Zeroizing<Vec<u8>>, Error> {
    let inner = tlv::unwrap(data, 0x7Cu32)
        .map_err(|_| Error::Malformed("GENERAL AUTHENTICATE response"))?;
    let out =
        tlv::require(inner, tag).map_err(|_| Error::Malformed("GENERAL AUTHENTICATE response"))?;
    Ok(Zeroizing::new(out.to_vec()))
}

impl<'a> Session<'a> {
    /// A session over a raw link (tests, fuzzers, the CLI's `apdu` command).
    pub fn new(link: &'a mut dyn Link, extended: bool) -> Self {
        Self {
            card: CardSession::new(link, extended),
        }
    }

    /// PIV commands in a card session.
    pub fn from_card(card: CardSession<'a>) -> Self {
        Self { card }
    }

    /// The card session underneath (commands of no particular application).
    pub fn card(&mut self) -> &mut CardSession<'a> {
        &mut self.card
    }

    /// Send any command; chaining and GET RESPONSE are handled below.
    pub fn transmit(&mut self, cmd: &Command) -> Result<Response, Error> {
        self.card.transmit(cmd)
    }

    /// Send and require 9000.
    fn ok(&mut self, cmd: &Command) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.card.ok(cmd)
    }

    /// SELECT the PIV application (the AID without version, as OpenSC does).
    pub fn select(&mut self) -> Result<ApplicationProperties, Error> {
        let cmd = Command::new(0, ins::SELECT, 0x04, 0x00)
            .with_data(PIV_AID[..9].to_vec())
            .with_le(0);
        let data = self.ok(&cmd)?;
        ApplicationProperties::parse(&data)
    }

    /// GET DATA: the object's content (inside `53`, or `7E`/`7F61` for the
    /// discovery object and BIT).
    pub fn get_data(&mut self, obj: ObjectId) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut cmd = Command::new(0, ins::GET_DATA, 0x3F, 0xFF)
            .with_data(tlv::encode(0x5Cu32, &obj.tag_bytes()))
            .with_le(0);
        if obj == ObjectId::PRINTED_INFORMATION {
            cmd = cmd.secret_response();
        }
        let data = self.ok(&cmd)?;
        if data.is_empty() {
            return Err(Error::Status(StatusWord::FileNotFound));
        }
        let outer = match obj {
            ObjectId::DISCOVERY | ObjectId::BIOMETRIC_GROUP_TEMPLATE => obj.0,
            _ => 0x53,
        };
        let value = tlv::unwrap(&data, outer).map_err(|_| Error::Malformed("data object"))?;
        Ok(Zeroizing::new(value.to_vec()))
    }

    /// GET DATA, with "not there" as `None`: `6A82` (not found), and the
    /// `6A80` / `6A88` with which cards answer for objects they do not know
    /// (a vendor object on another vendor's card).
    pub fn get_data_opt(&mut self, obj: ObjectId) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        match self.get_data(obj) {
            Ok(v) => Ok(Some(v)),
            Err(Error::Status(
                StatusWord::FileNotFound
                | StatusWord::IncorrectData
                | StatusWord::ReferenceNotFound,
            )) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT DATA of `content` (wrapped in `53`); needs the management key.
    /// One command, chained or extended: the card commits on its last APDU.
    pub fn put_data(&mut self, obj: ObjectId, content: &[u8]) -> Result<(), Error> {
        let outer = match obj {
            ObjectId::DISCOVERY | ObjectId::BIOMETRIC_GROUP_TEMPLATE => obj.0,
            _ => 0x53,
        };
        let data = Zeroizing::new(
            Builder::new()
                .add(0x5Cu32, &obj.tag_bytes())
                .add(outer, content)
                .build(),
        );
        let mut cmd = Command::new(0, ins::PUT_DATA, 0x3F, 0xFF).with_data(data.to_vec());
        if obj == ObjectId::PRINTED_INFORMATION {
            cmd = cmd.secret_data();
        }
        self.ok(&cmd).map(drop)
    }

    /// Empty the object (PUT DATA with an empty value, as yubico-piv-tool does).
    pub fn delete_data(&mut self, obj: ObjectId) -> Result<(), Error> {
        self.put_data(obj, &[])
    }

    /// VERIFY the PIN. Wrong: `Status(VerifyFailed { tries_left })`; blocked: `Status(Blocked)`.
    pub fn verify_pin(&mut self, pin: &Pin) -> Result<(), Error> {
        let cmd = Command::new(0, ins::VERIFY, 0x00, PinRef::Pin.code())
            .with_data(pin.padded().to_vec())
            .secret_data();
        self.ok(&cmd).map(drop)
    }

    /// Empty VERIFY: PIN status without spending a try.
    pub fn pin_status(&mut self) -> Result<PinStatus, Error> {
        let r = self.transmit(&Command::new(0, ins::VERIFY, 0x00, PinRef::Pin.code()))?;
        match r.sw {
            StatusWord::Success => Ok(PinStatus::Verified),
            StatusWord::VerifyFailed { tries_left: 0 } | StatusWord::Blocked => {
                Ok(PinStatus::Blocked)
            }
            StatusWord::VerifyFailed { tries_left } => Ok(PinStatus::TriesLeft(tries_left)),
            sw => Err(Error::Status(sw)),
        }
    }

    /// VERIFY with P1=FF: drop the PIN's verified state (SP 800-73-4 §3.2.1).
    pub fn logout(&mut self) -> Result<(), Error> {
        self.ok(&Command::new(0, ins::VERIFY, 0xFF, PinRef::Pin.code()))
            .map(drop)
    }

    /// CHANGE REFERENCE DATA of the PIN or PUK.
    pub fn change_reference(&mut self, which: PinRef, old: &Pin, new: &Pin) -> Result<(), Error> {
        let mut data = Zeroizing::new(Vec::with_capacity(16));
        data.extend_from_slice(old.padded());
        data.extend_from_slice(new.padded());
        let cmd = Command::new(0, ins::CHANGE_REFERENCE, 0x00, which.code())
            .with_data(data.to_vec())
            .secret_data();
        self.ok(&cmd).map(drop)
    }

    /// RESET RETRY COUNTER: unblock and set the PIN with the PUK.
    pub fn unblock_pin(&mut self, puk: &Pin, new_pin: &Pin) -> Result<(), Error> {
        let mut data = Zeroizing::new(Vec::with_capacity(16));
        data.extend_from_slice(puk.padded());
        data.extend_from_slice(new_pin.padded());
        let cmd = Command::new(0, ins::RESET_RETRY, 0x00, PinRef::Pin.code())
            .with_data(data.to_vec())
            .secret_data();
        self.ok(&cmd).map(drop)
    }

    /// Mutual authentication with the management key (SP 800-73-4 Part 2
    /// Appendix A.1): the card's witness, decrypted, proves we hold the key;
    /// our challenge, encrypted by the card, proves it does.
    pub fn authenticate(&mut self, key: &ManagementKey) -> Result<(), Error> {
        let alg = key.algorithm();
        let block = alg
            .block_len()
            .ok_or(Error::InvalidArgument("management key algorithm"))?;
        let step1 = Command::new(0, ins::GENERAL_AUTHENTICATE, alg.code(), MANAGEMENT_KEY_REF)
            .with_data(
                Builder::new()
                    .nested(0x7Cu32, |b| b.add(0x80u32, &[]))
                    .build(),
            )
            .with_le(0)
            .secret_response();
        let data = self.ok(&step1)?;
        let witness = ga_output(&data, 0x80)?;
        if witness.len() != block {
            return Err(Error::Malformed("management key witness"));
        }
        let plain = Zeroizing::new(key.decrypt_block(&witness)?);
        let mut challenge = Zeroizing::new(vec![0u8; block]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut challenge);
        let step2 = Command::new(0, ins::GENERAL_AUTHENTICATE, alg.code(), MANAGEMENT_KEY_REF)
            .with_data(
                Builder::new()
                    .nested(0x7Cu32, |b| b.add(0x80u32, &plain).add(0x81u32, &challenge))
                    .build(),
            )
            .with_le(0)
            .secret_data()
            .secret_response();
        let data = self.ok(&step2)?;
        let response = ga_output(&data, 0x82)?;
        let expected = Zeroizing::new(key.encrypt_block(&challenge)?);
        if subtle::ConstantTimeEq::ct_eq(&response[..], &expected[..]).into() {
            Ok(())
        } else {
            Err(Error::Malformed(
                "card failed management key authentication",
            ))
        }
    }

    /// GENERAL AUTHENTICATE with the private key in `slot`: `input` under tag
    /// 81 (sign / raw RSA) or 85 (ECDH); returns the content of tag 82.
    pub fn general_authenticate(
        &mut self,
        slot: Slot,
        alg: Algorithm,
        input_tag: u32,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let cmd = Command::new(0, ins::GENERAL_AUTHENTICATE, alg.code(), slot.key_ref())
            .with_data(ga_template(input_tag, input))
            .with_le(0);
        let data = self.ok(&cmd)?;
        ga_output(&data, 0x82)
    }

    /// Raw private-key operation: RSA on a padded block, or ECDSA on a digest
    /// (the card answers a DER `SEQUENCE { r, s }` for ECDSA).
    pub fn sign_raw(
        &mut self,
        slot: Slot,
        alg: Algorithm,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.general_authenticate(slot, alg, 0x81, input)
    }

    /// ECDH with the key in `slot` and the peer's uncompressed point: the shared x.
    pub fn ecdh(
        &mut self,
        slot: Slot,
        alg: Algorithm,
        peer_point: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.general_authenticate(slot, alg, 0x85, peer_point)
    }

    /// GENERATE ASYMMETRIC KEY PAIR; needs the management key.
    pub fn generate(
        &mut self,
        slot: Slot,
        alg: Algorithm,
        pin: PinPolicy,
        touch: TouchPolicy,
    ) -> Result<PublicKey, Error> {
        let template = Builder::new()
            .nested(0xACu32, |mut b| {
                b = b.add(0x80u32, &[alg.code()]);
                if pin != PinPolicy::Default {
                    b = b.add(0xAAu32, &[pin.code()]);
                }
                if touch != TouchPolicy::Default {
                    b = b.add(0xABu32, &[touch.code()]);
                }
                b
            })
            .build();
        let cmd = Command::new(0, ins::GENERATE_ASYMMETRIC, 0x00, slot.key_ref())
            .with_data(template)
            .with_le(0);
        let data = self.ok(&cmd)?;
        PublicKey::parse_generated(alg, &data)
    }

    /// GET CHALLENGE: `len` random bytes from the card.
    pub fn get_challenge(&mut self, len: usize) -> Result<Vec<u8>, Error> {
        let data = self.ok(&Command::new(0, ins::GET_CHALLENGE, 0, 0).with_le(len))?;
        if data.len() != len {
            return Err(Error::Malformed("challenge length"));
        }
        Ok(data.to_vec())
    }

    /// YubiKey GET VERSION.
    pub fn version(&mut self) -> Result<Version, Error> {
        let data = self.ok(&Command::new(0, ins::YK_GET_VERSION, 0, 0).with_le(0))?;
        match data[..] {
            [a, b, c] => Ok(Version(a, b, c)),
            _ => Err(Error::Malformed("version")),
        }
    }

    /// YubiKey GET SERIAL (firmware 5+).
    pub fn serial(&mut self) -> Result<u32, Error> {
        let data = self.ok(&Command::new(0, ins::YK_GET_SERIAL, 0, 0).with_le(0))?;
        let b: [u8; 4] = data[..]
            .try_into()
            .map_err(|_| Error::Malformed("serial"))?;
        Ok(u32::from_be_bytes(b))
    }

    /// YubiKey GET METADATA for a key reference (80 PIN, 81 PUK, 9B, slots).
    pub fn metadata(&mut self, key_ref: u8) -> Result<Metadata, Error> {
        let data = self.ok(&Command::new(0, ins::YK_GET_METADATA, 0, key_ref).with_le(0))?;
        Metadata::parse(&data)
    }

    /// YubiKey SET MANAGEMENT KEY; needs the current management key.
    pub fn set_management_key(
        &mut self,
        key: &ManagementKey,
        require_touch: bool,
    ) -> Result<(), Error> {
        let mut data = Zeroizing::new(vec![
            key.algorithm().code(),
            MANAGEMENT_KEY_REF,
            key.as_bytes().len() as u8,
        ]);
        data.extend_from_slice(key.as_bytes());
        let cmd = Command::new(
            0,
            ins::YK_SET_MGMKEY,
            0xFF,
            if require_touch { 0xFE } else { 0xFF },
        )
        .with_data(data.to_vec())
        .secret_data();
        self.ok(&cmd).map(drop)
    }

    /// YubiKey SET PIN RETRIES (needs management key and PIN; resets PIN and PUK to defaults).
    pub fn set_pin_retries(&mut self, pin_tries: u8, puk_tries: u8) -> Result<(), Error> {
        self.ok(&Command::new(
            0,
            ins::YK_SET_PIN_RETRIES,
            pin_tries,
            puk_tries,
        ))
        .map(drop)
    }

    /// YubiKey RESET of the PIV application (only with PIN and PUK blocked).
    pub fn reset_application(&mut self) -> Result<(), Error> {
        self.ok(&Command::new(0, ins::YK_RESET, 0, 0)).map(drop)
    }

    /// YubiKey IMPORT ASYMMETRIC KEY; needs the management key.
    pub fn import_key(
        &mut self,
        slot: Slot,
        alg: Algorithm,
        key: &ImportKey<'_>,
        pin: PinPolicy,
        touch: TouchPolicy,
    ) -> Result<(), Error> {
        let cmd = Command::new(0, ins::YK_IMPORT_KEY, alg.code(), slot.key_ref())
            .with_data(key.encode(pin, touch).to_vec())
            .secret_data();
        self.ok(&cmd).map(drop)
    }

    /// YubiKey MOVE KEY (5.7): move the private key from `from` to the empty `to`.
    pub fn move_key(&mut self, to: Slot, from: Slot) -> Result<(), Error> {
        self.ok(&Command::new(
            0,
            ins::YK_MOVE_KEY,
            to.key_ref(),
            from.key_ref(),
        ))
        .map(drop)
    }

    /// YubiKey DELETE KEY (MOVE KEY with P1 = FF, 5.7).
    pub fn delete_key(&mut self, slot: Slot) -> Result<(), Error> {
        self.ok(&Command::new(0, ins::YK_MOVE_KEY, 0xFF, slot.key_ref()))
            .map(drop)
    }

    /// YubiKey ATTEST: a certificate for the key in `slot`, signed by F9.
    pub fn attest(&mut self, slot: Slot) -> Result<Vec<u8>, Error> {
        Ok(self
            .ok(&Command::new(0, ins::YK_ATTEST, slot.key_ref(), 0).with_le(0))?
            .to_vec())
    }
}

/// Shape a digest into the ECDSA input a card expects: the leftmost
/// field-size bytes if longer, left-padded with zeros if shorter.
pub fn ecdsa_input(alg: Algorithm, digest: &[u8]) -> Vec<u8> {
    let n = alg.size_bytes();
    if digest.len() >= n {
        digest[..n].to_vec()
    } else {
        let mut v = vec![0u8; n - digest.len()];
        v.extend_from_slice(digest);
        v
    }
}

/// The EMSA-PKCS1-v1_5 (type 1) block of `k` bytes around `t` (RFC 8017
/// §9.2): what a card's raw RSA GENERAL AUTHENTICATE signs. `t` is a
/// DigestInfo, or the caller's own data for a raw PKCS #1 signature. `None`
/// when `t` leaves less than the 8 bytes of padding the encoding requires.
pub fn pkcs1_sign_input(k: usize, t: &[u8]) -> Option<Vec<u8>> {
    if t.len().checked_add(11)? > k {
        return None;
    }
    let mut em = vec![0xFF; k];
    em[0] = 0x00;
    em[1] = 0x01;
    em[k - t.len() - 1] = 0x00;
    em[k - t.len()..].copy_from_slice(t);
    Some(em)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tests::Script;
    use hex_literal::hex;

    fn session(s: &mut Script) -> Session<'_> {
        Session::new(s, false)
    }

    #[test]
    fn select_piv() {
        let mut s = Script::new(&[(
            &hex!("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"),
            &hex!("61 11 4F 06 00 00 10 00 01 00 79 07 4F 05 A0 00 00 03 08 90 00"),
        )]);
        let ap = session(&mut s).select().unwrap();
        assert_eq!(ap.aid, hex!("00 00 10 00 01 00"));
    }

    #[test]
    fn select_failure_is_status() {
        let mut s = Script::new(&[(
            &hex!("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"),
            &hex!("6A 82"),
        )]);
        assert_eq!(
            session(&mut s).select().unwrap_err(),
            Error::Status(StatusWord::FileNotFound)
        );
    }

    #[test]
    fn get_data_unwraps_53() {
        let mut s = Script::new(&[(
            &hex!("00 CB 3F FF 05 5C 03 5F C1 02 00"),
            &hex!("53 03 30 01 AA 90 00"),
        )]);
        assert_eq!(
            &session(&mut s).get_data(ObjectId::CHUID).unwrap()[..],
            hex!("30 01 AA")
        );
    }

    #[test]
    fn get_data_discovery_unwraps_7e() {
        let mut s = Script::new(&[(
            &hex!("00 CB 3F FF 03 5C 01 7E 00"),
            &hex!("7E 02 4F 00 90 00"),
        )]);
        assert_eq!(
            &session(&mut s).get_data(ObjectId::DISCOVERY).unwrap()[..],
            hex!("4F 00")
        );
    }

    #[test]
    fn get_data_missing() {
        let mut s = Script::new(&[(&hex!("00 CB 3F FF 05 5C 03 5F C1 05 00"), &hex!("6A 82"))]);
        assert_eq!(
            session(&mut s).get_data_opt(ObjectId::CERT_9A).unwrap(),
            None
        );
    }

    #[test]
    fn put_data_wraps() {
        let mut s = Script::new(&[(
            &hex!("00 DB 3F FF 09 5C 03 5F C1 0C 53 02 C1 00"),
            &hex!("90 00"),
        )]);
        session(&mut s)
            .put_data(ObjectId::KEY_HISTORY, &hex!("C1 00"))
            .unwrap();
    }

    #[test]
    fn verify_outcomes() {
        let pin = Pin::new(b"123456").unwrap();
        let cmd = hex!("00 20 00 80 08 31 32 33 34 35 36 FF FF");
        for (answer, expect) in [
            (&hex!("90 00")[..], Ok(())),
            (
                &hex!("63 C2"),
                Err(Error::Status(StatusWord::VerifyFailed { tries_left: 2 })),
            ),
            (&hex!("69 83"), Err(Error::Status(StatusWord::Blocked))),
        ] {
            let mut s = Script::new(&[(&cmd, answer)]);
            assert_eq!(session(&mut s).verify_pin(&pin), expect);
        }
    }

    #[test]
    fn pin_status_outcomes() {
        for (answer, expect) in [
            (&hex!("90 00")[..], PinStatus::Verified),
            (&hex!("63 C3"), PinStatus::TriesLeft(3)),
            (&hex!("63 C0"), PinStatus::Blocked),
            (&hex!("69 83"), PinStatus::Blocked),
        ] {
            let mut s = Script::new(&[(&hex!("00 20 00 80"), answer)]);
            assert_eq!(session(&mut s).pin_status().unwrap(), expect);
        }
    }

    #[test]
    fn logout_change_unblock() {
        let mut s = Script::new(&[
            (&hex!("00 20 FF 80"), &hex!("90 00")),
            (
                &hex!("00 24 00 81 10 31 32 33 34 35 36 37 38 38 37 36 35 34 33 32 31"),
                &hex!("90 00"),
            ),
            (
                &hex!("00 2C 00 80 10 31 32 33 34 35 36 37 38 36 35 34 33 32 31 FF FF"),
                &hex!("63 C1"),
            ),
        ]);
        let mut sess = session(&mut s);
        sess.logout().unwrap();
        sess.change_reference(
            PinRef::Puk,
            &Pin::new(b"12345678").unwrap(),
            &Pin::new(b"87654321").unwrap(),
        )
        .unwrap();
        assert_eq!(
            sess.unblock_pin(
                &Pin::new(b"12345678").unwrap(),
                &Pin::new(b"654321").unwrap()
            ),
            Err(Error::Status(StatusWord::VerifyFailed { tries_left: 1 }))
        );
    }

    #[test]
    fn sign_and_ecdh_templates() {
        let mut s = Script::new(&[
            (
                &hex!("00 87 11 9A 08 7C 06 82 00 81 02 AA BB 00"),
                &hex!("7C 04 82 02 30 00 90 00"),
            ),
            (
                &hex!("00 87 11 9D 08 7C 06 82 00 85 02 04 01 00"),
                &hex!("7C 03 82 01 77 90 00"),
            ),
        ]);
        let mut sess = session(&mut s);
        let sig = sess
            .sign_raw(Slot::Authentication, Algorithm::EccP256, &hex!("AA BB"))
            .unwrap();
        assert_eq!(&sig[..], hex!("30 00"));
        let x = sess
            .ecdh(Slot::KeyManagement, Algorithm::EccP256, &hex!("04 01"))
            .unwrap();
        assert_eq!(&x[..], hex!("77"));
    }

    #[test]
    fn sign_not_logged_in() {
        let mut s = Script::new(&[(&hex!("00 87 11 9A 06 7C 04 82 00 81 00 00"), &hex!("69 82"))]);
        assert_eq!(
            session(&mut s)
                .sign_raw(Slot::Authentication, Algorithm::EccP256, &[])
                .unwrap_err(),
            Error::Status(StatusWord::SecurityStatusNotSatisfied)
        );
    }

    #[test]
    fn generate_template() {
        let mut point = vec![0x04];
        point.extend([2u8; 64]);
        let mut answer = Builder::new()
            .nested(0x7F49u32, |b| b.add(0x86u32, &point))
            .build();
        answer.extend(hex!("90 00"));
        let mut s = Script::new(&[(&hex!("00 47 00 9A 08 AC 06 80 01 11 AA 01 02 00"), &answer)]);
        let pk = session(&mut s)
            .generate(
                Slot::Authentication,
                Algorithm::EccP256,
                PinPolicy::Once,
                TouchPolicy::Default,
            )
            .unwrap();
        assert_eq!(
            pk,
            PublicKey::Ec {
                alg: Algorithm::EccP256,
                point
            }
        );
    }

    #[test]
    fn yubikey_extensions() {
        let mut s = Script::new(&[
            (&hex!("00 FD 00 00 00"), &hex!("05 07 01 90 00")),
            (&hex!("00 F8 00 00 00"), &hex!("01 02 03 04 90 00")),
            (
                &hex!("00 F7 00 80 00"),
                &hex!("01 01 FF 05 01 01 06 02 03 03 90 00"),
            ),
            (&hex!("00 F6 9A 82"), &hex!("90 00")),
            (&hex!("00 F6 FF 9A"), &hex!("90 00")),
            (&hex!("00 FA 05 04"), &hex!("90 00")),
            (&hex!("00 FB 00 00"), &hex!("69 85")),
        ]);
        let mut sess = session(&mut s);
        assert_eq!(sess.version().unwrap(), Version(5, 7, 1));
        assert_eq!(sess.serial().unwrap(), 0x01020304);
        assert_eq!(sess.metadata(0x80).unwrap().retries, Some((3, 3)));
        sess.move_key(Slot::Authentication, Slot::Retired(1))
            .unwrap();
        sess.delete_key(Slot::Authentication).unwrap();
        sess.set_pin_retries(5, 4).unwrap();
        assert_eq!(
            sess.reset_application(),
            Err(Error::Status(StatusWord::ConditionsNotSatisfied))
        );
    }

    #[test]
    fn management_key_mutual_auth() {
        let key = ManagementKey::default_for(Algorithm::Tdes).unwrap();
        let witness_plain = hex!("01 02 03 04 05 06 07 08");
        let witness_enc = key.encrypt_block(&witness_plain).unwrap();
        // The challenge is random: a link that plays the card's part.
        struct Card {
            key: ManagementKey,
            witness_enc: Vec<u8>,
            step: u8,
        }
        impl Link for Card {
            fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, crate::TransportError> {
                self.step += 1;
                let mut out = if self.step == 1 {
                    assert_eq!(apdu, hex!("00 87 03 9B 04 7C 02 80 00 00"));
                    Builder::new()
                        .nested(0x7Cu32, |b| b.add(0x80u32, &self.witness_enc))
                        .build()
                } else {
                    let data = &apdu[5..apdu.len() - 1];
                    let inner = tlv::unwrap(data, 0x7Cu32).unwrap();
                    assert_eq!(
                        tlv::require(inner, 0x80u32).unwrap(),
                        hex!("01 02 03 04 05 06 07 08")
                    );
                    let ch = tlv::require(inner, 0x81u32).unwrap();
                    let enc = self.key.encrypt_block(ch).unwrap();
                    Builder::new()
                        .nested(0x7Cu32, |b| b.add(0x82u32, &enc))
                        .build()
                };
                out.extend(hex!("90 00"));
                Ok(out)
            }
        }
        let mut card = Card {
            key: key.clone(),
            witness_enc,
            step: 0,
        };
        Session::new(&mut card, false).authenticate(&key).unwrap();
        // A card that answers with the wrong key fails the check.
        let mut liar = Card {
            key: ManagementKey::new(Algorithm::Tdes, &[9; 24]).unwrap(),
            witness_enc: key.encrypt_block(&witness_plain).unwrap(),
            step: 0,
        };
        assert!(Session::new(&mut liar, false).authenticate(&key).is_err());
    }

    #[test]
    fn pkcs1_sign_input_shape_and_bounds() {
        let t = [0xAB; 5];
        assert_eq!(
            pkcs1_sign_input(16, &t).unwrap(),
            hex!("0001FFFFFFFFFFFFFFFF00ABABABABAB")
        );
        assert!(pkcs1_sign_input(15, &t).is_none());
    }

    #[test]
    fn ecdsa_input_shapes() {
        assert_eq!(ecdsa_input(Algorithm::EccP256, &[1; 48]), vec![1; 32]);
        let short = ecdsa_input(Algorithm::EccP384, &[1; 32]);
        assert_eq!(short.len(), 48);
        assert_eq!(&short[..16], &[0; 16]);
    }
}
