//! `ukey renew request | install | status | cancel`: the token side of a
//! CA's online renewal (DESIGN.md "Renewal").
//!
//! The card is reached through the PKCS#11 module ([`crate::p11`]), as a
//! renewal client reaches it; `apdu` is used only for what PKCS#11 cannot
//! tell: the PIN tries left (GET METADATA, no try spent) and the final
//! status report. The staged renewal is remembered on the token itself
//! ([`crate::marker`]), so the install may run days later on another PC.
//!
//! Renewal needs a PIN-protected management key (the YubiKey convention
//! the CA's tokens use): the user knows only the PIN, and one PKCS#11 user
//! login then authorises every step.

mod checks;
mod feedback;
mod install;
mod manage;
mod request;

pub use checks::Allow;
pub use feedback::{Feedback, PinFrom, Terminal};
pub use install::{install, install_core, preview};
pub use manage::{cancel, cancel_core, clean, status};
pub use request::{request, request_core};

use crate::auth::{pin_counter, wrong, WritePrep};
use crate::certs::{canonical_spki, CertSummary};
use crate::error::{CliError, Result, EXIT_INTERRUPTED, EXIT_WRONG_SECRET};
use crate::marker::{key_hash, KeyHash, Marker, Renewed, Staged};
use crate::p11::P11Token;
use crate::secrets::Kind;
use crate::supersede::{KeySeen, Seen};
use crate::token::TokenRef;
use apdu::piv::{Pin, Slot};
use std::sync::atomic::{AtomicBool, Ordering};
pub use ukey_token::phase::{day, phase_of, utc, Phase, SlotKeys};

/// Refuse tokens whose management key the user does not have.
fn require_protected(prep: &WritePrep, reader: &str) -> Result<()> {
    if prep.mgmt.protected {
        return Ok(());
    }
    Err(CliError::new(format!(
        "the token in {reader} has no PIN-protected management key: renewal needs one, so \
         that the PIN alone authorises it (`ykman piv access change-management-key \
         --protect`); otherwise use `ukey keygen`, `ukey csr` and `ukey cert import` \
         with --mgmt-key"
    )))
}

/// Get the PIN (on a terminal: showing the tries left) and log in to the
/// module with it; the PIN is returned for PIN-always keys. A wrong PIN
/// reports the tries left, read without spending one.
fn pin_login(pin: PinFrom<'_>, p: &mut P11Token, tref: &TokenRef, prep: &WritePrep) -> Result<Pin> {
    let pin = pin.get(prep)?;
    match p.login_user(&pin) {
        Err(e) if e.code == EXIT_WRONG_SECRET => {}
        done => return done.map(|()| pin),
    }
    let left = tref
        .connect()
        .and_then(|mut t| t.piv(|s| Ok(pin_counter(s, &prep.info)?)));
    Err(match left {
        Ok(Some(c)) => wrong(Kind::Pin, c.tries_left),
        _ => CliError::new("wrong PIN").with_code(EXIT_WRONG_SECRET),
    })
}

/// Set by SIGINT, SIGTERM and SIGHUP (a closed terminal) while a renewal
/// writes: the run stops at the next point between two safe steps.
static STOP: AtomicBool = AtomicBool::new(false);

/// The program handles the signals itself and calls [`request_stop`]
/// (`ukey ui`, whose runtime owns SIGINT and SIGTERM).
static SIGNALS_BY_CALLER: AtomicBool = AtomicBool::new(false);

/// Renewals in this process leave SIGINT, SIGTERM and SIGHUP alone from
/// now on; the program stops them with [`request_stop`].
pub fn leave_signals_to_caller() {
    SIGNALS_BY_CALLER.store(true, Ordering::SeqCst);
}

/// Stop the running renewals at their next point between two safe steps
/// (for programs that handle the signals themselves).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

fn own_signals() -> bool {
    !SIGNALS_BY_CALLER.load(Ordering::SeqCst)
}

extern "C" fn stop_requested(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The module session of a renewal that writes, with what it needs to
/// start again from a fresh module (caches gone) when another program
/// changed the token, and the stop request of a signal.
pub struct Live<'a> {
    p: Option<P11Token>,
    tref: &'a TokenRef,
    pin: Pin,
    /// Renewals this run claimed for cancelling (or found so claimed).
    claimed: Vec<Slot>,
}

impl<'a> Live<'a> {
    /// Signals stop the run between steps from now on.
    fn new(p: P11Token, tref: &'a TokenRef, pin: Pin) -> Self {
        for sig in STOP_SIGNALS.into_iter().filter(|_| own_signals()) {
            let handler = stop_requested as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // SAFETY: the handler only stores to an atomic, which is
            // async-signal-safe; the previous handler is restored in Drop.
            unsafe { libc::signal(sig, handler) };
        }
        Self {
            p: Some(p),
            tref,
            pin,
            claimed: Vec::new(),
        }
    }

    fn token(&self) -> &P11Token {
        self.p.as_ref().expect("a Live always holds a session")
    }

    /// A fresh module (nothing cached) logged in again with the same PIN.
    fn reopen(&mut self) -> Result<()> {
        if let Some(old) = self.p.take() {
            old.close();
        }
        let mut p = P11Token::open(&self.tref.origin, &self.tref.reader)?;
        p.login_user(&self.pin)?;
        self.p = Some(p);
        Ok(())
    }

