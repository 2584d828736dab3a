//! The PIV applet: one raw command APDU in, one raw response APDU out,
//! behaving like a YubiKey 5 (firmware 5.7) as far as SP 800-73-4 and the
//! Yubico extensions go — or like the card its profile names (see
//! [`crate::profile`]: the handlers consult the profile's [`Spec`]).
//! Errors are answered as status words; nothing here panics on any input
//! (fuzzed).

use crate::ca;
use crate::keys::{ImportFields, PrivateKey};
use crate::profile::{MetadataMode, Spec};
use crate::state::{Chain, KeyEntry, MgmtPending, Persistent, SecretBytes, Volatile};
use apdu::piv::{
    ins, AdminData, Algorithm, ApplicationProperties, Discovery, KeyOrigin, ManagementKey,
    Metadata, ObjectId, Pin, PinPolicy, Slot, TouchPolicy, MANAGEMENT_KEY_REF, PIV_AID, PIV_RID,
};
use apdu::tlv::{self, Builder};
use apdu::{ParsedCommand, StatusWord};
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type CardResult<T> = Result<T, StatusWord>;

/// Largest data object content the card stores (YubiKey 5: 3052 bytes).
pub const MAX_OBJECT_LEN: usize = 3052;
/// Largest chained command we accept.
const MAX_CHAIN_LEN: usize = 16 * 1024;

/// Objects readable only after PIN verification (SP 800-73-4 Part 1 Table 3).
const PIN_PROTECTED: [ObjectId; 4] = [
    ObjectId::FINGERPRINTS,
    ObjectId::FACIAL_IMAGE,
    ObjectId::PRINTED_INFORMATION,
    ObjectId::IRIS_IMAGES,
];

/// The applet with its memory.
pub struct Applet {
    pub persistent: Persistent,
    pub volatile: Volatile,
    dirty: bool,
    keys: KeyCache,
}

/// Private keys parsed from the PKCS#8 the card stores, by key reference.
/// Parsing (for EC keys, deriving the public point) costs more than the
/// operation itself. An entry serves only while the stored PKCS#8 is still
/// byte for byte the one it was parsed from, so any change of the key —
/// generate, import, move, delete, reset, a reload of the state file — is
/// seen at the next use without the writers having to know about the cache.
#[derive(Default)]
struct KeyCache(HashMap<u8, (Zeroizing<Vec<u8>>, PrivateKey)>);

impl KeyCache {
    fn get(&mut self, slot: Slot, entry: &KeyEntry) -> Option<&PrivateKey> {
        let stored = &entry.private_key.0;
        let fresh = self.0.get(&slot.key_ref()).is_some_and(|(der, k)| {
            der[..] == stored[..] && k.algorithm().code() == entry.algorithm
        });
        if !fresh {
            let key = entry.key()?;
            self.0
                .insert(slot.key_ref(), (Zeroizing::new(stored.to_vec()), key));
        }
        self.0.get(&slot.key_ref()).map(|(_, k)| k)
    }
}

fn sw_bytes(sw: StatusWord) -> Vec<u8> {
    sw.to_bytes().to_vec()
}

/// The management key as the card holds it.
fn mgmt_key(p: &Persistent) -> CardResult<ManagementKey> {
    let alg = Algorithm::from_code(p.management_key.algorithm).ok_or(StatusWord::Unknown)?;
    ManagementKey::new(alg, &p.management_key.key.0).map_err(|_| StatusWord::Unknown)
}

impl Applet {
    pub fn new(persistent: Persistent) -> Self {
        Self {
            persistent,
            volatile: Volatile::default(),
            dirty: false,
            keys: KeyCache::default(),
        }
    }

    /// Power off/on or reset: every volatile state is gone.
    pub fn power_cycle(&mut self) {
        self.volatile = Volatile::default();
    }

    /// The PIN is no longer verified, and nothing else changes: what another
    /// application's VERIFY P1=FF does to everyone sharing the card.
    pub fn forget_pin(&mut self) {
        self.volatile.pin_verified = false;
    }

