//! Throughput, the cost of each level of the stack, scaling, cold starts.
//!
//! A small harness: warm-up, then a fixed wall-clock budget per
//! configuration with all threads released together; levels of the stack
//! are measured in interleaved rounds so that drift of a shared machine
//! hits them alike, and summarised by the median round.

use crate::p11::{self, Mech, Module};
use crate::scenario::PIN;
use crate::tokens::{ID_9A_RSA, ID_9E_P256};
use apdu::piv::{Algorithm, Pin, Slot};
use apdu::transport::{Link, Transport, TransportError};
use cryptoki_sys::*;
use sha2::Digest;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use ukey_pkcs11::pad::{pkcs1_sign_block, HashAlg};
use ukey_sim::applet::Applet;
use ukey_sim::state::Persistent;

fn e2s<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

/// The key each mechanism signs with on the bench cards (and SoftHSM's
/// keys are created with the same CKA_IDs).
pub fn key_id(mech: Mech) -> u8 {
    match mech {
        Mech::Rsa => ID_9A_RSA,
        Mech::Ecdsa => ID_9E_P256,
    }
}

fn slot_of(mech: Mech) -> (Slot, Algorithm) {
    match mech {
        Mech::Rsa => (Slot::Authentication, Algorithm::Rsa2048),
        Mech::Ecdsa => (Slot::CardAuthentication, Algorithm::EccP256),
    }
}

/// CPU time (µs) this process has used, all threads, living or ended.
fn process_cpu_us() -> f64 {
    // SAFETY: all-zero is a valid `rusage`; getrusage only writes it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time (µs) of every thread of process `pid`, from /proc (ns resolution).
fn other_cpu_us(pid: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e3
}

/// The processes behind the card when running under `scripts/with-pcscd`:
/// pcscd and the simulated cards.
fn card_side_pids() -> Vec<String> {
    let mut v: Vec<String> = std::env::var("PCSCD_PID").into_iter().collect();
    if let Ok(sims) = std::env::var("UKEY_SIM_PIDS") {
        v.extend(sims.split_whitespace().map(str::to_string));
    }
    v
}

/// CPU µs used so far by this process and the card side.
fn system_cpu_us(pids: &[String]) -> f64 {
    process_cpu_us() + pids.iter().map(|p| other_cpu_us(p)).sum::<f64>()
}

/// What a throughput run measured.
pub struct Run {
    pub ops: u64,
    pub secs: f64,
    /// CPU µs of this process plus, under with-pcscd, pcscd and the card.
    pub cpu_us: f64,
}

/// Signatures per second with `threads` threads, each with its own session
/// on `slots[i % n]` (logged in as the user), for `budget`.
pub fn throughput(
    m: &Arc<Module>,
    slots: &[CK_SLOT_ID],
    mech: Mech,
    threads: usize,
    budget: Duration,
    warmup: usize,
) -> Result<Run, String> {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for i in 0..threads {
        let m = m.clone();
        let slot = slots[i % slots.len()];
        let barrier = barrier.clone();
        handles.push(std::thread::spawn(move || -> Result<u64, String> {
            let prepared = (|| {
                let h = m.open(slot, false).map_err(e2s("C_OpenSession"))?;
                m.login(h, CKU_USER, PIN).map_err(e2s("C_Login"))?;
                let key = p11::private_key(&m, h, key_id(mech))?;
                let mut sig = [0u8; 512];
                for _ in 0..warmup {
                    p11::sign_once(&m, h, key, mech, &mech.input(), &mut sig)
                        .map_err(e2s("sign"))?;
                }
                Ok::<_, String>((h, key))
            })();
            // Everyone meets at both barriers, even after a failure.
            barrier.wait();
            barrier.wait();
            let (h, key) = prepared?;
            let end = Instant::now() + budget;
            let mut sig = [0u8; 512];
            let input = mech.input();
            let mut n = 0u64;
            while Instant::now() < end {
                p11::sign_once(&m, h, key, mech, &input, &mut sig).map_err(e2s("sign"))?;
                n += 1;
            }
            m.close(h).map_err(e2s("C_CloseSession"))?;
            Ok(n)
        }));
    }
    let pids = card_side_pids();
    barrier.wait();
    let cpu0 = system_cpu_us(&pids);
    barrier.wait();
    let start = Instant::now();
    let mut total = 0;
    let mut err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(n)) => total += n,
            Ok(Err(e)) => err = Some(e),
            Err(_) => err = Some("a benchmark thread panicked".into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_us = system_cpu_us(&pids) - cpu0;
    match err {
        Some(e) => Err(e),
        None => Ok(Run {
            ops: total,
            secs,
            cpu_us,
        }),
    }
}

// ---- the levels of the stack, in-process -----------------------------------

/// Where a signature is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `Applet::process` on the GENERAL AUTHENTICATE APDU: the card alone.
    Applet,
    /// The same APDU through the simulator's transport (`SimReader` →
    /// `SimTransport::exclusive` → `SimCard::transmit`): card + the
    /// simulator's per-transaction bookkeeping, no module.
    Transport,
    /// C_SignInit + C_Sign through the loaded module (UKEY_SIM).
    Module,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Applet, Level::Transport, Level::Module];
    pub fn name(self) -> &'static str {
        match self {
            Level::Applet => "applet",
            Level::Transport => "transport",
            Level::Module => "module",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// A link straight to an applet that keeps every command it was given.
struct Recorder<'a> {
    applet: &'a mut Applet,
    sent: Vec<Vec<u8>>,
}

