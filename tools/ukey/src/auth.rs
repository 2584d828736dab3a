//! PIN/PUK counters (read without spending a try), PIN verification with
//! tries-left feedback, and management-key authorisation for writes.
//!
//! Commands work in two transactions: the first reads what is needed to
//! know which secrets to ask for (tries left, management key mode), the
//! user is asked outside any transaction (so the card is not held while
//! someone types), and the second verifies and acts.

use crate::error::{CliError, ErrorKind, Result, EXIT_BLOCKED, EXIT_WRONG_SECRET};
use crate::output;
use crate::secrets::{Kind, Secrets};
use crate::token::optional;
use apdu::piv::caps::{PinCount, Tries};
use apdu::piv::{
    AdminData, Algorithm, ManagementKey, ObjectId, Pin, ProtectedManagementKey,
    DEFAULT_MANAGEMENT_KEY,
};
use apdu::{Session, StatusWord};
use serde::Serialize;
use zeroize::Zeroizing;

/// What the card answers (identity, GET METADATA's reliability), probed
/// from its answers, never from its version number: `apdu::piv::caps`,
/// which the PKCS#11 module uses too.
pub use apdu::piv::caps::CardFacts as CardInfo;

/// Probe the card (SELECTed): GET VERSION, and on a card that answers it
/// GET SERIAL and GET METADATA of the PIN; the CHUID without a serial.
pub fn read_info(s: &mut Session<'_>) -> Result<CardInfo> {
    Ok(CardInfo::probe(s)?)
}

/// A PIN or PUK retry counter.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Counter {
    pub tries_left: u8,
    /// Unknown when only an empty VERIFY could tell.
    pub tries_total: Option<u8>,
    /// Still the factory value (metadata only).
    pub default: Option<bool>,
}

impl From<Tries> for Counter {
    fn from(t: Tries) -> Self {
        Self {
            tries_left: t.left,
            tries_total: t.total,
            default: t.default,
        }
    }
}

impl Counter {
    pub fn blocked(&self) -> bool {
        self.tries_left == 0
    }

    pub fn describe(&self) -> String {
        let of = self
            .tries_total
            .map(|t| format!(" of {t}"))
            .unwrap_or_default();
        match self.tries_left {
            0 => "BLOCKED".to_string(),
            1 => format!("1{of} try left"),
            n => format!("{n}{of} tries left"),
        }
    }
}

/// The PIN counter without spending a try: GET METADATA 80 where it
/// works, else an empty VERIFY. `None` when the PIN is verified in this
/// card session and the card has no working metadata (an empty VERIFY then
/// gives no count), or when the card cannot tell at all.
pub fn pin_counter(s: &mut Session<'_>, info: &CardInfo) -> Result<Option<Counter>> {
    Ok(match info.pin_count(s)? {
        Some(PinCount::Tries(t)) => Some(t.into()),
        Some(PinCount::Verified) | None => None,
    })
}

/// The PIN counter right after [`read_info`]: the probe's own GET METADATA
/// answer where it gave one (no second APDU), else as [`pin_counter`].
pub fn first_pin_counter(s: &mut Session<'_>, info: &CardInfo) -> Result<Option<Counter>> {
    match info.pin {
        Some(t) => Ok(Some(t.into())),
        None => pin_counter(s, info),
    }
}

/// The PUK counter: only GET METADATA 81 can tell (there is no VERIFY for
/// the PUK), so `None` where it does not work — never a guess.
pub fn puk_counter(s: &mut Session<'_>, info: &CardInfo) -> Result<Option<Counter>> {
    Ok(info.puk_tries(s)?.map(Counter::from))
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

/// How the management key is kept on the token.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct MgmtInfo {
    /// Algorithm (metadata only).
    #[serde(serialize_with = "ser_alg")]
    pub algorithm: Option<Algorithm>,
    /// Still the factory key (metadata only).
    pub default: Option<bool>,
    /// Stored in PRINTED, readable after PIN verification (ADMIN DATA flag 0x02).
    pub protected: bool,
}

fn ser_alg<S: serde::Serializer>(
    a: &Option<Algorithm>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.serialize_some(a.name()),
        None => s.serialize_none(),
    }
}

/// ADMIN DATA (protected?) and GET METADATA 9B (algorithm, default?);
/// a card that keeps no ADMIN DATA (`6A80`) has no PIN-protected key.
pub fn mgmt_info(s: &mut Session<'_>, info: &CardInfo) -> Result<MgmtInfo> {
    let protected = match optional(s.get_data(ObjectId::ADMIN_DATA))? {
        Some(content) => AdminData::parse(&content)
            .map(|a| a.management_key_protected())
            .unwrap_or(false),
        None => false,
    };
    let md = info.management_key(s)?;
    Ok(MgmtInfo {
        algorithm: md.as_ref().and_then(|m| m.algorithm),
        default: md.as_ref().and_then(|m| m.is_default),
        protected,
    })
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

/// Candidate algorithms for a management key of `len` bytes when the card
/// cannot tell (no metadata): 24 bytes is 3DES before firmware 5.7, AES-192 after.
fn candidates(known: Option<Algorithm>, len: usize) -> Vec<Algorithm> {
    match known {
        Some(a) => vec![a],
        None => match len {
            16 => vec![Algorithm::Aes128],
            24 => vec![Algorithm::Tdes, Algorithm::Aes192],
            32 => vec![Algorithm::Aes256],
            _ => Vec::new(),
        },
    }
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
    let algs = candidates(auth.mgmt.algorithm, key.len());
    if algs.is_empty() {
        return Err(CliError::new(format!(
            "a management key of {} bytes fits no algorithm (16, 24 or 32 bytes)",
            key.len()
        )));
    }
    for alg in algs {
        let mk = ManagementKey::new(alg, &key)?;
        match s.authenticate(&mk) {
            Ok(()) => return Ok(alg),
            Err(apdu::Error::Transport(t)) => return Err(apdu::Error::Transport(t).into()),
            Err(_) => continue,
        }
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

    #[test]
    fn management_key_algorithm_candidates() {
        assert_eq!(
            candidates(None, 24),
            vec![Algorithm::Tdes, Algorithm::Aes192]
        );
        assert_eq!(
            candidates(Some(Algorithm::Aes192), 24),
            vec![Algorithm::Aes192]
        );
        assert!(candidates(None, 5).is_empty());
    }

    #[test]
    fn counters_describe_themselves() {
        let c = Counter {
            tries_left: 2,
            tries_total: Some(3),
            default: None,
        };
        assert_eq!(c.describe(), "2 of 3 tries left");
        let b = Counter { tries_left: 0, ..c };
        assert_eq!(b.describe(), "BLOCKED");
    }
}
