//! Command and response APDUs (ISO 7816-4 §5.1), short and extended length.

use crate::sw::StatusWord;
use crate::Error;
use zeroize::Zeroizing;

/// What a command's data (or its response) carries, for trace redaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sensitivity {
    /// Safe to log in full.
    #[default]
    Public,
    /// PIN, PUK, management key or private key material: never logged.
    Secret,
}

/// A command APDU. The data buffer zeroizes on drop: it may hold a PIN.
#[derive(Clone)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Zeroizing<Vec<u8>>,
    /// Expected response length: `None` = no data expected; `Some(0)` =
    /// as much as the card has (short: 256, extended: 65536).
    pub le: Option<usize>,
    /// Whether the data field must be redacted in traces.
    pub data_sensitivity: Sensitivity,
    /// Whether the response data must be redacted in traces.
    pub response_sensitivity: Sensitivity,
}

impl core::fmt::Debug for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Command({:02X} {:02X} {:02X} {:02X}, {} data bytes{}, le {:?})",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            if self.data_sensitivity == Sensitivity::Secret {
                " redacted"
            } else {
                ""
            },
            self.le
        )
    }
}

/// Largest data field a short APDU carries.
pub const SHORT_MAX_DATA: usize = 255;
/// Largest response a short APDU asks for.
pub const SHORT_MAX_LE: usize = 256;
/// Largest data field of an extended APDU.
pub const EXTENDED_MAX_DATA: usize = 65535;

impl Command {
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Zeroizing::new(Vec::new()),
            le: None,
            data_sensitivity: Sensitivity::Public,
            response_sensitivity: Sensitivity::Public,
        }
    }

    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Zeroizing::new(data.into());
        self
    }

    /// Ask for response data (`0` = all the card has).
    pub fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// Mark the data field as secret (PIN, PUK, key material).
    pub fn secret_data(mut self) -> Self {
        self.data_sensitivity = Sensitivity::Secret;
        self
    }

    /// Mark the response as secret (e.g. the PIN-protected management key).
    pub fn secret_response(mut self) -> Self {
        self.response_sensitivity = Sensitivity::Secret;
        self
    }

    /// Whether this command needs extended length encoding.
    pub fn needs_extended(&self) -> bool {
        self.data.len() > SHORT_MAX_DATA || self.le.is_some_and(|le| le > SHORT_MAX_LE)
    }

    /// Encode as a short APDU; data must be at most 255 bytes.
    pub fn to_short_bytes(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        if self.data.len() > SHORT_MAX_DATA {
            return Err(Error::InvalidArgument(
                "short APDU data longer than 255 bytes",
            ));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(self.data.len() + 6));
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !self.data.is_empty() {
            out.push(self.data.len() as u8);
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            // 256 (or "all") is encoded as 00.
            out.push(if le >= SHORT_MAX_LE { 0 } else { le as u8 });
        }
        Ok(out)
    }

    /// Encode as an extended APDU (ISO 7816-4 §5.1: 00 Lc1 Lc2 data Le1 Le2).
    pub fn to_extended_bytes(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        if self.data.len() > EXTENDED_MAX_DATA {
            return Err(Error::InvalidArgument("APDU data longer than 65535 bytes"));
        }
        let mut out = Zeroizing::new(Vec::with_capacity(self.data.len() + 9));
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let le_bytes = |le: usize| {
            if le == 0 || le >= 65536 {
                [0u8, 0]
            } else {
                (le as u16).to_be_bytes()
            }
        };
        if self.data.is_empty() {
            if let Some(le) = self.le {
                out.push(0);
                out.extend_from_slice(&le_bytes(le));
            }
        } else {
            out.push(0);
            out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.data);
            if let Some(le) = self.le {
                out.extend_from_slice(&le_bytes(le));
            }
        }
        Ok(out)
    }
}

/// A parsed command APDU, as a card sees it (used by the simulator and fuzzers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCommand<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    /// `None`: no Le; `Some(n)`: Le with 0 meaning maximum.
    pub le: Option<usize>,
    pub extended: bool,
}

