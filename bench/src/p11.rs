//! A thin, call-for-call wrapper over a PKCS#11 module's function list, so
//! ukey, OpenSC and SoftHSM2 are driven by exactly the same C calls (no
//! hidden size queries or extra attribute reads from a higher-level crate).
//! The caller's side of the C ABI lives here and nowhere else.

use cryptoki_sys::*;
use sha2::Digest;
use std::ffi::c_void;
use std::fmt;
use std::path::Path;
use std::ptr;

/// A PKCS#11 return value other than CKR_OK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rv(pub CK_RV);

impl fmt::Display for Rv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CKR 0x{:08X}", self.0)
    }
}

impl std::error::Error for Rv {}

pub type P11Result<T> = Result<T, Rv>;

fn check(rv: CK_RV) -> P11Result<()> {
    if rv == CKR_OK {
        Ok(())
    } else {
        Err(Rv(rv))
    }
}

/// A loaded module and its 2.40 function table.
pub struct Module {
    funcs: *const CK_FUNCTION_LIST,
    // Declared last: dropped after every use of `funcs`. `None` for the
    // module linked into this binary.
    _lib: Option<libloading::Library>,
}

// SAFETY: the function table is immutable static data of the loaded
// library; the modules are initialised with CKF_OS_LOCKING_OK, so their
// functions may be called from any thread.
unsafe impl Send for Module {}
// SAFETY: as above; `Module` has no interior mutability of its own.
unsafe impl Sync for Module {}

macro_rules! func {
    ($m:expr, $name:ident) => {
        // SAFETY: `funcs` points into the loaded library, which `Module` keeps loaded.
        unsafe { (*$m.funcs).$name }.ok_or(Rv(CKR_FUNCTION_NOT_SUPPORTED))?
    };
}

/// An attribute template entry for searches.
pub struct Attr {
    pub kind: CK_ATTRIBUTE_TYPE,
    pub value: Vec<u8>,
}

impl Attr {
    pub fn class(c: CK_OBJECT_CLASS) -> Self {
        Self {
            kind: CKA_CLASS,
            value: c.to_ne_bytes().to_vec(),
        }
    }
    pub fn id(id: &[u8]) -> Self {
        Self {
            kind: CKA_ID,
            value: id.to_vec(),
        }
    }
}

impl Module {
    /// dlopen the module and fetch its function list (no PKCS#11 call yet).
    pub fn load(path: &Path) -> Result<Self, String> {
        // SAFETY: loading a PKCS#11 module runs its initialisers; the
        // modules benchmarked here are the ones the tests load the same way.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut funcs: *mut CK_FUNCTION_LIST = ptr::null_mut();
        // SAFETY: C_GetFunctionList has this signature in every module (PKCS#11 §5.4.4).
        let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
            unsafe { lib.get(b"C_GetFunctionList\0") }
                .map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: `funcs` is a valid out-pointer.
        let rv = unsafe { get(&mut funcs) };
        if rv != CKR_OK || funcs.is_null() {
            return Err(format!("{}: C_GetFunctionList: {}", path.display(), Rv(rv)));
        }
        Ok(Self {
            funcs,
            _lib: Some(lib),
        })
    }

    /// ukey's module linked into this binary (the `ukey-pkcs11` rlib, the
    /// same code as the .so): the levels of the stack then run one copy of
    /// the simulator's code, so they differ only by what lies between them.
    pub fn linked() -> Self {
        Self {
            funcs: &ukey_pkcs11::ffi::FUNCTION_LIST,
            _lib: None,
        }
    }

