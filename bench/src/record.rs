//! What the measuring commands write (one JSON object per line, appended
//! to the results file) and the report reads.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// APDUs of one scenario step on a card behind pcscd.
    Apdu {
        card: String,
        module: String,
        step: String,
        /// How many times the step ran (the counts are totals).
        reps: u64,
        apdus: u64,
        bytes: u64,
        /// pcscd's own count, when its log was there.
        pcscd_apdus: Option<u64>,
        ins: Vec<u8>,
    },
    /// Signatures per second.
    Throughput {
        place: String,
        module: String,
        mech: String,
        tokens: usize,
        threads: usize,
        ops: u64,
        secs: f64,
        /// CPU µs of the client and, over pcscd, of pcscd and the card.
        #[serde(default)]
        cpu_us: f64,
        /// The machine's 1-minute load average when the run began.
        #[serde(default)]
        load: f64,
    },
    /// µs per signature at one level of the stack (in-process): median of
    /// the rounds, wall-clock and CPU time of the signing thread.
    Level {
        mech: String,
        level: String,
        us_per_op: f64,
        cpu_us_per_op: f64,
        /// Of `us_per_op`, inside `Applet::process`.
        #[serde(default)]
        card_us_per_op: f64,
        ops: u64,
    },
    /// What level `a` adds over level `b` outside the card, µs per
    /// signature: the median of the per-round differences.
    LevelDiff {
        mech: String,
        a: String,
        b: String,
        us: f64,
        /// Half-width of the ~95% interval of `us`.
        ci_us: f64,
        rounds: usize,
    },
    /// Instructions per signature at one level of the stack (callgrind):
    /// in all, and inside `Applet::process` (the card).
    Instructions {
        mech: String,
        level: String,
        per_op: f64,
        card: f64,
    },
    /// Latency samples (µs) of a whole client run, and of its phases.
    Latency {
        place: String,
        card: String,
        module: String,
        what: String,
        samples_us: Vec<f64>,
        #[serde(default)]
        phases: Vec<(String, Vec<f64>)>,
    },
}

pub fn append(path: &Path, r: &Record) -> Result<(), String> {
    let line = serde_json::to_string(r).map_err(|e| e.to_string())?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{line}").map_err(|e| format!("{}: {e}", path.display()))
}

pub fn load(path: &Path) -> Result<Vec<Record>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}: {l}", path.display())))
        .collect()
}

/// Median of samples (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The 1-minute load average (NaN where /proc has none).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
