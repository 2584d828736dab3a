//! Object management (PKCS#11 v3.0 §5.7).

use super::session;
use crate::error::{Error, Result};
use crate::ffi::ptr::{AttrAnswer, Attribute, Out, OutHandles, Template};
use crate::fns::keys::CKA_UKEY_PROMOTE_FROM;
use crate::fns::naming::{self, CKA_UKEY_DESTROY};
use crate::library::Library;
use crate::object::{self, as_bool, as_ulong, find, Kind, ObjectRef, TokenObject};
use crate::session::{Find, Session};
use crate::token::{Login, RenewalData};
use cryptoki_sys::*;

/// The objects a template can match (by CKA_CLASS).
struct Classes {
    /// Slot objects.
    kinds: Vec<Kind>,
    /// The session's derived secret keys.
    secrets: bool,
    /// The renewal data object.
    renewal: bool,
}

fn kind_filter(template: &[Attribute]) -> Classes {
    let none = Classes {
        kinds: Vec::new(),
        secrets: false,
        renewal: false,
    };
    match find(template, CKA_CLASS).map(as_ulong) {
        None => Classes {
            kinds: vec![Kind::Certificate, Kind::PublicKey, Kind::PrivateKey],
            secrets: true,
            renewal: true,
        },
        Some(Some(CKO_SECRET_KEY)) => Classes {
            secrets: true,
            ..none
        },
        Some(Some(CKO_DATA)) => Classes {
            renewal: true,
            ..none
        },
        Some(Some(c)) => Classes {
            kinds: Kind::from_class(c).into_iter().collect(),
            ..none
        },
        Some(None) => none,
    }
}

/// The renewal data object's value, if the handle's token still has it.
fn renewal_value(s: &Session, generation: u64) -> Result<std::sync::Arc<Vec<u8>>> {
    if generation != s.token.generation {
        return Err(Error::ObjectHandleInvalid);
    }
    let mut st = s.token.lock();
    if let Some(v) = crate::token::Token::cached_renewal(&st) {
        return Ok(v);
    }
    match s.token.renewal(&mut st)? {
        RenewalData::Ours(v) => Ok(v),
        _ => Err(Error::ObjectHandleInvalid),
    }
}

/// Whether answering `asks` needs to know if the card can move or delete
/// keys (asked of the card only then: see `Token::can_move_keys`).
fn asks_mobility(asks: &[CK_ATTRIBUTE_TYPE]) -> bool {
    asks.iter().any(|a| {
        matches!(
            *a,
            CKA_MODIFIABLE | CKA_DESTROYABLE | naming::CKA_UKEY_MOVABLE
        )
    })
}

/// The attribute answer for any object handle (lookups are cached; a
/// handle from before a reset may trigger one read), for the attributes
/// `asks` (others may be answered as if the card could not move keys).
pub(crate) fn attribute_of(
    lib: &Library,
    s: &Session,
    h: CK_OBJECT_HANDLE,
    asks: &[CK_ATTRIBUTE_TYPE],
) -> Result<Box<dyn Fn(CK_ATTRIBUTE_TYPE) -> AttrAnswer>> {
    match lib.handles().get(h) {
        None => Err(Error::ObjectHandleInvalid),
        Some(ObjectRef::Secret(k)) => {
            if k.session != s.handle {
                return Err(Error::ObjectHandleInvalid);
            }
            Ok(Box::new(move |a| object::secret_attribute(&k, a)))
        }
        Some(ObjectRef::Renewal { generation, .. }) => {
            let v = renewal_value(s, generation)?;
            Ok(Box::new(move |a| object::renewal_attribute(&v, a)))
        }
        Some(ObjectRef::Token {
            generation, object, ..
        }) => {
            if generation != s.token.generation {
                return Err(Error::ObjectHandleInvalid);
            }
            let mut st = s.token.lock();
            let (mut cert, mut key) = crate::token::Token::cached(&st, object.slot);
            let needed = match object.kind {
                Kind::Certificate => cert.is_none(),
                Kind::PublicKey | Kind::PrivateKey => key.is_none() && cert.is_none(),
            };
            if needed {
                let found = s.token.lookup(&mut st, Some(&[object.slot]), true, true)?;
                if let Some((_, c, k)) = found.into_iter().next() {
                    cert = c;
                    key = k;
                }
            }
            let exists = match object.kind {
                Kind::Certificate => cert.is_some(),
                Kind::PublicKey => key.is_some() || cert.is_some(),
                Kind::PrivateKey => key.is_some(),
            };
            if !exists {
                return Err(Error::ObjectHandleInvalid);
            }
            let destroy = asks_mobility(asks) && s.token.can_move_keys(&mut st).unwrap_or(false);
            let names = match crate::token::Token::cached_names(&st, object.slot) {
                Some(n) => Some(n),
                None => s.token.names(&mut st)?.get(object.slot).cloned(),
            };
            Ok(Box::new(move |a| {
                naming::named_attribute(
                    object,
                    cert.as_deref(),
                    key.as_deref(),
                    destroy,
                    names.as_ref(),
                    a,
                )
            }))
        }
    }
}

