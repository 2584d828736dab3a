//! The only place that turns caller pointers into Rust values and writes
//! out-parameters (PKCS#11 v3.0 §5.2 conventions):
//!
//! * NULL with a non-zero length is `CKR_ARGUMENTS_BAD`;
//! * a NULL output buffer is a size query;
//! * a short output buffer is `CKR_BUFFER_TOO_SMALL`, with the size needed written back.
//!
//! Each wrapper is built by an `unsafe fn new` whose contract is the C
//! caller's (pointers valid for the call, lengths true); every method after
//! that is safe and checks NULLs and lengths itself.
//!
//! A length is checked against its limit before the buffer it describes is
//! touched, and nothing is allocated in proportion to a length before that
//! check: a PIN claimed to be 2^40 bytes long is refused without reading it
//! (a C caller that mixes up 32- and 64-bit lengths passes such values).

use crate::error::{Error, Result};
use cryptoki_sys::*;
use std::ffi::c_void;
use zeroize::Zeroizing;

fn to_usize(n: CK_ULONG) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::ArgumentsBad)
}

fn to_ulong(n: usize) -> CK_ULONG {
    n as CK_ULONG
}

/// Largest input buffer taken in one call (data to sign, verify, digest or
/// decrypt). Far beyond what any client hands a token module at once; a
/// larger length is a broken argument (e.g. garbage in the upper half of a
/// 64-bit length), refused before the buffer is read.
pub const MAX_IN_LEN: usize = 1 << 30;

/// Bytes the caller passes in.
pub struct InBytes {
    ptr: *const u8,
    len: CK_ULONG,
}

impl InBytes {
    /// # Safety
    /// `ptr` is NULL or points to `len` readable bytes valid for the whole call.
    pub unsafe fn new(ptr: *const u8, len: CK_ULONG) -> Self {
        Self { ptr, len }
    }

    /// The length the caller claims, without touching the buffer. NULL
    /// with a non-zero length is `CKR_ARGUMENTS_BAD`.
    pub fn len(&self) -> Result<usize> {
        let len = to_usize(self.len)?;
        if self.ptr.is_null() && len != 0 {
            return Err(Error::ArgumentsBad);
        }
        Ok(len)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The bytes, if they are at most `max` long; `too_long` otherwise,
    /// decided before the buffer is read.
    pub fn get_max(&self, max: usize, too_long: Error) -> Result<&[u8]> {
        let len = self.len()?;
        if len > max {
            return Err(too_long);
        }
        if len == 0 {
            return Ok(&[]);
        }
        // SAFETY: non-NULL (checked by `len`) and `len` bytes long per the
        // contract of `new`; `len <= max <= MAX_IN_LEN < isize::MAX`.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, len) })
    }

    /// The bytes (at most [`MAX_IN_LEN`]).
    pub fn get(&self) -> Result<&[u8]> {
        self.get_max(MAX_IN_LEN, Error::ArgumentsBad)
    }

    /// The bytes, at most `max` of them (else `too_long`, decided before
    /// anything is read or allocated), copied into a buffer that zeroizes
    /// on drop (PINs, PUKs, management keys).
    pub fn secret(&self, max: usize, too_long: Error) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(
            self.get_max(max.min(MAX_IN_LEN), too_long)?.to_vec(),
        ))
    }

    pub fn is_null(&self) -> bool {
        self.ptr.is_null()
    }
}

/// An output byte buffer with its length in/out parameter.
pub struct OutBytes {
    ptr: *mut u8,
    len: *mut CK_ULONG,
}

impl OutBytes {
    /// # Safety
    /// `len` is NULL or points to a writable CK_ULONG; `ptr` is NULL or points
    /// to `*len` writable bytes; both valid for the whole call.
    pub unsafe fn new(ptr: *mut u8, len: *mut CK_ULONG) -> Self {
        Self { ptr, len }
    }

