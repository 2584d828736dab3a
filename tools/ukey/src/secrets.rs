//! PINs, PUKs and management keys: from an option, stdin (`--pin-stdin`,
//! one per line in the order the command asks), the environment, or a
//! hidden prompt on the terminal, in that order. Every copy lives in a
//! zeroizing buffer.

use crate::error::{CliError, Result};
use crate::output;
use apdu::piv::Pin;
use std::collections::VecDeque;
use std::io::Read;
use zeroize::Zeroizing;

/// Which secret a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pin,
    NewPin,
    Puk,
    NewPuk,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Pin => "PIN",
            Kind::NewPin => "new PIN",
            Kind::Puk => "PUK",
            Kind::NewPuk => "new PUK",
        }
    }

    fn env(self) -> &'static str {
        match self {
            Kind::Pin => "UKEY_PIN",
            Kind::NewPin => "UKEY_NEW_PIN",
            Kind::Puk => "UKEY_PUK",
            Kind::NewPuk => "UKEY_NEW_PUK",
        }
    }

    fn option(self) -> &'static str {
        match self {
            Kind::Pin => "--pin",
            Kind::NewPin => "--new-pin",
            Kind::Puk => "--puk",
            Kind::NewPuk => "--new-puk",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

type Secret = Zeroizing<String>;

/// Where secrets come from for this run.
pub struct Secrets {
    given: [Option<Secret>; 4],
    mgmt_key: Option<Secret>,
    stdin: bool,
    stdin_lines: Option<VecDeque<Secret>>,
}

fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .map(Zeroizing::new)
        .filter(|s| !s.is_empty())
}

impl Secrets {
    /// Take the global options' values (moved, not copied).
    pub fn new(pin: Option<String>, pin_stdin: bool, mgmt_key: Option<String>) -> Self {
        let mut given: [Option<Secret>; 4] = Default::default();
        given[Kind::Pin.index()] = pin.map(Zeroizing::new);
        Self {
            given,
            mgmt_key: mgmt_key.map(Zeroizing::new),
            stdin: pin_stdin,
            stdin_lines: None,
        }
    }

    /// A value given with a subcommand's own option (`--puk`, `--new-pin`...).
    pub fn give(&mut self, kind: Kind, value: Option<String>) {
        if let Some(v) = value {
            self.given[kind.index()] = Some(Zeroizing::new(v));
        }
    }

    fn next_stdin_line(&mut self) -> Result<Option<Secret>> {
        if !self.stdin {
            return Ok(None);
        }
        if self.stdin_lines.is_none() {
            // A few secrets, one per line: never more than 64 KiB.
            let mut all = Zeroizing::new(String::new());
            std::io::stdin()
                .take(64 * 1024)
                .read_to_string(&mut all)
                .map_err(|e| CliError::new(format!("reading --pin-stdin: {e}")))?;
            self.stdin_lines = Some(
                all.lines()
                    .map(|l| Zeroizing::new(l.trim_end_matches('\r').to_string()))
                    .collect(),
            );
        }
        Ok(self.stdin_lines.as_mut().and_then(VecDeque::pop_front))
    }

    fn prompt(label: &str) -> Result<Secret> {
        rpassword::prompt_password(format!("{label}: "))
            .map(Zeroizing::new)
            .map_err(|e| CliError::new(format!("reading the {label}: {e}")))
    }

    /// The secret as text, from the first source that has it.
    pub fn get(&mut self, kind: Kind) -> Result<Secret> {
        if let Some(v) = self.given[kind.index()].take() {
            return Ok(v);
        }
        if self.stdin {
            return self.next_stdin_line()?.ok_or_else(|| {
                CliError::new(format!(
                    "--pin-stdin: no line left for the {}",
                    kind.label()
                ))
            });
        }
        if let Some(v) = env_secret(kind.env()) {
            return Ok(v);
        }
        if !output::interactive() {
            return Err(CliError::new(format!(
                "the {} is needed: give it with {}, {} or --pin-stdin (or run on a terminal)",
                kind.label(),
                kind.option(),
                kind.env()
            ))
            .with_kind(crate::error::ErrorKind::SecretMissing));
        }
        let label = match kind {
            Kind::Pin => "PIN",
            Kind::NewPin => "New PIN",
            Kind::Puk => "PUK",
            Kind::NewPuk => "New PUK",
        };
        let first = Self::prompt(label)?;
        if matches!(kind, Kind::NewPin | Kind::NewPuk) {
            let again = Self::prompt(&format!("{label} again"))?;
            if *again != *first {
                return Err(CliError::new(format!(
                    "the two {}s differ: nothing was changed",
                    kind.label()
                )));
            }
        }
        Ok(first)
    }

