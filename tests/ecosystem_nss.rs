//! NSS (what Firefox, Thunderbird and Chromium on Linux use) with
//! `libukey_pkcs11.so` over pcscd + vpcd + `ukey-sim serve`: the module
//! registered with `modutil`, its certificates in `certutil`, CMS signatures
//! made by `cmsutil` on the token, TLS client authentication by `tstclnt`
//! (Firefox's path for client certificates). PINs go through NSS's
//! password callback (`-f`/`-W` password files); OpenSSL judges the results.

use ukey_tests::*;

const NSS_TOOLS: &[&str] = &[
    "certutil",
    "modutil",
    "cmsutil",
    "tstclnt",
    "openssl",
    "pkcs11-tool",
];

/// NSS treats certificates with the same subject as versions of one
/// identity and picks the newest valid one whatever nickname was asked for
/// (it does so with OpenSC's module too). The demo card's certificates all
/// name "Demo User": give 9A, 9C and 9E their own subjects (written through
/// our module) so each nickname below means that slot's key.
const DISTINCT_SUBJECTS: &str = r#"
# No key usage: NSS then accepts the certificate for signing, S/MIME and TLS.
printf 'basicConstraints=critical,CA:FALSE\n' > leaf.ext
for slot in "01 PIV Authentication" "02 Digital Signature" "04 Card Authentication"; do
  read -r id role <<<"$slot"
  pkcs11-tool --module "$UKEY" --read-object --type cert --id "$id" -o old.der
  openssl x509 -inform DER -in old.der -noout -pubkey > pub.pem
  openssl x509 -new -force_pubkey pub.pem -subj "/CN=Demo User ($role)" -days 30 \
    -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -extfile leaf.ext -outform DER -out new.der
  pkcs11-tool --module "$UKEY" --login --pin 123456 --write-object new.der --type cert --id "$id"
done
"#;

/// A fresh NSS database in `nssdb/` with the module registered and the
/// demo CA trusted, and `pw.txt` holding the PIN.
const NSS_SETUP: &str = r#"
rm -rf nssdb && mkdir nssdb
certutil -N -d sql:nssdb --empty-password
modutil -dbdir sql:nssdb -add ukey -libfile "$UKEY" -force </dev/null
certutil -A -d sql:nssdb -n demo-ca -t CT,C,C -i "$CA/ca.pem"
echo 123456 > pw.txt
"#;

/// The certificate nicknames NSS gives the token's certificates.
const NICKNAMES: [&str; 4] = [
    "Certificate for PIV Authentication",
    "Certificate for Digital Signature",
    "Certificate for Key Management",
    "Certificate for Card Authentication",
];

#[test]
fn nss_registers_the_module_lists_certificates_and_signs_cms() {
    require_tools(NSS_TOOLS);
    let card = DemoCard::new();
    let out = card.run(&format!(
        r#"{DISTINCT_SUBJECTS}{NSS_SETUP}
        echo "=== modutil"
        modutil -dbdir sql:nssdb -list
        echo "=== certutil -L"
        certutil -L -d sql:nssdb -h "$TOKEN" -f pw.txt
        echo "=== certutil -K"
        certutil -K -d sql:nssdb -h "$TOKEN" -f pw.txt
        echo "tender document" > msg.txt
        # 9A (RSA), 9C (P-256, PIN always: NSS logs in again for it) and 9E (P-384).
        for n in "PIV Authentication" "Digital Signature" "Card Authentication"; do
          cmsutil -S -d sql:nssdb -N "$TOKEN:Certificate for $n" -f pw.txt -i msg.txt -o msg.p7
          # The certificate in the slot, as OpenSC's module reads it.
          pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --label "Certificate for $n" -o signer.der
          openssl cms -verify -inform DER -in msg.p7 -CAfile "$CA/ca.pem" -purpose any \
            -signer signed-by.pem -out content.txt
          cmp content.txt msg.txt
          openssl x509 -in signed-by.pem -outform DER | cmp - signer.der
          echo "signed by $n: verified"
          cmsutil -D -d sql:nssdb -i msg.p7 -o decoded.txt
          cmp decoded.txt msg.txt
        done"#
    ));
    let (_, modutil) = out.split_once("=== modutil").unwrap();
    assert!(
        modutil.contains("slot: Virtual PCD 00 00")
            && modutil.contains(&format!("token: {}\n", card.label())),
        "{out}"
    );
    assert!(
        modutil.contains(&format!(
            "pkcs11:token=UKey%20PIV%20%23{s};manufacturer=Yubico;serial={s};model=YubiKey%20YK5",
            s = card.serial
        )),
        "{out}"
    );
    let (_, listing) = out.split_once("=== certutil -L").unwrap();
    for n in NICKNAMES {
        // "u": NSS found the private key that goes with the certificate.
        let line = format!("{}:{n}", card.label());
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(&line) && l.trim_end().ends_with("u,u,u")),
            "{n}: {out}"
        );
    }
    let (_, keys) = out.split_once("=== certutil -K").unwrap();
    for (kind, id, label) in [
        ("rsa", "01", "PIV AUTH key"),
        ("ec", "02", "SIGN key"),
        ("rsa", "03", "KEY MAN key"),
        ("ec", "04", "CARD AUTH key"),
    ] {
        assert!(
            keys.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() >= 5 && w[2] == kind && w[3] == id && w[4..].join(" ") == label
            }),
            "{label}: {out}"
        );
    }
    assert_eq!(out.matches(": verified").count(), 3, "{out}");
    assert_eq!(card.tries(), (3, 3));
}

