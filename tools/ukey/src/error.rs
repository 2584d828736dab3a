//! The CLI's error is the status model's ([`ukey_token::error`]: reason,
//! notes, exit code, the JSON's stable `kind`); here only how the CLI
//! prints it.

pub use ukey_token::error::*;

/// Print the notes and the one-line reason (and a JSON object on stdout).
pub fn report(e: &CliError, json: bool) {
    for n in &e.notes {
        crate::output::note(n);
    }
    crate::output::note(format!("ukey: {}", e.message));
    if json {
        report_json_only(e);
    }
}

/// The JSON error document on stdout (schema `error`).
pub fn report_json_only(e: &CliError) {
    crate::output::stdout(format!("{}\n", e.to_json()).as_bytes());
}
