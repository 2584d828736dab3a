//! Objects: what a handle names, and every attribute computed from what
//! was read from the card. Handles are counters, never reused.

use crate::key::{Origin, PublicKey};
use crate::keyinfo::{ec_params, ec_point_der, CertInfo, KeyInfo};
use crate::values::{AttrAnswer, Attribute};
use cryptoki_sys::*;
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// What a token object is: one of the three objects a key container shows,
/// or a data object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Certificate,
    PublicKey,
    PrivateKey,
    Data,
}

impl Kind {
    pub fn class(self) -> CK_OBJECT_CLASS {
        match self {
            Kind::Certificate => CKO_CERTIFICATE,
            Kind::PublicKey => CKO_PUBLIC_KEY,
            Kind::PrivateKey => CKO_PRIVATE_KEY,
            Kind::Data => CKO_DATA,
        }
    }

    pub fn from_class(c: CK_OBJECT_CLASS) -> Option<Kind> {
        match c {
            CKO_CERTIFICATE => Some(Kind::Certificate),
            CKO_PUBLIC_KEY => Some(Kind::PublicKey),
            CKO_PRIVATE_KEY => Some(Kind::PrivateKey),
            CKO_DATA => Some(Kind::Data),
            _ => None,
        }
    }
}

/// A key container on a token, as its backend numbers it (PIV: the slot's
/// key reference). Opaque to everything above the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef(pub u32);

/// One object on a token: the container it belongs to and which of its
/// objects it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId {
    pub key: KeyRef,
    pub kind: Kind,
}

/// A session object: the secret an ECDH derivation produced.
pub struct SecretKey {
    pub session: CK_SESSION_HANDLE,
    pub generation: u64,
    pub value: Zeroizing<Vec<u8>>,
    pub key_type: CK_KEY_TYPE,
    pub sensitive: bool,
    pub extractable: bool,
    pub label: Vec<u8>,
    pub id: Vec<u8>,
}

#[derive(Clone)]
pub enum ObjectRef {
    Token {
        slot_id: CK_SLOT_ID,
        generation: u64,
        object: ObjectId,
    },
    Secret(Arc<SecretKey>),
}

/// Handle ↔ object table.
#[derive(Default)]
pub struct Handles {
    by_handle: HashMap<CK_OBJECT_HANDLE, ObjectRef>,
    by_object: HashMap<(u64, ObjectId), CK_OBJECT_HANDLE>,
    next: CK_OBJECT_HANDLE,
    /// Handles whose object this application asked to be allowed to destroy.
    deliberate: std::collections::HashSet<CK_OBJECT_HANDLE>,
    /// (token generation, container) of key pairs this application
    /// generated that have no certificate yet.
    fresh: std::collections::HashSet<(u64, KeyRef)>,
}

impl Handles {
    fn fresh(&mut self) -> CK_OBJECT_HANDLE {
        self.next += 1;
        self.next
    }

    /// The handle of a token object (the same one every time for one insertion).
    pub fn token_handle(
        &mut self,
        slot_id: CK_SLOT_ID,
        generation: u64,
        object: ObjectId,
    ) -> CK_OBJECT_HANDLE {
        if let Some(h) = self.by_object.get(&(generation, object)) {
            return *h;
        }
        let h = self.fresh();
        self.by_object.insert((generation, object), h);
        self.by_handle.insert(
            h,
            ObjectRef::Token {
                slot_id,
                generation,
                object,
            },
        );
        h
    }

    pub fn add_secret(&mut self, key: SecretKey) -> CK_OBJECT_HANDLE {
        let h = self.fresh();
        self.by_handle.insert(h, ObjectRef::Secret(Arc::new(key)));
        h
    }

    pub fn get(&self, h: CK_OBJECT_HANDLE) -> Option<ObjectRef> {
        self.by_handle.get(&h).cloned()
    }

    /// Forget a token object (destroyed): its handle never comes back.
    pub fn remove_token_object(&mut self, generation: u64, object: ObjectId) {
        if let Some(h) = self.by_object.remove(&(generation, object)) {
            self.by_handle.remove(&h);
            self.deliberate.remove(&h);
        }
    }

