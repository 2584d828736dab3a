//! `ukey ui` as an attack surface: a local page that can use the PIN and
//! write to the token. Every request here is written by hand on a TCP
//! socket, so what it carries or lacks (secret, cookie, Host, Origin, CSRF
//! token) is the test's choice; the state file is the judge of "nothing
//! written" (byte-identical), the logs and every response the judge of
//! "the PIN appears nowhere".

mod common;

use common::ui::{http, http_raw, status_with, ukey_sim_bin, Server, Session};
use common::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const READER_PREFIX: &str = "ukey-sim ";

fn demo(dir: &Path) -> std::path::PathBuf {
    provision_demo(dir, "token", 4_242_301)
}

fn request_body(state: &Path, pin: &str) -> serde_json::Value {
    json!({
        "reader": format!("{READER_PREFIX}{}", state.display()),
        "serial": 4_242_301,
        "slot": "9a",
        "pin": pin,
        "op": "t1",
    })
}

#[test]
fn without_the_secret_every_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    let server = Server::start(&[&state], dir.path(), &dir.path().join("ui.log"), &[]);
    for path in [
        "/",
        "/app.js",
        "/app.css",
        "/api/status",
        "/api/events",
        "/api/diagnostics",
        "/api/report",
    ] {
        let r = http_raw(server.port, "GET", path, &[], None, Duration::from_secs(5));
        assert_eq!(r.status, 403, "GET {path} without a session: {}", r.text());
        assert!(!r.text().contains("schema_version"), "{path}: {}", r.text());
    }
    // A wrong secret, a forged cookie.
    let r = http(server.port, "GET", "/?s=00112233", &[], None);
    assert_eq!(r.status, 403);
    assert!(r.header("set-cookie").is_none());
    let r = http(
        server.port,
        "GET",
        "/api/status",
        &[("Cookie", "ukey_session=00ff")],
        None,
    );
    assert_eq!(r.status, 403);
    // The printed URL: a session cookie (HttpOnly, SameSite=Strict, Path=/)
    // and the secret leaves the address bar.
    let r = http(
        server.port,
        "GET",
        &format!("/?s={}", server.secret()),
        &[],
        None,
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/"));
    let cookie = r.header("set-cookie").unwrap();
    // Named after the port: every port of a host shares cookies.
    assert!(
        cookie.starts_with(&format!("ukey_session_{}=", server.port)),
        "{cookie}"
    );
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let s = Session::open(&server);
    let r = s.get(&server, "/api/status");
    assert_eq!(r.status, 200, "{}", r.text());
    // A POST with the page's Origin and CSRF token but no cookie.
    let r = http(
        server.port,
        "POST",
        "/api/request",
        &[
            ("Origin", &server.origin),
            ("X-CSRF-Token", &s.csrf),
            ("Content-Type", "application/json"),
        ],
        Some(request_body(&state, PIN).to_string().as_bytes()),
    );
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn a_wrong_host_is_refused_dns_rebinding() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    let server = Server::start(&[&state], dir.path(), &dir.path().join("ui.log"), &[]);
    let s = Session::open(&server);
    let hosts = [
        "evil.example".to_string(),
        format!("evil.example:{}", server.port),
        format!("localhost:{}", server.port),
        format!("127.0.0.1:{}", server.port + 1),
        format!("127.0.0.1.evil.example:{}", server.port),
        String::new(),
    ];
    for host in &hosts {
        for (method, path) in [
            ("GET", "/"),
            ("GET", "/api/status"),
            ("GET", &format!("/?s={}", server.secret()) as &str),
        ] {
            let r = http(
                server.port,
                method,
                path,
                &[("Host", host), ("Cookie", &s.cookie)],
                None,
            );
            assert_eq!(r.status, 421, "Host {host:?} {method} {path}: {}", r.text());
            assert!(r.header("set-cookie").is_none());
        }
    }
    let before = std::fs::read(&state).unwrap();
    let r = http(
        server.port,
        "POST",
        "/api/request",
        &[
            ("Host", &format!("evil.example:{}", server.port)),
            ("Cookie", &s.cookie),
            ("Origin", &format!("http://evil.example:{}", server.port)),
            ("X-CSRF-Token", &s.csrf),
            ("Content-Type", "application/json"),
        ],
        Some(request_body(&state, PIN).to_string().as_bytes()),
    );
    assert_eq!(r.status, 421);
    assert_eq!(std::fs::read(&state).unwrap(), before, "nothing written");
}

