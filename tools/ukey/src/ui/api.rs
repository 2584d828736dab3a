//! The page, its event stream and the renewal operations.
//!
//! Each operation names its token (reader and serial: a key swapped in the
//! same reader is refused, never acted on), runs in a blocking thread
//! under the process's module lock, and calls the renewal core that `ukey
//! renew ...` calls, with the PIN the request carried — read into a
//! zeroizing buffer, used for this one operation, never stored, logged or
//! sent back — and a feedback sink that sends its progress to the page.
//! One write operation per token at a time: in this process a busy token
//! is refused at once (409), across processes the cores take the token's
//! renewal lock (`crate::lock`).

use super::guard::Admitted;
use super::App;
use crate::cmd::renew::{self, Allow, Feedback, PinFrom};
use crate::error::{CliError, ErrorKind, Result};
use crate::secrets::{pin_from_text, Kind};
use crate::token::{Inventory, Selection, Token};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// The largest request body: a certificate file (1 MiB) in hex, in JSON.
pub const MAX_BODY: usize = 3 << 20;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

fn respond(status: StatusCode, kind: &'static str, body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    respond(status, "application/json", v.to_string())
}

/// A `--json` error document, as `ukey` prints it.
pub fn error_json(e: &CliError) -> serde_json::Value {
    e.to_json()
}

fn error_response(e: &CliError) -> Response<Body> {
    let status = match e.kind {
        ErrorKind::Busy | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    json_response(status, &error_json(e))
}

/// A report as the `--json` document of the same command.
fn report_response<T: Serialize>(v: &T) -> Response<Body> {
    let mut doc = serde_json::to_value(v).unwrap_or_default();
    if let Some(m) = doc.as_object_mut() {
        m.insert(
            "schema_version".into(),
            crate::output::SCHEMA_VERSION.into(),
        );
    }
    json_response(StatusCode::OK, &doc)
}

pub async fn index(Extension(admitted): Extension<Admitted>) -> Response<Body> {
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        INDEX.replace("{{CSRF}}", &admitted.csrf),
    )
}

pub async fn script() -> Response<Body> {
    respond(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response<Body> {
    respond(StatusCode::OK, "text/css; charset=utf-8", STYLE)
}

/// The latest status event (the watcher's; the first one is waited for).
pub async fn status(State(app): State<Arc<App>>) -> Response<Body> {
    let mut rx = app.status.subscribe();
    for _ in 0..50 {
        let now = rx.borrow_and_update().clone();
        if !now.is_empty() {
            return respond(StatusCode::OK, "application/json", now.to_string());
        }
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), rx.changed()).await;
    }
    error_response(&CliError::new(
        "the tokens could not be read yet: try again",
    ))
}