    /// Between two steps: stop here if a signal asked for it.
    fn stop_point(&self) -> Result<()> {
        if STOP.load(Ordering::SeqCst) {
            return Err(CliError::new(
                "stopped on request between two steps: the token holds a complete key and \
                 certificate pair; run the same command again to finish",
            )
            .with_code(EXIT_INTERRUPTED));
        }
        Ok(())
    }

    fn close(mut self) {
        if let Some(p) = self.p.take() {
            p.close();
        }
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.p.take() {
            p.close();
        }
        for sig in STOP_SIGNALS.into_iter().filter(|_| own_signals()) {
            // SAFETY: restoring the default disposition.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
}

/// The renewal lock of the token (see [`crate::lock`]).
fn lock(tref: &TokenRef, prep: &WritePrep) -> Result<crate::lock::RenewalLock> {
    // A simulated token is its state file (named in the reader's name);
    // a card is itself, in whichever reader.
    let serial = match tref.origin {
        #[cfg(feature = "sim")]
        crate::token::Origin::Sim(_) => None,
        crate::token::Origin::Pcsc(_) => prep.info.serial,
    };
    crate::lock::acquire(&crate::lock::token_key(serial, &tref.reader))
}

/// The marker on the token (an empty one when there is none).
fn read_marker(p: &P11Token) -> Result<Marker> {
    match p.renewal()? {
        None => Ok(Marker::new()),
        Some(v) => Marker::parse(&v).map_err(|e| CliError::new(e.to_string())),
    }
}

/// Store the marker, or remove the data object when nothing is staged
/// and no renewed pair is recorded.
fn write_marker(p: &P11Token, m: &Marker) -> Result<()> {
    if m.is_empty() {
        p.delete_renewal()
    } else {
        p.set_renewal(&m.encode())
    }
}

/// What `slot` holds, through the module (for [`crate::supersede`]).
fn seen(p: &P11Token, slot: Slot) -> Result<Seen> {
    let key = match p.public_key(slot)? {
        Some(spki) => KeySeen::Known(hash_of(&spki)?),
        None => KeySeen::Absent,
    };
    let cert = p.cert(slot)?.and_then(|d| CertSummary::parse(&d).ok());
    Ok(Seen {
        key,
        cert_key: cert.as_ref().and_then(|c| hash_of(&c.spki_der).ok()),
        cert_not_before: cert.map(|c| c.not_before),
    })
}

/// Where the pair of `target`'s role is: `target` itself, or the retired
/// slot an earlier renewal left it in on a card without MOVE KEY.
fn home_slot(p: &P11Token, marker: &Marker, target: Slot) -> Result<(Slot, Option<Renewed>)> {
    Ok(
        match crate::supersede::home(marker, target, |s| seen(p, s))? {
            Some(h) => (h.live.slot, Some(h.live.clone())),
            None => (target, None),
        },
    )
}

/// The canonical key hash of a SubjectPublicKeyInfo.
fn hash_of(spki: &[u8]) -> Result<KeyHash> {
    Ok(key_hash(&canonical_spki(spki)?))
}

/// A staged renewal as the card shows it now.
struct Looked {
    phase: Phase,
    /// The staged key is in its retired slot.
    key_in_staged_slot: bool,
}

/// Whether `cert` (DER) certifies the key `hash`.
fn certifies(cert: Option<&[u8]>, hash: &KeyHash) -> bool {
    cert.and_then(|d| CertSummary::parse(d).ok())
        .and_then(|c| hash_of(&c.spki_der).ok())
        .is_some_and(|h| h == *hash)
}

/// Read where `e` stands (no login needed: public key objects and certificates).
fn look(p: &P11Token, e: &Staged) -> Result<Looked> {
    let keys = |slot: Slot| -> Result<(SlotKeys, bool)> {
        let key = p.public_key(slot)?;
        let present = key.is_some();
        let cert = p
            .cert(slot)?
            .and_then(|d| CertSummary::parse(&d).ok())
            .and_then(|c| hash_of(&c.spki_der).ok());
        Ok((
            SlotKeys {
                key: key.map(|k| hash_of(&k)).transpose()?,
                cert,
            },
            present,
        ))
    };
    let (t, _) = keys(e.target)?;
    let (r, present) = keys(e.staged)?;
    let (phase, key_in_staged_slot) = phase_of(e, t, r, present);
    Ok(Looked {
        phase,
        key_in_staged_slot,
    })
}

/// The subject DER of an entry, as text.
fn subject_text(der: &[u8]) -> String {
    use der::Decode;
    x509_cert::name::Name::from_der(der)
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "(unreadable subject)".into())
}

/// The slots a renewal may target.
pub fn parse_target(s: &str) -> std::result::Result<Slot, String> {
    match Slot::parse(s) {
        Some(
            slot @ (Slot::Authentication
            | Slot::Signature
            | Slot::KeyManagement
            | Slot::CardAuthentication),
        ) => Ok(slot),
        _ => Err(format!(
            "{s:?}: renewal is for the slots in use: 9a, 9c, 9d or 9e"
        )),
    }
}