#[test]
fn posts_without_the_page_origin_or_csrf_token_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    let home = dir.path().join("home");
    common::ui::nss_db(&home.join(".pki/nssdb"));
    let server = Server::start(&[&state], &home, &dir.path().join("ui.log"), &[]);
    let s = Session::open(&server);
    let other = Session::open(&server);
    status_with(&server, &s, 1);
    let before = std::fs::read(&state).unwrap();
    let nssdb_before = std::fs::read(home.join(".pki/nssdb/pkcs11.txt")).unwrap_or_default();
    let bodies = [
        ("/api/request", request_body(&state, PIN)),
        (
            "/api/cancel",
            json!({"reader": format!("{READER_PREFIX}{}", state.display()), "serial": 4_242_301, "slot": "9a", "pin": PIN, "op": "t2"}),
        ),
        (
            "/api/install",
            json!({"reader": format!("{READER_PREFIX}{}", state.display()), "serial": 4_242_301, "file_name": "c.pem", "cert_hex": "00", "pin": PIN, "op": "t3"}),
        ),
        (
            "/api/nss/register",
            json!({"path": home.join(".pki/nssdb").display().to_string()}),
        ),
    ];
    let foreign = "http://evil.example";
    let other_port = format!("http://127.0.0.1:{}", server.port + 1);
    for (path, body) in &bodies {
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                "a foreign Origin",
                vec![("Origin", foreign), ("X-CSRF-Token", &s.csrf)],
            ),
            (
                "the Origin of another port",
                vec![("Origin", &other_port), ("X-CSRF-Token", &s.csrf)],
            ),
            ("no Origin", vec![("X-CSRF-Token", &s.csrf)]),
            ("no CSRF token", vec![("Origin", &server.origin)]),
            (
                "a wrong CSRF token",
                vec![("Origin", &server.origin), ("X-CSRF-Token", "0123")],
            ),
            (
                "another session's CSRF token",
                vec![("Origin", &server.origin), ("X-CSRF-Token", &other.csrf)],
            ),
        ];
        for (what, mut headers) in cases {
            headers.push(("Cookie", &s.cookie));
            headers.push(("Content-Type", "application/json"));
            let r = http(
                server.port,
                "POST",
                path,
                &headers,
                Some(body.to_string().as_bytes()),
            );
            assert_eq!(r.status, 403, "POST {path} with {what}: {}", r.text());
        }
    }
    // No CORS: a preflight is not answered with permissions.
    let r = http(
        server.port,
        "OPTIONS",
        "/api/request",
        &[
            ("Cookie", &s.cookie),
            ("Origin", foreign),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );
    assert_ne!(r.status, 200);
    assert_ne!(r.status, 204);
    assert!(
        r.headers
            .iter()
            .all(|(k, _)| !k.to_lowercase().starts_with("access-control")),
        "{:?}",
        r.headers
    );
    // Nothing was written: the token byte for byte, the NSS database.
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "the state file changed"
    );
    assert_eq!(
        std::fs::read(home.join(".pki/nssdb/pkcs11.txt")).unwrap_or_default(),
        nssdb_before
    );
    assert_eq!(load(&state).pin.tries_left, 3, "no PIN try spent");
    // The same request from the page (Origin + CSRF) is served.
    let r = s.post(&server, "/api/request", &request_body(&state, PIN));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(
        std::fs::read(&state).unwrap(),
        before,
        "the renewal is staged"
    );
}

#[test]
fn every_response_carries_a_strict_policy_and_no_cors() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    let server = Server::start(&[&state], dir.path(), &dir.path().join("ui.log"), &[]);
    let s = Session::open(&server);
    for path in [
        "/",
        "/app.js",
        "/app.css",
        "/api/status",
        "/api/diagnostics",
    ] {
        let r = s.get(&server, path);
        assert_eq!(r.status, 200, "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r
            .headers
            .iter()
            .all(|(k, _)| !k.to_lowercase().starts_with("access-control")));
    }
    // The page has no inline script or style: everything is in app.js/app.css.
    let html = s.get(&server, "/").text();
    assert!(html.contains("<script src=\"/app.js\""), "{html}");
    let inline = html
        .split("<script")
        .skip(1)
        .any(|tag| !tag.trim_start().starts_with("src="));
    assert!(!inline, "inline script in the page");
    for handler in [
        "onclick=",
        "onload=",
        "onerror=",
        "onsubmit=",
        "javascript:",
    ] {
        assert!(
            !html.contains(handler),
            "inline handler {handler} in the page"
        );
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from the network"
    );
    let js = s.get(&server, "/app.js").text();
    assert!(
        !js.contains("http://") && !js.contains("https://"),
        "nothing from the network"
    );
}

