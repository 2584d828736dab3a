//! Which token: the status model's reader choice and token access
//! ([`ukey_token::access`]), with what only the CLI knows: the selection
//! from options, configuration and environment, and the question on a
//! terminal when several tokens are present.

use crate::cli::Global;
use crate::error::{CliError, Result};
use crate::output;
pub use ukey_token::access::*;

/// What the user asked for, from options and environment.
pub fn selection(g: &Global) -> Selection {
    let settings = crate::settings::get();
    #[cfg(feature = "sim")]
    let sims = if g.sim.is_empty() {
        settings.sim.clone()
    } else {
        g.sim.clone()
    };
    #[cfg(not(feature = "sim"))]
    let sims = Vec::new();
    Selection {
        reader: g.reader.clone(),
        serial: g.serial,
        sims,
        no_pcsc: settings.no_pcsc,
    }
}

/// The one token the user means: asked on a terminal when several are
/// present, refused (listing them) otherwise.
pub fn choose(inv: Inventory, sel: &Selection) -> Result<Token> {
    let ask = |listing: &[String], n: usize| -> Result<usize> {
        for line in listing {
            output::note(line);
        }
        let answer = output::ask(&format!("Which token? [1-{n}]: "))?;
        match answer.parse::<usize>() {
            Ok(i) if (1..=n).contains(&i) => Ok(i),
            _ => Err(CliError::new(format!(
                "{answer:?} is not one of 1..{n}: nothing was done"
            ))),
        }
    };
    let pick: Option<Pick<'_>> = if output::interactive() {
        Some(&ask)
    } else {
        None
    };
    inv.choose(sel, pick)
}
