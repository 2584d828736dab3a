//! The simulated card end to end: a fuzzed stream of APDUs through
//! `ukey_sim::SimCard` on a scratch state file.
//!
//! Input: one byte choosing the start state ([`Start`]: factory AES-192,
//! factory 3DES, demo with PIN-protected management key, demo with the
//! default key, the demo on the YubiKey 5.4, YubiKey 4, plain PIV and
//! third-party-applet profiles), then frames as vpcd sends them to a card (2-byte length,
//! payload). A 1-byte payload is a control code: `00`/`01` power off/on,
//! `02` reset, `04` ATR, and one the harness adds, `9B`: the host
//! authenticates with the card's current management key (mutual
//! authentication needs the card's random witness decrypted, which a fuzzer
//! cannot do; without it every management-key-protected command would be
//! out of reach). Anything else is a command APDU.
//!
//! The card must never panic; each response is a status word, with at most
//! Le bytes of data before it. After the stream the state file must load,
//! equal the card's memory, and be consistent (PIN/PUK tries left within
//! their totals, every key entry decodes into a key of its algorithm, the
//! management key fits its algorithm, objects within the card's size);
//! and the card must open again from it and answer SELECT.

use crate::frames::Frames;
use crate::sim::{self, HostFilter, Start};
use ukey_sim::SimCard;

pub fn run(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let path = sim::scratch_state_path();
    let start = sim::state(Start::from_byte(selector));
    std::fs::write(&path, &start.json).expect("write the start state");
    let mut card = SimCard::open(&path).expect("open the start state");
    let mut host = HostFilter::default();

    for frame in Frames::new(stream) {
        match frame {
            [0x00] | [0x01] => {
                card.power_cycle();
                host.power_cycle();
            }
            [0x02] => {
                card.reset();
                host.power_cycle();
            }
            [0x9B] => sim::host_authenticates(&mut card),
            [_] => {}
            apdu => {
                if !host.allows(apdu) {
                    continue;
                }
                let resp = card
                    .transmit(apdu)
                    .expect("the card is present: no fault was injected");
                assert!(resp.len() >= 2, "response without a status word");
                let max = sim::max_response_data(apdu);
                assert!(
                    resp.len() - 2 <= max,
                    "{} bytes of data for at most {max}",
                    resp.len() - 2
                );
            }
        }
    }

    let mut again = sim::check_state_file(card, start);
    // The AID up to its version: some cards (profile `generic`) do not
    // take the RID alone.
    let select = again
        .transmit(&[
            0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00,
            0x00,
        ])
        .expect("the card is present");
    assert_eq!(
        select[select.len() - 2..],
        [0x90, 0x00],
        "SELECT after reopening"
    );
}