#[test]
fn the_listener_refuses_non_loopback_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    for addr in ["0.0.0.0:0", "192.0.2.1:8080", "[::]:0"] {
        let (_, err) = fails(
            ukey()
                .env("UKEY_SIM", &state)
                .args(["ui", "--no-open", "--listen", addr]),
            2,
        );
        assert!(err.contains("loopback"), "{addr}: {err}");
    }
}

/// In a private network namespace whose host has one more address
/// (192.0.2.1, a documentation address that exists only in there), the
/// server is reachable on 127.0.0.1 and not on the other address.
#[test]
fn the_listener_is_not_reachable_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    let script = r#"
set -e
ip link set lo up
ip addr add 192.0.2.1/32 dev lo
"$UKEY" ui --no-open >"$DIR/url" 2>"$DIR/ui.log" &
pid=$!
for i in $(seq 100); do [ -s "$DIR/url" ] && break; sleep 0.1; done
port=$(sed -n '1s|^http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$DIR/url")
echo "port=$port"
ss -ltnH | awk '{print "listen=" $4}'
if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "loopback=open"; else echo "loopback=refused"; fi
if (exec 3<>/dev/tcp/192.0.2.1/$port) 2>/dev/null; then echo "other=open"; else echo "other=refused"; fi
kill -INT $pid
wait $pid || true
"#;
    let out = std::process::Command::new("unshare")
        .args(["--net", "bash", "-c", script])
        .env("UKEY", env!("CARGO_BIN_EXE_ukey"))
        .env("DIR", dir.path())
        .env("UKEY_SIM", &state)
        .env("UKEY_NO_PCSC", "1")
        .env("HOME", dir.path())
        .output()
        .expect("unshare (util-linux)");
    let (so, se) = text(&out);
    assert!(
        out.status.success(),
        "unshare --net (needs root):\n{so}\n{se}"
    );
    let port = so
        .lines()
        .find_map(|l| l.strip_prefix("port="))
        .expect("a port");
    assert!(!port.is_empty(), "{so}");
    let listening: Vec<&str> = so
        .lines()
        .filter_map(|l| l.strip_prefix("listen="))
        .collect();
    assert_eq!(
        listening,
        vec![format!("127.0.0.1:{port}").as_str()],
        "{so}"
    );
    assert!(so.contains("loopback=open"), "{so}");
    assert!(so.contains("other=refused"), "{so}");
}

