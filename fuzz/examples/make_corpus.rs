//! Write the seed corpus from recorded pcscd logs (see `fuzz/record-corpus`).
//!
//! ```text
//! make_corpus CORPUS_DIR SESSION=START:PCSCD_LOG...
//! ```
//! START is the state the recorded card started from: factory,
//! factory-3des, demo or demo-default-key (the fuzz demo token has the
//! same key layout: `ukey_fuzz::sim::demo_keys`). A session of our own host
//! code with that token in process (`seeds::own_host_session`) is added.
//! Every target's folder is written anew, except the inputs of fixed
//! crashes kept there as `regression-*`.

use std::path::PathBuf;
use ukey_fuzz::seeds::{self, Seed};
use ukey_fuzz::sim::Start;

/// At most this many seeds per target (the corpus is committed).
const PER_TARGET: usize = 40;
/// Inputs of fixed crashes, kept as regression seeds (added by hand).
const REGRESSION_PREFIX: &str = "regression-";

fn start(name: &str) -> Option<Start> {
    Some(match name {
        "factory" => Start::Factory,
        "factory-3des" => Start::Factory3des,
        "demo" => Start::Demo,
        "demo-default-key" => Start::DemoDefaultKey,
        _ => return None,
    })
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: make_corpus DIR SESSION=START:LOG...")?,
    );
    let mut all: Vec<Seed> = Vec::new();
    let mut atrs: Vec<Vec<u8>> = Vec::new();
    for arg in args {
        let (session, rest) = arg
            .split_once('=')
            .ok_or(format!("{arg}: SESSION=START:LOG"))?;
        let (st, log) = rest
            .split_once(':')
            .ok_or(format!("{arg}: SESSION=START:LOG"))?;
        let st = start(st).ok_or(format!("{st}: unknown start state"))?;
        let text = std::fs::read_to_string(log).map_err(|e| format!("{log}: {e}"))?;
        let exchanges = seeds::parse_pcscd_log(&text);
        if exchanges.is_empty() {
            return Err(format!("{log}: no APDUs (was pcscd run with -a?)"));
        }
        eprintln!("{session}: {} exchanges", exchanges.len());
        all.extend(seeds::session_seeds(session, st, &exchanges));
        atrs.extend(seeds::atrs_in_pcscd_log(&text));
    }
    // Our own host code (apdu::Session) with the fuzz demo token, in process.
    let own = seeds::own_host_session();
    eprintln!("apdu-session: {} exchanges", own.len());
    all.extend(seeds::session_seeds("apdu-session", Start::Demo, &own));
    // Hostile: a certificate container whose gzip stream expands to 1 MiB;
    // decompression must stop at MAX_CERT_LEN.
    let bomb = apdu::piv::CertContainer {
        der: vec![0; 1 << 20],
        compressed: true,
    }
    .encode()
    .map_err(|e| e.to_string())?;
    all.push(Seed {
        target: "piv_objects",
        name: "hostile-gzip-bomb".into(),
        data: [&[1u8][..], &bomb].concat(),
        kind: "hostile".into(),
    });
    // The ATRs of real YubiKeys (5 NFC, 4) and what the simulator sends.
    atrs.extend([
        hex::decode("3BFD1300008131FE158073C021C057597562694B657940").unwrap_or_default(),
        hex::decode("3BF81300008131FE15597562696B657934D4").unwrap_or_default(),
        ukey_sim::ATR.to_vec(),
    ]);
    for atr in atrs {
        all.push(Seed {
            target: "atr",
            name: format!("atr-{}", hex::encode_upper(&atr)),
            kind: String::new(),
            data: atr,
        });
    }
    let kept = seeds::select(all, PER_TARGET);
    for (target, _) in ukey_fuzz::TARGETS {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for entry in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let keep = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(REGRESSION_PREFIX));
            if !keep {
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
    }
    for s in &kept {
        let path = dir.join(s.target).join(&s.name);
        std::fs::write(&path, &s.data).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    for (target, _) in ukey_fuzz::TARGETS {
        let n = kept.iter().filter(|s| s.target == *target).count();
        eprintln!("{target}: {n} seeds");
    }
    Ok(())
}