impl Link for Recorder<'_> {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent.push(apdu.to_vec());
        Ok(self.applet.process(apdu))
    }
}

/// The card's input for one signature of `MESSAGE`, as the module computes
/// it: the SHA-256 digest for ECDSA P-256, the PKCS#1 v1.5 block for RSA.
fn card_input(mech: Mech) -> Vec<u8> {
    let digest = sha2::Sha256::digest(p11::MESSAGE);
    match mech {
        Mech::Ecdsa => digest.to_vec(),
        Mech::Rsa => pkcs1_sign_block(256, &HashAlg::Sha256.digest_info(&digest))
            .expect("a SHA-256 DigestInfo fits a 2048-bit block"),
    }
}

/// The raw SELECT, VERIFY and GENERAL AUTHENTICATE APDUs the `apdu` crate
/// sends for one signature (recorded on a scratch copy of the card).
fn signature_apdus(state: &Persistent, mech: Mech) -> Result<Vec<Vec<u8>>, String> {
    let mut applet = Applet::new(state.clone());
    let mut rec = Recorder {
        applet: &mut applet,
        sent: Vec::new(),
    };
    let mut s = apdu::Session::new(&mut rec, true);
    s.select().map_err(e2s("SELECT"))?;
    let pin = Pin::new(PIN.as_bytes()).map_err(e2s("PIN"))?;
    s.verify_pin(&pin).map_err(e2s("VERIFY"))?;
    let (slot, alg) = slot_of(mech);
    s.sign_raw(slot, alg, &card_input(mech))
        .map_err(e2s("GENERAL AUTHENTICATE"))?;
    if rec.sent.len() != 3 {
        return Err(format!(
            "expected 3 APDUs, the apdu crate sent {}",
            rec.sent.len()
        ));
    }
    Ok(rec.sent)
}

/// One level, set up and ready to sign.
pub enum Prepared {
    Applet {
        applet: Box<Applet>,
        ga: Vec<u8>,
    },
    Transport {
        transport: ukey_sim::SimTransport,
        ga: Vec<u8>,
    },
    Module {
        m: Arc<Module>,
        h: CK_SESSION_HANDLE,
        key: CK_OBJECT_HANDLE,
        mech: Mech,
    },
}

impl Prepared {
    /// `module`: the loaded module, initialised with UKEY_SIM=`state_path`.
    pub fn new(
        level: Level,
        state_path: &Path,
        mech: Mech,
        module: Option<&Arc<Module>>,
    ) -> Result<Self, String> {
        let state = Persistent::load(state_path).map_err(e2s("state"))?;
        let apdus = signature_apdus(&state, mech)?;
        match level {
            Level::Applet => {
                let mut applet = Applet::new(state);
                for a in &apdus[..2] {
                    applet.process(a);
                }
                Ok(Prepared::Applet {
                    applet: Box::new(applet),
                    ga: apdus[2].clone(),
                })
            }
            Level::Transport => {
                let reader = ukey_sim::SimReader::open(state_path).map_err(e2s("SimReader"))?;
                let mut transport = reader.connect().map_err(e2s("connect"))?;
                transport
                    .exclusive(&mut |link| {
                        for a in &apdus[..2] {
                            link.exchange(a)?;
                        }
                        Ok(())
                    })
                    .map_err(e2s("transport"))?;
                Ok(Prepared::Transport {
                    transport,
                    ga: apdus[2].clone(),
                })
            }
            Level::Module => {
                let m = module.ok_or("the module level needs the module")?.clone();
                let slot = *m
                    .slots(true)
                    .map_err(e2s("C_GetSlotList"))?
                    .first()
                    .ok_or("no token")?;
                let h = m.open(slot, false).map_err(e2s("C_OpenSession"))?;
                m.login(h, CKU_USER, PIN).map_err(e2s("C_Login"))?;
                let key = p11::private_key(&m, h, key_id(mech))?;
                Ok(Prepared::Module { m, h, key, mech })
            }
        }
    }