    /// C_Initialize with OS locking.
    pub fn initialize(&self) -> P11Result<()> {
        let f = func!(self, C_Initialize);
        let mut args = CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: CKF_OS_LOCKING_OK,
            pReserved: ptr::null_mut(),
        };
        // SAFETY: `args` outlives the call.
        check(unsafe { f(&mut args as *mut _ as *mut c_void) })
    }

    pub fn finalize(&self) -> P11Result<()> {
        let f = func!(self, C_Finalize);
        // SAFETY: the reserved argument must be NULL.
        check(unsafe { f(ptr::null_mut()) })
    }

    /// C_GetSlotList: size query, then the list.
    pub fn slots(&self, token_present: bool) -> P11Result<Vec<CK_SLOT_ID>> {
        let f = func!(self, C_GetSlotList);
        let present = CK_BBOOL::from(token_present);
        let mut n: CK_ULONG = 0;
        // SAFETY: NULL list is a size query; `n` is a valid out-pointer.
        check(unsafe { f(present, ptr::null_mut(), &mut n) })?;
        let mut v = vec![0; n as usize];
        // SAFETY: `v` has room for `n` slot IDs.
        check(unsafe { f(present, v.as_mut_ptr(), &mut n) })?;
        v.truncate(n as usize);
        Ok(v)
    }

    pub fn token_info(&self, slot: CK_SLOT_ID) -> P11Result<CK_TOKEN_INFO> {
        let f = func!(self, C_GetTokenInfo);
        // SAFETY: CK_TOKEN_INFO is plain data; all-zero is a valid value.
        let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer.
        check(unsafe { f(slot, &mut info) })?;
        Ok(info)
    }

    pub fn open(&self, slot: CK_SLOT_ID, rw: bool) -> P11Result<CK_SESSION_HANDLE> {
        let f = func!(self, C_OpenSession);
        let flags = CKF_SERIAL_SESSION | if rw { CKF_RW_SESSION } else { 0 };
        let mut h: CK_SESSION_HANDLE = 0;
        // SAFETY: no callback; `h` is a valid out-pointer.
        check(unsafe { f(slot, flags, ptr::null_mut(), None, &mut h) })?;
        Ok(h)
    }

    pub fn close(&self, h: CK_SESSION_HANDLE) -> P11Result<()> {
        let f = func!(self, C_CloseSession);
        // SAFETY: plain values.
        check(unsafe { f(h) })
    }

    pub fn session_info(&self, h: CK_SESSION_HANDLE) -> P11Result<CK_SESSION_INFO> {
        let f = func!(self, C_GetSessionInfo);
        let mut info = CK_SESSION_INFO {
            slotID: 0,
            state: 0,
            flags: 0,
            ulDeviceError: 0,
        };
        // SAFETY: `info` is a valid out-pointer.
        check(unsafe { f(h, &mut info) })?;
        Ok(info)
    }

    /// C_Login; "already logged in" (another session of this application
    /// did it: PKCS#11 login is per token) counts as success.
    pub fn login(&self, h: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &str) -> P11Result<()> {
        let f = func!(self, C_Login);
        // SAFETY: the PIN buffer outlives the call; the module only reads it.
        let rv = unsafe { f(h, user, pin.as_ptr() as *mut u8, pin.len() as CK_ULONG) };
        match rv {
            CKR_USER_ALREADY_LOGGED_IN if user == CKU_USER => Ok(()),
            rv => check(rv),
        }
    }

    /// C_FindObjectsInit, C_FindObjects (batches of 64), C_FindObjectsFinal.
    pub fn find(
        &self,
        h: CK_SESSION_HANDLE,
        template: &[Attr],
    ) -> P11Result<Vec<CK_OBJECT_HANDLE>> {
        let init = func!(self, C_FindObjectsInit);
        let next = func!(self, C_FindObjects);
        let fin = func!(self, C_FindObjectsFinal);
        let mut t: Vec<CK_ATTRIBUTE> = template
            .iter()
            .map(|a| CK_ATTRIBUTE {
                type_: a.kind,
                pValue: a.value.as_ptr() as *mut c_void,
                ulValueLen: a.value.len() as CK_ULONG,
            })
            .collect();
        let tp = if t.is_empty() {
            ptr::null_mut()
        } else {
            t.as_mut_ptr()
        };
        // SAFETY: the template and its values outlive the call.
        check(unsafe { init(h, tp, t.len() as CK_ULONG) })?;
        let mut out = Vec::new();
        loop {
            let mut batch = [0 as CK_OBJECT_HANDLE; 64];
            let mut n: CK_ULONG = 0;
            // SAFETY: `batch` has room for 64 handles.
            check(unsafe { next(h, batch.as_mut_ptr(), batch.len() as CK_ULONG, &mut n) })?;
            out.extend_from_slice(&batch[..n as usize]);
            if (n as usize) < batch.len() {
                break;
            }
        }
        // SAFETY: plain values.
        check(unsafe { fin(h) })?;
        Ok(out)
    }

    /// C_GetAttributeValue as applications call it: lengths first, then
    /// values. Attributes the object lacks come back as `None`.
    pub fn attributes(
        &self,
        h: CK_SESSION_HANDLE,
        obj: CK_OBJECT_HANDLE,
        kinds: &[CK_ATTRIBUTE_TYPE],
    ) -> P11Result<Vec<Option<Vec<u8>>>> {
        let f = func!(self, C_GetAttributeValue);
        let mut t: Vec<CK_ATTRIBUTE> = kinds
            .iter()
            .map(|k| CK_ATTRIBUTE {
                type_: *k,
                pValue: ptr::null_mut(),
                ulValueLen: 0,
            })
            .collect();
        // SAFETY: NULL values are length queries; `t` outlives the call.
        let rv = unsafe { f(h, obj, t.as_mut_ptr(), t.len() as CK_ULONG) };
        if !matches!(
            rv,
            CKR_OK | CKR_ATTRIBUTE_TYPE_INVALID | CKR_ATTRIBUTE_SENSITIVE
        ) {
            return Err(Rv(rv));
        }
        let mut bufs: Vec<Option<Vec<u8>>> = t
            .iter()
            .map(|a| {
                (a.ulValueLen != CK_UNAVAILABLE_INFORMATION)
                    .then(|| vec![0u8; a.ulValueLen as usize])
            })
            .collect();
        for (a, b) in t.iter_mut().zip(bufs.iter_mut()) {
            match b {
                Some(b) => a.pValue = b.as_mut_ptr() as *mut c_void,
                None => a.pValue = ptr::null_mut(),
            }
        }
        // SAFETY: every non-NULL pValue points to a buffer of ulValueLen bytes.
        let rv = unsafe { f(h, obj, t.as_mut_ptr(), t.len() as CK_ULONG) };
        if !matches!(
            rv,
            CKR_OK | CKR_ATTRIBUTE_TYPE_INVALID | CKR_ATTRIBUTE_SENSITIVE
        ) {
            return Err(Rv(rv));
        }
        Ok(bufs)
    }

    pub fn sign_init(
        &self,
        h: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
    ) -> P11Result<()> {
        let f = func!(self, C_SignInit);
        let mut m = CK_MECHANISM {
            mechanism,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        // SAFETY: `m` outlives the call.
        check(unsafe { f(h, &mut m, key) })
    }

    /// C_Sign into `out` (no size query: `out` is large enough for any key here).
    pub fn sign(&self, h: CK_SESSION_HANDLE, data: &[u8], out: &mut [u8]) -> P11Result<usize> {
        let f = func!(self, C_Sign);
        let mut n = out.len() as CK_ULONG;
        // SAFETY: `data` is read-only input; `out` has room for `n` bytes.
        check(unsafe {
            f(
                h,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut n,
            )
        })?;
        Ok(n as usize)
    }
}

