//! What comes back from vendor code, checked before it is believed: the
//! out-parameters, the length-query convention, name lists, fixed-size
//! strings and blobs. Every buffer handed to the library is zeroed and a
//! little larger than the length we tell it ([`SLACK`]), so a library that
//! writes one terminator too many scribbles on our spare bytes, not on the
//! heap; and every `ULONG`/`BOOL` out-parameter is 8 bytes wide (see
//! [`OutU32`]).

use crate::error::{check, Error, Result};
use ukey_skf_sys::{SAR_BUFFER_TOO_SMALL, ULONG};

/// The largest answer believed: a length above this is a malformed answer
/// (certificates and name lists are a few KiB).
pub const MAX_ANSWER: usize = 1 << 20;

/// Spare zeroed bytes after every buffer given to the library.
pub const SLACK: usize = 64;

#[cfg(target_endian = "big")]
compile_error!("OutU32 reads the low half of a 64-bit write: little-endian targets only");

/// A `ULONG *` (or `BOOL *`) out-parameter backed by 8 bytes: the standard
/// says 32 bits, but a library built with `ULONG` = C `long` writes 64 on
/// a 64-bit Linux. On a little-endian machine the value is in the first
/// word either way; the second word keeps the sentinel when only 32 bits
/// were written.
pub struct OutU32([u32; 2]);

/// "Not written by the library."
pub const UNSET: u32 = u32::MAX;

impl OutU32 {
    pub fn new(v: u32) -> Self {
        Self([v, UNSET])
    }

    pub fn unset() -> Self {
        Self([UNSET, UNSET])
    }

    pub fn ptr(&mut self) -> *mut ULONG {
        self.0.as_mut_ptr()
    }

    pub fn get(&self) -> u32 {
        self.0[0]
    }

    /// The value, or `None` if the library left the sentinel.
    pub fn written(&self) -> Option<u32> {
        Some(self.0[0]).filter(|&v| v != UNSET)
    }
}

/// A length the library announced, as a buffer size.
fn announced(function: &'static str, n: u32) -> Result<usize> {
    let n = n as usize;
    if n > MAX_ANSWER {
        return Err(Error::malformed(
            function,
            format!("announced {n} bytes (more than {MAX_ANSWER})"),
        ));
    }
    Ok(n)
}

/// The length-query convention of GM/T 0016 (§6.2): `call(NULL, &len)`
/// asks for the size, then `call(buf, &len)` fills the buffer; a
/// `SAR_BUFFER_TOO_SMALL` (the answer grew in between) is retried once
/// with the size it gives. The caller holds the lock that keeps both
/// calls together.
pub fn query(
    function: &'static str,
    mut call: impl FnMut(*mut u8, *mut ULONG) -> ULONG,
) -> Result<Vec<u8>> {
    let mut n = OutU32::new(0);
    check(function, call(std::ptr::null_mut(), n.ptr()))?;
    let mut size = announced(function, n.get())?;
    for retry in [true, false] {
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size + SLACK];
        let mut len = OutU32::new(size as u32);
        let rv = call(buf.as_mut_ptr(), len.ptr());
        if rv == SAR_BUFFER_TOO_SMALL && !retry {
            break;
        }
        if rv == SAR_BUFFER_TOO_SMALL {
            let bigger = announced(function, len.get())?;
            if bigger <= size {
                return Err(Error::malformed(
                    function,
                    format!("a buffer of {size} bytes is too small, yet it asks for {bigger}"),
                ));
            }
            size = bigger;
            continue;
        }
        check(function, rv)?;
        let got = len.get() as usize;
        if got > size {
            return Err(Error::malformed(
                function,
                format!("claims {got} bytes written into a buffer of {size}"),
            ));
        }
        buf.truncate(got);
        return Ok(buf);
    }
    Err(Error::malformed(
        function,
        "the buffer is still too small after a retry",
    ))
}

/// A name as the library spells it (bytes without NUL; vendors use UTF-8
/// or GBK), passed back unchanged to open what it names.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Vec<u8>);

/// Longest name accepted from a caller.
pub const MAX_NAME: usize = 256;

