//! `ukey ui` in a real browser: headless Chromium (Debian `chromium` +
//! `chromium-driver`) driven over WebDriver (the `fantoccini` crate)
//! through the renewal journey of the users in USERS.md, on simulated demo
//! tokens (UKEY_SIM, no PC/SC). The judges are third-party tools: `openssl
//! req -verify` for the request, OpenSC's `pkcs11-tool` (through our
//! module) and `openssl dgst -verify` for the renewed key, NSS's `modutil`
//! for the registration; the page is only ever clicked, never trusted.
//!
//! Screenshots of every page (English and Chinese) go to
//! `target/tmp/ui-screenshots/` (`UKEY_UI_SCREENSHOTS=DIR` elsewhere).

mod common;

use common::ui::{module_path, nss_db, ukey_sim_bin, Server};
use common::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

// ---- the browser ---------------------------------------------------------

struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver and the browser it started (its process group),
        // also when a test failed before closing the session.
        // SAFETY: signalling the process group we created for our child.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver on a free loopback port.
fn chromedriver() -> Driver {
    chromedriver_with(&[])
}

/// The same, with more environment for the browser.
fn chromedriver_with(env: &[(&str, &Path)]) -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian chromium-driver; scripts/install-deps installs it)");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < WAIT, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        port,
        profile: tempfile::tempdir().unwrap(),
    }
}

/// A headless Chromium whose language is `lang` ("en-US", "zh-CN"), with a
/// fresh profile and nothing reaching out to the network.
async fn browser(d: &Driver, lang: &str) -> Client {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars",
                format!("--user-data-dir={}", d.profile.path().display()),
                format!("--lang={lang}"),
                "--window-size=1280,1000",
            ],
            "prefs": { "intl.accept_languages": lang },
        },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a Chromium session")
}

