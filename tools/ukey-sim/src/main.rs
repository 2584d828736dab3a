//! `ukey-sim`: create, inspect and serve simulated PIV tokens.

use apdu::piv::Slot;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use ukey_sim::demo::{self, DemoOptions};
use ukey_sim::profile::Profile;
use ukey_sim::state::Persistent;
use ukey_sim::{Control, SimCard};

#[derive(Parser)]
#[command(
    name = "ukey-sim",
    version,
    about = "A PIV soft token: a YubiKey 5, or (--profile) an older YubiKey or another maker's PIV card"
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
        /// Which card: yk57 (YubiKey 5.7), yk54 (YubiKey 5.4: no MOVE KEY),
        /// yk4 (YubiKey 4: no GET METADATA), generic (PIV without YubiKey
        /// extensions), compat (a third-party applet imitating a YubiKey).
        #[arg(long, default_value = "yk57")]
        profile: String,
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
        /// Factory management key algorithm: aes192 or 3des (what Debian
        /// 12's yubico-piv-tool 2.2 can use) [default: the profile's:
        /// aes192 on yk57, 3des on the others].
        #[arg(long)]
        mgmt_alg: Option<String>,
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
    /// A throw-away CA (the demo CA that `init --demo` writes).
    #[command(subcommand)]
    Ca(CaCmd),
    /// GM/T 0016 (SKF) soft tokens for libukey_skf_sim.so, and their SM2 demo CA.
    #[command(subcommand)]
    Skf(ukey_skf_sim::cli::SkfCmd),
    /// Pull, insert or reset the card of every process using this state file.
    Control {
        #[arg(long)]
        state: PathBuf,
        /// remove | insert | reset | logout | remove-after N | remove-after-processing N
        #[arg(num_args = 1..=2, required = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum CaCmd {
    /// Check a PKCS#10 request's signature and issue a certificate for its
    /// key and subject (what the CA does once its review is done).
    Issue {
        /// The CA's directory (ca.pem, ca.key), e.g. <state dir>/demo-ca.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The request (PEM or DER).
        #[arg(long)]
        csr: PathBuf,
        /// Days of validity from now.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Key usage: signing (9A, 9C, 9E) or encryption (9D).
        #[arg(long, default_value = "signing")]
        usage: String,
        /// Write the certificate here [default: stdout].
        #[arg(long)]
        out: Option<PathBuf>,
        /// DER instead of PEM.
        #[arg(long)]
        der: bool,
    },
}

fn issue(
    ca_dir: &std::path::Path,
    csr: &std::path::Path,
    days: u32,
    usage: &str,
    out: Option<&std::path::Path>,
    der_out: bool,
) -> Result<(), String> {
    use ukey_sim::ca::{self, Ca, LeafUse};
    let usage = match usage {
        "signing" => LeafUse::Signing,
        "encryption" => LeafUse::Encryption,
        other => return Err(format!("--usage {other:?}: expected signing or encryption")),
    };
    let ca = Ca::load(ca_dir).map_err(|e| format!("{}: {e}", ca_dir.display()))?;
    let bytes = std::fs::read(csr).map_err(|e| format!("{}: {e}", csr.display()))?;
    let csr_der = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            ca::pem_decode(text).ok_or_else(|| format!("{}: bad PEM", csr.display()))?
        }
        _ => bytes,
    };
    let cert = ca
        .issue_for_request(&csr_der, days, usage)
        .map_err(|e| format!("{}: {e}", csr.display()))?;
    let parsed =
        <x509_cert::Certificate as der::Decode>::from_der(&cert).map_err(|e| e.to_string())?;
    eprintln!(
        "issued for {} by {}, valid until {}",
        parsed.tbs_certificate.subject,
        parsed.tbs_certificate.issuer,
        parsed.tbs_certificate.validity.not_after
    );
    let data = if der_out {
        cert
    } else {
        ca::pem_encode("CERTIFICATE", &cert).into_bytes()
    };
    match out {
        Some(p) => std::fs::write(p, data).map_err(|e| format!("{}: {e}", p.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&data)
                .map_err(|e| e.to_string())
        }
    }
}

/// Print to stdout; a reader that went away (`| head`) ends the output
/// quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.to_string());
        }
    }};
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
            profile,
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
            let profile = Profile::from_name(&profile).ok_or_else(|| {
                let names: Vec<_> = Profile::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "--profile {profile:?}: expected one of {}",
                    names.join(", ")
                )
            })?;
            let spec = profile.spec();
            let mgmt_alg = match mgmt_alg.as_deref().map(apdu::piv::Algorithm::from_name) {
                None => None,
                Some(Some(a @ (apdu::piv::Algorithm::Tdes | apdu::piv::Algorithm::Aes192)))
                    if spec.management_algorithm_ok(a) =>
                {
                    Some(a)
                }
                Some(Some(a @ apdu::piv::Algorithm::Aes192)) => {
                    return Err(format!("a {profile} card has no {a} management key"))
                }
                Some(_) => {
                    return Err(format!(
                        "--mgmt-alg {:?}: expected aes192 or 3des",
                        mgmt_alg.unwrap_or_default()
                    ))
                }
            };
            let mut p = Persistent::factory_for(profile, serial, mgmt_alg);
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
                opts.protect_management_key = !no_protected_key && spec.vendor_objects;
                if !no_protected_key && !spec.vendor_objects {
                    eprintln!(
                        "a {profile} card keeps no ADMIN DATA: its management key stays the \
                         factory default (not PIN-protected)"
                    );
                }
                demo::provision(&mut p, &ca, &opts).map_err(|e| e.to_string())?;
                eprintln!("demo CA in {}", dir.display());
            }
            p.save(&state)
                .map_err(|e| format!("{}: {e}", state.display()))?;
            eprintln!(
                "token {serial} ({}) written to {}",
                spec.description,
                state.display()
            );
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
                "profile": p.profile.name(),
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
                out!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                out!(
                    "serial {}  version {}  profile {} ({})",
                    p.serial,
                    v["version"].as_str().unwrap_or("?"),
                    p.profile,
                    p.profile.spec().description
                );
                out!(
                    "PIN tries {}/{}  PUK tries {}/{}",
                    p.pin.tries_left,
                    p.pin.tries_total,
                    p.puk.tries_left,
                    p.puk.tries_total
                );
                for k in &keys {
                    out!(
                        "key {} {}",
                        k["slot"].as_str().unwrap_or("?"),
                        k["algorithm"].as_str().unwrap_or("?")
                    );
                }
                for o in &objects {
                    out!(
                        "object {} ({} bytes)",
                        o["tag"].as_str().unwrap_or("?"),
                        o["len"]
                    );
                }
            }
            Ok(())
        }
        Cmd::Ca(CaCmd::Issue {
            ca_dir,
            csr,
            days,
            usage,
            out,
            der,
        }) => issue(&ca_dir, &csr, days, &usage, out.as_deref(), der),
        Cmd::Skf(cmd) => ukey_skf_sim::cli::run(cmd),
        Cmd::Control { state, command } => {
            let line = command.join(" ");
            let c =
                Control::parse(&line).ok_or_else(|| format!("unknown control command {line:?}"))?;
            c.send(&state).map_err(|e| e.to_string())
        }
    }
}