    /// `None` for a size query (NULL buffer), else the buffer's capacity.
    pub fn capacity(&self) -> Result<Option<usize>> {
        if self.len.is_null() {
            return Err(Error::ArgumentsBad);
        }
        if self.ptr.is_null() {
            return Ok(None);
        }
        // SAFETY: `len` is non-NULL and readable per `new`.
        Ok(Some(to_usize(unsafe { *self.len })?))
    }

    /// Tell the caller how many bytes are (or would be) returned.
    pub fn set_len(&self, n: usize) -> Result<()> {
        if self.len.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: non-NULL and writable per `new`.
        unsafe { *self.len = to_ulong(n) };
        Ok(())
    }

    /// Whether `n` bytes would fit; answers size queries and short buffers
    /// (setting the length) so the caller can stop before doing the work.
    /// `Ok(true)`: go ahead and `write`; `Ok(false)`: size query answered.
    pub fn reserve(&self, n: usize) -> Result<bool> {
        match self.capacity()? {
            None => {
                self.set_len(n)?;
                Ok(false)
            }
            Some(cap) if cap < n => {
                self.set_len(n)?;
                Err(Error::BufferTooSmall)
            }
            Some(_) => Ok(true),
        }
    }

    /// Write `data` following the size-query / too-small conventions.
    pub fn write(&self, data: &[u8]) -> Result<()> {
        if !self.reserve(data.len())? {
            return Ok(());
        }
        // SAFETY: `ptr` is non-NULL (capacity was Some) with at least
        // `data.len()` writable bytes (checked by `reserve`).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr, data.len()) };
        self.set_len(data.len())
    }
}

/// A caller buffer to fill completely (C_GenerateRandom).
pub struct OutSlice {
    ptr: *mut u8,
    len: CK_ULONG,
}

impl OutSlice {
    /// # Safety
    /// `ptr` is NULL or points to `len` writable bytes valid for the whole call.
    pub unsafe fn new(ptr: *mut u8, len: CK_ULONG) -> Self {
        Self { ptr, len }
    }

    /// Bytes the caller wants: at most `max` (else `CKR_ARGUMENTS_BAD`).
    pub fn size(&self, max: usize) -> Result<usize> {
        let n = to_usize(self.len)?;
        if (self.ptr.is_null() && n > 0) || n > max {
            return Err(Error::ArgumentsBad);
        }
        Ok(n)
    }

    pub fn fill(&self, data: &[u8]) -> Result<()> {
        if data.len() != self.size(usize::MAX)? {
            return Err(Error::General("wrong amount of data for the buffer".into()));
        }
        if !data.is_empty() {
            // SAFETY: `ptr` has `len == data.len()` writable bytes per `new`.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr, data.len()) };
        }
        Ok(())
    }
}

/// A single out-parameter.
pub struct Out<T> {
    ptr: *mut T,
}

impl<T> Out<T> {
    /// # Safety
    /// `ptr` is NULL or points to a writable `T` valid for the whole call.
    pub unsafe fn new(ptr: *mut T) -> Self {
        Self { ptr }
    }

    pub fn write(&self, value: T) -> Result<()> {
        if self.ptr.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: non-NULL and writable per `new`; `write` does not read or
        // drop the old (possibly uninitialised) value.
        unsafe { self.ptr.write(value) };
        Ok(())
    }

    pub fn is_null(&self) -> bool {
        self.ptr.is_null()
    }
}

/// An output array with its count in/out parameter (slot lists, mechanism lists).
pub struct OutArray<T> {
    ptr: *mut T,
    count: *mut CK_ULONG,
}

impl<T: Copy> OutArray<T> {
    /// # Safety
    /// `count` is NULL or points to a writable CK_ULONG; `ptr` is NULL or
    /// points to `*count` writable `T`s; valid for the whole call.
    pub unsafe fn new(ptr: *mut T, count: *mut CK_ULONG) -> Self {
        Self { ptr, count }
    }

    /// Whether this is a size query (NULL array).
    pub fn is_query(&self) -> bool {
        self.ptr.is_null()
    }

