//! `ukey ui` for the tests: the server as a child process (its URL read
//! from the first line of its stdout, its log in a file), and a plain
//! HTTP/1.1 client on a TCP socket, so every header a request carries or
//! lacks is the test's choice.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Option<Child>,
    /// The URL printed on the first line (with the secret).
    pub url: String,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    pub port: u16,
    /// Its stderr (the log).
    pub log: PathBuf,
}

impl Server {
    /// `ukey ui --no-open` on the simulated tokens `sims` (no PC/SC), with
    /// HOME = `home` and more environment from `env`; stderr goes to `log`.
    pub fn start(sims: &[&Path], home: &Path, log: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_with(sims, home, log, env, &[])
    }

    pub fn start_with(
        sims: &[&Path],
        home: &Path,
        log: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Server {
        let joined = sims
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mut cmd = ukey();
        cmd.env("UKEY_SIM", joined)
            .env("HOME", home)
            .env_remove("XDG_CONFIG_HOME")
            .env("UKEY_CONFIG", home.join("no-such-ukey.toml"))
            .args(["ui", "--no-open"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("ukey ui starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.contains("/?s="),
            "first line of stdout: {url:?}\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        let origin = url.split("/?s=").next().unwrap().to_string();
        let port = origin.rsplit(':').next().unwrap().parse().unwrap();
        Server {
            child: Some(child),
            url,
            origin,
            port,
            log: log.to_path_buf(),
        }
    }

    pub fn secret(&self) -> &str {
        self.url.split("/?s=").nth(1).unwrap()
    }

    /// Stop it as Ctrl-C does; returns its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code();
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ukey ui did not stop within 20 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait for it to end by itself (idle); its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code();
            }
            if start.elapsed() > within {
                let _ = child.kill();
                let _ = child.wait();
                panic!("ukey ui did not stop by itself within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Status line, headers and body, as bytes (for searching).
    pub fn raw(&self) -> Vec<u8> {
        let mut v = format!("{}\n", self.status).into_bytes();
        for (k, val) in &self.headers {
            v.extend_from_slice(format!("{k}: {val}\n").as_bytes());
        }
        v.extend_from_slice(&self.body);
        v
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap().trim(), 16).ok())
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            out.extend_from_slice(&b[..size.min(b.len())]);
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
    out
}

/// One request on a new connection (`Connection: close`); `host` is the
/// Host header as given (the server's own unless a test says otherwise).
/// Streams (server-sent events) are read for `read_for` at most.
pub fn http_raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    read_for: Duration,
) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to ukey ui");
    s.set_read_timeout(Some(read_for)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    let has_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
    if !has_host {
        req += &format!("Host: 127.0.0.1:{port}\r\n");
    }
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    if let Some(b) = body {
        req += &format!("Content-Length: {}\r\n", b.len());
    }
    req += "Connection: close\r\n\r\n";
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    s.write_all(&bytes).unwrap();
    let mut raw = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        if start.elapsed() > read_for {
            break;
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Reply {
    http_raw(port, method, path, headers, body, Duration::from_secs(120))
}

/// A browser's session: its cookie and the page's CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    /// Open the printed URL as a browser does: the secret buys the cookie.
    pub fn open(server: &Server) -> Session {
        let r = http(
            server.port,
            "GET",
            &format!("/?s={}", server.secret()),
            &[],
            None,
        );
        assert_eq!(r.status, 303, "{}", r.text());
        let set = r
            .header("set-cookie")
            .expect("a session cookie")
            .to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        let page = http(server.port, "GET", "/", &[("Cookie", &cookie)], None);
        assert_eq!(page.status, 200);
        let html = page.text();
        let csrf = html
            .split("name=\"ukey-csrf\" content=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("the CSRF token in the page")
            .to_string();
        Session { cookie, csrf }
    }

    /// A POST as the page sends it (cookie, Origin, CSRF token, JSON).
    pub fn post(&self, server: &Server, path: &str, body: &serde_json::Value) -> Reply {
        http(
            server.port,
            "POST",
            path,
            &[
                ("Cookie", &self.cookie),
                ("Origin", &server.origin),
                ("X-CSRF-Token", &self.csrf),
                ("Content-Type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        )
    }

    pub fn get(&self, server: &Server, path: &str) -> Reply {
        http(server.port, "GET", path, &[("Cookie", &self.cookie)], None)
    }
}

/// The status event the server has now (`{"status": ..., "error": ...}`),
/// once it shows `want` tokens.
pub fn status_with(server: &Server, s: &Session, want: usize) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let r = s.get(server, "/api/status");
        if r.status == 200 {
            let v = r.json();
            let n = v["status"]["tokens"].as_array().map_or(0, |a| a.len());
            if n == want {
                return v;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the server never showed {want} tokens: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ukey-sim` (built with the workspace, next to `ukey`).
pub fn ukey_sim_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_ukey"))
        .parent()
        .unwrap()
        .join("ukey-sim");
    assert!(
        p.is_file(),
        "{} is missing: build the workspace (cargo build --release --workspace)",
        p.display()
    );
    p
}

/// libukey_pkcs11.so next to `ukey`.
pub fn module_path() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ukey"))
        .parent()
        .unwrap()
        .join("libukey_pkcs11.so")
}

/// A fresh NSS database in `dir` (empty password), as Firefox and
/// Chromium make them.
pub fn nss_db(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let out = std::process::Command::new("certutil")
        .arg("-N")
        .arg("-d")
        .arg(format!("sql:{}", dir.display()))
        .arg("--empty-password")
        .output()
        .expect("certutil (libnss3-tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
