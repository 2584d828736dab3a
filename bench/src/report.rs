//! BENCHMARKS.md from the results file: machine facts, every table with its
//! ratios, and where each target of issue 7 stands. Nothing here is typed
//! by hand but the targets themselves (the issue's numbers) and the
//! explanations, which quote the measured numbers.

use crate::apdulog::describe;
use crate::record::{median, Record};
use crate::tokens::profile_card;
use std::fmt::Write;
use ukey_sim::profile::Profile;

/// The targets of issue 7.
const FIRST_SIGN_MAX_APDUS: f64 = 8.0;
const FIRST_SIGN_MAX_RATIO: f64 = 0.5;
const OVERHEAD_MAX_US: f64 = 5.0;
const PCSCD_THROUGHPUT_MIN_RATIO: f64 = 1.2;
const COLD_MAX_RATIO: f64 = 0.5;

const CARDS: [(&str, &str); 3] = [
    ("certs1", "1 certificate"),
    ("demo4", "4 certificates"),
    ("certs24", "24 certificates"),
];

const MODULES: [(&str, &str); 2] = [("ukey", "ukey"), ("opensc", "OpenSC")];

struct Apdu<'a> {
    reps: u64,
    apdus: u64,
    bytes: u64,
    pcscd: Option<u64>,
    ins: &'a [u8],
}

impl Apdu<'_> {
    fn per(&self) -> f64 {
        self.apdus as f64 / self.reps as f64
    }
    fn bytes_per(&self) -> f64 {
        self.bytes as f64 / self.reps as f64
    }
}

/// Latency samples of one configuration (all runs pooled).
struct Lat {
    samples: Vec<f64>,
    phases: Vec<(String, Vec<f64>)>,
}

impl Lat {
    fn median(&self) -> f64 {
        median(&self.samples)
    }
    fn min(&self) -> f64 {
        self.samples.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

struct R<'a>(&'a [Record]);

impl<'a> R<'a> {
    fn apdu(&self, card: &str, module: &str, step: &str) -> Option<Apdu<'a>> {
        self.0.iter().find_map(|r| match r {
            Record::Apdu {
                card: c,
                module: m,
                step: s,
                reps,
                apdus,
                bytes,
                pcscd_apdus,
                ins,
            } if c == card && m == module && s == step => Some(Apdu {
                reps: *reps,
                apdus: *apdus,
                bytes: *bytes,
                pcscd: *pcscd_apdus,
                ins,
            }),
            _ => None,
        })
    }

    /// Signatures per second: the median of the rounds of a configuration.
    fn throughput(
        &self,
        place: &str,
        module: &str,
        mech: &str,
        tokens: usize,
        threads: usize,
    ) -> Option<f64> {
        let rates: Vec<f64> = self
            .0
            .iter()
            .filter_map(|r| match r {
                Record::Throughput {
                    place: p,
                    module: m,
                    mech: me,
                    tokens: k,
                    threads: t,
                    ops,
                    secs,
                    ..
                } if p == place && m == module && me == mech && *k == tokens && *t == threads => {
                    Some(*ops as f64 / secs)
                }
                _ => None,
            })
            .collect();
        (!rates.is_empty()).then(|| median(&rates))
    }

    /// CPU µs per signature (the client, and over pcscd pcscd and the
    /// card too): the median of the rounds.
    fn cpu_per_op(&self, place: &str, module: &str, mech: &str) -> Option<f64> {
        let v: Vec<f64> = self
            .0
            .iter()
            .filter_map(|r| match r {
                Record::Throughput {
                    place: p,
                    module: m,
                    mech: me,
                    tokens: 1,
                    threads: 1,
                    ops,
                    cpu_us,
                    ..
                } if p == place && m == module && me == mech && *ops > 0 && *cpu_us > 0.0 => {
                    Some(cpu_us / *ops as f64)
                }
                _ => None,
            })
            .collect();
        (!v.is_empty()).then(|| median(&v))
    }

    fn rounds(&self, place: &str, module: &str, mech: &str) -> usize {
        self.0
            .iter()
            .filter(|r| {
                matches!(r, Record::Throughput { place: p, module: m, mech: me, threads: 1, tokens: 1, .. }
                    if p == place && m == module && me == mech)
            })
            .count()
    }

    /// Rates of every round of a 1-thread, 1-token configuration, in order.
    fn round_rates(&self, place: &str, module: &str, mech: &str) -> Vec<f64> {
        self.0
            .iter()
            .filter_map(|r| match r {
                Record::Throughput {
                    place: p,
                    module: m,
                    mech: me,
                    threads: 1,
                    tokens: 1,
                    ops,
                    secs,
                    ..
                } if p == place && m == module && me == mech => Some(*ops as f64 / secs),
                _ => None,
            })
            .collect()
    }

    /// Lowest and highest ratio of `a` to `b` over the rounds in which
    /// they took turns.
    fn round_ratio_range(&self, place: &str, a: &str, b: &str, mech: &str) -> Option<(f64, f64)> {
        let (x, y) = (
            self.round_rates(place, a, mech),
            self.round_rates(place, b, mech),
        );
        let q: Vec<f64> = x.iter().zip(&y).map(|(x, y)| x / y).collect();
        let lo = q.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = q.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (!q.is_empty()).then_some((lo, hi))
    }

    /// Lowest and highest load average at the start of the runs at `place`.
    fn load_range(&self, place: &str) -> Option<(f64, f64)> {
        let v: Vec<f64> = self
            .0
            .iter()
            .filter_map(|r| match r {
                Record::Throughput { place: p, load, .. }
                    if p == place && load.is_finite() && *load > 0.0 =>
                {
                    Some(*load)
                }
                _ => None,
            })
            .collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (!v.is_empty()).then_some((lo, hi))
    }