async fn find(c: &Client, css: &str) -> Element {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

/// Wait until the element `css` shows text containing `want`.
async fn text_of(c: &Client, css: &str, want: &str) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < WAIT {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if let Ok(t) = e.text().await {
                if t.contains(want) {
                    return t;
                }
                last = t;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {want:?}; last text: {last:?}");
}

/// Click `css` (found again if the page redrew it meanwhile: a token
/// event redraws the lists).
async fn click(c: &Client, css: &str) {
    let mut last = None;
    for _ in 0..5 {
        match find(c, css).await.click().await {
            Ok(()) => return,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("clicking {css}: {last:?}");
}

async fn js(c: &Client, script: &str) -> serde_json::Value {
    c.execute(script, vec![]).await.unwrap()
}

async fn enter_pin(c: &Client, pin: &str) {
    find(c, "#pin-dialog[open] #pin-input").await;
    let input = find(c, "#pin-input").await;
    input.send_keys(pin).await.unwrap();
    click(c, "#pin-ok").await;
}

fn shots_dir() -> PathBuf {
    let d = std::env::var_os("UKEY_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn screenshot(c: &Client, name: &str) -> Vec<u8> {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), &png).unwrap();
    png
}

// ---- the tokens -----------------------------------------------------------

fn sim_status(state: &Path) -> serde_json::Value {
    let (so, _) = ok(ukey().arg("--json").arg("--sim").arg(state).arg("status"));
    json(&so)
}

fn phase_9a(state: &Path) -> Option<String> {
    let st = sim_status(state);
    st["tokens"][0]["slots"]
        .as_array()?
        .iter()
        .find(|s| s["slot"] == "9a")?["renewal"]["phase"]
        .as_str()
        .map(str::to_string)
}

/// `ukey renew install CERT` with the token pulled after `n` APDUs from
/// when it asks for the PIN; returns its exit code.
fn install_pulled_after(state: &Path, cert: &Path, n: u32) -> Option<i32> {
    let mut child = ukey()
        .arg("--sim")
        .arg(state)
        .args(["--pin-stdin", "renew", "install"])
        .arg(cert)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        assert_ne!(err.read_line(&mut line).unwrap(), 0, "install ended early");
        if line.contains("Do not pull the token") {
            break;
        }
    }
    ukey_sim::Control::RemoveAfter(n).send(state).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{PIN}\n").as_bytes()).unwrap();
    drop(stdin);
    std::io::copy(&mut err, &mut std::io::sink()).unwrap();
    let code = child.wait().unwrap().code();
    ukey_sim::Control::Insert.send(state).unwrap();
    code
}

/// A demo token (serial 4242102) in `dir` whose 9A renewal was requested,
/// issued, and installed until the token was pulled in the middle: the
/// certificate is on the token, the promotion unfinished. Returns the
/// state file and the certificate.
fn interrupted_token(dir: &Path) -> (PathBuf, PathBuf) {
    let state = provision_demo(dir, "b", 4_242_102);
    let req = dir.join("req-b.pem");
    ok(ukey()
        .arg("--sim")
        .arg(&state)
        .args(["--pin", PIN, "renew", "request", "--slot", "9a", "--out"])
        .arg(&req));
    let cert = dir.join("cert-b.pem");
    ok(Command::new(ukey_sim_bin())
        .args(["ca", "issue", "--ca-dir"])
        .arg(dir.join("ca"))
        .arg("--csr")
        .arg(&req)
        .arg("--out")
        .arg(&cert));
    let staged = std::fs::read(&state).unwrap();
    // The number of APDUs after which a pull leaves the install halfway:
    // few enough that it did not finish, enough that it wrote.
    let (mut lo, mut hi) = (0u32, 256u32);
    for _ in 0..12 {
        let mid = (lo + hi) / 2;
        std::fs::write(&state, &staged).unwrap();
        let code = install_pulled_after(&state, &cert, mid);
        if code == Some(0) {
            hi = mid;
            continue;
        }
        assert_eq!(code, Some(5), "pulled after {mid} APDUs: exit 5");
        match phase_9a(&state).as_deref() {
            Some("awaiting-certificate") => lo = mid,
            Some("certificate-written" | "promoting" | "promoted") => return (state, cert),
            other => panic!("pulled after {mid} APDUs: phase {other:?}"),
        }
    }
    panic!("no pull left the install halfway");
}

// ---- the journey ----------------------------------------------------------

/// The whole renewal, as the users in USERS.md go through it, on demo
/// token 4242101 (9A expires in 25 days), with a second key (4242102,
/// an install interrupted halfway) plugged in during the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_renewal_journey_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    nss_db(&home.join(".pki/nssdb"));
    nss_db(&home.join(".mozilla/firefox/abcd1234.default-esr"));
    let a = provision_demo(dir.path(), "a", 4_242_101);
    let b = dir.path().join("b.json");
    let spare = dir.path().join("spare");
    std::fs::create_dir(&spare).unwrap();
    let (b_spare, cert_b) = interrupted_token(&spare);
    let sims = [a.as_path(), b.as_path()];
    let log = dir.path().join("ui.log");
    let mut server = Server::start(&sims, &home, &log, &[]);
    let driver = chromedriver();
    let c = browser(&driver, "en-US").await;

    // My certificates: 9A renewable, with its days left.
    c.goto(&server.url).await.unwrap();
    assert_eq!(
        c.current_url().await.unwrap().as_str(),
        format!("{}/", server.origin),
        "the secret leaves the address bar"
    );
    let key_a = ".card.token[data-serial='4242101']";
    let verdict = text_of(
        &c,
        &format!("{key_a} tr[data-slot='9a'] .verdict"),
        "Renewable now",
    )
    .await;
    assert!(verdict.contains("25 days"), "{verdict}");
    let days = text_of(&c, &format!("{key_a} tr[data-slot='9a'] .days"), "days").await;
    assert_eq!(days, "25 days");
    text_of(
        &c,
        &format!("{key_a} .counters"),
        "PIN tries remaining: 3 of 3",
    )
    .await;
    text_of(&c, &format!("{key_a} tr[data-slot='9c'] .verdict"), "Valid").await;
    text_of(&c, "#live", "live").await;
    screenshot(&c, "en-my-certificates").await;

    // Certificate renewal: Apply, a wrong PIN shows the tries left.
    click(&c, "#tab-renew").await;
    screenshot(&c, "en-certificate-renewal").await;
    click(
        &c,
        &format!("{key_a} .row[data-slot='9a'] button[data-action='apply']"),
    )
    .await;
    text_of(&c, "#pin-title", "4242101").await;
    text_of(&c, "#pin-tries", "PIN tries remaining: 3 of 3").await;
    enter_pin(&c, "999999").await;
    text_of(
        &c,
        "#pin-dialog[open] #pin-error",
        "Wrong PIN. 2 tries left.",
    )
    .await;
    text_of(&c, "#pin-tries", "2 of 3").await;
    assert_eq!(load(&a).pin.tries_left, 2, "the card's counter");
    assert!(
        js(&c, "return document.getElementById('pin-last').hidden").await == true,
        "no last-try warning with 2 tries left"
    );
    enter_pin(&c, "999998").await;
    text_of(&c, "#pin-dialog[open] #pin-error", "1 try left").await;
    let loud = text_of(&c, "#pin-last", "LAST TRY").await;
    assert!(loud.contains("BLOCKS"), "{loud}");
    assert_eq!(load(&a).pin.tries_left, 1);
    screenshot(&c, "en-pin-last-try").await;
    // The right PIN stages the renewal and offers the request.
    enter_pin(&c, PIN).await;
    let csr_box = find(&c, "#flow[data-view='request'] #csr").await;
    let csr = csr_box.prop("value").await.unwrap().unwrap();
    assert!(
        csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{csr}"
    );
    assert_eq!(
        load(&a).pin.tries_left,
        3,
        "the right PIN resets the counter"
    );
    text_of(&c, "#flow", "Send this request").await;
    let href = find(&c, "#csr-download")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(href.starts_with("blob:"), "{href}");
    screenshot(&c, "en-request").await;
    let req = dir.path().join("req.pem");
    std::fs::write(&req, &csr).unwrap();
    let verified = openssl(&[
        "req",
        "-in",
        req.to_str().unwrap(),
        "-verify",
        "-noout",
        "-subject",
    ]);
    assert!(verified.contains("verify OK"), "{verified}");
    assert!(verified.contains("CN = Demo User"), "{verified}");

    // The CA issues the certificate (days later: the page and the program
    // are closed meanwhile; the staged renewal lives on the token).
    let cert = dir.path().join("cert.pem");
    ok(Command::new(ukey_sim_bin())
        .args(["ca", "issue", "--ca-dir"])
        .arg(dir.path().join("ca"))
        .arg("--csr")
        .arg(&req)
        .args(["--days", "365", "--out"])
        .arg(&cert));
    assert_eq!(server.stop(), Some(0));
    let mut server = Server::start(&sims, &home, &log, &[]);
    c.goto(&server.url).await.unwrap();
    js(&c, "window.__sameDocument = 42; return 0").await;
    click(&c, "#tab-renew").await;
    text_of(
        &c,
        &format!("{key_a} .row[data-slot='9a'] .phase"),
        "waiting for the CA's certificate",
    )
    .await;

    // Install certificate: the file, what will happen and the checks.
    click(
        &c,
        &format!("{key_a} .row[data-slot='9a'] button[data-action='install']"),
    )
    .await;
    find(&c, "#cert-file")
        .await
        .send_keys(cert.to_str().unwrap())
        .await
        .unwrap();
    find(&c, "#flow[data-view='preview'] #checks").await;
    let checks = js(
        &c,
        "return [...document.querySelectorAll('#checks li')].map(e => e.dataset.check)",
    )
    .await;
    for check in [
        "wrong_key",
        "ca",
        "expired",
        "not_yet_valid",
        "key_usage",
        "issuer_changed",
    ] {
        assert!(
            checks.as_array().unwrap().iter().any(|c| c == check),
            "check {check} not shown as passed: {checks}"
        );
    }
    text_of(&c, "#flow", "move the new key from slot 82 into 9A").await;
    screenshot(&c, "en-install-preview").await;
    // The "do not remove the key" banner: seen while the install writes.
    js(
        &c,
        "window.__banner = false;
         const b = document.getElementById('banner');
         new MutationObserver(() => { if (!b.hidden) window.__banner = b.textContent; })
           .observe(b, { attributes: true });
         return 0",
    )
    .await;
    click(&c, "#do-install").await;
    enter_pin(&c, PIN).await;
    let validity = text_of(&c, "#flow[data-view='installed'] #new-validity", "365 days").await;
    assert!(validity.contains("New validity"), "{validity}");
    let steps = js(
        &c,
        "return [...document.querySelectorAll('#flow li.done')].map(e => e.dataset.step)",
    )
    .await;
    assert_eq!(
        steps,
        serde_json::json!([
            "certificate-into-staged-slot",
            "claim-renewal",
            "certificate-into-target-slot",
            "delete-old-key",
            "move-key",
            "clear-staged-slot",
            "clear-marker"
        ]),
        "the steps, as the token reported them"
    );
    screenshot(&c, "en-installed").await;
    let banner = js(&c, "return window.__banner").await;
    assert!(
        banner
            .as_str()
            .is_some_and(|t| t.contains("Do not remove the key")),
        "the banner was not shown during the install: {banner}"
    );
    assert_eq!(
        js(&c, "return document.getElementById('banner').hidden").await,
        true
    );

    // The token: 9A holds the CA's certificate and its key signs
    // (OpenSC's pkcs11-tool through our module; openssl verifies).
    let renewed = dir.path().join("renewed.pem");
    ok(ukey()
        .arg("--sim")
        .arg(&a)
        .args(["cert", "export", "--slot", "9a", "--out"])
        .arg(&renewed));
    let der = |p: &Path| ukey_sim::ca::pem_decode(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert_eq!(der(&renewed), der(&cert), "9A holds the CA's certificate");
    let msg = dir.path().join("msg.txt");
    std::fs::write(&msg, "signed with the renewed key\n").unwrap();
    let sig = dir.path().join("sig.bin");
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module_path())
        .args([
            "--login",
            "--pin",
            PIN,
            "--sign",
            "--id",
            "01",
            "-m",
            "SHA256-RSA-PKCS",
            "-i",
        ])
        .arg(&msg)
        .arg("-o")
        .arg(&sig)
        .env("UKEY_SIM", &a)
        .env("UKEY_NO_PCSC", "1")
        .output()
        .expect("pkcs11-tool (opensc)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pubkey = dir.path().join("renewed.pub");
    let pk = openssl(&[
        "x509",
        "-in",
        renewed.to_str().unwrap(),
        "-pubkey",
        "-noout",
    ]);
    std::fs::write(&pubkey, pk).unwrap();
    let v = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        pubkey.to_str().unwrap(),
        "-signature",
        sig.to_str().unwrap(),
        msg.to_str().unwrap(),
    ]);
    assert!(v.contains("Verified OK"), "{v}");

    // My certificates shows the new validity.
    click(&c, "#tab-certs").await;
    let days = text_of(&c, &format!("{key_a} tr[data-slot='9a'] .days"), "365").await;
    assert_eq!(days, "365 days");
    text_of(&c, &format!("{key_a} tr[data-slot='9a'] .verdict"), "Valid").await;

    // A second key plugged in appears without a reload; the two are
    // shown apart, each action names its key.
    std::fs::rename(&b_spare, &b).unwrap();
    let key_b = ".card.token[data-serial='4242102']";
    text_of(&c, &format!("{key_b} h2"), "Key 4242102").await;
    text_of(&c, &format!("{key_a} h2"), "Key 4242101").await;
    assert_eq!(
        js(&c, "return window.__sameDocument").await,
        42,
        "the page was not reloaded"
    );
    screenshot(&c, "en-two-keys").await;

    // Its interrupted install shows "Finish installation"; finishing it
    // with the same certificate file completes it.
    click(&c, "#tab-renew").await;
    text_of(
        &c,
        &format!("{key_b} .row[data-slot='9a'] .phase"),
        "interrupted",
    )
    .await;
    let finish = find(
        &c,
        &format!("{key_b} .row[data-slot='9a'] button[data-action='finish']"),
    )
    .await;
    assert_eq!(finish.text().await.unwrap(), "Finish installation");
    screenshot(&c, "en-finish-installation").await;
    click(
        &c,
        &format!("{key_b} .row[data-slot='9a'] button[data-action='finish']"),
    )
    .await;
    text_of(&c, "#flow h2", "Finish the installation on key 4242102").await;
    find(&c, "#cert-file")
        .await
        .send_keys(cert_b.to_str().unwrap())
        .await
        .unwrap();
    click(&c, "#flow[data-view='preview'] #do-install").await;
    text_of(&c, "#pin-title", "4242102").await;
    enter_pin(&c, PIN).await;
    text_of(&c, "#flow[data-view='installed'] #new-validity", "days").await;
    assert_eq!(phase_9a(&b), None, "key 4242102: nothing staged any more");
    click(&c, "#flow-close").await;

    // Driver and diagnostics: readers, pcscd, the module, NSS databases;
    // registering the module in the Chromium/NSS database.
    click(&c, "#tab-diag").await;
    text_of(&c, "#diag-readers", "4242101").await;
    text_of(&c, "#diag-readers", "4242102").await;
    text_of(&c, "#diag-readers", "5.7.1").await;
    text_of(&c, "#diag-pcscd", "not used").await;
    text_of(&c, "#diag-module", "libukey_pkcs11.so").await;
    let nssdb = home.join(".pki/nssdb");
    let row = format!("#diag-nss .row[data-path='{}']", nssdb.display());
    text_of(&c, &row, "ukey not registered").await;
    text_of(&c, "#diag-nss", "abcd1234.default-esr").await;
    screenshot(&c, "en-diagnostics").await;
    click(&c, &format!("{row} button[data-action='register']")).await;
    text_of(&c, &row, "ukey registered").await;
    let listed = Command::new("modutil")
        .args(["-list", "-dbdir"])
        .arg(format!("sql:{}", nssdb.display()))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listed.contains("ukey"), "{listed}");
    assert!(listed.contains(module_path().to_str().unwrap()), "{listed}");
    // The diagnostic report: no PIN, the APDU trace redacted.
    click(&c, "#report-copy").await;
    let report = find(&c, "#report")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(report.contains("APDU trace"), "{report}");
    assert!(
        report.contains(">> 00A40400"),
        "the SELECT is in the trace: {report}"
    );
    assert!(report.contains("4242102"), "{report}");
    for secret in [PIN, "313233343536", "999999", "999998"] {
        assert!(!report.contains(secret), "the report holds {secret}");
    }
    assert_eq!(server.stop(), Some(0));
    c.close().await.unwrap();
}

// ---- the Chinese page -------------------------------------------------------

/// A screenshot turned into ink (dark pixels) and its size.
#[derive(PartialEq, Eq)]
struct Ink {
    w: u32,
    h: u32,
    bits: Vec<bool>,
}

impl std::fmt::Debug for Ink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} with {} dark pixels", self.w, self.h, self.count())
    }
}