    /// The object `from` now is `to` (a key moved to another slot): its
    /// handle follows it; a stale handle of `to` dies.
    pub fn retarget(&mut self, generation: u64, from: ObjectId, to: ObjectId) {
        self.remove_token_object(generation, to);
        if let Some(h) = self.by_object.remove(&(generation, from)) {
            if let Some(ObjectRef::Token { slot_id, .. }) = self.by_handle.get(&h).cloned() {
                self.by_object.insert((generation, to), h);
                self.by_handle.insert(
                    h,
                    ObjectRef::Token {
                        slot_id,
                        generation,
                        object: to,
                    },
                );
            }
        }
    }

    pub fn remove(&mut self, h: CK_OBJECT_HANDLE) {
        self.by_handle.remove(&h);
        self.deliberate.remove(&h);
    }

    /// The application means to destroy the object behind `h`.
    pub fn mark_deliberate(&mut self, h: CK_OBJECT_HANDLE) {
        self.deliberate.insert(h);
    }

    pub fn remove_deliberate(&mut self, h: CK_OBJECT_HANDLE) {
        self.deliberate.remove(&h);
    }

    pub fn is_deliberate(&self, h: CK_OBJECT_HANDLE) -> bool {
        self.deliberate.contains(&h)
    }

    /// A key pair this application just generated (`true`), or one that got
    /// its certificate, moved or went away (`false`).
    pub fn set_fresh(&mut self, generation: u64, key: KeyRef, fresh: bool) {
        if fresh {
            self.fresh.insert((generation, key));
        } else {
            self.fresh.remove(&(generation, key));
        }
    }

    pub fn is_fresh(&self, generation: u64, key: KeyRef) -> bool {
        self.fresh.contains(&(generation, key))
    }

    /// The secret keys a session derived.
    pub fn secrets_of(
        &self,
        session: CK_SESSION_HANDLE,
    ) -> Vec<(CK_OBJECT_HANDLE, Arc<SecretKey>)> {
        let mut v: Vec<_> = self
            .by_handle
            .iter()
            .filter_map(|(h, o)| match o {
                ObjectRef::Secret(k) if k.session == session => Some((*h, k.clone())),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(h, _)| *h);
        v
    }

    /// Session objects die with their session.
    pub fn drop_session(&mut self, session: CK_SESSION_HANDLE) {
        self.by_handle
            .retain(|_, o| !matches!(o, ObjectRef::Secret(k) if k.session == session));
    }
}

fn b(v: bool) -> AttrAnswer {
    AttrAnswer::Value(vec![if v { CK_TRUE } else { CK_FALSE }])
}

pub fn ulong(v: CK_ULONG) -> AttrAnswer {
    AttrAnswer::Value(v.to_ne_bytes().to_vec())
}

fn bytes(v: &[u8]) -> AttrAnswer {
    AttrAnswer::Value(v.to_vec())
}

fn key_type(k: &KeyInfo) -> CK_KEY_TYPE {
    if k.is_rsa() {
        CKK_RSA
    } else {
        CKK_EC
    }
}

fn public_parts(public: &PublicKey, attr: CK_ATTRIBUTE_TYPE) -> Option<AttrAnswer> {
    match (public, attr) {
        (PublicKey::Rsa { modulus, .. }, CKA_MODULUS) => Some(bytes(modulus)),
        (PublicKey::Rsa { exponent, .. }, CKA_PUBLIC_EXPONENT) => Some(bytes(exponent)),
        (PublicKey::Rsa { modulus, .. }, CKA_MODULUS_BITS) => {
            Some(ulong((modulus.len() * 8) as CK_ULONG))
        }
        (PublicKey::Ec { alg, .. }, CKA_EC_PARAMS) => ec_params(*alg).map(bytes),
        (_, CKA_PUBLIC_KEY_INFO) => Some(
            public
                .to_spki_der()
                .map_or(AttrAnswer::Invalid, AttrAnswer::Value),
        ),
        _ => None,
    }
}

/// Whether the private key object is CKA_PRIVATE (hidden until login).
pub fn private_key_is_private(k: &KeyInfo) -> bool {
    !k.needs_no_pin()
}

/// An object's CKA_ID and CKA_LABEL as its token names it when no
/// application gave it names.
pub struct Names<'a> {
    pub id: &'a [u8],
    pub label: &'a [u8],
}