    /// `n` signatures.
    pub fn run(&mut self, n: u64) -> Result<(), String> {
        match self {
            Prepared::Applet { applet, ga } => {
                for _ in 0..n {
                    let r = ukey_sim::metered(|| applet.process(ga));
                    if r.ends_with(&[0x90, 0x00]) {
                        continue;
                    }
                    return Err(format!("applet answered {}", hex::encode_upper(&r)));
                }
            }
            Prepared::Transport { transport, ga } => {
                for _ in 0..n {
                    let mut ok = false;
                    transport
                        .exclusive(&mut |link| {
                            ok = link.exchange(ga)?.ends_with(&[0x90, 0x00]);
                            Ok(())
                        })
                        .map_err(e2s("transport"))?;
                    if !ok {
                        return Err("the card refused the signature".into());
                    }
                }
            }
            Prepared::Module { m, h, key, mech } => {
                let mut sig = [0u8; 512];
                let input = mech.input();
                for _ in 0..n {
                    p11::sign_once(m, *h, *key, *mech, &input, &mut sig).map_err(e2s("sign"))?;
                }
            }
        }
        Ok(())
    }
}

/// Point the module at one simulated token and nothing else. Call before
/// any thread is started (it changes the environment).
pub fn use_sim_tokens(paths: &[&Path]) -> Result<(), String> {
    let joined = std::env::join_paths(paths).map_err(|e| e.to_string())?;
    std::env::set_var("UKEY_SIM", joined);
    std::env::set_var("UKEY_NO_PCSC", "1");
    Ok(())
}

/// CPU time of the calling thread, µs: unlike wall-clock time it does not
/// count the time other processes of a shared machine hold the core.
pub fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// One level's samples, one per round, µs per signature.
pub struct LevelSamples {
    pub level: Level,
    /// Wall-clock time of the signatures.
    pub wall: Vec<f64>,
    /// CPU time of the signing thread.
    pub cpu: Vec<f64>,
    /// Time inside `Applet::process` (the card), same clock as `wall`.
    pub card: Vec<f64>,
}

impl LevelSamples {
    /// Everything but the card: what the layers above the applet add.
    pub fn outside(&self) -> Vec<f64> {
        self.wall
            .iter()
            .zip(&self.card)
            .map(|(w, c)| w - c)
            .collect()
    }
}

/// µs per signature at each level, in `rounds` rounds of `iters` signatures
/// per level. The levels take turns within a round (in a rotating order),
/// and the card's own time is measured inside `Applet::process` for exactly
/// the signatures of the round: what is left is the layers' time, free of
/// the card's variation (RSA blinding makes each signature's cost differ).
pub fn levels(
    module: &Arc<Module>,
    state: &Path,
    mech: Mech,
    iters: u64,
    rounds: usize,
) -> Result<Vec<LevelSamples>, String> {
    let mut prepared = Vec::new();
    for l in Level::ALL {
        let mut p = Prepared::new(l, state, mech, Some(module))?;
        p.run(iters.max(2))?;
        prepared.push((
            p,
            LevelSamples {
                level: l,
                wall: Vec::new(),
                cpu: Vec::new(),
                card: Vec::new(),
            },
        ));
    }
    let n = prepared.len();
    let per = |x: f64| x / iters as f64;
    for round in 0..rounds {
        for k in 0..n {
            let (p, s) = &mut prepared[(round + k) % n];
            let card0 = ukey_sim::card_time();
            let (t, c) = (Instant::now(), thread_cpu_us());
            p.run(iters)?;
            let (wall, cpu) = (t.elapsed(), thread_cpu_us() - c);
            let card = ukey_sim::card_time() - card0;
            s.wall.push(per(wall.as_secs_f64() * 1e6));
            s.cpu.push(per(cpu));
            s.card.push(per(card.as_secs_f64() * 1e6));
        }
    }
    Ok(prepared.into_iter().map(|(_, s)| s).collect())
}

