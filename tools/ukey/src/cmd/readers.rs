//! `ukey readers`: every reader, whether a card is in it, its ATR, and
//! whether the card has the PIV application (SELECT, version, serial: no
//! PIN is involved).

use super::Ctx;
use crate::error::Result;
use crate::token::{Inventory, PcscStatus, Selection, Source};
use serde::Serialize;

#[derive(Serialize)]
pub struct PcscReport {
    pub available: bool,
    pub skipped: bool,
    pub message: Option<String>,
}

#[derive(Serialize)]
pub struct ReaderReport {
    pub name: String,
    pub source: Source,
    pub card_present: bool,
    pub exclusive: bool,
    pub atr: Option<String>,
    pub piv: Option<bool>,
    pub version: Option<String>,
    pub serial: Option<u32>,
    pub error: Option<String>,
}

/// The `readers` JSON document.
#[derive(Serialize)]
pub struct Report {
    pub pcsc: PcscReport,
    pub readers: Vec<ReaderReport>,
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let report = collect(&ctx.sel)?;
    ctx.out.emit(&report, || text(&report))
}

/// Every reader `sel` shows, and who the card in each is (no PIN involved).
pub fn collect(sel: &Selection) -> Result<Report> {
    let inv = Inventory::scan(sel)?;
    let pcsc = match &inv.pcsc {
        PcscStatus::Available => PcscReport {
            available: true,
            skipped: false,
            message: None,
        },
        PcscStatus::Skipped => PcscReport {
            available: false,
            skipped: true,
            message: Some("skipped (UKEY_NO_PCSC is set)".into()),
        },
        PcscStatus::Unavailable(why) => PcscReport {
            available: false,
            skipped: false,
            message: Some(why.clone()),
        },
    };
    let mut readers = Vec::new();
    for r in &inv.readers {
        let mut rep = ReaderReport {
            name: r.name.clone(),
            source: r.source,
            card_present: r.card_present,
            exclusive: r.exclusive,
            atr: (!r.atr.is_empty()).then(|| hex::encode_upper(&r.atr)),
            piv: None,
            version: None,
            serial: None,
            error: None,
        };
        if r.card_present && !r.exclusive {
            match inv.token(r).and_then(|mut t| t.probe()) {
                Ok(p) => {
                    rep.piv = Some(p.piv);
                    rep.version = p.version.map(|v| v.to_string());
                    rep.serial = p.serial;
                }
                Err(e) => rep.error = Some(e.message),
            }
        }
        readers.push(rep);
    }
    Ok(Report { pcsc, readers })
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    if let Some(m) = &r.pcsc.message {
        s += &format!("PC/SC: {m}\n");
    }
    if r.readers.is_empty() {
        s += "No readers found";
        if !r.pcsc.available {
            s += " (and no simulated token: set UKEY_SIM or use --sim)";
        }
        s += ".\n";
        return s;
    }
    for rd in &r.readers {
        let kind = match rd.source {
            Source::Pcsc => "",
            Source::Sim => " (simulated)",
        };
        s += &format!("{}{kind}\n", rd.name);
        if !rd.card_present {
            s += "  no card\n";
            continue;
        }
        s += &format!("  card present, ATR {}\n", rd.atr.as_deref().unwrap_or("?"));
        if rd.exclusive {
            s += "  in exclusive use by another application\n";
        }
        match (rd.piv, &rd.error) {
            (_, Some(e)) => s += &format!("  could not talk to the card: {e}\n"),
            (Some(true), _) => {
                s += "  PIV applet: yes";
                if let Some(v) = &rd.version {
                    s += &format!(", firmware {v}");
                }
                if let Some(n) = rd.serial {
                    s += &format!(", serial {n}");
                }
                s += "\n";
            }
            (Some(false), _) => s += "  PIV applet: no\n",
            (None, None) => {}
        }
    }
    s
}
