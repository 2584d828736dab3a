//! `ukey`: diagnostics, PIN management and certificate renewal for PIV USB
//! keys, on the `apdu` API (PC/SC readers and simulated tokens alike) and,
//! for renewal, through the PKCS#11 module as renewal clients use it.
//!
//! Layout, so the renewal commands slot in beside the others:
//! * [`token`] finds readers and simulated tokens and resolves the one the
//!   user means (`--reader`, `--serial`, asking when several are present);
//! * [`secrets`] gets PINs, PUKs and management keys (options, environment,
//!   stdin, hidden prompts), all zeroized;
//! * [`auth`] verifies the PIN with tries-left feedback and authorises
//!   writes with the management key (PIN-protected or given);
//! * [`certs`], [`keys`] and [`verdict`] read certificates, sign on the
//!   token and judge renewability; [`output`] prints text or JSON.
//! * [`p11`] loads the PKCS#11 module for the renewal commands, and
//!   [`marker`] is the staging marker they keep on the token, [`supersede`]
//!   what it says of renewed pairs left in retired slots;
//! * [`cmd`] holds one module per command; [`ui`] is `ukey ui`, the local
//!   web page on the same status model and renewal cores.

mod auth;
mod cli;
mod cmd;
mod error;
mod keys;
mod lock;
mod output;
mod p11;
mod secrets;
mod settings;
mod token;
mod ui;

// The status model's parts, under the names the commands use.
use ukey_token::{certs, marker, slotkey, supersede, verdict};

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn init_tracing(trace: bool) {
    let user = settings::get().log.clone();
    if !trace && user.is_none() {
        return;
    }
    let mut filter = user.unwrap_or_default();
    if trace {
        if !filter.is_empty() {
            filter.push(',');
        }
        filter.push_str("apdu=debug");
    }
    if trace && std::env::var_os("UKEY_LOG").is_none() {
        // The renewal commands' APDUs go through the PKCS#11 module, which
        // logs them (redacted the same way) when UKEY_LOG asks for them.
        std::env::set_var("UKEY_LOG", "apdu=debug");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("apdu=debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .without_time()
        .with_level(false)
        .with_ansi(false)
        // A closed stderr must not turn a log line into a panic.
        .with_writer(|| output::QuietStderr)
        .log_internal_errors(false)
        .init();
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        // Never print!/eprintln! here: a panic in a panic hook aborts.
        let _ = writeln!(std::io::stderr(), "ukey: internal error: {what}");
    }));
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    if matches!(cli.command, cli::Command::Ui { .. }) {
        ui::trace::init(cli.global.trace);
    } else {
        init_tracing(cli.global.trace);
    }
    settings::report_problems();
    let json = cli.global.json;
    let e = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cmd::run(cli))) {
        Ok(Ok(())) => return ExitCode::SUCCESS,
        Ok(Err(e)) => e,
        Err(_) => error::CliError::new("internal error (a bug): see the line above")
            .with_code(error::EXIT_INTERNAL)
            .with_kind(error::ErrorKind::Internal),
    };
    error::report(&e, json);
    ExitCode::from(e.code)
}

/// clap's own output for --help and --version; a usage error is clap's
/// message on stderr, and with `--json` anywhere on the line also a JSON
/// error (kind "usage", exit 2) on stdout.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion) {
        let text = e.render().to_string();
        output::stdout(text.as_bytes());
        return ExitCode::SUCCESS;
    }
    if matches!(e.kind(), K::DisplayHelpOnMissingArgumentOrSubcommand) {
        output::note(e.render().to_string().trim_end());
        return ExitCode::from(error::EXIT_USAGE);
    }
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    let rendered = e.render().to_string();
    output::note(rendered.trim_end());
    if json {
        // The first line without clap's "error: " prefix.
        let first = rendered.lines().next().unwrap_or("bad command line");
        let message = first.strip_prefix("error: ").unwrap_or(first);
        error::report_json_only(&error::CliError::new(message).with_code(error::EXIT_USAGE));
    }
    ExitCode::from(error::EXIT_USAGE)
}