    fn sorted_set(&self, f: impl Fn(&Record) -> Option<usize>) -> Vec<usize> {
        let mut v: Vec<usize> = self.0.iter().filter_map(f).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn threads(&self, place: &str, mech: &str) -> Vec<usize> {
        self.sorted_set(|r| match r {
            Record::Throughput {
                place: p,
                mech: m,
                threads,
                ..
            } if p == place && m == mech => Some(*threads),
            _ => None,
        })
    }

    fn tokens(&self, place: &str, mech: &str) -> Vec<usize> {
        self.sorted_set(|r| match r {
            Record::Throughput {
                place: p,
                mech: m,
                tokens,
                ..
            } if p == place && m == mech => Some(*tokens),
            _ => None,
        })
    }

    /// (wall-clock, CPU, card) µs per signature at a level.
    fn level(&self, mech: &str, level: &str) -> Option<(f64, f64, f64)> {
        self.0.iter().find_map(|r| match r {
            Record::Level {
                mech: m,
                level: l,
                us_per_op,
                cpu_us_per_op,
                card_us_per_op,
                ..
            } if m == mech && l == level => Some((*us_per_op, *cpu_us_per_op, *card_us_per_op)),
            _ => None,
        })
    }

    /// (µs, ±µs) level `a` adds over level `b` outside the card.
    fn level_diff(&self, mech: &str, a: &str, b: &str) -> Option<(f64, f64)> {
        self.0.iter().find_map(|r| match r {
            Record::LevelDiff {
                mech: m,
                a: x,
                b: y,
                us,
                ci_us,
                ..
            } if m == mech && x == a && y == b => Some((*us, *ci_us)),
            _ => None,
        })
    }

    fn level_rounds(&self, mech: &str) -> Option<usize> {
        self.0.iter().find_map(|r| match r {
            Record::LevelDiff {
                mech: m, rounds, ..
            } if m == mech => Some(*rounds),
            _ => None,
        })
    }

    /// (all, outside the card) instructions per signature at a level.
    fn instructions(&self, mech: &str, level: &str) -> Option<(f64, f64)> {
        self.0.iter().find_map(|r| match r {
            Record::Instructions {
                mech: m,
                level: l,
                per_op,
                card,
            } if m == mech && l == level => Some((*per_op, per_op - card)),
            _ => None,
        })
    }

    fn latency(&self, place: &str, card: &str, module: &str, what: &str) -> Option<Lat> {
        let mut lat = Lat {
            samples: Vec::new(),
            phases: Vec::new(),
        };
        for r in self.0 {
            if let Record::Latency {
                place: p,
                card: c,
                module: m,
                what: w,
                samples_us,
                phases,
            } = r
            {
                if p == place && c == card && m == module && w == what {
                    lat.samples.extend_from_slice(samples_us);
                    for (name, v) in phases {
                        match lat.phases.iter_mut().find(|(n, _)| n == name) {
                            Some((_, all)) => all.extend_from_slice(v),
                            None => lat.phases.push((name.clone(), v.clone())),
                        }
                    }
                }
            }
        }
        (!lat.samples.is_empty()).then_some(lat)
    }

    fn mechs(&self) -> Vec<&'static str> {
        ["ecdsa", "rsa"]
            .into_iter()
            .filter(|m| {
                self.0.iter().any(|r| {
                    matches!(r, Record::Level { mech, .. } | Record::Throughput { mech, .. } if mech == m)
                })
            })
            .collect()
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "—".into()
    }
}

fn ratio_opt(a: Option<f64>, b: Option<f64>) -> String {
    a.zip(b).map_or("—".into(), |(a, b)| ratio(a, b))
}

fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "—".into(),
    }
}

fn mech_name(m: &str) -> &'static str {
    match m {
        "rsa" => "RSA-2048",
        "ecdsa" => "P-256",
        _ => "?",
    }
}

