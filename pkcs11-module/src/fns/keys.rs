//! Key management and random numbers (PKCS#11 v3.0 §5.18, §5.19).

use super::crypto::key_of;
use super::live_session;
use crate::backend::{LoginState, PrivateOp};
use crate::error::{Error, Result};
use crate::ffi::ptr::{InBytes, InMechanism, Out, OutSlice, Template};
use crate::key::{KeyAlg, PublicKey};
use crate::object::{as_bool, as_ulong, find, Kind, SecretKey};
use crate::values::MechParams;
use cryptoki_sys::*;

/// §5.18.2 C_GenerateKeyPair: on the token, where and how its backend says.
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
    let (pub_obj, priv_obj) = s
        .token
        .generate_key_pair(&lib.ctx(&s), &mech, &public, &private)?;
    let generation = s.token.generation();
    let mut table = lib.handles();
    // New key pair: handles of the previous one (if any) die.
    for obj in [pub_obj, priv_obj] {
        table.remove_token_object(generation, obj);
    }
    table.set_fresh(generation, priv_obj.key, true);
    out_public.write(table.token_handle(s.slot_id, generation, pub_obj))?;
    out_private.write(table.token_handle(s.slot_id, generation, priv_obj))
}

/// The peer's point: raw uncompressed, or wrapped in a DER OCTET STRING.
fn peer_point(alg: KeyAlg, public: &[u8]) -> Result<Vec<u8>> {
    let n = 1 + 2 * alg.size_bytes();
    if public.len() == n && public[0] == 0x04 {
        return Ok(public.to_vec());
    }
    use der::Decode;
    match der::asn1::OctetStringRef::from_der(public).map(|o| o.as_bytes()) {
        Ok(point) if point.len() == n && point[0] == 0x04 => Ok(point.to_vec()),
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
    let (key_ref, _, key) = key_of(&lib, &s, base, &[Kind::PrivateKey])?;
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
    if !key.needs_no_pin() && s.token.login_state() != LoginState::User {
        return Err(Error::UserNotLoggedIn);
    }
    let mut value = s
        .token
        .private_op(key_ref, &key, PrivateOp::KeyAgreement, &point, None)?;
    if let Some(len) = find(&template, CKA_VALUE_LEN) {
        let len = as_ulong(len).ok_or(Error::AttributeValueInvalid)? as usize;
        if len == 0 || len > value.len() {
            return Err(Error::TemplateInconsistent);
        }
        value.truncate(len);
    }
    let secret = SecretKey {
        session: s.handle,
        generation: s.token.generation(),
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
    let bytes = s.token.random(len)?;
    out.fill(&bytes)
}

/// §5.19.1 C_SeedRandom: the card's generator takes no seed.
pub fn seed_random(h: CK_SESSION_HANDLE, seed: InBytes) -> Result<()> {
    live_session(h)?;
    seed.get()?;
    Err(Error::RandomSeedNotSupported)
}
