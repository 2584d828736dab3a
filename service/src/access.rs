//! Which token: PC/SC readers (in reader order) and simulated tokens
//! (feature `sim`: `UKEY_SIM` / `--sim`, after them), resolved to the one
//! the user means, and access to it (transactions, SELECT).
//!
//! Never guess between tokens: a reader name and a serial narrow the
//! choice; with several left the caller may ask the user (a [`Pick`]) and
//! it is refused otherwise, listing them. Reports that only read
//! (`status`) may take every token.

use crate::error::{CliError, Context, Result};
use crate::readers::{unavailable, PcscReaders};
use apdu::piv::Version;
use apdu::{PivCard, Session, Transport};
use serde::Serialize;
use std::ffi::CString;
use std::path::PathBuf;
#[cfg(feature = "sim")]
use ukey_sim::SimReader;

/// What the user asked for (the CLI: from options and environment).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub reader: Option<String>,
    pub serial: Option<u32>,
    /// Simulated tokens' state files (always empty without feature `sim`).
    pub sims: Vec<PathBuf>,
    pub no_pcsc: bool,
}

/// Where a reader comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Pcsc,
    #[cfg(feature = "sim")]
    Sim,
}

enum Backend {
    Pcsc(CString),
    #[cfg(feature = "sim")]
    Sim(SimReader, PathBuf),
}

/// Where a chosen token lives, to reach it again: a fresh connection, or
/// the slot the PKCS#11 module shows it in.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A PC/SC reader, by name.
    Pcsc(CString),
    /// A simulated token, by state file.
    #[cfg(feature = "sim")]
    Sim(PathBuf),
}

/// A reader and what is in it (nothing sent to the card yet).
pub struct Reader {
    pub name: String,
    pub source: Source,
    pub card_present: bool,
    /// Another application holds the card exclusively.
    pub exclusive: bool,
    pub atr: Vec<u8>,
    backend: Backend,
}

/// Whether PC/SC could be asked.
#[derive(Debug, Clone)]
pub enum PcscStatus {
    /// `UKEY_NO_PCSC` is set.
    Skipped,
    /// The service could not be reached (or failed).
    Unavailable(String),
    Available,
}

/// Every reader we can see.
pub struct Inventory {
    pub readers: Vec<Reader>,
    pub pcsc: PcscStatus,
    ctx: Option<pcsc::Context>,
}

impl Inventory {
    /// Look at PC/SC readers (unless skipped) and the simulated tokens.
    pub fn scan(sel: &Selection) -> Result<Self> {
        let mut readers = Vec::new();
        let mut ctx = None;
        let pcsc = if sel.no_pcsc {
            PcscStatus::Skipped
        } else {
            let mut pcsc = PcscReaders::new();
            match pcsc.scan() {
                Ok(list) => {
                    for r in list {
                        readers.push(Reader {
                            name: r.name.to_string_lossy().into_owned(),
                            source: Source::Pcsc,
                            card_present: r.card_present,
                            exclusive: r.exclusive,
                            atr: r.atr,
                            backend: Backend::Pcsc(r.name),
                        });
                    }
                    ctx = pcsc.into_context();
                    PcscStatus::Available
                }
                Err(e) => PcscStatus::Unavailable(unavailable(&e)),
            }
        };
        #[cfg(feature = "sim")]
        for path in &sel.sims {
            let sim = SimReader::open(path).ctx(format!("simulated token {}", path.display()))?;
            let present = sim.card_present();
            readers.push(Reader {
                name: sim.name().to_string(),
                source: Source::Sim,
                card_present: present,
                exclusive: false,
                atr: if present { sim.atr() } else { Vec::new() },
                backend: Backend::Sim(sim, path.clone()),
            });
        }
        Ok(Self { readers, pcsc, ctx })
    }

