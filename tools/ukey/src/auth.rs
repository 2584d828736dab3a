//! PIN/PUK counters (read without spending a try), PIN verification with
//! tries-left feedback, and management-key authorisation for writes. What
//! the card says (facts, counters, the management key's mode and
//! algorithms) is the token service's ([`ukey_token`]), which the PKCS#11
//! module uses too; here are the CLI's parts: prompts, warnings and the
//! messages a user reads.
//!
//! Commands work in two transactions: the first reads what is needed to
//! know which secrets to ask for (tries left, management key mode), the
//! user is asked outside any transaction (so the card is not held while
//! someone types), and the second verifies and acts.

use crate::error::{CliError, ErrorKind, Result, EXIT_BLOCKED, EXIT_WRONG_SECRET};
use crate::output;
use crate::secrets::{Kind, Secrets};
use crate::token::optional;
use apdu::piv::{Algorithm, ObjectId, Pin, ProtectedManagementKey, DEFAULT_MANAGEMENT_KEY};
use apdu::{Session, StatusWord};
use ukey_token::mgmt::{self, AuthError};
use zeroize::Zeroizing;

pub use ukey_token::counters::{first_pin_counter, pin_counter, puk_counter, Counter};
pub use ukey_token::mgmt::{mgmt_info, MgmtInfo};

/// What the card answers (identity, GET METADATA's reliability), probed
/// from its answers, never from its version number: `apdu::piv::caps`,
/// which the PKCS#11 module uses too.
pub use apdu::piv::caps::CardFacts as CardInfo;

/// Probe the card (SELECTed): GET VERSION, and on a card that answers it
/// GET SERIAL and GET METADATA of the PIN; the CHUID without a serial.
pub fn read_info(s: &mut Session<'_>) -> Result<CardInfo> {
    Ok(ukey_token::card::read_card_info(s)?.facts)
}

fn is_puk(kind: Kind) -> bool {
    matches!(kind, Kind::Puk | Kind::NewPuk)
}

/// The error for a blocked PIN or PUK, with the way out.
pub fn blocked(kind: Kind) -> CliError {
    let (msg, k) = if is_puk(kind) {
        (
            "the PUK is blocked: the PIN can no longer be unblocked; only a factory reset \
         (`ukey reset`, which erases every key and certificate) makes a blocked token usable again",
            ErrorKind::PukLocked,
        )
    } else {
        (
            "the PIN is blocked: unblock it with the PUK: `ukey pin unblock`",
            ErrorKind::PinLocked,
        )
    };
    CliError::new(msg)
        .with_code(EXIT_BLOCKED)
        .with_kind(k)
        .with_tries_left(0)
}

/// The error for a wrong PIN or PUK, with the tries left.
pub fn wrong(kind: Kind, tries_left: u8) -> CliError {
    let what = if is_puk(kind) { "PUK" } else { "PIN" };
    let incorrect = if is_puk(kind) {
        ErrorKind::PukIncorrect
    } else {
        ErrorKind::PinIncorrect
    };
    let e = match tries_left {
        0 => {
            let b = blocked(kind);
            return CliError::new(format!("wrong {what}, 0 tries left: {}", b.message))
                .with_code(EXIT_BLOCKED)
                .with_kind(b.kind)
                .with_tries_left(0);
        }
        1 => CliError::new(format!(
            "wrong {what}, 1 try left. WARNING: one more wrong {what} blocks the {what}"
        ))
        .with_code(EXIT_WRONG_SECRET),
        n => CliError::new(format!("wrong {what}, {n} tries left")).with_code(EXIT_WRONG_SECRET),
    };
    e.with_kind(incorrect).with_tries_left(tries_left)
}

/// Map the card's answer to VERIFY / CHANGE REFERENCE / RESET RETRY.
pub fn check(kind: Kind, r: std::result::Result<(), apdu::Error>) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(apdu::Error::Status(StatusWord::VerifyFailed { tries_left })) => {
            Err(wrong(kind, tries_left))
        }
        Err(apdu::Error::Status(StatusWord::Blocked)) => Err(blocked(kind)),
        Err(e) => Err(e.into()),
    }
}

/// Before asking for a PIN/PUK: refuse when blocked, show the tries left
/// on a terminal, and warn loudly before the final try.
pub fn announce(kind: Kind, counter: Option<&Counter>) -> Result<()> {
    let Some(c) = counter else { return Ok(()) };
    let what = if is_puk(kind) { "PUK" } else { "PIN" };
    if c.blocked() {
        return Err(blocked(kind));
    }
    if c.tries_left == 1 {
        output::note(format_args!(
            "ukey: WARNING: LAST {what} TRY: 1 try left. A wrong {what} now BLOCKS the {what}{}.",
            if is_puk(kind) {
                " for good (then only a factory reset helps)"
            } else {
                " (then only the PUK can unblock it)"
            }
        ));
    } else if output::interactive() {
        output::note(format_args!(
            "{what} tries left: {}{}",
            c.tries_left,
            c.tries_total
                .map(|t| format!(" of {t}"))
                .unwrap_or_default()
        ));
    }
    Ok(())
}

