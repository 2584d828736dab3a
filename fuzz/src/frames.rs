//! Length-prefixed frames: a 2-byte big-endian length, then that many
//! bytes — the wire format of vsmartcard's vpcd (INTEROP.md), so an APDU
//! stream seed reads like what pcscd sends a card. A length that runs past
//! the end of the input takes what is left: every input means something.

/// Iterator over the frames of `data`.
#[derive(Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = match self.rest {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => return None,
        };
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        self.rest = rest;
        Some(frame)
    }
}

/// Append one frame to `out`. Panics on payloads over 65535 bytes, which
/// the format cannot carry (only seed writers call this).
pub fn push(out: &mut Vec<u8>, payload: &[u8]) {
    let len = u16::try_from(payload.len()).expect("frame longer than 65535 bytes");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Encode `payloads` as consecutive frames.
pub fn encode<'p>(payloads: impl IntoIterator<Item = &'p [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        push(&mut out, p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_tail() {
        let data = encode([&[1u8, 2][..], &[], &[3]]);
        assert_eq!(data, [0, 2, 1, 2, 0, 0, 0, 1, 3]);
        let frames: Vec<_> = Frames::new(&data).collect();
        assert_eq!(frames, [&[1u8, 2][..], &[], &[3]]);
        // A length past the end takes the rest; a lone byte is no frame.
        let frames: Vec<_> = Frames::new(&[0, 9, 7, 7]).collect();
        assert_eq!(frames, [&[7u8, 7][..]]);
        assert_eq!(Frames::new(&[5]).count(), 0);
    }
}
