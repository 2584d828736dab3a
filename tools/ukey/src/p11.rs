//! The renewal commands' path to the token: `libukey_pkcs11.so` loaded
//! through `cryptoki`, as a renewal client loads a PKCS#11 module, so the
//! module is exercised the way such clients use it.
//!
//! The module is found through `UKEY_MODULE`, next to the `ukey` binary,
//! or in the multiarch PKCS#11 directory. It shows the token the user chose
//! (see [`crate::token`]): a simulated token is handed to it alone
//! (`UKEY_SIM`), a PC/SC reader is found by its name.
//!
//! What PKCS#11 has no operation for, the module offers as documented
//! vendor extensions (see `pkcs11-module/src/fns/object.rs`): the renewal
//! data object (CKO_DATA, CKA_APPLICATION "ukey renewal"), moving a private
//! key by setting its CKA_ID (MOVE KEY), and CKA_UKEY_PROMOTE_FROM on a
//! certificate written for the key about to be moved into its slot.

use crate::error::{CliError, ErrorKind, Result, EXIT_BLOCKED, EXIT_REMOVED, EXIT_WRONG_SECRET};
use crate::token::Origin;
use apdu::piv::{Algorithm, PinPolicy, Slot, TouchPolicy};
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::RawAuthPin;
use cryptoki_sys::{CKA_VENDOR_DEFINED, CK_ATTRIBUTE_TYPE, CK_ULONG};
use std::path::{Path, PathBuf};

/// The module's file name.
pub const MODULE_NAME: &str = "libukey_pkcs11.so";

/// Vendor attributes of libukey_pkcs11 (`pkcs11-module/src/fns/keys.rs`;
/// a unit test checks the values against the module crate).
pub const CKA_UKEY_PIN_POLICY: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0002;
pub const CKA_UKEY_TOUCH_POLICY: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0003;
pub const CKA_UKEY_PROMOTE_FROM: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0004;
/// Set on a primary-slot key or certificate: ukey means to destroy it.
pub const CKA_UKEY_DESTROY: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0005;
/// Read-only on private keys: the card can move the key (MOVE KEY).
pub const CKA_UKEY_MOVABLE: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x554B_0006;
/// CKA_APPLICATION of the module's renewal data object.
pub const RENEWAL_APPLICATION: &str = "ukey renewal";

