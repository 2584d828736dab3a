//! Third-party PC/SC clients accept ukey-sim as a PIV card: OpenSC,
//! yubico-piv-tool and openssl are the judges, through a real pcscd and
//! vsmartcard's vpcd.

use std::path::Path;
use ukey_tests::*;

fn token(dir: &Path, args: &[&str]) -> std::path::PathBuf {
    init_token(dir, "card", args)
}

#[test]
fn opensc_tool_names_it_a_piv_card() {
    let dir = tempfile::tempdir().unwrap();
    let card = token(dir.path(), &[]);
    let out = with_pcscd(dir.path(), &[&card], "opensc-tool -n");
    assert!(out.contains("Personal Identity Verification Card"), "{out}");
}

#[test]
fn opensc_lists_the_demo_tokens_certificates_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let card = token(dir.path(), &["--demo"]);
    let out = with_pcscd(
        dir.path(),
        &[&card],
        r#"pkcs11-tool --module $OPENSC_MODULE -O
           echo "=== after login"
           pkcs11-tool --module $OPENSC_MODULE --login --pin 123456 -O --type privkey"#,
    );
    let (public, private) = out.split_once("=== after login").unwrap();
    for label in [
        "Certificate for PIV Authentication",
        "Certificate for Digital Signature",
        "Certificate for Key Management",
        "Certificate for Card Authentication",
    ] {
        assert!(public.contains(label), "{label} missing:\n{out}");
    }
    assert_eq!(public.matches("Certificate Object").count(), 4, "{out}");
    assert!(public.contains("CN=Demo User"), "{out}");
    assert_eq!(private.matches("Private Key Object").count(), 4, "{out}");
    assert_eq!(
        tries(&card),
        (3, 3),
        "one login, no wrong PIN: counters untouched"
    );
}

#[test]
fn opensc_signs_with_9a_and_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let card = token(dir.path(), &["--demo"]);
    with_pcscd(
        dir.path(),
        &[&card],
        r#"echo "purchase order 42" > msg.txt
           pkcs11-tool --module $OPENSC_MODULE --login --pin 123456 --sign --id 01 -m SHA256-RSA-PKCS -i msg.txt -o sig.bin
           pkcs11-tool --module $OPENSC_MODULE --read-object --type cert --id 01 -o cert.der
           openssl x509 -inform der -in cert.der -pubkey -noout > pub.pem
           openssl dgst -sha256 -verify pub.pem -signature sig.bin msg.txt | grep -x "Verified OK"
           # And an ECDSA signature with the P-384 card authentication key.
           pkcs11-tool --module $OPENSC_MODULE --login --pin 123456 --sign --id 04 -m ECDSA-SHA384 --signature-format openssl -i msg.txt -o sig4.bin
           pkcs11-tool --module $OPENSC_MODULE --read-object --type cert --id 04 -o cert4.der
           openssl x509 -inform der -in cert4.der -pubkey -noout > pub4.pem
           openssl dgst -sha384 -verify pub4.pem -signature sig4.bin msg.txt | grep -x "Verified OK""#,
    );
}

#[test]
fn yubico_piv_tool_status_shows_version_serial_and_pin_tries() {
    let dir = tempfile::tempdir().unwrap();
    let card = token(dir.path(), &["--demo", "--serial", "7654321"]);
    let out = with_pcscd(
        dir.path(),
        &[&card],
        r#"yubico-piv-tool -r "Virtual PCD" -a status"#,
    );
    assert!(out.contains("Version:\t5.7.1"), "{out}");
    assert!(out.contains("Serial Number:\t7654321"), "{out}");
    assert!(out.contains("PIN tries left:\t3"), "{out}");
    assert_eq!(out.matches("Subject DN:").count(), 4, "{out}");
    assert_eq!(tries(&card), (3, 3));
}

