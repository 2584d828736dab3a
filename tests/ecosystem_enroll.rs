//! Enrollment and renewal clients putting keys and certificates on the
//! token through `libukey_pkcs11.so`, over pcscd + vpcd + `ukey-sim serve`:
//! NSS (`certutil -R`, `certutil -A`, `cmsutil`), certmonger (`getcert`
//! with its `local` CA on a private D-Bus) and GnuTLS `p11tool`. Each one
//! names what it creates (CKA_ID, CKA_LABEL) and finds it again in another
//! process; none of them may take another slot's key or certificate with it.
//! OpenSSL and OpenSC judge the results; the card's state file is the
//! witness for what is on the token and for the PIN counter.

use std::collections::BTreeMap;
use std::path::Path;
use ukey_pkcs11::names::{Names, MAX_NAMES_LEN, NAMES_OBJECT};
use ukey_sim::state::Persistent;
use ukey_tests::*;

/// A fresh NSS database `nssdb/` with the module and the demo CA, `pw.txt`.
const NSS_SETUP: &str = r#"
rm -rf nssdb && mkdir nssdb
certutil -N -d sql:nssdb --empty-password
modutil -dbdir sql:nssdb -add ukey -libfile "$UKEY" -force </dev/null >/dev/null
certutil -A -d sql:nssdb -n demo-ca -t CT,C,C -i "$CA/ca.pem"
echo 123456 > pw.txt
printf 'basicConstraints=critical,CA:FALSE\n' > leaf.ext
"#;

/// A key as the card stores it (algorithm, policies, origin, key material).
fn key_of(p: &Persistent, slot: &str) -> Option<Vec<u8>> {
    p.keys.get(slot).map(|k| {
        let mut v = vec![k.algorithm, k.pin_policy, k.touch_policy, k.origin];
        v.extend_from_slice(&k.private_key.0);
        v
    })
}

/// Key slots (as `ukey-sim` names them) and their keys.
fn keys(state: &Path) -> BTreeMap<String, Vec<u8>> {
    let p = Persistent::load(state).expect("state");
    p.keys
        .keys()
        .filter(|slot| *slot != "f9")
        .filter_map(|slot| Some((slot.clone(), key_of(&p, slot)?)))
        .collect()
}

