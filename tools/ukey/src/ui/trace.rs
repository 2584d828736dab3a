//! Logging for `ukey ui`: the same log as every `ukey` command (`UKEY_LOG`,
//! `--trace`, on stderr), plus a capture of the APDU exchange of one
//! status read for the diagnostic report (redacted by `apdu` itself: PIN,
//! PUK and key material never reach a log line).

use std::sync::Mutex;
use std::thread::ThreadId;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The thread whose APDU lines are being captured, and the lines.
static CAPTURE: Mutex<Option<(ThreadId, Vec<String>)>> = Mutex::new(None);

/// The most APDU lines one capture keeps.
const MAX_LINES: usize = 400;

struct Capture;

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Ok(mut c) = CAPTURE.lock() else { return };
        let Some((tid, lines)) = c.as_mut() else {
            return;
        };
        if *tid != std::thread::current().id() || lines.len() >= MAX_LINES {
            return;
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        lines.push(m.0);
    }
}

/// Run `f` and return the APDU lines this thread logged meanwhile.
pub fn capture_apdus<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    if let Ok(mut c) = CAPTURE.lock() {
        *c = Some((std::thread::current().id(), Vec::new()));
    }
    let r = f();
    let lines = CAPTURE
        .lock()
        .ok()
        .and_then(|mut c| c.take())
        .map(|(_, l)| l)
        .unwrap_or_default();
    (r, lines)
}

/// Install the subscriber: the command line's log (as every `ukey`
/// command has it) and the APDU capture.
pub fn init(trace: bool) {
    let user = crate::settings::get().log.clone();
    let fmt = (trace || user.is_some()).then(|| {
        let mut filter = user.unwrap_or_default();
        if trace {
            if !filter.is_empty() {
                filter.push(',');
            }
            filter.push_str("apdu=debug");
            if std::env::var_os("UKEY_LOG").is_none() {
                // The module logs the renewal's APDUs when asked this way.
                std::env::set_var("UKEY_LOG", "apdu=debug");
            }
        }
        let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("apdu=debug"));
        tracing_subscriber::fmt::layer()
            .without_time()
            .with_level(false)
            .with_ansi(false)
            .with_writer(|| crate::output::QuietStderr)
            .log_internal_errors(false)
            .with_filter(filter)
    });
    let capture = Capture.with_filter(Targets::new().with_target("apdu", Level::DEBUG));
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(capture)
        .try_init();
}