impl Ink {
    fn of(png_bytes: &[u8]) -> Ink {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let channels = match info.color_type {
            png::ColorType::Rgba => 4,
            png::ColorType::Rgb => 3,
            png::ColorType::GrayscaleAlpha => 2,
            _ => 1,
        };
        let bits = buf[..info.buffer_size()]
            .chunks(channels)
            .map(|p| {
                let lum = if channels >= 3 {
                    (u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000
                } else {
                    u32::from(p[0])
                };
                lum < 128
            })
            .collect();
        Ink {
            w: info.width,
            h: info.height,
            bits,
        }
    }

    fn count(&self) -> usize {
        self.bits.iter().filter(|b| **b).count()
    }
}

/// Render each character alone in a box of the page's font and return
/// each box's ink.
async fn glyphs(c: &Client, chars: &[char]) -> Vec<Ink> {
    let list: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
    js_with(
        c,
        "const old = document.getElementById('glyph-test'); if (old) old.remove();
         const box = document.createElement('div');
         box.id = 'glyph-test';
         box.style.cssText = 'position:fixed;left:0;top:0;z-index:9999;background:#fff;padding:8px';
         arguments[0].forEach((ch, i) => {
           const s = document.createElement('span');
           s.className = 'glyph';
           s.textContent = ch;
           s.style.cssText = 'display:inline-block;width:72px;height:72px;font-size:56px;line-height:72px;text-align:center;color:#000;background:#fff;overflow:hidden';
           box.appendChild(s);
         });
         document.body.appendChild(box);
         return 0;",
        serde_json::json!(list),
    )
    .await;
    let mut out = Vec::new();
    for e in c
        .find_all(Locator::Css("#glyph-test .glyph"))
        .await
        .unwrap()
    {
        out.push(Ink::of(&e.screenshot().await.unwrap()));
    }
    js(
        c,
        "document.getElementById('glyph-test').remove(); return 0",
    )
    .await;
    out
}

/// The first sign of tofu among `chars` rendered as `cjk`, if any: a
/// glyph without ink, one that looks like the .notdef box, two alike.
fn tofu_in(chars: &[char], cjk: &[Ink], notdef: &Ink) -> Option<String> {
    for (ch, ink) in chars.iter().zip(cjk) {
        if ink.count() <= 50 {
            return Some(format!("{ch} has no ink ({ink:?})"));
        }
        if ink == notdef {
            return Some(format!("{ch} renders as the .notdef box"));
        }
    }
    for i in 0..cjk.len() {
        for j in i + 1..cjk.len() {
            if cjk[i] == cjk[j] {
                return Some(format!("{} and {} render alike", chars[i], chars[j]));
            }
        }
    }
    None
}

/// The tofu check is able to fail: the same characters in a browser that
/// sees one Latin font only (a fontconfig of DejaVu Sans) are found to be
/// tofu.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tofu_check_sees_tofu_without_a_cjk_font() {
    let dir = tempfile::tempdir().unwrap();
    let fonts = dir.path().join("fonts");
    std::fs::create_dir(&fonts).unwrap();
    std::os::unix::fs::symlink(
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        fonts.join("DejaVuSans.ttf"),
    )
    .unwrap();
    let conf = dir.path().join("fonts.conf");
    std::fs::write(
        &conf,
        format!(
            "<?xml version=\"1.0\"?><!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\
             <fontconfig><dir>{}</dir><cachedir>{}</cachedir></fontconfig>",
            fonts.display(),
            dir.path().join("cache").display()
        ),
    )
    .unwrap();
    let a = provision_demo(dir.path(), "a", 4_242_121);
    let mut server = Server::start(&[&a], dir.path(), &dir.path().join("ui.log"), &[]);
    let driver = chromedriver_with(&[("FONTCONFIG_FILE", &conf)]);
    let c = browser(&driver, "zh-CN").await;
    c.goto(&server.url).await.unwrap();
    text_of(&c, "#tab-certs", "我的证书").await;
    let chars: Vec<char> = "书动断期的我与续证诊驱".chars().collect();
    let cjk = glyphs(&c, &chars).await;
    let none = ['\u{0378}', '\u{0379}', '\u{0380}'];
    let tofu = glyphs(&c, &none).await;
    let found = tofu_in(&chars, &cjk, &tofu[0]);
    assert!(found.is_some(), "tofu went unnoticed");
    assert_eq!(server.stop(), Some(0));
    c.close().await.unwrap();
}

