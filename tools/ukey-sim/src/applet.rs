//! The PIV applet: one raw command APDU in, one raw response APDU out,
//! behaving like a YubiKey 5 (firmware 5.7) as far as SP 800-73-4 and the
//! Yubico extensions go — or like the card its profile names (see
//! [`crate::profile`]: the handlers consult the profile's [`Spec`]).
//! Errors are answered as status words; nothing here panics on any input
//! (fuzzed).

use crate::ca;
use crate::command::{
    new_management_key, tries_left, AuthTemplate, Command, GenerateTemplate, ImportTemplate,
    MetadataRef, ObjectWrite, PinRetries, Verify,
};
use crate::keys::PrivateKey;
use crate::profile::Spec;
use crate::state::{Chain, KeyEntry, MgmtPending, Persistent, SecretBytes, Volatile};
use apdu::piv::{
    AdminData, Algorithm, ApplicationProperties, Discovery, KeyOrigin, ManagementKey, Metadata,
    ObjectId, Pin, PinPolicy, PinRef, Slot, TouchPolicy, MANAGEMENT_KEY_REF, PIV_AID, PIV_RID,
};
use apdu::tlv::{self, Builder};
use apdu::ParsedCommand;
use iso7816::{Instruction, Status};
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

type CardResult<T> = Result<T, Status>;

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

fn sw_bytes(sw: Status) -> Vec<u8> {
    <[u8; 2]>::from(sw).to_vec()
}

