//! Loading a vendor library: every symbol resolved once into [`Functions`];
//! the required ones make a library usable, the optional ones are
//! [`Capability`]s.

use crate::error::{check, Error, Result};
use crate::raw::{self, Name, OutU32};
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use ukey_skf_sys::fns;
use ukey_skf_sys::*;

macro_rules! functions {
    (
        required { $($r:ident),* $(,)? }
        optional { $($o:ident),* $(,)? }
    ) => {
        /// The library's functions: the required ones always there, the
        /// optional ones `None` when the library does not export them.
        #[allow(non_snake_case)]
        #[derive(Clone, Copy)]
        pub struct Functions {
            $(pub $r: fns::$r,)*
            $(pub $o: Option<fns::$o>,)*
        }

        impl Functions {
            /// What every library must export.
            pub const REQUIRED: &'static [&'static str] = &[$(stringify!($r)),*];
            /// What ukey uses when it is there.
            pub const OPTIONAL: &'static [&'static str] = &[$(stringify!($o)),*];

            /// Resolve every function with `lookup` (a name to its address,
            /// or NULL): the first required one missing is the error.
            ///
            /// # Safety
            /// Every non-NULL address `lookup` gives must be a function
            /// with the signature GM/T 0016-2012 gives that name, valid for
            /// as long as the table is used.
            #[allow(non_snake_case)]
            pub unsafe fn resolve(lookup: impl Fn(&str) -> *const c_void) -> Result<Self, &'static str> {
                $(
                    let p = lookup(stringify!($r));
                    if p.is_null() {
                        return Err(stringify!($r));
                    }
                    // SAFETY: non-NULL, and by the caller's promise a function
                    // of this type.
                    let $r = unsafe { std::mem::transmute::<*const c_void, fns::$r>(p) };
                )*
                $(
                    let p = lookup(stringify!($o));
                    let $o = if p.is_null() {
                        None
                    } else {
                        // SAFETY: as above: non-NULL, a function of this type.
                        Some(unsafe { std::mem::transmute::<*const c_void, fns::$o>(p) })
                    };
                )*
                Ok(Self { $($r,)* $($o,)* })
            }
        }
    };
}

functions! {
    required {
        SKF_EnumDev, SKF_ConnectDev, SKF_DisConnectDev, SKF_GetDevInfo,
        SKF_EnumApplication, SKF_OpenApplication, SKF_CloseApplication,
        SKF_GetPINInfo, SKF_VerifyPIN,
        SKF_EnumContainer, SKF_OpenContainer, SKF_CloseContainer, SKF_GetContainerType,
        SKF_ExportPublicKey, SKF_ExportCertificate, SKF_ECCSignData,
    }
    optional {
        SKF_WaitForDevEvent, SKF_CancelWaitForDevEvent, SKF_GetDevState,
        SKF_LockDev, SKF_UnlockDev,
        SKF_DevAuth, SKF_GenRandom,
        SKF_SetSymmKey, SKF_EncryptInit, SKF_Encrypt, SKF_CloseHandle,
        SKF_ChangePIN, SKF_UnblockPIN, SKF_ClearSecureState,
        SKF_CreateContainer, SKF_DeleteContainer,
        SKF_GenECCKeyPair, SKF_ImportECCKeyPair, SKF_ImportCertificate,
        SKF_DigestInit, SKF_Digest,
    }
}

/// What a library can do beyond the required functions; each needs the
/// functions [`Capability::functions`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Hot-plug events (`SKF_WaitForDevEvent`).
    WaitForEvent,
    /// Ending a wait from another thread (`SKF_CancelWaitForDevEvent`).
    CancelWait,
    /// `SKF_GetDevState`.
    DevState,
    /// `SKF_LockDev` / `SKF_UnlockDev` (exclusive use across processes).
    LockDev,
    /// `SKF_GenRandom`.
    Random,
    /// Device authentication (`SKF_GenRandom` + `SKF_DevAuth`).
    DevAuth,
    /// The token's own block cipher (`SKF_SetSymmKey`, `SKF_EncryptInit`,
    /// `SKF_Encrypt`, `SKF_CloseHandle`), for device authentication with an
    /// algorithm other than SM4 (SM1, SSF33: no public implementation).
    TokenCipher,
    ChangePin,
    UnblockPin,
    /// Forgetting the verified PINs (`SKF_ClearSecureState`).
    Logout,
    CreateContainer,
    DeleteContainer,
    /// SM2 key generation on the token (`SKF_GenECCKeyPair`).
    GenerateKey,
    /// Importing an enveloped SM2 pair (`SKF_ImportECCKeyPair`).
    ImportKey,
    ImportCertificate,
    /// SM3 on the token (`SKF_DigestInit`, `SKF_Digest`, `SKF_CloseHandle`).
    Digest,
}

