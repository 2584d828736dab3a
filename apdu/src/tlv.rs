//! BER-TLV as PIV uses it (SP 800-73-4 Part 2 §3.3 / ISO 7816-4 §5.2).
//!
//! Tags are up to three bytes (`7F49`, `5FC105`), lengths use the short form
//! or `81`/`82`/`83` long forms. Parsing borrows from the input and never
//! panics on malformed data; building computes every length itself.

use core::fmt;

/// A BER-TLV tag, stored as its encoded bytes read big-endian (`0x5FC105`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u32);

impl Tag {
    /// Number of bytes the encoded tag takes.
    pub fn encoded_len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            0x1_0000..=0xFF_FFFF => 3,
            _ => 4,
        }
    }

    /// Append the encoded tag to `out`.
    pub fn write(self, out: &mut Vec<u8>) {
        let bytes = self.0.to_be_bytes();
        out.extend_from_slice(&bytes[4 - self.encoded_len()..]);
    }

    /// Encoded tag bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4);
        self.write(&mut v);
        v
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tag({:0width$X})",
            self.0,
            width = self.encoded_len() * 2
        )
    }
}

impl From<u32> for Tag {
    fn from(v: u32) -> Self {
        Tag(v)
    }
}

/// Why a TLV could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("TLV truncated")]
    Truncated,
    #[error("TLV tag longer than 4 bytes")]
    TagTooLong,
    #[error("TLV length form not supported")]
    BadLength,
    #[error("expected TLV tag {0:?} not found")]
    Missing(Tag),
    #[error("unexpected TLV tag {0:?}")]
    Unexpected(Tag),
}

/// One parsed TLV, borrowing its value from the input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
}

impl fmt::Debug for Tlv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} [{} bytes]", self.tag, self.value.len())
    }
}

fn read_tag(input: &[u8]) -> Result<(Tag, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated)?;
    let mut tag = u32::from(first);
    let mut used = 1;
    if first & 0x1F == 0x1F {
        // Subsequent bytes while b8 is set; at most 4 bytes in total.
        loop {
            let b = *input.get(used).ok_or(TlvError::Truncated)?;
            tag = (tag << 8) | u32::from(b);
            used += 1;
            if b & 0x80 == 0 {
                break;
            }
            if used == 4 {
                return Err(TlvError::TagTooLong);
            }
        }
    }
    Ok((Tag(tag), used))
}

fn read_len(input: &[u8]) -> Result<(usize, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated)?;
    match first {
        0..=0x7F => Ok((usize::from(first), 1)),
        0x81..=0x83 => {
            let n = usize::from(first & 0x7F);
            let bytes = input.get(1..1 + n).ok_or(TlvError::Truncated)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            Ok((len, 1 + n))
        }
        _ => Err(TlvError::BadLength),
    }
}

/// Parse one TLV at the start of `input`; returns it and the rest.
pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (tag, tag_len) = read_tag(input)?;
    let rest = &input[tag_len..];
    let (len, len_len) = read_len(rest)?;
    let rest = &rest[len_len..];
    let value = rest.get(..len).ok_or(TlvError::Truncated)?;
    Ok((Tlv { tag, value }, &rest[len..]))
}

/// Parse exactly one TLV that must span the whole input.
pub fn parse_single(input: &[u8]) -> Result<Tlv<'_>, TlvError> {
    let (tlv, rest) = parse_one(input)?;
    if rest.is_empty() {
        Ok(tlv)
    } else {
        Err(TlvError::Truncated)
    }
}

/// Iterator over consecutive TLVs. Yields an error once, then stops.
#[derive(Clone)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        // Some cards pad with 00 or FF after the last object: stop there.
        if self.rest.iter().all(|b| *b == 0x00) || self.rest.iter().all(|b| *b == 0xFF) {
            return None;
        }
        match parse_one(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterate over the TLVs concatenated in `input`.
pub fn iter(input: &[u8]) -> TlvIter<'_> {
    TlvIter {
        rest: input,
        failed: false,
    }
}

/// Parse all TLVs of `input` into a vector.
pub fn parse_all(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    iter(input).collect()
}

/// First value with `tag` among the TLVs in `input`, if any.
pub fn find(input: &[u8], tag: impl Into<Tag>) -> Result<Option<&[u8]>, TlvError> {
    let tag = tag.into();
    for tlv in iter(input) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv.value));
        }
    }
    Ok(None)
}

/// Like [`find`], but a missing tag is an error.
pub fn require(input: &[u8], tag: impl Into<Tag>) -> Result<&[u8], TlvError> {
    let tag = tag.into();
    find(input, tag)?.ok_or(TlvError::Missing(tag))
}

/// The value of the single outer TLV `tag` spanning `input`.
pub fn unwrap(input: &[u8], tag: impl Into<Tag>) -> Result<&[u8], TlvError> {
    let tag = tag.into();
    let (tlv, _) = parse_one(input)?;
    if tlv.tag != tag {
        return Err(TlvError::Unexpected(tlv.tag));
    }
    Ok(tlv.value)
}

/// Append a BER length to `out`.
pub fn write_len(len: usize, out: &mut Vec<u8>) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

/// Append `tag len value` to `out`.
pub fn write(tag: impl Into<Tag>, value: &[u8], out: &mut Vec<u8>) {
    tag.into().write(out);
    write_len(value.len(), out);
    out.extend_from_slice(value);
}

/// Encode a single TLV.
pub fn encode(tag: impl Into<Tag>, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 8);
    write(tag, value, &mut out);
    out
}

