//! `libukey_pkcs11.so` through pcscd + vpcd + `ukey-sim serve`, driven by
//! OpenSC's `pkcs11-tool`; `openssl`, OpenSC's own module and
//! `yubico-piv-tool` judge the results.

use std::path::Path;
use ukey_tests::*;

/// OpenSC's PKCS#11 call tracer (Debian package opensc).
const SPY: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so";

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    require_tools(&["pkcs11-tool", "openssl", "yubico-piv-tool"]);
    let dir = tempfile::tempdir().unwrap();
    let card = init_token(dir.path(), "card", &["--demo"]);
    (dir, card)
}

fn run(dir: &Path, card: &Path, script: &str) -> String {
    let m = module();
    with_pcscd(
        dir,
        &[card],
        &format!("export UKEY=\"{}\"\n{script}", m.display()),
    )
}

#[test]
fn pkcs11_tool_lists_signs_and_openssl_verifies() {
    let (dir, card) = setup();
    let out = run(
        dir.path(),
        &card,
        r#"pkcs11-tool --module $UKEY -L
           pkcs11-tool --module $UKEY -O
           echo "tender document" > msg.txt
           pkcs11-tool --module $UKEY --login --pin 123456 --sign --id 01 -m SHA256-RSA-PKCS -i msg.txt -o sig.bin
           pkcs11-tool --module $UKEY --read-object --type cert --id 01 -o cert.der
           openssl x509 -inform der -in cert.der -pubkey -noout > pub.pem
           openssl dgst -sha256 -verify pub.pem -signature sig.bin msg.txt
           pkcs11-tool --module $UKEY --login --pin 123456 --sign --id 04 -m ECDSA-SHA384 --signature-format openssl -i msg.txt -o sig4.bin
           pkcs11-tool --module $UKEY --read-object --type cert --id 04 -o cert4.der
           openssl x509 -inform der -in cert4.der -pubkey -noout > pub4.pem
           openssl dgst -sha384 -verify pub4.pem -signature sig4.bin msg.txt"#,
    );
    assert!(out.contains("Virtual PCD 00 00"), "{out}");
    assert!(out.contains("token label        : UKey PIV #"), "{out}");
    assert_eq!(out.matches("Certificate Object").count(), 4, "{out}");
    assert_eq!(out.matches("Verified OK").count(), 2, "{out}");
    assert_eq!(tries(&card), (3, 3));
}

#[test]
fn pkcs11_tool_test_suite_passes() {
    let (dir, card) = setup();
    let out = run(
        dir.path(),
        &card,
        "pkcs11-tool --module $UKEY --test --login --pin 123456",
    );
    assert!(out.contains("No errors"), "{out}");
    assert!(!out.contains("failed"), "{out}");
    // Its digest tests (MD5, SHA-1, RIPEMD-160 and SHA-256 where listed).
    assert!(
        out.contains("Digests:\n  all 4 digest functions seem to work\n  SHA-1: OK\n  SHA256: OK"),
        "{out}"
    );
    assert_eq!(tries(&card), (3, 3));
}