/// The PIN goes once per operation to the server and comes back in no
/// response and no log line: a distinctive PIN (and a wrong one) through a
/// whole renewal with every log on (UKEY_LOG=debug for ukey ui and the
/// module it loads), every response body and the event stream recorded.
#[test]
fn the_pin_is_in_no_log_and_no_response() {
    const MY_PIN: &str = "q7Zx9Wp2";
    const WRONG: &str = "k3Vb8Jm5";
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    ok(ukey()
        .arg("--sim")
        .arg(&state)
        .args(["pin", "change", "--pin", PIN, "--new-pin", MY_PIN]));
    let module_log = dir.path().join("module.log");
    let mut server = Server::start(
        &[&state],
        dir.path(),
        &dir.path().join("ui.log"),
        &[
            ("UKEY_LOG", "debug"),
            ("UKEY_LOG_FILE", module_log.to_str().unwrap()),
        ],
    );
    let mut responses: Vec<Vec<u8>> = Vec::new();
    let s = Session::open(&server);
    responses.push(s.get(&server, "/").raw());
    let st = status_with(&server, &s, 1);
    // The page's data is `ukey status --json`'s document.
    schema_check(Some("status"), &st["status"]);
    responses.push(st.to_string().into_bytes());
    // The event stream, read while the operations run.
    let port = server.port;
    let cookie = s.cookie.clone();
    let events = std::thread::spawn(move || {
        http_raw(
            port,
            "GET",
            "/api/events",
            &[("Cookie", &cookie)],
            None,
            Duration::from_secs(8),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    let wrong = s.post(&server, "/api/request", &request_body(&state, WRONG));
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.json()["kind"], "pin_incorrect");
    assert_eq!(wrong.json()["tries_left"], 2);
    schema_check(Some("error"), &wrong.json());
    responses.push(wrong.raw());
    let r = s.post(&server, "/api/request", &request_body(&state, MY_PIN));
    assert_eq!(r.status, 200, "{}", r.text());
    schema_check(Some("renew_request"), &r.json());
    let csr = r.json()["csr_pem"].as_str().unwrap().to_string();
    responses.push(r.raw());
    let req = dir.path().join("req.pem");
    std::fs::write(&req, &csr).unwrap();
    let cert = dir.path().join("cert.pem");
    ok(std::process::Command::new(ukey_sim_bin())
        .args(["ca", "issue", "--ca-dir"])
        .arg(dir.path().join("ca"))
        .arg("--csr")
        .arg(&req)
        .arg("--out")
        .arg(&cert));
    let cert_hex = hex::encode(std::fs::read(&cert).unwrap());
    let who = |extra: serde_json::Value| {
        let mut v = json!({
            "reader": format!("{READER_PREFIX}{}", state.display()),
            "serial": 4_242_301,
            "file_name": "cert.pem",
            "cert_hex": cert_hex,
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    let r = s.post(&server, "/api/preview", &who(json!({})));
    assert_eq!(r.status, 200, "{}", r.text());
    responses.push(r.raw());
    let r = s.post(
        &server,
        "/api/install",
        &who(json!({"pin": MY_PIN, "op": "i1"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["promoted"], true);
    schema_check(Some("renew_install"), &r.json());
    responses.push(r.raw());
    // A malformed body with the PIN where a number belongs: not echoed.
    let bad = json!({"reader": "x", "serial": MY_PIN, "slot": "9a", "pin": MY_PIN, "op": "b"});
    let r = s.post(&server, "/api/request", &bad);
    assert_eq!(r.status, 400);
    responses.push(r.raw());
    responses.push(s.get(&server, "/api/diagnostics").raw());
    responses.push(s.get(&server, "/api/report").raw());
    let ev = events.join().unwrap();
    assert!(ev.text().contains("event: status"), "{}", ev.text());
    assert!(ev.text().contains("event: op"), "{}", ev.text());
    responses.push(ev.raw());
    assert_eq!(server.stop(), Some(0));
    let ui_log = server.log_text();
    let module = std::fs::read_to_string(&module_log).unwrap_or_default();
    // The logs were on: requests and APDUs are in them.
    assert!(ui_log.contains("POST /api/request -> 200"), "{ui_log}");
    assert!(
        module.contains(">> ") || ui_log.contains(">> "),
        "no APDU logged"
    );
    let forms = |p: &str| {
        vec![
            p.to_string(),
            hex::encode(p.as_bytes()),
            hex::encode_upper(p.as_bytes()),
        ]
    };
    for secret in [MY_PIN, WRONG] {
        for form in forms(secret) {
            for (i, r) in responses.iter().enumerate() {
                let text = String::from_utf8_lossy(r);
                assert!(
                    !text.contains(&form),
                    "response {i} holds the PIN ({form}):\n{text}"
                );
            }
            assert!(
                !ui_log.contains(&form),
                "ukey ui's log holds the PIN ({form})"
            );
            assert!(
                !module.contains(&form),
                "the module's log holds the PIN ({form})"
            );
        }
    }
}

#[test]
fn it_stops_by_itself_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    let start = std::time::Instant::now();
    let mut server = Server::start_with(
        &[&state],
        dir.path(),
        &dir.path().join("ui.log"),
        &[],
        &["--idle", "2"],
    );
    assert_eq!(server.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(
        server.log_text().contains("stopping (idle)"),
        "{}",
        server.log_text()
    );
}

/// "Cancel renewal" (the page confirms first): the staged key and the
/// marker go, the pair in use stays, and the page is told.
#[test]
fn cancel_discards_the_staged_key_and_keeps_the_pair_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let state = demo(dir.path());
    let server = Server::start(&[&state], dir.path(), &dir.path().join("ui.log"), &[]);
    let s = Session::open(&server);
    status_with(&server, &s, 1);
    let before = load(&state);
    let r = s.post(&server, "/api/request", &request_body(&state, PIN));
    assert_eq!(r.status, 200, "{}", r.text());
    let staged = r.json()["staged_slot"].as_str().unwrap().to_string();
    let mut body = request_body(&state, PIN);
    body["op"] = "c1".into();
    let r = s.post(&server, "/api/cancel", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    schema_check(Some("renew_cancel"), &r.json());
    assert_eq!(r.json()["cancelled"][0]["target"], "9a");
    assert_eq!(r.json()["cancelled"][0]["staged_slot"], staged.as_str());
    assert_eq!(r.json()["cancelled"][0]["staged_key_deleted"], true);
    let after = load(&state);
    assert_eq!(
        serde_json::to_value(&after.keys).unwrap(),
        serde_json::to_value(&before.keys).unwrap(),
        "the keys are as before the request"
    );
    assert!(
        !after.objects.contains_key(&0x5F_FF10),
        "the marker is gone"
    );
    // The watcher shows it: no renewal next to 9A any more.
    let start = std::time::Instant::now();
    loop {
        let st = status_with(&server, &s, 1);
        let slot = st["status"]["tokens"][0]["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["slot"] == "9a")
            .unwrap()
            .clone();
        if slot["renewal"].is_null() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{slot:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
