//! ISO 7816-4 status words, typed (ISO 7816-4 §5.6, SP 800-73-4 Part 2 Table 6).

use core::fmt;

/// A status word as a typed value; every `u16` maps to exactly one variant
/// and back (`Other` keeps the ones we give no name).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusWord {
    /// 9000
    Success,
    /// 61xx: more response data, xx bytes (0 = 256) available via GET RESPONSE.
    MoreData(u8),
    /// 6Cxx: wrong Le, resend with Le = xx.
    WrongLe(u8),
    /// 63Cx: verification failed, x tries left.
    VerifyFailed { tries_left: u8 },
    /// 6983: authentication method blocked (PIN/PUK blocked).
    Blocked,
    /// 6982: security status not satisfied (PIN not verified / management key not authenticated).
    SecurityStatusNotSatisfied,
    /// 6984: reference data not usable.
    ReferenceDataNotUsable,
    /// 6985: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// 6A80: incorrect parameters in the data field.
    IncorrectData,
    /// 6A81: function not supported.
    FunctionNotSupported,
    /// 6A82: file or application not found.
    FileNotFound,
    /// 6A84: not enough memory.
    NotEnoughMemory,
    /// 6A86: incorrect P1/P2.
    IncorrectP1P2,
    /// 6A88: referenced data or reference data not found.
    ReferenceNotFound,
    /// 6B00: wrong parameters P1/P2 (YubiKey: unknown slot).
    WrongP1P2,
    /// 6700: wrong length.
    WrongLength,
    /// 6D00: instruction not supported.
    InsNotSupported,
    /// 6E00: class not supported.
    ClaNotSupported,
    /// 6F00: no precise diagnosis.
    Unknown,
    /// 6581: memory failure.
    MemoryFailure,
    /// Any other status word.
    Other(u16),
}

impl StatusWord {
    pub fn from_u16(sw: u16) -> Self {
        let [sw1, sw2] = sw.to_be_bytes();
        match (sw1, sw2) {
            (0x90, 0x00) => Self::Success,
            (0x61, n) => Self::MoreData(n),
            (0x6C, n) => Self::WrongLe(n),
            (0x63, n) if n & 0xF0 == 0xC0 => Self::VerifyFailed {
                tries_left: n & 0x0F,
            },
            (0x69, 0x83) => Self::Blocked,
            (0x69, 0x82) => Self::SecurityStatusNotSatisfied,
            (0x69, 0x84) => Self::ReferenceDataNotUsable,
            (0x69, 0x85) => Self::ConditionsNotSatisfied,
            (0x6A, 0x80) => Self::IncorrectData,
            (0x6A, 0x81) => Self::FunctionNotSupported,
            (0x6A, 0x82) => Self::FileNotFound,
            (0x6A, 0x84) => Self::NotEnoughMemory,
            (0x6A, 0x86) => Self::IncorrectP1P2,
            (0x6A, 0x88) => Self::ReferenceNotFound,
            (0x6B, 0x00) => Self::WrongP1P2,
            (0x67, 0x00) => Self::WrongLength,
            (0x6D, 0x00) => Self::InsNotSupported,
            (0x6E, 0x00) => Self::ClaNotSupported,
            (0x6F, 0x00) => Self::Unknown,
            (0x65, 0x81) => Self::MemoryFailure,
            _ => Self::Other(sw),
        }
    }

    pub fn to_u16(self) -> u16 {
        match self {
            Self::Success => 0x9000,
            Self::MoreData(n) => 0x6100 | u16::from(n),
            Self::WrongLe(n) => 0x6C00 | u16::from(n),
            Self::VerifyFailed { tries_left } => 0x63C0 | u16::from(tries_left.min(15)),
            Self::Blocked => 0x6983,
            Self::SecurityStatusNotSatisfied => 0x6982,
            Self::ReferenceDataNotUsable => 0x6984,
            Self::ConditionsNotSatisfied => 0x6985,
            Self::IncorrectData => 0x6A80,
            Self::FunctionNotSupported => 0x6A81,
            Self::FileNotFound => 0x6A82,
            Self::NotEnoughMemory => 0x6A84,
            Self::IncorrectP1P2 => 0x6A86,
            Self::ReferenceNotFound => 0x6A88,
            Self::WrongP1P2 => 0x6B00,
            Self::WrongLength => 0x6700,
            Self::InsNotSupported => 0x6D00,
            Self::ClaNotSupported => 0x6E00,
            Self::Unknown => 0x6F00,
            Self::MemoryFailure => 0x6581,
            Self::Other(sw) => sw,
        }
    }