/// §5.7.7 C_FindObjectsInit: reads only what the template needs.
pub fn find_objects_init(h: CK_SESSION_HANDLE, template: Template) -> Result<()> {
    let (lib, s) = session(h)?;
    let template = template.read()?;
    let mut ops = s.ops();
    if ops.find.is_some() {
        return Err(Error::OperationActive);
    }
    let Classes {
        kinds,
        secrets: secrets_too,
        renewal,
    } = kind_filter(&template);
    let mut handles = Vec::new();
    let slots = if kinds.is_empty() {
        None
    } else {
        let mut st = s.token.lock();
        naming::slot_filter(&template, &mut || s.token.names(&mut st))?
    };
    if !kinds.is_empty() && slots.as_ref().is_none_or(|l| !l.is_empty()) {
        let mut st = s.token.lock();
        let names = if naming::needs_names(&template) {
            Some(s.token.names(&mut st)?)
        } else {
            None
        };
        let logged_in = st.login == Login::User;
        let want_cert = kinds.contains(&Kind::Certificate);
        let want_key = kinds.iter().any(|k| *k != Kind::Certificate);
        let found = s
            .token
            .lookup(&mut st, slots.as_deref(), want_cert, want_key)?;
        let destroy = asks_mobility(&template.iter().map(|a| a.kind).collect::<Vec<_>>())
            && s.token.can_move_keys(&mut st).unwrap_or(false);
        drop(st);
        let mut table = lib.handles();
        for (slot, cert, key) in found {
            for &kind in &kinds {
                let present = match kind {
                    Kind::Certificate => cert.is_some(),
                    Kind::PublicKey => key.is_some(),
                    Kind::PrivateKey => key
                        .as_ref()
                        .is_some_and(|k| logged_in || !object::private_key_is_private(k)),
                };
                if !present {
                    continue;
                }
                let obj = TokenObject { slot, kind };
                let ok = naming::named_matches(
                    &template,
                    obj,
                    cert.as_deref(),
                    key.as_deref(),
                    destroy,
                    names.as_ref().and_then(|n| n.get(slot)),
                );
                if ok {
                    handles.push(table.token_handle(s.slot_id, s.token.generation, obj));
                }
            }
        }
    }
    // The data object has no CKA_ID: a template naming one cannot match it.
    if renewal && slots.is_none() {
        let found = {
            let mut st = s.token.lock();
            s.token.renewal(&mut st)?
        };
        if let RenewalData::Ours(v) = found {
            if object::matches(&template, |a| object::renewal_attribute(&v, a)) {
                handles.push(lib.handles().renewal_handle(s.slot_id, s.token.generation));
            }
        }
    }
    if secrets_too {
        for (h, k) in lib.handles().secrets_of(s.handle) {
            if object::matches(&template, |a| object::secret_attribute(&k, a)) {
                handles.push(h);
            }
        }
    }
    ops.find = Some(Find { handles, pos: 0 });
    Ok(())
}

/// §5.7.8 C_FindObjects.
pub fn find_objects(h: CK_SESSION_HANDLE, out: OutHandles) -> Result<()> {
    let (_, s) = session(h)?;
    let max = out.max()?;
    let mut ops = s.ops();
    let f = ops.find.as_mut().ok_or(Error::OperationNotInitialized)?;
    let end = (f.pos + max).min(f.handles.len());
    out.write(&f.handles[f.pos..end])?;
    f.pos = end;
    Ok(())
}

/// §5.7.9 C_FindObjectsFinal.
pub fn find_objects_final(h: CK_SESSION_HANDLE) -> Result<()> {
    let (_, s) = session(h)?;
    let found = s.ops().find.take();
    found.map(drop).ok_or(Error::OperationNotInitialized)
}

/// §5.7.5 C_GetAttributeValue, with the spec's precedence for sensitive,
/// invalid and too-small attributes.
pub fn get_attribute_value(
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    mut template: Template,
) -> Result<()> {
    let (lib, s) = session(h)?;
    let answer = attribute_of(&lib, &s, obj, &template.types()?)?;
    template.fill(answer)
}