async fn js_with(c: &Client, script: &str, arg: serde_json::Value) -> serde_json::Value {
    c.execute(script, vec![arg]).await.unwrap()
}

/// The page in Chinese (from the browser's language): the tabs read
/// 我的证书 / 证书续期 / 驱动与诊断, and the characters render as glyphs,
/// not tofu: each one has ink, all differ from each other, and none looks
/// like what the same font stack draws for characters no font has (the
/// .notdef box, identical for all of them — which this test also checks,
/// so a missing CJK font could not pass unnoticed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chinese_page_renders_its_text_not_tofu() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    nss_db(&home.join(".pki/nssdb"));
    let a = provision_demo(dir.path(), "a", 4_242_111);
    // A staged renewal, so the renewal tab shows its states.
    ok(ukey()
        .arg("--sim")
        .arg(&a)
        .args(["--pin", PIN, "renew", "request", "--slot", "9a", "--out"])
        .arg(dir.path().join("req.pem")));
    let b = provision_demo(&dir.path().join("b"), "b", 4_242_112);
    let mut server = Server::start(&[&a, &b], &home, &dir.path().join("ui.log"), &[]);
    let driver = chromedriver();
    let c = browser(&driver, "zh-CN").await;
    c.goto(&server.url).await.unwrap();
    assert_eq!(text_of(&c, "#tab-certs", "我的证书").await, "我的证书");
    assert_eq!(text_of(&c, "#tab-renew", "证书续期").await, "证书续期");
    assert_eq!(text_of(&c, "#tab-diag", "驱动与诊断").await, "驱动与诊断");
    assert_eq!(
        js(&c, "return document.documentElement.lang").await,
        "zh-CN"
    );
    text_of(
        &c,
        ".card.token[data-serial='4242112'] tr[data-slot='9a'] .verdict",
        "现在可以续期",
    )
    .await;
    text_of(
        &c,
        ".card.token[data-serial='4242111'] .counters",
        "PIN 剩余尝试次数",
    )
    .await;
    screenshot(&c, "zh-my-certificates").await;

    // Glyphs, not tofu.
    let label = js(
        &c,
        "return ['tab-certs','tab-renew','tab-diag'].map(i => document.getElementById(i).textContent).join('')",
    )
    .await;
    let mut chars: Vec<char> = label
        .as_str()
        .unwrap()
        .chars()
        .filter(|c| ('\u{4E00}'..='\u{9FFF}').contains(c))
        .collect();
    chars.sort();
    chars.dedup();
    assert!(chars.len() >= 10, "{chars:?}");
    let cjk = glyphs(&c, &chars).await;
    // Code points assigned to nothing: every font draws its .notdef box.
    let none = [
        '\u{0378}', '\u{0379}', '\u{0380}', '\u{0381}', '\u{0382}', '\u{0383}',
    ];
    let tofu = glyphs(&c, &none).await;
    assert!(
        tofu.windows(2).all(|w| w[0] == w[1]) && tofu[0].count() > 0,
        "the .notdef reference is not one box: the tofu check would not see tofu"
    );
    assert_eq!(tofu_in(&chars, &cjk, &tofu[0]), None);

    click(&c, "#tab-renew").await;
    text_of(
        &c,
        ".card.token[data-serial='4242111'] .row[data-slot='9a'] .phase",
        "等待 CA 签发证书",
    )
    .await;
    text_of(
        &c,
        ".card.token[data-serial='4242112'] .row[data-slot='9a'] button[data-action='apply']",
        "申请续期",
    )
    .await;
    screenshot(&c, "zh-certificate-renewal").await;
    click(
        &c,
        ".card.token[data-serial='4242112'] .row[data-slot='9a'] button[data-action='apply']",
    )
    .await;
    text_of(&c, "#pin-tries", "PIN 剩余尝试次数：3").await;
    screenshot(&c, "zh-pin").await;
    click(&c, "#pin-cancel").await;
    click(&c, "#tab-diag").await;
    text_of(&c, "#diag-nss", "未注册 ukey").await;
    text_of(&c, "#diag-pcscd", "未使用").await;
    screenshot(&c, "zh-diagnostics").await;

    // Switchable: English, then back (remembered by the page).
    click(&c, "#lang").await;
    assert_eq!(
        text_of(&c, "#tab-certs", "My certificates").await,
        "My certificates"
    );
    click(&c, "#lang").await;
    text_of(&c, "#tab-certs", "我的证书").await;
    assert_eq!(load(&a).pin.tries_left, 3, "no PIN try spent by looking");
    assert_eq!(server.stop(), Some(0));
    c.close().await.unwrap();
}
