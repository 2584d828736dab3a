//! `ukey-sim`: a PIV soft token for tests, demos and benchmarks. By default
//! it behaves like a YubiKey 5 (firmware 5.7 feature set); its
//! [`profile`]s play older YubiKeys and PIV cards of other makers.
//!
//! * [`SimCard`] is the card: the applet, its state file, fault injection
//!   and an APDU log.
//! * [`SimTransport`] implements [`apdu::Transport`] so `apdu`, the PKCS#11
//!   module and the CLI talk to it in-process.
//! * [`vpcd`] connects it to vsmartcard's vpcd, so pcscd and every PC/SC
//!   client see it as a card in a reader.
//!
//! Several `SimCard`s (in one or several processes) may share a state file:
//! each transaction holds an advisory lock on `<state>.lock` and reloads the
//! file if someone else changed it, as a real card is shared through pcscd.
//!
//! Tests control a card through `<state>.ctl` (see [`Control`]): remove it
//! (after N more APDUs), insert it again, or reset it.
//!
//! Safe Rust only (the fuzz harness relies on it to run without
//! AddressSanitizer).
#![forbid(unsafe_code)]

pub mod applet;
pub mod ca;
pub mod command;
pub mod demo;
pub mod files;
pub mod keys;
pub mod profile;
pub mod state;
pub mod vpcd;

use apdu::transport::{Link, TransactionBody, Transport, TransportError};
use apdu::Error;
use applet::Applet;
use state::Persistent;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// The ATR of a YubiKey 5 NFC (profiles `yk57`, `yk54`): its historical
/// bytes announce command chaining and extended length, and clients
/// recognise it as a YubiKey. Other profiles have their own: [`SimCard::atr`].
pub const ATR: [u8; 23] = [
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

/// Nanoseconds the applets of this process spent processing APDUs.
static CARD_NANOS: AtomicU64 = AtomicU64::new(0);

/// Run `f` as card time: benchmarks read the total with [`card_time`] to
/// tell the card's work from the host's. Costs two clock reads.
pub fn metered<R>(f: impl FnOnce() -> R) -> R {
    let start = Instant::now();
    let r = f();
    let spent = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    CARD_NANOS.fetch_add(spent, Ordering::Relaxed);
    r
}

/// Time all simulated cards of this process have spent processing APDUs
/// (wall-clock, inside `Applet::process`).
pub fn card_time() -> Duration {
    Duration::from_nanos(CARD_NANOS.load(Ordering::Relaxed))
}

/// One logged exchange. Secret data (VERIFY, CHANGE REFERENCE, RESET RETRY,
/// management key and key import payloads) is redacted before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub command: Vec<u8>,
    pub response: Vec<u8>,
}

impl LogEntry {
    pub fn ins(&self) -> u8 {
        self.command.get(1).copied().unwrap_or(0)
    }
}

/// Fault injection: the card is pulled before (or right after) an APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// APDUs still processed normally.
    pub after: u32,
    /// Process APDU number `after` but lose its response (the card was
    /// pulled just after the card committed, before the host heard back).
    pub lose_response: bool,
}

/// Commands of the `<state>.ctl` file, one per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Remove,
    Insert,
    Reset,
    /// Another application logs the card out (VERIFY P1=FF): the PIN is no
    /// longer verified for anyone, and no connection is told.
    Logout,
    RemoveAfter(u32),
    RemoveAfterProcessing(u32),
}

impl Control {
    pub fn parse(line: &str) -> Option<Control> {
        let mut it = line.split_whitespace();
        let cmd = it.next()?;
        let n = it.next().and_then(|n| n.parse().ok());
        match (cmd, n) {
            ("remove", None) => Some(Control::Remove),
            ("insert", None) => Some(Control::Insert),
            ("reset", None) => Some(Control::Reset),
            ("logout", None) => Some(Control::Logout),
            ("remove-after", Some(n)) => Some(Control::RemoveAfter(n)),
            ("remove-after-processing", Some(n)) => Some(Control::RemoveAfterProcessing(n)),
            _ => None,
        }
    }

    pub fn to_line(self) -> String {
        match self {
            Control::Remove => "remove".into(),
            Control::Insert => "insert".into(),
            Control::Reset => "reset".into(),
            Control::Logout => "logout".into(),
            Control::RemoveAfter(n) => format!("remove-after {n}"),
            Control::RemoveAfterProcessing(n) => format!("remove-after-processing {n}"),
        }
    }