impl Capability {
    pub const ALL: [Capability; 16] = [
        Capability::WaitForEvent,
        Capability::CancelWait,
        Capability::DevState,
        Capability::LockDev,
        Capability::Random,
        Capability::DevAuth,
        Capability::TokenCipher,
        Capability::ChangePin,
        Capability::UnblockPin,
        Capability::Logout,
        Capability::CreateContainer,
        Capability::DeleteContainer,
        Capability::GenerateKey,
        Capability::ImportKey,
        Capability::ImportCertificate,
        Capability::Digest,
    ];

    /// The functions it needs.
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            Capability::WaitForEvent => &["SKF_WaitForDevEvent"],
            Capability::CancelWait => &["SKF_CancelWaitForDevEvent"],
            Capability::DevState => &["SKF_GetDevState"],
            Capability::LockDev => &["SKF_LockDev", "SKF_UnlockDev"],
            Capability::Random => &["SKF_GenRandom"],
            Capability::DevAuth => &["SKF_GenRandom", "SKF_DevAuth"],
            Capability::TokenCipher => &[
                "SKF_SetSymmKey",
                "SKF_EncryptInit",
                "SKF_Encrypt",
                "SKF_CloseHandle",
            ],
            Capability::ChangePin => &["SKF_ChangePIN"],
            Capability::UnblockPin => &["SKF_UnblockPIN"],
            Capability::Logout => &["SKF_ClearSecureState"],
            Capability::CreateContainer => &["SKF_CreateContainer"],
            Capability::DeleteContainer => &["SKF_DeleteContainer"],
            Capability::GenerateKey => &["SKF_GenECCKeyPair"],
            Capability::ImportKey => &["SKF_ImportECCKeyPair"],
            Capability::ImportCertificate => &["SKF_ImportCertificate"],
            Capability::Digest => &["SKF_DigestInit", "SKF_Digest", "SKF_CloseHandle"],
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Capability::WaitForEvent => "device events",
            Capability::CancelWait => "cancelling a wait for events",
            Capability::DevState => "device state",
            Capability::LockDev => "device locking",
            Capability::Random => "random numbers",
            Capability::DevAuth => "device authentication",
            Capability::TokenCipher => "the token's block cipher",
            Capability::ChangePin => "PIN change",
            Capability::UnblockPin => "PIN unblock",
            Capability::Logout => "logout",
            Capability::CreateContainer => "container creation",
            Capability::DeleteContainer => "container deletion",
            Capability::GenerateKey => "SM2 key generation",
            Capability::ImportKey => "enveloped key import",
            Capability::ImportCertificate => "certificate import",
            Capability::Digest => "SM3 on the token",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of [`Capability`].
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(u32);

impl Capabilities {
    pub fn contains(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |&c| self.contains(c))
    }

