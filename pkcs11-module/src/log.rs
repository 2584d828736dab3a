//! The module's log (`UKEY_LOG`, `UKEY_LOG_FILE`): a tracing subscriber
//! that cannot panic and keeps nothing in thread-local storage.
//!
//! The module runs inside other people's processes, at any moment of their
//! life: OpenSSL closes its sessions from an `atexit` handler, after the C
//! library has run the thread-local destructors. tracing-subscriber's `fmt`
//! layer formats into a thread-local buffer and panics there, and a panic in
//! a panic handler cannot unwind: the host aborted. This subscriber formats
//! each line into a local `String`, writes it with one `write_all` whose
//! error is ignored, and runs inside `catch_unwind`; the filter is a static
//! `target=level` list ([`Targets`]), which needs no per-thread state either.

use std::fs::File;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

/// Where log lines go.
enum Output {
    Stderr { ansi: bool },
    File(Mutex<File>),
}

struct Logger {
    filter: Targets,
    output: Output,
}

/// Run `f`, which logs, so that nothing it does can unwind into the caller.
pub fn quietly(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// Set up the log from `log` (`UKEY_LOG` or the configuration file: a
/// `target=level` list such as `debug` or `apdu=debug,pkcs11=trace,info`)
/// and `log_file` once per process.
pub fn init(config: &ukey_config::Config) {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Some(spec) = config.log.clone().filter(|s| !s.is_empty()) else {
            return;
        };
        let filter = match spec.parse::<Targets>() {
            Ok(f) => f,
            Err(e) => {
                let line = format!("ukey: UKEY_LOG={spec:?} ignored: {e}\n");
                let _ = std::io::stderr().write_all(line.as_bytes());
                return;
            }
        };
        let file = config.log_file.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        let output = match file {
            Some(f) => Output::File(Mutex::new(f)),
            // Colours only for a person reading a terminal, not in a saved log.
            None => Output::Stderr {
                ansi: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            },
        };
        let _ = tracing::subscriber::set_global_default(Logger { filter, output });
    });
}

/// Collects an event's message and fields.
struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Logger {
    fn format(&self, event: &Event<'_>) -> String {
        let meta = event.metadata();
        let mut line = String::with_capacity(160);
        let _ = SystemTime.format_time(&mut Writer::new(&mut line));
        let level = *meta.level();
        let ansi = matches!(self.output, Output::Stderr { ansi: true });
        let colour = match level {
            Level::ERROR => "31",
            Level::WARN => "33",
            Level::INFO => "32",
            Level::DEBUG => "34",
            Level::TRACE => "35",
        };
        if ansi {
            line.push_str(&format!(
                " \x1b[{colour}m{level:>5}\x1b[0m {}:",
                meta.target()
            ));
        } else {
            line.push_str(&format!(" {level:>5} {}:", meta.target()));
        }
        event.record(&mut Line(&mut line));
        line.push('\n');
        line
    }

    fn write(&self, line: &str) {
        match &self.output {
            Output::Stderr { .. } => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Output::File(f) => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

impl Subscriber for Logger {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.filter.would_enable(meta.target(), meta.level())
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Spans are not recorded: one constant ID is enough.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        quietly(|| self.write(&self.format(event)));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_time_level_target_message_and_fields() {
        let logger = Logger {
            filter: "apdu=debug,info".parse().unwrap(),
            output: Output::Stderr { ansi: false },
        };
        let line = std::sync::Arc::new(Mutex::new(String::new()));
        let sink = line.clone();
        struct Capture(Logger, std::sync::Arc<Mutex<String>>);
        impl Subscriber for Capture {
            fn enabled(&self, m: &Metadata<'_>) -> bool {
                self.0.enabled(m)
            }
            fn new_span(&self, a: &Attributes<'_>) -> Id {
                self.0.new_span(a)
            }
            fn record(&self, _: &Id, _: &Record<'_>) {}
            fn record_follows_from(&self, _: &Id, _: &Id) {}
            fn event(&self, e: &Event<'_>) {
                *self.1.lock().unwrap() = self.0.format(e);
            }
            fn enter(&self, _: &Id) {}
            fn exit(&self, _: &Id) {}
        }
        tracing::subscriber::with_default(Capture(logger, sink), || {
            tracing::debug!(target: "apdu", slot = 3, ">> {}", "00A4");
            tracing::debug!(target: "pkcs11", "filtered out");
        });
        let line = line.lock().unwrap().clone();
        assert!(line.ends_with(" DEBUG apdu: >> 00A4 slot=3\n"), "{line:?}");
        assert!(line.starts_with("20"), "a timestamp first: {line:?}");
    }
}
