//! PKCS#11 URIs (RFC 7512) and OpenSC compatibility, over pcscd + vpcd +
//! `ukey-sim serve`: a token's URI is made of stable card facts
//! (manufacturer, model, serial, label), so `pkcs11:token=...;object=...`
//! URIs keep naming the same objects after the card is pulled and
//! reinserted, even into another reader (another slot); and the objects
//! carry the labels and CKA_IDs OpenSC's PIV module gives the same card,
//! so configurations written for OpenSC keep working.

use ukey_tests::*;

fn setup() -> DemoCard {
    require_tools(&["p11tool", "pkcs11-tool", "opensc-tool", "openssl"]);
    require_files(&[OPENSC_MODULE]);
    DemoCard::new()
}

#[test]
fn pkcs11_uris_stay_valid_across_reinsertion_and_a_reader_change() {
    let card = setup();
    let out = card.run(
        r#"cert_uri="$TOKEN_URI;object=Certificate%20for%20PIV%20Authentication;type=cert"
        key_uri="$TOKEN_URI;object=PIV%20AUTH%20key;type=private"
        present() { opensc-tool -l | grep -q "Yes .*Virtual PCD 00 0$1"; }
        wait_for() { for _ in $(seq 100); do "$@" && return 0; sleep 0.1; done; return 1; }
        snapshot() {
          echo "--- $1"
          p11tool --provider "$UKEY" --list-token-urls
          p11tool --provider "$UKEY" --export "$cert_uri" --outfile "cert-$1.pem"
          GNUTLS_PIN=123456 p11tool --provider "$UKEY" --login --list-privkeys "$key_uri" | grep URL:
          pkcs11-tool --module "$UKEY" -L | grep -B1 "token label"
        }
        snapshot first
        "$UKEY_SIM_BIN" control --state "$STATE" remove
        wait_for eval '! present 0'
        echo "--- pulled"
        p11tool --provider "$UKEY" --list-token-urls
        p11tool --provider "$UKEY" --export "$cert_uri" --outfile pulled.pem || echo "no such object while pulled"
        "$UKEY_SIM_BIN" control --state "$STATE" insert
        wait_for present 0
        snapshot reinserted
        # Pull the card and put it into the other reader: a new slot.
        "$UKEY_SIM_BIN" control --state "$STATE" remove
        wait_for eval '! present 0'
        kill $UKEY_SIM_PIDS
        "$UKEY_SIM_BIN" serve --state "$STATE" --vpcd 127.0.0.1:35964 > sim-moved.log 2>&1 &
        moved=$!
        trap 'kill $moved 2>/dev/null || true' EXIT
        wait_for present 1
        snapshot moved
        cmp cert-first.pem cert-reinserted.pem && cmp cert-first.pem cert-moved.pem &&
          echo "the same certificate every time""#,
    );
    let sections: Vec<&str> = out.split("--- ").collect();
    let find = |name: &str| {
        sections
            .iter()
            .find(|s| s.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {out}"))
            .to_string()
    };
    let (first, pulled, reinserted, moved) = (
        find("first"),
        find("pulled"),
        find("reinserted"),
        find("moved"),
    );
    let token_url = format!(
        "pkcs11:model=YubiKey%20YK5;manufacturer=Yubico;serial={s};token=UKey%20PIV%20%23{s}",
        s = card.serial
    );
    let key_url = format!("{token_url};id=%01;object=PIV%20AUTH%20key;type=private");
    for s in [&first, &reinserted, &moved] {
        assert!(s.contains(&format!("{token_url}\n")), "{out}");
        assert!(s.contains(&format!("URL: {key_url}")), "{out}");
    }
    assert!(!pulled.contains("pkcs11:model="), "no token: {out}");
    assert!(pulled.contains("no such object while pulled"), "{out}");
    assert!(first.contains("Virtual PCD 00 00"), "{out}");
    assert!(
        moved.contains("Virtual PCD 00 01") && !moved.contains("Virtual PCD 00 00"),
        "another slot: {out}"
    );
    assert!(out.contains("the same certificate every time"), "{out}");
    assert_eq!(card.tries(), (3, 3));
}

#[test]
fn object_labels_and_ids_match_opensc_for_the_same_card() {
    let card = setup();
    let out = card.run(
        r#"# Keys and certificates in retired slots 1, 6 and 20 (CKA_ID 05, 10, 24),
        # made through our module.
        for id in 05 10 24; do
          pkcs11-tool --module "$UKEY" --keypairgen --key-type EC:prime256v1 --id $id \
            --login --pin 123456 >/dev/null
          pkcs11-tool --module "$UKEY" --read-object --type pubkey --id $id -o pub.der
          openssl pkey -pubin -inform DER -in pub.der -out pub.pem
          openssl x509 -new -force_pubkey pub.pem -subj "/CN=retired $id" -days 30 \
            -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -outform DER -out cert.der
          pkcs11-tool --module "$UKEY" --write-object cert.der --type cert --id $id \
            --login --pin 123456 >/dev/null
        done
        for m in UKEY OPENSC_MODULE; do
          echo "=== $m public"
          pkcs11-tool --module "${!m}" -O
          echo "=== $m login"
          pkcs11-tool --module "${!m}" -O --login --pin 123456
        done
        echo "=== end""#,
    );
    let section = |name: &str| {
        let start = out
            .find(&format!("=== {name}\n"))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        let rest = &out[start + name.len() + 5..];
        pkcs11_tool_objects(&rest[..rest.find("=== ").unwrap()])
    };
    for view in ["public", "login"] {
        let ours = section(&format!("UKEY {view}"));
        let opensc = section(&format!("OPENSC_MODULE {view}"));
        assert_eq!(
            ours, opensc,
            "{view}: ours (left) and OpenSC's (right) differ\n{out}"
        );
    }
    let all = section("UKEY login");
    for (class, label, id) in [
        ("private", "PIV AUTH key", "01"),
        ("public", "PIV AUTH pubkey", "01"),
        ("cert", "Certificate for PIV Authentication", "01"),
        ("private", "SIGN key", "02"),
        ("cert", "Certificate for Digital Signature", "02"),
        ("private", "KEY MAN key", "03"),
        ("private", "CARD AUTH key", "04"),
        ("cert", "Certificate for Card Authentication", "04"),
        ("private", "Retired KEY MAN 1", "05"),
        ("public", "Retired KEY MAN 6", "10"),
        ("cert", "Retired Certificate for Key Management 20", "24"),
    ] {
        let o = (class.to_string(), label.to_string(), id.to_string());
        assert!(all.contains(&o), "{o:?}: {all:?}");
    }
    assert_eq!(all.len(), 21, "7 slots x 3 objects: {all:?}");
    assert_eq!(card.tries(), (3, 3));
}