    fn connect(&self, r: &Reader) -> Result<Box<dyn Transport>> {
        let t: Box<dyn Transport> = match &r.backend {
            Backend::Pcsc(name) => {
                let ctx = self
                    .ctx
                    .as_ref()
                    .ok_or_else(|| CliError::new("PC/SC is not available"))?;
                Box::new(
                    apdu::pcsc::PcscTransport::connect(ctx, name)
                        .map_err(|e| CliError::new(crate::error::describe_transport(&e)))
                        .ctx(&r.name)?,
                )
            }
            #[cfg(feature = "sim")]
            Backend::Sim(sim, _) => Box::new(
                sim.connect()
                    .map_err(|e| CliError::new(crate::error::describe_transport(&e)))
                    .ctx(&r.name)?,
            ),
        };
        Ok(t)
    }

    /// Why there is no token to use.
    fn no_token(&self, readers: &[&Reader]) -> CliError {
        let reason = if !readers.is_empty() {
            let names: Vec<_> = readers.iter().map(|r| r.name.as_str()).collect();
            format!("no card in any reader ({})", names.join(", "))
        } else {
            match &self.pcsc {
                #[cfg(feature = "sim")]
                PcscStatus::Skipped => {
                    "PC/SC is off (UKEY_NO_PCSC) and no simulated token is set (UKEY_SIM or --sim)"
                        .to_string()
                }
                #[cfg(not(feature = "sim"))]
                PcscStatus::Skipped => "PC/SC is off (UKEY_NO_PCSC)".to_string(),
                PcscStatus::Unavailable(why) => why.clone(),
                PcscStatus::Available => "no smart card reader is connected".into(),
            }
        };
        CliError::new(format!("no token found: {reason}"))
            .with_kind(crate::error::ErrorKind::NoToken)
    }

    /// Readers `--reader` allows (all without it).
    fn matching(&self, sel: &Selection) -> Result<Vec<&Reader>> {
        let Some(want) = &sel.reader else {
            return Ok(self.readers.iter().collect());
        };
        if let Some(exact) = self.readers.iter().find(|r| &r.name == want) {
            return Ok(vec![exact]);
        }
        let lower = want.to_lowercase();
        let found: Vec<&Reader> = self
            .readers
            .iter()
            .filter(|r| r.name.to_lowercase().contains(&lower))
            .collect();
        let names = || {
            self.readers
                .iter()
                .map(|r| format!("  {}", r.name))
                .collect::<Vec<_>>()
        };
        match found.len() {
            0 if self.readers.is_empty() => Err(self.no_token(&[])),
            0 => Err(
                CliError::new(format!("no reader matches --reader {want:?}")).with_notes(
                    std::iter::once("Readers:".to_string())
                        .chain(names())
                        .collect(),
                ),
            ),
            1 => Ok(found),
            _ => Err(CliError::new(format!(
                "--reader {want:?} matches several readers: give more of its name"
            ))
            .with_notes(
                std::iter::once("Readers:".to_string())
                    .chain(found.iter().map(|r| format!("  {}", r.name)))
                    .collect(),
            )),
        }
    }