    pub fn write(&self, items: &[T]) -> Result<()> {
        if self.count.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: `count` non-NULL and valid per `new`.
        let cap = to_usize(unsafe { *self.count })?;
        // SAFETY: as above.
        unsafe { *self.count = to_ulong(items.len()) };
        if self.ptr.is_null() {
            return Ok(());
        }
        if cap < items.len() {
            return Err(Error::BufferTooSmall);
        }
        // SAFETY: `ptr` has room for `cap >= items.len()` elements per `new`.
        unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), self.ptr, items.len()) };
        Ok(())
    }
}

/// `C_FindObjects` output: up to `max` handles and the count written.
pub struct OutHandles {
    ptr: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    count: *mut CK_ULONG,
}

impl OutHandles {
    /// # Safety
    /// `ptr` is NULL or points to `max` writable handles; `count` is NULL or
    /// writable; valid for the whole call.
    pub unsafe fn new(ptr: *mut CK_OBJECT_HANDLE, max: CK_ULONG, count: *mut CK_ULONG) -> Self {
        Self { ptr, max, count }
    }

    pub fn max(&self) -> Result<usize> {
        if self.count.is_null() || (self.ptr.is_null() && self.max > 0) {
            return Err(Error::ArgumentsBad);
        }
        to_usize(self.max)
    }

    pub fn write(&self, handles: &[CK_OBJECT_HANDLE]) -> Result<()> {
        let max = self.max()?;
        let n = handles.len().min(max);
        if n > 0 {
            // SAFETY: `ptr` has room for `max >= n` handles per `new`.
            unsafe { std::ptr::copy_nonoverlapping(handles.as_ptr(), self.ptr, n) };
        }
        // SAFETY: `count` is non-NULL (checked by `max`) and writable.
        unsafe { *self.count = to_ulong(n) };
        Ok(())
    }
}

/// One attribute of an input template, copied.
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: CK_ATTRIBUTE_TYPE,
    pub value: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Attribute({:#x}, {} bytes)", self.kind, self.value.len())
    }
}

/// What `C_GetAttributeValue` can say about one attribute.
pub enum AttrAnswer {
    Value(Vec<u8>),
    Sensitive,
    Invalid,
}

/// A caller's attribute template.
pub struct Template {
    ptr: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
}

/// Templates longer than this are refused (a real one has a dozen entries).
const MAX_TEMPLATE: usize = 4096;
/// Longest attribute value copied from a template (the largest real one is
/// a certificate, at most 16 KiB on a PIV card).
pub const MAX_ATTRIBUTE_VALUE: usize = 64 * 1024;
/// Most value bytes copied from one template.
const MAX_TEMPLATE_BYTES: usize = 1 << 20;

impl Template {
    /// # Safety
    /// `ptr` is NULL or points to `count` CK_ATTRIBUTEs whose `pValue`s are
    /// NULL or point to `ulValueLen` bytes (writable for `C_GetAttributeValue`);
    /// all valid for the whole call.
    pub unsafe fn new(ptr: *mut CK_ATTRIBUTE, count: CK_ULONG) -> Self {
        Self { ptr, count }
    }

    fn count(&self) -> Result<usize> {
        let n = to_usize(self.count)?;
        if n > MAX_TEMPLATE || (self.ptr.is_null() && n != 0) {
            return Err(Error::ArgumentsBad);
        }
        Ok(n)
    }

    fn entries(&self) -> Result<&[CK_ATTRIBUTE]> {
        let n = self.count()?;
        if n == 0 {
            return Ok(&[]);
        }
        // SAFETY: non-NULL with `n` entries per `new`.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, n) })
    }

    fn entries_mut(&mut self) -> Result<&mut [CK_ATTRIBUTE]> {
        let n = self.count()?;
        if n == 0 {
            return Ok(&mut []);
        }
        // SAFETY: non-NULL with `n` entries per `new`; the caller does not
        // touch them during the call.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr, n) })
    }

    /// The attribute types of a template (values untouched).
    pub fn types(&self) -> Result<Vec<CK_ATTRIBUTE_TYPE>> {
        Ok(self.entries()?.iter().map(|a| a.type_).collect())
    }

