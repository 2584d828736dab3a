//! "Driver and diagnostics": readers and tokens (as `ukey readers` finds
//! them), whether pcscd runs, where the PKCS#11 module is, whether p11-kit
//! and the user's NSS databases (Firefox profiles, Chromium's
//! `~/.pki/nssdb`) load it, registering it in those databases (NSS's own
//! `modutil`), and a diagnostic report to copy — with no PIN, PUK or key
//! material in it: the environment's secrets are named, never shown, and
//! the APDU trace is `apdu`'s redacted one.

use super::api::error_json;
use super::App;
use crate::cmd::{readers, status};
use crate::error::{CliError, ErrorKind, Result};
use crate::p11::MODULE_NAME;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Serialize)]
struct Pcsc {
    /// "running", "not_running" or "skipped" (UKEY_NO_PCSC).
    state: &'static str,
    message: Option<String>,
}

#[derive(Serialize)]
struct Module {
    path: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct P11Kit {
    /// p11-kit is installed.
    installed: bool,
    /// Its module files that load libukey_pkcs11.so.
    files: Vec<String>,
}

/// One NSS database of the user.
#[derive(Serialize, Clone)]
pub struct NssDb {
    /// "firefox" (a profile) or "chromium" (`~/.pki/nssdb`, also used by
    /// other NSS programs).
    kind: &'static str,
    path: String,
    /// libukey_pkcs11.so is registered (`pkcs11.txt`), and from where.
    registered: bool,
    library: Option<String>,
    /// Firefox has the profile open (its `lock` link is there): NSS
    /// databases must not be changed then.
    in_use: bool,
}

#[derive(Serialize)]
struct Diagnostics {
    ukey_version: &'static str,
    pcsc: Pcsc,
    readers: Option<readers::Report>,
    readers_error: Option<serde_json::Value>,
    module: Module,
    p11kit: P11Kit,
    nss: Vec<NssDb>,
    /// Firefox enterprise policies that load the module.
    firefox_policies: Vec<String>,
    /// Simulated tokens configured (UKEY_SIM, --sim).
    simulated: Vec<String>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
}

/// `library=` of libukey_pkcs11.so in an NSS database's `pkcs11.txt`.
fn registered_library(db: &Path) -> Option<String> {
    let text = std::fs::read_to_string(db.join("pkcs11.txt")).ok()?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("library="))
        .find(|lib| {
            Path::new(lib.trim())
                .file_name()
                .is_some_and(|n| n == MODULE_NAME)
        })
        .map(|l| l.trim().to_string())
}

fn nss_db(kind: &'static str, dir: PathBuf) -> NssDb {
    let library = registered_library(&dir);
    NssDb {
        kind,
        in_use: kind == "firefox" && std::fs::symlink_metadata(dir.join("lock")).is_ok(),
        registered: library.is_some(),
        library,
        path: dir.display().to_string(),
    }
}

fn is_nss_db(dir: &Path) -> bool {
    dir.join("cert9.db").is_file() || dir.join("pkcs11.txt").is_file()
}

/// The user's NSS databases: Chromium's (and other NSS programs')
/// `~/.pki/nssdb`, and every Firefox profile (Debian's and the snap's).
pub fn nss_databases() -> Vec<NssDb> {
    let Some(home) = home() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let pki = home.join(".pki/nssdb");
    if is_nss_db(&pki) {
        out.push(nss_db("chromium", pki));
    }
    for base in [".mozilla/firefox", "snap/firefox/common/.mozilla/firefox"] {
        let Ok(entries) = std::fs::read_dir(home.join(base)) else {
            continue;
        };
        let mut profiles: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && is_nss_db(p))
            .collect();
        profiles.sort();
        out.extend(profiles.into_iter().map(|p| nss_db("firefox", p)));
    }
    out
}

/// p11-kit module files (system and user) that load our module.
fn p11kit() -> P11Kit {
    let mut dirs = vec![
        PathBuf::from("/usr/share/p11-kit/modules"),
        PathBuf::from("/etc/pkcs11/modules"),
    ];
    if let Some(h) = home() {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| h.join(".config"));
        dirs.push(config.join("pkcs11/modules"));
    }
    let mut files = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let p = e.path();
            let names_us = std::fs::read_to_string(&p).is_ok_and(|t| {
                t.lines().any(|l| {
                    l.trim()
                        .strip_prefix("module:")
                        .is_some_and(|m| m.trim().ends_with(MODULE_NAME))
                })
            });
            if names_us {
                files.push(p.display().to_string());
            }
        }
    }
    files.sort();
    P11Kit {
        installed: ["/usr/bin/p11-kit", "/bin/p11-kit"]
            .iter()
            .any(|p| Path::new(p).is_file()),
        files,
    }
}

