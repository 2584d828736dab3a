//! Key management and random numbers (PKCS#11 v3.0 §5.18, §5.19).

use super::crypto::key_of;
use super::live_session;
use super::naming;
use crate::error::{Error, Result};
use crate::ffi::ptr::{InBytes, InMechanism, Out, OutSlice, Template};
use crate::keyinfo::{P256_PARAMS, P384_PARAMS};
use crate::names;
use crate::object::{as_bool, as_ulong, find, Kind, SecretKey, TokenObject};
use crate::token::Login;
use crate::values::{Attribute, MechParams};
use apdu::piv::{Algorithm, PinPolicy, PublicKey, Slot, TouchPolicy};
use cryptoki_sys::*;

/// Vendor attribute: `CK_TRUE` in the private-key template of
/// C_GenerateKeyPair allows replacing a key that still has its certificate.
pub const CKA_UKEY_OVERWRITE: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0001;
/// Vendor attribute: PIN policy of a generated key (YubiKey values 1–3).
pub const CKA_UKEY_PIN_POLICY: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0002;
/// Vendor attribute: touch policy of a generated key (YubiKey values 1–3).
pub const CKA_UKEY_TOUCH_POLICY: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0003;
/// Vendor attribute for C_CreateObject of a certificate, for renewal
/// promotion: the CKA_ID of the slot whose key the certificate certifies,
/// a key about to be moved into the certificate's slot (CKA_ID). The
/// certificate must match that key; the key now in the target slot is not
/// consulted (it is the one being replaced).
pub const CKA_UKEY_PROMOTE_FROM: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0004;

/// The curve CKA_EC_PARAMS names: a DER OID, or a curve name as a DER
/// PrintableString or bare text (PKCS#11 3.0 allows names).
fn curve(params: &[u8]) -> Result<Algorithm> {
    if params == P256_PARAMS {
        return Ok(Algorithm::EccP256);
    }
    if params == P384_PARAMS {
        return Ok(Algorithm::EccP384);
    }
    let text = match params {
        [0x13, n, rest @ ..] if usize::from(*n) == rest.len() => rest,
        other => other,
    };
    match std::str::from_utf8(text)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Ok("prime256v1" | "secp256r1" | "p-256" | "p256" | "nistp256") => Ok(Algorithm::EccP256),
        Ok("secp384r1" | "p-384" | "p384" | "nistp384") => Ok(Algorithm::EccP384),
        _ => Err(Error::CurveNotSupported),
    }
}

pub(crate) fn id_slot(a: &Attribute) -> Result<Slot> {
    match a.value[..] {
        [id] => Slot::from_cka_id(id)
            .filter(|s| *s != Slot::Attestation)
            .ok_or(Error::AttributeValueInvalid),
        _ => Err(Error::AttributeValueInvalid),
    }
}

fn policy<T>(
    template: &[Attribute],
    kind: CK_ATTRIBUTE_TYPE,
    from: fn(u8) -> Option<T>,
    default: T,
) -> Result<T> {
    match find(template, kind) {
        None => Ok(default),
        Some(a) => as_ulong(a)
            .and_then(|v| u8::try_from(v).ok())
            .and_then(from)
            .ok_or(Error::AttributeValueInvalid),
    }
}

