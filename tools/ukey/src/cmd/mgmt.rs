//! `ukey mgmt-key protect`: make the management key PIN-protected (the
//! YubiKey convention ykman and yubico-piv-tool use), so that a user who
//! knows only the PIN — and every PKCS#11 client logged in with it (NSS,
//! certmonger, p11tool, OpenSSL) — can generate keys and write certificates.

use super::{who, Ctx};
use crate::auth::{authorize, gather_write, prepare_write};
use crate::error::{CliError, Result};
use crate::output;
use apdu::piv::{AdminData, ManagementKey, ObjectId, ProtectedManagementKey};
use rand::RngCore;
use serde::Serialize;
use zeroize::Zeroizing;

#[derive(Serialize)]
struct Protected {
    protected: bool,
    changed: bool,
    algorithm: String,
}

/// A new random management key of the current algorithm goes into PRINTED
/// (readable only after PIN verification) and becomes the card's key, then
/// ADMIN DATA says so. Order: PRINTED first (a pull there changes nothing
/// the card uses), then SET MANAGEMENT KEY, then the flag; a pull before the
/// flag leaves the new key in PRINTED, where running the command again
/// finds it.
pub fn protect(ctx: &mut Ctx) -> Result<()> {
    let mut t = ctx.token()?;
    let prep = t.piv(prepare_write)?;
    if prep.mgmt.protected {
        let report = Protected {
            protected: true,
            changed: false,
            algorithm: prep
                .mgmt
                .algorithm
                .map(|a| a.name().to_string())
                .unwrap_or_default(),
        };
        return ctx.out.emit(&report, || {
            "The management key is already PIN-protected: nothing to do.\n".into()
        });
    }
    output::note(format!(
        "Protecting the management key of {}: a new random key replaces it and is kept on the \
         token behind the PIN (anyone with the PIN can then write keys and certificates; \
         nobody needs the old key any more).",
        who(prep.info.serial, &t.reader)
    ));
    let auth = gather_write(&prep, &mut ctx.secrets, true)?;
    let alg = t.piv(|s| {
        use crate::auth::{MgmtSource, WriteAuth};
        if let Some(pin) = &auth.pin {
            crate::auth::verify_pin(s, pin)?;
        }
        let source = match &auth.source {
            MgmtSource::Given(k) => MgmtSource::Given(k.clone()),
            MgmtSource::Default => MgmtSource::Default,
            MgmtSource::Protected => MgmtSource::Protected,
        };
        let current = WriteAuth {
            pin: None,
            source,
            mgmt: auth.mgmt,
        };
        let alg = match authorize(s, &current) {
            Ok(a) => a,
            Err(e) => {
                // An earlier run may have stopped after SET MANAGEMENT KEY:
                // the new key is then in PRINTED (readable after the PIN).
                let stored = crate::token::optional(s.get_data(ObjectId::PRINTED_INFORMATION))?
                    .and_then(|c| ProtectedManagementKey::parse(&c).ok());
                let Some(stored) = stored else { return Err(e) };
                let retry = WriteAuth {
                    pin: None,
                    source: MgmtSource::Given(stored.key.clone()),
                    mgmt: auth.mgmt,
                };
                authorize(s, &retry).map_err(|_| e)?
            }
        };
        let len = alg.key_len().ok_or_else(|| {
            CliError::new(format!("{} is no management key algorithm", alg.name()))
        })?;
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let key = ManagementKey::new(alg, &bytes)?;
        s.put_data(
            ObjectId::PRINTED_INFORMATION,
            &ProtectedManagementKey::encode(key.as_bytes()),
        )?;
        s.set_management_key(&key, false)?;
        let mut admin = crate::token::optional(s.get_data(ObjectId::ADMIN_DATA))?
            .and_then(|c| AdminData::parse(&c).ok())
            .unwrap_or(AdminData {
                flags: 0,
                salt: None,
                pin_timestamp: None,
            });
        admin.flags |= AdminData::FLAG_MGMT_KEY_STORED;
        s.put_data(ObjectId::ADMIN_DATA, &admin.encode())?;
        // Read back: the card now authenticates with the stored key.
        let back = crate::token::optional(s.get_data(ObjectId::PRINTED_INFORMATION))?
            .and_then(|c| ProtectedManagementKey::parse(&c).ok())
            .ok_or_else(|| CliError::new("the protected management key did not read back"))?;
        s.authenticate(&ManagementKey::new(alg, &back.key)?)?;
        Ok(alg)
    })?;
    let report = Protected {
        protected: true,
        changed: true,
        algorithm: alg.name().to_string(),
    };
    ctx.out.emit(&report, || {
        format!(
            "The management key is now a new random {} key kept on the token behind the PIN: \
             the PIN alone authorises key generation and certificate writes (ukey, and PKCS#11 \
             clients such as NSS, certmonger and p11tool).\n",
            alg.name()
        )
    })
}