/// Where the module is: `UKEY_MODULE` (or `module` in the configuration
/// file), next to this binary, or the
/// multiarch PKCS#11 directory (where a Debian package installs it).
pub fn module_path() -> Result<PathBuf> {
    if let Some(p) = crate::settings::get().module.clone() {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(CliError::new(format!(
                "UKEY_MODULE (or `module` in ukey.toml) = {}: no such file",
                p.display()
            ))
            .with_kind(ErrorKind::Module))
        };
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join(MODULE_NAME));
    }
    let triplet = format!("{}-{}-gnu", std::env::consts::ARCH, std::env::consts::OS);
    candidates.push(
        Path::new("/usr/lib")
            .join(triplet)
            .join("pkcs11")
            .join(MODULE_NAME),
    );
    candidates.push(Path::new("/usr/lib/pkcs11").join(MODULE_NAME));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            CliError::with_kind_new(
                ErrorKind::Module,
                format!(
                    "the ukey PKCS#11 module ({MODULE_NAME}) was not found (looked in {}): \
             build it (cargo build --release --workspace) or set UKEY_MODULE",
                    candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

/// A PKCS#11 failure as the user reads it.
pub fn fail(what: &str, e: P11Error) -> CliError {
    match e {
        P11Error::Pkcs11(rv, _) => match rv {
            RvError::DeviceRemoved | RvError::TokenNotPresent | RvError::SessionHandleInvalid => {
                CliError::new(format!("{what}: the token was removed")).with_code(EXIT_REMOVED)
            }
            RvError::PinLocked => {
                CliError::new("the PIN is blocked: unblock it with the PUK: `ukey pin unblock`")
                    .with_code(EXIT_BLOCKED)
                    .with_kind(ErrorKind::PinLocked)
                    .with_tries_left(0)
            }
            RvError::PinIncorrect => CliError::new(format!("{what}: wrong PIN"))
                .with_code(EXIT_WRONG_SECRET)
                .with_kind(ErrorKind::PinIncorrect),
            // The module's guards: the token changed since it was read
            // (another program); nothing was written.
            RvError::ObjectHandleInvalid | RvError::TemplateInconsistent => CliError::new(format!(
                "{what}: the token changed meanwhile (another program is using it); nothing was \
                 written"
            ))
            .with_kind(ErrorKind::Conflict),
            RvError::ActionProhibited => {
                CliError::new(format!("{what}: the token refused (CKR_ACTION_PROHIBITED)"))
            }
            other => CliError::new(format!("{what}: the PKCS#11 module answered {other}")),
        },
        other => CliError::new(format!("{what}: {other}")),
    }
}

fn ck_ulong(v: u64) -> Vec<u8> {
    (v as CK_ULONG).to_ne_bytes().to_vec()
}

/// The chosen token as the module shows it, with one read-write session.
pub struct P11Token {
    // Dropped in this order: the session, then the module.
    session: Session,
    ctx: Pkcs11,
    /// The user is logged in (PKCS#11 login state is per token).
    logged_in: bool,
}

/// The module's slot description for a reader name (blank-padded to 64 bytes).
fn description_of(name: &str) -> &str {
    let mut n = name.len().min(64);
    while !name.is_char_boundary(n) {
        n -= 1;
    }
    name[..n].trim_end()
}

impl P11Token {
    /// Load the module and open a read-write session on the token at `origin`.
    pub fn open(origin: &Origin, reader: &str) -> Result<Self> {
        let path = module_path()?;
        // The module reads these at C_Initialize: show it the chosen token only.
        match origin {
            #[cfg(feature = "sim")]
            Origin::Sim(state) => {
                std::env::set_var("UKEY_SIM", state);
                std::env::set_var("UKEY_NO_PCSC", "1");
            }
            Origin::Pcsc(_) => {
                #[cfg(feature = "sim")]
                std::env::remove_var("UKEY_SIM");
                std::env::remove_var("UKEY_NO_PCSC");
            }
        }
        let ctx = Pkcs11::new(&path).map_err(|e| {
            CliError::new(format!("loading {}: {e}", path.display())).with_kind(ErrorKind::Module)
        })?;
        ctx.initialize(CInitializeArgs::OsThreads)
            .map_err(|e| fail(&format!("initializing {}", path.display()), e))?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| fail("listing the module's slots", e))?;
        let want = description_of(reader);
        let mut found = Vec::new();
        for s in slots {
            let info = ctx
                .get_slot_info(s)
                .map_err(|e| fail("reading a slot", e))?;
            let matches = match origin {
                #[cfg(feature = "sim")]
                Origin::Sim(_) => true,
                Origin::Pcsc(_) => info.slot_description().trim_end() == want,
            };
            if matches {
                found.push(s);
            }
        }
        let slot = match found[..] {
            [s] => s,
            [] => {
                return Err(CliError::new(format!(
                    "the PKCS#11 module shows no token in {reader}"
                )))
            }
            _ => {
                return Err(CliError::new(format!(
                    "the PKCS#11 module shows several tokens for {reader}"
                )))
            }
        };
        let session = ctx
            .open_rw_session(slot)
            .map_err(|e| fail("opening a session", e))?;
        Ok(Self {
            session,
            ctx,
            logged_in: false,
        })
    }

    /// Close the session and finalize the module (its caches go with it).
    pub fn close(self) {
        let Self { session, ctx, .. } = self;
        drop(session);
        ctx.finalize();
    }

    // ---- login ------------------------------------------------------------

    /// C_Login as the user with the PIN: with the token's PIN-protected
    /// management key this authorises the writes too. A wrong PIN comes
    /// back as `EXIT_WRONG_SECRET` (the caller reads the tries left).
    pub fn login_user(&mut self, pin: &apdu::piv::Pin) -> Result<()> {
        if self.logged_in {
            return Ok(());
        }
        let raw = RawAuthPin::new(pin.as_bytes().to_vec());
        self.session
            .login_with_raw(UserType::User, &raw)
            .map_err(|e| fail("logging in with the PIN", e))?;
        self.logged_in = true;
        Ok(())
    }

    // ---- reading ----------------------------------------------------------

    fn find(&self, template: &[Attribute]) -> Result<Option<ObjectHandle>> {
        let found = self
            .session
            .find_objects(template)
            .map_err(|e| fail("searching the token", e))?;
        Ok(found.first().copied())
    }

    fn bytes(&self, h: ObjectHandle, kind: AttributeType) -> Result<Vec<u8>> {
        let attrs = self
            .session
            .get_attributes(h, &[kind])
            .map_err(|e| fail("reading an attribute", e))?;
        match attrs.into_iter().next() {
            Some(Attribute::Value(v) | Attribute::PublicKeyInfo(v)) => Ok(v),
            _ => Err(CliError::new(format!(
                "the PKCS#11 module did not give {kind}"
            ))),
        }
    }

    fn flag(&self, h: ObjectHandle, kind: AttributeType) -> Result<bool> {
        let attrs = self
            .session
            .get_attributes(h, &[kind])
            .map_err(|e| fail("reading an attribute", e))?;
        Ok(matches!(
            attrs.first(),
            Some(Attribute::Modifiable(true) | Attribute::AlwaysAuthenticate(true))
        ) || matches!(
            attrs.first(),
            Some(Attribute::VendorDefined((_, v))) if v.as_slice() == [1]
        ))
    }

    /// The certificate (DER) in `slot`.
    pub fn cert(&self, slot: Slot) -> Result<Option<Vec<u8>>> {
        match self.find(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![slot.cka_id()]),
        ])? {
            Some(h) => self.bytes(h, AttributeType::Value).map(Some),
            None => Ok(None),
        }
    }

    /// The public key (SubjectPublicKeyInfo DER) of the key in `slot`; the
    /// module shows a public key object only for a key that is there.
    pub fn public_key(&self, slot: Slot) -> Result<Option<Vec<u8>>> {
        match self.find(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(vec![slot.cka_id()]),
        ])? {
            Some(h) => self.bytes(h, AttributeType::PublicKeyInfo).map(Some),
            None => Ok(None),
        }
    }

    /// The private key object of `slot` (visible after the login).
    fn private_key(&self, slot: Slot) -> Result<Option<ObjectHandle>> {
        self.find(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(vec![slot.cka_id()]),
        ])
    }

    fn require_private_key(&self, slot: Slot) -> Result<ObjectHandle> {
        self.private_key(slot)?
            .ok_or_else(|| CliError::new(format!("slot {slot} holds no private key")))
    }

    /// Whether the module can move the key in `slot` (CKA_UKEY_MOVABLE: the
    /// card has MOVE KEY). Needs the login.
    pub fn can_move(&self, slot: Slot) -> Result<bool> {
        let h = self.require_private_key(slot)?;
        self.flag(h, AttributeType::VendorDefined(CKA_UKEY_MOVABLE))
    }

    /// Tell the module this object is to be destroyed on purpose (objects
    /// in 9A/9C/9D/9E are protected from clients that delete by subject).
    fn mean_to_destroy(&self, h: ObjectHandle, what: &str) -> Result<()> {
        self.session
            .update_attributes(
                h,
                &[Attribute::VendorDefined((
                    AttributeType::VendorDefined(CKA_UKEY_DESTROY),
                    vec![1],
                ))],
            )
            .map_err(|e| fail(what, e))
    }

    // ---- keys and signatures ----------------------------------------------

    /// C_GenerateKeyPair in `slot`.
    pub fn generate(
        &self,
        slot: Slot,
        alg: Algorithm,
        pin: PinPolicy,
        touch: TouchPolicy,
    ) -> Result<()> {
        let id = Attribute::Id(vec![slot.cka_id()]);
        let mut public = vec![Attribute::Token(true), Attribute::Verify(true), id.clone()];
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            id,
        ];
        if pin != PinPolicy::Default {
            private.push(Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_UKEY_PIN_POLICY),
                ck_ulong(u64::from(pin.code())),
            )));
        }
        if touch != TouchPolicy::Default {
            private.push(Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_UKEY_TOUCH_POLICY),
                ck_ulong(u64::from(touch.code())),
            )));
        }
        let mech = if alg.is_rsa() {
            public.push(Attribute::ModulusBits((alg.bits() as u64).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        } else {
            let params = match alg {
                Algorithm::EccP256 => const_oid::db::rfc5912::SECP_256_R_1,
                Algorithm::EccP384 => const_oid::db::rfc5912::SECP_384_R_1,
                other => {
                    return Err(CliError::new(format!(
                        "{other} keys cannot be renewed by ukey"
                    )))
                }
            };
            let der = der::Encode::to_der(&params)
                .map_err(|e| CliError::new(format!("encoding the curve: {e}")))?;
            public.push(Attribute::EcParams(der));
            Mechanism::EccKeyPairGen
        };
        self.session
            .generate_key_pair(&mech, &public, &private)
            .map_err(|e| fail(&format!("generating the key in slot {slot}"), e))?;
        Ok(())
    }

    /// Sign `msg` with the key in `slot` (SHA-256 for RSA PKCS#1 v1.5 and
    /// P-256, SHA-384 for P-384), in the form X.509 wants: the RSA block or
    /// a DER `SEQUENCE { r, s }`. A PIN-always key gets its
    /// context-specific login with `pin`.
    pub fn sign(
        &self,
        slot: Slot,
        alg: Algorithm,
        msg: &[u8],
        pin: &apdu::piv::Pin,
    ) -> Result<Vec<u8>> {
        let key = self.require_private_key(slot)?;
        let mech = match alg {
            a if a.is_rsa() => Mechanism::Sha256RsaPkcs,
            Algorithm::EccP256 => Mechanism::EcdsaSha256,
            Algorithm::EccP384 => Mechanism::EcdsaSha384,
            other => return Err(CliError::new(format!("{other} keys cannot sign here"))),
        };
        let what = format!("signing with the key in slot {slot}");
        let raw = if self.flag(key, AttributeType::AlwaysAuthenticate)? {
            self.session
                .sign_init(&mech, key)
                .map_err(|e| fail(&what, e))?;
            let p = RawAuthPin::new(pin.as_bytes().to_vec());
            self.session
                .login_with_raw(UserType::ContextSpecific, &p)
                .map_err(|e| fail(&what, e))?;
            self.session.sign_update(msg).map_err(|e| fail(&what, e))?;
            self.session.sign_final().map_err(|e| fail(&what, e))?
        } else {
            self.session
                .sign(&mech, key, msg)
                .map_err(|e| fail(&what, e))?
        };
        let bad = |e: String| CliError::new(format!("{what}: unusable signature: {e}"));
        Ok(match alg {
            Algorithm::EccP256 => p256::ecdsa::Signature::from_slice(&raw)
                .map_err(|e| bad(e.to_string()))?
                .to_der()
                .as_bytes()
                .to_vec(),
            Algorithm::EccP384 => p384::ecdsa::Signature::from_slice(&raw)
                .map_err(|e| bad(e.to_string()))?
                .to_der()
                .as_bytes()
                .to_vec(),
            _ => raw,
        })
    }

    // ---- writes -----------------------------------------------------------

    /// C_CreateObject of a certificate in `slot`. With `promote_from`, the
    /// certificate is for the key in that slot (about to be moved here).
    pub fn write_cert(&self, slot: Slot, der: &[u8], promote_from: Option<Slot>) -> Result<()> {
        let mut t = vec![
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Id(vec![slot.cka_id()]),
            Attribute::Value(der.to_vec()),
        ];
        if let Some(from) = promote_from {
            t.push(Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_UKEY_PROMOTE_FROM),
                vec![from.cka_id()],
            )));
        }
        self.session
            .create_object(&t)
            .map_err(|e| fail(&format!("writing the certificate into slot {slot}"), e))?;
        Ok(())
    }

    /// C_DestroyObject of the certificate in `slot` (if any).
    pub fn delete_cert(&self, slot: Slot) -> Result<()> {
        if let Some(h) = self.find(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(vec![slot.cka_id()]),
        ])? {
            let what = format!("deleting the certificate of slot {slot}");
            self.mean_to_destroy(h, &what)?;
            self.session.destroy_object(h).map_err(|e| fail(&what, e))?;
        }
        Ok(())
    }

    /// C_DestroyObject of the private key in `slot` (DELETE KEY, 5.7).
    pub fn delete_key(&self, slot: Slot) -> Result<()> {
        let h = self.require_private_key(slot)?;
        let what = format!("deleting the key in slot {slot}");
        self.mean_to_destroy(h, &what)?;
        self.session.destroy_object(h).map_err(|e| fail(&what, e))
    }

    /// Move the private key of `from` into the empty `to` (C_SetAttributeValue
    /// of its CKA_ID: the module's MOVE KEY).
    pub fn move_key(&self, from: Slot, to: Slot) -> Result<()> {
        let h = self.require_private_key(from)?;
        self.session
            .update_attributes(h, &[Attribute::Id(vec![to.cka_id()])])
            .map_err(|e| fail(&format!("moving the key from slot {from} to {to}"), e))
    }

    // ---- the renewal data object ------------------------------------------

    fn renewal_object(&self) -> Result<Option<ObjectHandle>> {
        self.find(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Application(RENEWAL_APPLICATION.as_bytes().to_vec()),
        ])
    }

    /// The renewal data object's value.
    pub fn renewal(&self) -> Result<Option<Vec<u8>>> {
        match self.renewal_object()? {
            Some(h) => self.bytes(h, AttributeType::Value).map(Some),
            None => Ok(None),
        }
    }

    /// Store `value` in the renewal data object (one PUT DATA either way).
    pub fn set_renewal(&self, value: &[u8]) -> Result<()> {
        let what = "writing the renewal marker";
        match self.renewal_object()? {
            Some(h) => self
                .session
                .update_attributes(h, &[Attribute::Value(value.to_vec())])
                .map_err(|e| fail(what, e)),
            None => self
                .session
                .create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Application(RENEWAL_APPLICATION.as_bytes().to_vec()),
                    Attribute::Value(value.to_vec()),
                ])
                .map(drop)
                .map_err(|e| fail(what, e)),
        }
    }

    /// Remove the renewal data object.
    pub fn delete_renewal(&self) -> Result<()> {
        if let Some(h) = self.renewal_object()? {
            self.session
                .destroy_object(h)
                .map_err(|e| fail("deleting the renewal marker", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_attributes_are_the_modules() {
        assert_eq!(CKA_UKEY_PIN_POLICY, ukey_pkcs11::CKA_UKEY_PIN_POLICY);
        assert_eq!(CKA_UKEY_TOUCH_POLICY, ukey_pkcs11::CKA_UKEY_TOUCH_POLICY);
        assert_eq!(CKA_UKEY_PROMOTE_FROM, ukey_pkcs11::CKA_UKEY_PROMOTE_FROM);
        assert_eq!(CKA_UKEY_DESTROY, ukey_pkcs11::CKA_UKEY_DESTROY);
        assert_eq!(CKA_UKEY_MOVABLE, ukey_pkcs11::CKA_UKEY_MOVABLE);
        assert_eq!(RENEWAL_APPLICATION, ukey_pkcs11::RENEWAL_APPLICATION);
    }

    #[test]
    fn slot_descriptions_are_cut_as_the_module_cuts_them() {
        assert_eq!(description_of("Virtual PCD 00 00"), "Virtual PCD 00 00");
        let long = "x".repeat(70);
        assert_eq!(description_of(&long).len(), 64);
        let wide = "é".repeat(40);
        assert_eq!(description_of(&wide).len(), 64);
    }
}