/// The mechanisms the benchmark signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    /// CKM_SHA256_RSA_PKCS with an RSA-2048 key.
    Rsa,
    /// CKM_ECDSA on the SHA-256 digest of the message, P-256 key
    /// (SoftHSM2 2.6 has no CKM_ECDSA_SHA256).
    Ecdsa,
}

impl Mech {
    pub fn ckm(self) -> CK_MECHANISM_TYPE {
        match self {
            Mech::Rsa => CKM_SHA256_RSA_PKCS,
            Mech::Ecdsa => CKM_ECDSA,
        }
    }

    /// What goes into C_Sign: the message, or its digest for raw ECDSA.
    pub fn input(self) -> Vec<u8> {
        match self {
            Mech::Rsa => MESSAGE.to_vec(),
            Mech::Ecdsa => sha2::Sha256::digest(MESSAGE).to_vec(),
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Mech::Rsa => "rsa",
            Mech::Ecdsa => "ecdsa",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rsa" => Some(Mech::Rsa),
            "ecdsa" => Some(Mech::Ecdsa),
            _ => None,
        }
    }
}

/// The message every benchmark signs.
pub const MESSAGE: &[u8] = b"ukey benchmark: a tender document to sign";

/// Slots whose token is initialized (SoftHSM2 also lists an empty slot
/// with an uninitialized token; the cards' tokens are all initialized).
pub fn token_slots(m: &Module) -> Result<Vec<CK_SLOT_ID>, String> {
    let mut out = Vec::new();
    for s in m.slots(true).map_err(|e| format!("C_GetSlotList: {e}"))? {
        let info = m
            .token_info(s)
            .map_err(|e| format!("C_GetTokenInfo: {e}"))?;
        if info.flags & CKF_TOKEN_INITIALIZED != 0 {
            out.push(s);
        }
    }
    Ok(out)
}

/// The private key with CKA_ID `id` (after login, if the key is private).
pub fn private_key(m: &Module, h: CK_SESSION_HANDLE, id: u8) -> Result<CK_OBJECT_HANDLE, String> {
    let found = m
        .find(h, &[Attr::class(CKO_PRIVATE_KEY), Attr::id(&[id])])
        .map_err(|e| format!("find private key {id:02x}: {e}"))?;
    found
        .first()
        .copied()
        .ok_or_else(|| format!("no private key with CKA_ID {id:02x}"))
}

/// C_SignInit + C_Sign: one signature of `input` (see [`Mech::input`]).
pub fn sign_once(
    m: &Module,
    h: CK_SESSION_HANDLE,
    key: CK_OBJECT_HANDLE,
    mech: Mech,
    input: &[u8],
    out: &mut [u8],
) -> P11Result<usize> {
    m.sign_init(h, mech.ckm(), key)?;
    m.sign(h, input, out)
}
