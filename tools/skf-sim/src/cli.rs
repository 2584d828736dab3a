//! `ukey-sim skf ...`: create SKF soft-token state files, pull and insert
//! them, and the SM2 demo CA's issuing side.

use crate::ca::{self, Ca, Usage, DAY};
use crate::crypto::Sm2Key;
use crate::registry::Control;
use crate::state::DeviceState;
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Subcommand)]
pub enum SkfCmd {
    /// Create an SKF device state file: factory-fresh (no application,
    /// device authentication key "1234567812345678"), or with --demo an
    /// application UKEY_APP (user PIN 123456, admin PIN 12345678, 10 tries)
    /// and a container UKEY_CONTAINER holding an SM2 signing pair and an
    /// encryption pair with certificates from the SM2 demo CA.
    Init {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        demo: bool,
        /// The SM2 demo CA's directory (created if missing) [default: <state dir>/skf-demo-ca]
        #[arg(long)]
        ca_dir: Option<PathBuf>,
        /// Days until the demo signing certificate expires (inside the
        /// 90-day renewal window by default).
        #[arg(long, default_value_t = 25)]
        expires_in: u32,
        /// Serial number [default: random].
        #[arg(long)]
        serial: Option<String>,
        /// Overwrite an existing state file.
        #[arg(long)]
        force: bool,
    },
    /// Pull or insert the device for every process using the state file:
    /// remove | insert | remove-after N (after N more SKF calls on it).
    Control {
        #[arg(long)]
        state: PathBuf,
        #[arg(num_args = 1..=2, required = true)]
        command: Vec<String>,
    },
    /// The SM2 demo CA.
    #[command(subcommand)]
    Ca(SkfCaCmd),
}

#[derive(Subcommand)]
pub enum SkfCaCmd {
    /// Check an SM2 request (SM3withSM2) and issue its signing
    /// certificate; with --envelope, also make an encryption key pair,
    /// certify it (--enc-out) and deliver it in an ENVELOPEDKEYBLOB for
    /// the request's key (SKF_ImportECCKeyPair), as CAs do.
    Issue {
        #[arg(long)]
        ca_dir: PathBuf,
        /// PEM or DER.
        #[arg(long)]
        csr: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// The signing certificate (PEM) [default: stdout].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the ENVELOPEDKEYBLOB (binary, 388 bytes) here.
        #[arg(long, requires = "enc_out")]
        envelope: Option<PathBuf>,
        /// The encryption certificate (PEM).
        #[arg(long, requires = "envelope")]
        enc_out: Option<PathBuf>,
    },
}

fn say(line: std::fmt::Arguments<'_>) -> Result<(), String> {
    writeln!(std::io::stderr(), "{line}").map_err(|e| e.to_string())
}

fn random_serial() -> String {
    let mut b = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    format!("SKF{:08}", u32::from_be_bytes(b) % 100_000_000)
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Run a `ukey-sim skf` command.
pub fn run(cmd: SkfCmd) -> Result<(), String> {
    match cmd {
        SkfCmd::Init {
            state,
            demo,
            ca_dir,
            expires_in,
            serial,
            force,
        } => {
            if state.exists() && !force {
                return Err(format!(
                    "{} exists (use --force to overwrite)",
                    state.display()
                ));
            }
            let serial = serial.unwrap_or_else(random_serial);
            let mut s = DeviceState::factory(&serial);
            if demo {
                let dir = ca_dir.unwrap_or_else(|| {
                    state
                        .parent()
                        .map(|d| d.join("skf-demo-ca"))
                        .unwrap_or_else(|| "skf-demo-ca".into())
                });
                let ca = Ca::demo(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                ca::provision_demo(&mut s, &ca, expires_in).map_err(|e| e.to_string())?;
                say(format_args!("SM2 demo CA in {}", dir.display()))?;
            }
            s.save(&state)
                .map_err(|e| format!("{}: {e}", state.display()))?;
            say(format_args!(
                "SKF device {serial} written to {}",
                state.display()
            ))
        }
        SkfCmd::Control { state, command } => {
            let line = command.join(" ");
            let c =
                Control::parse(&line).ok_or_else(|| format!("unknown control command {line:?}"))?;
            c.send(&state).map_err(|e| e.to_string())
        }
        SkfCmd::Ca(SkfCaCmd::Issue {
            ca_dir,
            csr,
            days,
            out,
            envelope,
            enc_out,
        }) => {
            let ca = Ca::load(&ca_dir).map_err(|e| format!("{}: {e}", ca_dir.display()))?;
            let bytes = std::fs::read(&csr).map_err(|e| format!("{}: {e}", csr.display()))?;
            let der = ca::der_of(bytes).map_err(|e| format!("{}: {e}", csr.display()))?;
            let (subject, key) =
                ca::verify_request(&der).map_err(|e| format!("{}: {e}", csr.display()))?;
            let now = SystemTime::now();
            let end = now + DAY * days;
            let cert = ca
                .issue(&subject, &key, now - DAY, end, Usage::Signing)
                .map_err(|e| e.to_string())?;
            let pem = ca::pem_encode("CERTIFICATE", &cert);
            match &out {
                Some(p) => std::fs::write(p, &pem).map_err(|e| format!("{}: {e}", p.display()))?,
                None => std::io::stdout()
                    .write_all(pem.as_bytes())
                    .map_err(|e| e.to_string())?,
            }
            say(format_args!(
                "issued a signing certificate for {subject}, valid {days} days"
            ))?;
            if let (Some(env_path), Some(enc_path)) = (envelope, enc_out) {
                let enc = Sm2Key::generate();
                let enc_cert = ca
                    .issue(&subject, &enc.public(), now - DAY, end, Usage::Encryption)
                    .map_err(|e| e.to_string())?;
                let blob = ca::envelope(&enc, &key).map_err(|e| e.to_string())?;
                write_private(&env_path, &blob)?;
                std::fs::write(&enc_path, ca::pem_encode("CERTIFICATE", &enc_cert))
                    .map_err(|e| format!("{}: {e}", enc_path.display()))?;
                say(format_args!(
                    "encryption key pair made, certified in {} and enveloped for the request's key in {}",
                    enc_path.display(),
                    env_path.display()
                ))?;
            }
            Ok(())
        }
    }
}