/// Where the management key for a write comes from.
pub enum MgmtSource {
    /// PRINTED, after PIN verification.
    Protected,
    /// The factory default key (the card says it still has it).
    Default,
    /// Given by the user.
    Given(Zeroizing<Vec<u8>>),
}

/// What a write needs: the PIN (for a PIN-protected key) and the key's source.
pub struct WriteAuth {
    pub pin: Option<Pin>,
    pub source: MgmtSource,
    pub mgmt: MgmtInfo,
}

/// What the first transaction reads for a write.
#[derive(Debug, Clone)]
pub struct WritePrep {
    pub info: CardInfo,
    pub mgmt: MgmtInfo,
    pub pin: Option<Counter>,
}

/// First transaction of a write (after SELECT).
pub fn prepare_write(s: &mut Session<'_>) -> Result<WritePrep> {
    let info = read_info(s)?;
    let mgmt = mgmt_info(s, &info)?;
    let pin = first_pin_counter(s, &info)?;
    Ok(WritePrep { info, mgmt, pin })
}

/// Outside any transaction: collect what the write needs. `need_pin` asks
/// for the PIN even when the management key does not need it.
pub fn gather_write(prep: &WritePrep, secrets: &mut Secrets, need_pin: bool) -> Result<WriteAuth> {
    let source = if let Some(k) = secrets.given_mgmt_key()? {
        MgmtSource::Given(k)
    } else if prep.mgmt.protected {
        MgmtSource::Protected
    } else if prep.mgmt.default == Some(true) {
        output::warn(
            "this token still has the factory default management key: anyone holding it can \
             replace its keys and certificates",
        );
        MgmtSource::Default
    } else {
        match secrets.prompt_mgmt_key()? {
            Some(k) => MgmtSource::Given(k),
            None => {
                return Err(CliError::new(
                    "this token's management key is needed (it is not PIN-protected): give it \
                     with --mgmt-key HEX or UKEY_MGMT_KEY",
                ))
            }
        }
    };
    let pin = if need_pin || matches!(source, MgmtSource::Protected) {
        announce(Kind::Pin, prep.pin.as_ref())?;
        Some(secrets.pin(Kind::Pin)?)
    } else {
        None
    };
    Ok(WriteAuth {
        pin,
        source,
        mgmt: prep.mgmt,
    })
}

/// VERIFY the PIN, mapping failures to tries-left messages.
pub fn verify_pin(s: &mut Session<'_>, pin: &Pin) -> Result<()> {
    check(Kind::Pin, s.verify_pin(pin))
}

/// Second transaction of a write (after SELECT): verify the PIN if given,
/// then authenticate with the management key. The key is never printed.
/// Returns the key's algorithm (the one the card accepted).
pub fn authorize(s: &mut Session<'_>, auth: &WriteAuth) -> Result<Algorithm> {
    if let Some(pin) = &auth.pin {
        verify_pin(s, pin)?;
    }
    let key: Zeroizing<Vec<u8>> = match &auth.source {
        MgmtSource::Given(k) => k.clone(),
        MgmtSource::Default => Zeroizing::new(DEFAULT_MANAGEMENT_KEY.to_vec()),
        MgmtSource::Protected => {
            let content =
                optional(s.get_data(ObjectId::PRINTED_INFORMATION))?.ok_or_else(|| {
                    CliError::new(
                        "ADMIN DATA says the management key is PIN-protected but PRINTED holds \
                     none: give the key with --mgmt-key",
                    )
                })?;
            ProtectedManagementKey::parse(&content)
                .map_err(|_| {
                    CliError::new(
                        "the PIN-protected management key in PRINTED is malformed: give the key \
                         with --mgmt-key",
                    )
                })?
                .key
        }
    };
    match mgmt::authenticate(s, &key, auth.mgmt.algorithm) {
        Ok(alg) => return Ok(alg),
        Err(AuthError::Card(e)) => return Err(e.into()),
        Err(e @ AuthError::NoAlgorithm(_)) => return Err(CliError::new(e.to_string())),
        Err(AuthError::Refused(_)) => {}
    }
    Err(CliError::new(match auth.source {
        MgmtSource::Given(_) => "the management key is wrong (authentication failed)",
        MgmtSource::Default => "the factory default management key was refused",
        MgmtSource::Protected => "the PIN-protected management key was refused by the token",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_pin_messages_count_down_to_blocked() {
        let e = wrong(Kind::Pin, 2);
        assert_eq!(e.message, "wrong PIN, 2 tries left");
        assert_eq!(e.code, EXIT_WRONG_SECRET);
        let e = wrong(Kind::Pin, 1);
        assert!(
            e.message.contains("1 try left") && e.message.contains("WARNING"),
            "{e}"
        );
        let e = wrong(Kind::Pin, 0);
        assert!(e.message.contains("ukey pin unblock"), "{e}");
        assert_eq!(e.code, EXIT_BLOCKED);
        assert!(wrong(Kind::Puk, 0).message.contains("ukey reset"));
    }
}