    /// Copy an input template (types and values). Every length is checked
    /// (each value at most [`MAX_ATTRIBUTE_VALUE`], the whole template at
    /// most 1 MiB) before any value is read.
    pub fn read(&self) -> Result<Vec<Attribute>> {
        let entries = self.entries()?;
        let mut total = 0usize;
        for a in entries {
            let len = to_usize(a.ulValueLen)?;
            if a.pValue.is_null() && len != 0 {
                return Err(Error::ArgumentsBad);
            }
            if len > MAX_ATTRIBUTE_VALUE {
                return Err(Error::AttributeValueInvalid);
            }
            total += len;
        }
        if total > MAX_TEMPLATE_BYTES {
            return Err(Error::ArgumentsBad);
        }
        entries
            .iter()
            .map(|a| {
                let value = if a.pValue.is_null() || a.ulValueLen == 0 {
                    Vec::new()
                } else {
                    // SAFETY: `pValue` points to `ulValueLen` bytes per `new`;
                    // the length was bounded above.
                    unsafe {
                        std::slice::from_raw_parts(a.pValue as *const u8, a.ulValueLen as usize)
                    }
                    .to_vec()
                };
                Ok(Attribute {
                    kind: a.type_,
                    value: Zeroizing::new(value),
                })
            })
            .collect()
    }

    /// Answer `C_GetAttributeValue` (v3.0 §5.7.5): every attribute is
    /// processed; the result is the first error met, if any.
    pub fn fill(&mut self, mut answer: impl FnMut(CK_ATTRIBUTE_TYPE) -> AttrAnswer) -> Result<()> {
        let mut result = Ok(());
        let mut note = |e: Error| {
            if result.is_ok() {
                result = Err(e);
            }
        };
        for a in self.entries_mut()? {
            match answer(a.type_) {
                AttrAnswer::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    note(Error::AttributeSensitive);
                }
                AttrAnswer::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    note(Error::AttributeTypeInvalid);
                }
                AttrAnswer::Value(v) => {
                    if a.pValue.is_null() {
                        a.ulValueLen = to_ulong(v.len());
                    } else if to_usize(a.ulValueLen)? >= v.len() {
                        // SAFETY: `pValue` has `ulValueLen >= v.len()` writable bytes per `new`.
                        unsafe {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len())
                        };
                        a.ulValueLen = to_ulong(v.len());
                    } else {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        note(Error::BufferTooSmall);
                    }
                }
            }
        }
        result
    }
}

/// Mechanism parameters, parsed per mechanism type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MechParams {
    None,
    Pss {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt_len: usize,
    },
    Oaep {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        label: Vec<u8>,
    },
    Ecdh {
        kdf: CK_EC_KDF_TYPE,
        shared: Vec<u8>,
        public: Vec<u8>,
    },
    Bytes(Vec<u8>),
}

/// A mechanism with its parameters copied out of the caller's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    pub kind: CK_MECHANISM_TYPE,
    pub params: MechParams,
}

/// Read a parameter struct of exactly `size_of::<T>()` bytes.
///
/// # Safety
/// `p` points to `len` readable bytes.
unsafe fn read_struct<T: Copy>(p: *const c_void, len: usize) -> Result<T> {
    if p.is_null() || len != std::mem::size_of::<T>() {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: `len` bytes readable (caller), equal to the size of `T`; the
    // parameter may be unaligned.
    Ok(unsafe { (p as *const T).read_unaligned() })
}

/// Copy `len` bytes at `p` (NULL allowed only with `len == 0`).
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes.
unsafe fn read_bytes(p: *const u8, len: CK_ULONG) -> Result<Vec<u8>> {
    let len = to_usize(len).map_err(|_| Error::MechanismParamInvalid)?;
    if p.is_null() {
        return if len == 0 {
            Ok(Vec::new())
        } else {
            Err(Error::MechanismParamInvalid)
        };
    }
    if len > 1 << 20 {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) }.to_vec())
}

/// A `CK_MECHANISM_PTR` argument.
pub struct InMechanism {
    ptr: *const CK_MECHANISM,
}