/// Counts the open event streams (the idle timer waits for none).
struct StreamGuard(Arc<App>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

struct Stream {
    _guard: StreamGuard,
    first: bool,
    status: tokio::sync::watch::Receiver<Arc<String>>,
    ops: tokio::sync::broadcast::Receiver<Arc<String>>,
    stop: tokio::sync::watch::Receiver<bool>,
}

/// Server-sent events: `status` (every token, as `ukey status --json`
/// reports them, whenever something changes) and `op` (the progress of
/// operations).
pub async fn events(
    State(app): State<Arc<App>>,
) -> Sse<impl futures_util::Stream<Item = std::result::Result<Event, Infallible>>> {
    app.streams.fetch_add(1, Ordering::SeqCst);
    let st = Stream {
        status: app.status.subscribe(),
        ops: app.events.subscribe(),
        stop: app.shutdown.subscribe(),
        first: true,
        _guard: StreamGuard(app.clone()),
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if st.first {
            st.first = false;
            let now = st.status.borrow_and_update().clone();
            if !now.is_empty() {
                return Some((Ok(Event::default().event("status").data(now.as_str())), st));
            }
        }
        loop {
            if *st.stop.borrow() {
                return None;
            }
            tokio::select! {
                r = st.status.changed() => {
                    r.ok()?;
                    let now = st.status.borrow_and_update().clone();
                    if !now.is_empty() {
                        return Some((Ok(Event::default().event("status").data(now.as_str())), st));
                    }
                }
                r = st.ops.recv() => match r {
                    Ok(e) => return Some((Ok(Event::default().event("op").data(e.as_str())), st)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                _ = st.stop.changed() => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Progress of one operation, sent to the page as `op` events.
struct PageFeedback {
    app: Arc<App>,
    op: String,
}

impl PageFeedback {
    fn send(&self, kind: &str, text: &str) {
        let e = json!({ "op": self.op, "type": kind, "text": text });
        let _ = self.app.events.send(Arc::new(e.to_string()));
    }
}

// The page names the key and slot itself; notes are in English, steps
// by name (the page words them in its language).

impl Feedback for PageFeedback {
    fn note(&self, msg: &str) {
        self.send("note", msg.trim_start());
    }

    fn warn(&self, msg: &str) {
        self.send("warn", msg);
    }

    fn slow_start(&self, what: &str) {
        self.send("slow", what);
    }

    fn step(&self, name: &'static str, text: &str) {
        let e = json!({ "op": self.op, "type": "step", "name": name, "text": text.trim_start() });
        let _ = self.app.events.send(Arc::new(e.to_string()));
    }

    fn slow_done(&self, ok: bool) {
        self.send("slow_done", if ok { "ok" } else { "failed" });
    }

    fn interactive(&self) -> bool {
        false
    }

    fn confirm(&self, question: &str, _flag: &str) -> Result<()> {
        Err(CliError::new(format!(
            "{question} — not confirmed: accept it on the page first"
        ))
        .with_kind(ErrorKind::NotConfirmed))
    }
}

/// The token an operation is for, as the page showed it.
#[derive(Clone)]
struct Who {
    reader: String,
    serial: Option<u32>,
}

impl Who {
    /// The in-process busy key: the card (by serial) in any reader.
    fn key(&self) -> String {
        match self.serial {
            Some(s) => format!("serial {s}"),
            None => format!("reader {}", self.reader),
        }
    }

    fn describe(&self) -> String {
        match self.serial {
            Some(s) => format!("key {s}"),
            None => format!("the key in {}", self.reader),
        }
    }
}

/// The token the page named, or an error: never another one.
fn resolve(base: &Selection, who: &Who) -> Result<Token> {
    let mut sel = base.clone();
    sel.sims.retain(|p| p.is_file());
    sel.reader = Some(who.reader.clone());
    sel.serial = who.serial;
    crate::token::choose(Inventory::scan(&sel)?, &sel).map_err(|e| {
        CliError::new(format!(
            "{} is not in {} any more (pulled, or another key put in its place?): {}",
            who.describe(),
            who.reader,
            e.message
        ))
        .with_kind(e.kind)
    })
}

/// Marks a token busy (in this process) while an operation runs.
struct Busy {
    app: Arc<App>,
    key: String,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut b) = self.app.busy.lock() {
            b.remove(&self.key);
        }
        self.app.ops.fetch_sub(1, Ordering::SeqCst);
        self.app.refresh.store(true, Ordering::SeqCst);
        self.app.touch();
    }
}

/// Run `f` on the token `who` names: one operation per token at a time,
/// one module user at a time, progress as `op` events.
async fn operate<T, F>(app: Arc<App>, who: Who, op: String, f: F) -> Response<Body>
where
    T: Serialize + Send + 'static,
    F: FnOnce(Token, &dyn Feedback) -> Result<T> + Send + 'static,
{
    if app.stopping() {
        return error_response(
            &CliError::new("ukey ui is stopping: nothing was done").with_kind(ErrorKind::Busy),
        );
    }
    let key = who.key();
    {
        let mut busy = app.busy.lock().unwrap_or_else(|e| e.into_inner());
        if !busy.insert(key.clone()) {
            return error_response(
                &CliError::new(format!(
                    "another operation on {} is running: wait for it to finish",
                    who.describe()
                ))
                .with_kind(ErrorKind::Busy),
            );
        }
        app.ops.fetch_add(1, Ordering::SeqCst);
    }
    let busy = Busy {
        app: app.clone(),
        key,
    };
    let run = tokio::task::spawn_blocking(move || {
        let fb = PageFeedback {
            app: app.clone(),
            op,
        };
        let _module = app.module.lock().unwrap_or_else(|e| e.into_inner());
        let t = resolve(&app.base, &who)?;
        f(t, &fb)
    })
    .await;
    drop(busy);
    match run {
        Ok(Ok(v)) => report_response(&v),
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(
            &CliError::new("internal error (a bug): see the server's output")
                .with_kind(ErrorKind::Internal)
                .with_code(crate::error::EXIT_INTERNAL),
        ),
    }
}

/// A JSON body that may carry the PIN: parsed, then the received bytes
/// are zeroed where this process owns them alone. A malformed body is
/// refused without echoing any of it.
fn parse<T: DeserializeOwned>(body: Bytes) -> Result<T> {
    let parsed = serde_json::from_slice(&body);
    if let Ok(mut owned) = body.try_into_mut() {
        owned.as_mut().zeroize();
    }
    parsed.map_err(|_| CliError::new("malformed request").with_kind(ErrorKind::BadInput))
}

fn pin_of(text: &Zeroizing<String>) -> Result<apdu::piv::Pin> {
    pin_from_text(Kind::Pin, text)
}

fn slot_of(s: &str) -> Result<apdu::piv::Slot> {
    renew::parse_target(s).map_err(|e| CliError::new(e).with_kind(ErrorKind::BadInput))
}

// Bodies that carry the PIN name their fields (no `flatten`, which would
// copy the PIN through serde's buffers).
#[derive(Deserialize)]
struct RequestBody {
    reader: String,
    serial: Option<u32>,
    slot: String,
    pin: Zeroizing<String>,
    op: String,
    /// The user accepted, on the page, that the renewed pair stays in a
    /// retired slot (a key without MOVE KEY): `--retired-slot-ok`.
    #[serde(default)]
    retired_slot_ok: bool,
}

/// "Apply for renewal": `ukey renew request --slot S`.
pub async fn request(State(app): State<Arc<App>>, body: Bytes) -> Response<Body> {
    let b: RequestBody = match parse(body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let (slot, pin) = match (slot_of(&b.slot), pin_of(&b.pin)) {
        (Ok(s), Ok(p)) => (s, p),
        (Err(e), _) | (_, Err(e)) => return error_response(&e),
    };
    drop(b.pin);
    let window = app.window;
    let who = Who {
        reader: b.reader,
        serial: b.serial,
    };
    let retired_slot_ok = b.retired_slot_ok;
    operate(app, who, b.op, move |t, fb| {
        renew::request_core(
            t,
            slot,
            false,
            window,
            retired_slot_ok,
            PinFrom::Given(pin),
            fb,
        )
    })
    .await
}

#[derive(Deserialize)]
struct CertBody {
    reader: String,
    serial: Option<u32>,
    /// The file's name, for messages.
    file_name: String,
    /// The file's bytes in hex (PEM, DER or PKCS#7).
    cert_hex: String,
}

/// The certificate file the page sent, and its name for messages.
fn certificates(file_name: &str, cert_hex: &str) -> Result<(Vec<Vec<u8>>, PathBuf)> {
    let name: String = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    let name = PathBuf::from(if name.is_empty() {
        "certificate".to_string()
    } else {
        name
    });
    if cert_hex.len() as u64 > 2 * crate::certs::MAX_CERT_FILE {
        return Err(CliError::new(format!(
            "{}: larger than {} KiB: not a certificate file",
            name.display(),
            crate::certs::MAX_CERT_FILE / 1024
        ))
        .with_kind(ErrorKind::BadInput)
        .with_reason("too_large"));
    }
    let bytes = hex::decode(cert_hex)
        .map_err(|_| CliError::new("malformed request").with_kind(ErrorKind::BadInput))?;
    let certs = crate::certs::cert_bundle(&bytes, &name.display())
        .map_err(|e| e.with_kind(ErrorKind::BadInput))?;
    Ok((certs, name))
}

/// "Install certificate", first step: what will happen, and the checks
/// passed (nothing written, no PIN).
pub async fn preview(State(app): State<Arc<App>>, body: Bytes) -> Response<Body> {
    let b: CertBody = match parse(body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let (certs, name) = match certificates(&b.file_name, &b.cert_hex) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let op = format!("preview-{}", super::guard::random_token());
    let who = Who {
        reader: b.reader,
        serial: b.serial,
    };
    operate(app, who, op, move |t, _| renew::preview(t, &certs, &name)).await
}

#[derive(Deserialize)]
struct InstallBody {
    reader: String,
    serial: Option<u32>,
    file_name: String,
    cert_hex: String,
    pin: Zeroizing<String>,
    op: String,
    #[serde(default)]
    new_issuer_ok: bool,
    #[serde(default)]
    not_before_ok: bool,
}

/// "Install certificate" (and "Finish installation"): `ukey renew install`.
pub async fn install(State(app): State<Arc<App>>, body: Bytes) -> Response<Body> {
    let b: InstallBody = match parse(body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let (certs, name) = match certificates(&b.file_name, &b.cert_hex) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let pin = match pin_of(&b.pin) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    drop(b.pin);
    let allow = Allow {
        not_yet_valid: b.not_before_ok,
        new_issuer: b.new_issuer_ok,
    };
    let who = Who {
        reader: b.reader,
        serial: b.serial,
    };
    operate(app, who, b.op, move |t, fb| {
        renew::install_core(t, &certs, &name, allow, PinFrom::Given(pin), fb)
    })
    .await
}

#[derive(Deserialize)]
struct CancelBody {
    reader: String,
    serial: Option<u32>,
    slot: String,
    pin: Zeroizing<String>,
    op: String,
}

/// "Cancel renewal" (confirmed on the page): `ukey renew cancel --slot S --yes`.
pub async fn cancel(State(app): State<Arc<App>>, body: Bytes) -> Response<Body> {
    let b: CancelBody = match parse(body) {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let (slot, pin) = match (slot_of(&b.slot), pin_of(&b.pin)) {
        (Ok(s), Ok(p)) => (s, p),
        (Err(e), _) | (_, Err(e)) => return error_response(&e),
    };
    drop(b.pin);
    let who = Who {
        reader: b.reader,
        serial: b.serial,
    };
    operate(app, who, b.op, move |t, fb| {
        renew::cancel_core(t, Some(slot), true, PinFrom::Given(pin), fb)
    })
    .await
}