    /// The one token the user means; with several PIV tokens left, `pick`
    /// (a terminal's question) chooses, or the choice is refused.
    pub fn choose(self, sel: &Selection, pick: Option<Pick<'_>>) -> Result<Token> {
        let matching = self.matching(sel)?;
        let present: Vec<&Reader> = matching
            .iter()
            .copied()
            .filter(|r| r.card_present)
            .collect();
        if present.is_empty() {
            if let (Some(r), Some(_)) = (matching.first(), &sel.reader) {
                return Err(CliError::new(format!("no card in reader {}", r.name))
                    .with_kind(crate::error::ErrorKind::NoToken));
            }
            return Err(self.no_token(&matching));
        }
        if present.len() == 1 && sel.serial.is_none() {
            return self.open(present[0]);
        }
        // Several cards, or a serial to match: ask each card who it is.
        let mut probed = Vec::new();
        for r in present {
            let mut token = self.open(r)?;
            let p = token.probe()?;
            probed.push((token, p));
        }
        if let Some(serial) = sel.serial {
            let listing = listing(&probed);
            return match probed.into_iter().find(|(_, p)| p.serial == Some(serial)) {
                Some((t, _)) => Ok(t),
                None => {
                    Err(CliError::new(format!("no token with serial {serial}")).with_notes(listing))
                }
            };
        }
        // A card without the PIV applet cannot be the token meant.
        probed.retain(|(_, p)| p.piv);
        match probed.len() {
            0 => Err(CliError::new("no card with a PIV applet found")
                .with_kind(crate::error::ErrorKind::NoToken)),
            1 => Ok(probed.remove(0).0),
            n => match pick {
                Some(pick) => {
                    let i = pick(&listing(&probed), n)?;
                    if !(1..=n).contains(&i) {
                        return Err(CliError::new(format!(
                            "{i} is not one of 1..{n}: nothing was done"
                        )));
                    }
                    Ok(probed.remove(i - 1).0)
                }
                None => Err(ambiguous(n, &probed)),
            },
        }
    }
    /// Every present token `--reader`/`--serial` allow (for read-only
    /// reports), each with its reader name; one that cannot be connected
    /// to (e.g. held exclusively by another application) is an `Err` in
    /// the list, not the end of the report.
    pub fn all(self, sel: &Selection) -> Result<Vec<(String, Result<Token>)>> {
        if sel.serial.is_some() || sel.reader.is_some() {
            let t = self.choose(sel, None)?;
            return Ok(vec![(t.reader.clone(), Ok(t))]);
        }
        let present: Vec<&Reader> = self.readers.iter().filter(|r| r.card_present).collect();
        if present.is_empty() {
            let all: Vec<&Reader> = self.readers.iter().collect();
            return Err(self.no_token(&all));
        }
        Ok(present
            .into_iter()
            .map(|r| (r.name.clone(), self.open(r)))
            .collect())
    }

    fn open(&self, r: &Reader) -> Result<Token> {
        Ok(Token {
            reader: r.name.clone(),
            source: r.source,
            origin: match &r.backend {
                Backend::Pcsc(name) => Origin::Pcsc(name.clone()),
                #[cfg(feature = "sim")]
                Backend::Sim(_, path) => Origin::Sim(path.clone()),
            },
            card: PivCard::new(self.connect(r)?),
        })
    }

    /// Connect to a reader's card (for `readers`, which reports every reader).
    pub fn token(&self, r: &Reader) -> Result<Token> {
        self.open(r)
    }
}

/// Asks the user which of `n` tokens (listed) is meant: 1 to `n`.
pub type Pick<'a> = &'a dyn Fn(&[String], usize) -> Result<usize>;

fn ambiguous(n: usize, probed: &[(Token, Probe)]) -> CliError {
    CliError::new(format!(
        "{n} tokens are present and none was chosen: add --serial N or --reader NAME"
    ))
    .with_kind(crate::error::ErrorKind::TokenAmbiguous)
    .with_notes(listing(probed))
}

fn listing(probed: &[(Token, Probe)]) -> Vec<String> {
    let mut v = vec!["Tokens present:".to_string()];
    for (i, (t, p)) in probed.iter().enumerate() {
        let who = match (p.piv, p.serial) {
            (true, Some(s)) => format!("serial {s}"),
            (true, None) => "PIV token, no serial".into(),
            (false, _) => "no PIV applet".into(),
        };
        v.push(format!("  {}. {who}  ({})", i + 1, t.reader));
    }
    v
}

/// What a quick look at the card found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Probe {
    pub piv: bool,
    pub version: Option<Version>,
    pub serial: Option<u32>,
}

/// A chosen token, by where it is (no connection held).
#[derive(Debug, Clone)]
pub struct TokenRef {
    pub reader: String,
    pub source: Source,
    pub origin: Origin,
}

