//! The seam between PIV code and a card: [`Link`] exchanges raw APDUs,
//! [`Transport`] grants exclusive access, and [`transmit`] owns command
//! chaining, extended length, GET RESPONSE (`61xx`) and `6Cxx` resends —
//! PIV code above never loops on status words.

use crate::command::{Command, Response, Sensitivity, SHORT_MAX_DATA, SHORT_MAX_LE};
use crate::sw::StatusWord;
use crate::Error;
use zeroize::Zeroizing;

/// Why a card could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the card was removed")]
    CardRemoved,
    #[error("the card was reset by another application")]
    CardReset,
    #[error("the reader is no longer available")]
    ReaderUnavailable,
    #[error("no card in the reader")]
    NoCard,
    #[error("the card is in exclusive use by another application")]
    SharingViolation,
    #[error("the smart card service (pcscd) is not running")]
    NoService,
    #[error("no smart card reader found")]
    NoReaders,
    #[error("card communication timed out")]
    Timeout,
    #[error("card communication failed: {0}")]
    Other(String),
}

/// Exchanges one raw command APDU for one raw response APDU (data ‖ SW1 SW2).
pub trait Link {
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// Body of an exclusive transaction.
pub type TransactionBody<'b> = dyn FnMut(&mut dyn Link) -> Result<(), Error> + 'b;

/// A card connection: a PC/SC reader or an in-process simulated card.
pub trait Transport: Send {
    /// The card's answer to reset.
    fn atr(&self) -> Vec<u8>;

