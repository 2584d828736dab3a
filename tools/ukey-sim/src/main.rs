//! `ukey-sim`: create, inspect and serve simulated PIV tokens.

use apdu::piv::Slot;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use ukey_sim::demo::{self, DemoOptions};
use ukey_sim::state::Persistent;
use ukey_sim::{Control, SimCard};

#[derive(Parser)]
#[command(
    name = "ukey-sim",
    version,
    about = "A PIV soft token that behaves like a YubiKey 5"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a token: factory-fresh, or provisioned for demos with --demo.
    Init {
        #[arg(long)]
        state: PathBuf,
        /// Keys and certificates in 9A/9C/9D/9E from a throw-away demo CA
        /// (9A expiring soon), CHUID, CCC, PIN-protected management key.
        #[arg(long)]
        demo: bool,
        /// Directory of the demo CA (created if missing) [default: <state dir>/demo-ca]
        #[arg(long)]
        ca_dir: Option<PathBuf>,
        /// Days until the demo 9A certificate expires.
        #[arg(long, default_value_t = 25)]
        expires_in: u64,
        /// Demo keys as SLOT=ALG (e.g. 9a=p256,9d=rsa2048) instead of the defaults.
        #[arg(long, value_delimiter = ',')]
        keys: Vec<String>,
        /// Keep the default management key instead of a PIN-protected one.
        #[arg(long)]
        no_protected_key: bool,
        /// Factory management key algorithm: aes192 (firmware 5.7) or 3des
        /// (earlier firmware; what Debian 12's yubico-piv-tool 2.2 can use).
        #[arg(long, default_value = "aes192")]
        mgmt_alg: String,
        /// Serial number [default: random].
        #[arg(long)]
        serial: Option<u32>,
        /// Overwrite an existing state file.
        #[arg(long)]
        force: bool,
    },
    /// Present the token to pcscd through vsmartcard's vpcd.
    Serve {
        #[arg(long)]
        state: PathBuf,
        /// vpcd address (reader "Virtual PCD 00 00" is port 35963).
        #[arg(long, default_value = "127.0.0.1:35963")]
        vpcd: String,
        /// Append every APDU exchange (secrets redacted) to this file.
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// Show the token's state (PIN/PUK counters, keys, objects).
    Show {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Pull, insert or reset the card of every process using this state file.
    Control {
        #[arg(long)]
        state: PathBuf,
        /// remove | insert | reset | remove-after N | remove-after-processing N
        #[arg(num_args = 1..=2, required = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("UKEY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ukey-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_keys(specs: &[String]) -> Result<Vec<(Slot, apdu::piv::Algorithm)>, String> {
    specs
        .iter()
        .map(|s| {
            let (slot, alg) = s
                .split_once('=')
                .ok_or_else(|| format!("{s:?}: expected SLOT=ALG"))?;
            let slot = Slot::parse(slot).ok_or_else(|| format!("{slot:?} is not a key slot"))?;
            let alg = apdu::piv::Algorithm::from_name(alg)
                .ok_or_else(|| format!("{alg:?} is not an algorithm"))?;
            Ok((slot, alg))
        })
        .collect()
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Cmd::Init {
            state,
            demo,
            ca_dir,
            expires_in,
            keys,
            no_protected_key,
            mgmt_alg,
            serial,
            force,
        } => {
            if state.exists() && !force {
                return Err(format!(
                    "{} exists (use --force to overwrite)",
                    state.display()
                ));
            }
            let serial = serial.unwrap_or_else(|| {
                let mut b = [0u8; 4];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
                10_000_000 + u32::from_be_bytes(b) % 80_000_000
            });
            let mgmt_alg = match apdu::piv::Algorithm::from_name(&mgmt_alg) {
                Some(a @ (apdu::piv::Algorithm::Tdes | apdu::piv::Algorithm::Aes192)) => a,
                _ => return Err(format!("--mgmt-alg {mgmt_alg:?}: expected aes192 or 3des")),
            };
            let mut p = Persistent::factory_with(serial, mgmt_alg);
            if demo {
                let dir = ca_dir.unwrap_or_else(|| {
                    state
                        .parent()
                        .map(|d| d.join("demo-ca"))
                        .unwrap_or_else(|| "demo-ca".into())
                });
                let ca = demo::demo_ca(&dir).map_err(|e| e.to_string())?;
                let mut opts = DemoOptions {
                    auth_expires_in_days: expires_in,
                    ..DemoOptions::default()
                };
                if !keys.is_empty() {
                    opts.keys = parse_keys(&keys)?;
                }
                opts.protect_management_key = !no_protected_key;
                demo::provision(&mut p, &ca, &opts).map_err(|e| e.to_string())?;
                eprintln!("demo CA in {}", dir.display());
            }
            p.save(&state)
                .map_err(|e| format!("{}: {e}", state.display()))?;
            eprintln!("token {serial} written to {}", state.display());
            Ok(())
        }
        Cmd::Serve { state, vpcd, log } => {
            let card = SimCard::open(&state)
                .map_err(|e| format!("{}: {e}", state.display()))?
                .shared();
            let opts = ukey_sim::vpcd::ServeOptions { log, once: false };
            ukey_sim::vpcd::serve(card, &vpcd, &opts).map_err(|e| e.to_string())
        }
        Cmd::Show { state, json } => {
            let p = Persistent::load(&state).map_err(|e| format!("{}: {e}", state.display()))?;
            let keys: Vec<_> = p
                .keys
                .iter()
                .map(|(r, k)| {
                    serde_json::json!({
                        "slot": r,
                        "algorithm": k.algorithm().map(|a| a.name()).unwrap_or("?"),
                        "pin_policy": k.pin_policy,
                        "touch_policy": k.touch_policy,
                        "origin": k.origin,
                    })
                })
                .collect();
            let objects: Vec<_> = p
                .objects
                .iter()
                .map(|(t, v)| serde_json::json!({"tag": format!("{t:X}"), "len": v.len()}))
                .collect();
            let v = serde_json::json!({
                "serial": p.serial,
                "version": format!("{}.{}.{}", p.version[0], p.version[1], p.version[2]),
                "pin": {"tries_left": p.pin.tries_left, "tries_total": p.pin.tries_total, "default": p.pin.is_default},
                "puk": {"tries_left": p.puk.tries_left, "tries_total": p.puk.tries_total, "default": p.puk.is_default},
                "management_key": {
                    "algorithm": apdu::piv::Algorithm::from_code(p.management_key.algorithm).map(|a| a.name()),
                    "default": p.management_key.is_default,
                    "protected": ukey_sim::applet::management_key_protected(&p),
                },
                "keys": keys,
                "objects": objects,
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                println!(
                    "serial {}  version {}",
                    p.serial,
                    v["version"].as_str().unwrap_or("?")
                );
                println!(
                    "PIN tries {}/{}  PUK tries {}/{}",
                    p.pin.tries_left, p.pin.tries_total, p.puk.tries_left, p.puk.tries_total
                );
                for k in &keys {
                    println!(
                        "key {} {}",
                        k["slot"].as_str().unwrap_or("?"),
                        k["algorithm"].as_str().unwrap_or("?")
                    );
                }
                for o in &objects {
                    println!(
                        "object {} ({} bytes)",
                        o["tag"].as_str().unwrap_or("?"),
                        o["len"]
                    );
                }
            }
            Ok(())
        }
        Cmd::Control { state, command } => {
            let line = command.join(" ");
            let c =
                Control::parse(&line).ok_or_else(|| format!("unknown control command {line:?}"))?;
            c.send(&state).map_err(|e| e.to_string())
        }
    }
}