impl Name {
    /// A name from a caller: not empty, no NUL, at most [`MAX_NAME`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        if bytes.is_empty() || bytes.len() > MAX_NAME || bytes.contains(&0) {
            return Err(Error::Argument(format!(
                "{:?} is not a valid SKF name (1 to {MAX_NAME} bytes, no NUL)",
                String::from_utf8_lossy(&bytes)
            )));
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// NUL-terminated, for the library.
    pub fn c(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        v.extend_from_slice(&self.0);
        v.push(0);
        v
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl TryFrom<&str> for Name {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Name::new(s.as_bytes())
    }
}

/// A name list (§6.2): each name NUL-terminated, the list ended by an
/// empty name (a second NUL). An empty answer or a lone NUL is an empty
/// list; a name without its NUL or a list without its end is malformed.
pub fn name_list(function: &'static str, bytes: &[u8]) -> Result<Vec<Name>> {
    let mut names = Vec::new();
    let mut rest = bytes;
    if rest.is_empty() {
        return Ok(names);
    }
    loop {
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            return Err(Error::malformed(
                function,
                if rest.is_empty() {
                    "the name list does not end with a double NUL".to_string()
                } else {
                    format!(
                        "a name without its NUL ({:?})",
                        String::from_utf8_lossy(rest)
                    )
                },
            ));
        };
        if end == 0 {
            return Ok(names);
        }
        let name = Name::new(&rest[..end])
            .map_err(|_| Error::malformed(function, format!("a name of {end} bytes")))?;
        if names.contains(&name) {
            return Err(Error::malformed(function, format!("{name:?} listed twice")));
        }
        names.push(name);
        rest = &rest[end + 1..];
    }
}

/// A fixed-size `CHAR[n]` field: up to the first NUL (the whole field if
/// it has none), trailing spaces dropped, invalid UTF-8 replaced.
pub fn fixed_str(field: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// A zeroed buffer for a `#pragma pack(1)` struct the library fills, with
/// [`SLACK`] spare bytes (a library with a longer private version of the
/// struct writes into them).
pub struct StructBuf<T: PlainData> {
    bytes: Vec<u8>,
    _t: std::marker::PhantomData<T>,
}

impl<T: PlainData> StructBuf<T> {
    pub fn new() -> Self {
        Self {
            bytes: vec![0u8; std::mem::size_of::<T>() + SLACK],
            _t: std::marker::PhantomData,
        }
    }

    /// Start from a value (for in/out structs).
    pub fn from_value(v: &T) -> Self {
        let mut b = Self::new();
        // SAFETY: `bytes` holds at least size_of::<T>() bytes; T is a packed
        // (alignment 1) plain-data struct, so an unaligned write is fine.
        unsafe { std::ptr::write_unaligned(b.bytes.as_mut_ptr().cast::<T>(), *v) };
        b
    }

    pub fn ptr(&mut self) -> *mut T {
        self.bytes.as_mut_ptr().cast()
    }

    /// The struct as the library left it.
    pub fn get(&self) -> T {
        // SAFETY: `bytes` holds at least size_of::<T>() initialised bytes,
        // and T (a packed struct of integers and byte arrays) is valid for
        // any bit pattern.
        unsafe { std::ptr::read_unaligned(self.bytes.as_ptr().cast::<T>()) }
    }
}

impl<T: PlainData> Default for StructBuf<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The structs [`StructBuf`] and [`from_bytes`] may hold: packed
/// (alignment 1), every bit pattern valid.
pub trait PlainData: Copy {}
impl PlainData for ukey_skf_sys::DevInfo {}
impl PlainData for ukey_skf_sys::EccPublicKeyBlob {}
impl PlainData for ukey_skf_sys::EccSignatureBlob {}

/// A packed struct read from the start of `bytes`, if there are enough.
pub fn from_bytes<T: PlainData>(function: &'static str, bytes: &[u8]) -> Result<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return Err(Error::malformed(
            function,
            format!(
                "{} bytes where a structure of {} was due",
                bytes.len(),
                std::mem::size_of::<T>()
            ),
        ));
    }
    // SAFETY: enough bytes were checked just above; T is PlainData (packed,
    // valid for any bit pattern), read unaligned.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// The length of the DER element at the start of `der` (tag, length and
