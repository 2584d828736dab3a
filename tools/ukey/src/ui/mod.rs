//! `ukey ui`: the local web page of the renewal journey (My certificates,
//! Certificate renewal, Driver and diagnostics) for people who do not use
//! a terminal.
//!
//! One process: an HTTP/1 server (axum on tokio) on a loopback address,
//! the page's HTML, CSS and JavaScript compiled into the binary, and a
//! watcher thread that pushes token events to the page. Everything the
//! page shows or does goes through the code `ukey` runs: the status model
//! of `ukey status --json` ([`ukey_token::status::collect`]) and the
//! renewal cores of `ukey renew request|install|cancel`, given the PIN the
//! page's dialog sent (once per operation, never stored) and a feedback
//! sink that turns their progress into page events.
//!
//! It stops on Ctrl-C (SIGINT), SIGTERM or SIGHUP — a renewal then stops
//! at its next safe step, as on the command line — or after `--idle`
//! seconds (default 600) with no page open, no request and nothing
//! running.

mod api;
mod diag;
mod guard;
pub mod trace;
mod watch;

use crate::cmd::Ctx;
use crate::error::{CliError, Result, EXIT_USAGE};
use crate::token::Selection;
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch as tokio_watch};

/// What the server shares between requests and the watcher.
pub struct App {
    /// `127.0.0.1:PORT`: the only `Host` answered.
    host: String,
    /// `http://127.0.0.1:PORT`: the only `Origin` a POST may come from.
    origin: String,
    sessions: guard::Sessions,
    /// The session cookie's name (`ukey_session_PORT`).
    cookie: String,
    /// The tokens `ukey` would see (UKEY_SIM, UKEY_NO_PCSC, --sim...).
    base: Selection,
    window: u32,
    /// The latest status event (JSON), sent to every page that connects.
    status: tokio_watch::Sender<Arc<String>>,
    /// Progress of operations (JSON events).
    events: broadcast::Sender<Arc<String>>,
    /// Tokens with a write operation running in this process.
    busy: Mutex<HashSet<String>>,
    /// The PKCS#11 module is one library per process, initialised for one
    /// token at a time by the renewal steps: one operation at a time.
    module: Mutex<()>,
    /// Read the tokens again now.
    refresh: AtomicBool,
    /// Operations running.
    ops: AtomicUsize,
    /// Pages connected to the event stream.
    streams: AtomicUsize,
    last_request: Mutex<Instant>,
    shutdown: tokio_watch::Sender<bool>,
}