/// Median over rounds of `a − b` (samples of the same rounds), and the
/// half-width of its ~95% interval (McGill's notch: 1.58 IQR / √n).
pub fn paired_median(a: &[f64], b: &[f64]) -> (f64, f64) {
    let mut d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    d.sort_by(f64::total_cmp);
    let q = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize];
    let notch = if d.len() > 1 {
        1.58 * (q(0.75) - q(0.25)) / (d.len() as f64).sqrt()
    } else {
        f64::NAN
    };
    (crate::record::median(&d), notch)
}

/// Instructions of one callgrind run: in all, and inside `Applet::process`
/// (the card), read from the inclusive cost of every call to it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counted {
    pub total: u64,
    pub card: u64,
}

/// Run `ukey-bench level-loop` with `iters` signatures at `level` under
/// callgrind. Setup is cancelled out by the caller, who runs two counts.
pub fn callgrind(
    level: Level,
    mech: Mech,
    iters: u64,
    state: &Path,
    scratch: &Path,
) -> Result<Counted, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = scratch.join(format!(
        "callgrind.{}.{}.{iters}.out",
        level.name(),
        mech.short()
    ));
    let status = std::process::Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("-q")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&exe)
        .arg("level-loop")
        .arg("--level")
        .arg(level.name())
        .arg("--mech")
        .arg(mech.short())
        .arg("--iters")
        .arg(iters.to_string())
        .arg("--state")
        .arg(state)
        .status()
        .map_err(|e| format!("valgrind: {e}"))?;
    if !status.success() {
        return Err(format!("valgrind level-loop {}: {status}", level.name()));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let _ = std::fs::remove_file(&out);
    split_counts(&text).ok_or_else(|| format!("{}: no totals line", out.display()))
}

/// Total, and the inclusive cost of the calls to `Applet::process`, from a
/// callgrind output file (names may be compressed as `(id) name` / `(id)`).
fn split_counts(text: &str) -> Option<Counted> {
    const CARD: &str = "ukey_sim::applet::Applet::process";
    let mut names = std::collections::HashMap::new();
    let mut callee_is_card = false;
    let mut cost_line_next = false;
    let mut c = Counted::default();
    for line in text.lines() {
        if cost_line_next {
            cost_line_next = false;
            if callee_is_card {
                c.card += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            continue;
        }
        if let Some(v) = line
            .strip_prefix("totals:")
            .or_else(|| line.strip_prefix("summary:"))
        {
            c.total = v.split_whitespace().next()?.parse().ok()?;
        } else if let Some(rest) = line
            .strip_prefix("cfn=")
            .or_else(|| line.strip_prefix("fn="))
        {
            let name = match rest.strip_prefix('(').and_then(|r| r.split_once(')')) {
                Some((id, "")) => names.get(id).cloned().unwrap_or_default(),
                Some((id, name)) => {
                    let name = name.trim().to_string();
                    names.insert(id.to_string(), name.clone());
                    name
                }
                None => rest.trim().to_string(),
            };
            if line.starts_with("cfn=") {
                callee_is_card = name == CARD;
            }
        } else if line.starts_with("calls=") {
            cost_line_next = true;
        }
    }
    (c.total > 0).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrind_totals_and_card_calls_are_read() {
        let out = "events: Ir\n\
            fn=(1) main\n\
            0 10\n\
            cfn=(2) ukey_sim::applet::Applet::process\n\
            calls=1 0\n\
            0 700\n\
            cfn=(3) other\n\
            calls=1 0\n\
            0 50\n\
            fn=(4) helper\n\
            cfn=(2)\n\
            calls=2 0\n\
            0 300\n\
            totals: 1200\n";
        let c = split_counts(out).unwrap();
        assert_eq!((c.total, c.card), (1200, 1000));
    }

    #[test]
    fn paired_median_pairs_rounds() {
        let a = [10.0, 20.0, 30.0, 40.0, 50.0];
        let b = [9.0, 18.0, 27.0, 36.0, 45.0];
        let (m, ci) = paired_median(&a, &b);
        assert_eq!(m, 3.0);
        assert!(ci > 0.0);
    }
}
