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
//!   [`marker`] is the staging marker they keep on the token;
//! * [`cmd`] holds one module per command.

mod auth;
mod certs;
mod cli;
mod cmd;
mod error;
mod keys;
mod marker;
mod output;
mod p11;
mod secrets;
mod slotkey;
mod token;
mod verdict;

use clap::Parser;
use std::process::ExitCode;

fn init_tracing(trace: bool) {
    let user = std::env::var("UKEY_LOG").ok().filter(|s| !s.is_empty());
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
        .with_writer(std::io::stderr)
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
        eprintln!("ukey: internal error: {what}");
    }));
    let cli = cli::Cli::parse();
    init_tracing(cli.global.trace);
    let json = cli.global.json;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cmd::run(cli))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            e.report(json);
            ExitCode::from(e.code)
        }
        Err(_) => ExitCode::from(error::EXIT_INTERNAL),
    }
}