    /// What is missing from [`Capability::ALL`].
    pub fn missing(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |&c| !self.contains(c))
    }
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Functions {
    /// The capabilities these functions give.
    pub fn capabilities(&self) -> Capabilities {
        let has = |name: &str| -> bool {
            match name {
                "SKF_WaitForDevEvent" => self.SKF_WaitForDevEvent.is_some(),
                "SKF_CancelWaitForDevEvent" => self.SKF_CancelWaitForDevEvent.is_some(),
                "SKF_GetDevState" => self.SKF_GetDevState.is_some(),
                "SKF_LockDev" => self.SKF_LockDev.is_some(),
                "SKF_UnlockDev" => self.SKF_UnlockDev.is_some(),
                "SKF_DevAuth" => self.SKF_DevAuth.is_some(),
                "SKF_GenRandom" => self.SKF_GenRandom.is_some(),
                "SKF_SetSymmKey" => self.SKF_SetSymmKey.is_some(),
                "SKF_EncryptInit" => self.SKF_EncryptInit.is_some(),
                "SKF_Encrypt" => self.SKF_Encrypt.is_some(),
                "SKF_CloseHandle" => self.SKF_CloseHandle.is_some(),
                "SKF_ChangePIN" => self.SKF_ChangePIN.is_some(),
                "SKF_UnblockPIN" => self.SKF_UnblockPIN.is_some(),
                "SKF_ClearSecureState" => self.SKF_ClearSecureState.is_some(),
                "SKF_CreateContainer" => self.SKF_CreateContainer.is_some(),
                "SKF_DeleteContainer" => self.SKF_DeleteContainer.is_some(),
                "SKF_GenECCKeyPair" => self.SKF_GenECCKeyPair.is_some(),
                "SKF_ImportECCKeyPair" => self.SKF_ImportECCKeyPair.is_some(),
                "SKF_ImportCertificate" => self.SKF_ImportCertificate.is_some(),
                "SKF_DigestInit" => self.SKF_DigestInit.is_some(),
                "SKF_Digest" => self.SKF_Digest.is_some(),
                _ => false,
            }
        };
        Capabilities(
            Capability::ALL
                .into_iter()
                .filter(|c| c.functions().iter().all(|f| has(f)))
                .fold(0, |bits, c| bits | c.bit()),
        )
    }
}

/// A device insertion or removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub name: Name,
    pub inserted: bool,
}

/// `SKF_GetDevState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevState {
    Absent,
    Present,
    Unknown,
}

/// A loaded vendor library.
///
/// Threading (what we assume of vendor code): calls on one device are
/// never concurrent (each device has a mutex, held for every call on the
/// device and its applications and containers); `SKF_EnumDev`,
/// `SKF_ConnectDev`, `SKF_DisConnectDev` and `SKF_GetDevState` take a
/// library-wide mutex (they touch the library's device list); calls on
/// different devices may run at the same time. `SKF_WaitForDevEvent`
/// blocks until an event: it has a mutex of its own (one waiter at a time)
/// and holds no other lock, and `SKF_CancelWaitForDevEvent` takes none, so
/// a waiting thread never blocks the others. Nothing else we call can block
/// without end: `SKF_LockDev` is always given a finite timeout.
pub struct Library {
    path: PathBuf,
    f: Functions,
    caps: Capabilities,
    devices_lock: Mutex<()>,
    wait_lock: Mutex<()>,
    /// Dropped last: the function pointers above point into it.
    _lib: Option<libloading::Library>,
}