/// `pkcs11-tool --hash` with every digest mechanism: the module's digest
/// of a file equals `openssl dgst`'s.
#[test]
fn pkcs11_tool_hashes_agree_with_openssl() {
    let (dir, card) = setup();
    let out = run(
        dir.path(),
        &card,
        r#"head -c 100003 /dev/urandom > data.bin
           for m in SHA-1:sha1 SHA224:sha224 SHA256:sha256 SHA384:sha384 SHA512:sha512; do
             pkcs11-tool --module $UKEY --hash -m ${m%%:*} -i data.bin -o p11.bin
             openssl dgst -${m##*:} -binary data.bin > ossl.bin
             cmp p11.bin ossl.bin && echo "${m%%:*} agrees with openssl"
           done"#,
    );
    for m in ["SHA-1", "SHA224", "SHA256", "SHA384", "SHA512"] {
        assert!(out.contains(&format!("{m} agrees with openssl")), "{out}");
    }
}

#[test]
fn listing_objects_and_token_info_spends_no_pin_try() {
    let (dir, card) = setup();
    run(
        dir.path(),
        &card,
        r#"pkcs11-tool --module $UKEY --login --pin 000000 -O || true
           for i in 1 2 3; do
             pkcs11-tool --module $UKEY -L >/dev/null
             pkcs11-tool --module $UKEY -O >/dev/null
             pkcs11-tool --module $UKEY -T >/dev/null
           done"#,
    );
    assert_eq!(tries(&card), (2, 3), "only the one wrong login counted");
}

/// OpenSC's pkcs11-spy, the usual way to trace PKCS#11 calls, wrapped
/// around our module: it writes into the CK_INTERFACE that C_GetInterface
/// returns (a segfault while that lived in read-only memory). pkcs11-tool
/// lists, logs in and signs through it; openssl verifies the signature and
/// the spy's log shows every call with its result.
#[test]
fn pkcs11_spy_wraps_the_module() {
    require_files(&[SPY]);
    let (dir, card) = setup();
    let out = run(
        dir.path(),
        &card,
        &format!(
            r#"export PKCS11SPY="$UKEY" PKCS11SPY_OUTPUT=$PWD/spy.log
               echo "tender document" > msg.txt
               pkcs11-tool --module {SPY} -L
               pkcs11-tool --module {SPY} -O --login --pin 123456 --sign --id 01 -m SHA256-RSA-PKCS -i msg.txt -o sig.bin
               unset PKCS11SPY
               pkcs11-tool --module $UKEY --read-object --type cert --id 01 -o cert.der
               openssl x509 -inform der -in cert.der -pubkey -noout > pub.pem
               openssl dgst -sha256 -verify pub.pem -signature sig.bin msg.txt
               echo "=== spy"
               grep -E '^[0-9]+: C_|^Returned:' spy.log"#
        ),
    );
    assert!(out.contains("token label        : UKey PIV #"), "{out}");
    assert!(out.contains("Verified OK"), "{out}");
    let (_, spy) = out.split_once("=== spy").unwrap();
    for call in [
        "C_GetInterface",
        "C_Initialize",
        "C_GetSlotList",
        "C_GetTokenInfo",
        "C_OpenSession",
        "C_Login",
        "C_FindObjectsInit",
        "C_GetAttributeValue",
        "C_SignInit",
        "C_Sign",
        "C_Finalize",
    ] {
        assert!(
            spy.contains(&format!(": {call}\n")),
            "{call} in the spy log:\n{spy}"
        );
    }
    assert!(
        spy.matches("Returned:  0 CKR_OK").count() > 20,
        "the spy logged the results:\n{spy}"
    );
    assert_eq!(tries(&card), (3, 3));
}

/// A bad `UKEY_SIM` (a file that is not a token, a directory, a path in a
/// missing directory, a missing file, a path with `:` in it) is one log line
/// each: the real token over pcscd is still listed and signs, and the module
/// never creates a state file (it used to make a token of a missing path,
/// and to fail C_Initialize, hiding every real token, on the others).
#[test]
fn a_bad_ukey_sim_never_hides_the_real_token_nor_creates_a_file() {
    let (dir, card) = setup();
    let sims = dir.path().join("sims");
    std::fs::create_dir_all(sims.join("a-directory")).unwrap();
    std::fs::write(sims.join("junk.json"), b"{\"not\": \"a token\"}").unwrap();
    // A real token whose path has a colon: UKEY_SIM splits it in two, like PATH.
    let colon = init_token(&sims, "odd:name", &[]);
    let before = std::fs::read_dir(&sims).unwrap().count();
    let bad = [
        sims.join("junk.json"),
        sims.join("a-directory"),
        sims.join("no-such-dir/card.json"),
        sims.join("missing.json"),
        colon.clone(),
    ];
    let mut script = String::from("echo \"tender document\" > msg.txt\n");
    for (i, path) in bad.iter().enumerate() {
        script += &format!(
            r#"export UKEY_SIM='{path}' UKEY_LOG=warn
               echo "=== case {i}"
               pkcs11-tool --module $UKEY -L 2>&1 | grep -E "Slot|token label|UKEY_SIM"
               pkcs11-tool --module $UKEY --login --pin 123456 --sign --id 01 -m SHA256-RSA-PKCS -i msg.txt -o sig{i}.bin
               unset UKEY_SIM UKEY_LOG
               pkcs11-tool --module $UKEY --read-object --type cert --id 01 -o cert.der
               openssl x509 -inform der -in cert.der -pubkey -noout > pub.pem
               openssl dgst -sha256 -verify pub.pem -signature sig{i}.bin msg.txt
"#,
            path = path.display()
        );
    }
    let out = run(dir.path(), &card, &script);
    for i in 0..bad.len() {
        let case = out
            .split(&format!("=== case {i}\n"))
            .nth(1)
            .unwrap()
            .split("=== case")
            .next()
            .unwrap();
        assert!(case.contains("Virtual PCD 00 00"), "case {i}:\n{out}");
        assert!(
            case.contains("token label        : UKey PIV #"),
            "case {i}:\n{out}"
        );
        assert!(
            !case.contains("ukey-sim /"),
            "no simulated slot, case {i}:\n{out}"
        );
        assert!(
            case.contains("UKEY_SIM entry"),
            "a log line, case {i}:\n{out}"
        );
        assert!(case.contains("Verified OK"), "case {i}:\n{out}");
    }
    assert_eq!(
        std::fs::read_dir(&sims).unwrap().count(),
        before,
        "no file was created next to the bad paths"
    );
    assert!(!sims.join("no-such-dir").exists());
    assert!(
        !dir.path().join("name.json").exists(),
        "nor in the working directory"
    );
    assert_eq!(tries(&card), (3, 3));
}

/// Issue 4 over PC/SC: pkcs11-tool generates a key and writes its
/// certificate through our module; OpenSC's module and yubico-piv-tool
/// then read the same key and certificate from the card.
#[test]
fn keygen_and_certificate_write_seen_by_opensc_and_yubico_piv_tool() {
    let (dir, card) = setup();
    let ca = dir.path().join("demo-ca");
    let out = run(
        dir.path(),
        &card,
        &format!(
            r#"pkcs11-tool --module $UKEY --keypairgen --key-type EC:prime256v1 --id 05 --login --pin 123456
               pkcs11-tool --module $UKEY --read-object --type pubkey --id 05 -o pub.der
               openssl pkey -pubin -inform der -in pub.der -out pub.pem
               openssl x509 -new -force_pubkey pub.pem -subj "/CN=renewed on the token/" -CA {ca}/ca.pem -CAkey {ca}/ca.key -days 30 -outform der -out cert.der
               pkcs11-tool --module $UKEY --write-object cert.der --type cert --id 05 --login --pin 123456
               echo "=== opensc"
               pkcs11-tool --module $OPENSC_MODULE -O --login --pin 123456
               pkcs11-tool --module $OPENSC_MODULE --read-object --type cert --id 05 -o back.der
               cmp back.der cert.der && echo "OpenSC reads the same certificate"
               pkcs11-tool --module $OPENSC_MODULE --read-object --type pubkey --id 05 -o opensc-pub.der
               cmp opensc-pub.der pub.der && echo "OpenSC reads the same public key"
               echo payload > msg.txt
               pkcs11-tool --module $UKEY --login --pin 123456 --sign --id 05 -m ECDSA-SHA256 --signature-format openssl -i msg.txt -o sig.bin
               openssl dgst -sha256 -verify pub.pem -signature sig.bin msg.txt
               echo "=== yubico"
               yubico-piv-tool -r Virtual -a read-certificate -s 82 -K DER -o yk.der
               cmp yk.der cert.der && echo "yubico-piv-tool reads the same certificate""#,
            ca = ca.display()
        ),
    );
    let (_, opensc) = out.split_once("=== opensc").unwrap();
    assert!(
        opensc
            .contains("Private Key Object; EC\n  label:      Retired KEY MAN 1\n  ID:         05"),
        "{out}"
    );
    assert!(out.contains("OpenSC reads the same public key"), "{out}");
    assert!(out.contains("OpenSC reads the same certificate"), "{out}");
    assert!(out.contains("Verified OK"), "{out}");
    assert!(
        out.contains("yubico-piv-tool reads the same certificate"),
        "{out}"
    );
    let state = ukey_sim::state::Persistent::load(&card).unwrap();
    assert!(
        state.keys.contains_key("82"),
        "the key is in retired slot 1 (82)"
    );
}

/// The APDU count behind the closing note of the module issue: initialize,
/// list all objects, log in, sign — counted by pcscd, not by us.
#[test]
fn apdus_for_initialize_list_login_sign() {
    let (dir, card) = setup();
    run(
        dir.path(),
        &card,
        r#"echo x > m.txt
           pkcs11-tool --module $UKEY -O --login --pin 123456 >/dev/null
           : > pcsc-logs/mark"#,
    );
    let listing = pcscd_apdu_count(dir.path());
    assert!(listing > 0);
    eprintln!("pkcs11-tool -O --login: {listing} APDUs");
}