impl TokenRef {
    /// A new connection to the token.
    pub fn connect(&self) -> Result<Token> {
        let transport: Box<dyn Transport> = match &self.origin {
            Origin::Pcsc(name) => {
                let ctx = apdu::pcsc::context()
                    .map_err(|e| CliError::new(unavailable(&e)))
                    .ctx(&self.reader)?;
                Box::new(
                    apdu::pcsc::PcscTransport::connect(&ctx, name)
                        .map_err(|e| CliError::new(crate::error::describe_transport(&e)))
                        .ctx(&self.reader)?,
                )
            }
            #[cfg(feature = "sim")]
            Origin::Sim(path) => Box::new(
                SimReader::open(path)
                    .ctx(format!("simulated token {}", path.display()))?
                    .connect()
                    .map_err(|e| CliError::new(crate::error::describe_transport(&e)))
                    .ctx(&self.reader)?,
            ),
        };
        Ok(Token {
            reader: self.reader.clone(),
            source: self.source,
            origin: self.origin.clone(),
            card: PivCard::new(transport),
        })
    }
}

/// A chosen token, connected.
pub struct Token {
    pub reader: String,
    pub source: Source,
    pub origin: Origin,
    card: PivCard<Box<dyn Transport>>,
}

/// `Ok(None)` for "the card cannot tell" (no such instruction, object or
/// key, `6A80` for an object it does not know, an unusable answer), so
/// optional parts of PIV and the YubiKey extensions degrade gracefully
/// (`apdu::piv::caps::optional`).
pub fn optional<T>(r: std::result::Result<T, apdu::Error>) -> Result<Option<T>> {
    Ok(apdu::piv::caps::optional(r)?)
}

impl Token {
    /// How to reach this token again.
    pub fn token_ref(&self) -> TokenRef {
        TokenRef {
            reader: self.reader.clone(),
            source: self.source,
            origin: self.origin.clone(),
        }
    }

    /// Run `f` in one exclusive transaction.
    pub fn txn<R>(&mut self, f: impl FnOnce(&mut Session<'_>) -> Result<R>) -> Result<R> {
        let mut failure = None;
        let r = self.card.transaction(|s| match f(s) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                failure = Some(e);
                Ok(None)
            }
        });
        match (failure, r) {
            (Some(e), _) => Err(e),
            (None, Ok(Some(v))) => Ok(v),
            (None, Err(e)) => Err(CliError::from(e).context(&self.reader)),
            (None, Ok(None)) => Err(CliError::new("transaction ended without a result")),
        }
    }

    /// Run `f` in one transaction after selecting the PIV application.
    pub fn piv<R>(&mut self, f: impl FnOnce(&mut Session<'_>) -> Result<R>) -> Result<R> {
        let reader = self.reader.clone();
        self.txn(|s| {
            select(s, &reader)?;
            f(s)
        })
    }

    /// SELECT, version and serial (GET SERIAL only where GET VERSION
    /// answered, the CHUID without a serial: [`crate::card::read_identity`]):
    /// enough to tell tokens apart.
    pub fn probe(&mut self) -> Result<Probe> {
        self.txn(|s| match s.select() {
            Ok(_) => {
                let facts = crate::card::read_identity(s)?;
                Ok(Probe {
                    piv: true,
                    version: facts.version,
                    serial: facts.serial,
                })
            }
            Err(apdu::Error::Status(_)) => Ok(Probe::default()),
            Err(e) => Err(e.into()),
        })
    }
}

/// SELECT the PIV application, with a clear error when the card has none.
pub fn select(s: &mut Session<'_>, reader: &str) -> Result<()> {
    match s.select() {
        Ok(_) => Ok(()),
        Err(apdu::Error::Status(_)) => Err(CliError::new(format!(
            "the card in {reader} has no PIV application"
        ))),
        Err(e) => Err(CliError::from(e).context(reader)),
    }
}