/// §5.7.6 C_SetAttributeValue. On a PIV card's objects:
/// * CKA_LABEL of any key or certificate, and CKA_ID of any of them with a
///   value that names no PIV slot: the application's name, kept on the card
///   ([`crate::names`]); CKA_ID is one per slot (the key pair and its
///   certificate), so setting it on one object renames the slot's three.
///   The slot's own OpenSC ID (01..04, 05..24) clears the custom ID.
/// * CKA_ID of a private key naming another PIV slot, on cards with MOVE
///   KEY (YubiKey 5.7): the key moves to that slot, which must hold no key
///   (certificates stay where they are); the handle follows the key. On a
///   public key or certificate another slot's ID is CKR_ATTRIBUTE_VALUE_INVALID.
/// * [`CKA_UKEY_DESTROY`] = CK_TRUE on a key or certificate: this application
///   may destroy it (see [`naming`]); nothing is written.
/// * CKA_VALUE of the renewal data object: replaced in one PUT DATA.
pub fn set_attribute_value(
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    template: Template,
) -> Result<()> {
    let (lib, s) = session(h)?;
    let attrs = template.read()?;
    attribute_of(&lib, &s, obj, &[]).map(drop)?;
    if attrs.is_empty() {
        return Ok(());
    }
    let last = |kind| attrs.iter().rev().find(|a| a.kind == kind);
    let only = |kinds: &[CK_ATTRIBUTE_TYPE]| attrs.iter().all(|a| kinds.contains(&a.kind));
    let target = lib.handles().get(obj);
    match target {
        Some(ObjectRef::Renewal { .. }) if only(&[CKA_VALUE]) => {
            let value = last(CKA_VALUE).ok_or(Error::TemplateIncomplete)?;
            let mut st = s.token.lock();
            require_rw_login(&s, st.login)?;
            let r = s.token.write_renewal(&mut st, &value.value, false);
            drop(st);
            forget_if_changed(&lib, &r, |h| h.remove_renewal(s.token.generation));
            r
        }
        Some(ObjectRef::Token { object, .. })
            if object.kind != Kind::PublicKey && only(&[CKA_UKEY_DESTROY]) =>
        {
            let a = last(CKA_UKEY_DESTROY).ok_or(Error::TemplateIncomplete)?;
            match as_bool(a) {
                Some(true) => lib.handles().mark_deliberate(obj),
                Some(false) => lib.handles().remove_deliberate(obj),
                None => return Err(Error::AttributeValueInvalid),
            }
            Ok(())
        }
        Some(ObjectRef::Token {
            generation, object, ..
        }) if object.kind == Kind::PrivateKey
            && only(&[CKA_ID])
            && crate::names::names_a_slot(
                &last(CKA_ID).ok_or(Error::TemplateIncomplete)?.value,
            )
            && last(CKA_ID).is_some_and(|a| *a.value != [object.slot.cka_id()]) =>
        {
            let id = last(CKA_ID).ok_or(Error::TemplateIncomplete)?;
            let to = super::keys::id_slot(id)?;
            let mut st = s.token.lock();
            require_rw_login(&s, st.login)?;
            if !s.token.can_move_keys(&mut st)? {
                return Err(Error::ActionProhibited("the card cannot move keys"));
            }
            if s.token.key(&mut st, to)?.is_some() {
                return Err(Error::ActionProhibited(
                    "the slot that ID names holds a key",
                ));
            }
            let r = s.token.move_key(&mut st, to, object.slot);
            if r.is_err() {
                drop(st);
                forget_if_changed(&lib, &r, |h| h.remove_token_object(generation, object));
                return r;
            }
            // The key's labels go with it; CKA_IDs stay with the slots.
            let from = object.slot;
            let moved = s.token.update_names(&mut st, &|n| {
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
            let mut table = lib.handles();
            table.set_fresh(generation, from, false);
            table.retarget(
                generation,
                object,
                TokenObject {
                    slot: to,
                    kind: Kind::PrivateKey,
                },
            );
            moved
        }
        Some(ObjectRef::Token { object, .. }) if only(&[CKA_ID, CKA_LABEL]) => {
            let slot = object.slot;
            let id = last(CKA_ID)
                .map(|a| naming::id_to_store(slot, &a.value))
                .transpose()?;
            let label = last(CKA_LABEL)
                .map(|a| naming::label_to_store(slot, object.kind, &a.value))
                .transpose()?;
            let mut st = s.token.lock();
            require_rw_login(&s, st.login)?;
            s.token.update_names(&mut st, &|n| {
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

/// §5.7.4 C_GetObjectSize: not meaningful for card objects.
pub fn get_object_size(
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    out: Out<CK_ULONG>,
) -> Result<()> {
    let (lib, s) = session(h)?;
    attribute_of(&lib, &s, obj, &[]).map(drop)?;
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    out.write(CK_UNAVAILABLE_INFORMATION)
}

/// §5.7.2 C_CopyObject: card objects cannot be copied (CKA_COPYABLE false).
pub fn copy_object(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) -> Result<()> {
    let (lib, s) = session(h)?;
    attribute_of(&lib, &s, obj, &[]).map(drop)?;
    Err(Error::ActionProhibited("card objects cannot be copied"))
}

/// The card no longer holds the object a handle named (another process
/// changed it; the token's guards refused to act): that handle dies, so
/// a retry with it can never reach what is there now.
fn forget_if_changed<T>(
    lib: &Library,
    r: &Result<T>,
    forget: impl FnOnce(&mut crate::object::Handles),
) {
    if matches!(r, Err(Error::ObjectHandleInvalid)) {
        forget(&mut lib.handles());
    }
}

fn require_rw_login(s: &Session, login: Login) -> Result<()> {
    if !s.rw {
        return Err(Error::SessionReadOnly);
    }
    if login == Login::None {
        return Err(Error::UserNotLoggedIn);
    }
    Ok(())
}

/// C_CreateObject of the renewal data object (CKO_DATA with CKA_APPLICATION
/// "ukey renewal"): its CKA_VALUE goes into object 5FFF10.
fn create_renewal(
    lib: &Library,
    s: &Session,
    template: &[Attribute],
    out: Out<CK_OBJECT_HANDLE>,
) -> Result<()> {
    let name = crate::token::RENEWAL_APPLICATION.as_bytes();
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
    let mut st = s.token.lock();
    require_rw_login(s, st.login)?;
    s.token.write_renewal(&mut st, &value.value, true)?;
    drop(st);
    out.write(lib.handles().renewal_handle(s.slot_id, s.token.generation))
}

/// §5.7.1 C_CreateObject: an X.509 certificate goes into the container of
/// the slot whose key it certifies (found by its public key), whatever
/// CKA_ID the template carries; a certificate for no key on the token is
/// CKR_TEMPLATE_INCONSISTENT (PKCS#11 3.0 §5.7.1: attributes that cannot
/// go together on this token). The template's CKA_LABEL becomes the
/// certificate's label and a CKA_ID that names no PIV slot the slot's ID
/// ([`crate::names`]). With the vendor attribute CKA_UKEY_PROMOTE_FROM the
/// certificate goes into the slot its CKA_ID names and must certify the key
/// in the slot that attribute names (a key about to be moved in: renewal).
/// CKO_DATA: the renewal data object.
pub fn create_object(
    h: CK_SESSION_HANDLE,
    template: Template,
    out: Out<CK_OBJECT_HANDLE>,
) -> Result<()> {
    let (lib, s) = session(h)?;
    let template = template.read()?;
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let class = find(&template, CKA_CLASS).ok_or(Error::TemplateIncomplete)?;
    if as_ulong(class) == Some(CKO_DATA) {
        return create_renewal(&lib, &s, &template, out);
    }
    if as_ulong(class) != Some(CKO_CERTIFICATE) {
        return Err(Error::AttributeValueInvalid);
    }
    if let Some(t) = find(&template, CKA_CERTIFICATE_TYPE) {
        if as_ulong(t) != Some(CKC_X_509) {
            return Err(Error::AttributeValueInvalid);
        }
    }
    if let Some(t) = find(&template, CKA_TOKEN) {
        if as_bool(t) != Some(true) {
            return Err(Error::TemplateInconsistent);
        }
    }
    let der = find(&template, CKA_VALUE)
        .ok_or(Error::TemplateIncomplete)?
        .value
        .to_vec();
    let cert = crate::keyinfo::CertInfo::parse(&der).map_err(|_| Error::AttributeValueInvalid)?;
    let mut st = s.token.lock();
    require_rw_login(&s, st.login)?;
    let (slot, key_slot) = match find(&template, CKA_UKEY_PROMOTE_FROM) {
        Some(a) => {
            let id = find(&template, CKA_ID).ok_or(Error::TemplateIncomplete)?;
            (super::keys::id_slot(id)?, super::keys::id_slot(a)?)
        }
        None => {
            let found = s.token.lookup(&mut st, None, false, true)?;
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
    let Some(key) = s.token.key(&mut st, key_slot)? else {
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
    let id = match find(&template, CKA_ID) {
        Some(a) if !crate::names::names_a_slot(&a.value) => {
            Some(naming::id_to_store(slot, &a.value)?)
        }
        _ => None,
    };
    let label = find(&template, CKA_LABEL)
        .map(|a| naming::label_to_store(slot, Kind::Certificate, &a.value))
        .transpose()?;
    let rename = move |n: &mut crate::names::Names| {
        n.update(slot, |e| {
            if let Some(id) = &id {
                e.id = id.clone();
            }
            e.cert_label = label.clone().flatten();
        })
    };
    // Room for the names first: nothing is written if they cannot be kept.
    let mut preview = s.token.names(&mut st)?;
    rename(&mut preview);
    if preview.encode().len() > crate::names::MAX_NAMES_LEN {
        return Err(Error::DeviceMemory);
    }
    // Checked again against the card in the write's own transaction.
    s.token.write_cert(&mut st, slot, &der, key_slot)?;
    s.token.update_names(&mut st, &rename)?;
    drop(st);
    tracing::info!(%slot, "certificate written");
    let mut table = lib.handles();
    table.set_fresh(s.token.generation, slot, false);
    let obj = TokenObject {
        slot,
        kind: Kind::Certificate,
    };
    // A new certificate is a new object: the old handle (if any) dies.
    table.remove_token_object(s.token.generation, obj);
    out.write(table.token_handle(s.slot_id, s.token.generation, obj))
}

/// §5.7.3 C_DestroyObject, under the destroy policy of [`naming`].
pub fn destroy_object(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) -> Result<()> {
    let (lib, s) = session(h)?;
    let target = lib.handles().get(obj).ok_or(Error::ObjectHandleInvalid)?;
    match target {
        ObjectRef::Secret(k) => {
            if k.session != s.handle {
                return Err(Error::ObjectHandleInvalid);
            }
            lib.handles().remove(obj);
            Ok(())
        }
        ObjectRef::Renewal { generation, .. } => {
            if generation != s.token.generation {
                return Err(Error::ObjectHandleInvalid);
            }
            let mut st = s.token.lock();
            require_rw_login(&s, st.login)?;
            let r = s.token.delete_renewal(&mut st);
            drop(st);
            forget_if_changed(&lib, &r, |h| h.remove_renewal(generation));
            r?;
            lib.handles().remove_renewal(generation);
            Ok(())
        }
        ObjectRef::Token {
            generation, object, ..
        } => {
            if generation != s.token.generation {
                return Err(Error::ObjectHandleInvalid);
            }
            if object.kind == Kind::PublicKey {
                return Err(Error::ActionProhibited(
                    "a public key goes with its private key",
                ));
            }
            let (deliberate, fresh) = {
                let t = lib.handles();
                (t.is_deliberate(obj), t.is_fresh(generation, object.slot))
            };
            let mut st = s.token.lock();
            if let Some(e) = naming::destroy_refusal(object, st.login, s.rw, deliberate, fresh) {
                return Err(e);
            }
            let slot = object.slot;
            // A refusal because the card changed since the handle was shown
            // kills the handle (see token/guard.rs).
            let forget = |r: &Result<()>| {
                forget_if_changed(&lib, r, |h| h.remove_token_object(generation, object))
            };
            match object.kind {
                Kind::Certificate => {
                    let r = s.token.delete_cert(&mut st, slot);
                    if r.is_err() {
                        drop(st);
                        forget(&r);
                        return r;
                    }
                    let key_left = s.token.key(&mut st, slot)?.is_some();
                    s.token.update_names(&mut st, &|n| {
                        n.update(slot, |e| {
                            e.cert_label = None;
                            if !key_left {
                                e.id = None;
                            }
                        })
                    })?;
                }
                Kind::PrivateKey => {
                    let r = s.token.delete_key(&mut st, slot);
                    if r.is_err() {
                        drop(st);
                        forget(&r);
                        return r;
                    }
                    let cert_left = s.token.cert(&mut st, slot)?.is_some();
                    s.token.update_names(&mut st, &|n| {
                        n.update(slot, |e| {
                            e.private_label = None;
                            e.public_label = None;
                            if !cert_left {
                                e.id = None;
                            }
                        })
                    })?;
                    drop(st);
                    let mut table = lib.handles();
                    table.set_fresh(generation, slot, false);
                    table.remove_token_object(
                        generation,
                        TokenObject {
                            slot,
                            kind: Kind::PublicKey,
                        },
                    );
                }
                Kind::PublicKey => {
                    return Err(Error::ActionProhibited(
                        "a public key goes with its private key",
                    ))
                }
            }
            tracing::info!(%slot, kind = ?object.kind, "destroyed");
            lib.handles().remove_token_object(generation, object);
            Ok(())
        }
    }
}