fn sh(cmd: &str, args: &[&str]) -> Option<String> {
    let o = std::process::Command::new(cmd).args(args).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn machine(out: &mut String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    let nproc = sh("nproc", &[]).unwrap_or_else(|| "?".into());
    let pkg =
        |p: &str| sh("dpkg-query", &["-W", "-f", "${Version}", p]).unwrap_or_else(|| "?".into());
    let _ = writeln!(out, "## Machine\n");
    let _ = writeln!(
        out,
        "Timings were taken on a **shared 2-core machine**: other engineers' builds and fuzzers ran\n\
         on it at the same time, so wall-clock numbers move by several per cent (sometimes tens)\n\
         between runs. APDU counts and callgrind instruction counts do not move; CPU times\n\
         (`CLOCK_THREAD_CPUTIME_ID`) are used where the question is how much work a layer adds.\n"
    );
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| `nproc` | {nproc} |");
    let _ = writeln!(
        out,
        "| CPU (/proc/cpuinfo) | {}{} |",
        field("model name").unwrap_or_else(|| "unknown".into()),
        field("cpu MHz")
            .map(|m| format!(", {m} MHz"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "| memory | {mem} |");
    if let Some(k) = sh("uname", &["-sr"]) {
        let _ = writeln!(out, "| kernel | {k} |");
    }
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        let _ = writeln!(
            out,
            "| load average when the report was written | {} |",
            l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        );
    }
    if let Some(r) = sh("rustc", &["-V"]) {
        let _ = writeln!(out, "| rustc | {r} |");
    }
    let _ = writeln!(
        out,
        "| OpenSC, SoftHSM2, pcscd, vpcd (Debian packages) | {}, {}, {}, {} |\n",
        pkg("opensc"),
        pkg("softhsm2"),
        pkg("pcscd"),
        pkg("vsmartcard-vpcd")
    );
}

fn status(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

/// Everything the targets are judged on.
struct Standing {
    first_ukey: Option<f64>,
    first_opensc: Option<f64>,
    per_sign: Vec<(&'static str, Option<f64>)>,
    per_poll: Option<f64>,
    overhead: Vec<(&'static str, Option<f64>)>,
    /// The module's own part: over the simulator's transport.
    own_overhead: Vec<(&'static str, Option<f64>)>,
    pcscd_tp: Vec<(&'static str, Option<f64>, Option<f64>)>,
    cold: (Option<f64>, Option<f64>),
    open: (Option<f64>, Option<f64>),
    first_by_card: (Option<f64>, Option<f64>),
}

impl Standing {
    fn new(r: &R) -> Self {
        let apdus = |card: &str, m: &str, step: &str| r.apdu(card, m, step).map(|a| a.per());
        Self {
            first_ukey: apdus("demo4", "ukey", "first-sign"),
            first_opensc: apdus("demo4", "opensc", "first-sign"),
            per_sign: vec![
                ("RSA-2048", apdus("demo4", "ukey", "sign-rsa-many")),
                ("P-256", apdus("demo4", "ukey", "sign-ecdsa-many")),
            ],
            per_poll: apdus("demo4", "ukey", "poll"),
            overhead: ["ecdsa", "rsa"]
                .into_iter()
                .map(|m| {
                    (
                        mech_name(m),
                        r.level_diff(m, "module", "applet").map(|d| d.0),
                    )
                })
                .collect(),
            own_overhead: ["ecdsa", "rsa"]
                .into_iter()
                .map(|m| {
                    (
                        mech_name(m),
                        r.level_diff(m, "module", "transport").map(|d| d.0),
                    )
                })
                .collect(),
            pcscd_tp: ["ecdsa", "rsa"]
                .into_iter()
                .map(|m| {
                    (
                        mech_name(m),
                        r.throughput("pcscd", "ukey", m, 1, 1),
                        r.throughput("pcscd", "opensc", m, 1, 1),
                    )
                })
                .collect(),
            cold: (
                r.latency("pcscd", "demo4", "ukey", "first-sign")
                    .map(|l| l.median()),
                r.latency("pcscd", "demo4", "opensc", "first-sign")
                    .map(|l| l.median()),
            ),
            open: (
                apdus("certs1", "ukey", "open"),
                apdus("certs24", "ukey", "open"),
            ),
            first_by_card: (
                apdus("certs1", "ukey", "first-sign"),
                apdus("certs24", "ukey", "first-sign"),
            ),
        }
    }
}

pub fn render(recs: &[Record], command: &str) -> String {
    let r = R(recs);
    let st = Standing::new(&r);
    let mut o = String::new();
    let _ = writeln!(o, "# ukey benchmarks\n");
    let _ = writeln!(
        o,
        "Written by `{command}` on {}. Do not edit: run the command again.\n",
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "## How to run\n\n\
         ```\nscripts/bench            # everything, rewrites BENCHMARKS.md (~8 minutes)\n\
         scripts/bench --quick    # every benchmark once, tiny (CI); report to a temp file\n```\n\n\
         As root, like the tests: private pcscd instances run in their own namespaces. The script\n\
         builds the release binaries, makes the bench cards, sets up SoftHSM2 in a temporary\n\
         `SOFTHSM2_CONF`, runs everything and writes this file. Benchmarks print numbers; they\n\
         never fail on one.\n\n\
         One driver, `ukey-bench` (`bench/`), makes the same PKCS#11 calls through each module's\n\
         function list, so ukey, OpenSC and SoftHSM2 see identical call sequences. APDUs are\n\
         counted by the card (`ukey-sim serve --log` records every exchange), and pcscd's own `-a`\n\
         log is read as a second, independent count.\n\n\
         The cards (`ukey-bench tokens`, the simulator's demo provisioning): **demo4** — 9A RSA-2048,\n\
         9C P-256 (PIN always), 9D RSA-2048, 9E P-256, each with its certificate, CHUID, CCC and a\n\
         PIN-protected management key; **certs1** — the same card with only 9A; **certs24** — demo4\n\
         plus P-256 keys and certificates in the 20 retired slots and a Key History object covering\n\
         them. RSA signatures use 9A (CKA_ID 01, PIN once) with CKM_SHA256_RSA_PKCS; ECDSA uses 9E\n\
         (CKA_ID 04) with CKM_ECDSA on a SHA-256 digest (Debian's SoftHSM2 2.6 has no\n\
         CKM_ECDSA_SHA256); SoftHSM2 gets an RSA-2048 and a P-256 key with the same CKA_IDs.\n"
    );
    machine(&mut o);
    targets(&st, &mut o);
    apdu_table(&r, &mut o);
    objects_table(&r, &mut o);
    pcscd_tables(&r, &mut o);
    inprocess_tables(&r, &mut o);
    overhead_table(&r, &mut o);
    scaling_table(&r, &mut o);
    profiles_table(&r, &mut o);
    limits(&r, &st, &mut o);
    o
}

fn targets(st: &Standing, o: &mut String) {
    let _ = writeln!(o, "## Targets (issue 7)\n");
    let _ = writeln!(o, "| target | measured | status |\n| --- | --- | --- |");
    let (fu, fo) = (st.first_ukey, st.first_opensc);
    let _ = writeln!(
        o,
        "| first signature on the 4-certificate card ≤ {FIRST_SIGN_MAX_APDUS} APDUs | {} APDUs | {} |",
        num(fu, 0),
        status(fu.map(|v| v <= FIRST_SIGN_MAX_APDUS))
    );
    let _ = writeln!(
        o,
        "| … and ≤ {FIRST_SIGN_MAX_RATIO}× OpenSC's count | {} vs {} APDUs: {}× | {} |",
        num(fu, 0),
        num(fo, 0),
        ratio_opt(fu, fo),
        status(fu.zip(fo).map(|(a, b)| a <= FIRST_SIGN_MAX_RATIO * b))
    );
    for (name, v) in &st.per_sign {
        let _ = writeln!(
            o,
            "| repeated signing: exactly 1 APDU per signature after login, {name} | {} APDUs per signature (100 in one session) | {} |",
            num(*v, 2),
            status(v.map(|v| v == 1.0))
        );
    }
    let _ = writeln!(
        o,
        "| NSS-style polling: 0 APDUs per poll while the card stays in | {} APDUs per poll | {} |",
        num(st.per_poll, 2),
        status(st.per_poll.map(|v| v == 0.0))
    );
    for (name, v) in &st.overhead {
        let _ = writeln!(
            o,
            "| module overhead ≤ {OVERHEAD_MAX_US} µs per sign over the direct applet call, {name} | {} µs (section 5) | {} |",
            num(*v, 1),
            status(v.map(|v| v <= OVERHEAD_MAX_US))
        );
    }
    for (name, v) in &st.own_overhead {
        let _ = writeln!(
            o,
            "| … of which the module's own part (over the simulator's transport) ≤ {OVERHEAD_MAX_US} µs, {name} | {} µs (section 5) | {} |",
            num(*v, 1),
            status(v.map(|v| v <= OVERHEAD_MAX_US))
        );
    }
    for (name, u, s) in &st.pcscd_tp {
        let _ = writeln!(
            o,
            "| ≥ {PCSCD_THROUGHPUT_MIN_RATIO}× OpenSC's sign throughput over pcscd, same card, {name} | {} vs {} sign/s: {}× | {} |",
            num(*u, 0),
            num(*s, 0),
            ratio_opt(*u, *s),
            status(u.zip(*s).map(|(a, b)| a >= PCSCD_THROUGHPUT_MIN_RATIO * b))
        );
    }
    let (cu, co) = st.cold;
    let _ = writeln!(
        o,
        "| cold first signature ≤ {COLD_MAX_RATIO}× OpenSC's time (over pcscd) | {} vs {} ms: {}× | {} |",
        num(cu.map(|v| v / 1000.0), 1),
        num(co.map(|v| v / 1000.0), 1),
        ratio_opt(cu, co),
        status(cu.zip(co).map(|(a, b)| a <= COLD_MAX_RATIO * b))
    );
    let ((o1, o24), (f1, f24)) = (st.open, st.first_by_card);
    let _ = writeln!(
        o,
        "| opening a session costs the same with 1 or 24 certificates | C_OpenSession {} vs {} APDUs; whole first signature {} vs {} APDUs | {} |\n",
        num(o1, 0),
        num(o24, 0),
        num(f1, 0),
        num(f24, 0),
        status(o1.zip(o24).zip(f1.zip(f24)).map(|((a, b), (c, d))| a == b && c == d))
    );
}

const STEPS: [(&str, &str); 13] = [
    ("init", "C_Initialize + C_GetSlotList + C_GetTokenInfo"),
    ("open", "C_OpenSession"),
    ("objects", "find all objects + CKA_CLASS/ID/LABEL of each"),
    ("login", "C_Login (user)"),
    ("find-keys", "find the private keys by CKA_ID after login"),
    ("sign-ecdsa", "one ECDSA sign (9E, P-256)"),
    ("sign-rsa", "one RSA sign (9A, RSA-2048)"),
    (
        "sign-ecdsa-always",
        "one ECDSA sign with the PIN-always key 9C (C_SignInit, C_Login(CONTEXT_SPECIFIC), C_Sign)",
    ),
    (
        "sign-rsa-many",
        "100 RSA signs in one session, *per signature*",
    ),
    (
        "sign-ecdsa-many",
        "100 ECDSA signs in one session, *per signature*",
    ),
    (
        "poll",
        "NSS-style poll, C_GetSlotList + C_GetTokenInfo + C_GetSessionInfo, *per poll*",
    ),
    ("teardown", "C_CloseSession + C_Finalize"),
    (
        "first-sign",
        "**the whole first signature**, fresh process: C_Initialize … C_Sign",
    ),
];

fn apdu_table(r: &R, o: &mut String) {
    let _ = writeln!(
        o,
        "## 1. APDUs per scenario: demo4 (4 certificates) over pcscd + vpcd\n\n\
         Same card, same calls, counted by the card. The scenarios run in this order in one process\n\
         per module; the first signature runs in a fresh process (C_Initialize, C_GetSlotList,\n\
         C_GetTokenInfo, C_OpenSession, C_Login, find the private key by CKA_ID, C_SignInit, C_Sign;\n\
         its C_CloseSession + C_Finalize are not counted in it). Bytes are command plus response.\n"
    );
    let _ = writeln!(
        o,
        "| scenario | ukey APDUs | OpenSC APDUs | ukey/OpenSC | ukey bytes | OpenSC bytes | ukey/OpenSC |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut mismatches = Vec::new();
    let mut seqs = Vec::new();
    for (step, label) in STEPS {
        let (u, s) = (
            r.apdu("demo4", "ukey", step),
            r.apdu("demo4", "opensc", step),
        );
        if u.is_none() && s.is_none() {
            continue;
        }
        let digits = if u.as_ref().is_some_and(|a| a.reps > 1) {
            2
        } else {
            0
        };
        let (ua, sa) = (u.as_ref().map(Apdu::per), s.as_ref().map(Apdu::per));
        let (ub, sb) = (
            u.as_ref().map(Apdu::bytes_per),
            s.as_ref().map(Apdu::bytes_per),
        );
        let _ = writeln!(
            o,
            "| {label} | {} | {} | {} | {} | {} | {} |",
            num(ua, digits),
            num(sa, digits),
            ratio_opt(ua, sa),
            num(ub, 0),
            num(sb, 0),
            ratio_opt(ub, sb),
        );
        for (m, a) in [("ukey", &u), ("OpenSC", &s)] {
            if let Some(a) = a {
                if a.pcscd.is_some_and(|p| p != a.apdus) {
                    mismatches.push(format!(
                        "{step} ({m}): card {} vs pcscd {:?}",
                        a.apdus, a.pcscd
                    ));
                }
            }
        }
        if let Some(u) = &u {
            if u.reps == 1 && !u.ins.is_empty() {
                seqs.push(format!("- {label}: {}", describe(u.ins)));
            }
        }
    }
    let _ = writeln!(o);
    if mismatches.is_empty() {
        let _ = writeln!(
            o,
            "pcscd's `-a` log counted exactly the APDUs the card logged, on every row.\n"
        );
    } else {
        let _ = writeln!(
            o,
            "pcscd's count differs from the card's on: {}.\n",
            mismatches.join("; ")
        );
    }
    let _ = writeln!(o, "What ukey sends:\n\n{}\n", seqs.join("\n"));
    if let Some(a) = r.apdu("demo4", "opensc", "first-sign") {
        let _ = writeln!(
            o,
            "What OpenSC sends for the first signature: {}.\n",
            describe(a.ins)
        );
    }
}

fn objects_table(r: &R, o: &mut String) {
    let _ = writeln!(
        o,
        "## 2. Cost per object on the card: 1, 4 and 24 certificates\n\n\
         APDUs (counted by the card) for each step, and cold times over pcscd: a fresh process\n\
         listing every object (C_Initialize … find all + CKA_CLASS/ID/LABEL) and one making the\n\
         first signature. Median of the runs.\n\n\
         | card | module | init + token info | C_OpenSession | find all + attributes | first signature | cold listing, ms | cold first signature, ms |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (card, desc) in CARDS {
        for (m, name) in MODULES {
            let a = |step: &str| r.apdu(card, m, step).map(|a| a.per());
            if a("init").is_none() && a("first-sign").is_none() {
                continue;
            }
            let ms = |what: &str| {
                r.latency("pcscd", card, m, what)
                    .map(|l| l.median() / 1000.0)
            };
            let _ = writeln!(
                o,
                "| {desc} | {name} | {} | {} | {} | {} | {} | {} |",
                num(a("init"), 0),
                num(a("open"), 0),
                num(a("objects"), 0),
                num(a("first-sign"), 0),
                num(ms("list"), 1),
                num(ms("first-sign"), 1),
            );
        }
    }
    let _ = writeln!(o);
}

fn pcscd_tables(r: &R, o: &mut String) {
    let _ = writeln!(
        o,
        "## 3. Over pcscd + vpcd: ukey and OpenSC on the same card\n\n\
         pcscd runs without debug or APDU logging here. The card answers over vpcd's TCP socket, so a\n\
         round trip costs what pcscd and loopback cost (tenths of a millisecond), not what a USB\n\
         token costs (milliseconds), and the signature itself is the simulator's software crypto.\n\
         Throughput: 1 thread, 1 session, C_SignInit + C_Sign in a loop; the two modules take turns\n\
         in rounds and the median round is shown. CPU per signature adds up the client, pcscd and\n\
         the card process (`/proc`): unlike wall-clock time it does not depend on what else the\n\
         machine runs.\n\n\
         | mechanism | ukey sign/s | OpenSC sign/s | ukey/OpenSC | lowest–highest round | ukey CPU µs/sign | OpenSC CPU µs/sign | OpenSC/ukey | rounds |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for m in r.mechs() {
        let (u, s) = (
            r.throughput("pcscd", "ukey", m, 1, 1),
            r.throughput("pcscd", "opensc", m, 1, 1),
        );
        if u.is_none() && s.is_none() {
            continue;
        }
        let (uc, sc) = (
            r.cpu_per_op("pcscd", "ukey", m),
            r.cpu_per_op("pcscd", "opensc", m),
        );
        let range = r
            .round_ratio_range("pcscd", "ukey", "opensc", m)
            .map_or("—".into(), |(lo, hi)| format!("{lo:.2}–{hi:.2}"));
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {range} | {} | {} | {} | {} |",
            mech_name(m),
            num(u, 0),
            num(s, 0),
            ratio_opt(u, s),
            num(uc, 0),
            num(sc, 0),
            ratio_opt(sc, uc),
            r.rounds("pcscd", "ukey", m)
        );
    }
    let _ = writeln!(
        o,
        "\nCold first signature on demo4 (RSA-2048, 9A): a fresh process loads the module and runs\n\
         C_Initialize … C_Sign. *In the process* runs from before `dlopen` to the signature; *whole\n\
         process* is exec to exit (adds C_CloseSession, C_Finalize, process start and exit).\n\
         Median (minimum) in ms.\n\n\
         | what | ukey | OpenSC | ukey/OpenSC | runs |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for (what, label) in [
        ("first-sign", "in the process"),
        ("first-sign-process", "whole process"),
    ] {
        let (u, s) = (
            r.latency("pcscd", "demo4", "ukey", what),
            r.latency("pcscd", "demo4", "opensc", what),
        );
        let cell = |l: &Option<Lat>| {
            l.as_ref().map_or("—".into(), |l| {
                format!("{:.1} ({:.1})", l.median() / 1000.0, l.min() / 1000.0)
            })
        };
        let _ = writeln!(
            o,
            "| {label} | {} | {} | {} | {} |",
            cell(&u),
            cell(&s),
            ratio_opt(u.as_ref().map(Lat::median), s.as_ref().map(Lat::median)),
            u.as_ref().map_or(0, |l| l.samples.len())
        );
    }
    let (u, s) = (
        r.latency("pcscd", "demo4", "ukey", "first-sign"),
        r.latency("pcscd", "demo4", "opensc", "first-sign"),
    );
    if let (Some(u), Some(s)) = (u, s) {
        let _ = writeln!(
            o,
            "\nWhere the cold first signature's time goes (median per phase, ms):\n\n\
             | phase | ukey | OpenSC |\n| --- | ---: | ---: |"
        );
        for (name, v) in &u.phases {
            let other = s
                .phases
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| median(v));
            let _ = writeln!(
                o,
                "| {name} | {:.2} | {} |",
                median(v) / 1000.0,
                num(other.map(|x| x / 1000.0), 2)
            );
        }
    }
    let _ = writeln!(o);
}

fn inprocess_tables(r: &R, o: &mut String) {
    let _ = writeln!(
        o,
        "## 4. Signatures per second in-process: ukey next to SoftHSM2\n\n\
         ukey on an in-process simulated token (`UKEY_SIM`; the card's crypto is the simulator's\n\
         RustCrypto), SoftHSM2 on its own token (OpenSSL's crypto), same driver, same run, taking\n\
         turns in rounds (median round shown). *Applet alone* is the simulator's applet called\n\
         directly (section 5), for scale. A card — simulated or real — signs one thing at a time:\n\
         threads on one token queue behind it, as they would on a USB key (section 6 adds tokens).\n\
         Load average while these ran: {}.\n\n\
         | mechanism | threads | ukey sign/s | SoftHSM2 sign/s | ukey/SoftHSM2 | applet alone sign/s |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |",
        r.load_range("in-process")
            .map_or("unknown".into(), |(lo, hi)| format!("{lo:.1}–{hi:.1}"))
    );
    for m in r.mechs() {
        for t in r.threads("in-process", m) {
            let u = r.throughput("in-process", "ukey", m, 1, t);
            let s = r.throughput("in-process", "softhsm", m, 1, t);
            let applet = r.level(m, "applet").map(|l| 1e6 / l.0);
            let _ = writeln!(
                o,
                "| {} | {t} | {} | {} | {} | {} |",
                mech_name(m),
                num(u, 0),
                num(s, 0),
                ratio_opt(u, s),
                if t == 1 {
                    num(applet, 0)
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = writeln!(o);
}

fn overhead_table(r: &R, o: &mut String) {
    let _ = writeln!(
        o,
        "## 5. Module overhead per signature\n\n\
         One signature measured at three levels of the stack, 1 thread, on the same card; the\n\
         module's code is linked into the benchmark binary for this (the same crate the .so is built\n\
         from), so all three levels run one copy of the simulator's code:\n\n\
         - *applet*: `Applet::process` on the GENERAL AUTHENTICATE APDU, called directly — the card;\n\
         - *+ simulator transport*: the same APDU through `SimTransport::exclusive` →\n  \
           `SimCard::transmit`: the simulator's per-transaction bookkeeping (advisory lock, a look at\n  \
           its state and control files, the exchange log). For the module this is card time;\n\
         - *+ module*: C_SignInit + C_Sign through ukey's C function table on the same card.\n\n\
         The levels take turns, round after round. In every round the time spent inside\n\
         `Applet::process` is measured too (the simulator meters it) and taken out, so what is\n\
         compared is what each layer adds, not the card's signature, whose cost varies from one\n\
         signature to the next (RSA blinding) by far more than the layers cost. Each difference is\n\
         the median of the per-round differences, ± the half-width of its ~95% interval\n\
         (1.58 IQR/√n). Instructions are callgrind's, outside `Applet::process`, and exact;\n\
         SHA-256 under valgrind runs without the CPU's SHA extensions, so the RSA mechanism's\n\
         hashing counts more instructions there than it costs natively.\n\n\
         | mechanism | card µs | simulator transport µs | module µs | **module over the direct applet call, µs** | simulator transport instr. | module instr. | card instr. | rounds |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for m in r.mechs() {
        let Some((_, _, card)) = r.level(m, "applet") else {
            continue;
        };
        let diff = |a: &str, b: &str| r.level_diff(m, a, b);
        let outside = |l: &str| r.instructions(m, l).map(|v| v.1);
        let sub = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| x - y);
        let pm =
            |d: Option<(f64, f64)>| d.map_or("—".into(), |(v, ci)| format!("{v:.2} ± {ci:.2}"));
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | **{}** | {} | {} | {} | {} |",
            mech_name(m),
            num(Some(card), 1),
            pm(diff("transport", "applet")),
            pm(diff("module", "transport")),
            pm(diff("module", "applet")),
            num(sub(outside("transport"), outside("applet")), 0),
            num(sub(outside("module"), outside("transport")), 0),
            num(r.instructions(m, "applet").map(|v| v.0 - v.1), 0),
            r.level_rounds(m).unwrap_or(0),
        );
    }
    let _ = writeln!(
        o,
        "\nEach difference is a median of its own, so the two parts need not add up to the whole.\n"
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let _ = writeln!(
        o,
        "**Which part is the module's.** The column *module over the direct applet call* is what an\n\
         application sees over the card in this set-up, and most of it is the simulator's\n\
         transport, not the module: for a real card that transport is PC/SC, whose cost is\n\
         section 3. The module's own part is the column *module µs* and the module's\n\
         instructions. These numbers come from this machine ({cpu}). Another run, on an AMD EPYC\n\
         under KVM (issue 16), gave 5.2–5.7 µs (P-256) and 10.4 µs (RSA-2048) over the direct\n\
         applet call, of which the module's own part was 1.3 and 3.3 µs: there too the rest was\n\
         the transport's file lock and control-file checks, system calls whose cost depends on\n\
         the kernel and the virtual machine. Between the two machines the callgrind counts of the\n\
         simulator's transport moved by +8–20%. Callgrind counts instructions, not time, but\n\
         not every count is fixed: the RSA counts outside the card move between two runs on one\n\
         machine too (issue 16's before/after runs here: transport 1783 and 2301, module 13094\n\
         and 12518 instructions, the transport's code unchanged), while P-256's stay within\n\
         0.5% (2203/2191, 7500/7494). The likely cause is the allocator: the card's RSA\n\
         blinding leaves the heap in a different state each time, and the allocations before\n\
         and after it (the transport's buffers, the module's padding and answer) take longer or\n\
         shorter paths through malloc. Compare P-256 counts across builds; read RSA counts as\n\
         ±25%.\n"
    );
}

fn scaling_table(r: &R, o: &mut String) {
    for m in r.mechs() {
        let threads = r.threads("scaling", m);
        if threads.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "## 6. Scaling: in-process simulated tokens × threads, {} sign/s\n\n\
             Threads take the tokens round-robin, one session each (9E, no PIN, C_SignInit + C_Sign).\n\
             One token is one card: its threads take turns at it, so they add nothing but the cost of\n\
             handing it over. More tokens sign in parallel, as far as free cores allow: the machine\n\
             has {} cores, shared, and its 1-minute load average was {} while these ran.\n",
            mech_name(m),
            sh("nproc", &[]).unwrap_or_else(|| "?".into()),
            r.load_range("scaling")
                .map_or("unknown".into(), |(lo, hi)| format!("{lo:.1}–{hi:.1}"))
        );
        let mut head = "| tokens |".to_string();
        let mut rule = "| ---: |".to_string();
        for t in &threads {
            let _ = write!(head, " {t} thr. |");
            rule.push_str(" ---: |");
        }
        let _ = writeln!(o, "{head}\n{rule}");
        for k in r.tokens("scaling", m) {
            let mut row = format!("| {k} |");
            for t in &threads {
                let _ = write!(
                    row,
                    " {} |",
                    num(r.throughput("scaling", "ukey", m, k, *t), 0)
                );
            }
            let _ = writeln!(o, "{row}");
        }
        let _ = writeln!(o);
    }
}

/// Where each target stands and what limits the ones missed, with the
/// numbers measured in this run.
fn profiles_table(r: &R, o: &mut String) {
    let _ = writeln!(
        o,
        "## 7. Other cards: the simulator's card profiles\n\n\
         demo4's keys and certificates on each card the simulator plays (`ukey-sim init \
         --profile`), over pcscd + vpcd. Each number is one fresh process, APDUs counted by the \
         card: the *first signature* (C_Initialize, C_GetSlotList, C_GetTokenInfo, C_OpenSession, \
         C_Login, find 9A's private key by CKA_ID, C_SignInit + C_Sign, RSA-2048) and the \
         *listing* (the same up to C_OpenSession, then find all objects and read \
         CKA_CLASS/ID/LABEL of each). On `yk4` and `generic` (no extended length in the ATR) and \
         `compat` (256-byte answers whatever the Le) a certificate or an RSA signature comes in \
         256-byte pieces: one GET RESPONSE per further piece, none wasted.\n\n\
         | profile | the card | ukey first signature | OpenSC first signature | ukey/OpenSC | ukey listing | OpenSC listing | ukey/OpenSC |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut seqs = Vec::new();
    for p in Profile::ALL {
        let card = profile_card(p);
        let a = |m: &str, step: &str| r.apdu(&card, m, step).map(|a| a.per());
        let (uf, of) = (a("ukey", "first-sign"), a("opensc", "first-sign"));
        let (ul, ol) = (a("ukey", "list"), a("opensc", "list"));
        if uf.is_none() && ul.is_none() {
            continue;
        }
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            p.name(),
            p.spec().description,
            num(uf, 0),
            num(of, 0),
            ratio_opt(uf, of),
            num(ul, 0),
            num(ol, 0),
            ratio_opt(ul, ol),
        );
        if let Some(u) = r.apdu(&card, "ukey", "first-sign") {
            seqs.push(format!("- `{}`: {}", p.name(), describe(u.ins)));
        }
    }
    let _ = writeln!(
        o,
        "\nWhat ukey sends for the first signature (the card's answers decide what follows GET \
         VERSION: no YubiKey extension is asked of a card that does not know GET VERSION, no \
         GET METADATA of a card that answered it with `6D00`; GET CHALLENGE is asked once, \
         for CKF_RNG):\n\n{}\n",
        seqs.join("\n")
    );
}

fn limits(r: &R, st: &Standing, o: &mut String) {
    let _ = writeln!(o, "## 8. Where we stand\n");
    let mut items = Vec::new();
    if let (Some(u), Some(s)) = (st.first_ukey, st.first_opensc) {
        let seq = r
            .apdu("demo4", "ukey", "first-sign")
            .map(|a| describe(a.ins))
            .unwrap_or_default();
        items.push(format!(
            "**First signature: {u:.0} APDUs, {:.2}× OpenSC's {s:.0}.** ukey sends {seq}: the token \
             opens with SELECT, GET VERSION, GET SERIAL and GET METADATA for the PIN and PUK counters \
             (C_GetTokenInfo's flags, no try spent) and one GET CHALLENGE (CKF_RNG is set only \
             when the card answers it: issue 15), finds the key by CKA_ID with one GET METADATA of \
             that slot (no certificate read), logs in with an empty VERIFY (is the card logged in \
             already? no try spent; a login ukey did not make is left in place when it ends: issue 14) \
             and the VERIFY, and signs with one GENERAL AUTHENTICATE. The target of 8 predates those \
             two checks. OpenSC reads every certificate and object of the card while binding it.",
            u / s
        ));
    }
    let per: Vec<String> = st
        .per_sign
        .iter()
        .map(|(n, v)| format!("{n} {}", num(*v, 2)))
        .collect();
    items.push(format!(
        "**Repeated signing: {} APDUs per signature; polling: {} APDUs per poll.** A signature is one \
         GENERAL AUTHENTICATE (extended length: no chaining, no GET RESPONSE); C_GetSlotList and \
         C_GetTokenInfo poll reader states, never the card, and answer from what the card said \
         before. With the PIN-always key (9C), C_Login(CONTEXT_SPECIFIC) + C_Sign is VERIFY + \
         GENERAL AUTHENTICATE: {} APDUs against OpenSC's {}.",
        per.join(", "),
        num(st.per_poll, 2),
        num(r.apdu("demo4", "ukey", "sign-ecdsa-always").map(|a| a.per()), 0),
        num(r.apdu("demo4", "opensc", "sign-ecdsa-always").map(|a| a.per()), 0),
    ));
    for m in r.mechs() {
        let ov = r.level_diff(m, "module", "applet").map(|d| d.0);
        let tr = r.level_diff(m, "transport", "applet").map(|d| d.0);
        let sub = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| x - y);
        let outside = |l: &str| r.instructions(m, l).map(|v| v.1);
        let (ti, mi) = (
            sub(outside("transport"), outside("applet")),
            sub(outside("module"), outside("transport")),
        );
        let verdict = match ov {
            Some(v) if v <= OVERHEAD_MAX_US => "within the target",
            Some(_) => "over the target",
            None => "not measured",
        };
        let card = r.level(m, "applet").map(|l| l.2);
        items.push(format!(
            "**Module overhead, {}: {} µs per signature over the direct applet call ({verdict}).** \
             The simulator's transport adds {} µs of it ({} instructions and its system calls: an \
             advisory lock and unlock, a look for the control file, a stat of the state file — how \
             several processes share one simulated card; card time for the module). The module's \
             own part is {} instructions: the C ABI shim, session and handle lookups, the \
             mechanism's hashing and padding on the host, building the APDU and checking the \
             answer, and the signature's conversion to PKCS#11 form. Next to the card's {} µs \
             that is {}; on a USB key, where a signature takes tens of milliseconds, it does not \
             show.",
            mech_name(m),
            num(ov, 1),
            num(tr, 1),
            num(ti, 0),
            num(mi, 0),
            num(card, 0),
            ov.zip(card)
                .map_or("—".into(), |(a, b)| format!("{:.1}%", 100.0 * a / b)),
        ));
    }
    for (name, u, s) in &st.pcscd_tp {
        let (Some(u), Some(s)) = (u, s) else { continue };
        let m = if *name == "RSA-2048" { "rsa" } else { "ecdsa" };
        let step = if m == "rsa" {
            "sign-rsa-many"
        } else {
            "sign-ecdsa-many"
        };
        let (ua, sa) = (
            r.apdu("demo4", "ukey", step).map(|a| a.per()),
            r.apdu("demo4", "opensc", step).map(|a| a.per()),
        );
        let card_ms = r.level(m, "applet").map(|l| l.2 / 1000.0);
        let met = *u >= PCSCD_THROUGHPUT_MIN_RATIO * s;
        let range = r.round_ratio_range("pcscd", "ukey", "opensc", m);
        let cpu = (
            r.cpu_per_op("pcscd", "ukey", m),
            r.cpu_per_op("pcscd", "opensc", m),
        );
        let mut text = format!(
            "**Throughput over pcscd, {name}: {:.2}× OpenSC ({}; {} in single rounds; CPU per \
             signature, client + pcscd + card: {} µs against {} µs).** ukey sends {} APDU per \
             signature in one PC/SC transaction, OpenSC {} ({}).",
            u / s,
            if met { "met" } else { "missed" },
            range.map_or("—".into(), |(lo, hi)| format!("{lo:.2}–{hi:.2}")),
            num(cpu.0, 0),
            num(cpu.1, 0),
            num(ua, 0),
            num(sa, 0),
            r.apdu("demo4", "opensc", "sign-rsa")
                .filter(|_| m == "rsa")
                .or_else(|| r
                    .apdu("demo4", "opensc", "sign-ecdsa")
                    .filter(|_| m == "ecdsa"))
                .map(|a| describe(a.ins))
                .unwrap_or_default(),
        );
        let close = range.is_some_and(|(lo, _)| lo < PCSCD_THROUGHPUT_MIN_RATIO);
        if !met || close {
            let _ = write!(
                text,
                "{} What limits the ratio is the card: each signature costs the simulated card \
                 {} ms of software crypto here, the same for both modules, and both bracket the \
                 GENERAL AUTHENTICATE with a PC/SC transaction (SCardBeginTransaction and \
                 EndTransaction are pcscd round trips of their own). The APDUs OpenSC adds cost a \
                 round trip each, small next to this signature; on a real key, where every APDU \
                 costs milliseconds, the ratio moves towards the APDU ratio.",
                if met {
                    " Some rounds fell below the target: the margin is within this machine's noise."
                } else {
                    ""
                },
                num(card_ms, 2)
            );
        }
        items.push(text);
    }
    if let (Some(u), Some(s)) = st.cold {
        let phases = |m: &str| {
            r.latency("pcscd", "demo4", m, "first-sign")
                .map(|l| {
                    l.phases
                        .iter()
                        .map(|(n, v)| (n.clone(), median(v) / 1000.0))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let list = |v: Vec<(String, f64)>| {
            let mut v = v;
            v.sort_by(|a, b| b.1.total_cmp(&a.1));
            v.iter()
                .take(2)
                .map(|(n, ms)| format!("{n} {ms:.2} ms"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        items.push(format!(
            "**Cold first signature: {:.1} ms against OpenSC's {:.1} ms ({:.2}×).** ukey's largest \
             phases: {} ({} APDUs identify the token; the signature is the simulated card's \
             RSA); OpenSC's: {} — it binds the card and reads all of it ({} APDUs before the \
             first signature's login).",
            u / 1000.0,
            s / 1000.0,
            u / s,
            list(phases("ukey")),
            num(r.apdu("demo4", "ukey", "init").map(|a| a.per()), 0),
            list(phases("opensc")),
            num(r.apdu("demo4", "opensc", "init").map(|a| a.per()), 0),
        ));
    }
    let ((o1, o24), (f1, f24)) = (st.open, st.first_by_card);
    let list = |card: &str| r.apdu(card, "ukey", "objects").map(|a| a.per());
    items.push(format!(
        "**Objects on the card.** C_OpenSession sends {} APDUs with 1 certificate and {} with 24; the \
         whole first signature {} and {}: ukey reads nothing it is not asked for. Listing every \
         object reads what there is to list, once ({} APDUs with 1 certificate, {} with 24: a \
         certificate and a GET METADATA per slot that can hold one, as section 1 shows for \
         demo4); OpenSC reads everything while binding the card, whatever the application wants, \
         so its first signature grows with the card ({} APDUs with 1 certificate, {} with 24).",
        num(o1, 0),
        num(o24, 0),
        num(f1, 0),
        num(f24, 0),
        num(list("certs1"), 0),
        num(list("certs24"), 0),
        num(r.apdu("certs1", "opensc", "first-sign").map(|a| a.per()), 0),
        num(r.apdu("certs24", "opensc", "first-sign").map(|a| a.per()), 0),
    ));
    for i in items {
        let _ = writeln!(o, "- {i}\n");
    }
}