impl App {
    fn touch(&self) {
        if let Ok(mut l) = self.last_request.lock() {
            *l = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        if self.ops.load(Ordering::SeqCst) > 0 || self.streams.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last_request
            .lock()
            .map(|l| l.elapsed())
            .unwrap_or_default()
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Refuse anything but a loopback address.
fn check_listen(addr: SocketAddr) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    Err(CliError::new(format!(
        "--listen {addr}: ukey ui listens on a loopback address only (127.0.0.1 or [::1]): the \
         page can use the PIN and write to the token"
    ))
    .with_code(EXIT_USAGE))
}

pub fn run(ctx: &Ctx, listen: Option<SocketAddr>, no_open: bool, idle: Duration) -> Result<()> {
    let addr = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    check_listen(addr)?;
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| CliError::new(format!("listening on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    check_listen(local)?;
    listener.set_nonblocking(true)?;
    let host = local.to_string();
    let (status, _) = tokio_watch::channel(Arc::new(String::new()));
    let (events, _) = broadcast::channel(256);
    let (shutdown, _) = tokio_watch::channel(false);
    let app = Arc::new(App {
        origin: format!("http://{host}"),
        cookie: format!("{}_{}", guard::COOKIE, local.port()),
        host,
        sessions: guard::Sessions::new(),
        base: ctx.sel.clone(),
        window: crate::verdict::DEFAULT_WINDOW_DAYS,
        status,
        events,
        busy: Mutex::new(HashSet::new()),
        module: Mutex::new(()),
        refresh: AtomicBool::new(true),
        ops: AtomicUsize::new(0),
        streams: AtomicUsize::new(0),
        last_request: Mutex::new(Instant::now()),
        shutdown,
    });
    let url = format!("{}/?s={}", app.origin, app.sessions.secret());
    // The first line of stdout: programs (and the demo) read it.
    crate::output::stdout(format!("{url}\n").as_bytes());
    crate::output::note(format!(
        "ukey ui: serving the page on {} (loopback only); Ctrl-C stops it, and so do {} \
         minutes with no page open",
        app.origin,
        idle.as_secs().div_ceil(60)
    ));
    // Renewals stop between safe steps on our signals, not theirs.
    crate::cmd::renew::leave_signals_to_caller();
    let watcher = watch::start(app.clone());
    if !no_open {
        open_browser(&url);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("starting the server: {e}")))?;
    let served = rt.block_on(serve(app.clone(), listener, idle));
    app.shutdown.send_replace(true);
    let _ = watcher.join();
    rt.shutdown_timeout(Duration::from_secs(2));
    served
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(api::index))
        .route("/app.js", get(api::script))
        .route("/app.css", get(api::style))
        .route("/api/status", get(api::status))
        .route("/api/events", get(api::events))
        .route("/api/diagnostics", get(diag::diagnostics))
        .route("/api/report", get(diag::report))
        .route("/api/request", post(api::request))
        .route("/api/preview", post(api::preview))
        .route("/api/install", post(api::install))
        .route("/api/cancel", post(api::cancel))
        .route("/api/nss/register", post(diag::register))
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::guard,
        ))
        .with_state(app)
}

async fn serve(app: Arc<App>, listener: std::net::TcpListener, idle: Duration) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| CliError::new(format!("serving: {e}")))?;
    let stop = stop_signal(app.clone(), idle);
    axum::serve(listener, router(app.clone()))
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| CliError::new(format!("serving: {e}")))
}

/// Resolves when the server should stop: a signal or the idle time. A
/// renewal running then is asked to stop at its next safe step, and is
/// waited for.
async fn stop_signal(app: Arc<App>, idle: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let why = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break "interrupted",
            Some(_) = async { match term.as_mut() { Some(s) => s.recv().await, None => None } } => break "terminated",
            Some(_) = async { match hup.as_mut() { Some(s) => s.recv().await, None => None } } => break "hung up",
            _ = tick.tick() => {
                if app.idle_for() >= idle {
                    break "idle";
                }
            }
        }
    };
    crate::output::note(format!("ukey ui: stopping ({why})"));
    crate::cmd::renew::request_stop();
    if app.ops.load(Ordering::SeqCst) > 0 {
        crate::output::note(
            "ukey ui: waiting for the running operation to reach a safe step (do not pull the key)",
        );
    }
    while app.ops.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ends the event streams, so the open connections close.
    app.shutdown.send_replace(true);
}

/// `xdg-open URL`, detached; a missing or failing opener is one note.
fn open_browser(url: &str) {
    use std::process::{Command, Stdio};
    let spawned = Command::new("xdg-open")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reap it when it ends (xdg-open returns once the browser started).
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        Err(e) => crate::output::note(format!(
            "ukey ui: could not open a browser ({e}): open the address above yourself"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served() {
        assert!(check_listen("127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(check_listen("127.0.0.2:8080".parse().unwrap()).is_ok());
        assert!(check_listen("[::1]:0".parse().unwrap()).is_ok());
        for bad in ["0.0.0.0:0", "192.0.2.1:80", "[::]:0", "10.0.0.1:1"] {
            let e = check_listen(bad.parse().unwrap()).unwrap_err();
            assert_eq!(e.code, EXIT_USAGE, "{bad}");
        }
    }
}