impl<'a> ParsedCommand<'a> {
    /// Parse any of the ISO 7816-4 cases 1, 2S, 3S, 4S, 2E, 3E, 4E.
    pub fn parse(raw: &'a [u8]) -> Result<Self, Error> {
        let malformed = Error::Malformed("command APDU");
        if raw.len() < 4 {
            return Err(malformed);
        }
        let (cla, ins, p1, p2) = (raw[0], raw[1], raw[2], raw[3]);
        let body = &raw[4..];
        let mk = |data, le, extended| ParsedCommand {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
            extended,
        };
        let short_le = |b: u8| Some(if b == 0 { 256 } else { usize::from(b) });
        let ext_le = |hi: u8, lo: u8| {
            let v = usize::from(u16::from_be_bytes([hi, lo]));
            Some(if v == 0 { 65536 } else { v })
        };
        match body.len() {
            0 => Ok(mk(&[], None, false)),
            1 => Ok(mk(&[], short_le(body[0]), false)),
            _ if body[0] != 0 => {
                let lc = usize::from(body[0]);
                match body.len() - 1 {
                    n if n == lc => Ok(mk(&body[1..], None, false)),
                    n if n == lc + 1 => Ok(mk(&body[1..1 + lc], short_le(body[1 + lc]), false)),
                    _ => Err(malformed),
                }
            }
            3 => Ok(mk(&[], ext_le(body[1], body[2]), true)),
            n if n > 3 => {
                let lc = usize::from(u16::from_be_bytes([body[1], body[2]]));
                if lc == 0 {
                    return Err(malformed);
                }
                match n - 3 {
                    m if m == lc => Ok(mk(&body[3..], None, true)),
                    m if m == lc + 2 => Ok(mk(
                        &body[3..3 + lc],
                        ext_le(body[3 + lc], body[4 + lc]),
                        true,
                    )),
                    _ => Err(malformed),
                }
            }
            _ => Err(malformed),
        }
    }
}

/// A response APDU: data and status word. The data zeroizes on drop.
#[derive(Clone)]
pub struct Response {
    pub data: Zeroizing<Vec<u8>>,
    pub sw: StatusWord,
}

impl core::fmt::Debug for Response {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Response({} bytes, {:?})", self.data.len(), self.sw)
    }
}

impl Response {
    pub fn new(data: Vec<u8>, sw: StatusWord) -> Self {
        Self {
            data: Zeroizing::new(data),
            sw,
        }
    }

    /// Split raw response bytes into data and SW1 SW2. An empty or 1-byte
    /// response is what a transport returns when the card has gone.
    pub fn parse(mut raw: Vec<u8>) -> Result<Self, Error> {
        if raw.len() < 2 {
            return Err(Error::Transport(crate::TransportError::CardRemoved));
        }
        let n = raw.len();
        let sw = StatusWord::from_u16(u16::from_be_bytes([raw[n - 2], raw[n - 1]]));
        raw.truncate(n - 2);
        Ok(Self::new(raw, sw))
    }

    /// The data if the status is 9000, else the status as an error.
    pub fn into_result(self) -> Result<Zeroizing<Vec<u8>>, Error> {
        if self.sw.is_success() {
            Ok(self.data)
        } else {
            Err(Error::Status(self.sw))
        }
    }

