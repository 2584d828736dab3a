//! `ukey-bench`: the measuring commands `scripts/bench` runs, and the report
//! it writes into BENCHMARKS.md. Every command appends JSON records to a
//! results file; `report` turns them into tables. Nothing here judges a
//! number: benchmarks print, they never fail on a result.

mod apdulog;
mod p11;
mod record;
mod report;
mod scenario;
mod timing;
mod tokens;

use clap::{Parser, Subcommand};
use p11::{Mech, Module};
use record::Record;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use timing::Level;

#[derive(Parser)]
#[command(
    name = "ukey-bench",
    about = "ukey benchmarks (run them with scripts/bench)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make the bench cards (demo4, certs1, certs24, demo4-N copies) in DIR.
    Tokens {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 4)]
        copies: usize,
    },
    /// The APDU scenarios on the card behind pcscd (run under
    /// `scripts/with-pcscd --sim-log`).
    Apdus {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        card: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// One fresh-process cycle (first-sign | list); counts its APDUs with
    /// --out, prints its times as JSON with --print-times.
    Cycle {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        what: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        card: Option<String>,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        print_times: bool,
    },
    /// Cold-start latency: RUNS fresh processes each running one cycle.
    Cold {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        card: String,
        #[arg(long)]
        place: String,
        #[arg(long, default_value = "first-sign")]
        what: String,
        #[arg(long)]
        runs: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Signatures per second over every slot with a token.
    Throughput {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        place: String,
        #[arg(long)]
        mech: String,
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        #[arg(long)]
        secs: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// µs per signature: direct applet call, simulator transport, module
    /// (the module's code linked into this binary).
    Levels {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        mech: String,
        #[arg(long)]
        iters: u64,
        #[arg(long)]
        rounds: usize,
        #[arg(long)]
        out: PathBuf,
        /// Also write every round's samples (CPU µs per level) to this file.
        #[arg(long)]
        dump: Option<PathBuf>,
    },
    /// Instructions per signature at each level (valgrind --tool=callgrind).
    Instructions {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        mech: String,
        /// Two iteration counts; the difference cancels setup.
        #[arg(long, value_delimiter = ',')]
        iters: Vec<u64>,
        #[arg(long)]
        scratch: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Set up one level and sign ITERS times (what callgrind runs).
    LevelLoop {
        #[arg(long)]
        level: String,
        #[arg(long)]
        mech: String,
        #[arg(long)]
        iters: u64,
        #[arg(long)]
        state: PathBuf,
    },
    /// Tokens × threads on in-process simulated tokens.
    Scaling {
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_delimiter = ',')]
        tokens: Vec<usize>,
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        #[arg(long)]
        mech: String,
        #[arg(long)]
        secs: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the Markdown report from a results file.
    Report {
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// How the results were produced (shown in the report).
        #[arg(long)]
        command: String,
    },
}

fn mech(s: &str) -> Result<Mech, String> {
    Mech::parse(s).ok_or_else(|| format!("unknown mechanism {s:?} (rsa | ecdsa)"))
}

/// The module linked into this binary, initialized.
fn linked() -> Result<Arc<Module>, String> {
    let m = Module::linked();
    m.initialize().map_err(|e| format!("C_Initialize: {e}"))?;
    Ok(Arc::new(m))
}

fn loaded(path: &Path) -> Result<Arc<Module>, String> {
    let m = Module::load(path)?;
    m.initialize().map_err(|e| format!("C_Initialize: {e}"))?;
    Ok(Arc::new(m))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Cmd::Tokens { dir, copies } => tokens::make(&dir, copies),
        Cmd::Apdus {
            module,
            name,
            card,
            out,
        } => {
            for r in scenario::apdu_scenarios(&module, &name, &card)? {
                record::append(&out, &r)?;
            }
            Ok(())
        }
        Cmd::Cycle {
            module,
            what,
            name,
            card,
            out,
            print_times,
        } => {
            let what = scenario::Cycle::parse(&what).ok_or("--what first-sign | list")?;
            let counters = match (&out, &name, &card) {
                (Some(_), Some(n), Some(c)) => {
                    Some((apdulog::Counters::from_env(0)?, c.as_str(), n.as_str()))
                }
                (None, _, _) => None,
                _ => return Err("--out needs --name and --card".into()),
            };
            let (times, recs) = scenario::cycle(&module, what, counters)?;
            if let Some(out) = &out {
                for r in &recs {
                    record::append(out, r)?;
                }
            }
            if print_times {
                println!(
                    "{}",
                    serde_json::json!({
                        "done_us": times.done_us,
                        "total_us": times.total_us,
                        "phases": times.phases,
                    })
                );
            }
            Ok(())
        }
        Cmd::Cold {
            module,
            name,
            card,
            place,
            what,
            runs,
            out,
        } => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let (mut done, mut process) = (Vec::new(), Vec::new());
            let mut phases: Vec<(String, Vec<f64>)> = Vec::new();
            for _ in 0..runs {
                let t = std::time::Instant::now();
                let o = std::process::Command::new(&exe)
                    .args(["cycle", "--what", &what, "--print-times", "--module"])
                    .arg(&module)
                    .output()
                    .map_err(|e| e.to_string())?;
                let wall = t.elapsed().as_secs_f64() * 1e6;
                if !o.status.success() {
                    return Err(format!(
                        "cycle failed: {}",
                        String::from_utf8_lossy(&o.stderr)
                    ));
                }
                let v: serde_json::Value =
                    serde_json::from_slice(&o.stdout).map_err(|e| e.to_string())?;
                done.push(v["done_us"].as_f64().ok_or("done_us")?);
                process.push(wall);
                for (i, p) in v["phases"].as_array().into_iter().flatten().enumerate() {
                    let (Some(n), Some(us)) = (p[0].as_str(), p[1].as_f64()) else {
                        continue;
                    };
                    if phases.len() <= i {
                        phases.push((n.to_string(), Vec::new()));
                    }
                    phases[i].1.push(us);
                }
            }
            for (w, samples, phases) in [
                (what.clone(), done, phases),
                (format!("{what}-process"), process, Vec::new()),
            ] {
                record::append(
                    &out,
                    &Record::Latency {
                        place: place.clone(),
                        card: card.clone(),
                        module: name.clone(),
                        what: w,
                        samples_us: samples,
                        phases,
                    },
                )?;
            }
            Ok(())
        }
        Cmd::Throughput {
            module,
            name,
            place,
            mech: mname,
            threads,
            secs,
            out,
        } => {
            let mech = mech(&mname)?;
            let m = loaded(&module)?;
            let slots = p11::token_slots(&m)?;
            if slots.is_empty() {
                return Err("no slot with an initialized token".into());
            }
            // One token: the first.
            let slots = &slots[..1];
            for &t in &threads {
                let load = record::load_average();
                let run = timing::throughput(&m, slots, mech, t, Duration::from_secs_f64(secs), 3)?;
                record::append(
                    &out,
                    &Record::Throughput {
                        place: place.clone(),
                        module: name.clone(),
                        mech: mech.short().into(),
                        tokens: 1,
                        threads: t,
                        ops: run.ops,
                        secs: run.secs,
                        cpu_us: run.cpu_us,
                        load,
                    },
                )?;
            }
            m.finalize().map_err(|e| format!("C_Finalize: {e}"))
        }
        Cmd::Levels {
            state,
            mech: mname,
            iters,
            rounds,
            out,
            dump,
        } => {
            let mech = mech(&mname)?;
            timing::use_sim_tokens(&[&state])?;
            let m = linked()?;
            let samples = timing::levels(&m, &state, mech, iters, rounds)?;
            if let Some(d) = &dump {
                let v: Vec<_> = samples
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "level": s.level.name(),
                            "wall_us": s.wall,
                            "cpu_us": s.cpu,
                            "card_us": s.card,
                        })
                    })
                    .collect();
                std::fs::write(d, serde_json::to_string(&v).map_err(|e| e.to_string())?)
                    .map_err(|e| format!("{}: {e}", d.display()))?;
            }
            for s in &samples {
                record::append(
                    &out,
                    &Record::Level {
                        mech: mech.short().into(),
                        level: s.level.name().into(),
                        us_per_op: record::median(&s.wall),
                        cpu_us_per_op: record::median(&s.cpu),
                        card_us_per_op: record::median(&s.card),
                        ops: iters * rounds as u64,
                    },
                )?;
            }
            for (i, j) in [(1, 0), (2, 1), (2, 0)] {
                let (a, b) = (&samples[i], &samples[j]);
                let (us, ci_us) = timing::paired_median(&a.outside(), &b.outside());
                record::append(
                    &out,
                    &Record::LevelDiff {
                        mech: mech.short().into(),
                        a: a.level.name().into(),
                        b: b.level.name().into(),
                        us,
                        ci_us,
                        rounds,
                    },
                )?;
            }
            m.finalize().map_err(|e| format!("C_Finalize: {e}"))
        }
        Cmd::Instructions {
            state,
            mech: mname,
            iters,
            scratch,
            out,
        } => {
            let mech = mech(&mname)?;
            let [a, b] = iters[..] else {
                return Err("--iters takes two counts, e.g. 10,30".into());
            };
            std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
            for level in Level::ALL {
                let ca = timing::callgrind(level, mech, a, &state, &scratch)?;
                let cb = timing::callgrind(level, mech, b, &state, &scratch)?;
                let per = |x: u64, y: u64| (y as f64 - x as f64) / (b as f64 - a as f64);
                record::append(
                    &out,
                    &Record::Instructions {
                        mech: mech.short().into(),
                        level: level.name().into(),
                        per_op: per(ca.total, cb.total),
                        card: per(ca.card, cb.card),
                    },
                )?;
            }
            Ok(())
        }
        Cmd::LevelLoop {
            level,
            mech: mname,
            iters,
            state,
        } => {
            let mech = mech(&mname)?;
            let level = Level::parse(&level).ok_or("--level applet | transport | module")?;
            let m = if level == Level::Module {
                timing::use_sim_tokens(&[&state])?;
                Some(linked()?)
            } else {
                None
            };
            let mut p = timing::Prepared::new(level, &state, mech, m.as_ref())?;
            p.run(iters)?;
            drop(p);
            if let Some(m) = m {
                m.finalize().map_err(|e| format!("C_Finalize: {e}"))?;
            }
            Ok(())
        }
        Cmd::Scaling {
            module,
            dir,
            tokens: token_counts,
            threads,
            mech: mname,
            secs,
            out,
        } => {
            let mech = mech(&mname)?;
            let m = Arc::new(Module::load(&module)?);
            for &k in &token_counts {
                let paths: Vec<PathBuf> = (1..=k)
                    .map(|i| tokens::path(&dir, &format!("{}-{i}", tokens::DEMO4)))
                    .collect();
                let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
                timing::use_sim_tokens(&refs)?;
                m.initialize().map_err(|e| format!("C_Initialize: {e}"))?;
                let slots = p11::token_slots(&m)?;
                if slots.len() != k {
                    return Err(format!("{k} tokens asked, {} slots seen", slots.len()));
                }
                for &t in &threads {
                    let load = record::load_average();
                    let run =
                        timing::throughput(&m, &slots, mech, t, Duration::from_secs_f64(secs), 3)?;
                    record::append(
                        &out,
                        &Record::Throughput {
                            place: "scaling".into(),
                            module: "ukey".into(),
                            mech: mech.short().into(),
                            tokens: k,
                            threads: t,
                            ops: run.ops,
                            secs: run.secs,
                            cpu_us: run.cpu_us,
                            load,
                        },
                    )?;
                }
                m.finalize().map_err(|e| format!("C_Finalize: {e}"))?;
            }
            Ok(())
        }
        Cmd::Report {
            results,
            out,
            command,
        } => {
            let recs = record::load(&results)?;
            let text = report::render(&recs, &command);
            std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ukey-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