    pub fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    pub fn is_success(self) -> bool {
        self == Self::Success
    }

    /// Human text, for errors shown to users.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::MoreData(_) => "more data available",
            Self::WrongLe(_) => "wrong expected length",
            Self::VerifyFailed { .. } => "verification failed",
            Self::Blocked => "blocked",
            Self::SecurityStatusNotSatisfied => "security status not satisfied",
            Self::ReferenceDataNotUsable => "reference data not usable",
            Self::ConditionsNotSatisfied => "conditions of use not satisfied",
            Self::IncorrectData => "incorrect data",
            Self::FunctionNotSupported => "function not supported",
            Self::FileNotFound => "not found",
            Self::NotEnoughMemory => "not enough memory on the card",
            Self::IncorrectP1P2 => "incorrect P1/P2",
            Self::ReferenceNotFound => "referenced data not found",
            Self::WrongP1P2 => "wrong P1/P2",
            Self::WrongLength => "wrong length",
            Self::InsNotSupported => "instruction not supported",
            Self::ClaNotSupported => "class not supported",
            Self::Unknown => "no precise diagnosis",
            Self::MemoryFailure => "memory failure",
            Self::Other(_) => "unexpected status",
        }
    }
}

impl From<u16> for StatusWord {
    fn from(sw: u16) -> Self {
        Self::from_u16(sw)
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VerifyFailed { tries_left } => {
                write!(
                    f,
                    "{:04X} (verification failed, {tries_left} tries left)",
                    self.to_u16()
                )
            }
            _ => write!(f, "{:04X} ({})", self.to_u16(), self.describe()),
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_u16_round_trips() {
        for sw in 0..=u16::MAX {
            let typed = StatusWord::from_u16(sw);
            // 63Cx only has 4 bits of count: the mapping is exact.
            assert_eq!(typed.to_u16(), sw, "{sw:04X}");
        }
    }

    #[test]
    fn named_words() {
        use StatusWord::*;
        let cases = [
            (0x9000, Success),
            (0x6110, MoreData(0x10)),
            (0x6100, MoreData(0)),
            (0x6C20, WrongLe(0x20)),
            (0x63C2, VerifyFailed { tries_left: 2 }),
            (0x63C0, VerifyFailed { tries_left: 0 }),
            (0x6983, Blocked),
            (0x6982, SecurityStatusNotSatisfied),
            (0x6984, ReferenceDataNotUsable),
            (0x6985, ConditionsNotSatisfied),
            (0x6A80, IncorrectData),
            (0x6A81, FunctionNotSupported),
            (0x6A82, FileNotFound),
            (0x6A84, NotEnoughMemory),
            (0x6A86, IncorrectP1P2),
            (0x6A88, ReferenceNotFound),
            (0x6B00, WrongP1P2),
            (0x6700, WrongLength),
            (0x6D00, InsNotSupported),
            (0x6E00, ClaNotSupported),
            (0x6F00, Unknown),
            (0x6581, MemoryFailure),
            (0x6300, Other(0x6300)),
        ];
        for (raw, typed) in cases {
            assert_eq!(StatusWord::from_u16(raw), typed, "{raw:04X}");
            assert_eq!(typed.to_u16(), raw);
        }
    }

    #[test]
    fn debug_shows_tries() {
        let s = format!("{:?}", StatusWord::VerifyFailed { tries_left: 1 });
        assert!(s.contains("63C1") && s.contains("1 tries left"), "{s}");
    }
}
