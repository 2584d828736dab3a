//! Object management (PKCS#11 v3.0 §5.7): handles and session objects
//! here; what a token object is and how it changes is its backend's.

use super::live_session;
use crate::error::{Error, Result};
use crate::ffi::ptr::{Out, OutHandles, Template};
use crate::library::Library;
use crate::object::{self, as_ulong, find, ObjectRef};
use crate::session::{Find, Session};
use crate::values::AttrAnswer;
use cryptoki_sys::*;

/// The attribute answer for any object handle, for the attributes `asks`
/// (a backend may answer others as if it had not asked its token).
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
        Some(ObjectRef::Token {
            generation, object, ..
        }) => {
            if generation != s.token.generation() {
                return Err(Error::ObjectHandleInvalid);
            }
            s.token.attributes(object, asks)
        }
    }
}

/// §5.7.7 C_FindObjectsInit: the token's objects (its backend reads only
/// what the template needs), then the session's secret keys.
pub fn find_objects_init(h: CK_SESSION_HANDLE, template: Template) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let template = template.read()?;
    let mut ops = s.ops();
    if ops.find.is_some() {
        return Err(Error::OperationActive);
    }
    let class = find(&template, CKA_CLASS).map(as_ulong);
    let mut handles = Vec::new();
    if class != Some(Some(CKO_SECRET_KEY)) {
        let found = s.token.find(&lib.ctx(&s), &template)?;
        let generation = s.token.generation();
        let mut table = lib.handles();
        for obj in found {
            handles.push(table.token_handle(s.slot_id, generation, obj));
        }
    }
    if matches!(class, None | Some(Some(CKO_SECRET_KEY))) {
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
    let (_, s) = live_session(h)?;
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
    let (_, s) = live_session(h)?;
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
    let (lib, s) = live_session(h)?;
    let answer = attribute_of(&lib, &s, obj, &template.types()?)?;
    template.fill(answer)
}

/// §5.7.6 C_SetAttributeValue: what can change on a token object is its
/// backend's to say; session objects do not change.
pub fn set_attribute_value(
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    template: Template,
) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let attrs = template.read()?;
    attribute_of(&lib, &s, obj, &[]).map(drop)?;
    if attrs.is_empty() {
        return Ok(());
    }
    let target = lib.handles().get(obj);
    match target {
        Some(ObjectRef::Token { object, .. }) => {
            s.token.set_attributes(&lib.ctx(&s), obj, object, &attrs)
        }
        _ => Err(Error::AttributeReadOnly),
    }
}

/// §5.7.4 C_GetObjectSize: not meaningful for token objects.
pub fn get_object_size(
    h: CK_SESSION_HANDLE,
    obj: CK_OBJECT_HANDLE,
    out: Out<CK_ULONG>,
) -> Result<()> {
    let (lib, s) = live_session(h)?;
    attribute_of(&lib, &s, obj, &[]).map(drop)?;
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    out.write(CK_UNAVAILABLE_INFORMATION)
}

/// §5.7.2 C_CopyObject: token objects cannot be copied (CKA_COPYABLE false).
pub fn copy_object(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) -> Result<()> {
    let (lib, s) = live_session(h)?;
    attribute_of(&lib, &s, obj, &[]).map(drop)?;
    Err(Error::ActionProhibited("card objects cannot be copied"))
}

/// §5.7.1 C_CreateObject: on the token, where its backend puts it. A new
/// object has a new handle (an old one for what it replaced dies), and a
/// key pair with a certificate is no longer the caller's fresh one.
pub fn create_object(
    h: CK_SESSION_HANDLE,
    template: Template,
    out: Out<CK_OBJECT_HANDLE>,
) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let template = template.read()?;
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let obj = s.token.create_object(&lib.ctx(&s), &template)?;
    let generation = s.token.generation();
    let mut table = lib.handles();
    if obj.kind == object::Kind::Certificate {
        table.set_fresh(generation, obj.key, false);
    }
    table.remove_token_object(generation, obj);
    out.write(table.token_handle(s.slot_id, generation, obj))
}

/// §5.7.3 C_DestroyObject: a session object, or a token object under its
/// backend's destroy policy.
pub fn destroy_object(h: CK_SESSION_HANDLE, obj: CK_OBJECT_HANDLE) -> Result<()> {
    let (lib, s) = live_session(h)?;
    let target = lib.handles().get(obj).ok_or(Error::ObjectHandleInvalid)?;
    match target {
        ObjectRef::Secret(k) => {
            if k.session != s.handle {
                return Err(Error::ObjectHandleInvalid);
            }
            lib.handles().remove(obj);
            Ok(())
        }
        ObjectRef::Token {
            generation, object, ..
        } => {
            if generation != s.token.generation() {
                return Err(Error::ObjectHandleInvalid);
            }
            s.token.destroy_object(&lib.ctx(&s), obj, object)?;
            lib.handles().remove_token_object(generation, object);
            Ok(())
        }
    }
}