/// §5.18.2 C_GenerateKeyPair: on the card, in the slot a CKA_ID naming a
/// PIV slot names, else (no CKA_ID, or an application's own) in the first
/// free retired slot. Never over a key unless the template says so
/// (CKA_UKEY_OVERWRITE). The templates' CKA_LABELs and an application's
/// CKA_ID are kept on the card ([`crate::names`]); if they cannot be, the
/// new key is deleted again (on cards that can) and the call fails.
#[allow(clippy::too_many_arguments)]
pub fn generate_key_pair(
    h: CK_SESSION_HANDLE,
    mech: InMechanism,
    public: Template,
    private: Template,
    out_public: Out<CK_OBJECT_HANDLE>,
    out_private: Out<CK_OBJECT_HANDLE>,
) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let mech = mech.read()?;
    let (public, private) = (public.read()?, private.read()?);
    if out_public.is_null() || out_private.is_null() {
        return Err(Error::ArgumentsBad);
    }
    if mech.params != MechParams::None {
        return Err(Error::MechanismParamInvalid);
    }
    // A card holds no session objects, and CKA_TOKEN defaults to false: a
    // template without CKA_TOKEN = true asks for what the token cannot do
    // (v3.0 §4.1.1: inconsistent with the token's requirements).
    for t in [&public, &private] {
        match find(t, CKA_TOKEN).map(as_bool) {
            Some(Some(true)) => {}
            Some(None) => return Err(Error::AttributeValueInvalid),
            _ => return Err(Error::TemplateInconsistent),
        }
    }
    let alg = match mech.kind {
        CKM_RSA_PKCS_KEY_PAIR_GEN => {
            let bits = match find(&public, CKA_MODULUS_BITS) {
                Some(a) => as_ulong(a).ok_or(Error::AttributeValueInvalid)? as usize,
                None => 2048,
            };
            if let Some(e) = find(&public, CKA_PUBLIC_EXPONENT) {
                let e: Vec<u8> = e.value.iter().copied().skip_while(|b| *b == 0).collect();
                if e != [0x01, 0x00, 0x01] {
                    return Err(Error::TemplateInconsistent);
                }
            }
            Algorithm::rsa_from_bits(bits).ok_or(Error::KeySizeRange)?
        }
        CKM_EC_KEY_PAIR_GEN => curve(
            &find(&public, CKA_EC_PARAMS)
                .ok_or(Error::TemplateIncomplete)?
                .value,
        )?,
        _ => return Err(Error::MechanismInvalid),
    };
    let id = match (find(&public, CKA_ID), find(&private, CKA_ID)) {
        (Some(a), Some(b)) if a.value != b.value => return Err(Error::TemplateInconsistent),
        (_, Some(a)) | (Some(a), None) => Some(a.value.to_vec()),
        (None, None) => None,
    };
    let named_slot = match &id {
        Some(v) if names::names_a_slot(v) => Some(id_slot(find_id(&public, &private)?)?),
        Some(v) => {
            names::check_id(v)?;
            None
        }
        None => None,
    };
    let private_label = find(&private, CKA_LABEL).map(|a| a.value.to_vec());
    let public_label = find(&public, CKA_LABEL).map(|a| a.value.to_vec());
    for l in private_label.iter().chain(public_label.iter()) {
        names::check_label(l)?;
    }
    let overwrite = find(&private, CKA_UKEY_OVERWRITE)
        .and_then(as_bool)
        .unwrap_or(false);
    let pin = policy(
        &private,
        CKA_UKEY_PIN_POLICY,
        PinPolicy::from_code,
        PinPolicy::Default,
    )?;
    let touch = policy(
        &private,
        CKA_UKEY_TOUCH_POLICY,
        TouchPolicy::from_code,
        TouchPolicy::Default,
    )?;
    if !s.rw {
        return Err(Error::SessionReadOnly);
    }
    let mut st = s.token.lock();
    if st.login == Login::None {
        return Err(Error::UserNotLoggedIn);
    }
    let info = s.token.info(&mut st)?;
    if alg.is_rsa() && alg.bits() > info.max_rsa_bits() {
        return Err(Error::KeySizeRange);
    }
    let slot = match named_slot {
        Some(slot) => {
            let found = s.token.lookup(&mut st, Some(&[slot]), true, true)?;
            if found.first().is_some_and(|(_, _, key)| key.is_some()) && !overwrite {
                tracing::warn!(%slot, "C_GenerateKeyPair refused: the slot holds a key");
                return Err(Error::ActionProhibited(
                    "the slot holds a key; delete it first or set CKA_UKEY_OVERWRITE",
                ));
            }
            slot
        }
        None => {
            let retired: Vec<Slot> = Slot::retired().collect();
            let used = s.token.lookup(&mut st, Some(&retired), true, true)?;
            retired
                .into_iter()
                .find(|r| !used.iter().any(|(u, _, _)| u == r))
                .ok_or(Error::DeviceMemory)?
        }
    };
    let custom_id = id.filter(|v| !names::names_a_slot(v));
    let naming = move |n: &mut names::Names| {
        n.update(slot, |e| {
            e.id = custom_id.clone();
            e.private_label = private_label.as_deref().and_then(|l| {
                naming::label_to_store(slot, Kind::PrivateKey, l)
                    .ok()
                    .flatten()
            });
            e.public_label = public_label.as_deref().and_then(|l| {
                naming::label_to_store(slot, Kind::PublicKey, l)
                    .ok()
                    .flatten()
            });
        })
    };
    // Room for the names: checked before the key is made.
    let mut preview = s.token.names(&mut st)?;
    naming(&mut preview);
    if preview.encode().len() > names::MAX_NAMES_LEN {
        return Err(Error::DeviceMemory);
    }
    let key = s.token.generate(&mut st, slot, alg, pin, touch)?;
    if let Err(e) = s.token.update_names(&mut st, &naming) {
        // No key without the names its application asked for.
        tracing::warn!(%slot, "storing the new key's names failed ({e}): deleting the key");
        if let Err(d) = s.token.delete_key(&mut st, slot) {
            tracing::warn!(%slot, "the new key could not be deleted: {d}");
        }
        return Err(e);
    }
    drop(st);
    let mut table = lib.handles();
    // New key pair: handles of the previous one (if any) die.
    for kind in [Kind::PublicKey, Kind::PrivateKey] {
        table.remove_token_object(s.token.generation, TokenObject { slot, kind });
    }
    table.set_fresh(s.token.generation, slot, true);
    tracing::info!(%slot, alg = %key.alg, "generated key pair");
    out_public.write(table.token_handle(
        s.slot_id,
        s.token.generation,
        TokenObject {
            slot,
            kind: Kind::PublicKey,
        },
    ))?;
    out_private.write(table.token_handle(
        s.slot_id,
        s.token.generation,
        TokenObject {
            slot,
            kind: Kind::PrivateKey,
        },
    ))
}