#[test]
fn nss_certutil_makes_keys_and_requests_installs_certificates_and_signs() {
    require_tools(&["certutil", "cmsutil", "modutil", "openssl", "pkcs11-tool"]);
    let card = DemoCard::new();
    let before = keys(&card.state);
    let out = card.run(&format!(
        r#"{NSS_SETUP}
        for k in "ec -q nistp256" "rsa -g 2048"; do
          read -r type opts <<<"$k"
          certutil -R -d sql:nssdb -h "$TOKEN" -f pw.txt -k $type $opts -s "CN=nss $type" \
            -o $type.req -z /etc/hostname </dev/null
          openssl req -inform DER -in $type.req -verify -noout 2>&1 | grep -q "verify OK"
          echo "request $type: verified"
          openssl req -inform DER -in $type.req -out $type.csr
          openssl x509 -req -in $type.csr -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -days 30 \
            -extfile leaf.ext -outform DER -out $type.der 2>/dev/null
          certutil -A -d sql:nssdb -h "$TOKEN" -f pw.txt -n "nss-$type" -t ,, -i $type.der
        done
        echo "=== listing"
        certutil -L -d sql:nssdb -h all -f pw.txt
        echo "=== end"
        echo "purchase order 42" > msg.txt
        for type in ec rsa; do
          cmsutil -S -d sql:nssdb -N "$TOKEN:nss-$type" -f pw.txt -i msg.txt -o $type.p7
          openssl cms -verify -inform DER -in $type.p7 -CAfile "$CA/ca.pem" -purpose any \
            -signer signer.pem -out content.txt 2>/dev/null
          cmp content.txt msg.txt
          openssl x509 -in signer.pem -outform DER | cmp - $type.der
          echo "cms $type: verified"
        done
        echo "=== opensc"
        # OpenSC's own module reads what NSS wrote, in the retired slots.
        pkcs11-tool --module "$OPENSC_MODULE" -O 2>/dev/null | grep -A3 "Certificate Object"
        echo "=== ours"
        pkcs11-tool --module "$UKEY" --login --pin 123456 -O 2>/dev/null"#
    ));
    for t in ["ec", "rsa"] {
        assert!(out.contains(&format!("request {t}: verified")), "{out}");
        assert!(out.contains(&format!("cms {t}: verified")), "{out}");
    }
    let (_, listing) = out.split_once("=== listing").unwrap();
    let (listing, _) = listing.split_once("=== end").unwrap();
    for nick in ["nss-ec", "nss-rsa"] {
        let line = format!("{}:{nick}", card.label());
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(&line) && l.trim_end().ends_with("u,u,u")),
            "{nick} with its key: {out}"
        );
    }
    // Two new keys in the first free retired slots; nothing else changed.
    let after = keys(&card.state);
    let new: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(new, ["82", "83"], "{out}");
    for (slot, k) in &before {
        assert_eq!(after.get(slot), Some(k), "slot {slot}");
    }
    // The NSS names live on the card: CKA_ID = SHA-1 of the public key on
    // the key pair and the certificate, the nickname as certificate label.
    let (_, ours) = out.split_once("=== ours").unwrap();
    assert_eq!(ours.matches("label:      nss-ec").count(), 1, "{out}");
    assert_eq!(ours.matches("label:      nss-rsa").count(), 1, "{out}");
    let p = Persistent::load(&card.state).unwrap();
    let names =
        Names::parse(p.objects.get(&NAMES_OBJECT.0).expect("names object")).expect("ukey names");
    for slot in [apdu::piv::Slot::Retired(1), apdu::piv::Slot::Retired(2)] {
        let n = names.get(slot).expect("names of the new slot");
        assert_eq!(n.id.as_ref().map(Vec::len), Some(20), "{n:?}");
        assert!(ours.contains(&hex::encode(n.id.as_ref().unwrap())), "{out}");
    }
    assert_eq!(card.tries(), (3, 3));
}

/// NSS's key generation fails after the card made the key (the names
/// object has no room for NSS's CKA_ID): NSS destroys the new key from a
/// read-only session, which the module allows for a key this application
/// just made and nothing else. A certificate for no key on the token is
/// refused. After every failure the token holds what it held before.
#[test]
fn nss_failures_leave_no_orphan_key_and_change_nothing() {
    require_tools(&["certutil", "modutil", "openssl"]);
    let card = DemoCard::new();
    // Labels of certificates in slots that stay empty, up to a few bytes
    // short of the object's limit: an entry for a 20-byte ID cannot fit.
    let mut p = Persistent::load(&card.state).unwrap();
    let mut names = Names::default();
    for n in 5..=20u8 {
        names.update(apdu::piv::Slot::Retired(n), |e| {
            e.cert_label = Some(vec![b'x'; 180])
        });
    }
    // An entry for a slot with a 20-byte ID takes 27 bytes: no room.
    let len = names.encode().len();
    assert!(len <= MAX_NAMES_LEN && len + 27 > MAX_NAMES_LEN, "{len}");
    p.objects.insert(NAMES_OBJECT.0, names.encode());
    p.save(&card.state).unwrap();
    let before = Persistent::load(&card.state).unwrap();
    let out = card.run(&format!(
        r#"{NSS_SETUP}
        export UKEY_LOG=ukey_pkcs11=info UKEY_LOG_FILE=$PWD/module.log
        if certutil -R -d sql:nssdb -h "$TOKEN" -f pw.txt -k ec -q nistp256 -s "CN=no room" \
             -o full.req -z /etc/hostname </dev/null; then
          cat module.log; echo "request made without room for its name"; exit 1
        fi
        echo "=== keygen failed as it should"
        # A certificate whose key is on no token.
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
          -subj /CN=elsewhere -days 1 -outform DER -out other.der 2>/dev/null
        if certutil -A -d sql:nssdb -h "$TOKEN" -f pw.txt -n elsewhere -t ,, -i other.der; then
          echo "certificate for no key stored"; exit 1
        fi
        echo "=== foreign certificate refused"
        cat module.log"#
    ));
    assert!(out.contains("=== foreign certificate refused"), "{out}");
    // The key was made (the log says so), then destroyed by NSS's cleanup.
    assert!(out.contains("generated key pair slot=82"), "{out}");
    assert!(out.contains("destroyed slot=82 kind=PrivateKey"), "{out}");
    let after = Persistent::load(&card.state).unwrap();
    assert_eq!(
        after.keys.keys().collect::<Vec<_>>(),
        before.keys.keys().collect::<Vec<_>>(),
        "no orphan key: {out}"
    );
    for (o, v) in &before.objects {
        if *o != apdu::piv::ObjectId::KEY_HISTORY.0 {
            assert_eq!(after.objects.get(o), Some(v), "object {o:06X} unchanged");
        }
    }
    assert_eq!(
        after.objects.len(),
        before.objects.len() + usize::from(!before.objects.contains_key(&0x5F_C10C)),
        "{out}"
    );
    assert_eq!(card.tries(), (3, 3));
}