    /// Send a control command to every `SimCard` on the state file `state`.
    /// Each command file gets a fresh name so none is missed.
    pub fn send(self, state: &Path) -> std::io::Result<()> {
        let ctl = control_path(state);
        let seq = files::read_regular(&ctl, MAX_CONTROL_FILE)
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
            .and_then(|s| s.lines().next().and_then(|l| l.parse::<u64>().ok()))
            .unwrap_or(0)
            + 1;
        files::write_atomic(
            &ctl,
            format!("{seq}\n{}\n", self.to_line()).as_bytes(),
            0o644,
        )
    }
}

fn control_path(state: &Path) -> PathBuf {
    let mut n = state
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    n.push(".ctl");
    state.with_file_name(n)
}

fn lock_path(state: &Path) -> PathBuf {
    let mut n = state
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    n.push(".lock");
    state.with_file_name(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: m.modified().ok(),
        len: m.len(),
        ino: m.ino(),
    })
}

/// A simulated card.
pub struct SimCard {
    applet: Applet,
    path: Option<PathBuf>,
    /// `<state>.ctl`, worked out once: it is looked at in every transaction.
    control: Option<PathBuf>,
    file_stamp: Option<FileStamp>,
    lock: Option<File>,
    control_seq: u64,
    present: bool,
    /// Bumped on every insertion: handles from before a removal are dead.
    insertion: u64,
    /// Bumped on every reset: handles see `CardReset` once.
    resets: u64,
    fault: Option<Fault>,
    log: Vec<LogEntry>,
    log_limit: usize,
    apdus: u64,
}

impl SimCard {
    /// An in-memory card (no state file).
    pub fn new(persistent: Persistent) -> Self {
        Self {
            applet: Applet::new(persistent),
            path: None,
            control: None,
            file_stamp: None,
            lock: None,
            control_seq: 0,
            present: true,
            insertion: 0,
            resets: 0,
            fault: None,
            log: Vec::new(),
            log_limit: 100_000,
            apdus: 0,
        }
    }