/// The CKA_ID attribute of a key pair's templates (private first).
fn find_id<'a>(public: &'a [Attribute], private: &'a [Attribute]) -> Result<&'a Attribute> {
    find(private, CKA_ID)
        .or_else(|| find(public, CKA_ID))
        .ok_or(Error::TemplateIncomplete)
}

/// The peer's point: raw uncompressed, or wrapped in a DER OCTET STRING.
fn peer_point(alg: Algorithm, public: &[u8]) -> Result<Vec<u8>> {
    let n = 1 + 2 * alg.size_bytes();
    if public.len() == n && public[0] == 0x04 {
        return Ok(public.to_vec());
    }
    match apdu::tlv::parse_single(public) {
        Ok(t) if t.tag == apdu::Tag(0x04) && t.value.len() == n && t.value[0] == 0x04 => {
            Ok(t.value.to_vec())
        }
        _ => Err(Error::MechanismParamInvalid),
    }
}

/// §5.18.5 C_DeriveKey: ECDH (null KDF) on the card; the shared secret
/// becomes a session secret-key object.
pub fn derive_key(
    h: CK_SESSION_HANDLE,
    mech: InMechanism,
    base: CK_OBJECT_HANDLE,
    template: Template,
    out: Out<CK_OBJECT_HANDLE>,
) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let mech = mech.read()?;
    let template = template.read()?;
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let (slot, _, key) = key_of(&lib, &s, base, &[Kind::PrivateKey])?;
    if mech.kind != CKM_ECDH1_DERIVE {
        return Err(Error::MechanismInvalid);
    }
    if !key.alg.is_ec() {
        return Err(Error::KeyTypeInconsistent);
    }
    let MechParams::Ecdh {
        kdf,
        shared,
        public,
    } = &mech.params
    else {
        return Err(Error::MechanismParamInvalid);
    };
    if *kdf != CKD_NULL || !shared.is_empty() {
        return Err(Error::MechanismParamInvalid);
    }
    let point = peer_point(key.alg, public)?;
    if !matches!(key.public, PublicKey::Ec { .. }) {
        return Err(Error::KeyTypeInconsistent);
    }
    if find(&template, CKA_TOKEN).is_some_and(|a| as_bool(a) == Some(true)) {
        return Err(Error::TemplateInconsistent);
    }
    if let Some(c) = find(&template, CKA_CLASS) {
        if as_ulong(c) != Some(CKO_SECRET_KEY) {
            return Err(Error::TemplateInconsistent);
        }
    }
    let key_type = find(&template, CKA_KEY_TYPE)
        .map(|a| as_ulong(a).ok_or(Error::AttributeValueInvalid))
        .transpose()?
        .unwrap_or(CKK_GENERIC_SECRET);
    if key.always_authenticate() {
        return Err(Error::UserNotLoggedIn);
    }
    let mut value = {
        let mut st = s.token.lock();
        if !key.needs_no_pin() && st.login != Login::User {
            return Err(Error::UserNotLoggedIn);
        }
        s.token.private_op(
            &mut st,
            slot,
            &key,
            crate::token::PrivateOp::KeyAgreement,
            &point,
            None,
        )?
    };
    if let Some(len) = find(&template, CKA_VALUE_LEN) {
        let len = as_ulong(len).ok_or(Error::AttributeValueInvalid)? as usize;
        if len == 0 || len > value.len() {
            return Err(Error::TemplateInconsistent);
        }
        value.truncate(len);
    }
    let secret = SecretKey {
        session: s.handle,
        generation: s.token.generation,
        value,
        key_type,
        sensitive: find(&template, CKA_SENSITIVE)
            .and_then(as_bool)
            .unwrap_or(false),
        extractable: find(&template, CKA_EXTRACTABLE)
            .and_then(as_bool)
            .unwrap_or(true),
        label: find(&template, CKA_LABEL)
            .map(|a| a.value.to_vec())
            .unwrap_or_default(),
        id: find(&template, CKA_ID)
            .map(|a| a.value.to_vec())
            .unwrap_or_default(),
    };
    let handle = lib.handles().add_secret(secret);
    out.write(handle)
}

/// Most random bytes given in one call (the card makes them 256 bytes per
/// APDU); a larger request is refused before anything is allocated.
const MAX_RANDOM_LEN: usize = 1 << 20;

/// §5.19.2 C_GenerateRandom: GET CHALLENGE where the card offers it.
pub fn generate_random(h: CK_SESSION_HANDLE, out: OutSlice) -> Result<()> {
    let (_, s) = live_session(h)?;
    let len = out.size(MAX_RANDOM_LEN)?;
    if len == 0 {
        return Ok(());
    }
    let bytes = {
        let mut st = s.token.lock();
        s.token.random(&mut st, len)?
    };
    out.fill(&bytes)
}

/// §5.19.1 C_SeedRandom: the card's generator takes no seed.
pub fn seed_random(h: CK_SESSION_HANDLE, seed: InBytes) -> Result<()> {
    live_session(h)?;
    seed.get()?;
    Err(Error::RandomSeedNotSupported)
}