/// certmonger's helpers clear their environment: the module gets its
/// settings (here the log) from /etc/ukey/ukey.toml, which the script
/// writes into a copy-on-write /etc; /var is copied too, so certmonger's
/// request store vanishes with the namespace.
const CERTMONGER_SETUP: &str = r#"
overlay_root=$(mktemp -d)
for d in /etc /var; do
  n=${d//\//_}
  mkdir -p "$overlay_root/up$n" "$overlay_root/work$n"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$overlay_root/up$n,workdir=$overlay_root/work$n" "$d"
done
mkdir -p /etc/ukey
printf 'log = "ukey_pkcs11=info"\nlog_file = "%s/module.log"\n' "$PWD" > /etc/ukey/ukey.toml
rm -rf /var/lib/certmonger/requests/* home && mkdir -p home
export HOME=$PWD/home
dbus-daemon --session --fork --address="unix:path=$PWD/bus" --print-pid > dbus.pid
export DBUS_SESSION_BUS_ADDRESS="unix:path=$PWD/bus"
certmonger -s -n -d 2 > certmonger.log 2>&1 &
certmonger=$!
trap 'kill $certmonger $(cat dbus.pid) 2>/dev/null || true' EXIT
for _ in $(seq 50); do getcert list-cas -s >/dev/null 2>&1 && break; sleep 0.1; done
# The state of request $1 becomes $2 within 60 s.
wait_state() {
  for _ in $(seq 240); do
    s=$(getcert list -s -i "$1" | sed -n 's/^[[:space:]]*status: //p')
    [ "$s" = "$2" ] && return 0
    sleep 0.25
  done
  getcert list -s -i "$1"; tail -50 certmonger.log; return 1
}
snapshot() { cp "$STATE" "$1.json"; }
"#;

#[test]
fn certmonger_requests_renews_and_rekeys_on_the_token_and_keeps_the_other_slots() {
    require_tools(&[
        "certmonger",
        "getcert",
        "dbus-daemon",
        "certutil",
        "modutil",
    ]);
    let card = DemoCard::new();
    let original = Persistent::load(&card.state).unwrap();
    let out = card.run(&format!(
        r#"{NSS_SETUP}{CERTMONGER_SETUP}
        getcert request -s -d "sql:$PWD/nssdb" -t "$TOKEN" -n cm -I cm -c local -p "$PWD/pw.txt" \
          -G rsa -g 2048 -N "CN=certmonger on the token" >/dev/null
        wait_state cm MONITORING && echo "=== request: MONITORING"
        snapshot requested
        getcert resubmit -s -i cm >/dev/null
        sleep 1; wait_state cm MONITORING && echo "=== resubmit: MONITORING"
        snapshot resubmitted
        getcert rekey -s -i cm >/dev/null
        sleep 1; wait_state cm MONITORING && echo "=== rekey: MONITORING"
        snapshot rekeyed
        # The demo token's 9A certificate, renewed by certmonger: its key
        # stays, and certmonger tries to delete every certificate with the
        # same subject (9C, 9D, 9E).
        getcert request -s -d "sql:$PWD/nssdb" -t "$TOKEN" -n "Certificate for PIV Authentication" \
          -I piv-auth -c local -p "$PWD/pw.txt" >/dev/null
        wait_state piv-auth MONITORING && echo "=== 9A renewal: MONITORING"
        getcert list -s
        snapshot renewed
        echo "=== module log"
        cat module.log"#
    ));
    for step in ["request", "resubmit", "rekey", "9A renewal"] {
        assert!(out.contains(&format!("=== {step}: MONITORING")), "{out}");
    }
    let snap = |name: &str| Persistent::load(&card.path().join(format!("{name}.json"))).unwrap();
    let key_slots = |p: &Persistent| {
        p.keys
            .keys()
            .filter(|s| *s != "f9")
            .cloned()
            .collect::<Vec<_>>()
    };
    let cert = |p: &Persistent, o: u32| p.objects.get(&o).cloned();
    let (requested, resubmitted, rekeyed, renewed) = (
        snap("requested"),
        snap("resubmitted"),
        snap("rekeyed"),
        snap("renewed"),
    );
    // request: a new key and its certificate in the first free retired slot.
    assert_eq!(key_slots(&requested), ["82", "9a", "9c", "9d", "9e"]);
    assert!(cert(&requested, 0x5F_C10D).is_some(), "{out}");
    // resubmit: a new certificate for the same key, in the same slot.
    assert_eq!(key_slots(&resubmitted), key_slots(&requested));
    assert_eq!(key_of(&resubmitted, "82"), key_of(&requested, "82"));
    assert_ne!(cert(&resubmitted, 0x5F_C10D), cert(&requested, 0x5F_C10D));
    // rekey: a new key and certificate in the next retired slot; certmonger
    // leaves the old pair (it looks for old certificates by a nickname
    // without the token's name, so it finds none on the token).
    assert_eq!(key_slots(&rekeyed), ["82", "83", "9a", "9c", "9d", "9e"]);
    assert_eq!(key_of(&rekeyed, "82"), key_of(&resubmitted, "82"));
    assert_eq!(cert(&rekeyed, 0x5F_C10D), cert(&resubmitted, 0x5F_C10D));
    assert!(cert(&rekeyed, 0x5F_C10E).is_some(), "{out}");
    // 9A renewal: certmonger's deletes of 9C/9D/9E were refused; 9A has a
    // new certificate for its own key; every other key and certificate is
    // byte for byte what it was; the retired slots hold certmonger's pairs.
    assert!(
        out.matches("C_DestroyObject refused").count() >= 3,
        "certmonger tried to delete the same-subject certificates: {out}"
    );
    assert_eq!(key_slots(&renewed), ["82", "83", "9a", "9c", "9d", "9e"]);
    for (slot, obj) in [("9c", 0x5F_C10A), ("9d", 0x5F_C10B), ("9e", 0x5F_C101)] {
        assert_eq!(
            key_of(&renewed, slot),
            key_of(&original, slot),
            "key {slot}"
        );
        assert_eq!(
            cert(&renewed, obj),
            cert(&original, obj),
            "certificate {slot}"
        );
    }
    assert_eq!(key_of(&renewed, "9a"), key_of(&original, "9a"));
    assert_ne!(cert(&renewed, 0x5F_C105), cert(&original, 0x5F_C105));
    for r in ["82", "83"] {
        assert_eq!(key_of(&renewed, r), key_of(&rekeyed, r), "retired {r}");
    }
    for o in [0x5F_C10D, 0x5F_C10E] {
        assert_eq!(cert(&renewed, o), cert(&rekeyed, o));
    }
    // The module was configured by /etc/ukey/ukey.toml (certmonger's
    // helpers have no UKEY_* variables), and nothing spent a PIN try.
    assert!(out.contains("generated key pair slot=82"), "{out}");
    assert_eq!(card.tries(), (3, 3));
}

#[test]
fn gnutls_p11tool_generates_without_id_writes_its_certificate_and_finds_it_by_label() {
    require_tools(&["p11tool", "certtool", "openssl"]);
    let card = DemoCard::new();
    let before = keys(&card.state);
    let out = card.run(
        r#"export GNUTLS_PIN=123456
        p11tool --provider "$UKEY" --login --generate-ecc --curve secp256r1 \
          --label "tls client 2026" "$TOKEN_URI" > pub.pem
        openssl x509 -new -force_pubkey pub.pem -subj "/CN=p11tool client" -days 30 \
          -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -out cert.pem 2>/dev/null
        p11tool --provider "$UKEY" --login --write --load-certificate cert.pem \
          --label "tls client 2026" "$TOKEN_URI"
        echo "=== found by label"
        # New processes: by label, the certificate and the private key.
        p11tool --provider "$UKEY" --list-all-certs "$TOKEN_URI;object=tls%20client%202026"
        p11tool --provider "$UKEY" --login --list-privkeys "$TOKEN_URI;object=tls%20client%202026"
        p11tool --provider "$UKEY" --export "$TOKEN_URI;object=tls%20client%202026;type=cert" \
          --outfile exported.pem
        cmp <(openssl x509 -in exported.pem -outform DER) <(openssl x509 -in cert.pem -outform DER)
        echo "=== exported = written"
        # And it signs, named by its label (p11tool checks the signature
        # with the public key it finds by the same label).
        p11tool --provider "$UKEY" --login --test-sign \
          "$TOKEN_URI;object=tls%20client%202026;type=private""#,
    );
    assert!(out.contains("=== exported = written"), "{out}");
    let (_, found) = out.split_once("=== found by label").unwrap();
    assert_eq!(found.matches("Type: X.509 Certificate").count(), 1, "{out}");
    assert_eq!(found.matches("Type: Private key").count(), 1, "{out}");
    assert!(
        out.contains("Verifying against public key in the token... ok"),
        "{out}"
    );
    let after = keys(&card.state);
    let new: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert_eq!(new, ["82"], "{out}");
    assert_eq!(card.tries(), (3, 3));
}

/// The deliberate way for OpenSC's pkcs11-tool: a primary slot's
/// certificate and key go with the SO login (the management key), not with
/// the user's PIN.
#[test]
fn pkcs11_tool_deletes_primary_slot_objects_only_as_the_so() {
    require_tools(&["pkcs11-tool", "openssl"]);
    let card = DemoCard::new();
    let fresh = init_token(card.path(), "fresh", &[]);
    let out = with_pcscd(
        card.path(),
        &[&fresh],
        &format!(
            r#"UKEY='{ukey}'; CA='{ca}'
            SO="--login --login-type so --so-pin 010203040506070801020304050607080102030405060708"
            pkcs11-tool --module "$UKEY" $SO --keypairgen --key-type EC:prime256v1 --id 02 >/dev/null
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem \
              -subj /CN=x -days 1 2>/dev/null >/dev/null
            pkcs11-tool --module "$UKEY" --read-object --type pubkey --id 02 -o pub.der 2>/dev/null
            openssl pkey -pubin -inform DER -in pub.der -out pub.pem
            openssl x509 -new -force_pubkey pub.pem -subj "/CN=signer" -days 1 -CA "$CA/ca.pem" \
              -CAkey "$CA/ca.key" -outform DER -out c.der
            pkcs11-tool --module "$UKEY" $SO --write-object c.der --type cert --id 02 >/dev/null
            for t in cert privkey; do
              if pkcs11-tool --module "$UKEY" --login --pin 123456 --delete-object --type $t --id 02; then
                echo "the user deleted the $t"; exit 1
              fi
            done
            echo "=== refused to the user"
            pkcs11-tool --module "$UKEY" $SO --delete-object --type cert --id 02
            echo "=== deleted by the SO"
            pkcs11-tool --module "$UKEY" -O --type cert"#,
            ukey = module().display(),
            ca = card.path().join("demo-ca").display(),
        ),
    );
    assert!(out.contains("=== refused to the user"), "{out}");
    // CKR_ACTION_PROHIBITED, which pkcs11-tool 0.23 prints as a number.
    assert_eq!(
        out.matches("rv = unknown PKCS11 error (0x1b)").count(),
        2,
        "{out}"
    );
    let (_, after) = out.split_once("=== deleted by the SO").unwrap();
    assert!(!after.contains("Certificate Object"), "{out}");
    let p = Persistent::load(&fresh).unwrap();
    assert!(p.keys.contains_key("9c"), "the key stays");
    assert_eq!((p.pin.tries_left, p.puk.tries_left), (3, 3));
}

/// The configuration file: certmonger-like clients with no UKEY_*
/// variables get the simulated token from `sim` in the file, `ukey` reads
/// the same file, and a broken file is one line on stderr while the PC/SC
/// token stays in the list.
#[test]
fn the_configuration_file_is_read_by_the_module_and_ukey_and_a_bad_one_hides_nothing() {
    require_tools(&["pkcs11-tool", "env"]);
    let card = DemoCard::new();
    let other = init_token(card.path(), "other", &["--serial", "7654321"]);
    let out = card.run(&format!(
        r#"OTHER='{other}'
        printf 'sim = ["%s"]\nno_pcsc = true\n' "$OTHER" > good.toml
        printf 'no_pcsc = true\nsimm = ["/nowhere"]\n' > bad.toml
        echo "=== good"
        env -i PATH="$PATH" UKEY_CONFIG=good.toml pkcs11-tool --module "$UKEY" -L 2>&1
        env -i PATH="$PATH" UKEY_CONFIG=good.toml UKEY_MODULE="$UKEY" "$REPO/target/release/ukey" readers 2>&1
        echo "=== environment wins"
        env -i PATH="$PATH" UKEY_CONFIG=good.toml UKEY_NO_PCSC=0 UKEY_SIM= pkcs11-tool --module "$UKEY" -L 2>&1
        echo "=== bad"
        env -i PATH="$PATH" UKEY_CONFIG=bad.toml pkcs11-tool --module "$UKEY" -L 2>&1"#,
        other = other.display(),
    ));
    let section = |name: &str| {
        let (_, rest) = out.split_once(&format!("=== {name}\n")).unwrap();
        rest.split("\n=== ").next().unwrap().to_string()
    };
    let good = section("good");
    assert!(good.contains("UKey PIV #7654321"), "{out}");
    assert!(
        !good.contains(&card.label()),
        "no_pcsc from the file: {out}"
    );
    let env_wins = section("environment wins");
    assert!(env_wins.contains(&card.label()), "{out}");
    assert!(!env_wins.contains("UKey PIV #7654321"), "{out}");
    let bad = section("bad");
    assert!(bad.contains(&card.label()), "PC/SC stays: {out}");
    let lines: Vec<_> = bad
        .lines()
        .filter(|l| l.contains("configuration"))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].contains("bad.toml") && lines[0].contains("unknown field `simm`"),
        "{out}"
    );
}
