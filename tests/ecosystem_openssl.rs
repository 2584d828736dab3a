//! OpenSSL 3 through the libp11 engine (`libengine-pkcs11-openssl`) with
//! `libukey_pkcs11.so` over pcscd + vpcd + `ukey-sim serve`: keys named by
//! `pkcs11:` URIs sign with `openssl pkeyutl` and `openssl req`, and plain
//! OpenSSL verifies against the card's certificates (read with OpenSC's
//! module, an independent path to the card).

use ukey_tests::*;

const ENGINE: &str = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";

fn setup() -> DemoCard {
    require_tools(&["openssl", "pkcs11-tool", "script"]);
    require_files(&[ENGINE, OPENSC_MODULE]);
    DemoCard::new()
}

/// `engine.cnf`: OpenSSL loads the libp11 engine with our module (no PIN
/// in it: each command says where its PIN comes from). Also the card's
/// certificates as OpenSC reads them: cert-01.pem .. cert-04.pem.
///
/// The module logs at debug level on stderr throughout: OpenSSL closes its
/// sessions from an `atexit` handler, which must survive the logging (it
/// used to abort with exit 134 there).
fn prelude() -> String {
    format!(
        r#"export UKEY_LOG=debug
cat > engine.cnf <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = {ENGINE}
MODULE_PATH = $UKEY
init = 0
EOF
export OPENSSL_CONF=$PWD/engine.cnf
for id in 01 02 03 04; do
  pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --id $id -o cert-$id.der 2>/dev/null
  openssl x509 -inform DER -in cert-$id.der -out cert-$id.pem
done
echo "a purchase order" > msg.txt
"#
    )
}

#[test]
fn openssl_pkeyutl_signs_with_pkcs11_uris_and_verifies_against_the_certificates() {
    let card = setup();
    let out = card.run(&format!(
        r#"{prelude}
        # 9A, RSA: the token and object labels in the URI, the PIN from -passin.
        openssl dgst -sha256 -binary msg.txt > msg.sha256
        openssl pkeyutl -engine pkcs11 -keyform engine -sign -passin pass:123456 \
          -inkey "$TOKEN_URI;object=PIV%20AUTH%20key;type=private" \
          -pkeyopt digest:sha256 -in msg.sha256 -out sig-01.bin
        openssl pkeyutl -verify -certin -inkey cert-01.pem -pkeyopt digest:sha256 \
          -in msg.sha256 -sigfile sig-01.bin
        # 9D, RSA-PSS: by CKA_ID, the PIN in the URI (RFC 7512 pin-value).
        openssl pkeyutl -engine pkcs11 -keyform engine -sign \
          -inkey "pkcs11:id=%03;type=private;pin-value=123456" \
          -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 \
          -in msg.sha256 -out sig-03.bin
        openssl pkeyutl -verify -certin -inkey cert-03.pem -pkeyopt digest:sha256 \
          -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32 -in msg.sha256 -sigfile sig-03.bin
        # 9E, P-384, PIN policy never.
        openssl dgst -sha384 -binary msg.txt > msg.sha384
        openssl pkeyutl -engine pkcs11 -keyform engine -sign -passin pass:123456 \
          -inkey "pkcs11:serial=$SERIAL;id=%04;type=private" -in msg.sha384 -out sig-04.bin
        openssl pkeyutl -verify -certin -inkey cert-04.pem -in msg.sha384 -sigfile sig-04.bin
        # 9C, P-256, PIN always: libp11 logs in for the key itself and asks
        # its UI, which reads the terminal (a pty here; the PIN is typed
        # until the prompt takes it).
        openssl dgst -sha256 -binary msg.txt > msg.sha256
        (for _ in $(seq 40); do sleep 0.25; printf '123456\n'; done) |
          timeout 30 script -qec "openssl pkeyutl -engine pkcs11 -keyform engine -sign \
            -passin pass:123456 -inkey 'pkcs11:object=SIGN%20key;type=private' \
            -in msg.sha256 -out sig-02.bin" /dev/null || true
        openssl pkeyutl -verify -certin -inkey cert-02.pem -in msg.sha256 -sigfile sig-02.bin
        # The engine reads public keys too.
        openssl pkey -engine pkcs11 -inform engine -pubin \
          -in "pkcs11:object=CARD%20AUTH%20pubkey;type=public" -pubout -out pub-04.pem
        openssl x509 -in cert-04.pem -noout -pubkey | cmp - pub-04.pem && echo "public key 04 matches""#,
        prelude = prelude()
    ));
    assert_eq!(
        out.matches("Signature Verified Successfully").count(),
        4,
        "{out}"
    );
    assert!(out.contains("public key 04 matches"), "{out}");
    assert!(out.contains("DEBUG apdu:"), "the module logged: {out}");
    assert_eq!(card.tries(), (3, 3));
}

#[test]
fn openssl_req_makes_requests_signed_on_the_token() {
    let card = setup();
    let out = card.run(&format!(
        r#"{prelude}
        for key in "01 sha256" "04 sha384"; do
          read -r id md <<<"$key"
          openssl req -new -engine pkcs11 -keyform engine -passin pass:123456 \
            -key "pkcs11:id=%$id;type=private" -$md -subj "/CN=renewal $id/O=ukey tests" -out req-$id.pem
          openssl req -in req-$id.pem -noout -verify
          openssl req -in req-$id.pem -noout -pubkey | cmp - <(openssl x509 -in cert-$id.pem -noout -pubkey)
          echo "request $id carries the key of the certificate"
          openssl req -in req-$id.pem -noout -subject
        done
        # A self-signed certificate made on the token, verified by OpenSSL.
        openssl req -new -x509 -days 1 -engine pkcs11 -keyform engine -passin pass:123456 \
          -key "$TOKEN_URI;id=%01;type=private" -subj "/CN=self-signed on the token" -out self.pem
        openssl verify -CAfile self.pem self.pem"#,
        prelude = prelude()
    ));
    assert_eq!(
        out.matches("Certificate request self-signature verify OK")
            .count(),
        2,
        "{out}"
    );
    assert_eq!(
        out.matches("carries the key of the certificate").count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("subject=CN = renewal 04, O = ukey tests"),
        "{out}"
    );
    assert!(out.contains("self.pem: OK"), "{out}");
    assert!(out.contains("DEBUG apdu:"), "the module logged: {out}");
    assert_eq!(card.tries(), (3, 3));
}