pub(crate) fn lock(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    // A panic while holding it leaves no state to repair: the guarded data
    // lives in the library.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Library {
    /// Load a vendor library and resolve its functions: a library that
    /// fails to load or lacks a required function is one error.
    pub fn load(path: &Path) -> Result<Arc<Library>> {
        // SAFETY: loading runs the library's initialisers: trusting vendor
        // code is the point of this crate; the path comes from the
        // administrator's configuration.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| Error::Load {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let lookup = |name: &str| -> *const c_void {
            let mut sym = name.as_bytes().to_vec();
            sym.push(0);
            // SAFETY: we read the symbol's address only; its type is
            // asserted by `Functions::resolve`'s contract.
            unsafe { lib.get::<*const c_void>(&sym) }
                .map(|s| *s)
                .unwrap_or(std::ptr::null())
        };
        // SAFETY: symbols named after the standard's functions have the
        // standard's signatures (the premise of an SKF library); the
        // library stays loaded in `_lib` for as long as the table lives.
        let f =
            unsafe { Functions::resolve(lookup) }.map_err(|function| Error::MissingFunction {
                path: path.to_path_buf(),
                function,
            })?;
        Ok(Arc::new(Self::with(path.to_path_buf(), f, Some(lib))))
    }

    /// A library made of functions already resolved (tests: fake vtables).
    pub fn from_functions(label: &str, f: Functions) -> Arc<Library> {
        Arc::new(Self::with(PathBuf::from(label), f, None))
    }

    fn with(path: PathBuf, f: Functions, lib: Option<libloading::Library>) -> Self {
        Self {
            path,
            caps: f.capabilities(),
            f,
            devices_lock: Mutex::new(()),
            wait_lock: Mutex::new(()),
            _lib: lib,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    pub fn has(&self, c: Capability) -> bool {
        self.caps.contains(c)
    }

    pub(crate) fn functions(&self) -> &Functions {
        &self.f
    }

    pub(crate) fn require(&self, c: Capability) -> Result<()> {
        if self.has(c) {
            Ok(())
        } else {
            Err(Error::NotSupported(c.name()))
        }
    }

    pub(crate) fn devices_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.devices_lock)
    }

    /// The devices the library knows: present ones, or all (`SKF_EnumDev`).
    pub fn devices(&self, present_only: bool) -> Result<Vec<Name>> {
        let _g = self.devices_lock();
        let f = self.f.SKF_EnumDev;
        let bytes = raw::query("SKF_EnumDev", |p, n| {
            // SAFETY: `p` is NULL or a buffer of `*n` bytes, `n` a valid
            // ULONG out-parameter (raw::query's contract).
            unsafe { f(i32::from(present_only), p.cast(), n) }
        })?;
        raw::name_list("SKF_EnumDev", &bytes)
    }

    /// `SKF_GetDevState`.
    pub fn device_state(&self, name: &Name) -> Result<DevState> {
        self.require(Capability::DevState)?;
        let f = self
            .f
            .SKF_GetDevState
            .ok_or(Error::NotSupported("SKF_GetDevState"))?;
        let _g = self.devices_lock();
        let mut c = name.c();
        let mut st = OutU32::unset();
        // SAFETY: a NUL-terminated name and an 8-byte out-parameter.
        check("SKF_GetDevState", unsafe {
            f(c.as_mut_ptr().cast(), st.ptr())
        })?;
        Ok(match st.get() {
            DEV_ABSENT_STATE => DevState::Absent,
            DEV_PRESENT_STATE => DevState::Present,
            _ => DevState::Unknown,
        })
    }

    /// Wait for a device to come or go (`SKF_WaitForDevEvent`); `None`
    /// when [`Library::cancel_wait`] ended the wait. Blocks: call it on a
    /// thread of its own.
    pub fn wait_for_event(&self) -> Result<Option<DeviceEvent>> {
        const NAME_BUF: usize = 1024;
        let f = self
            .f
            .SKF_WaitForDevEvent
            .ok_or(Error::NotSupported(Capability::WaitForEvent.name()))?;
        let _g = lock(&self.wait_lock);
        let mut buf = vec![0u8; NAME_BUF + raw::SLACK];
        let mut len = OutU32::new(NAME_BUF as u32);
        let mut event = OutU32::unset();
        // SAFETY: a zeroed buffer of NAME_BUF (+ slack) bytes with its
        // length, and two 8-byte out-parameters.
        check("SKF_WaitForDevEvent", unsafe {
            f(buf.as_mut_ptr().cast(), len.ptr(), event.ptr())
        })?;
        let inserted = match event.get() {
            0 => return Ok(None),
            DEV_EVENT_INSERTED => true,
            DEV_EVENT_REMOVED => false,
            other => {
                return Err(Error::malformed(
                    "SKF_WaitForDevEvent",
                    format!("event {other:#x}"),
                ))
            }
        };
        let n = len.get() as usize;
        if n > NAME_BUF {
            return Err(Error::malformed(
                "SKF_WaitForDevEvent",
                format!("a name of {n} bytes in a buffer of {NAME_BUF}"),
            ));
        }
        // The length may or may not count the NUL; the NUL must be there.
        let field = &buf[..(n + 1).min(NAME_BUF)];
        let Some(end) = field.iter().position(|&b| b == 0) else {
            return Err(Error::malformed(
                "SKF_WaitForDevEvent",
                "a device name without its NUL",
            ));
        };
        let name = Name::new(&field[..end])
            .map_err(|_| Error::malformed("SKF_WaitForDevEvent", "an empty device name"))?;
        Ok(Some(DeviceEvent { name, inserted }))
    }

    /// End a [`Library::wait_for_event`] in progress (any thread).
    pub fn cancel_wait(&self) -> Result<()> {
        let f = self
            .f
            .SKF_CancelWaitForDevEvent
            .ok_or(Error::NotSupported(Capability::CancelWait.name()))?;
        // SAFETY: no arguments; the standard makes it callable while
        // another thread waits, so no lock is taken.
        check("SKF_CancelWaitForDevEvent", unsafe { f() })
    }
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("capabilities", &self.caps)
            .finish()
    }
}
