//! OpenSSH with `libukey_pkcs11.so` over pcscd + vpcd + `ukey-sim serve`:
//! `ssh-keygen -D` lists the token's public keys (the keys of the card's
//! certificates), and an `sshd` on loopback in the test's private network
//! namespace accepts `ssh -I` logins authenticated by each of the token's
//! signature keys, directly and through `ssh-agent` (`ssh-add -s`).
//!
//! The PIN: ssh asks for it through `SSH_ASKPASS` when
//! `SSH_ASKPASS_REQUIRE=force` (OpenSSH 8.4+), with no terminal or display
//! needed; `-o BatchMode=yes` would forbid the prompt and so the login.

use ukey_tests::*;

fn setup() -> DemoCard {
    require_tools(&[
        "ssh",
        "ssh-keygen",
        "ssh-agent",
        "ssh-add",
        "/usr/sbin/sshd",
        "openssl",
        "pkcs11-tool",
    ]);
    DemoCard::new()
}

/// The key of each certificate on the card (read with OpenSC's module) in
/// OpenSSH's format: `card-ID.pub`.
const CARD_KEYS: &str = r#"
for id in 01 02 03 04; do
  pkcs11-tool --module "$OPENSC_MODULE" --read-object --type cert --id $id -o cert-$id.der 2>/dev/null
  openssl x509 -inform DER -in cert-$id.der -noout -pubkey > pub-$id.pem
  ssh-keygen -i -m PKCS8 -f pub-$id.pem > card-$id.pub
done
"#;

#[test]
fn ssh_keygen_lists_the_keys_of_the_cards_certificates() {
    let card = setup();
    let out = card.run(&format!(
        r#"{CARD_KEYS}
        ssh-keygen -D "$UKEY" > token.pub
        cat token.pub
        for k in "01 PIV AUTH pubkey" "02 SIGN pubkey" "03 KEY MAN pubkey" "04 CARD AUTH pubkey"; do
          read -r id label <<<"$k"
          # "TYPE BASE64 LABEL": the same key as the certificate's.
          grep -F " $label" token.pub | cut -d' ' -f1,2 | cmp - <(cut -d' ' -f1,2 card-$id.pub)
          echo "$label = certificate $id"
        done"#
    ));
    assert_eq!(out.matches("ssh-rsa ").count(), 2, "{out}");
    assert_eq!(out.matches("ecdsa-sha2-nistp256 ").count(), 1, "{out}");
    assert_eq!(out.matches("ecdsa-sha2-nistp384 ").count(), 1, "{out}");
    assert_eq!(out.matches(" = certificate ").count(), 4, "{out}");
    assert_eq!(card.tries(), (3, 3), "listing needs no PIN");
}

#[test]
fn sshd_accepts_logins_authenticated_by_the_tokens_keys() {
    let card = setup();
    let out = card.run(&format!(
        r#"{CARD_KEYS}
        d=$PWD/sshd
        mkdir -p "$d"
        chmod 700 "$d"
        # sshd needs its privilege separation directory, /run/sshd: give the
        # namespace its own /run rather than create it on the machine, and
        # carry pcscd's socket directory over.
        mkdir "$d/pcscd"
        mount --bind /run/pcscd "$d/pcscd"
        mount -t tmpfs tmpfs /run
        mkdir /run/pcscd /run/sshd
        mount --bind "$d/pcscd" /run/pcscd
        ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
        cat > "$d/sshd_config" <<EOF
ListenAddress 127.0.0.1:22
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
EOF
        printf '#!/bin/sh\necho 123456\n' > "$d/askpass"
        chmod +x "$d/askpass"
        /usr/sbin/sshd -D -e -f "$d/sshd_config" 2> "$d/sshd.log" &
        sshd_pid=$!
        trap 'kill $sshd_pid 2>/dev/null || true' EXIT
        for _ in $(seq 50); do grep -q "Server listening" "$d/sshd.log" && break; sleep 0.1; done
        export SSH_ASKPASS="$d/askpass" SSH_ASKPASS_REQUIRE=force
        unset SSH_AUTH_SOCK DISPLAY
        opts=(-F /dev/null -o UserKnownHostsFile="$d/known_hosts" -o StrictHostKeyChecking=accept-new
              -o IdentityFile=none -o IdentityAgent=none)
        # Only one of the token's keys may log in at a time: 9A (RSA),
        # 9C (P-256, PIN always) and 9E (P-384, no PIN on the card).
        for id in 01 02 04; do
          cp card-$id.pub "$d/authorized_keys"
          fp=$(ssh-keygen -lf card-$id.pub | cut -d' ' -f2)
          timeout 60 ssh "${{opts[@]}}" -I "$UKEY" root@127.0.0.1 "echo logged in as \$(id -un)" </dev/null
          grep -q "Accepted publickey for root .* $fp" "$d/sshd.log"
          echo "key $id: sshd accepted $fp"
        done
        # Through the agent: ssh-add -s loads the provider (and logs in) once.
        eval "$(ssh-agent -s -P '/*')" >/dev/null
        trap 'kill $sshd_pid $SSH_AGENT_PID 2>/dev/null || true' EXIT
        timeout 60 ssh-add -s "$UKEY" </dev/null
        ssh-add -L | grep -c "PIV AUTH pubkey"
        cp card-01.pub "$d/authorized_keys"
        timeout 60 ssh -F /dev/null -o UserKnownHostsFile="$d/known_hosts" -o IdentityFile=none \
          root@127.0.0.1 "echo agent login as \$(id -un)" </dev/null
        ssh-add -e "$UKEY""#
    ));
    assert_eq!(out.matches("logged in as root").count(), 3, "{out}");
    for id in ["01", "02", "04"] {
        assert!(
            out.contains(&format!("key {id}: sshd accepted SHA256:")),
            "{out}"
        );
    }
    assert!(out.contains("agent login as root"), "{out}");
    assert_eq!(card.tries(), (3, 3));
}