    /// Run `body` with exclusive access to the card (one PC/SC transaction),
    /// so no other application's APDUs interleave with ours.
    fn exclusive(&mut self, body: &mut TransactionBody<'_>) -> Result<(), Error>;

    /// Reset the card (power cycle), dropping its volatile state.
    fn reset(&mut self) -> Result<(), Error>;

    /// Whether the card announced extended length support in its ATR.
    fn extended_length(&self) -> bool {
        crate::atr::parse(&self.atr()).extended_length
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn exclusive(&mut self, body: &mut TransactionBody<'_>) -> Result<(), Error> {
        (**self).exclusive(body)
    }
    fn reset(&mut self) -> Result<(), Error> {
        (**self).reset()
    }
    fn extended_length(&self) -> bool {
        (**self).extended_length()
    }
}

/// Upper bound on a reassembled response: no PIV object is larger, and a
/// hostile card must not make us allocate without bound.
pub const MAX_RESPONSE: usize = 128 * 1024;
/// Upper bound on GET RESPONSE / resend rounds for one command.
const MAX_ROUNDS: usize = 600;

fn trace_out(raw: &[u8], secret: bool) {
    if tracing::enabled!(target: "apdu", tracing::Level::DEBUG) {
        if secret && raw.len() > 5 {
            let header = raw.len().min(if raw.get(4) == Some(&0) { 7 } else { 5 });
            tracing::debug!(target: "apdu", ">> {} [{} bytes redacted]",
                hex::encode_upper(&raw[..header]), raw.len() - header);
        } else {
            tracing::debug!(target: "apdu", ">> {}", hex::encode_upper(raw));
        }
    }
}

fn trace_in(raw: &[u8], secret: bool) {
    if tracing::enabled!(target: "apdu", tracing::Level::DEBUG) {
        let n = raw.len().saturating_sub(2);
        if secret && n > 0 {
            tracing::debug!(target: "apdu", "<< [{} bytes redacted] {}", n, hex::encode_upper(&raw[n..]));
        } else {
            tracing::debug!(target: "apdu", "<< {}", hex::encode_upper(raw));
        }
    }
}

fn exchange_traced(
    link: &mut dyn Link,
    raw: &[u8],
    secret_out: bool,
    secret_in: bool,
) -> Result<Response, Error> {
    trace_out(raw, secret_out);
    let answer = link.exchange(raw)?;
    trace_in(&answer, secret_in);
    Response::parse(answer)
}

/// Send `cmd` and return the complete response.
///
/// With `extended` (the card announced it) long data and long responses use
/// one extended APDU; otherwise data over 255 bytes is sent with command
/// chaining (CLA | 0x10) and long responses are collected with GET RESPONSE.
/// `6Cxx` resends a command that has an Le with the length the card asked
/// for; to one without, `6Cxx` is the answer.
pub fn transmit(link: &mut dyn Link, cmd: &Command, extended: bool) -> Result<Response, Error> {
    let secret_out = cmd.data_sensitivity == Sensitivity::Secret;
    let secret_in = cmd.response_sensitivity == Sensitivity::Secret;

    // The last APDU sent, as a command and its encoding, for 6Cxx resends.
    let mut last: Command;
    let mut last_extended: bool;
    let mut resp;
    // "As much as you have" goes out as an extended Le when the card takes
    // it: a certificate then comes back in one APDU instead of 61xx rounds.
    if extended && (cmd.needs_extended() || cmd.le == Some(0)) {
        last = cmd.clone();
        last_extended = true;
        resp = exchange_traced(link, &cmd.to_extended_bytes()?, secret_out, secret_in)?;
    } else {
        let chunks: Vec<&[u8]> = if cmd.data.is_empty() {
            vec![&[][..]]
        } else {
            cmd.data.chunks(SHORT_MAX_DATA).collect()
        };
        let n = chunks.len();
        let mut piece = Command::new(cmd.cla, cmd.ins, cmd.p1, cmd.p2);
        resp = Response::new(Vec::new(), StatusWord::Success);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let final_piece = i + 1 == n;
            piece.cla = if final_piece { cmd.cla } else { cmd.cla | 0x10 };
            piece.data = Zeroizing::new(chunk.to_vec());
            piece.le = if final_piece {
                cmd.le.map(|le| le.min(SHORT_MAX_LE))
            } else {
                None
            };
            resp = exchange_traced(link, &piece.to_short_bytes()?, secret_out, secret_in)?;
            if !final_piece && !resp.sw.is_success() {
                return Ok(resp);
            }
        }
        last = piece;
        last_extended = false;
    }

    let mut data = Zeroizing::new(Vec::new());
    for _ in 0..MAX_ROUNDS {
        match resp.sw {
            StatusWord::MoreData(n) => {
                data.extend_from_slice(&resp.data);
                if data.len() > MAX_RESPONSE {
                    return Err(Error::Malformed("oversized response"));
                }
                let le = if n == 0 { SHORT_MAX_LE } else { usize::from(n) };
                last = Command::new(cmd.cla & !0x10, 0xC0, 0, 0).with_le(le);
                last_extended = false;
                resp = exchange_traced(link, &last.to_short_bytes()?, false, secret_in)?;
            }
            // Resend the last APDU, unchanged but for the Le the card asked
            // for. Only an APDU with an Le has one to correct: any other gets
            // 6Cxx as its answer (re-encoding, never patching bytes, so the
            // header and data cannot change).
            StatusWord::WrongLe(n) if last.le.is_some() => {
                last.le = Some(if n == 0 { SHORT_MAX_LE } else { usize::from(n) });
                let raw = if last_extended {
                    last.to_extended_bytes()?
                } else {
                    last.to_short_bytes()?
                };
                resp = exchange_traced(link, &raw, secret_out, secret_in)?;
            }
            // The usual case, one answer: it is the response as it is.
            _ if data.is_empty() => return Ok(resp),
            _ => {
                data.extend_from_slice(&resp.data);
                if data.len() > MAX_RESPONSE {
                    return Err(Error::Malformed("oversized response"));
                }
                return Ok(Response { data, sw: resp.sw });
            }
        }
    }
    Err(Error::Malformed("endless response chain"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hex_literal::hex;
    use std::collections::VecDeque;

    /// A scripted link: checks each command and plays back answers.
    pub struct Script {
        pub steps: VecDeque<(Vec<u8>, Vec<u8>)>,
    }

    impl Script {
        pub fn new(steps: &[(&[u8], &[u8])]) -> Self {
            Self {
                steps: steps
                    .iter()
                    .map(|(c, r)| (c.to_vec(), r.to_vec()))
                    .collect(),
            }
        }
        pub fn done(&self) -> bool {
            self.steps.is_empty()
        }
    }

    impl Link for Script {
        fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
            let (expect, answer) = self.steps.pop_front().expect("unexpected extra APDU");
            assert_eq!(hex::encode_upper(apdu), hex::encode_upper(&expect));
            Ok(answer)
        }
    }

    #[test]
    fn get_response_collects_61xx() {
        let mut s = Script::new(&[
            (&hex!("00 CB 3F FF 03 5C 01 7E 00"), &hex!("01 02 61 03")),
            (&hex!("00 C0 00 00 03"), &hex!("03 04 05 61 00")),
            (&hex!("00 C0 00 00 00"), &hex!("06 90 00")),
        ]);
        let cmd = Command::new(0, 0xCB, 0x3F, 0xFF)
            .with_data(hex!("5C 01 7E"))
            .with_le(0);
        let r = transmit(&mut s, &cmd, false).unwrap();
        assert_eq!(&r.data[..], hex!("01 02 03 04 05 06"));
        assert_eq!(r.sw, StatusWord::Success);
        assert!(s.done());
    }

    #[test]
    fn wrong_le_resends() {
        let mut s = Script::new(&[
            (&hex!("00 FD 00 00 00"), &hex!("6C 03")),
            (&hex!("00 FD 00 00 03"), &hex!("05 07 00 90 00")),
        ]);
        let r = transmit(&mut s, &Command::new(0, 0xFD, 0, 0).with_le(0), false).unwrap();
        assert_eq!(&r.data[..], hex!("05 07 00"));
        assert!(s.done());
    }

    #[test]
    fn wrong_le_without_le_is_the_answer_not_a_resend() {
        // Found by fuzzing (response): 6Cxx to a command without Le made
        // transmit overwrite the APDU's last byte (here P2, else the last
        // data byte: a PIN's) and send it again.
        let mut s = Script::new(&[(&hex!("00 20 00 80"), &hex!("6C 05"))]);
        let r = transmit(&mut s, &Command::new(0, 0x20, 0, 0x80), false).unwrap();
        assert_eq!(r.sw, StatusWord::WrongLe(5));
        assert!(s.done());
        let mut s = Script::new(&[(&hex!("00 DB 3F FF 02 AA BB"), &hex!("6C 05"))]);
        let cmd = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(hex!("AA BB"));
        assert_eq!(
            transmit(&mut s, &cmd, false).unwrap().sw,
            StatusWord::WrongLe(5)
        );
        assert!(s.done());
    }

    #[test]
    fn wrong_le_resends_extended_with_the_whole_le() {
        let data = vec![0xAA; 300];
        let mut first = hex!("00 DB 3F FF 00 01 2C").to_vec();
        first.extend_from_slice(&data);
        let mut again = first.clone();
        first.extend_from_slice(&hex!("12 34"));
        again.extend_from_slice(&hex!("00 10"));
        let mut s = Script::new(&[(&first, &hex!("6C 10")), (&again, &hex!("01 90 00"))]);
        let cmd = Command::new(0, 0xDB, 0x3F, 0xFF)
            .with_data(data)
            .with_le(0x1234);
        assert_eq!(&transmit(&mut s, &cmd, true).unwrap().data[..], [0x01]);
        assert!(s.done());
    }

    #[test]
    fn long_data_is_chained() {
        let data: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        let mut first = hex!("10 DB 3F FF FF").to_vec();
        first.extend_from_slice(&data[..255]);
        let mut second = hex!("10 DB 3F FF FF").to_vec();
        second.extend_from_slice(&data[255..510]);
        let mut third = hex!("00 DB 3F FF 5A").to_vec();
        third.extend_from_slice(&data[510..]);
        let mut s = Script::new(&[
            (&first, &hex!("90 00")),
            (&second, &hex!("90 00")),
            (&third, &hex!("90 00")),
        ]);
        let cmd = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(data.clone());
        assert!(transmit(&mut s, &cmd, false).unwrap().sw.is_success());
        assert!(s.done());
    }

    #[test]
    fn chaining_stops_at_first_error() {
        let mut first = hex!("10 DB 3F FF FF").to_vec();
        first.extend_from_slice(&[0; 255]);
        let mut s = Script::new(&[(&first, &hex!("69 82"))]);
        let cmd = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(vec![0; 300]);
        let r = transmit(&mut s, &cmd, false).unwrap();
        assert_eq!(r.sw, StatusWord::SecurityStatusNotSatisfied);
    }

    #[test]
    fn extended_length_sends_one_apdu() {
        let data = vec![0xAA; 300];
        let mut raw = hex!("00 DB 3F FF 00 01 2C").to_vec();
        raw.extend_from_slice(&data);
        let mut s = Script::new(&[(&raw, &hex!("90 00"))]);
        let cmd = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(data);
        assert!(transmit(&mut s, &cmd, true).unwrap().sw.is_success());
        assert!(s.done());
    }

    #[test]
    fn empty_answer_means_removed() {
        let mut s = Script::new(&[(&hex!("00 FD 00 00 00"), &[])]);
        let e = transmit(&mut s, &Command::new(0, 0xFD, 0, 0).with_le(0), false).unwrap_err();
        assert!(e.is_removed());
    }

    #[test]
    fn endless_61xx_is_bounded() {
        struct Endless;
        impl Link for Endless {
            fn exchange(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> {
                Ok(vec![0x61, 0x00])
            }
        }
        let e = transmit(
            &mut Endless,
            &Command::new(0, 0xCB, 0x3F, 0xFF).with_le(0),
            false,
        );
        assert!(matches!(e, Err(Error::Malformed(_))));
    }
}