impl InMechanism {
    /// # Safety
    /// `ptr` is NULL or points to a CK_MECHANISM whose parameter (and any
    /// pointers inside it) are valid for `ulParameterLen` bytes during the call.
    pub unsafe fn new(ptr: *const CK_MECHANISM) -> Self {
        Self { ptr }
    }

    pub fn read(&self) -> Result<Mechanism> {
        if self.ptr.is_null() {
            return Err(Error::ArgumentsBad);
        }
        // SAFETY: non-NULL and readable per `new`.
        let m = unsafe { self.ptr.read_unaligned() };
        let len = to_usize(m.ulParameterLen).map_err(|_| Error::MechanismParamInvalid)?;
        let p = m.pParameter as *const c_void;
        let params = match m.mechanism {
            CKM_RSA_PKCS_PSS
            | CKM_SHA1_RSA_PKCS_PSS
            | CKM_SHA224_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS => {
                // SAFETY: `p` points to `len` bytes per `new`.
                let pss: CK_RSA_PKCS_PSS_PARAMS = unsafe { read_struct(p, len) }?;
                MechParams::Pss {
                    hash: pss.hashAlg,
                    mgf: pss.mgf,
                    salt_len: to_usize(pss.sLen).map_err(|_| Error::MechanismParamInvalid)?,
                }
            }
            CKM_RSA_PKCS_OAEP => {
                // SAFETY: as above.
                let oaep: CK_RSA_PKCS_OAEP_PARAMS = unsafe { read_struct(p, len) }?;
                let label = if oaep.source == CKZ_DATA_SPECIFIED {
                    // SAFETY: the source data pointer is valid per `new`.
                    unsafe { read_bytes(oaep.pSourceData as *const u8, oaep.ulSourceDataLen) }?
                } else if oaep.source == 0 && oaep.pSourceData.is_null() {
                    Vec::new()
                } else {
                    return Err(Error::MechanismParamInvalid);
                };
                MechParams::Oaep {
                    hash: oaep.hashAlg,
                    mgf: oaep.mgf,
                    label,
                }
            }
            CKM_ECDH1_DERIVE | CKM_ECDH1_COFACTOR_DERIVE => {
                // SAFETY: as above.
                let ecdh: CK_ECDH1_DERIVE_PARAMS = unsafe { read_struct(p, len) }?;
                MechParams::Ecdh {
                    kdf: ecdh.kdf,
                    // SAFETY: the inner pointers are valid per `new`.
                    shared: unsafe { read_bytes(ecdh.pSharedData, ecdh.ulSharedDataLen) }?,
                    // SAFETY: as above.
                    public: unsafe { read_bytes(ecdh.pPublicData, ecdh.ulPublicDataLen) }?,
                }
            }
            _ if len == 0 => MechParams::None,
            // SAFETY: `p` points to `len` bytes per `new`.
            _ => MechParams::Bytes(unsafe { read_bytes(p as *const u8, m.ulParameterLen) }?),
        };
        Ok(Mechanism {
            kind: m.mechanism,
            params,
        })
    }
}

/// What `C_Initialize` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitArgs {
    pub os_locking_ok: bool,
    pub has_callbacks: bool,
    pub library_cant_create_os_threads: bool,
}

/// The `pInitArgs` argument of `C_Initialize`.
pub struct InInitArgs {
    ptr: *const CK_C_INITIALIZE_ARGS,
}

impl InInitArgs {
    /// # Safety
    /// `ptr` is NULL or points to a readable CK_C_INITIALIZE_ARGS.
    pub unsafe fn new(ptr: *const c_void) -> Self {
        Self {
            ptr: ptr as *const CK_C_INITIALIZE_ARGS,
        }
    }

