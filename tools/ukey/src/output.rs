//! What the user sees: reports on stdout (text or `--json`), warnings and
//! progress on stderr, yes/no confirmations on a terminal.
//!
//! Nothing here panics on an I/O error (a closed pipe, a closed terminal,
//! a closed descriptor): `print!` and friends would, and a panic in the
//! middle of a renewal is the one place a GUI that stops reading must not
//! reach. Progress and warnings that cannot be written are dropped (the
//! command goes on to its end); a report that cannot be written is said
//! on stderr if that still works, and the exit code stays the command's.

use crate::error::{CliError, Result};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The version of the `--json` documents (docs/ukey-json.schema.json);
/// every document carries it as `schema_version`.
pub use ukey_token::SCHEMA_VERSION;

/// How reports are printed.
#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// Print `value` as JSON, or `text` for people.
    pub fn emit<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            let mut doc = serde_json::to_value(value)
                .map_err(|e| CliError::new(format!("encoding JSON: {e}")))?;
            if let Some(map) = doc.as_object_mut() {
                map.insert("schema_version".into(), SCHEMA_VERSION.into());
            }
            let s = serde_json::to_string_pretty(&doc)
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

/// Write the report to stdout. Reports are written once the command's
/// work is done, so a reader that went away (`ukey status | head`, a GUI
/// that stopped reading, a closed descriptor) changes nothing on the
/// token: the failure is said on stderr (if that still works) and the
/// command's exit code stands.
pub fn stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            note(format!("ukey: writing the report to stdout: {e}"));
        }
    }
}

/// Write to stderr, dropping what cannot be written.
fn stderr(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

/// A writer on stderr that drops what cannot be written (for tracing).
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Whether we may ask the user questions (stdin and stderr are a terminal).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A warning on stderr.
pub fn warn(msg: impl std::fmt::Display) {
    stderr(format_args!("ukey: warning: {msg}\n"));
}

/// A note on stderr (progress, hints): never mixed into the report on stdout.
pub fn note(msg: impl std::fmt::Display) {
    stderr(format_args!("{msg}\n"));
}

/// Read one line from the terminal after printing `prompt` on stderr.
pub fn ask(prompt: &str) -> Result<String> {
    stderr(format_args!("{prompt}"));
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
        ))
        .with_kind(crate::error::ErrorKind::NotConfirmed));
    }
    let answer = ask(&format!("{question}\nType {expected:?} to confirm: "))?;
    if answer.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(CliError::new("cancelled: nothing was changed")
            .with_kind(crate::error::ErrorKind::NotConfirmed))
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
                        stderr(format_args!(
                            "\r{} {label} ({}s)",
                            frames[i % frames.len()],
                            start.elapsed().as_secs()
                        ));
                        i += 1;
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    stderr(format_args!("\r\x1b[2K"));
                })
                .ok()
        } else {
            note(format_args!("{what}..."));
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
            note(format_args!("{}: done in {took:.1} s", self.what));
        } else {
            note(format_args!("done in {took:.1} s"));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.halt();
    }
}
