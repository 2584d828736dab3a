//! Every card profile of the simulator over pcscd + vpcd: OpenSC's module
//! is the cross-check that the profile is a believable card (it lists the
//! certificates and keys and reads what we write), and our module, driven
//! by OpenSC's `pkcs11-tool` in a new process per step, must list the same
//! objects, sign (verified by `openssl`), and keep a key it generated
//! visible to the next process until its certificate is written. One test
//! per profile.

use std::path::Path;
use ukey_tests::*;

const DEFAULT_MGMT: &str = "010203040506070801020304050607080102030405060708";

fn section(out: &str, name: &str) -> std::collections::BTreeSet<(String, String, String)> {
    let start = out
        .find(&format!("=== {name}\n"))
        .unwrap_or_else(|| panic!("{name}: {out}"));
    let rest = &out[start + name.len() + 5..];
    pkcs11_tool_objects(&rest[..rest.find("=== ").unwrap_or(rest.len())])
}

fn on_profile(profile: &str) {
    require_tools(&["pkcs11-tool", "openssl"]);
    let dir = tempfile::tempdir().unwrap();
    let card = init_token(dir.path(), "card", &["--profile", profile, "--demo"]);
    let protected = show(&card)["management_key"]["protected"] == true;
    // Writes: the PIN where the management key is PIN-protected, else the
    // SO with the management key (cards that keep no ADMIN DATA).
    let write = if protected {
        "--login --pin 123456".to_string()
    } else {
        format!("--login --login-type so --so-pin {DEFAULT_MGMT}")
    };
    let ca = dir.path().join("demo-ca");
    let out = with_pcscd(
        dir.path(),
        &[Path::new(&card)],
        &format!(
            r#"export UKEY="{ukey}" XDG_STATE_HOME="$PWD/state"
            list() {{
              for m in UKEY OPENSC_MODULE; do
                echo "=== $m $1 public"; pkcs11-tool --module "${{!m}}" -O
                echo "=== $m $1 login"; pkcs11-tool --module "${{!m}}" -O --login --pin 123456
              done
            }}
            list before
            echo "=== signatures"
            echo "tender document" > msg.txt
            pkcs11-tool --module "$UKEY" --login --pin 123456 --sign --id 01 -m SHA256-RSA-PKCS -i msg.txt -o sig1.bin
            pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --id 01 -o cert1.der
            openssl x509 -inform der -in cert1.der -pubkey -noout > pub1.pem
            openssl dgst -sha256 -verify pub1.pem -signature sig1.bin msg.txt
            pkcs11-tool --module "$UKEY" --login --pin 123456 --sign --id 04 -m ECDSA-SHA384 --signature-format openssl -i msg.txt -o sig4.bin
            pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --id 04 -o cert4.der
            openssl x509 -inform der -in cert4.der -pubkey -noout > pub4.pem
            openssl dgst -sha384 -verify pub4.pem -signature sig4.bin msg.txt
            echo "=== keygen"
            pkcs11-tool --module "$UKEY" {write} --keypairgen --key-type EC:prime256v1 --id 05
            # A new process: the key is still visible.
            pkcs11-tool --module "$UKEY" --read-object --type pubkey --id 05 -o pub5.der
            {{ ls state/ukey/generated-keys 2>/dev/null || true; }} | sed 's/^/recorded on this host: /'
            openssl pkey -pubin -inform der -in pub5.der -out pub5.pem
            openssl x509 -new -force_pubkey pub5.pem -subj "/CN=new key on {profile}/" -CA "{ca}/ca.pem" -CAkey "{ca}/ca.key" -days 30 -outform der -out cert5.der
            pkcs11-tool --module "$UKEY" {write} --write-object cert5.der --type cert --id 05
            pkcs11-tool --module "$UKEY" --login --pin 123456 --sign --id 05 -m ECDSA-SHA256 --signature-format openssl -i msg.txt -o sig5.bin
            openssl dgst -sha256 -verify pub5.pem -signature sig5.bin msg.txt
            pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --id 05 -o back5.der
            cmp back5.der cert5.der && echo "OpenSC reads the new certificate"
            pkcs11-tool --module "$OPENSC_MODULE" --read-object --type pubkey --id 05 -o opensc5.der
            cmp opensc5.der pub5.der && echo "OpenSC reads the new public key"
            {{ ls state/ukey/generated-keys 2>/dev/null || true; }} | sed 's/^/host record: /'
            list after
            echo "=== end""#,
            ukey = module().display(),
            ca = ca.display(),
        ),
    );
    for when in ["before", "after"] {
        for view in ["public", "login"] {
            let ours = section(&out, &format!("UKEY {when} {view}"));
            let opensc = section(&out, &format!("OPENSC_MODULE {when} {view}"));
            assert_eq!(
                ours, opensc,
                "{profile}, {when}, {view}: ours (left) and OpenSC's (right) differ\n{out}"
            );
        }
    }
    let before = section(&out, "UKEY before login");
    assert_eq!(
        before.len(),
        12,
        "4 keys, public keys, certificates: {before:?}"
    );
    let after = section(&out, "UKEY after login");
    for (class, label) in [
        ("private", "Retired KEY MAN 1"),
        ("public", "Retired KEY MAN 1"),
        ("cert", "Retired Certificate for Key Management 1"),
    ] {
        let o = (class.to_string(), label.to_string(), "05".to_string());
        assert!(after.contains(&o), "{profile}: {o:?} in {after:?}");
    }
    assert_eq!(out.matches("Verified OK").count(), 3, "{out}");
    assert!(out.contains("OpenSC reads the new certificate"), "{out}");
    assert!(out.contains("OpenSC reads the new public key"), "{out}");
    // Cards that keep no ukey object: the new key was recorded on the host
    // (the others report it, or keep the record themselves)...
    assert_eq!(
        out.contains("recorded on this host: "),
        matches!(profile, "generic" | "compat"),
        "{out}"
    );
    // ...and the record went with its certificate.
    assert!(!out.contains("host record: "), "{out}");
    assert_eq!(tries(&card), (3, 3), "{profile}: no PIN try spent");
}

/// One test per profile.
macro_rules! on_every_profile {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            on_profile(stringify!($name));
        }
    )*};
}

on_every_profile!(yk57, yk54, yk4, generic, compat);
