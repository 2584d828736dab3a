//! Counting APDUs independently of the module under test: the card's own
//! exchange log (`ukey-sim serve --log`: `> command` / `< response` lines in
//! hex) and pcscd's `-a` log (`APDU: ..` / `SW: ..` lines). Both only grow;
//! a counter remembers how far it has read, so each scenario step gets the
//! APDUs sent during it.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What crossed the wire during a step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    pub apdus: u64,
    /// Command bytes plus response bytes (data and status word).
    pub bytes: u64,
    /// INS of every command, in order.
    pub ins: Vec<u8>,
}

/// A log file read incrementally.
pub struct LogCounter {
    path: PathBuf,
    pos: u64,
    kind: LogKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// `ukey-sim serve --log`.
    Sim,
    /// `pcscd -a`.
    Pcscd,
}

fn hex_len(s: &str) -> u64 {
    s.chars().filter(|c| c.is_ascii_hexdigit()).count() as u64 / 2
}

fn first_byte(hex: &str, n: usize) -> Option<u8> {
    let digits: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    digits
        .get(n * 2..n * 2 + 2)
        .and_then(|b| u8::from_str_radix(b, 16).ok())
}

impl LogCounter {
    /// Start counting at the current end of `path` (a missing file is empty).
    pub fn new(path: &Path, kind: LogKind) -> Self {
        let pos = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Self {
            path: path.to_path_buf(),
            pos,
            kind,
        }
    }

    /// The complete lines written since the last call.
    fn new_lines(&mut self) -> String {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return String::new();
        };
        if f.seek(SeekFrom::Start(self.pos)).is_err() {
            return String::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return String::new();
        }
        // Only whole lines: a line being written is counted next time.
        let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        buf.truncate(end);
        self.pos += end as u64;
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Traffic since the last call.
    pub fn take(&mut self) -> Traffic {
        let text = self.new_lines();
        let mut t = Traffic::default();
        for line in text.lines() {
            match self.kind {
                LogKind::Sim => {
                    if let Some(cmd) = line.strip_prefix("> ") {
                        t.apdus += 1;
                        t.bytes += hex_len(cmd);
                        t.ins.extend(first_byte(cmd, 1));
                    } else if let Some(resp) = line.strip_prefix("< ") {
                        t.bytes += hex_len(resp);
                    }
                }
                LogKind::Pcscd => {
                    if let Some((_, cmd)) = line.split_once(" APDU: ") {
                        t.apdus += 1;
                        t.bytes += hex_len(cmd);
                        t.ins.extend(first_byte(cmd, 1));
                    } else if let Some((_, resp)) = line.split_once(" SW: ") {
                        t.bytes += hex_len(resp);
                    }
                }
            }
        }
        t
    }
}

/// Both independent counters of one card behind pcscd.
pub struct Counters {
    pub sim: LogCounter,
    pub pcscd: Option<LogCounter>,
}

impl Counters {
    /// The logs `scripts/with-pcscd --sim-log` leaves in `$WITH_PCSCD_LOG`
    /// for the card with index `card`.
    pub fn from_env(card: usize) -> Result<Self, String> {
        let dir = std::env::var_os("WITH_PCSCD_LOG")
            .map(PathBuf::from)
            .ok_or("WITH_PCSCD_LOG is not set: run under scripts/with-pcscd --sim-log")?;
        let sim = dir.join(format!("apdus{card}.log"));
        let pcscd = dir.join("pcscd.log");
        Ok(Self {
            sim: LogCounter::new(&sim, LogKind::Sim),
            pcscd: pcscd
                .exists()
                .then(|| LogCounter::new(&pcscd, LogKind::Pcscd)),
        })
    }

    /// (card's count, pcscd's APDU count) since the last call.
    pub fn take(&mut self) -> (Traffic, Option<u64>) {
        // The card logs before it answers, pcscd before it returns the
        // answer: both are complete once the module's call has returned.
        let sim = self.sim.take();
        let pcscd = self.pcscd.as_mut().map(|c| c.take().apdus);
        (sim, pcscd)
    }
}

/// A readable name for an INS byte.
pub fn ins_name(ins: u8) -> &'static str {
    match ins {
        0xA4 => "SELECT",
        0xCA | 0xCB => "GET DATA",
        0xDB => "PUT DATA",
        0x20 => "VERIFY",
        0x24 => "CHANGE REF",
        0x87 => "GEN AUTH",
        0xC0 => "GET RESPONSE",
        0xFD => "GET VERSION",
        0xF8 => "GET SERIAL",
        0xF7 => "GET METADATA",
        0x84 => "GET CHALLENGE",
        0x47 => "GENERATE",
        _ => "other",
    }
}

/// "SELECT, GET DATA ×3, VERIFY" for a list of INS bytes (runs collapsed).
pub fn describe(ins: &[u8]) -> String {
    let mut parts: Vec<(String, usize)> = Vec::new();
    for &i in ins {
        let name = match ins_name(i) {
            "other" => format!("INS {i:02X}"),
            n => n.to_string(),
        };
        match parts.last_mut() {
            Some((last, n)) if *last == name => *n += 1,
            _ => parts.push((name, 1)),
        }
    }
    parts
        .into_iter()
        .map(|(name, n)| if n > 1 { format!("{name} ×{n}") } else { name })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_and_pcscd_logs_count_alike() {
        let dir = std::env::temp_dir().join(format!("ukey-bench-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sim = dir.join("apdus0.log");
        let pcscd = dir.join("pcscd.log");
        std::fs::write(&sim, "> 00A4040009A00000030800001000\n< 61119000\n").unwrap();
        std::fs::write(
            &pcscd,
            "00000001 APDU: 00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 \n00000106 SW: 61 11 90 00 \n",
        )
        .unwrap();
        let mut s = LogCounter::new(&sim, LogKind::Sim);
        let mut p = LogCounter::new(&pcscd, LogKind::Pcscd);
        assert_eq!(s.take().apdus, 0, "counting starts at the end");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&sim).unwrap();
        writeln!(f, "> 00FD000000\n< 0507009000").unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&pcscd)
            .unwrap();
        writeln!(
            f,
            "00000001 APDU: 00 FD 00 00 00 \n00000002 SW: 05 07 00 90 00 "
        )
        .unwrap();
        let (a, b) = (s.take(), p.take());
        assert_eq!(a, b);
        assert_eq!((a.apdus, a.bytes, a.ins.clone()), (1, 10, vec![0xFD]));
        assert_eq!(
            describe(&[0xA4, 0xF7, 0xF7, 0x87]),
            "SELECT, GET METADATA ×2, GEN AUTH"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
