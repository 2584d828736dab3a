//! Command line (clap derive). Options that choose the token or give
//! secrets are global, so they work before or after the subcommand.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The help's word on simulated tokens (only a build with them has any).
#[cfg(feature = "sim")]
macro_rules! tokens_help {
    () => {
        ", plus simulated tokens from UKEY_SIM=/a.json[:/b.json] or --sim"
    };
}
#[cfg(not(feature = "sim"))]
macro_rules! tokens_help {
    () => {
        ""
    };
}

#[derive(Parser)]
#[command(
    name = "ukey",
    version,
    about = "Diagnostics, PIN management and certificate renewal for PIV USB keys (YubiKey-compatible)",
    after_help = concat!(
        "Tokens: PC/SC readers",
        tokens_help!(),
        " (UKEY_NO_PCSC=1 skips PC/SC). Secrets: the options (--pin, --puk, \
         --new-pin, --new-puk), then --pin-stdin, then UKEY_PIN, UKEY_PUK, \
         UKEY_NEW_PIN, UKEY_NEW_PUK, then a hidden prompt. Management key: --mgmt-key \
         or UKEY_MGMT_KEY when it is not PIN-protected."
    )
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct Global {
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Use the token in this reader (exact name, or a unique part of it).
    #[arg(long, global = true, value_name = "R")]
    pub reader: Option<String>,
    /// Use the token with this serial number.
    #[arg(long, global = true, value_name = "N")]
    pub serial: Option<u32>,
    /// Simulated token state file (repeatable); replaces UKEY_SIM.
    #[cfg(feature = "sim")]
    #[arg(long, global = true, value_name = "STATE")]
    pub sim: Vec<PathBuf>,
    /// Print the APDU exchange on stderr (PIN, PUK and key material redacted).
    #[arg(long, global = true)]
    pub trace: bool,
    /// The PIN (visible in the process list: prefer UKEY_PIN or --pin-stdin).
    #[arg(long, global = true, value_name = "PIN")]
    pub pin: Option<String>,
    /// Read PIN/PUK values from stdin, one per line, in the order the command asks for them.
    #[arg(long, global = true)]
    pub pin_stdin: bool,
    /// Management key in hex (only for tokens whose management key is not PIN-protected).
    #[arg(long, global = true, value_name = "HEX")]
    pub mgmt_key: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// List readers: card present, ATR, PIV applet.
    Readers,
    /// Tokens, PIN/PUK tries, keys and certificates with a renewal verdict (spends no PIN try).
    Status {
        /// Renewal window in days before expiry.
        #[arg(long, default_value_t = crate::verdict::DEFAULT_WINDOW_DAYS, value_name = "DAYS")]
        window: u32,
    },
    /// Verify, change or unblock the PIN.
    #[command(subcommand)]
    Pin(PinCommand),
    /// Change the PUK.
    #[command(subcommand)]
    Puk(PukCommand),
    /// Generate a key pair on the token.
    Keygen {
        #[arg(long, value_parser = parse_slot)]
        slot: apdu::piv::Slot,
        #[arg(long, value_enum)]
        alg: KeyAlg,
        /// Replace a key already in the slot without asking.
        #[arg(long)]
        force: bool,
        /// Write the public key (PEM) here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import, export or delete a slot's certificate.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Write a PKCS#10 request signed on the token.
    Csr {
        #[arg(long, value_parser = parse_slot)]
        slot: apdu::piv::Slot,
        /// Subject (CN=...,O=... or /CN=.../O=...) [default: the slot certificate's subject].
        #[arg(long)]
        subject: Option<String>,
        /// Write the request (PEM) here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Sign and verify with every key, and a decrypt / ECDH round trip.
    Selftest,
    /// The management key: `protect` keeps a new random one behind the PIN,
    /// so the PIN alone authorises writes (ukey and PKCS#11 clients).
    #[command(subcommand, name = "mgmt-key")]
    MgmtKey(MgmtKeyCommand),
    /// Factory reset of the PIV application (only when PIN and PUK are both blocked).
    Reset {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Send raw APDUs (hex) in one transaction and print the responses.
    Apdu {
        #[arg(required = true, value_name = "HEX")]
        apdus: Vec<String>,
    },
    /// Renew a certificate: stage a new key and request, install the CA's certificate.
    #[command(subcommand)]
    Renew(RenewCommand),
    /// The local web page: my certificates, renewal, driver and diagnostics.
    /// Serves on the loopback interface only, prints its address (with a
    /// one-time secret) on the first line and opens the browser.
    Ui {
        /// Listen here (a loopback address; default 127.0.0.1 on a free port).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// Do not open the browser (xdg-open).
        #[arg(long)]
        no_open: bool,
        /// Stop after this many seconds with no page open and nothing running.
        #[arg(long, default_value_t = 600, value_name = "SECONDS")]
        idle: u64,
    },
}

#[derive(Subcommand)]
pub enum RenewCommand {
    /// Stage a renewal: a new key in a free retired slot and a PKCS#10 request
    /// signed by it, remembered on the token; the key in use stays untouched.
    Request {
        /// The slot to renew (9a, 9c, 9d or 9e).
        #[arg(long, value_parser = crate::cmd::renew::parse_target)]
        slot: apdu::piv::Slot,
        /// Write the request (PEM) here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Request even when the certificate is not yet due for renewal.
        #[arg(long)]
        force: bool,
        /// Renewal window in days before expiry.
        #[arg(long, default_value_t = crate::verdict::DEFAULT_WINDOW_DAYS, value_name = "DAYS")]
        window: u32,
        /// On a token that cannot move keys (no MOVE KEY: firmware before
        /// 5.7), accept without asking that the renewed pair stays in the
        /// retired slot (applications pinned to the slot keep the old key).
        #[arg(long)]
        retired_slot_ok: bool,
    },
    /// Install the CA's certificate (PEM, DER or PKCS#7 .p7b) for a staged key
    /// and promote the new pair into its slot; run it again after an interruption.
    Install {
        /// The certificate file from the CA.
        file: PathBuf,
        /// Accept a certificate that is not valid yet: it is written next to
        /// the new key and the pair in use stays until it is valid (run
        /// install again then).
        #[arg(long)]
        not_before_ok: bool,
        /// Accept a certificate from another issuer than the current one
        /// without asking.
        #[arg(long)]
        new_issuer_ok: bool,
    },
    /// Show the renewals staged on the token (spends no PIN try).
    Status,
    /// Clean up orphaned staging: remove an empty or unreadable marker, or
    /// (--slot) delete a key no staged renewal claims from a retired slot.
    Clean {
        /// The retired slot whose orphaned key to delete.
        #[arg(long, value_parser = parse_slot)]
        slot: Option<apdu::piv::Slot>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Discard a staged renewal: its new key and marker (the key in use stays).
    Cancel {
        /// Only the renewal of this slot [default: every staged renewal].
        #[arg(long, value_parser = crate::cmd::renew::parse_target)]
        slot: Option<apdu::piv::Slot>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum MgmtKeyCommand {
    /// Replace the management key with a random one stored on the token
    /// behind the PIN (PIN-protected, as ykman does); asks the current key
    /// (--mgmt-key) unless it is the factory default.
    Protect,
}

#[derive(Subcommand)]
pub enum PinCommand {
    /// Check the PIN (spends a try only if it is wrong).
    Verify,
    /// Change the PIN (asks the current PIN, then the new one).
    Change {
        /// The new PIN (else UKEY_NEW_PIN, stdin or a prompt).
        #[arg(long, value_name = "PIN")]
        new_pin: Option<String>,
    },
    /// Set a new PIN with the PUK (also unblocks a blocked PIN).
    Unblock {
        /// The PUK (else UKEY_PUK, stdin or a prompt).
        #[arg(long, value_name = "PUK")]
        puk: Option<String>,
        /// The new PIN (else UKEY_NEW_PIN, stdin or a prompt).
        #[arg(long, value_name = "PIN")]
        new_pin: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PukCommand {
    /// Change the PUK (asks the current PUK, then the new one).
    Change {
        /// The current PUK (else UKEY_PUK, stdin or a prompt).
        #[arg(long, value_name = "PUK")]
        puk: Option<String>,
        /// The new PUK (else UKEY_NEW_PUK, stdin or a prompt).
        #[arg(long, value_name = "PUK")]
        new_puk: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum CertCommand {
    /// Write a certificate (PEM or DER file) into a slot.
    Import {
        #[arg(long, value_parser = parse_slot)]
        slot: apdu::piv::Slot,
        /// Certificate file (PEM or DER).
        file: PathBuf,
        /// Store it even if it does not match the slot's key.
        #[arg(long)]
        force: bool,
    },
    /// Print (or write) a slot's certificate.
    Export {
        #[arg(long, value_parser = parse_slot)]
        slot: apdu::piv::Slot,
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// DER instead of PEM.
        #[arg(long)]
        der: bool,
    },
    /// Remove a slot's certificate (the key stays).
    Delete {
        #[arg(long, value_parser = parse_slot)]
        slot: apdu::piv::Slot,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// Key algorithms `keygen` offers.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyAlg {
    P256,
    P384,
    Rsa2048,
}

impl KeyAlg {
    pub fn algorithm(self) -> apdu::piv::Algorithm {
        match self {
            KeyAlg::P256 => apdu::piv::Algorithm::EccP256,
            KeyAlg::P384 => apdu::piv::Algorithm::EccP384,
            KeyAlg::Rsa2048 => apdu::piv::Algorithm::Rsa2048,
        }
    }
}

fn parse_slot(s: &str) -> Result<apdu::piv::Slot, String> {
    match apdu::piv::Slot::parse(s) {
        Some(apdu::piv::Slot::Attestation) | None => Err(format!(
            "{s:?} is not a key slot (9a, 9c, 9d, 9e, 82..95 or retired1..retired20)"
        )),
        Some(slot) => Ok(slot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn slots_parse_and_f9_is_refused() {
        assert_eq!(parse_slot("9a"), Ok(apdu::piv::Slot::Authentication));
        assert_eq!(parse_slot("retired2"), Ok(apdu::piv::Slot::Retired(2)));
        assert!(parse_slot("f9").is_err());
        assert!(parse_slot("9b").is_err());
    }
}