    /// Encode as raw bytes (used by card implementations).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.data.len() + 2);
        v.extend_from_slice(&self.data);
        v.extend_from_slice(&self.sw.to_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn short_encodings() {
        let c = Command::new(0, 0xA4, 4, 0).with_data(hex!("A0 00 00 03 08"));
        assert_eq!(
            &c.to_short_bytes().unwrap()[..],
            hex!("00 A4 04 00 05 A0 00 00 03 08")
        );
        let c = Command::new(0, 0xCB, 0x3F, 0xFF)
            .with_data(hex!("5C 01 7E"))
            .with_le(0);
        assert_eq!(
            &c.to_short_bytes().unwrap()[..],
            hex!("00 CB 3F FF 03 5C 01 7E 00")
        );
        let c = Command::new(0, 0x20, 0, 0x80);
        assert_eq!(&c.to_short_bytes().unwrap()[..], hex!("00 20 00 80"));
        let c = Command::new(0, 0xFD, 0, 0).with_le(3);
        assert_eq!(&c.to_short_bytes().unwrap()[..], hex!("00 FD 00 00 03"));
        let c = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(vec![0; 256]);
        assert!(c.to_short_bytes().is_err());
    }

    #[test]
    fn extended_encodings() {
        let c = Command::new(0, 0xCB, 0x3F, 0xFF)
            .with_data(hex!("5C 03 5F C1 05"))
            .with_le(0);
        assert_eq!(
            &c.to_extended_bytes().unwrap()[..],
            hex!("00 CB 3F FF 00 00 05 5C 03 5F C1 05 00 00")
        );
        let c = Command::new(0, 0xC0, 0, 0).with_le(0x1234);
        assert_eq!(
            &c.to_extended_bytes().unwrap()[..],
            hex!("00 C0 00 00 00 12 34")
        );
        let c = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(vec![1; 300]);
        let b = c.to_extended_bytes().unwrap();
        assert_eq!(&b[..7], hex!("00 DB 3F FF 00 01 2C"));
        assert_eq!(b.len(), 7 + 300);
    }

    #[test]
    fn parse_all_cases() {
        let p = ParsedCommand::parse(&hex!("00 20 00 80")).unwrap();
        assert_eq!((p.data, p.le), (&[][..], None));
        let p = ParsedCommand::parse(&hex!("00 FD 00 00 00")).unwrap();
        assert_eq!(p.le, Some(256));
        let p = ParsedCommand::parse(&hex!("00 A4 04 00 02 A0 00")).unwrap();
        assert_eq!((p.data, p.le), (&hex!("A0 00")[..], None));
        let p = ParsedCommand::parse(&hex!("00 A4 04 00 02 A0 00 00")).unwrap();
        assert_eq!((p.data, p.le), (&hex!("A0 00")[..], Some(256)));
        let p = ParsedCommand::parse(&hex!("00 C0 00 00 00 01 00")).unwrap();
        assert_eq!((p.le, p.extended), (Some(256), true));
        let p = ParsedCommand::parse(&hex!("00 CB 3F FF 00 00 02 5C 00 00 00")).unwrap();
        assert_eq!(
            (p.data, p.le, p.extended),
            (&hex!("5C 00")[..], Some(65536), true)
        );
        let p = ParsedCommand::parse(&hex!("00 DB 3F FF 00 00 01 AA")).unwrap();
        assert_eq!((p.data, p.le), (&hex!("AA")[..], None));
    }

    #[test]
    fn parse_rejects_malformed() {
        for raw in [
            &hex!("00 20 00")[..],
            &hex!("00 A4 04 00 05 A0"),
            &hex!("00 A4 04 00 01 A0 00 00"),
            &hex!("00 DB 3F FF 00 00 00 AA"),
            &hex!("00 DB 3F FF 00 00 05 AA"),
            &hex!("00 DB 3F FF 00 01"),
        ] {
            assert!(ParsedCommand::parse(raw).is_err(), "{raw:02X?}");
        }
    }

    #[test]
    fn round_trip_through_parser() {
        for data_len in [0usize, 1, 255, 256, 1000] {
            for le in [None, Some(0), Some(10)] {
                let c = Command::new(0x10, 0xDB, 0x3F, 0xFF).with_data(vec![0xAB; data_len]);
                let c = match le {
                    Some(l) => c.with_le(l),
                    None => c,
                };
                if data_len <= 255 {
                    let raw = c.to_short_bytes().unwrap();
                    let p = ParsedCommand::parse(&raw).unwrap();
                    assert_eq!(p.data.len(), data_len);
                    assert_eq!(p.le.is_some(), le.is_some());
                }
                let raw = c.to_extended_bytes().unwrap();
                let p = ParsedCommand::parse(&raw).unwrap();
                assert_eq!(p.data.len(), data_len);
                assert_eq!(p.le.is_some(), le.is_some());
            }
        }
    }

    #[test]
    fn response_parse() {
        let r = Response::parse(hex!("01 02 90 00").to_vec()).unwrap();
        assert_eq!(
            (&r.data[..], r.sw),
            (&hex!("01 02")[..], StatusWord::Success)
        );
        assert!(matches!(
            Response::parse(vec![]),
            Err(Error::Transport(crate::TransportError::CardRemoved))
        ));
        assert!(Response::parse(vec![0x90]).is_err());
    }
}
