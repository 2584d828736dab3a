//! What the user sees: reports on stdout (text or `--json`), warnings and
//! progress on stderr, yes/no confirmations on a terminal.

use crate::error::{CliError, Result};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How reports are printed.
#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// Print `value` as JSON, or `text` for people.
    pub fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            let s = serde_json::to_string_pretty(value)
                .map_err(|e| CliError::new(format!("encoding JSON: {e}")))?;
            stdout(format!("{s}\n").as_bytes());
        } else {
            let mut t = text();
            if !t.is_empty() {
                if !t.ends_with('\n') {
                    t.push('\n');
                }
                stdout(t.as_bytes());
            }
        }
        Ok(())
    }
}

/// Write the report to stdout. A closed pipe (`ukey status | head`) ends
/// the program quietly, as it does for other command line tools.
pub fn stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("ukey: writing the output: {e}");
    }
}

/// Whether we may ask the user questions (stdin and stderr are a terminal).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A warning on stderr.
pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("ukey: warning: {msg}");
}

/// A note on stderr (progress, hints): never mixed into the report on stdout.
pub fn note(msg: impl std::fmt::Display) {
    eprintln!("{msg}");
}

/// Read one line from the terminal after printing `prompt` on stderr.
pub fn ask(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError::new(format!("reading the answer: {e}")))?;
    Ok(line.trim().to_string())
}

/// Ask for confirmation of a destructive action: `--yes`, or a terminal
/// answer equal to `expected` (case-insensitive). Never assumed otherwise.
pub fn confirm(question: &str, expected: &str, yes: bool, flag: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !interactive() {
        return Err(CliError::new(format!(
            "{question} — not confirmed: run it on a terminal, or add {flag}"
        )));
    }
    let answer = ask(&format!("{question}\nType {expected:?} to confirm: "))?;
    if answer.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(CliError::new("cancelled: nothing was changed"))
    }
}

/// Feedback on a slow operation: a ticking line on a terminal, else one
/// line before and one after.
pub struct Progress {
    what: String,
    start: Instant,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub fn start(what: impl Into<String>) -> Self {
        let what = what.into();
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let ticker = if std::io::stderr().is_terminal() {
            let (stop, label) = (stop.clone(), what.clone());
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || {
                    let frames = ['|', '/', '-', '\\'];
                    let mut i = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        eprint!(
                            "\r{} {label} ({}s)",
                            frames[i % frames.len()],
                            start.elapsed().as_secs()
                        );
                        let _ = std::io::stderr().flush();
                        i += 1;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    eprint!("\r\x1b[2K");
                })
                .ok()
        } else {
            eprintln!("{what}...");
            None
        };
        Self {
            what,
            start,
            stop,
            ticker,
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }

    /// Stop and say how long it took.
    pub fn done(mut self) {
        let tty = self.ticker.is_some();
        self.halt();
        let took = self.start.elapsed().as_secs_f64();
        if tty {
            eprintln!("{}: done in {took:.1} s", self.what);
        } else {
            eprintln!("done in {took:.1} s");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.halt();
    }
}