/// NSS asks its password callback once per login; a wrong PIN from the
/// password file costs exactly one try (NSS does not loop on it), and what
/// NSS does without a PIN — module and token listings, presence and token
/// info checks, certificate lookups — costs none.
#[test]
fn nss_wrong_pin_costs_one_try_and_polling_costs_none() {
    require_tools(NSS_TOOLS);
    let card = DemoCard::new();
    card.run(&format!(
        r#"{NSS_SETUP}
        echo 000000 > bad.txt
        echo x > msg.txt
        if cmsutil -S -d sql:nssdb -N "$TOKEN:Certificate for PIV Authentication" -f bad.txt \
             -i msg.txt -o msg.p7 </dev/null; then
          echo "signed with a wrong PIN"; exit 1
        fi"#
    ));
    assert_eq!(card.tries(), (2, 3), "one try for one wrong PIN");
    card.run(&format!(
        r#"{NSS_SETUP}
        # FRIENDLY: NSS may read the token's certificates without a login
        # (lookups by nickname otherwise ask for the PIN). The README advises
        # against it for browsers (9E, see ecosystem_firefox.rs); here it lets
        # the polling run without any PIN.
        modutil -dbdir sql:nssdb -default ukey -mechanisms FRIENDLY </dev/null
        for i in 1 2 3 4 5; do
          modutil -dbdir sql:nssdb -list >/dev/null
          certutil -U -d sql:nssdb >/dev/null
          certutil -L -d sql:nssdb -h all </dev/null >/dev/null 2>&1
          certutil -L -d sql:nssdb -n "$TOKEN:Certificate for PIV Authentication" </dev/null >/dev/null
          certutil -V -d sql:nssdb -n "$TOKEN:Certificate for PIV Authentication" -u C </dev/null
        done"#
    ));
    assert_eq!(
        card.tries(),
        (2, 3),
        "NSS's polling and lookups spent no try"
    );
}

/// What Firefox does when a site asks for a client certificate: NSS signs
/// the TLS handshake with the token's key. TLS 1.3 makes the RSA key sign
/// RSA-PSS; the 9C key is PIN-always, so NSS logs in for the signature too.
#[test]
fn nss_tls_client_authentication_with_the_token_like_firefox() {
    require_tools(NSS_TOOLS);
    let card = DemoCard::new();
    let out = card.run(&format!(
        r#"{DISTINCT_SUBJECTS}{NSS_SETUP}
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key \
          -out srv.pem -subj /CN=localhost -days 1 2>/dev/null
        for case in "tls1.3 PIV Authentication" "tls1.2 Digital Signature"; do
          read -r version n <<<"$case"
          # The server demands a client certificate from the demo CA (its
          # stdin stays open, or it would stop at once).
          rm -f stdin.fifo && mkfifo stdin.fifo
          sleep 60 > stdin.fifo &
          keep_open=$!
          timeout 60 openssl s_server -accept 127.0.0.1:4433 -cert srv.pem -key srv.key \
            -Verify 1 -CAfile "$CA/ca.pem" -verify_return_error -naccept 1 \
            < stdin.fifo > server.log 2>&1 &
          server=$!
          for _ in $(seq 50); do grep -q ACCEPT server.log && break; sleep 0.1; done
          timeout 60 tstclnt -h 127.0.0.1 -p 4433 -d sql:nssdb -n "$TOKEN:Certificate for $n" \
            -W pw.txt -o -V "$version:$version" -Q </dev/null
          wait "$server"
          kill "$keep_open"
          sed -n '/^Client certificate/,/END CERTIFICATE/p' server.log | sed 1d > client.pem
          pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --label "Certificate for $n" -o token.der
          openssl x509 -in client.pem -outform DER | cmp - token.der
          echo "$version: the server verified the token's certificate for $n"
        done"#
    ));
    assert!(
        out.contains("tls1.3: the server verified the token's certificate for PIV Authentication"),
        "{out}"
    );
    assert!(
        out.contains("tls1.2: the server verified the token's certificate for Digital Signature"),
        "{out}"
    );
    assert_eq!(card.tries(), (3, 3));
}