/// yubico-piv-tool generates a key with the default management key and
/// imports a certificate for it; OpenSC then reads that certificate.
/// The certificate is issued by openssl for the generated public key:
/// Debian 12's yubico-piv-tool 2.2 cannot self-sign under OpenSSL 3 at all
/// (Yubico/yubico-piv-tool#388: it fails before sending any APDU), and it
/// only knows 3DES management keys, so this token starts with a 3DES one.
#[test]
fn yubico_piv_tool_generates_and_imports_and_opensc_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let card = token(dir.path(), &["--mgmt-alg", "3des"]);
    std::fs::create_dir_all(dir.path().join("ca")).unwrap();
    let out = with_pcscd(
        dir.path(),
        &[&card],
        r#"Y="yubico-piv-tool -r Virtual"
           $Y -a generate -s 9a -A ECCP256 -o pub.pem
           openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca/ca.key -subj /CN=TestCA -days 2 -out ca/ca.pem 2>/dev/null
           openssl x509 -new -force_pubkey pub.pem -subj "/CN=made by yubico-piv-tool/" -CA ca/ca.pem -CAkey ca/ca.key -days 30 -out cert.pem
           $Y -a import-certificate -s 9a -i cert.pem
           echo data > data.txt
           $Y -a verify-pin -P 123456 --sign -s 9a -H SHA256 -A ECCP256 -i data.txt -o data.sig
           openssl dgst -sha256 -verify pub.pem -signature data.sig data.txt
           pkcs11-tool --module $OPENSC_MODULE --read-object --type cert --id 01 -o back.der
           openssl x509 -inform der -in back.der -noout -subject
           openssl x509 -inform der -in back.der -pubkey -noout | cmp - pub.pem && echo "same public key""#,
    );
    assert!(
        out.contains("Successfully generated a new private key."),
        "{out}"
    );
    assert!(
        out.contains("Successfully imported a new certificate."),
        "{out}"
    );
    assert!(out.contains("Verified OK"), "{out}");
    assert!(
        out.contains("subject=CN = made by yubico-piv-tool"),
        "{out}"
    );
    assert!(out.contains("same public key"), "{out}");
}

#[test]
fn wrong_pin_three_times_blocks_and_the_puk_unblocks() {
    let dir = tempfile::tempdir().unwrap();
    let card = token(dir.path(), &["--demo"]);
    let out = with_pcscd(
        dir.path(),
        &[&card],
        r#"Y="yubico-piv-tool -r Virtual"
           for i in 1 2 3; do $Y -a verify-pin -P 000000 || true; done
           echo "=== blocked"
           $Y -a verify-pin -P 123456 || true
           $Y -a status | grep "PIN tries"
           echo "=== unblock"
           $Y -a unblock-pin -P 12345678 -N 24680135
           $Y -a verify-pin -P 24680135"#,
    );
    let (before, rest) = out.split_once("=== blocked").unwrap();
    let (blocked, unblock) = rest.split_once("=== unblock").unwrap();
    assert!(
        before.contains("2 tries left") && before.contains("1 tries left"),
        "{out}"
    );
    assert!(blocked.contains("PIN tries left:\t0"), "{out}");
    assert!(!blocked.contains("Successfully verified PIN"), "{out}");
    assert!(
        unblock.contains("Successfully unblocked the pin code."),
        "{out}"
    );
    assert!(unblock.contains("Successfully verified PIN."), "{out}");
    assert_eq!(tries(&card), (3, 3));
}

#[test]
fn listing_and_status_never_change_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let card = token(dir.path(), &["--demo"]);
    with_pcscd(
        dir.path(),
        &[&card],
        r#"yubico-piv-tool -r Virtual -a verify-pin -P 000000 || true
           for i in 1 2 3; do
             pkcs11-tool --module $OPENSC_MODULE -L -O >/dev/null
             yubico-piv-tool -r Virtual -a status >/dev/null
             opensc-tool -n >/dev/null
           done"#,
    );
    assert_eq!(tries(&card), (2, 3), "only the one wrong VERIFY counted");
}
