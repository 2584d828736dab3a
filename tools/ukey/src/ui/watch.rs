//! Token events for the page: a thread looks, a few times a second and
//! without sending any APDU, at what is plugged in — PC/SC readers with
//! their cards' insertion counters, simulated tokens' presence and state
//! files — and when that changes (a key plugged in or pulled, a simulated
//! token written by another program) reads every token as `ukey status`
//! does and pushes the report to every open page. No try is spent: the
//! status read never verifies a PIN.

use super::App;
use crate::cmd::status;
use crate::token::Selection;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use ukey_sim::SimReader;

/// How often the thread looks.
const POLL: Duration = Duration::from_millis(300);

pub fn start(app: Arc<App>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("ukey-ui-watch".into())
        .spawn(move || run(&app))
        .expect("a thread can be started")
}

/// What is plugged in, as lines that change when anything does.
struct Looker {
    sims: HashMap<PathBuf, SimReader>,
    pcsc: Option<pcsc::Context>,
}

fn stamp(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!("{}.{} {} {}", m.mtime(), m.mtime_nsec(), m.len(), m.ino()),
        Err(_) => "gone".into(),
    }
}

impl Looker {
    fn look(&mut self, base: &Selection) -> Vec<String> {
        let mut fp = Vec::new();
        for path in &base.sims {
            if !path.is_file() {
                self.sims.remove(path);
                fp.push(format!("sim {} absent", path.display()));
                continue;
            }
            if !self.sims.contains_key(path) {
                match SimReader::open(path) {
                    Ok(r) => {
                        self.sims.insert(path.clone(), r);
                    }
                    Err(e) => {
                        fp.push(format!("sim {} unreadable: {e}", path.display()));
                        continue;
                    }
                }
            }
            let (present, insertion) = self.sims[path].presence();
            fp.push(format!(
                "sim {} {present} {insertion} {}",
                path.display(),
                stamp(path)
            ));
        }
        if base.no_pcsc {
            fp.push("pcsc skipped".into());
            return fp;
        }
        if self.pcsc.is_none() {
            self.pcsc = apdu::pcsc::context().ok();
        }
        match self.pcsc.as_ref().map(apdu::pcsc::list_readers) {
            Some(Ok(readers)) => {
                for r in readers {
                    fp.push(format!(
                        "reader {:?} {} {} {}",
                        r.name, r.card_present, r.event_count, r.exclusive
                    ));
                }
            }
            Some(Err(e)) => {
                self.pcsc = None;
                fp.push(format!("pcsc {e}"));
            }
            None => fp.push("pcsc unavailable".into()),
        }
        fp
    }

    /// The selection of what can be read now (simulated tokens whose
    /// state file is there and loads).
    fn selection(&self, base: &Selection) -> Selection {
        let mut sel = base.clone();
        sel.sims.retain(|p| self.sims.contains_key(p));
        sel
    }
}

/// The status event: `ukey status --json`'s document, or why there is
/// none (no token: `error` as `--json` errors are).
pub fn status_event(sel: &Selection, window: u32) -> String {
    let doc = match status::collect(sel, window) {
        Ok(report) => {
            let mut v = serde_json::to_value(&report).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "schema_version".into(),
                    crate::output::SCHEMA_VERSION.into(),
                );
            }
            json!({ "status": v, "error": null })
        }
        Err(e) => json!({
            "status": null,
            "error": super::api::error_json(&e),
        }),
    };
    doc.to_string()
}

fn run(app: &App) {
    let mut looker = Looker {
        sims: HashMap::new(),
        pcsc: None,
    };
    let mut last: Option<Vec<String>> = None;
    while !app.stopping() {
        let fp = looker.look(&app.base);
        let due = app.refresh.swap(false, Ordering::SeqCst) || last.as_ref() != Some(&fp);
        if due {
            // Never in the middle of an operation (its own events say what
            // happens): read once it is over.
            match app.module.try_lock() {
                Ok(_guard) => {
                    let sel = looker.selection(&app.base);
                    let event = status_event(&sel, app.window);
                    app.status.send_replace(Arc::new(event));
                    // A change while reading shows as a new look next time.
                    last = Some(fp);
                }
                Err(_) => app.refresh.store(true, Ordering::SeqCst),
            }
        }
        std::thread::sleep(POLL);
    }
}
