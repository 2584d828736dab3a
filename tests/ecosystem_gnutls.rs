//! GnuTLS (`p11tool`, `certtool` from gnutls-bin) with `libukey_pkcs11.so`
//! over pcscd + vpcd + `ukey-sim serve`: tokens and objects listed with
//! their RFC 7512 URIs, certificates exported by URI and compared with the
//! card's (as OpenSC's module reads them), and certificates and requests
//! signed by keys named by `pkcs11:` URIs, verified by OpenSSL. GnuTLS takes
//! the PIN from `GNUTLS_PIN`, for the login and for PIN-always keys.

use ukey_tests::*;

fn setup() -> DemoCard {
    require_tools(&["p11tool", "certtool", "openssl", "pkcs11-tool"]);
    DemoCard::new()
}

const ROLES: [(&str, &str, &str, &str); 4] = [
    (
        "01",
        "PIV%20AUTH",
        "Certificate%20for%20PIV%20Authentication",
        "RSA-2048",
    ),
    (
        "02",
        "SIGN",
        "Certificate%20for%20Digital%20Signature",
        "EC/ECDSA-SECP256R1",
    ),
    (
        "03",
        "KEY%20MAN",
        "Certificate%20for%20Key%20Management",
        "RSA-2048",
    ),
    (
        "04",
        "CARD%20AUTH",
        "Certificate%20for%20Card%20Authentication",
        "EC/ECDSA-SECP384R1",
    ),
];

#[test]
fn gnutls_p11tool_lists_objects_and_exports_the_cards_certificates() {
    let card = setup();
    let out = card.run(
        r#"echo "=== tokens"
        p11tool --provider "$UKEY" --list-tokens
        echo "=== all"
        GNUTLS_PIN=123456 p11tool --provider "$UKEY" --login --list-all "$TOKEN_URI"
        echo "=== certificates"
        p11tool --provider "$UKEY" --list-all-certs "$TOKEN_URI"
        for c in "01 PIV%20Authentication" "02 Digital%20Signature" "03 Key%20Management" "04 Card%20Authentication"; do
          read -r id role <<<"$c"
          p11tool --provider "$UKEY" --export "$TOKEN_URI;object=Certificate%20for%20$role;type=cert" --outfile exported-$id.pem
          pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --id $id -o card-$id.der 2>/dev/null
          openssl x509 -in exported-$id.pem -outform DER | cmp - card-$id.der && echo "certificate $id: exported = card"
        done"#,
    );
    let (_, tokens) = out.split_once("=== tokens").unwrap();
    let url = format!(
        "URL: pkcs11:model=YubiKey%20YK5;manufacturer=Yubico;serial={s};token=UKey%20PIV%20%23{s}",
        s = card.serial
    );
    assert!(tokens.contains(&url), "{out}");
    assert!(tokens.contains("Flags: RNG, Requires login"), "{out}");
    let (all, certs) = out.split_once("=== certificates").unwrap();
    for (id, key, cert, kind) in ROLES {
        for (object, class) in [
            (format!("{key}%20key"), "private"),
            (format!("{key}%20pubkey"), "public"),
            (cert.to_string(), "cert"),
        ] {
            let uri = format!(
                "URL: pkcs11:model=YubiKey%20YK5;manufacturer=Yubico;serial={s};\
                 token=UKey%20PIV%20%23{s};id=%{id};object={object};type={class}",
                s = card.serial
            );
            assert!(all.contains(&uri), "{uri}\n{out}");
        }
        assert!(
            certs.contains(&format!("Type: X.509 Certificate ({kind})")),
            "{kind}: {out}"
        );
    }
    assert!(
        all.contains("Flags: CKA_PRIVATE; CKA_ALWAYS_AUTH;"),
        "9C: {out}"
    );
    assert_eq!(out.matches(": exported = card").count(), 4, "{out}");
    assert_eq!(card.tries(), (3, 3));
}

#[test]
fn gnutls_certtool_signs_with_keys_named_by_pkcs11_uris() {
    let card = setup();
    let out = card.run(
        r#"export GNUTLS_PIN=123456
        cat > template.cfg <<EOF
cn = "signed by certtool on the token"
serial = 7
expiration_days = 2
signing_key
EOF
        # EC keys by CKA_ID: GnuTLS finds their public half under the same id
        # (an object= label names only the private key, "... key").
        for key in "object=PIV%20AUTH%20key" "id=%02" "id=%04"; do
          certtool --provider "$UKEY" --generate-self-signed \
            --load-privkey "$TOKEN_URI;$key;type=private" --template template.cfg --outfile self.pem
          openssl verify -CAfile self.pem self.pem
          certtool --provider "$UKEY" --generate-request \
            --load-privkey "$TOKEN_URI;$key;type=private" --template template.cfg --outfile req.pem
          openssl req -in req.pem -noout -verify
        done
        # The request's key is the key of the card's certificate.
        pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --id 04 -o card-04.der 2>/dev/null
        openssl req -in req.pem -noout -pubkey | cmp - <(openssl x509 -inform DER -in card-04.der -noout -pubkey)
        echo "request key = card key""#,
    );
    assert_eq!(out.matches("self.pem: OK").count(), 3, "{out}");
    assert_eq!(
        out.matches("Certificate request self-signature verify OK")
            .count(),
        3,
        "{out}"
    );
    assert!(out.contains("request key = card key"), "{out}");
    assert_eq!(card.tries(), (3, 3));
}