/// Builder for nested TLV structures; lengths are computed on `build`.
///
/// ```
/// use apdu::tlv::Builder;
/// let bytes = Builder::new()
///     .nested(0x7C, |b| b.add(0x82, &[]).add(0x81, &[1, 2, 3]))
///     .build();
/// assert_eq!(bytes, [0x7C, 0x07, 0x82, 0x00, 0x81, 0x03, 1, 2, 3]);
/// ```
#[derive(Default, Clone)]
pub struct Builder {
    out: Vec<u8>,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a primitive TLV.
    pub fn add(mut self, tag: impl Into<Tag>, value: &[u8]) -> Self {
        write(tag, value, &mut self.out);
        self
    }

    /// Add a TLV only when `value` is `Some`.
    pub fn add_opt(self, tag: impl Into<Tag>, value: Option<&[u8]>) -> Self {
        match value {
            Some(v) => self.add(tag, v),
            None => self,
        }
    }

    /// Add raw, already encoded bytes.
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.out.extend_from_slice(bytes);
        self
    }

    /// Add a constructed TLV whose content is built by `f`.
    pub fn nested(mut self, tag: impl Into<Tag>, f: impl FnOnce(Builder) -> Builder) -> Self {
        let inner = f(Builder::new()).out;
        write(tag, &inner, &mut self.out);
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn single_byte_tag_short_length() {
        let (tlv, rest) = parse_one(&hex!("80 02 AA BB CC")).unwrap();
        assert_eq!(tlv.tag, Tag(0x80));
        assert_eq!(tlv.value, hex!("AA BB"));
        assert_eq!(rest, hex!("CC"));
    }

    #[test]
    fn multi_byte_tags() {
        let (tlv, _) = parse_one(&hex!("7F49 03 86 01 04")).unwrap();
        assert_eq!(tlv.tag, Tag(0x7F49));
        let (tlv, _) = parse_one(&hex!("5FC105 00")).unwrap();
        assert_eq!(tlv.tag, Tag(0x5FC105));
        assert_eq!(tlv.value, b"");
    }

    #[test]
    fn long_form_lengths() {
        let mut data = hex!("53 82 01 00").to_vec();
        data.extend(std::iter::repeat_n(0x5A, 256));
        let (tlv, rest) = parse_one(&data).unwrap();
        assert_eq!(tlv.value.len(), 256);
        assert!(rest.is_empty());
        let mut data = hex!("53 81 80").to_vec();
        data.extend(std::iter::repeat_n(1, 128));
        assert_eq!(parse_one(&data).unwrap().0.value.len(), 128);
    }

    #[test]
    fn truncated_value_is_an_error() {
        assert_eq!(parse_one(&hex!("53 05 01 02")), Err(TlvError::Truncated));
        assert_eq!(parse_one(&hex!("53 82 01")), Err(TlvError::Truncated));
        assert_eq!(parse_one(&hex!("5F")), Err(TlvError::Truncated));
        assert_eq!(parse_one(&[]), Err(TlvError::Truncated));
    }

    #[test]
    fn indefinite_and_huge_lengths_are_rejected() {
        assert_eq!(parse_one(&hex!("53 80 00 00")), Err(TlvError::BadLength));
        assert_eq!(
            parse_one(&hex!("53 84 00 00 00 01 00")),
            Err(TlvError::BadLength)
        );
    }

    #[test]
    fn overlong_tag_is_rejected() {
        assert_eq!(
            parse_one(&hex!("5F FF FF FF 01 00")),
            Err(TlvError::TagTooLong)
        );
    }

    #[test]
    fn iteration_stops_at_padding_and_reports_errors() {
        let items = parse_all(&hex!("01 01 AA 02 00 00 00")).unwrap();
        assert_eq!(items.len(), 2);
        assert!(parse_all(&hex!("01 01 AA 02 05 00")).is_err());
    }

    #[test]
    fn find_and_require() {
        let data = hex!("70 02 30 00 71 01 00 FE 00");
        assert_eq!(find(&data, 0x71u32).unwrap(), Some(&[0u8][..]));
        assert_eq!(find(&data, 0x72u32).unwrap(), None);
        assert_eq!(require(&data, 0x72u32), Err(TlvError::Missing(Tag(0x72))));
    }

    #[test]
    fn builder_computes_lengths() {
        let big = vec![7u8; 300];
        let bytes = Builder::new()
            .nested(0x53, |b| b.add(0x70, &big).add(0x71, &[0]).add(0xFE, &[]))
            .build();
        assert_eq!(&bytes[..4], &hex!("53 82 01 35")); // 4 + 300 + 3 + 2
        assert_eq!(&bytes[4..8], &hex!("70 82 01 2C"));
        let inner = unwrap(&bytes, 0x53u32).unwrap();
        assert_eq!(require(inner, 0x70u32).unwrap(), &big[..]);
    }

    #[test]
    fn tag_round_trip() {
        for t in [0x53u32, 0x7F49, 0x5FC105, 0x7E] {
            let enc = Tag(t).to_bytes();
            let (tag, used) = read_tag(&enc).unwrap();
            assert_eq!((tag, used), (Tag(t), enc.len()));
        }
    }

    #[test]
    fn length_encodings() {
        for (len, expect) in [
            (0usize, &hex!("00")[..]),
            (0x7F, &hex!("7F")),
            (0x80, &hex!("81 80")),
            (0xFF, &hex!("81 FF")),
            (0x100, &hex!("82 01 00")),
            (0x1_0000, &hex!("83 01 00 00")),
        ] {
            let mut out = Vec::new();
            write_len(len, &mut out);
            assert_eq!(out, expect, "len {len}");
            assert_eq!(read_len(&out).unwrap(), (len, out.len()));
        }
    }
}
