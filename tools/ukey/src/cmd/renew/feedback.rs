//! Where a renewal's progress goes and where its PIN comes from: the
//! renewal cores ([`super::request_core`], [`super::install_core`],
//! [`super::cancel_core`]) run the same steps for the terminal (`ukey renew
//! ...`) and for the web page (`ukey ui`); only these two seams differ.

use crate::auth::{blocked, gather_write, WritePrep};
use crate::error::{CliError, Result};
use crate::output::{self, Progress};
use crate::secrets::{Kind, Secrets};
use apdu::piv::Pin;
use std::sync::Mutex;

/// Progress, warnings and questions of a renewal.
pub trait Feedback: Sync {
    /// A line of progress (a step done, what is about to happen).
    fn note(&self, msg: &str);
    fn warn(&self, msg: &str);
    /// A slow step starts (key generation: a real card takes up to a minute).
    fn slow_start(&self, what: &str);
    /// The slow step ended (`ok`: it succeeded).
    fn slow_done(&self, ok: bool);
    /// Whether [`Feedback::confirm`] can ask anyone.
    fn interactive(&self) -> bool;
    /// Ask before something the user must accept (`flag` is the option
    /// that accepts it without asking); `Err` when not confirmed.
    fn confirm(&self, question: &str, flag: &str) -> Result<()>;
    /// A step of an install or cancel was written to the token (`name` as
    /// in the `--json` report's `steps`).
    fn step(&self, _name: &'static str, text: &str) {
        self.note(text);
    }
    /// A check of the CA's certificate passed (`what`: the refusal reason
    /// it guards against, as in `--json` errors: `ca`, `expired`...).
    fn check_passed(&self, _what: &'static str) {}
}

/// The terminal: notes and warnings on stderr, a ticking progress line,
/// questions answered on the terminal.
#[derive(Default)]
pub struct Terminal {
    progress: Mutex<Option<Progress>>,
}

impl Feedback for Terminal {
    fn note(&self, msg: &str) {
        output::note(msg);
    }

    fn warn(&self, msg: &str) {
        output::warn(msg);
    }

    fn slow_start(&self, what: &str) {
        let p = Progress::start(what);
        if let Ok(mut slot) = self.progress.lock() {
            *slot = Some(p);
        }
    }

    fn slow_done(&self, ok: bool) {
        let p = self.progress.lock().ok().and_then(|mut s| s.take());
        if let (Some(p), true) = (p, ok) {
            p.done();
        }
    }

    fn interactive(&self) -> bool {
        output::interactive()
    }

    fn confirm(&self, question: &str, flag: &str) -> Result<()> {
        output::confirm(question, "yes", false, flag)
    }
}

/// Where the PIN of a renewal comes from.
pub enum PinFrom<'a> {
    /// The command line's sources (option, stdin, environment, a prompt
    /// showing the tries left and the last-try warning).
    Ask(&'a mut Secrets),
    /// Given once by the caller (the web page's PIN dialog, which showed
    /// the tries left itself).
    Given(Pin),
}

impl PinFrom<'_> {
    /// The PIN for this write, refusing a blocked PIN before any try.
    pub(super) fn get(self, prep: &WritePrep) -> Result<Pin> {
        match self {
            PinFrom::Ask(secrets) => gather_write(prep, secrets, true)?
                .pin
                .ok_or_else(|| CliError::new("the PIN is needed")),
            PinFrom::Given(pin) => {
                if prep.pin.is_some_and(|c| c.blocked()) {
                    return Err(blocked(Kind::Pin));
                }
                Ok(pin)
            }
        }
    }
}
