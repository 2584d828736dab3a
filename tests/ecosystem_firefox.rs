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

/// Chrome-context script, run before the page is opened: when Firefox opens
/// a common dialog (its PIN dialog for a PKCS#11 token is one), note its
/// text, type the PIN into its password field and accept it, as a user
/// would. Marionette itself cannot answer it: the dialog spins a nested
/// event loop from script, in which Marionette's promise-based command
/// handling stalls until the dialog closes; an observer's task still runs.
const ANSWER_PIN: &str = r#"
const pin = arguments[0];
window.__ukeyPrompts = [];
const seen = (dialogWindow, topic) => {
  dialogWindow.setTimeout(() => {
    const d = dialogWindow.document;
    const field = d.getElementById("password1Textbox");
    const text = (d.getElementById("infoBody") || {}).textContent || "";
    const asks = !!(field && !field.hidden);
    window.__ukeyPrompts.push(topic + ": " + text + (asks ? " [password]" : ""));
    if (asks) {
      field.value = pin;
      d.querySelector("dialog").acceptDialog();
    }
  }, 0);
};
Services.obs.addObserver(seen, "common-dialog-loaded");
Services.obs.addObserver(seen, "tabmodal-dialog-loaded");
return true;
"#;

/// Inside the namespace: open the page, let the observer answer the PIN
/// dialog, wait for the server's page. Prints what it saw for the outer test.
fn drive() {
    let mut m = Marionette::connect(MARIONETTE_PORT, Duration::from_secs(90)).expect("Marionette");
    // Marionette takes the capabilities flat (geckodriver's job is to
    // unwrap alwaysMatch/firstMatch).
    m.cmd(
        "WebDriver:NewSession",
        json!({
            // The server's own certificate is self-signed.
            "acceptInsecureCerts": true,
            "pageLoadStrategy": "none",
            "unhandledPromptBehavior": "ignore"
        }),
    )
    .expect("new session");
    m.cmd("Marionette:SetContext", json!({"value": "chrome"}))
        .expect("chrome context");
    m.cmd(
        "WebDriver:ExecuteScript",
        json!({"script": ANSWER_PIN, "args": ["123456"]}),
    )
    .expect("prompt observer");
    // The load starts from chrome and returns at once.
    m.cmd(
        "WebDriver:ExecuteScript",
        json!({"script": "openTrustedLinkIn(arguments[0], 'current'); return true;",
               "args": ["https://127.0.0.1:4433/"]}),
    )
    .expect("load");
    let start = Instant::now();
    let page = loop {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no page from the server in 90 s"
        );
        std::thread::sleep(Duration::from_millis(250));
        m.cmd("Marionette:SetContext", json!({"value": "content"}))
            .expect("content context");
        let src = m
            .cmd("WebDriver:GetPageSource", json!({}))
            .map(|v| v["value"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        m.cmd("Marionette:SetContext", json!({"value": "chrome"}))
            .expect("chrome context");
        if src.contains("Ciphers supported in s_server binary") {
            break src;
        }
    };
    let prompts = m
        .cmd(
            "WebDriver:ExecuteScript",
            json!({"script": "return window.__ukeyPrompts;"}),
        )
        .expect("prompts");
    for p in prompts["value"].as_array().into_iter().flatten() {
        println!("PROMPT: {}", p.as_str().unwrap_or(""));
    }
    println!("PAGE:\n{page}\nEND PAGE");
    let _ = m.cmd("Marionette:Quit", json!({"flags": ["eForceQuit"]}));
}

/// The test named `name` in this binary, run with `card`: Firefox with the
/// module from a policy opens https://127.0.0.1:4433/ where s_server wants a
/// client certificate from the CA in `server_ca` (a path the script
/// makes; `prepare` runs first, in the card's directory). Returns the
/// script's output (the driver's PROMPT and PAGE lines, the server's log,
/// the number of PIN VERIFY commands pcscd saw while Firefox ran).
fn browse(name: &str, card: &DemoCard, prepare: &str, server_ca: &str) -> String {
    let me = std::env::current_exe().expect("test binary");
    card.run(&format!(
        r#"{prepare}
        verifies() {{ grep -c "APDU: 00 20 00 80 08" "$WITH_PCSCD_LOG/pcscd.log" || true; }}
        verifies_before=$(verifies)
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
          -Verify 1 -CAfile "{server_ca}" -verify_return_error < stdin.fifo > server.log 2>&1 &
        server=$!
        for _ in $(seq 50); do grep -qs ACCEPT server.log && break; sleep 0.1; done
        UKEY_LOG=${{UKEY_LOG:-info}} UKEY_LOG_FILE=$PWD/module.log \
          firefox-esr --headless --marionette --remote-allow-system-access --no-remote --profile "$PWD/profile" \
          about:blank > firefox.log 2>&1 &
        firefox=$!
        trap 'kill $firefox $server $keep_open 2>/dev/null || true' EXIT
        {DRIVER}=1 timeout 150 "{me}" --exact {name} --nocapture --test-threads 1 || {{ echo "=== firefox.log"; tail -40 firefox.log; echo "=== module.log"; tail -60 module.log; exit 1; }}
        wait $firefox 2>/dev/null || true
        echo "=== server"
        cat server.log
        echo "=== VERIFY commands"
        echo $(( $(verifies) - verifies_before ))"#,
        me = me.display()
    ))
}

/// Checks common to both cases: Firefox's one PIN dialog, the page, the
/// server's verdict on the certificate with `subject`, one VERIFY.
fn check(card: &DemoCard, out: &str, subject: &str) {
    // Exactly one dialog: Firefox's PIN dialog for the token.
    assert_eq!(out.matches("PROMPT: ").count(), 1, "{out}");
    assert!(
        out.contains(&format!(
            "PROMPT: common-dialog-loaded: Please authenticate to the security device ({}). [password]",
            card.label()
        )),
        "Firefox's PIN dialog: {out}"
    );
    let page = out
        .split_once("PAGE:")
        .and_then(|(_, p)| p.split_once("END PAGE"))
        .map(|(p, _)| p)
        .unwrap_or_else(|| panic!("{out}"));
    assert!(page.contains("Ciphers supported"), "{out}");
    // The server asked for a certificate from the demo CA and verified the
    // token's (-Verify 1 with -verify_return_error ends a handshake without one).
    let (_, server) = out.split_once("=== server").unwrap();
    assert!(server.contains(&format!("depth=0 {subject}")), "{out}");
    assert!(!server.contains("verify error"), "{out}");
    let (_, verifies) = out.split_once("=== VERIFY commands").unwrap();
    assert_eq!(verifies.trim(), "1", "one VERIFY: {out}");
    assert_eq!(card.tries(), (3, 3));
}

#[test]
fn firefox_authenticates_to_a_tls_server_with_a_token_key_after_its_pin_dialog() {
    if std::env::var_os(DRIVER).is_some() {
        drive();
        return;
    }
    require_tools(&["firefox-esr", "openssl"]);
    let card = DemoCard::new();
    let out = browse(
        "firefox_authenticates_to_a_tls_server_with_a_token_key_after_its_pin_dialog",
        &card,
        "",
        "$CA/ca.pem",
    );
    check(
        &card,
        &out,
        "C = CN, O = Example Pharma Ltd, OU = Purchasing, CN = Demo User",
    );
}

/// 9E (PIN policy "never") under NSS: the module is not marked "friendly"
/// (the README's advice), so Firefox logs in before it lists client
/// certificates, and then uses the 9E key (the only one the server's CA
/// issued for). With "friendly" NSS would list the certificates without a
/// login, sign with 9E and then stall the handshake.
#[test]
fn firefox_uses_the_9e_key_after_logging_in() {
    if std::env::var_os(DRIVER).is_some() {
        drive();
        return;
    }
    require_tools(&["firefox-esr", "openssl", "pkcs11-tool"]);
    let card = DemoCard::new();
    let out = browse(
        "firefox_uses_the_9e_key_after_logging_in",
        &card,
        r#"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca2.key \
          -out ca2.pem -subj "/CN=Card Authentication CA" -days 2 2>/dev/null
        pkcs11-tool --module "$UKEY" --read-object --type cert --id 04 -o old9e.der 2>/dev/null
        openssl x509 -inform DER -in old9e.der -noout -pubkey > pub9e.pem
        printf 'basicConstraints=critical,CA:FALSE\n' > leaf.ext
        openssl x509 -new -force_pubkey pub9e.pem -subj "/CN=card authentication" -days 1 \
          -CA ca2.pem -CAkey ca2.key -extfile leaf.ext -outform DER -out c9e.der
        pkcs11-tool --module "$UKEY" --login --pin 123456 --write-object c9e.der --type cert \
          --id 04 >/dev/null"#,
        "ca2.pem",
    );
    check(&card, &out, "CN = card authentication");
}