fn firefox_policies() -> Vec<String> {
    [
        "/etc/firefox/policies/policies.json",
        "/etc/firefox-esr/policies/policies.json",
        "/usr/lib/firefox-esr/distribution/policies.json",
        "/usr/lib/firefox/distribution/policies.json",
    ]
    .iter()
    .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(MODULE_NAME)))
    .map(|p| p.to_string())
    .collect()
}

fn collect(app: &App) -> Diagnostics {
    let mut sel = app.base.clone();
    sel.sims.retain(|p| p.is_file());
    let readers = readers::collect(&sel);
    let pcsc = match &readers {
        Ok(r) if r.pcsc.available => Pcsc {
            state: "running",
            message: None,
        },
        Ok(r) if r.pcsc.skipped => Pcsc {
            state: "skipped",
            message: r.pcsc.message.clone(),
        },
        Ok(r) => Pcsc {
            state: "not_running",
            message: r.pcsc.message.clone(),
        },
        Err(e) => Pcsc {
            state: "not_running",
            message: Some(e.message.clone()),
        },
    };
    let module = match crate::p11::module_path() {
        Ok(p) => Module {
            path: Some(p.display().to_string()),
            error: None,
        },
        Err(e) => Module {
            path: None,
            error: Some(e.message),
        },
    };
    let (readers, readers_error) = match readers {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(error_json(&e))),
    };
    Diagnostics {
        ukey_version: env!("CARGO_PKG_VERSION"),
        pcsc,
        readers,
        readers_error,
        module,
        p11kit: p11kit(),
        nss: nss_databases(),
        firefox_policies: firefox_policies(),
        simulated: app
            .base
            .sims
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    }
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Run `f` in a blocking thread while no operation uses the tokens.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> T + Send + 'static,
) -> Option<T> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let _module = app.module.lock().unwrap_or_else(|e| e.into_inner());
        f(&app)
    })
    .await
    .ok()
}

pub async fn diagnostics(State(app): State<Arc<App>>) -> Response<Body> {
    match blocking(&app, collect).await {
        Some(d) => json_response(
            StatusCode::OK,
            &serde_json::to_value(&d).unwrap_or_default(),
        ),
        None => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &error_json(&CliError::new("internal error").with_kind(ErrorKind::Internal)),
        ),
    }
}

/// Environment variables `ukey` reads; the secrets are only named.
fn environment() -> Vec<String> {
    const SECRET: [&str; 5] = [
        "UKEY_PIN",
        "UKEY_PUK",
        "UKEY_NEW_PIN",
        "UKEY_NEW_PUK",
        "UKEY_MGMT_KEY",
    ];
    let mut out: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.to_str()?.to_string();
            if !k.starts_with("UKEY_") {
                return None;
            }
            Some(if SECRET.contains(&k.as_str()) {
                format!("{k} is set (value not shown)")
            } else {
                format!("{k}={}", v.to_string_lossy())
            })
        })
        .collect();
    out.sort();
    out
}