    /// Open the card whose memory is the state file `path`. The file must
    /// exist and hold a token: a card is made with `ukey-sim init`, never by
    /// opening a path (a mistyped or half path must not become a token).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let persistent = Persistent::load(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "{}: no token state file there (make one with `ukey-sim init --state {0}`)",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })?;
        let mut card = Self::new(persistent);
        card.file_stamp = stamp(path);
        card.lock = Some(files::open_lock(&lock_path(path))?);
        card.path = Some(path.to_path_buf());
        card.control = Some(control_path(path));
        // Commands left over from an earlier run are history, not orders.
        card.control_seq = read_control(&control_path(path)).map_or(0, |(seq, _)| seq);
        Ok(card)
    }

    /// Share it between transports (and a test that drives faults).
    pub fn shared(self) -> SharedCard {
        Arc::new(Mutex::new(self))
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn persistent(&self) -> &Persistent {
        &self.applet.persistent
    }

    /// The card's ATR (its profile's).
    pub fn atr(&self) -> Vec<u8> {
        self.applet.persistent.profile.spec().atr.to_vec()
    }

    /// Change the persistent state directly (provisioning, tests) and save it.
    pub fn update(&mut self, f: impl FnOnce(&mut Persistent)) -> std::io::Result<()> {
        f(&mut self.applet.persistent);
        self.save()
    }

    fn save(&mut self) -> std::io::Result<()> {
        if let Some(path) = &self.path {
            self.applet.persistent.save(path)?;
            self.file_stamp = stamp(path);
        }
        Ok(())
    }

    /// Power off and on: selection, PIN and management key state are gone.
    pub fn power_cycle(&mut self) {
        self.applet.power_cycle();
    }

    /// Reset the card as another application would: every handle sees
    /// `CardReset` once.
    pub fn reset(&mut self) {
        self.applet.power_cycle();
        self.resets += 1;
    }

    pub fn remove(&mut self) {
        self.present = false;
        self.fault = None;
        self.applet.power_cycle();
    }

    /// Insert the card (a new insertion if it was out); cancels a pending
    /// fault, so a test can end an experiment in a known state.
    pub fn insert(&mut self) {
        self.fault = None;
        if !self.present {
            self.present = true;
            self.insertion += 1;
            self.applet.power_cycle();
        }
    }

    pub fn is_present(&mut self) -> bool {
        self.poll_control();
        self.present
    }

    /// Pull the card after `after` more APDUs (see [`Fault`]).
    pub fn inject(&mut self, fault: Fault) {
        self.fault = Some(fault);
    }

    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    /// APDUs processed since the card was created.
    pub fn apdu_count(&self) -> u64 {
        self.apdus
    }

    fn poll_control(&mut self) {
        let Some((seq, cmds)) = self.control.as_deref().and_then(read_control) else {
            return;
        };
        if seq == self.control_seq {
            return;
        }
        self.control_seq = seq;
        for c in cmds {
            match c {
                Control::Remove => self.remove(),
                Control::Insert => self.insert(),
                Control::Reset => self.reset(),
                Control::Logout => self.applet.forget_pin(),
                Control::RemoveAfter(n) => self.inject(Fault {
                    after: n,
                    lose_response: false,
                }),
                Control::RemoveAfterProcessing(n) => self.inject(Fault {
                    after: n,
                    lose_response: true,
                }),
            }
        }
    }

    /// Reload the persistent part if another process changed the file.
    fn sync_from_disk(&mut self) {
        let Some(path) = &self.path else { return };
        let now = stamp(path);
        if now != self.file_stamp {
            if let Ok(p) = Persistent::load(path) {
                self.applet.persistent = p;
            }
            self.file_stamp = now;
        }
    }

    fn begin(&mut self) {
        if let Some(lock) = &self.lock {
            // Advisory: another holder may only delay us.
            let _ = lock.lock();
        }
        self.poll_control();
        self.sync_from_disk();
    }

    fn end(&mut self) {
        if let Some(lock) = &self.lock {
            let _ = lock.unlock();
        }
    }

    /// Process one APDU as the card would, with fault injection, logging
    /// and persistence (committed before the answer leaves the card).
    pub fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if !self.present {
            return Err(TransportError::CardRemoved);
        }
        let mut lose = false;
        if let Some(f) = &mut self.fault {
            if f.after == 0 {
                if f.lose_response {
                    lose = true;
                } else {
                    self.remove();
                    return Err(TransportError::CardRemoved);
                }
            } else {
                f.after -= 1;
            }
        }
        self.apdus += 1;
        let mut response = metered(|| self.applet.process(apdu));
        if self.applet.take_dirty() {
            if let Err(e) = self.save() {
                tracing::error!("ukey-sim: saving state failed: {e}");
                // Memory failure: the card keeps what it had.
                if let Some(path) = &self.path {
                    if let Ok(p) = Persistent::load(path) {
                        self.applet.persistent = p;
                    }
                }
                response = <[u8; 2]>::from(iso7816::Status::MemoryFailure).to_vec();
            }
        }
        if self.log.len() < self.log_limit {
            self.log.push(LogEntry {
                command: redact_command(apdu),
                response: redact_response(apdu, &response),
            });
        }
        if lose {
            self.remove();
            return Err(TransportError::CardRemoved);
        }
        Ok(response)
    }
}

/// A control file is a sequence number and a few commands.
const MAX_CONTROL_FILE: u64 = 4096;

fn read_control(ctl: &Path) -> Option<(u64, Vec<Control>)> {
    let bytes = files::read_regular(ctl, MAX_CONTROL_FILE).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut lines = text.lines();
    let seq = lines.next()?.trim().parse().ok()?;
    Some((seq, lines.filter_map(Control::parse).collect()))
}

/// Whether a command carries secrets in its data field.
pub fn command_is_secret(apdu: &[u8]) -> bool {
    match (apdu.get(1), apdu.get(3)) {
        (Some(0x20 | 0x24 | 0x2C | 0xFF | 0xFE), _) => true,
        (Some(0x87), Some(0x9B)) => true,
        // PUT DATA of PRINTED may hold the PIN-protected management key.
        (Some(0xDB), _) => [5usize, 7]
            .iter()
            .any(|&o| apdu.get(o..o + 5) == Some(&[0x5C, 0x03, 0x5F, 0xC1, 0x09][..])),
        _ => false,
    }
}