/// Every attribute of a key container's object. `cert` and `key` are what
/// the container holds (a public key object may come from either).
pub fn token_attribute(
    kind: Kind,
    names: &Names<'_>,
    cert: Option<&CertInfo>,
    key: Option<&KeyInfo>,
    can_destroy_keys: bool,
    attr: CK_ATTRIBUTE_TYPE,
) -> AttrAnswer {
    let common = match attr {
        CKA_CLASS => Some(ulong(kind.class())),
        CKA_TOKEN => Some(b(true)),
        // A private key's CKA_ID can be changed (the key moves: see
        // C_SetAttributeValue) where the card can move keys.
        CKA_MODIFIABLE => Some(b(kind == Kind::PrivateKey && can_destroy_keys)),
        CKA_COPYABLE => Some(b(false)),
        CKA_ID => Some(bytes(names.id)),
        CKA_LABEL => Some(bytes(names.label)),
        _ => None,
    };
    if let Some(a) = common {
        return a;
    }
    match kind {
        Kind::Data => AttrAnswer::Invalid,
        Kind::Certificate => {
            let Some(c) = cert else {
                return AttrAnswer::Invalid;
            };
            match attr {
                CKA_PRIVATE | CKA_TRUSTED => b(false),
                CKA_DESTROYABLE => b(true),
                CKA_CERTIFICATE_TYPE => ulong(CKC_X_509),
                CKA_CERTIFICATE_CATEGORY => ulong(CK_CERTIFICATE_CATEGORY_TOKEN_USER),
                CKA_CHECK_VALUE => {
                    use sha1::Digest;
                    bytes(&sha1::Sha1::digest(&c.der)[..3])
                }
                CKA_START_DATE => bytes(&c.not_before.ck_date()),
                CKA_END_DATE => bytes(&c.not_after.ck_date()),
                CKA_SUBJECT => bytes(&c.subject),
                CKA_ISSUER => bytes(&c.issuer),
                CKA_SERIAL_NUMBER => bytes(&c.serial),
                CKA_VALUE => bytes(&c.der),
                CKA_URL | CKA_HASH_OF_SUBJECT_PUBLIC_KEY | CKA_HASH_OF_ISSUER_PUBLIC_KEY => {
                    bytes(&[])
                }
                CKA_JAVA_MIDP_SECURITY_DOMAIN => ulong(0),
                CKA_NAME_HASH_ALGORITHM => ulong(CKM_SHA_1),
                CKA_PUBLIC_KEY_INFO => c
                    .public
                    .to_spki_der()
                    .map_or(AttrAnswer::Invalid, AttrAnswer::Value),
                _ => AttrAnswer::Invalid,
            }
        }
        Kind::PublicKey => {
            let public = match (key, cert) {
                (Some(k), _) => &k.public,
                (None, Some(c)) => &c.public,
                _ => return AttrAnswer::Invalid,
            };
            let rsa = matches!(public, PublicKey::Rsa { .. });
            if let Some(a) = public_parts(public, attr) {
                return a;
            }
            match attr {
                CKA_PRIVATE | CKA_TRUSTED | CKA_DERIVE | CKA_VERIFY_RECOVER | CKA_DESTROYABLE => {
                    b(false)
                }
                CKA_KEY_TYPE => ulong(if rsa { CKK_RSA } else { CKK_EC }),
                CKA_SUBJECT => bytes(cert.map_or(&[][..], |c| &c.subject)),
                CKA_ENCRYPT | CKA_WRAP => b(rsa),
                CKA_VERIFY => b(true),
                CKA_LOCAL => b(key.is_some_and(|k| k.origin == Some(Origin::Generated))),
                CKA_KEY_GEN_MECHANISM => ulong(if rsa {
                    CKM_RSA_PKCS_KEY_PAIR_GEN
                } else {
                    CKM_EC_KEY_PAIR_GEN
                }),
                CKA_START_DATE | CKA_END_DATE => bytes(&[]),
                CKA_EC_POINT => match public {
                    PublicKey::Ec { point, .. } => bytes(&ec_point_der(point)),
                    _ => AttrAnswer::Invalid,
                },
                _ => AttrAnswer::Invalid,
            }
        }
        Kind::PrivateKey => {
            let Some(k) = key else {
                return AttrAnswer::Invalid;
            };
            if let Some(a) = public_parts(&k.public, attr) {
                return a;
            }
            let imported = k.origin == Some(Origin::Imported);
            match attr {
                CKA_PRIVATE => b(private_key_is_private(k)),
                CKA_DESTROYABLE => b(can_destroy_keys),
                CKA_KEY_TYPE => ulong(key_type(k)),
                CKA_SUBJECT => bytes(cert.map_or(&[][..], |c| &c.subject)),
                CKA_SENSITIVE | CKA_SIGN => b(true),
                CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE => b(!imported),
                CKA_EXTRACTABLE | CKA_SIGN_RECOVER | CKA_WRAP_WITH_TRUSTED => b(false),
                CKA_DECRYPT | CKA_UNWRAP => b(k.is_rsa()),
                CKA_DERIVE => b(!k.is_rsa()),
                CKA_ALWAYS_AUTHENTICATE => b(k.always_authenticate()),
                CKA_LOCAL => b(k.origin == Some(Origin::Generated)),
                CKA_KEY_GEN_MECHANISM => match k.origin {
                    Some(Origin::Generated) => ulong(if k.is_rsa() {
                        CKM_RSA_PKCS_KEY_PAIR_GEN
                    } else {
                        CKM_EC_KEY_PAIR_GEN
                    }),
                    _ => ulong(CK_UNAVAILABLE_INFORMATION),
                },
                CKA_START_DATE | CKA_END_DATE => bytes(&[]),
                CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1
                | CKA_EXPONENT_2 | CKA_COEFFICIENT | CKA_VALUE => AttrAnswer::Sensitive,
                _ => AttrAnswer::Invalid,
            }
        }
    }
}

