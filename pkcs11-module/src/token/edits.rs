//! Changes to a PIV card's objects as PKCS#11 asks for them: names, key
//! moves, certificates, deletions under the destroy policy, key generation
//! and the renewal data object. Every change is checked against the card
//! again in the write's own transaction (`guard.rs`).

use super::convert::key_ref;
use super::names_object as names;
use super::naming::{self, CKA_UKEY_DESTROY};
use super::state::{Login, Token};
use super::vendor::{RENEWAL_APPLICATION, RENEWAL_KEY};
use crate::backend::{Ctx, ObjectId};
use crate::error::{Error, Result};
use crate::keyinfo::{P256_PARAMS, P384_PARAMS};
use crate::object::{as_bool, as_ulong, find, Handles, Kind};
use crate::values::{Attribute, MechParams, Mechanism};
use apdu::piv::{Algorithm, PinPolicy, Slot, TouchPolicy};
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

/// The CKA_ID attribute of a key pair's templates (private first).
fn find_id<'a>(public: &'a [Attribute], private: &'a [Attribute]) -> Result<&'a Attribute> {
    find(private, CKA_ID)
        .or_else(|| find(public, CKA_ID))
        .ok_or(Error::TemplateIncomplete)
}

pub(super) fn id_slot(a: &Attribute) -> Result<Slot> {
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

impl Token {
    /// C_SetAttributeValue on a PIV card's objects:
    /// * CKA_LABEL of any key or certificate, and CKA_ID of any of them with
    ///   a value that names no PIV slot: the application's name, kept on the
    ///   card ([`crate::token::names_object`]); CKA_ID is one per slot (the key pair and
    ///   its certificate), so setting it on one object renames the slot's
    ///   three. The slot's own OpenSC ID (01..04, 05..24) clears the custom ID.
    /// * CKA_ID of a private key naming another PIV slot, on cards with MOVE
    ///   KEY (YubiKey 5.7): the key moves to that slot, which must hold no
    ///   key (certificates stay where they are); the handle follows the key.
    ///   On a public key or certificate another slot's ID is
    ///   CKR_ATTRIBUTE_VALUE_INVALID.
    /// * [`CKA_UKEY_DESTROY`] = CK_TRUE on a key or certificate: this
    ///   application may destroy it (see `naming.rs`); nothing is written.
    /// * CKA_VALUE of the renewal data object: replaced in one PUT DATA.
    pub(super) fn edit_attributes(
        &self,
        ctx: &Ctx<'_>,
        handle: CK_OBJECT_HANDLE,
        obj: ObjectId,
        attrs: &[Attribute],
    ) -> Result<()> {
        let last = |kind| attrs.iter().rev().find(|a| a.kind == kind);
        let only = |kinds: &[CK_ATTRIBUTE_TYPE]| attrs.iter().all(|a| kinds.contains(&a.kind));
        let generation = self.generation;
        let object = Token::slot_object(obj);
        match object {
            None if obj.kind == Kind::Data && only(&[CKA_VALUE]) => {
                let value = last(CKA_VALUE).ok_or(Error::TemplateIncomplete)?;
                let mut st = self.lock();
                require_rw_login(ctx.rw, st.login)?;
                let r = self.write_renewal(&mut st, &value.value, false);
                drop(st);
                forget_if_changed(ctx, &r, |h| h.remove_token_object(generation, obj));
                r
            }
            Some(object) if object.kind != Kind::PublicKey && only(&[CKA_UKEY_DESTROY]) => {
                let a = last(CKA_UKEY_DESTROY).ok_or(Error::TemplateIncomplete)?;
                match as_bool(a) {
                    Some(true) => ctx.handles().mark_deliberate(handle),
                    Some(false) => ctx.handles().remove_deliberate(handle),
                    None => return Err(Error::AttributeValueInvalid),
                }
                Ok(())
            }
            Some(object)
                if object.kind == Kind::PrivateKey
                    && only(&[CKA_ID])
                    && names::names_a_slot(
                        &last(CKA_ID).ok_or(Error::TemplateIncomplete)?.value,
                    )
                    && last(CKA_ID).is_some_and(|a| *a.value != [object.slot.cka_id()]) =>
            {
                let id = last(CKA_ID).ok_or(Error::TemplateIncomplete)?;
                let to = id_slot(id)?;
                let mut st = self.lock();
                require_rw_login(ctx.rw, st.login)?;
                if !self.can_move_keys(&mut st)? {
                    return Err(Error::ActionProhibited("the card cannot move keys"));
                }
                if self.key(&mut st, to)?.is_some() {
                    return Err(Error::ActionProhibited(
                        "the slot that ID names holds a key",
                    ));
                }
                let r = self.move_key(&mut st, to, object.slot);
                if r.is_err() {
                    drop(st);
                    forget_if_changed(ctx, &r, |h| h.remove_token_object(generation, obj));
                    return r;
                }
                // The key's labels go with it; CKA_IDs stay with the slots.
                let from = object.slot;
                let moved = self.update_names(&mut st, &|n| {
                    let (pl, ul) = n
                        .get(from)
                        .map(|f| (f.private_label.clone(), f.public_label.clone()))
                        .unwrap_or_default();
                    n.update(from, |f| {
                        f.private_label = None;
                        f.public_label = None;
                    });
                    n.update(to, |t| {
                        t.private_label = pl.clone();
                        t.public_label = ul.clone();
                    });
                });
                drop(st);
                tracing::info!(%from, %to, "moved private key");
                let mut table = ctx.handles();
                table.set_fresh(generation, key_ref(from), false);
                table.retarget(
                    generation,
                    obj,
                    ObjectId {
                        key: key_ref(to),
                        kind: Kind::PrivateKey,
                    },
                );
                moved
            }
            Some(object) if only(&[CKA_ID, CKA_LABEL]) => {
                let slot = object.slot;
                let id = last(CKA_ID)
                    .map(|a| naming::id_to_store(slot, &a.value))
                    .transpose()?;
                let label = last(CKA_LABEL)
                    .map(|a| naming::label_to_store(slot, object.kind, &a.value))
                    .transpose()?;
                let mut st = self.lock();
                require_rw_login(ctx.rw, st.login)?;
                self.update_names(&mut st, &|n| {
                    n.update(slot, |e| {
                        if let Some(id) = &id {
                            e.id = id.clone();
                        }
                        if let Some(label) = &label {
                            e.set_label(object.kind, label.clone());
                        }
                    })
                })?;
                drop(st);
                tracing::info!(
                    %slot,
                    kind = ?object.kind,
                    id = ?id.as_ref().map(|i| i.as_ref().map(hex::encode)),
                    label = ?label.as_ref().map(|l| l.as_ref().map(|l| String::from_utf8_lossy(l).into_owned())),
                    "names set"
                );
                Ok(())
            }
            _ => Err(Error::AttributeReadOnly),
        }
    }

    /// C_CreateObject of the renewal data object (CKO_DATA with CKA_APPLICATION
    /// "ukey renewal"): its CKA_VALUE goes into object 5FFF10.
    fn create_renewal(&self, ctx: &Ctx<'_>, template: &[Attribute]) -> Result<ObjectId> {
        let name = RENEWAL_APPLICATION.as_bytes();
        let app = find(template, CKA_APPLICATION).ok_or(Error::TemplateIncomplete)?;
        if *app.value != *name {
            return Err(Error::AttributeValueInvalid);
        }
        let value = find(template, CKA_VALUE).ok_or(Error::TemplateIncomplete)?;
        for a in template {
            let consistent = match a.kind {
                CKA_CLASS | CKA_APPLICATION | CKA_VALUE => true,
                CKA_TOKEN | CKA_MODIFIABLE | CKA_DESTROYABLE => as_bool(a) == Some(true),
                CKA_PRIVATE | CKA_COPYABLE => as_bool(a) == Some(false),
                CKA_LABEL => *a.value == *name,
                CKA_OBJECT_ID => a.value.is_empty(),
                _ => return Err(Error::AttributeTypeInvalid),
            };
            if !consistent {
                return Err(Error::TemplateInconsistent);
            }
        }
        let mut st = self.lock();
        require_rw_login(ctx.rw, st.login)?;
        self.write_renewal(&mut st, &value.value, true)?;
        Ok(ObjectId {
            key: RENEWAL_KEY,
            kind: Kind::Data,
        })
    }

    /// C_CreateObject: an X.509 certificate goes into the container of
    /// the slot whose key it certifies (found by its public key), whatever
    /// CKA_ID the template carries; a certificate for no key on the token is
    /// CKR_TEMPLATE_INCONSISTENT (PKCS#11 3.0 §5.7.1: attributes that cannot
    /// go together on this token). The template's CKA_LABEL becomes the
    /// certificate's label and a CKA_ID that names no PIV slot the slot's ID
    /// ([`crate::token::names_object`]). With the vendor attribute CKA_UKEY_PROMOTE_FROM the
    /// certificate goes into the slot its CKA_ID names and must certify the key
    /// in the slot that attribute names (a key about to be moved in: renewal).
    /// CKO_DATA: the renewal data object.
    pub(super) fn create(&self, ctx: &Ctx<'_>, template: &[Attribute]) -> Result<ObjectId> {
        let class = find(template, CKA_CLASS).ok_or(Error::TemplateIncomplete)?;
        if as_ulong(class) == Some(CKO_DATA) {
            return self.create_renewal(ctx, template);
        }
        if as_ulong(class) != Some(CKO_CERTIFICATE) {
            return Err(Error::AttributeValueInvalid);
        }
        if let Some(t) = find(template, CKA_CERTIFICATE_TYPE) {
            if as_ulong(t) != Some(CKC_X_509) {
                return Err(Error::AttributeValueInvalid);
            }
        }
        if let Some(t) = find(template, CKA_TOKEN) {
            if as_bool(t) != Some(true) {
                return Err(Error::TemplateInconsistent);
            }
        }
        let der = find(template, CKA_VALUE)
            .ok_or(Error::TemplateIncomplete)?
            .value
            .to_vec();
        let cert =
            crate::keyinfo::CertInfo::parse(&der).map_err(|_| Error::AttributeValueInvalid)?;
        let mut st = self.lock();
        require_rw_login(ctx.rw, st.login)?;
        let (slot, key_slot) = match find(template, CKA_UKEY_PROMOTE_FROM) {
            Some(a) => {
                let id = find(template, CKA_ID).ok_or(Error::TemplateIncomplete)?;
                (id_slot(id)?, id_slot(a)?)
            }
            None => {
                let found = self.lookup(&mut st, None, false, true)?;
                let slot = found
                    .into_iter()
                    .find(|(_, _, k)| k.as_ref().is_some_and(|k| k.public == cert.public))
                    .map(|(slot, _, _)| slot);
                let Some(slot) = slot else {
                    tracing::warn!(
                        "C_CreateObject: the certificate certifies no key on the token: refused"
                    );
                    return Err(Error::TemplateInconsistent);
                };
                (slot, slot)
            }
        };
        let Some(key) = self.key(&mut st, key_slot)? else {
            tracing::warn!(
                slot = %key_slot,
                "the certificate is refused: the token shows no key in that slot"
            );
            return Err(Error::TemplateInconsistent);
        };
        if key.public != cert.public {
            tracing::warn!(
                slot = %key_slot,
                "the certificate is refused: it is not for the key in that slot"
            );
            return Err(Error::TemplateInconsistent);
        }
        let id = match find(template, CKA_ID) {
            Some(a) if !names::names_a_slot(&a.value) => Some(naming::id_to_store(slot, &a.value)?),
            _ => None,
        };
        let label = find(template, CKA_LABEL)
            .map(|a| naming::label_to_store(slot, Kind::Certificate, &a.value))
            .transpose()?;
        let rename = move |n: &mut names::Names| {
            n.update(slot, |e| {
                if let Some(id) = &id {
                    e.id = id.clone();
                }
                e.cert_label = label.clone().flatten();
            })
        };
        // Room for the names first: nothing is written if they cannot be kept.
        let mut preview = self.names(&mut st)?;
        rename(&mut preview);
        if preview.encode().len() > names::MAX_NAMES_LEN {
            return Err(Error::DeviceMemory);
        }
        // Checked again against the card in the write's own transaction.
        self.write_cert(&mut st, slot, &der, key_slot)?;
        self.update_names(&mut st, &rename)?;
        drop(st);
        tracing::info!(%slot, "certificate written");
        Ok(ObjectId {
            key: key_ref(slot),
            kind: Kind::Certificate,
        })
    }

    /// C_DestroyObject, under the destroy policy of `naming.rs`.
    pub(super) fn destroy(
        &self,
        ctx: &Ctx<'_>,
        handle: CK_OBJECT_HANDLE,
        obj: ObjectId,
    ) -> Result<()> {
        let generation = self.generation;
        match Token::slot_object(obj) {
            None if obj.kind == Kind::Data && obj.key == RENEWAL_KEY => {
                let mut st = self.lock();
                require_rw_login(ctx.rw, st.login)?;
                let r = self.delete_renewal(&mut st);
                drop(st);
                forget_if_changed(ctx, &r, |h| h.remove_token_object(generation, obj));
                r
            }
            None => Err(Error::ObjectHandleInvalid),
            Some(object) => {
                if object.kind == Kind::PublicKey {
                    return Err(Error::ActionProhibited(
                        "a public key goes with its private key",
                    ));
                }
                let (deliberate, fresh) = {
                    let t = ctx.handles();
                    (t.is_deliberate(handle), t.is_fresh(generation, obj.key))
                };
                let mut st = self.lock();
                if let Some(e) =
                    naming::destroy_refusal(object, st.login, ctx.rw, deliberate, fresh)
                {
                    return Err(e);
                }
                let slot = object.slot;
                // A refusal because the card changed since the handle was shown
                // kills the handle (see token/guard.rs).
                let forget = |r: &Result<()>| {
                    forget_if_changed(ctx, r, |h| h.remove_token_object(generation, obj))
                };
                match object.kind {
                    Kind::Certificate => {
                        let r = self.delete_cert(&mut st, slot);
                        if r.is_err() {
                            drop(st);
                            forget(&r);
                            return r;
                        }
                        let key_left = self.key(&mut st, slot)?.is_some();
                        self.update_names(&mut st, &|n| {
                            n.update(slot, |e| {
                                e.cert_label = None;
                                if !key_left {
                                    e.id = None;
                                }
                            })
                        })?;
                    }
                    Kind::PrivateKey => {
                        let r = self.delete_key(&mut st, slot);
                        if r.is_err() {
                            drop(st);
                            forget(&r);
                            return r;
                        }
                        let cert_left = self.cert(&mut st, slot)?.is_some();
                        self.update_names(&mut st, &|n| {
                            n.update(slot, |e| {
                                e.private_label = None;
                                e.public_label = None;
                                if !cert_left {
                                    e.id = None;
                                }
                            })
                        })?;
                        drop(st);
                        let mut table = ctx.handles();
                        table.set_fresh(generation, obj.key, false);
                        table.remove_token_object(
                            generation,
                            ObjectId {
                                key: obj.key,
                                kind: Kind::PublicKey,
                            },
                        );
                    }
                    Kind::PublicKey | Kind::Data => {
                        return Err(Error::ActionProhibited(
                            "a public key goes with its private key",
                        ))
                    }
                }
                tracing::info!(%slot, kind = ?object.kind, "destroyed");
                Ok(())
            }
        }
    }

    /// C_GenerateKeyPair: on the card, in the slot a CKA_ID naming a PIV
    /// slot names, else (no CKA_ID, or an application's own) in the first
    /// free retired slot. Never over a key unless the template says so
    /// (CKA_UKEY_OVERWRITE). The templates' CKA_LABELs and an application's
    /// CKA_ID are kept on the card ([`crate::token::names_object`]); if they cannot be,
    /// the new key is deleted again (on cards that can) and the call fails.
    pub(super) fn generate_pair(
        &self,
        ctx: &Ctx<'_>,
        mech: &Mechanism,
        public: &[Attribute],
        private: &[Attribute],
    ) -> Result<(ObjectId, ObjectId)> {
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
                let bits = match find(public, CKA_MODULUS_BITS) {
                    Some(a) => as_ulong(a).ok_or(Error::AttributeValueInvalid)? as usize,
                    None => 2048,
                };
                if let Some(e) = find(public, CKA_PUBLIC_EXPONENT) {
                    let e: Vec<u8> = e.value.iter().copied().skip_while(|b| *b == 0).collect();
                    if e != [0x01, 0x00, 0x01] {
                        return Err(Error::TemplateInconsistent);
                    }
                }
                Algorithm::rsa_from_bits(bits).ok_or(Error::KeySizeRange)?
            }
            CKM_EC_KEY_PAIR_GEN => curve(
                &find(public, CKA_EC_PARAMS)
                    .ok_or(Error::TemplateIncomplete)?
                    .value,
            )?,
            _ => return Err(Error::MechanismInvalid),
        };
        let id = match (find(public, CKA_ID), find(private, CKA_ID)) {
            (Some(a), Some(b)) if a.value != b.value => return Err(Error::TemplateInconsistent),
            (_, Some(a)) | (Some(a), None) => Some(a.value.to_vec()),
            (None, None) => None,
        };
        let named_slot = match &id {
            Some(v) if names::names_a_slot(v) => Some(id_slot(find_id(public, private)?)?),
            Some(v) => {
                names::check_id(v)?;
                None
            }
            None => None,
        };
        let private_label = find(private, CKA_LABEL).map(|a| a.value.to_vec());
        let public_label = find(public, CKA_LABEL).map(|a| a.value.to_vec());
        for l in private_label.iter().chain(public_label.iter()) {
            names::check_label(l)?;
        }
        let overwrite = find(private, CKA_UKEY_OVERWRITE)
            .and_then(as_bool)
            .unwrap_or(false);
        let pin = policy(
            private,
            CKA_UKEY_PIN_POLICY,
            PinPolicy::from_code,
            PinPolicy::Default,
        )?;
        let touch = policy(
            private,
            CKA_UKEY_TOUCH_POLICY,
            TouchPolicy::from_code,
            TouchPolicy::Default,
        )?;
        if !ctx.rw {
            return Err(Error::SessionReadOnly);
        }
        let mut st = self.lock();
        if st.login == Login::None {
            return Err(Error::UserNotLoggedIn);
        }
        let info = self.info(&mut st)?;
        if alg.is_rsa() && alg.bits() > info.max_rsa_bits() {
            return Err(Error::KeySizeRange);
        }
        let slot = match named_slot {
            Some(slot) => {
                let found = self.lookup(&mut st, Some(&[slot]), true, true)?;
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
                let used = self.lookup(&mut st, Some(&retired), true, true)?;
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
        let mut preview = self.names(&mut st)?;
        naming(&mut preview);
        if preview.encode().len() > names::MAX_NAMES_LEN {
            return Err(Error::DeviceMemory);
        }
        let key = self.generate(&mut st, slot, alg, pin, touch)?;
        if let Err(e) = self.update_names(&mut st, &naming) {
            // No key without the names its application asked for.
            tracing::warn!(%slot, "storing the new key's names failed ({e}): deleting the key");
            if let Err(d) = self.delete_key(&mut st, slot) {
                tracing::warn!(%slot, "the new key could not be deleted: {d}");
            }
            return Err(e);
        }
        drop(st);
        tracing::info!(%slot, alg = %key.alg, "generated key pair");
        Ok((
            ObjectId {
                key: key_ref(slot),
                kind: Kind::PublicKey,
            },
            ObjectId {
                key: key_ref(slot),
                kind: Kind::PrivateKey,
            },
        ))
    }
}

/// The card no longer holds the object a handle named (another process
/// changed it; the token's guards refused to act): that handle dies, so
/// a retry with it can never reach what is there now.
fn forget_if_changed<T>(ctx: &Ctx<'_>, r: &Result<T>, forget: impl FnOnce(&mut Handles)) {
    if matches!(r, Err(Error::ObjectHandleInvalid)) {
        forget(&mut ctx.handles());
    }
}

fn require_rw_login(rw: bool, login: Login) -> Result<()> {
    if !rw {
        return Err(Error::SessionReadOnly);
    }
    if login == Login::None {
        return Err(Error::UserNotLoggedIn);
    }
    Ok(())
}
