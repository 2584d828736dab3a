//! The error of the status model and the CLI: one line of reason (plus
//! optional notes shown before it, such as the list of tokens to choose
//! from), an exit code, and a `kind` whose names the JSON documents use
//! (stable: docs/ukey-json.schema.json lists them).

use apdu::{StatusWord, TransportError};

/// Anything that went wrong: the default.
pub const EXIT_FAILURE: u8 = 1;
/// A bad command line.
pub const EXIT_USAGE: u8 = 2;
/// A wrong PIN or PUK (tries were spent).
pub const EXIT_WRONG_SECRET: u8 = 3;
/// The PIN or PUK is blocked.
pub const EXIT_BLOCKED: u8 = 4;
/// The token went away in the middle of an operation (run it again).
pub const EXIT_REMOVED: u8 = 5;
/// Stopped on request (a signal: closed terminal, Ctrl-C) between two
/// safe steps of a write; running the command again finishes it.
pub const EXIT_INTERRUPTED: u8 = 6;
/// A bug (a panic was caught).
pub const EXIT_INTERNAL: u8 = 70;

/// What went wrong, for programs: the `kind` of a `--json` error. The
/// names are stable (docs/ukey-json.schema.json lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Anything not listed below.
    Failed,
    /// Bad command line (exit 2).
    Usage,
    /// A wrong PIN (`tries_left` says how many remain).
    PinIncorrect,
    PukIncorrect,
    PinLocked,
    PukLocked,
    /// The secret's form is wrong (length, characters): no try spent.
    SecretInvalid,
    /// A secret was needed and none could be asked for.
    SecretMissing,
    /// The token went away in the middle (exit 5).
    TokenRemoved,
    NoToken,
    /// Several tokens and none chosen.
    TokenAmbiguous,
    /// A destructive action was not confirmed.
    NotConfirmed,
    /// A renewal on a card without MOVE KEY, whose new pair would stay in
    /// a retired slot, was not accepted (`--retired-slot-ok`): nothing was
    /// asked or written.
    RetiredSlotNotConfirmed,
    /// No renewal is staged (for this certificate or slot).
    NotStaged,
    /// A renewal refused before anything was written (`reason` says why).
    CertificateRefused,
    /// The input file cannot be used (missing, too large, not a certificate).
    BadInput,
    /// Another program changed the token in the middle; nothing unsafe was done.
    Conflict,
    /// Another ukey renewal holds this token's lock.
    Busy,
    /// The token cannot do this (firmware, management key mode).
    Unsupported,
    /// The PKCS#11 module is missing or failed.
    Module,
    /// Stopped by a signal between safe steps (exit 6).
    Interrupted,
    /// A bug (exit 70).
    Internal,
}

#[derive(Debug)]
pub struct CliError {
    pub message: String,
    /// Lines printed on stderr before the reason.
    pub notes: Vec<String>,
    pub code: u8,
    pub kind: ErrorKind,
    /// PIN or PUK tries left, when the error is about one.
    pub tries_left: Option<u8>,
    /// A finer reason (e.g. why a certificate was refused).
    pub reason: Option<&'static str>,
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            notes: Vec::new(),
            code: EXIT_FAILURE,
            kind: ErrorKind::Failed,
            tries_left: None,
            reason: None,
        }
    }

    /// A new error of `kind`.
    pub fn with_kind_new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(message).with_kind(kind)
    }

    /// The exit code; the kind follows it where the code says enough.
    pub fn with_code(mut self, code: u8) -> Self {
        self.code = code;
        self.kind = match (code, self.kind) {
            (EXIT_REMOVED, _) => ErrorKind::TokenRemoved,
            (EXIT_INTERRUPTED, _) => ErrorKind::Interrupted,
            (EXIT_USAGE, _) => ErrorKind::Usage,
            (_, k) => k,
        };
        self
    }

    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn with_tries_left(mut self, n: u8) -> Self {
        self.tries_left = Some(n);
        self
    }

    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn with_notes(mut self, notes: Vec<String>) -> Self {
        self.notes = notes;
        self
    }

    /// Prefix the reason with what we were doing.
    pub fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The JSON error document (schema `error`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "schema_version": crate::SCHEMA_VERSION,
            "error": self.message,
            "kind": self.kind,
            "exit_code": self.code,
        });
        if let Some(n) = self.tries_left {
            doc["tries_left"] = n.into();
        }
        if let Some(r) = self.reason {
            doc["reason"] = r.into();
        }
        doc
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Human text for a status word the card answered to an operation.
pub fn describe_status(sw: StatusWord) -> String {
    let what = match sw {
        StatusWord::SecurityStatusNotSatisfied => {
            "the token wants the PIN or the management key first"
        }
        StatusWord::Blocked => "blocked",
        StatusWord::ConditionsNotSatisfied => "the token refused (conditions of use not satisfied)",
        StatusWord::FileNotFound => "not found on the token",
        StatusWord::ReferenceNotFound => "no such key on the token",
        StatusWord::NotEnoughMemory => "not enough memory on the token",
        StatusWord::InsNotSupported | StatusWord::FunctionNotSupported => {
            "the token does not support this operation"
        }
        StatusWord::IncorrectData => "the token rejected the data",
        StatusWord::WrongP1P2 | StatusWord::IncorrectP1P2 => {
            "the token rejected the parameters (unsupported slot or algorithm?)"
        }
        _ => sw.describe(),
    };
    format!("{what} ({:04X})", sw.to_u16())
}

pub fn describe_transport(e: &TransportError) -> String {
    match e {
        TransportError::CardRemoved => "the token was removed".into(),
        TransportError::CardReset => "the token was reset by another application: try again".into(),
        other => other.to_string(),
    }
}

impl From<apdu::Error> for CliError {
    fn from(e: apdu::Error) -> Self {
        match e {
            apdu::Error::Status(sw) => CliError::new(describe_status(sw)),
            apdu::Error::Transport(t @ TransportError::CardRemoved) => {
                CliError::new(describe_transport(&t)).with_kind(ErrorKind::TokenRemoved)
            }
            apdu::Error::Transport(t) => CliError::new(describe_transport(&t)),
            apdu::Error::Malformed(what) => {
                CliError::new(format!("the token sent a malformed {what}"))
            }
            apdu::Error::InvalidArgument(what) => CliError::new(what),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::new(e.to_string())
    }
}

/// `?` with context: `op().ctx("reading 9a")?`.
pub trait Context<T> {
    fn ctx(self, what: impl std::fmt::Display) -> Result<T>;
}

impl<T, E: Into<CliError>> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_read_as_sentences() {
        let e: CliError = apdu::Error::Status(StatusWord::SecurityStatusNotSatisfied).into();
        assert!(e.message.contains("PIN or the management key"), "{e}");
        assert!(e.message.contains("6982"), "{e}");
        let e = CliError::from(apdu::Error::Transport(TransportError::CardRemoved));
        assert_eq!(e.message, "the token was removed");
        let e: std::result::Result<(), apdu::Error> =
            Err(apdu::Error::Status(StatusWord::FileNotFound));
        assert!(e
            .ctx("reading 9a")
            .unwrap_err()
            .message
            .starts_with("reading 9a: "));
    }
}