    /// The secret as a PIV PIN/PUK (6 to 8 characters).
    /// PIV stores 6 to 8 bytes; the text is NFC-normalised first (the same
    /// PIN whether "é" was typed as one code point or as e + accent), and
    /// a refusal speaks of the characters typed. No try is spent on it.
    pub fn pin(&mut self, kind: Kind) -> Result<Pin> {
        let text = self.get(kind)?;
        pin_from_text(kind, &text)
    }

    /// A management key given with `--mgmt-key` or `UKEY_MGMT_KEY`.
    pub fn given_mgmt_key(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match self.mgmt_key.take().or_else(|| env_secret("UKEY_MGMT_KEY")) {
            Some(text) => parse_key(&text).map(Some),
            None => Ok(None),
        }
    }

    /// Ask for the management key on a terminal (`None` when not interactive).
    pub fn prompt_mgmt_key(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if !output::interactive() {
            return Ok(None);
        }
        let text = Self::prompt("Management key (hex)")?;
        parse_key(&text).map(Some)
    }
}

/// A PIN or PUK as typed: NFC, then UTF-8, 6 to 8 bytes on the card.
pub fn pin_from_text(kind: Kind, text: &str) -> Result<Pin> {
    use unicode_normalization::UnicodeNormalization;
    let nfc: Zeroizing<String> = Zeroizing::new(text.nfc().collect());
    let chars = nfc.chars().count();
    let bytes = nfc.len();
    Pin::new(nfc.as_bytes()).map_err(|_| {
        let label = kind.label();
        let typed = if chars == bytes {
            format!("you typed {chars} characters")
        } else {
            format!(
                "you typed {chars} characters, which take {bytes} bytes on the token (each \
                 non-ASCII character takes 2 to 4), and it stores 6 to 8"
            )
        };
        CliError::new(format!("the {label} must be 6 to 8 characters: {typed}"))
            .with_kind(crate::error::ErrorKind::SecretInvalid)
    })
}

fn parse_key(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    let clean = Zeroizing::new(
        text.chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect::<String>(),
    );
    hex::decode(clean.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| CliError::new("the management key must be hex (32, 48 or 64 digits)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_values_win_and_are_used_once() {
        let mut s = Secrets::new(Some("123456".into()), false, None);
        s.give(Kind::NewPin, Some("654321".into()));
        assert_eq!(s.pin(Kind::Pin).unwrap().as_bytes(), b"123456");
        assert_eq!(s.pin(Kind::NewPin).unwrap().as_bytes(), b"654321");
    }

    #[test]
    fn short_pins_are_refused_with_the_rule() {
        let mut s = Secrets::new(Some("123".into()), false, None);
        let e = s.pin(Kind::Pin).unwrap_err();
        assert!(e.message.contains("6 to 8"), "{e}");
    }

    #[test]
    fn pins_are_nfc_normalised_and_length_errors_count_characters() {
        // "é" precomposed (U+00E9) and as e + combining acute (U+0301): one PIN.
        let a = pin_from_text(Kind::Pin, "caf\u{e9}12").unwrap();
        let b = pin_from_text(Kind::Pin, "cafe\u{301}12").unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes());
        assert_eq!(a.as_bytes(), "caf\u{e9}12".as_bytes());
        let e = pin_from_text(Kind::Pin, "12345").unwrap_err();
        assert!(e.message.contains("you typed 5 characters"), "{e}");
        assert!(!e.message.contains("bytes"), "{e}");
        // Five characters, ten bytes: said in characters, with why.
        let e = pin_from_text(Kind::Pin, "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}").unwrap_err();
        assert!(
            e.message
                .contains("you typed 5 characters, which take 10 bytes"),
            "{e}"
        );
    }

    #[test]
    fn management_key_hex_may_have_separators() {
        let mut s = Secrets::new(None, false, Some("0102:0304 0506".into()));
        assert_eq!(
            &s.given_mgmt_key().unwrap().unwrap()[..],
            &[1, 2, 3, 4, 5, 6]
        );
        let mut s = Secrets::new(None, false, Some("zz".into()));
        assert!(s.given_mgmt_key().is_err());
    }
}