/// Every attribute of a derived secret key.
pub fn secret_attribute(k: &SecretKey, attr: CK_ATTRIBUTE_TYPE) -> AttrAnswer {
    match attr {
        CKA_CLASS => ulong(CKO_SECRET_KEY),
        CKA_KEY_TYPE => ulong(k.key_type),
        CKA_TOKEN | CKA_LOCAL | CKA_MODIFIABLE | CKA_COPYABLE | CKA_ENCRYPT | CKA_DECRYPT
        | CKA_SIGN | CKA_VERIFY | CKA_WRAP | CKA_UNWRAP | CKA_DERIVE | CKA_TRUSTED => b(false),
        CKA_PRIVATE | CKA_DESTROYABLE => b(true),
        CKA_SENSITIVE | CKA_ALWAYS_SENSITIVE => b(k.sensitive),
        CKA_EXTRACTABLE => b(k.extractable),
        CKA_NEVER_EXTRACTABLE => b(!k.extractable),
        CKA_LABEL => bytes(&k.label),
        CKA_ID => bytes(&k.id),
        CKA_VALUE_LEN => ulong(k.value.len() as CK_ULONG),
        CKA_KEY_GEN_MECHANISM => ulong(CKM_ECDH1_DERIVE),
        CKA_VALUE if k.sensitive => AttrAnswer::Sensitive,
        CKA_VALUE => bytes(&k.value),
        _ => AttrAnswer::Invalid,
    }
}

/// Whether an object matches a search template (every attribute present and equal).
pub fn matches(
    template: &[Attribute],
    mut value: impl FnMut(CK_ATTRIBUTE_TYPE) -> AttrAnswer,
) -> bool {
    template.iter().all(|a| match value(a.kind) {
        AttrAnswer::Value(v) => v == *a.value,
        _ => false,
    })
}

/// Read a CK_ULONG attribute value from a template entry.
pub fn as_ulong(a: &Attribute) -> Option<CK_ULONG> {
    <[u8; std::mem::size_of::<CK_ULONG>()]>::try_from(&a.value[..])
        .ok()
        .map(CK_ULONG::from_ne_bytes)
}

/// Read a CK_BBOOL attribute value.
pub fn as_bool(a: &Attribute) -> Option<bool> {
    match a.value[..] {
        [v] => Some(v != CK_FALSE),
        _ => None,
    }
}

/// The first attribute of `kind` in a template.
pub fn find(template: &[Attribute], kind: CK_ATTRIBUTE_TYPE) -> Option<&Attribute> {
    template.iter().find(|a| a.kind == kind)
}
