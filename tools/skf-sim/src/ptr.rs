//! The only place that turns a C caller's pointers into Rust values.
//!
//! NULL where the standard needs a value is `SAR_INVALIDPARAMERR`; a NULL
//! output buffer with a length pointer is a size query; a short one is
//! `SAR_BUFFER_TOO_SMALL` with the size needed written back (§6.5 of the
//! standard, the length-query convention). Absurd lengths are refused
//! before any memory is touched.

use crate::crypto::Sm2Cipher;
use crate::Sar;
use core::ffi::c_char;
use ukey_skf_sys::*;

/// Largest input buffer accepted from a caller.
pub const MAX_INPUT: usize = 1 << 24;
/// Longest string (name, PIN, label) read from a caller, without its NUL.
pub const MAX_STRING: usize = 256;

/// The handle value (handles are counters, never dereferenced).
pub fn handle(h: HANDLE) -> usize {
    h as usize
}

pub fn to_handle(h: usize) -> HANDLE {
    h as HANDLE
}

/// A NUL-terminated string of at most `MAX_STRING` bytes.
///
/// # Safety
/// `p` is NULL or points to readable memory up to and including a NUL
/// byte, or at least `MAX_STRING + 1` readable bytes.
pub unsafe fn cstr<'a>(p: *const c_char) -> Result<&'a [u8], Sar> {
    if p.is_null() {
        return Err(SAR_INVALIDPARAMERR);
    }
    let mut n = 0usize;
    // SAFETY: the caller guarantees the bytes up to the NUL (or
    // MAX_STRING + 1 bytes) are readable; we stop at the first of them.
    unsafe {
        while *p.add(n) != 0 {
            n += 1;
            if n > MAX_STRING {
                return Err(SAR_NAMELENERR);
            }
        }
        Ok(core::slice::from_raw_parts(p.cast::<u8>(), n))
    }
}

/// `len` input bytes at `p` (NULL allowed when `len` is 0).
///
/// # Safety
/// `p` is NULL or valid for reading `len` bytes.
pub unsafe fn bytes_in<'a>(p: *const u8, len: ULONG) -> Result<&'a [u8], Sar> {
    let len = len as usize;
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(SAR_INVALIDPARAMERR);
    }
    if len > MAX_INPUT {
        return Err(SAR_INDATALENERR);
    }
    // SAFETY: non-NULL and valid for `len` bytes per the caller.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// Read a value the caller passes by pointer.
///
/// # Safety
/// `p` is NULL or valid for reading a `T` (any alignment).
pub unsafe fn read<T: Copy>(p: *const T) -> Result<T, Sar> {
    if p.is_null() {
        return Err(SAR_INVALIDPARAMERR);
    }
    // SAFETY: non-NULL, readable per the caller; packed structs are read unaligned.
    Ok(unsafe { p.read_unaligned() })
}

/// Write a value to the caller's out-parameter.
///
/// # Safety
/// `p` is NULL or valid for writing a `T` (any alignment).
pub unsafe fn write<T: Copy>(p: *mut T, v: T) -> Result<(), Sar> {
    if p.is_null() {
        return Err(SAR_INVALIDPARAMERR);
    }
    // SAFETY: non-NULL, writable per the caller.
    unsafe { p.write_unaligned(v) };
    Ok(())
}

/// Write `v` if the caller gave somewhere to put it.
///
/// # Safety
/// As [`write`].
pub unsafe fn write_opt<T: Copy>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: non-NULL, writable per the caller.
        unsafe { p.write_unaligned(v) };
    }
}

/// The length-query convention before an operation that produces `needed`
/// bytes: `Ok(false)` when the caller only asked for the size (written to
/// `*len_ptr`), `Ok(true)` when `buf` has room, `SAR_BUFFER_TOO_SMALL` when
/// it does not.
///
/// # Safety
/// `len_ptr` is NULL or valid for reading and writing a `ULONG`.
pub unsafe fn room(buf: *mut u8, len_ptr: *mut ULONG, needed: usize) -> Result<bool, Sar> {
    // SAFETY: per the caller.
    let have = unsafe { read(len_ptr) }? as usize;
    let needed32 = ULONG::try_from(needed).map_err(|_| SAR_INDATALENERR)?;
    if buf.is_null() {
        // SAFETY: checked non-NULL above by `read`.
        unsafe { len_ptr.write_unaligned(needed32) };
        return Ok(false);
    }
    if have < needed {
        // SAFETY: as above.
        unsafe { len_ptr.write_unaligned(needed32) };
        return Err(SAR_BUFFER_TOO_SMALL);
    }
    Ok(true)
}

/// Copy `data` out under the length-query convention.
///
/// # Safety
/// `len_ptr` as in [`room`]; `buf` is NULL or valid for writing `*len_ptr` bytes.
pub unsafe fn out_bytes(buf: *mut u8, len_ptr: *mut ULONG, data: &[u8]) -> Result<(), Sar> {
    // SAFETY: per the caller.
    if unsafe { room(buf, len_ptr, data.len()) }? {
        // SAFETY: `buf` has room for `*len_ptr >= data.len()` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
            len_ptr.write_unaligned(data.len() as ULONG);
        }
    }
    Ok(())
}