    pub fn read(&self) -> Result<Option<InitArgs>> {
        if self.ptr.is_null() {
            return Ok(None);
        }
        // SAFETY: non-NULL and readable per `new`.
        let a = unsafe { self.ptr.read_unaligned() };
        if !a.pReserved.is_null() {
            return Err(Error::ArgumentsBad);
        }
        let set = [
            a.CreateMutex.is_some(),
            a.DestroyMutex.is_some(),
            a.LockMutex.is_some(),
            a.UnlockMutex.is_some(),
        ];
        let has_callbacks = set.iter().all(|s| *s);
        if !has_callbacks && set.iter().any(|s| *s) {
            return Err(Error::ArgumentsBad);
        }
        Ok(Some(InitArgs {
            os_locking_ok: a.flags & CKF_OS_LOCKING_OK != 0,
            has_callbacks,
            library_cant_create_os_threads: a.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS != 0,
        }))
    }
}

/// Copy a NUL-terminated string argument (interface names), bounded.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
pub unsafe fn c_string(p: *const CK_UTF8CHAR) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    let mut out = Vec::new();
    for i in 0..256 {
        // SAFETY: reading up to the terminator, which the caller guarantees.
        let b = unsafe { *p.add(i) };
        if b == 0 {
            return Some(out);
        }
        out.push(b);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_bytes_conventions() {
        let mut len: CK_ULONG = 0;
        // SAFETY: a NULL buffer with a valid length pointer.
        let q = unsafe { OutBytes::new(std::ptr::null_mut(), &mut len) };
        q.write(&[1, 2, 3]).unwrap();
        assert_eq!(len, 3);
        let mut buf = [0u8; 2];
        len = 2;
        // SAFETY: a 2-byte buffer.
        let short = unsafe { OutBytes::new(buf.as_mut_ptr(), &mut len) };
        assert_eq!(short.write(&[1, 2, 3]), Err(Error::BufferTooSmall));
        assert_eq!(len, 3);
        let mut buf = [0u8; 4];
        len = 4;
        // SAFETY: a 4-byte buffer.
        let ok = unsafe { OutBytes::new(buf.as_mut_ptr(), &mut len) };
        ok.write(&[1, 2, 3]).unwrap();
        assert_eq!((len, &buf[..3]), (3, &[1u8, 2, 3][..]));
        // SAFETY: NULL length pointer.
        let bad = unsafe { OutBytes::new(buf.as_mut_ptr(), std::ptr::null_mut()) };
        assert_eq!(bad.write(&[1]), Err(Error::ArgumentsBad));
    }

    #[test]
    fn in_bytes_null_rules() {
        // SAFETY: NULL pointers only.
        unsafe {
            assert_eq!(InBytes::new(std::ptr::null(), 0).get().unwrap(), b"");
            assert_eq!(
                InBytes::new(std::ptr::null(), 5).get(),
                Err(Error::ArgumentsBad)
            );
        }
    }

    #[test]
    fn get_attribute_value_precedence() {
        let mut small = [0u8; 1];
        let mut big = [0u8; 8];
        let mut attrs = [
            CK_ATTRIBUTE {
                type_: 1,
                pValue: std::ptr::null_mut(),
                ulValueLen: 0,
            },
            CK_ATTRIBUTE {
                type_: 2,
                pValue: small.as_mut_ptr() as *mut c_void,
                ulValueLen: 1,
            },
            CK_ATTRIBUTE {
                type_: 3,
                pValue: big.as_mut_ptr() as *mut c_void,
                ulValueLen: 8,
            },
            CK_ATTRIBUTE {
                type_: 4,
                pValue: std::ptr::null_mut(),
                ulValueLen: 0,
            },
        ];
        // SAFETY: the attributes point to live buffers of the stated sizes.
        let mut t = unsafe { Template::new(attrs.as_mut_ptr(), 4) };
        let r = t.fill(|k| match k {
            1..=3 => AttrAnswer::Value(vec![7; 4]),
            _ => AttrAnswer::Sensitive,
        });
        assert_eq!(r, Err(Error::BufferTooSmall));
        assert_eq!(attrs[0].ulValueLen, 4);
        assert_eq!(attrs[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
        assert_eq!(attrs[2].ulValueLen, 4);
        assert_eq!(&big[..4], &[7; 4]);
        assert_eq!(attrs[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    }
}
