//! The token against the simulator: which APDUs a PIN-always signature
//! costs.

use super::state::{Connector, Login, Token, TokenState};
use apdu::piv::{Algorithm, Pin, PinStatus, Slot};
use hex_literal::hex;
use ukey_sim::{SharedCard, SimCard, SimReader};

/// A card with a P-256 key in 9C (PIN always) and a token on it.
fn signature_card() -> (SharedCard, Token) {
    let mut p = ukey_sim::state::Persistent::factory(1);
    let ca = ukey_sim::ca::Ca::new("CN=t").unwrap();
    let opts = ukey_sim::demo::DemoOptions {
        keys: vec![(Slot::Signature, Algorithm::EccP256)],
        ..ukey_sim::demo::DemoOptions::default()
    };
    ukey_sim::demo::provision(&mut p, &ca, &opts).unwrap();
    let card = SimCard::new(p).shared();
    let token = Token::new(
        0,
        1,
        Connector::Sim(SimReader::new(card.clone(), "t")),
        true,
    );
    (card, token)
}

fn sent(card: &SharedCard) -> Vec<u8> {
    let mut c = card.lock().unwrap();
    let ins = c.log().iter().map(|e| e.ins()).collect();
    c.clear_log();
    ins
}

fn sign_9c(card: &SharedCard, token: &Token, between: impl FnOnce(&mut TokenState)) -> Vec<u8> {
    let pin = Pin::new(b"123456").unwrap();
    let mut st = token.lock();
    let key = token.key(&mut st, Slot::Signature).unwrap().unwrap();
    assert!(key.always_authenticate());
    token.verify_context(&mut st, &pin).unwrap();
    between(&mut st);
    sent(card);
    token
        .private_op(
            &mut st,
            Slot::Signature,
            &key,
            crate::backend::PrivateOp::Raw,
            &[0x11; 32],
            Some(&pin),
        )
        .unwrap();
    sent(card)
}

/// Logging out resets the card: another connection to it is told
/// (CardReset) instead of finding its PIN state gone, and no VERIFY
/// P1=FF is sent.
#[test]
fn logout_resets_the_card_for_everyone_instead_of_verify_ff() {
    let (card, token) = signature_card();
    let mut other = apdu::PivCard::new(ukey_sim::SimTransport::new(card.clone()));
    other.transaction(|s| s.select()).unwrap();
    let pin = Pin::new(b"123456").unwrap();
    let mut st = token.lock();
    token.login_user(&mut st, &pin).unwrap();
    sent(&card);
    token.logout(&mut st).unwrap();
    assert_eq!(st.login, Login::None);
    assert!(!sent(&card).contains(&0x20), "no VERIFY (P1=FF)");
    let e = other.transaction(|s| s.select()).unwrap_err();
    assert!(
        matches!(
            e,
            apdu::Error::Transport(apdu::transport::TransportError::CardReset)
        ),
        "{e:?}"
    );
    // The card forgot the PIN; we select again by ourselves.
    assert_eq!(
        token
            .transact(&mut st, &mut |s, _| Ok(s.pin_status()?))
            .unwrap(),
        PinStatus::TriesLeft(3)
    );
}

#[test]
fn pin_always_signature_right_after_the_context_login_is_one_apdu() {
    let (card, token) = signature_card();
    assert_eq!(sign_9c(&card, &token, |_| {}), [0x87]);
}

#[test]
fn our_own_card_traffic_in_between_means_verify_first() {
    let (card, token) = signature_card();
    let ins = sign_9c(&card, &token, |st| {
        token.random(st, 8).unwrap();
    });
    assert_eq!(ins, [0x20, 0x87]);
}

#[test]
fn another_application_in_between_costs_a_refusal_and_a_verify() {
    let (card, token) = signature_card();
    let ins = sign_9c(&card, &token, |_| {
        // Another application's command reaches the card first.
        let r = card
            .lock()
            .unwrap()
            .transmit(&hex!("00 FD 00 00 00"))
            .unwrap();
        assert!(r.ends_with(&[0x90, 0x00]));
    });
    assert_eq!(ins, [0x87, 0x20, 0x87]);
}
