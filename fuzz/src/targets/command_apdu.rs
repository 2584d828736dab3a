//! Command APDUs as a card sees them: `ParsedCommand::parse` of any bytes,
//! checked against the host's encoders (`Command::to_short_bytes`,
//! `to_extended_bytes`) in both directions:
//! * whatever parses re-encodes, in the same form, into the very same bytes
//!   (an APDU has exactly one meaning);
//! * any header, data and Le the input describes encode into APDUs that
//!   parse back to that header, data and Le.

use apdu::command::{EXTENDED_MAX_DATA, SHORT_MAX_DATA, SHORT_MAX_LE};
use apdu::{Command, ParsedCommand};

pub fn run(data: &[u8]) {
    parse_then_encode(data);
    encode_then_parse(data);
}

fn parse_then_encode(raw: &[u8]) {
    let Ok(p) = ParsedCommand::parse(raw) else {
        return;
    };
    assert_eq!([p.cla, p.ins, p.p1, p.p2], raw[..4]);
    if !p.extended {
        assert!(
            p.data.len() <= SHORT_MAX_DATA
                && p.le.is_none_or(|le| (1..=SHORT_MAX_LE).contains(&le))
        );
    } else {
        assert!(
            p.data.len() <= EXTENDED_MAX_DATA && p.le.is_none_or(|le| (1..=65_536).contains(&le))
        );
    }
    let mut c = Command::new(p.cla, p.ins, p.p1, p.p2).with_data(p.data.to_vec());
    if let Some(le) = p.le {
        c = c.with_le(le);
    }
    let enc = if p.extended {
        c.to_extended_bytes()
    } else {
        c.to_short_bytes()
    }
    .expect("a parsed command encodes");
    assert_eq!(&enc[..], raw, "{p:?} re-encodes differently");
}

/// Input: CLA INS P1 P2, an Le selector byte, then the data.
fn encode_then_parse(input: &[u8]) {
    let Some((&[cla, ins, p1, p2, le_sel], data)) = input.split_first_chunk::<5>() else {
        return;
    };
    // 00: no Le; FF: Le 0 ("all"); FE: a long Le; else Le as given.
    let le = match le_sel {
        0x00 => None,
        0xFF => Some(0),
        0xFE => Some(300 + usize::from(data.first().copied().unwrap_or(0)) * 250),
        n => Some(usize::from(n)),
    };
    let mut c = Command::new(cla, ins, p1, p2).with_data(data.to_vec());
    if let Some(le) = le {
        c = c.with_le(le);
    }
    let check = |raw: &[u8], max_le: usize| {
        let p = ParsedCommand::parse(raw)
            .unwrap_or_else(|_| panic!("{c:?} encodes into {raw:02X?}, which does not parse"));
        assert_eq!((p.cla, p.ins, p.p1, p.p2, p.data), (cla, ins, p1, p2, data));
        let want = le.map(|le| if le == 0 || le >= max_le { max_le } else { le });
        assert_eq!(p.le, want, "{c:?} Le");
    };
    match c.to_short_bytes() {
        Ok(raw) => check(&raw, SHORT_MAX_LE),
        Err(_) => assert!(data.len() > SHORT_MAX_DATA),
    }
    match c.to_extended_bytes() {
        Ok(raw) => check(&raw, 65_536),
        Err(_) => assert!(data.len() > EXTENDED_MAX_DATA),
    }
    assert_eq!(
        c.needs_extended(),
        data.len() > SHORT_MAX_DATA || le.is_some_and(|l| l > SHORT_MAX_LE)
    );
}