    /// What the card's profile does.
    fn spec(&self) -> &'static Spec {
        self.persistent.profile.spec()
    }

    /// Whether the persistent part changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Process one command APDU.
    pub fn process(&mut self, raw: &[u8]) -> Vec<u8> {
        let cmd = match ParsedCommand::parse(raw) {
            Ok(c) => c,
            Err(_) => return sw_bytes(StatusWord::WrongLength),
        };
        let max_le = if cmd.extended { 65536 } else { 256 };
        let mut le = cmd.le.unwrap_or(max_le).min(max_le);
        if let Some(piece) = self.spec().response_piece {
            le = le.min(piece);
        }
        // Cards that want an Le for data give it only through 61xx.
        if cmd.le.is_none() && self.spec().data_needs_le {
            le = 0;
        }

        if cmd.ins == ins::GET_RESPONSE && cmd.cla & 0x10 == 0 {
            if self.volatile.pending_response.is_empty() {
                return sw_bytes(StatusWord::ConditionsNotSatisfied);
            }
            if cmd.extended && self.spec().short_get_response {
                return sw_bytes(StatusWord::WrongLength);
            }
            let rest = std::mem::take(&mut self.volatile.pending_response);
            return self.respond(rest.to_vec(), le);
        }
        self.volatile.pending_response = Zeroizing::new(Vec::new());

        if cmd.cla & !0x10 != 0x00 {
            self.volatile.chain = None;
            return sw_bytes(StatusWord::ClaNotSupported);
        }

        // A PIN-always verification counts for the very next command only.
        let fresh = std::mem::take(&mut self.volatile.pin_fresh);

        if cmd.cla & 0x10 != 0 {
            let chain = self.volatile.chain.get_or_insert_with(|| Chain {
                ins: cmd.ins,
                p1: cmd.p1,
                p2: cmd.p2,
                data: Zeroizing::new(Vec::new()),
            });
            if (chain.ins, chain.p1, chain.p2) != (cmd.ins, cmd.p1, cmd.p2) {
                *chain = Chain {
                    ins: cmd.ins,
                    p1: cmd.p1,
                    p2: cmd.p2,
                    data: Zeroizing::new(Vec::new()),
                };
            }
            if chain.data.len() + cmd.data.len() > MAX_CHAIN_LEN {
                self.volatile.chain = None;
                return sw_bytes(StatusWord::WrongLength);
            }
            chain.data.extend_from_slice(cmd.data);
            self.volatile.pin_fresh = fresh;
            return sw_bytes(StatusWord::Success);
        }

        let data: Zeroizing<Vec<u8>> = match self.volatile.chain.take() {
            Some(chain) if (chain.ins, chain.p1, chain.p2) == (cmd.ins, cmd.p1, cmd.p2) => {
                let mut d = chain.data;
                d.extend_from_slice(cmd.data);
                d
            }
            _ => Zeroizing::new(cmd.data.to_vec()),
        };

        if cmd.ins != ins::GENERAL_AUTHENTICATE || cmd.p2 != MANAGEMENT_KEY_REF {
            self.volatile.mgmt_pending = None;
        }

        let result = if cmd.ins == ins::SELECT {
            self.select(cmd.p1, &data)
        } else if !self.volatile.selected {
            Err(StatusWord::InsNotSupported)
        } else {
            self.dispatch(cmd.ins, cmd.p1, cmd.p2, &data, fresh, cmd.le)
        };
        match result {
            Ok(out) => self.respond(out, le),
            Err(sw) => sw_bytes(sw),
        }
    }

    /// Send up to `le` bytes; keep the rest for GET RESPONSE (61xx).
    fn respond(&mut self, mut out: Vec<u8>, le: usize) -> Vec<u8> {
        if out.len() > le {
            let rest = out.split_off(le);
            let n = rest.len();
            self.volatile.pending_response = Zeroizing::new(rest);
            out.push(0x61);
            out.push(if n >= 256 { 0 } else { n as u8 });
        } else {
            out.extend_from_slice(&StatusWord::Success.to_bytes());
        }
        out
    }

    fn select(&mut self, p1: u8, aid: &[u8]) -> CardResult<Vec<u8>> {
        if p1 != 0x04 {
            return Err(StatusWord::IncorrectP1P2);
        }
        // Some cards know their application only by its AID up to the
        // version (9 bytes), not by the RID alone.
        let shortest = if self.spec().full_aid {
            9
        } else {
            PIV_RID.len()
        };
        if aid.len() < shortest || aid.len() > PIV_AID.len() || !PIV_AID.starts_with(aid) {
            // Not ours: the current selection stays as it is (ISO 7816-4 §7.1.1).
            return Err(StatusWord::FileNotFound);
        }
        self.volatile.selected = true;
        Ok(ApplicationProperties {
            aid: PIV_AID[5..].to_vec(),
            authority: Some(PIV_RID.to_vec()),
            label: None,
            algorithms: Vec::new(),
        }
        .encode())
    }

    fn dispatch(
        &mut self,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
        fresh: bool,
        le: Option<usize>,
    ) -> CardResult<Vec<u8>> {
        let spec = self.spec();
        let yubikey = |available: bool| {
            if available {
                Ok(())
            } else {
                Err(StatusWord::InsNotSupported)
            }
        };
        match ins {
            ins::YK_GET_VERSION => yubikey(spec.version.is_some())?,
            ins::YK_GET_SERIAL => yubikey(spec.serial)?,
            ins::YK_GET_METADATA => yubikey(spec.metadata != MetadataMode::Absent)?,
            ins::YK_MOVE_KEY => yubikey(spec.move_key)?,
            ins::YK_ATTEST => yubikey(spec.attestation)?,
            ins::YK_SET_MGMKEY | ins::YK_SET_PIN_RETRIES | ins::YK_RESET | ins::YK_IMPORT_KEY => {
                yubikey(spec.yubikey_admin)?
            }
            ins::GET_CHALLENGE if !spec.challenge => return Err(StatusWord::FunctionNotSupported),
            _ => {}
        }
        match ins {
            ins::GET_DATA => self.get_data(p1, p2, data),
            ins::PUT_DATA => self.put_data(p1, p2, data),
            ins::VERIFY => self.verify(p1, p2, data),
            ins::CHANGE_REFERENCE => self.change_reference(p1, p2, data),
            ins::RESET_RETRY => self.reset_retry(p1, p2, data),
            ins::GENERAL_AUTHENTICATE if p2 == MANAGEMENT_KEY_REF => self.mgmt_auth(p1, data),
            ins::GENERAL_AUTHENTICATE => self.general_authenticate(p1, p2, data, fresh),
            ins::GENERATE_ASYMMETRIC => self.generate(p1, p2, data),
            ins::GET_CHALLENGE => self.get_challenge(p1, p2, le),
            ins::YK_GET_VERSION => Ok(self.persistent.version.to_vec()),
            ins::YK_GET_SERIAL => Ok(self.persistent.serial.to_be_bytes().to_vec()),
            ins::YK_GET_METADATA => match spec.metadata {
                MetadataMode::EmptyExcept(slot) if slot.key_ref() != p2 => Ok(Vec::new()),
                _ => self.metadata(p2),
            },
            ins::YK_SET_MGMKEY => self.set_mgmt_key(p1, p2, data),
            ins::YK_SET_PIN_RETRIES => self.set_pin_retries(p1, p2),
            ins::YK_RESET => self.reset(),
            ins::YK_IMPORT_KEY => self.import_key(p1, p2, data),
            ins::YK_MOVE_KEY => self.move_key(p1, p2),
            ins::YK_ATTEST => {
                let slot = Slot::from_key_ref(p1).ok_or(StatusWord::WrongP1P2)?;
                ca::attest(&self.persistent, slot)
            }
            _ => Err(StatusWord::InsNotSupported),
        }
    }

    fn require_mgmt(&self) -> CardResult<()> {
        if self.volatile.mgmt_authenticated {
            Ok(())
        } else {
            Err(StatusWord::SecurityStatusNotSatisfied)
        }
    }

    fn object_tag(data: &[u8]) -> CardResult<(ObjectId, &[u8])> {
        let (t, rest) = tlv::parse_one(data).map_err(|_| StatusWord::IncorrectData)?;
        if t.tag != tlv::Tag(0x5C) || t.value.is_empty() || t.value.len() > 3 {
            return Err(StatusWord::IncorrectData);
        }
        let id = t
            .value
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        Ok((ObjectId(id), rest))
    }

    fn get_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        if (p1, p2) != (0x3F, 0xFF) {
            return Err(StatusWord::IncorrectP1P2);
        }
        let (obj, rest) = Self::object_tag(data)?;
        if !rest.is_empty() || !self.spec().knows_object(obj.0) {
            return Err(StatusWord::IncorrectData);
        }
        if obj == ObjectId::DISCOVERY {
            return Ok(tlv::encode(0x7Eu32, &Discovery::default().encode()));
        }
        if PIN_PROTECTED.contains(&obj) && !self.volatile.pin_verified {
            return Err(StatusWord::SecurityStatusNotSatisfied);
        }
        match self.persistent.objects.get(&obj.0) {
            Some(content) => Ok(tlv::encode(0x53u32, content)),
            None => Err(StatusWord::FileNotFound),
        }
    }

    fn writable(obj: ObjectId) -> bool {
        matches!(obj.0, 0x5F_C101..=0x5F_C123 | 0x5F_FF00..=0x5F_FF15)
    }

    fn put_data(&mut self, p1: u8, p2: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        if (p1, p2) != (0x3F, 0xFF) {
            return Err(StatusWord::IncorrectP1P2);
        }
        self.require_mgmt()?;
        let (obj, rest) = Self::object_tag(data)?;
        if !Self::writable(obj) || !self.spec().knows_object(obj.0) {
            return Err(StatusWord::IncorrectData);
        }
        let (t, trailing) = tlv::parse_one(rest).map_err(|_| StatusWord::IncorrectData)?;
        if t.tag != tlv::Tag(0x53) || !trailing.is_empty() {
            return Err(StatusWord::IncorrectData);
        }
        if t.value.len() > MAX_OBJECT_LEN {
            return Err(StatusWord::NotEnoughMemory);
        }
        if t.value.is_empty() {
            self.persistent.objects.remove(&obj.0);
        } else {
            self.persistent.objects.insert(obj.0, t.value.to_vec());
        }
        self.dirty = true;
        Ok(Vec::new())
    }

    fn verify(&mut self, p1: u8, p2: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        if p2 != 0x80 {
            return Err(StatusWord::ReferenceNotFound);
        }
        match p1 {
            0xFF if data.is_empty() => {
                self.volatile.pin_verified = false;
                return Ok(Vec::new());
            }
            0x00 => {}
            _ => return Err(StatusWord::IncorrectP1P2),
        }
        let pin = &mut self.persistent.pin;
        if data.is_empty() {
            return if self.volatile.pin_verified {
                Ok(Vec::new())
            } else if pin.tries_left == 0 {
                Err(StatusWord::Blocked)
            } else {
                Err(StatusWord::VerifyFailed {
                    tries_left: pin.tries_left,
                })
            };
        }
        if data.len() != 8 {
            return Err(StatusWord::IncorrectData);
        }
        if pin.tries_left == 0 {
            return Err(StatusWord::Blocked);
        }
        if bool::from(data.ct_eq(&pin.value.0[..])) {
            if pin.tries_left != pin.tries_total {
                pin.tries_left = pin.tries_total;
                self.dirty = true;
            }
            self.volatile.pin_verified = true;
            self.volatile.pin_fresh = true;
            Ok(Vec::new())
        } else {
            pin.tries_left -= 1;
            self.dirty = true;
            self.volatile.pin_verified = false;
            Err(StatusWord::VerifyFailed {
                tries_left: pin.tries_left,
            })
        }
    }

    fn change_reference(&mut self, p1: u8, p2: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        if p1 != 0x00 {
            return Err(StatusWord::IncorrectP1P2);
        }
        if data.len() != 16 {
            return Err(StatusWord::IncorrectData);
        }
        let new = Pin::from_padded(&data[8..]).map_err(|_| StatusWord::IncorrectData)?;
        let is_pin = match p2 {
            0x80 => true,
            0x81 => false,
            _ => return Err(StatusWord::ReferenceNotFound),
        };
        let secret = if is_pin {
            &mut self.persistent.pin
        } else {
            &mut self.persistent.puk
        };
        if secret.tries_left == 0 {
            return Err(StatusWord::Blocked);
        }
        if !bool::from(data[..8].ct_eq(&secret.value.0[..])) {
            secret.tries_left -= 1;
            self.dirty = true;
            if is_pin {
                self.volatile.pin_verified = false;
            }
            return Err(StatusWord::VerifyFailed {
                tries_left: secret.tries_left,
            });
        }
        let unchanged = bool::from(new.padded().ct_eq(&secret.value.0[..]));
        secret.value = SecretBytes::new(new.padded());
        secret.tries_left = secret.tries_total;
        if !unchanged {
            secret.is_default = false;
        }
        if is_pin {
            self.volatile.pin_verified = true;
        }
        self.dirty = true;
        Ok(Vec::new())
    }

    fn reset_retry(&mut self, p1: u8, p2: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        if p1 != 0x00 || p2 != 0x80 {
            return Err(StatusWord::IncorrectP1P2);
        }
        if data.len() != 16 {
            return Err(StatusWord::IncorrectData);
        }
        let new = Pin::from_padded(&data[8..]).map_err(|_| StatusWord::IncorrectData)?;
        let p = &mut self.persistent;
        if p.puk.tries_left == 0 {
            return Err(StatusWord::Blocked);
        }
        if !bool::from(data[..8].ct_eq(&p.puk.value.0[..])) {
            p.puk.tries_left -= 1;
            self.dirty = true;
            return Err(StatusWord::VerifyFailed {
                tries_left: p.puk.tries_left,
            });
        }
        p.puk.tries_left = p.puk.tries_total;
        p.pin.value = SecretBytes::new(new.padded());
        p.pin.tries_left = p.pin.tries_total;
        p.pin.is_default = false;
        self.dirty = true;
        Ok(Vec::new())
    }

    fn ga_fields(data: &[u8]) -> CardResult<Vec<(u32, &[u8])>> {
        let inner = tlv::unwrap(data, 0x7Cu32).map_err(|_| StatusWord::IncorrectData)?;
        tlv::parse_all(inner)
            .map_err(|_| StatusWord::IncorrectData)
            .map(|v| v.into_iter().map(|t| (t.tag.0, t.value)).collect())
    }

    fn mgmt_auth(&mut self, p1: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        let key = mgmt_key(&self.persistent)?;
        if p1 != key.algorithm().code() {
            return Err(StatusWord::IncorrectP1P2);
        }
        let block = key.algorithm().block_len().ok_or(StatusWord::Unknown)?;
        let fields = Self::ga_fields(data)?;
        let get = |tag: u32| fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        let random = || {
            let mut b = Zeroizing::new(vec![0u8; block]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
            b
        };
        let pending = self.volatile.mgmt_pending.take();
        self.volatile.mgmt_authenticated = false;
        match (get(0x80), get(0x81), get(0x82)) {
            // Step 1 of mutual authentication: send an encrypted witness.
            (Some([]), None, _) => {
                let witness = random();
                let enc = key
                    .encrypt_block(&witness)
                    .map_err(|_| StatusWord::Unknown)?;
                self.volatile.mgmt_pending = Some(MgmtPending::Witness(witness));
                Ok(Builder::new()
                    .nested(0x7Cu32, |b| b.add(0x80u32, &enc))
                    .build())
            }
            // Step 2: the host decrypted our witness and challenges us.
            (Some(w), Some(challenge), _) if !w.is_empty() && challenge.len() == block => {
                match pending {
                    Some(MgmtPending::Witness(expected)) if bool::from(w.ct_eq(&expected[..])) => {
                        self.volatile.mgmt_authenticated = true;
                        let enc = key
                            .encrypt_block(challenge)
                            .map_err(|_| StatusWord::Unknown)?;
                        Ok(Builder::new()
                            .nested(0x7Cu32, |b| b.add(0x82u32, &enc))
                            .build())
                    }
                    _ => Err(StatusWord::SecurityStatusNotSatisfied),
                }
            }
            // External authentication: send a challenge...
            (None, Some([]), _) => {
                let challenge = random();
                let out = Builder::new()
                    .nested(0x7Cu32, |b| b.add(0x81u32, &challenge))
                    .build();
                self.volatile.mgmt_pending = Some(MgmtPending::Challenge(challenge));
                Ok(out)
            }
            // ...and check the host's encryption of it.
            (None, None, Some(resp)) if !resp.is_empty() => match pending {
                Some(MgmtPending::Challenge(c)) => {
                    let expected =
                        Zeroizing::new(key.encrypt_block(&c).map_err(|_| StatusWord::Unknown)?);
                    if bool::from(resp.ct_eq(&expected[..])) {
                        self.volatile.mgmt_authenticated = true;
                        Ok(Vec::new())
                    } else {
                        Err(StatusWord::SecurityStatusNotSatisfied)
                    }
                }
                _ => Err(StatusWord::SecurityStatusNotSatisfied),
            },
            _ => Err(StatusWord::IncorrectData),
        }
    }

    fn pin_policy_ok(&self, policy: PinPolicy, fresh: bool) -> bool {
        match policy {
            PinPolicy::Never => true,
            PinPolicy::Always | PinPolicy::MatchAlways => self.volatile.pin_verified && fresh,
            _ => self.volatile.pin_verified,
        }
    }

    fn general_authenticate(
        &mut self,
        p1: u8,
        p2: u8,
        data: &[u8],
        fresh: bool,
    ) -> CardResult<Vec<u8>> {
        let slot = Slot::from_key_ref(p2).ok_or(StatusWord::WrongP1P2)?;
        let entry = self
            .persistent
            .key(slot)
            .ok_or(StatusWord::ReferenceNotFound)?;
        if entry.algorithm != p1 {
            return Err(StatusWord::IncorrectData);
        }
        let fields = Self::ga_fields(data)?;
        let get = |tag: u32| fields.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        if get(0x82) != Some(&[]) {
            return Err(StatusWord::IncorrectData);
        }
        let mut policy = entry.pin_policy();
        if policy == PinPolicy::Default {
            policy = slot.default_pin_policy();
        }
        if !self.pin_policy_ok(policy, fresh) {
            return Err(StatusWord::SecurityStatusNotSatisfied);
        }
        let key = self.keys.get(slot, entry).ok_or(StatusWord::Unknown)?;
        let out = match (get(0x81), get(0x85)) {
            (Some(input), None) => Zeroizing::new(key.sign_raw(input)?),
            (None, Some(point)) => key.ecdh(point)?,
            _ => return Err(StatusWord::IncorrectData),
        };
        Ok(Builder::new()
            .nested(0x7Cu32, |b| b.add(0x82u32, &out))
            .build())
    }

    fn generate(&mut self, p1: u8, p2: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        if p1 != 0x00 {
            return Err(StatusWord::IncorrectP1P2);
        }
        let slot = Slot::from_key_ref(p2)
            .filter(|s| *s != Slot::Attestation)
            .ok_or(StatusWord::WrongP1P2)?;
        self.require_mgmt()?;
        let template = tlv::unwrap(data, 0xACu32).map_err(|_| StatusWord::IncorrectData)?;
        let byte = |tag: u32| -> CardResult<Option<u8>> {
            match tlv::find(template, tag).map_err(|_| StatusWord::IncorrectData)? {
                None => Ok(None),
                Some([b]) => Ok(Some(*b)),
                Some(_) => Err(StatusWord::IncorrectData),
            }
        };
        let alg = byte(0x80)?
            .and_then(Algorithm::from_code)
            .filter(|a| self.spec().algorithms.contains(a))
            .ok_or(StatusWord::IncorrectData)?;
        if !self.spec().key_policies && (byte(0xAA)?.is_some() || byte(0xAB)?.is_some()) {
            return Err(StatusWord::IncorrectData);
        }
        let pin = match byte(0xAA)? {
            None => PinPolicy::Default,
            Some(b) => PinPolicy::from_code(b).ok_or(StatusWord::IncorrectData)?,
        };
        let touch = match byte(0xAB)? {
            None => TouchPolicy::Default,
            Some(b) => TouchPolicy::from_code(b).ok_or(StatusWord::IncorrectData)?,
        };
        let key = PrivateKey::generate(alg)?;
        let public = key.public();
        let pin = if pin == PinPolicy::Default {
            slot.default_pin_policy()
        } else {
            pin
        };
        let touch = if touch == TouchPolicy::Default {
            TouchPolicy::Never
        } else {
            touch
        };
        self.persistent
            .set_key(slot, KeyEntry::new(&key, pin, touch, KeyOrigin::Generated));
        self.dirty = true;
        Ok(tlv::encode(0x7F49u32, &public.encode_content()))
    }

    fn get_challenge(&mut self, p1: u8, p2: u8, le: Option<usize>) -> CardResult<Vec<u8>> {
        if (p1, p2) != (0, 0) {
            return Err(StatusWord::IncorrectP1P2);
        }
        let n = le
            .filter(|n| (1..=256).contains(n))
            .ok_or(StatusWord::WrongLength)?;
        let mut b = vec![0u8; n];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        Ok(b)
    }

    fn metadata(&mut self, p2: u8) -> CardResult<Vec<u8>> {
        let p = &self.persistent;
        let md = match p2 {
            0x80 | 0x81 => {
                let s = if p2 == 0x80 { &p.pin } else { &p.puk };
                Metadata {
                    algorithm: None,
                    is_default: Some(s.is_default),
                    retries: Some((s.tries_total, s.tries_left)),
                    ..Metadata::default()
                }
            }
            MANAGEMENT_KEY_REF => Metadata {
                algorithm: Algorithm::from_code(p.management_key.algorithm),
                policy: Some((
                    PinPolicy::Never,
                    TouchPolicy::from_code(p.management_key.touch).unwrap_or(TouchPolicy::Never),
                )),
                is_default: Some(p.management_key.is_default),
                ..Metadata::default()
            },
            r => {
                let slot = Slot::from_key_ref(r).ok_or(StatusWord::WrongP1P2)?;
                let e = p.key(slot).ok_or(StatusWord::ReferenceNotFound)?;
                let key = self.keys.get(slot, e).ok_or(StatusWord::Unknown)?;
                Metadata {
                    algorithm: e.algorithm(),
                    policy: Some((e.pin_policy(), e.touch_policy())),
                    origin: KeyOrigin::from_code(e.origin),
                    public_key: Some(key.public()),
                    ..Metadata::default()
                }
            }
        };
        Ok(md.encode())
    }

    fn set_mgmt_key(&mut self, p1: u8, p2: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        if p1 != 0xFF || !(p2 == 0xFF || p2 == 0xFE) {
            return Err(StatusWord::IncorrectP1P2);
        }
        self.require_mgmt()?;
        let [alg, key_ref, len, key @ ..] = data else {
            return Err(StatusWord::IncorrectData);
        };
        let alg = Algorithm::from_code(*alg)
            .filter(|a| self.spec().management_algorithm_ok(*a))
            .ok_or(StatusWord::IncorrectData)?;
        if *key_ref != MANAGEMENT_KEY_REF || usize::from(*len) != key.len() {
            return Err(StatusWord::IncorrectData);
        }
        let mk = ManagementKey::new(alg, key).map_err(|_| StatusWord::IncorrectData)?;
        self.persistent.management_key = crate::state::MgmtKey {
            algorithm: alg.code(),
            key: SecretBytes::new(mk.as_bytes()),
            touch: if p2 == 0xFE {
                TouchPolicy::Always.code()
            } else {
                TouchPolicy::Never.code()
            },
            is_default: mk.as_bytes() == apdu::piv::DEFAULT_MANAGEMENT_KEY,
        };
        self.dirty = true;
        Ok(Vec::new())
    }

    fn set_pin_retries(&mut self, p1: u8, p2: u8) -> CardResult<Vec<u8>> {
        self.require_mgmt()?;
        if !self.volatile.pin_verified {
            return Err(StatusWord::SecurityStatusNotSatisfied);
        }
        if p1 == 0 || p2 == 0 {
            return Err(StatusWord::IncorrectP1P2);
        }
        let fresh = Persistent::factory(0);
        let p = &mut self.persistent;
        p.pin = fresh.pin.clone();
        p.puk = fresh.puk.clone();
        (p.pin.tries_total, p.pin.tries_left) = (p1, p1);
        (p.puk.tries_total, p.puk.tries_left) = (p2, p2);
        self.volatile.pin_verified = false;
        self.dirty = true;
        Ok(Vec::new())
    }

    fn reset(&mut self) -> CardResult<Vec<u8>> {
        if self.persistent.pin.tries_left != 0 || self.persistent.puk.tries_left != 0 {
            return Err(StatusWord::ConditionsNotSatisfied);
        }
        self.persistent.reset_application();
        let selected = self.volatile.selected;
        self.volatile = Volatile::default();
        self.volatile.selected = selected;
        self.dirty = true;
        Ok(Vec::new())
    }

    fn import_key(&mut self, p1: u8, p2: u8, data: &[u8]) -> CardResult<Vec<u8>> {
        let alg = Algorithm::from_code(p1)
            .filter(|a| self.spec().algorithms.contains(a))
            .ok_or(StatusWord::IncorrectP1P2)?;
        let slot = Slot::from_key_ref(p2).ok_or(StatusWord::WrongP1P2)?;
        self.require_mgmt()?;
        let mut f = ImportFields::default();
        let mut pin = PinPolicy::Default;
        let mut touch = TouchPolicy::Default;
        for t in tlv::iter(data) {
            let t = t.map_err(|_| StatusWord::IncorrectData)?;
            match (t.tag.0, t.value) {
                (0x01, v) => f.p = Some(v),
                (0x02, v) => f.q = Some(v),
                (0x03..=0x05, _) => {}
                (0x06, v) => f.scalar = Some(v),
                (0xAA, [b]) => pin = PinPolicy::from_code(*b).ok_or(StatusWord::IncorrectData)?,
                (0xAB, [b]) => {
                    touch = TouchPolicy::from_code(*b).ok_or(StatusWord::IncorrectData)?
                }
                _ => return Err(StatusWord::IncorrectData),
            }
        }
        let key = PrivateKey::from_import(alg, &f)?;
        let pin = if pin == PinPolicy::Default {
            slot.default_pin_policy()
        } else {
            pin
        };
        let touch = if touch == TouchPolicy::Default {
            TouchPolicy::Never
        } else {
            touch
        };
        self.persistent
            .set_key(slot, KeyEntry::new(&key, pin, touch, KeyOrigin::Imported));
        self.dirty = true;
        Ok(Vec::new())
    }

    fn move_key(&mut self, p1: u8, p2: u8) -> CardResult<Vec<u8>> {
        let from = Slot::from_key_ref(p2)
            .filter(|s| *s != Slot::Attestation)
            .ok_or(StatusWord::IncorrectP1P2)?;
        let to = if p1 == 0xFF {
            None
        } else {
            Some(
                Slot::from_key_ref(p1)
                    .filter(|s| *s != Slot::Attestation && *s != from)
                    .ok_or(StatusWord::IncorrectP1P2)?,
            )
        };
        self.require_mgmt()?;
        if self.persistent.key(from).is_none() {
            return Err(StatusWord::ReferenceNotFound);
        }
        if let Some(to) = to {
            if self.persistent.key(to).is_some() {
                return Err(StatusWord::IncorrectData);
            }
        }
        let entry = self
            .persistent
            .remove_key(from)
            .ok_or(StatusWord::ReferenceNotFound)?;
        if let Some(to) = to {
            self.persistent.set_key(to, entry);
        }
        self.dirty = true;
        Ok(Vec::new())
    }
}

/// Whether ADMIN DATA says the management key is PIN-protected.
pub fn management_key_protected(p: &Persistent) -> bool {
    p.objects
        .get(&ObjectId::ADMIN_DATA.0)
        .and_then(|c| AdminData::parse(c).ok())
        .is_some_and(|a| a.management_key_protected())
}
