//! One module per command; [`run`] dispatches.

mod apdu_raw;
mod cert;
pub mod csr;
mod keygen;
mod mgmt;
mod pin;
pub mod readers;
pub mod renew;
mod reset;
mod selftest;
pub mod status;

use crate::cli::{CertCommand, Cli, Command, MgmtKeyCommand, PinCommand, PukCommand, RenewCommand};
use crate::error::{CliError, Result};
use crate::output::Out;
use crate::secrets::Secrets;
use crate::token::{Inventory, Selection, Token};
use std::path::Path;

/// What every command gets: output mode, token selection, secrets.
pub struct Ctx {
    pub out: Out,
    pub sel: Selection,
    pub secrets: Secrets,
}

impl Ctx {
    /// The one token the user means (asks or refuses when ambiguous).
    pub fn token(&self) -> Result<Token> {
        crate::token::choose(Inventory::scan(&self.sel)?, &self.sel)
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let mut g = cli.global;
    let secrets = Secrets::new(g.pin.take(), g.pin_stdin, g.mgmt_key.take());
    let mut ctx = Ctx {
        out: Out { json: g.json },
        sel: crate::token::selection(&g),
        secrets,
    };
    match cli.command {
        Command::Readers => readers::run(&ctx),
        Command::Status { window } => status::run(&ctx, window),
        Command::Pin(PinCommand::Verify) => pin::verify(&mut ctx),
        Command::Pin(PinCommand::Change { new_pin }) => pin::change(&mut ctx, new_pin),
        Command::Pin(PinCommand::Unblock { puk, new_pin }) => pin::unblock(&mut ctx, puk, new_pin),
        Command::Puk(PukCommand::Change { puk, new_puk }) => {
            pin::change_puk(&mut ctx, puk, new_puk)
        }
        Command::Keygen {
            slot,
            alg,
            force,
            out,
        } => keygen::run(&mut ctx, slot, alg.algorithm(), force, out.as_deref()),
        Command::Cert(CertCommand::Import { slot, file, force }) => {
            cert::import(&mut ctx, slot, &file, force)
        }
        Command::Cert(CertCommand::Export { slot, out, der }) => {
            cert::export(&ctx, slot, out.as_deref(), der)
        }
        Command::Cert(CertCommand::Delete { slot, yes }) => cert::delete(&mut ctx, slot, yes),
        Command::Csr { slot, subject, out } => {
            csr::run(&mut ctx, slot, subject.as_deref(), out.as_deref())
        }
        Command::Selftest => selftest::run(&mut ctx),
        Command::MgmtKey(MgmtKeyCommand::Protect) => mgmt::protect(&mut ctx),
        Command::Reset { yes } => reset::run(&ctx, yes),
        Command::Apdu { apdus } => apdu_raw::run(&ctx, &apdus),
        Command::Renew(RenewCommand::Request {
            slot,
            out,
            force,
            window,
            retired_slot_ok,
        }) => renew::request(
            &mut ctx,
            slot,
            out.as_deref(),
            force,
            window,
            retired_slot_ok,
        ),
        Command::Renew(RenewCommand::Install {
            file,
            not_before_ok,
            new_issuer_ok,
        }) => renew::install(
            &mut ctx,
            &file,
            renew::Allow {
                not_yet_valid: not_before_ok,
                new_issuer: new_issuer_ok,
            },
        ),
        Command::Renew(RenewCommand::Status) => renew::status(&ctx),
        Command::Renew(RenewCommand::Cancel { slot, yes }) => renew::cancel(&mut ctx, slot, yes),
        Command::Renew(RenewCommand::Clean { slot, yes }) => renew::clean(&mut ctx, slot, yes),
        Command::Ui {
            listen,
            no_open,
            idle,
        } => crate::ui::run(&ctx, listen, no_open, std::time::Duration::from_secs(idle)),
    }
}

/// Write `data` to `path`, with the path in any error.
pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).map_err(|e| CliError::new(format!("{}: {e}", path.display())))
}

pub use ukey_token::status::role;

/// Who a token is, for messages: "token 12345678 (reader)".
pub fn who(serial: Option<u32>, reader: &str) -> String {
    match serial {
        Some(s) => format!("token {s} ({reader})"),
        None => format!("the token in {reader}"),
    }
}