/// contents), if its header is well-formed.
pub fn der_len(der: &[u8]) -> Option<usize> {
    let (&tag, rest) = der.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, 2 + n)
    };
    header.checked_add(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[u8]) -> Result<Vec<String>> {
        name_list("f", list).map(|v| v.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn name_lists_end_with_a_double_nul() {
        assert_eq!(names(b"").unwrap(), Vec::<String>::new());
        assert_eq!(names(b"\0").unwrap(), Vec::<String>::new());
        assert_eq!(names(b"\0\0").unwrap(), Vec::<String>::new());
        assert_eq!(names(b"a\0bc\0\0").unwrap(), ["a", "bc"]);
        // Bytes after the end are not names.
        assert_eq!(names(b"a\0\0junk").unwrap(), ["a"]);
        for bad in [&b"a\0"[..], b"a\0b", b"abc", b"a\0a\0\0"] {
            let e = names(bad).unwrap_err();
            assert!(matches!(e, Error::Malformed { .. }), "{bad:?}: {e}");
        }
        assert!(names(b"a\0")
            .unwrap_err()
            .to_string()
            .contains("double NUL"));
    }

    #[test]
    fn names_from_callers_are_checked() {
        assert!(Name::new("UKEY_APP").is_ok());
        assert!(Name::new("").is_err());
        assert!(Name::new("a\0b").is_err());
        assert!(Name::new(vec![b'x'; MAX_NAME + 1]).is_err());
        assert_eq!(Name::new("ab").unwrap().c(), b"ab\0");
    }

    #[test]
    fn fixed_fields_without_a_nul_are_read_to_their_end() {
        let f: Vec<std::ffi::c_char> = b"LABEL   ".iter().map(|&b| b as _).collect();
        assert_eq!(fixed_str(&f), "LABEL");
        let f: Vec<std::ffi::c_char> = b"ab\0cd".iter().map(|&b| b as _).collect();
        assert_eq!(fixed_str(&f), "ab");
    }

    #[test]
    fn the_length_query_convention_and_hostile_lengths() {
        // Well-behaved: size, then data.
        let data = b"hello\0\0".to_vec();
        let good = |p: *mut u8, n: *mut u32| {
            // SAFETY: test double following the convention with our buffers.
            unsafe {
                if !p.is_null() {
                    if (*n as usize) < data.len() {
                        *n = data.len() as u32;
                        return SAR_BUFFER_TOO_SMALL;
                    }
                    std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len());
                }
                *n = data.len() as u32;
            }
            0
        };
        assert_eq!(query("f", good).unwrap(), data);

        // The answer grows between the two calls: one retry.
        let mut calls = 0;
        let growing = |p: *mut u8, n: *mut u32| {
            calls += 1;
            let want = if calls <= 1 { 4 } else { 8 };
            // SAFETY: test double writing within the announced length.
            unsafe {
                if !p.is_null() && (*n as usize) >= want {
                    std::ptr::write_bytes(p, b'x', want);
                } else if !p.is_null() {
                    *n = want as u32;
                    return SAR_BUFFER_TOO_SMALL;
                }
                *n = want as u32;
            }
            0
        };
        assert_eq!(query("f", growing).unwrap(), b"xxxxxxxx");

        // Absurd sizes are malformed answers, never allocations.
        let absurd = |_: *mut u8, n: *mut u32| {
            // SAFETY: writes the out-length only.
            unsafe { *n = u32::MAX - 1 };
            0
        };
        assert!(matches!(query("f", absurd), Err(Error::Malformed { .. })));

        // Claims to have written more than the buffer holds.
        let liar = |p: *mut u8, n: *mut u32| {
            // SAFETY: writes the out-length only.
            unsafe { *n = if p.is_null() { 4 } else { 40 } };
            0
        };
        let e = query("f", liar).unwrap_err();
        assert!(e.to_string().contains("40 bytes"), "{e}");

        // Always too small: one retry, then an error.
        let never = |p: *mut u8, n: *mut u32| {
            // SAFETY: writes the out-length only.
            unsafe { *n = if p.is_null() { 4 } else { *n + 4 } };
            if p.is_null() {
                0
            } else {
                SAR_BUFFER_TOO_SMALL
            }
        };
        assert!(matches!(query("f", never), Err(Error::Malformed { .. })));
        // "Too small" without asking for more.
        let stuck = |p: *mut u8, n: *mut u32| {
            // SAFETY: writes the out-length only.
            unsafe { *n = 4 };
            if p.is_null() {
                0
            } else {
                SAR_BUFFER_TOO_SMALL
            }
        };
        assert!(matches!(query("f", stuck), Err(Error::Malformed { .. })));
        // Errors from the size query pass through.
        assert_eq!(
            query("f", |_, _| ukey_skf_sys::SAR_DEVICE_REMOVED),
            Err(Error::Removed)
        );
    }

    #[test]
    fn a_64_bit_ulong_write_is_read_and_an_unwritten_one_is_seen() {
        let mut o = OutU32::unset();
        assert_eq!(o.written(), None);
        // SAFETY: OutU32 is 8 bytes wide, as a 64-bit `unsigned long`.
        unsafe { *o.ptr().cast::<u64>() = 7 };
        assert_eq!(o.written(), Some(7));
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_len(&[0x30, 0x03, 1, 2, 3, 0, 0]), Some(5));
        assert_eq!(der_len(&[0x30, 0x82, 0x01, 0x00]), Some(260));
        assert_eq!(der_len(&[0x30, 0x80]), None);
        assert_eq!(der_len(&[0x30]), None);
    }
}
