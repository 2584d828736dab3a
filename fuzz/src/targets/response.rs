//! Response APDUs and the transport loop: `Response::parse`, the
//! `StatusWord` ↔ `u16` mapping, and `transport::transmit` against a card
//! that plays fuzzer-chosen answers ([`ScriptedLink`]).
//!
//! Input: a 9-byte command description, then the card's answers as frames.
//! ```text
//! flags  CLA INS P1 P2  Le(2)  data length(2)  answers...
//! flags: 01 the card takes extended length, 02 the command has Le
//!        (Le 0 = "all the card has"), 04 / 08 secret data / response
//! ```
//! The data is a fixed pattern of the given length (modulo 2048), so long
//! (chained or extended) commands cost the fuzzer nothing.
//!
//! `transmit` is checked against a model of what a host must send: every
//! APDU well formed (short ones only if the card has no extended length),
//! the command's pieces in order with the chaining bit on all but the last,
//! GET RESPONSE with the announced length after `61xx`, the same APDU with
//! the corrected Le after `6Cxx` — and nothing else: the transport never
//! alters a command's header or data. The result is the data the card gave
//! and its last status word, or an error; never an endless loop (the link
//! panics after [`crate::link::MAX_EXCHANGES`]) and never more than
//! [`MAX_RESPONSE`] bytes.

use crate::frames::Frames;
use crate::link::ScriptedLink;
use apdu::command::{SHORT_MAX_DATA, SHORT_MAX_LE};
use apdu::transport::{transmit, MAX_RESPONSE};
use apdu::{Command, Error, ParsedCommand, Response, StatusWord, TransportError};

/// Longest command data the input describes (see [`run`]).
const MAX_DATA: usize = 2048;

