//! A real browser: headless Firefox ESR (Debian's `firefox-esr`) loads
//! `libukey_pkcs11.so` from an enterprise policy (`SecurityDevices` in
//! /etc/firefox/policies/policies.json, in a copy-on-write /etc) and
//! authenticates to `openssl s_server -Verify 1` with a token key; the PIN
//! is typed into Firefox's own password dialog. Firefox is driven over
//! Marionette (its remote protocol; [`ukey_tests::marionette`]) by this test
//! binary run a second time inside the private network namespace of
//! `scripts/with-pcscd`, where Firefox and the server listen.

use serde_json::json;
use std::time::{Duration, Instant};
use ukey_tests::marionette::Marionette;
use ukey_tests::*;

/// Set for the copy of this binary that drives Firefox inside the namespace.
const DRIVER: &str = "UKEY_FIREFOX_DRIVER";
const MARIONETTE_PORT: u16 = 2828;

/// Inside the namespace: open the page, answer the PIN dialog, wait for the
/// server's page. Prints what it saw for the outer test to check.
fn drive() {
    let mut m = Marionette::connect(MARIONETTE_PORT, Duration::from_secs(90)).expect("Marionette");
    m.cmd(
        "WebDriver:NewSession",
        json!({"capabilities": {"alwaysMatch": {
            // The server's own certificate is self-signed.
            "acceptInsecureCerts": true,
            // Navigate returns at once: the PIN dialog opens during the load.
            "pageLoadStrategy": "none",
            "unhandledPromptBehavior": "ignore"
        }}}),
    )
    .expect("new session");
    m.cmd(
        "WebDriver:Navigate",
        json!({"url": "https://127.0.0.1:4433/"}),
    )
    .expect("navigate");
    let start = Instant::now();
    let mut prompts = 0;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no page from the server in 90 s (prompts answered: {prompts})"
        );
        match m.cmd("WebDriver:GetAlertText", json!({})) {
            Ok(text) => {
                println!("PROMPT: {}", text["value"].as_str().unwrap_or(""));
                prompts += 1;
                assert!(prompts <= 1, "Firefox asked for the PIN again");
                m.cmd("WebDriver:SendAlertText", json!({"text": "123456"}))
                    .expect("type the PIN");
                m.cmd("WebDriver:AcceptAlert", json!({})).expect("accept");
                continue;
            }
            Err(e) if e.error == "no such alert" => {}
            Err(e) => panic!("GetAlertText: {e}"),
        }
        if let Ok(src) = m.cmd("WebDriver:GetPageSource", json!({})) {
            let src = src["value"].as_str().unwrap_or("").to_string();
            if src.contains("Ciphers supported in s_server binary") {
                println!("PAGE:\n{src}\nEND PAGE");
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = m.cmd("Marionette:Quit", json!({"flags": ["eForceQuit"]}));
}

#[test]
fn firefox_authenticates_to_a_tls_server_with_a_token_key_after_its_pin_dialog() {
    if std::env::var_os(DRIVER).is_some() {
        drive();
        return;
    }
    require_tools(&["firefox-esr", "openssl"]);
    let card = DemoCard::new();
    let me = std::env::current_exe().expect("test binary");
    let out = card.run(&format!(
        r#"
        overlay_root=$(mktemp -d)
        mkdir -p "$overlay_root/up" "$overlay_root/work"
        mount -t overlay overlay -o "lowerdir=/etc,upperdir=$overlay_root/up,workdir=$overlay_root/work" /etc
        mkdir -p /etc/firefox/policies
        cat > /etc/firefox/policies/policies.json <<EOT
        {{"policies": {{"SecurityDevices": {{"Add": {{"ukey": "$UKEY"}}}}}}}}
EOT
        mkdir -p profile home
        export HOME=$PWD/home
        cat > profile/user.js <<'EOT'
        user_pref("marionette.port", {MARIONETTE_PORT});
        user_pref("security.default_personal_cert", "Select Automatically");
        user_pref("browser.shell.checkDefaultBrowser", false);
        user_pref("datareporting.policy.dataSubmissionEnabled", false);
        user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
        user_pref("browser.aboutwelcome.enabled", false);
        user_pref("app.update.disabledForTesting", true);
        user_pref("network.connectivity-service.enabled", false);
        user_pref("network.captive-portal-service.enabled", false);
        user_pref("security.osclientcerts.autoload", false);
EOT
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
          -out srv.pem -subj /CN=127.0.0.1 -days 1 2>/dev/null
        rm -f stdin.fifo && mkfifo stdin.fifo
        sleep 300 > stdin.fifo &
        keep_open=$!
        openssl s_server -accept 127.0.0.1:4433 -cert srv.pem -key srv.key -www \
          -Verify 1 -CAfile "$CA/ca.pem" -verify_return_error < stdin.fifo > server.log 2>&1 &
        server=$!
        for _ in $(seq 50); do grep -q ACCEPT server.log && break; sleep 0.1; done
        firefox-esr --headless --marionette --no-remote --profile "$PWD/profile" \
          about:blank > firefox.log 2>&1 &
        firefox=$!
        trap 'kill $firefox $server $keep_open 2>/dev/null || true' EXIT
        {DRIVER}=1 timeout 150 "{me}" --exact \
          firefox_authenticates_to_a_tls_server_with_a_token_key_after_its_pin_dialog \
          --nocapture --test-threads 1 || {{ echo "=== firefox.log"; tail -40 firefox.log; exit 1; }}
        wait $firefox 2>/dev/null || true
        echo "=== server"
        cat server.log
        echo "=== VERIFY commands"
        grep -c "APDU: 00 20 00 80 08" "$WITH_PCSCD_LOG/pcscd.log" || true"#,
        me = me.display()
    ));
    assert!(out.contains("PROMPT: "), "Firefox's PIN dialog: {out}");
    let page = out
        .split_once("PAGE:")
        .and_then(|(_, p)| p.split_once("END PAGE"))
        .map(|(p, _)| p)
        .unwrap_or_else(|| panic!("{out}"));
    // s_server -www shows the client's certificate: one of the token's.
    assert!(page.contains("Client certificate"), "{out}");
    let (_, server) = out.split_once("=== server").unwrap();
    assert!(!server.contains("verify error"), "{out}");
    let (_, verifies) = out.split_once("=== VERIFY commands").unwrap();
    assert_eq!(verifies.trim(), "1", "one VERIFY: {out}");
    assert_eq!(card.tries(), (3, 3));
}