fn report_text(app: &App) -> String {
    let d = collect(app);
    let mut sel = app.base.clone();
    sel.sims.retain(|p| p.is_file());
    let (st, apdus) = super::trace::capture_apdus(|| status::collect(&sel, app.window));
    let mut s = String::new();
    s += "ukey diagnostic report (no PIN, PUK or key material: secrets in the APDU trace are \
          redacted)\n";
    s += &format!(
        "ukey {} on {} {}\n",
        d.ukey_version,
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        s += &format!("kernel {}\n", v.trim());
    }
    if let Ok(v) = std::fs::read_to_string("/etc/os-release") {
        if let Some(name) = v.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")) {
            s += &format!("system {}\n", name.trim_matches('"'));
        }
    }
    s += &format!(
        "\nPC/SC (pcscd): {}{}\n",
        d.pcsc.state,
        d.pcsc
            .message
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    );
    s += "\nReaders and tokens:\n";
    match &d.readers {
        Some(r) if !r.readers.is_empty() => {
            for rd in &r.readers {
                s += &format!(
                    "  {} [{}] card {}{}{}{}{}\n",
                    rd.name,
                    serde_json::to_value(rd.source)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    if rd.card_present { "present" } else { "absent" },
                    rd.atr
                        .as_ref()
                        .map(|a| format!(", ATR {a}"))
                        .unwrap_or_default(),
                    rd.version
                        .as_ref()
                        .map(|v| format!(", PIV firmware {v}"))
                        .unwrap_or_default(),
                    rd.serial
                        .map(|n| format!(", serial {n}"))
                        .unwrap_or_default(),
                    rd.error
                        .as_ref()
                        .map(|e| format!(", error: {e}"))
                        .unwrap_or_default(),
                );
            }
        }
        Some(_) => s += "  none\n",
        None => s += &format!("  {}\n", d.readers_error.unwrap_or_default()),
    }
    s += &format!(
        "\nPKCS#11 module: {}\n",
        d.module
            .path
            .clone()
            .or(d.module.error.clone())
            .unwrap_or_default()
    );
    s += &format!(
        "p11-kit: {}{}\n",
        if d.p11kit.installed {
            "installed"
        } else {
            "not installed"
        },
        if d.p11kit.files.is_empty() {
            ", no module file loads ukey".to_string()
        } else {
            format!(", loads ukey from {}", d.p11kit.files.join(", "))
        }
    );
    s += "NSS databases:\n";
    if d.nss.is_empty() {
        s += "  none found\n";
    }
    for db in &d.nss {
        s += &format!(
            "  {} {}: {}{}\n",
            db.kind,
            db.path,
            match &db.library {
                Some(l) => format!("ukey registered ({l})"),
                None => "ukey not registered".into(),
            },
            if db.in_use {
                ", Firefox is using it"
            } else {
                ""
            }
        );
    }
    for p in &d.firefox_policies {
        s += &format!("  Firefox policy {p} loads ukey\n");
    }
    s += "\nEnvironment:\n";
    for e in environment() {
        s += &format!("  {e}\n");
    }
    s += "\nStatus (as `ukey status --json`):\n";
    let doc = match &st {
        Ok(r) => serde_json::to_string_pretty(r).unwrap_or_default(),
        Err(e) => error_json(e).to_string(),
    };
    s += &doc;
    s += "\n\nAPDU trace of that status read (no PIN is sent; secrets would be redacted):\n";
    for l in apdus {
        s += &format!("  {l}\n");
    }
    s
}

/// The diagnostic report, as text to copy.
pub async fn report(State(app): State<Arc<App>>) -> Response<Body> {
    let text = blocking(&app, report_text).await.unwrap_or_default();
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[derive(Deserialize)]
struct RegisterBody {
    /// The database's path, as the diagnostics listed it.
    path: String,
}

/// Register the module in one of the user's NSS databases (only one the
/// diagnostics found), with NSS's `modutil`.
fn register_in(path: &str) -> Result<NssDb> {
    let db = nss_databases()
        .into_iter()
        .find(|d| d.path == path)
        .ok_or_else(|| {
            CliError::new(format!("{path} is not one of your NSS databases"))
                .with_kind(ErrorKind::BadInput)
        })?;
    if db.registered {
        return Ok(db);
    }
    if db.in_use {
        return Err(CliError::new(format!(
            "Firefox is using {path}: close Firefox, then register the module"
        ))
        .with_kind(ErrorKind::Busy));
    }
    let module = crate::p11::module_path()?;
    let out = std::process::Command::new("modutil")
        .arg("-dbdir")
        .arg(format!("sql:{path}"))
        .args(["-add", "ukey", "-libfile"])
        .arg(&module)
        .arg("-force")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            CliError::new(format!(
                "running modutil: {e} (install it: apt install libnss3-tools)"
            ))
        })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        return Err(CliError::new(format!(
            "modutil could not register the module in {path}: {}",
            text.trim()
        )));
    }
    let now = nss_db(db.kind, PathBuf::from(path));
    if !now.registered {
        return Err(CliError::new(format!(
            "modutil ran, but {path}/pkcs11.txt does not list the module"
        )));
    }
    Ok(now)
}

pub async fn register(State(app): State<Arc<App>>, body: Bytes) -> Response<Body> {
    let Ok(b) = serde_json::from_slice::<RegisterBody>(&body) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &error_json(&CliError::new("malformed request").with_kind(ErrorKind::BadInput)),
        );
    };
    match blocking(&app, move |_| register_in(&b.path)).await {
        Some(Ok(db)) => json_response(
            StatusCode::OK,
            &serde_json::to_value(&db).unwrap_or_default(),
        ),
        Some(Err(e)) => json_response(StatusCode::BAD_REQUEST, &error_json(&e)),
        None => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &error_json(&CliError::new("internal error").with_kind(ErrorKind::Internal)),
        ),
    }
}