pub fn run(data: &[u8]) {
    let Some((head, answers)) = data.split_first_chunk::<9>() else {
        return;
    };
    for answer in Frames::new(answers) {
        check_response_parse(answer);
    }
    let [flags, cla, ins, p1, p2, le_hi, le_lo, len_hi, len_lo] = *head;
    let extended = flags & 0x01 != 0;
    // The host never sets the chaining bit itself, and GET RESPONSE is the
    // transport's own: keep the model unambiguous.
    let cla = cla & !0x10;
    let ins = if ins == 0xC0 { 0xCA } else { ins };
    // Up to 2 KiB: chaining (9 pieces) and extended length, while the
    // link's record of 600 resends of it stays small.
    let len = usize::from(u16::from_be_bytes([len_hi, len_lo])) % MAX_DATA;
    let mut cmd = Command::new(cla, ins, p1, p2).with_data(pattern(len));
    if flags & 0x02 != 0 {
        cmd = cmd.with_le(usize::from(u16::from_be_bytes([le_hi, le_lo])));
    }
    if flags & 0x04 != 0 {
        cmd = cmd.secret_data();
    }
    if flags & 0x08 != 0 {
        cmd = cmd.secret_response();
    }

    let mut link = ScriptedLink::new(answers);
    let result = transmit(&mut link, &cmd, extended);
    check_transmit(&cmd, extended, &link, &result);
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A response splits into data and status word and encodes back the same.
fn check_response_parse(raw: &[u8]) {
    let sw_raw = match raw {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => {
            assert!(matches!(
                Response::parse(raw.to_vec()),
                Err(Error::Transport(TransportError::CardRemoved))
            ));
            return;
        }
    };
    let r = Response::parse(raw.to_vec()).expect("two bytes or more parse");
    assert_eq!(r.sw.to_u16(), sw_raw);
    assert_eq!(StatusWord::from_u16(sw_raw), r.sw);
    assert_eq!(r.to_bytes(), raw);
    assert_eq!(&r.data[..], &raw[..raw.len() - 2]);
    let _ = (r.sw.describe(), format!("{:?} {}", r.sw, r.sw));
    match r.clone().into_result() {
        Ok(d) => assert!(r.sw.is_success() && d[..] == r.data[..]),
        Err(e) => assert_eq!(e.status(), Some(r.sw)),
    }
}

/// One piece of a command as it must go out: data range and whether the
/// chaining bit is on.
struct Piece {
    data: std::ops::Range<usize>,
    chained: bool,
}

/// What the host may send next.
enum Next {
    Piece(usize),
    GetResponse(u8),
    Resend(u8),
}

fn check_transmit(
    cmd: &Command,
    extended: bool,
    link: &ScriptedLink<'_>,
    result: &Result<Response, Error>,
) {
    let one_extended = extended && (cmd.needs_extended() || cmd.le == Some(0));
    let pieces: Vec<Piece> = if one_extended || cmd.data.is_empty() {
        vec![Piece {
            data: 0..cmd.data.len(),
            chained: false,
        }]
    } else {
        let n = cmd.data.len().div_ceil(SHORT_MAX_DATA);
        (0..n)
            .map(|i| Piece {
                data: i * SHORT_MAX_DATA..((i + 1) * SHORT_MAX_DATA).min(cmd.data.len()),
                chained: i + 1 < n,
            })
            .collect()
    };
    // Le of the final piece as a card parses it.
    let final_le = cmd.le.map(|le| {
        if one_extended {
            if le == 0 || le >= 65_536 {
                65_536
            } else {
                le
            }
        } else if le == 0 || le >= SHORT_MAX_LE {
            SHORT_MAX_LE
        } else {
            le
        }
    });
    let short_le = |n: u8| if n == 0 { SHORT_MAX_LE } else { usize::from(n) };

    let mut next = Next::Piece(0);
    let mut piece = 0usize;
    let mut collected: Vec<u8> = Vec::new();
    let mut last: Option<ParsedCommand<'_>> = None;
    // How the exchanges must end, once they do.
    let mut outcome: Option<Result<(Vec<u8>, StatusWord), &'static str>> = None;

    for (i, (sent, answer)) in link.sent.iter().zip(link.answered.iter()).enumerate() {
        assert!(
            outcome.is_none(),
            "APDU {i} sent after the command was over: {sent:02X?}"
        );
        let p = ParsedCommand::parse(sent)
            .unwrap_or_else(|_| panic!("malformed APDU sent: {sent:02X?}"));
        assert!(
            extended || !p.extended,
            "extended APDU to a card without: {sent:02X?}"
        );
        match next {
            Next::Piece(k) => {
                let want = &pieces[k];
                let cla = if want.chained {
                    cmd.cla | 0x10
                } else {
                    cmd.cla
                };
                assert_eq!(
                    (p.cla, p.ins, p.p1, p.p2),
                    (cla, cmd.ins, cmd.p1, cmd.p2),
                    "piece {k} header"
                );
                assert_eq!(p.data, &cmd.data[want.data.clone()], "piece {k} data");
                let le = if want.chained { None } else { final_le };
                assert_eq!(p.le, le, "piece {k} Le");
                assert_eq!(p.extended, one_extended, "piece {k} form");
                piece = k;
            }
            Next::GetResponse(n) => {
                assert_eq!(
                    (p.cla, p.ins, p.p1, p.p2, p.data, p.le, p.extended),
                    (cmd.cla, 0xC0, 0, 0, &[][..], Some(short_le(n)), false),
                    "GET RESPONSE after 61{n:02X}"
                );
            }
            Next::Resend(n) => {
                let prev = last.as_ref().expect("a resend follows an APDU");
                assert_eq!(
                    (p.cla, p.ins, p.p1, p.p2, p.data, p.extended),
                    (
                        prev.cla,
                        prev.ins,
                        prev.p1,
                        prev.p2,
                        prev.data,
                        prev.extended
                    ),
                    "resend after 6C{n:02X} must be the same APDU"
                );
                assert_eq!(p.le, Some(short_le(n)), "resend after 6C{n:02X}: Le");
            }
        }
        let in_piece = matches!(next, Next::Piece(_));
        let chained_piece = in_piece && pieces[piece].chained;
        last = Some(p);

        let Ok(resp) = Response::parse(answer.clone()) else {
            outcome = Some(Err("card removed"));
            continue;
        };
        if chained_piece {
            if resp.sw.is_success() {
                next = Next::Piece(piece + 1);
            } else {
                outcome = Some(Ok((resp.data.to_vec(), resp.sw)));
            }
            continue;
        }
        match resp.sw {
            StatusWord::MoreData(n) => {
                collected.extend_from_slice(&resp.data);
                if collected.len() > MAX_RESPONSE {
                    outcome = Some(Err("oversized response"));
                }
                next = Next::GetResponse(n);
            }
            StatusWord::WrongLe(n) if last.as_ref().is_some_and(|l| l.le.is_some()) => {
                next = Next::Resend(n);
            }
            sw => {
                collected.extend_from_slice(&resp.data);
                outcome = Some(if collected.len() > MAX_RESPONSE {
                    Err("oversized response")
                } else {
                    Ok((std::mem::take(&mut collected), sw))
                });
            }
        }
    }

    match (outcome, result) {
        (Some(Ok((data, sw))), Ok(r)) => {
            assert_eq!(r.sw, sw, "final status word");
            assert_eq!(&r.data[..], &data[..], "response data");
        }
        (Some(Err("card removed")), Err(e)) => assert!(e.is_removed(), "{e:?}"),
        (Some(Err(why)), Err(e)) => assert_eq!(*e, Error::Malformed(why)),
        // The answers ran out (no answer at all: the card is gone) ...
        (None, Err(e)) if link.answered.is_empty() => assert!(e.is_removed(), "{e:?}"),
        // ... or the host gave up on an endless 61xx / 6Cxx chain.
        (None, Err(Error::Malformed("endless response chain"))) => {}
        (expected, got) => panic!("expected {expected:?}, transmit gave {got:?}"),
    }
    if let Ok(r) = result {
        assert!(r.data.len() <= MAX_RESPONSE);
    }
}