fn redact_command(apdu: &[u8]) -> Vec<u8> {
    if command_is_secret(apdu) && apdu.len() > 5 {
        let mut v = apdu[..5].to_vec();
        v.extend(std::iter::repeat_n(0xEE, apdu.len() - 5));
        v
    } else {
        apdu.to_vec()
    }
}

fn redact_response(cmd: &[u8], resp: &[u8]) -> Vec<u8> {
    let secret = matches!((cmd.get(1), cmd.get(3)), (Some(0x87), Some(0x9B)))
        || (cmd.get(1) == Some(&0xCB) && cmd.windows(3).any(|w| w == [0x5F, 0xC1, 0x09]));
    if secret && resp.len() > 2 {
        let mut v = vec![0xEE; resp.len() - 2];
        v.extend_from_slice(&resp[resp.len() - 2..]);
        v
    } else {
        resp.to_vec()
    }
}

pub type SharedCard = Arc<Mutex<SimCard>>;

fn lock(card: &SharedCard) -> MutexGuard<'_, SimCard> {
    // A panic elsewhere must not make the card unusable.
    card.lock().unwrap_or_else(|e| e.into_inner())
}

/// A reader with a simulated card in it: reports presence, hands out connections.
#[derive(Clone)]
pub struct SimReader {
    card: SharedCard,
    name: String,
}

impl SimReader {
    pub fn new(card: SharedCard, name: impl Into<String>) -> Self {
        Self {
            card,
            name: name.into(),
        }
    }

    /// Open (or create) the state file `path` as a reader named after it.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let card = SimCard::open(path)?.shared();
        Ok(Self::new(card, format!("ukey-sim {}", path.display())))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn card(&self) -> &SharedCard {
        &self.card
    }

    pub fn card_present(&self) -> bool {
        self.presence().0
    }

    /// The ATR of the card in the reader.
    pub fn atr(&self) -> Vec<u8> {
        let mut c = lock(&self.card);
        c.begin();
        let atr = c.atr();
        c.end();
        atr
    }

    /// Whether a card is in, and how many times one was inserted (a changed
    /// count means a new insertion, as PC/SC's event counter does).
    pub fn presence(&self) -> (bool, u64) {
        let mut c = lock(&self.card);
        c.begin();
        let r = (c.present, c.insertion);
        c.end();
        r
    }

    /// Connect to the card (fails when none is present).
    pub fn connect(&self) -> Result<SimTransport, TransportError> {
        let mut c = lock(&self.card);
        c.begin();
        let r = if c.present {
            Ok(SimTransport {
                card: self.card.clone(),
                insertion: c.insertion,
                resets: c.resets,
                atr: c.atr(),
            })
        } else {
            Err(TransportError::NoCard)
        };
        c.end();
        r
    }
}

/// A connection to a simulated card, like a PC/SC card handle.
pub struct SimTransport {
    card: SharedCard,
    insertion: u64,
    resets: u64,
    atr: Vec<u8>,
}

impl SimTransport {
    /// Connect to an in-memory card directly.
    pub fn new(card: SharedCard) -> Self {
        let (insertion, resets, atr) = {
            let c = lock(&card);
            (c.insertion, c.resets, c.atr())
        };
        Self {
            card,
            insertion,
            resets,
            atr,
        }
    }

    pub fn card(&self) -> &SharedCard {
        &self.card
    }
}

struct SimLink<'a> {
    card: &'a mut SimCard,
}

impl Link for SimLink<'_> {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.card.transmit(apdu)
    }
}

impl Transport for SimTransport {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn exclusive(&mut self, body: &mut TransactionBody<'_>) -> Result<(), Error> {
        let mut c = lock(&self.card);
        c.begin();
        let r = if !c.present || c.insertion != self.insertion {
            Err(Error::Transport(TransportError::CardRemoved))
        } else if c.resets != self.resets {
            self.resets = c.resets;
            Err(Error::Transport(TransportError::CardReset))
        } else {
            body(&mut SimLink { card: &mut c })
        };
        c.end();
        r
    }

    fn reset(&mut self) -> Result<(), Error> {
        let mut c = lock(&self.card);
        if !c.present || c.insertion != self.insertion {
            return Err(Error::Transport(TransportError::CardRemoved));
        }
        c.reset();
        self.resets = c.resets;
        Ok(())
    }
}