/// Fill a caller's buffer of exactly `data.len()` bytes.
///
/// # Safety
/// `buf` valid for writing `data.len()` bytes.
pub unsafe fn copy_out(buf: *mut u8, data: &[u8]) {
    // SAFETY: per the caller.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len()) };
}

/// Write produced bytes after [`room`] said there is room.
///
/// # Safety
/// `buf` valid for `data.len()` bytes, `len_ptr` for a `ULONG`.
pub unsafe fn put_bytes(buf: *mut u8, len_ptr: *mut ULONG, data: &[u8]) {
    // SAFETY: per the caller.
    unsafe {
        core::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        len_ptr.write_unaligned(data.len() as ULONG);
    }
}

/// An `ECCCIPHERBLOB` from the caller, with at most `max` bytes of cipher
/// text; its `Cipher` array holds `CipherLen` bytes (a flexible array).
///
/// # Safety
/// `p` is NULL or valid for reading `ECC_CIPHER_BLOB_HEADER + CipherLen` bytes.
pub unsafe fn cipher_blob_in(p: *const EccCipherBlob, max: usize) -> Result<Sm2Cipher, Sar> {
    // SAFETY: per the caller (the header is part of any blob).
    let head: EccCipherBlob = unsafe { read(p) }?;
    let n = head.CipherLen as usize;
    if n == 0 || n > max {
        return Err(SAR_INDATALENERR);
    }
    // SAFETY: the caller's blob carries CipherLen bytes from `Cipher` on.
    let c2 = unsafe {
        core::slice::from_raw_parts(p.cast::<u8>().add(ECC_CIPHER_BLOB_HEADER), n).to_vec()
    };
    cipher_from_parts(&head, c2)
}

/// An `ECCCIPHERBLOB` given as a byte string (`SKF_ImportSessionKey`).
pub fn cipher_blob_from_bytes(b: &[u8], max: usize) -> Result<Sm2Cipher, Sar> {
    if b.len() < ECC_CIPHER_BLOB_HEADER {
        return Err(SAR_INDATALENERR);
    }
    let n = u32::from_le_bytes([b[160], b[161], b[162], b[163]]) as usize;
    if n == 0 || n > max || b.len() < ECC_CIPHER_BLOB_HEADER + n {
        return Err(SAR_INDATALENERR);
    }
    let mut head = [0u8; core::mem::size_of::<EccCipherBlob>()];
    head[..ECC_CIPHER_BLOB_HEADER].copy_from_slice(&b[..ECC_CIPHER_BLOB_HEADER]);
    // SAFETY: `head` is exactly one EccCipherBlob of plain bytes.
    let blob: EccCipherBlob = unsafe { core::ptr::read_unaligned(head.as_ptr().cast()) };
    cipher_from_parts(
        &blob,
        b[ECC_CIPHER_BLOB_HEADER..ECC_CIPHER_BLOB_HEADER + n].to_vec(),
    )
}

fn cipher_from_parts(head: &EccCipherBlob, c2: Vec<u8>) -> Result<Sm2Cipher, Sar> {
    let x = right32(&head.XCoordinate)?;
    let y = right32(&head.YCoordinate)?;
    Ok(Sm2Cipher {
        x,
        y,
        c3: head.HASH,
        c2,
    })
}

/// Write an `ECCCIPHERBLOB` with its cipher text after the header.
///
/// # Safety
/// `p` is NULL or valid for writing `ECC_CIPHER_BLOB_HEADER + c2.len()`
/// bytes (at least `sizeof(ECCCIPHERBLOB)`).
pub unsafe fn cipher_blob_out(p: *mut EccCipherBlob, c: &Sm2Cipher) -> Result<(), Sar> {
    if p.is_null() {
        return Err(SAR_INVALIDPARAMERR);
    }
    let bytes = cipher_blob_bytes(c);
    // SAFETY: the caller provides room for the header and the cipher text.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len()) };
    Ok(())
}

/// The bytes of an `ECCCIPHERBLOB` carrying `c`.
pub fn cipher_blob_bytes(c: &Sm2Cipher) -> Vec<u8> {
    let mut v = vec![0u8; ECC_CIPHER_BLOB_HEADER + c.c2.len()];
    v[32..64].copy_from_slice(&c.x);
    v[96..128].copy_from_slice(&c.y);
    v[128..160].copy_from_slice(&c.c3);
    v[160..164].copy_from_slice(&(c.c2.len() as u32).to_le_bytes());
    v[164..].copy_from_slice(&c.c2);
    v
}

/// The low 32 bytes of a right-aligned 64-byte field whose high half is zero.
pub fn right32(field: &[u8; 64]) -> Result<[u8; 32], Sar> {
    if field[..32].iter().any(|&b| b != 0) {
        return Err(SAR_INVALIDPARAMERR);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&field[32..]);
    Ok(out)
}

/// A 32-byte value right-aligned in a 64-byte field.
pub fn field64(v: &[u8; 32]) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[32..].copy_from_slice(v);
    f
}