/// The management key as the card holds it.
fn mgmt_key(p: &Persistent) -> CardResult<ManagementKey> {
    let alg =
        Algorithm::from_code(p.management_key.algorithm).ok_or(Status::UnspecifiedCheckingError)?;
    ManagementKey::new(alg, &p.management_key.key.0).map_err(|_| Status::UnspecifiedCheckingError)
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
            Err(_) => return sw_bytes(Status::WrongLength),
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
        let instruction = Instruction::from(cmd.ins);

        if instruction == Instruction::GetResponse && cmd.cla & 0x10 == 0 {
            if self.volatile.pending_response.is_empty() {
                return sw_bytes(Status::ConditionsOfUseNotSatisfied);
            }
            if cmd.extended && self.spec().short_get_response {
                return sw_bytes(Status::WrongLength);
            }
            let rest = std::mem::take(&mut self.volatile.pending_response);
            return self.respond(rest.to_vec(), le);
        }
        self.volatile.pending_response = Zeroizing::new(Vec::new());

        if cmd.cla & !0x10 != 0x00 {
            self.volatile.chain = None;
            return sw_bytes(Status::ClassNotSupported);
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
                return sw_bytes(Status::WrongLength);
            }
            chain.data.extend_from_slice(cmd.data);
            self.volatile.pin_fresh = fresh;
            return sw_bytes(Status::Success);
        }

        let data: Zeroizing<Vec<u8>> = match self.volatile.chain.take() {
            Some(chain) if (chain.ins, chain.p1, chain.p2) == (cmd.ins, cmd.p1, cmd.p2) => {
                let mut d = chain.data;
                d.extend_from_slice(cmd.data);
                d
            }
            _ => Zeroizing::new(cmd.data.to_vec()),
        };

        if instruction != Instruction::GeneralAuthenticate || cmd.p2 != MANAGEMENT_KEY_REF {
            self.volatile.mgmt_pending = None;
        }

        let result = if instruction != Instruction::Select && !self.volatile.selected {
            Err(Status::InstructionNotSupportedOrInvalid)
        } else {
            let whole = ParsedCommand { data: &data, ..cmd };
            Command::parse(&whole, self.spec()).and_then(|c| self.execute(c, fresh))
        };
        match result {
            Ok(out) => self.respond(out, le),
            Err(sw) => sw_bytes(sw),
        }
    }

    /// Send up to `le` bytes; keep the rest for GET RESPONSE (61xx).
    fn respond(&mut self, mut out: Vec<u8>, le: usize) -> Vec<u8> {
        let sw = if out.len() > le {
            let rest = out.split_off(le);
            let n = rest.len();
            self.volatile.pending_response = Zeroizing::new(rest);
            Status::MoreAvailable(if n >= 256 { 0 } else { n as u8 })
        } else {
            Status::Success
        };
        out.extend_from_slice(&<[u8; 2]>::from(sw));
        out
    }

    /// Act on a parsed command.
    fn execute(&mut self, command: Command<'_>, fresh: bool) -> CardResult<Vec<u8>> {
        match command {
            Command::Select => self.select(),
            Command::GetData(object) => self.get_data(object),
            Command::PutData { data } => self.put_data(data),
            Command::Verify(v) => self.verify(v),
            Command::ChangeReference {
                reference,
                old,
                new,
            } => self.change_reference(reference, old, &new),
            Command::ResetRetry { puk, new } => self.reset_retry(puk, &new),
            Command::AuthenticateManagement { algorithm, data } => self.mgmt_auth(algorithm, data),
            Command::GeneralAuthenticate {
                algorithm,
                slot,
                data,
            } => self.general_authenticate(algorithm, slot, data, fresh),
            Command::Generate { slot, template } => self.generate(slot, template),
            Command::GetChallenge { len } => Ok(Self::get_challenge(len)),
            Command::GetVersion => Ok(self.persistent.version.to_vec()),
            Command::GetSerial => Ok(self.persistent.serial.to_be_bytes().to_vec()),
            Command::GetMetadata(reference) => self.metadata(reference),
            Command::MetadataWithheld => Ok(Vec::new()),
            Command::SetManagementKey { touch, data } => self.set_mgmt_key(touch, data),
            Command::SetPinRetries(retries) => self.set_pin_retries(retries),
            Command::Reset => self.reset(),
            Command::ImportKey {
                algorithm,
                slot,
                data,
            } => self.import_key(algorithm, slot, data),
            Command::MoveKey { from, to } => self.move_key(from, Some(to)),
            Command::DeleteKey(slot) => self.move_key(slot, None),
            Command::Attest(slot) => ca::attest(&self.persistent, slot),
        }
    }

    fn select(&mut self) -> CardResult<Vec<u8>> {
        self.volatile.selected = true;
        Ok(ApplicationProperties {
            aid: PIV_AID[5..].to_vec(),
            authority: Some(PIV_RID.to_vec()),
            label: None,
            algorithms: Vec::new(),
        }
        .encode())
    }

    fn require_mgmt(&self) -> CardResult<()> {
        if self.volatile.mgmt_authenticated {
            Ok(())
        } else {
            Err(Status::SecurityStatusNotSatisfied)
        }
    }

    fn get_data(&mut self, obj: ObjectId) -> CardResult<Vec<u8>> {
        if obj == ObjectId::DISCOVERY {
            return Ok(tlv::encode(0x7Eu32, &Discovery::default().encode()));
        }
        if PIN_PROTECTED.contains(&obj) && !self.volatile.pin_verified {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        match self.persistent.objects.get(&obj.0) {
            Some(content) => Ok(tlv::encode(0x53u32, content)),
            None => Err(Status::NotFound),
        }
    }

    fn put_data(&mut self, data: &[u8]) -> CardResult<Vec<u8>> {
        self.require_mgmt()?;
        let ObjectWrite { object, content } = ObjectWrite::parse(data, self.spec())?;
        if content.is_empty() {
            self.persistent.objects.remove(&object.0);
        } else {
            self.persistent.objects.insert(object.0, content.to_vec());
        }
        self.dirty = true;
        Ok(Vec::new())
    }

    fn verify(&mut self, v: Verify<'_>) -> CardResult<Vec<u8>> {
        let pin = &mut self.persistent.pin;
        let given = match v {
            Verify::Logout => {
                self.volatile.pin_verified = false;
                return Ok(Vec::new());
            }
            Verify::Status => {
                return if self.volatile.pin_verified {
                    Ok(Vec::new())
                } else if pin.tries_left == 0 {
                    Err(Status::OperationBlocked)
                } else {
                    Err(tries_left(pin.tries_left))
                };
            }
            Verify::Pin(given) => given,
        };
        if pin.tries_left == 0 {
            return Err(Status::OperationBlocked);
        }
        if bool::from(given.ct_eq(&pin.value.0[..])) {
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
            Err(tries_left(pin.tries_left))
        }
    }

    fn change_reference(
        &mut self,
        reference: PinRef,
        old: &[u8; 8],
        new: &Pin,
    ) -> CardResult<Vec<u8>> {
        let is_pin = reference == PinRef::Pin;
        let secret = match reference {
            PinRef::Pin => &mut self.persistent.pin,
            PinRef::Puk => &mut self.persistent.puk,
        };
        if secret.tries_left == 0 {
            return Err(Status::OperationBlocked);
        }
        if !bool::from(old.ct_eq(&secret.value.0[..])) {
            secret.tries_left -= 1;
            self.dirty = true;
            if is_pin {
                self.volatile.pin_verified = false;
            }
            return Err(tries_left(secret.tries_left));
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

    fn reset_retry(&mut self, puk: &[u8; 8], new: &Pin) -> CardResult<Vec<u8>> {
        let p = &mut self.persistent;
        if p.puk.tries_left == 0 {
            return Err(Status::OperationBlocked);
        }
        if !bool::from(puk.ct_eq(&p.puk.value.0[..])) {
            p.puk.tries_left -= 1;
            self.dirty = true;
            return Err(tries_left(p.puk.tries_left));
        }
        p.puk.tries_left = p.puk.tries_total;
        p.pin.value = SecretBytes::new(new.padded());
        p.pin.tries_left = p.pin.tries_total;
        p.pin.is_default = false;
        self.dirty = true;
        Ok(Vec::new())
    }

    fn mgmt_auth(&mut self, algorithm: Algorithm, data: &[u8]) -> CardResult<Vec<u8>> {
        let key = mgmt_key(&self.persistent)?;
        if algorithm != key.algorithm() {
            return Err(Status::IncorrectP1OrP2Parameter);
        }
        let block = key
            .algorithm()
            .block_len()
            .ok_or(Status::UnspecifiedCheckingError)?;
        let t = AuthTemplate::parse(data)?;
        let random = || {
            let mut b = Zeroizing::new(vec![0u8; block]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
            b
        };
        let encrypt = |block: &[u8]| {
            key.encrypt_block(block)
                .map_err(|_| Status::UnspecifiedCheckingError)
        };
        let pending = self.volatile.mgmt_pending.take();
        self.volatile.mgmt_authenticated = false;
        match (t.witness, t.challenge, t.response) {
            // Step 1 of mutual authentication: send an encrypted witness.
            (Some([]), None, _) => {
                let witness = random();
                let enc = encrypt(&witness)?;
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
                        let enc = encrypt(challenge)?;
                        Ok(Builder::new()
                            .nested(0x7Cu32, |b| b.add(0x82u32, &enc))
                            .build())
                    }
                    _ => Err(Status::SecurityStatusNotSatisfied),
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
                    let expected = Zeroizing::new(encrypt(&c)?);
                    if bool::from(resp.ct_eq(&expected[..])) {
                        self.volatile.mgmt_authenticated = true;
                        Ok(Vec::new())
                    } else {
                        Err(Status::SecurityStatusNotSatisfied)
                    }
                }
                _ => Err(Status::SecurityStatusNotSatisfied),
            },
            _ => Err(Status::IncorrectDataParameter),
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
        algorithm: Option<Algorithm>,
        slot: Slot,
        data: &[u8],
        fresh: bool,
    ) -> CardResult<Vec<u8>> {
        let entry = self
            .persistent
            .key(slot)
            .ok_or(Status::KeyReferenceNotFound)?;
        if algorithm.map(Algorithm::code) != Some(entry.algorithm) {
            return Err(Status::IncorrectDataParameter);
        }
        let t = AuthTemplate::parse(data)?;
        if t.response != Some(&[]) {
            return Err(Status::IncorrectDataParameter);
        }
        let mut policy = entry.pin_policy();
        if policy == PinPolicy::Default {
            policy = slot.default_pin_policy();
        }
        if !self.pin_policy_ok(policy, fresh) {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        let key = self
            .keys
            .get(slot, entry)
            .ok_or(Status::UnspecifiedCheckingError)?;
        let out = match (t.challenge, t.exponentiation) {
            (Some(input), None) => Zeroizing::new(key.sign_raw(input)?),
            (None, Some(point)) => key.ecdh(point)?,
            _ => return Err(Status::IncorrectDataParameter),
        };
        Ok(Builder::new()
            .nested(0x7Cu32, |b| b.add(0x82u32, &out))
            .build())
    }

    fn generate(&mut self, slot: Slot, template: &[u8]) -> CardResult<Vec<u8>> {
        self.require_mgmt()?;
        let t = GenerateTemplate::parse(template, self.spec())?;
        let key = PrivateKey::generate(t.algorithm)?;
        let public = key.public();
        let pin = if t.pin == PinPolicy::Default {
            slot.default_pin_policy()
        } else {
            t.pin
        };
        let touch = if t.touch == TouchPolicy::Default {
            TouchPolicy::Never
        } else {
            t.touch
        };
        self.persistent
            .set_key(slot, KeyEntry::new(&key, pin, touch, KeyOrigin::Generated));
        self.dirty = true;
        Ok(tlv::encode(0x7F49u32, &public.encode_content()))
    }

    fn get_challenge(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        b
    }

    fn metadata(&mut self, reference: MetadataRef) -> CardResult<Vec<u8>> {
        let p = &self.persistent;
        let md = match reference {
            MetadataRef::Pin(r) => {
                let s = match r {
                    PinRef::Pin => &p.pin,
                    PinRef::Puk => &p.puk,
                };
                Metadata {
                    algorithm: None,
                    is_default: Some(s.is_default),
                    retries: Some((s.tries_total, s.tries_left)),
                    ..Metadata::default()
                }
            }
            MetadataRef::ManagementKey => Metadata {
                algorithm: Algorithm::from_code(p.management_key.algorithm),
                policy: Some((
                    PinPolicy::Never,
                    TouchPolicy::from_code(p.management_key.touch).unwrap_or(TouchPolicy::Never),
                )),
                is_default: Some(p.management_key.is_default),
                ..Metadata::default()
            },
            MetadataRef::Key(slot) => {
                let e = p.key(slot).ok_or(Status::KeyReferenceNotFound)?;
                let key = self
                    .keys
                    .get(slot, e)
                    .ok_or(Status::UnspecifiedCheckingError)?;
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

    fn set_mgmt_key(&mut self, touch: TouchPolicy, data: &[u8]) -> CardResult<Vec<u8>> {
        self.require_mgmt()?;
        let mk = new_management_key(data, self.spec())?;
        self.persistent.management_key = crate::state::MgmtKey {
            algorithm: mk.algorithm().code(),
            key: SecretBytes::new(mk.as_bytes()),
            touch: touch.code(),
            is_default: mk.as_bytes() == apdu::piv::DEFAULT_MANAGEMENT_KEY,
        };
        self.dirty = true;
        Ok(Vec::new())
    }

    fn set_pin_retries(&mut self, retries: Option<PinRetries>) -> CardResult<Vec<u8>> {
        self.require_mgmt()?;
        if !self.volatile.pin_verified {
            return Err(Status::SecurityStatusNotSatisfied);
        }
        let PinRetries { pin, puk } = retries.ok_or(Status::IncorrectP1OrP2Parameter)?;
        let fresh = Persistent::factory(0);
        let p = &mut self.persistent;
        p.pin = fresh.pin.clone();
        p.puk = fresh.puk.clone();
        (p.pin.tries_total, p.pin.tries_left) = (pin.get(), pin.get());
        (p.puk.tries_total, p.puk.tries_left) = (puk.get(), puk.get());
        self.volatile.pin_verified = false;
        self.dirty = true;
        Ok(Vec::new())
    }

    fn reset(&mut self) -> CardResult<Vec<u8>> {
        if self.persistent.pin.tries_left != 0 || self.persistent.puk.tries_left != 0 {
            return Err(Status::ConditionsOfUseNotSatisfied);
        }
        self.persistent.reset_application();
        let selected = self.volatile.selected;
        self.volatile = Volatile::default();
        self.volatile.selected = selected;
        self.dirty = true;
        Ok(Vec::new())
    }

    fn import_key(&mut self, alg: Algorithm, slot: Slot, data: &[u8]) -> CardResult<Vec<u8>> {
        self.require_mgmt()?;
        let t = ImportTemplate::parse(data)?;
        let key = PrivateKey::from_import(alg, &t.fields)?;
        let pin = if t.pin == PinPolicy::Default {
            slot.default_pin_policy()
        } else {
            t.pin
        };
        let touch = if t.touch == TouchPolicy::Default {
            TouchPolicy::Never
        } else {
            t.touch
        };
        self.persistent
            .set_key(slot, KeyEntry::new(&key, pin, touch, KeyOrigin::Imported));
        self.dirty = true;
        Ok(Vec::new())
    }

    /// MOVE KEY from `from` to `to`, or delete the key in `from` (`None`).
    fn move_key(&mut self, from: Slot, to: Option<Slot>) -> CardResult<Vec<u8>> {
        self.require_mgmt()?;
        if self.persistent.key(from).is_none() {
            return Err(Status::KeyReferenceNotFound);
        }
        if let Some(to) = to {
            if self.persistent.key(to).is_some() {
                return Err(Status::IncorrectDataParameter);
            }
        }
        let entry = self
            .persistent
            .remove_key(from)
            .ok_or(Status::KeyReferenceNotFound)?;
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
