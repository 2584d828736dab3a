//! Devices, applications and containers: each handle closed when its last
//! user is gone (a container keeps its application open, an application
//! its device connected), every call serialised on the device's mutex.

use crate::crypto;
use crate::error::{check, Error, Result};
use crate::library::{lock, Capability, Library};
use crate::raw::{self, Name, OutU32, StructBuf};
use std::sync::{Arc, Mutex};
use ukey_skf_sys::*;
use zeroize::Zeroizing;

/// A vendor handle: an opaque value the library gave us, only ever passed
/// back to it under the device's mutex.
#[derive(Clone, Copy)]
struct Handle(HANDLE);
// SAFETY: the handle is an opaque token; the library is only called with it
// while the owning device's mutex is held, which serialises all use.
unsafe impl Send for Handle {}
// SAFETY: as above; shared references only copy the value under the mutex.
unsafe impl Sync for Handle {}

struct DevInner {
    lib: Arc<Library>,
    name: Name,
    h: Handle,
    /// Serialises every call on this device and what was opened on it.
    calls: Mutex<()>,
}

impl DevInner {
    /// Run `f` with the functions and the device handle, under the device's mutex.
    fn call<R>(&self, f: impl FnOnce(&crate::library::Functions, HANDLE) -> R) -> R {
        let _g = lock(&self.calls);
        f(self.lib.functions(), self.h.0)
    }
}

impl Drop for DevInner {
    fn drop(&mut self) {
        let _l = self.lib.devices_lock();
        let f = self.lib.functions().SKF_DisConnectDev;
        // SAFETY: the handle SKF_ConnectDev gave, disconnected once; its
        // applications and containers are closed (they held this Arc).
        let _ = self.call(|_, h| unsafe { f(h) });
    }
}

/// `ulPINType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKind {
    User,
    Admin,
}

impl PinKind {
    fn code(self) -> ULONG {
        match self {
            PinKind::User => USER_TYPE,
            PinKind::Admin => ADMIN_TYPE,
        }
    }
}

/// A PIN on its way to the library: NUL-terminated, zeroized on drop.
pub struct Pin(Zeroizing<Vec<u8>>);

impl Pin {
    /// A PIN: 1 to 64 bytes, no NUL (the device checks its own length rules).
    pub fn new(pin: &[u8]) -> Result<Self> {
        if pin.is_empty() || pin.len() > 64 || pin.contains(&0) {
            return Err(Error::Argument(
                "a PIN is 1 to 64 bytes without NUL".to_string(),
            ));
        }
        let mut v = Zeroizing::new(Vec::with_capacity(pin.len() + 1));
        v.extend_from_slice(pin);
        v.push(0);
        Ok(Self(v))
    }

    fn ptr(&mut self) -> LPSTR {
        self.0.as_mut_ptr().cast()
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// `SKF_GetPINInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinInfo {
    pub max_retries: u32,
    pub retries_left: u32,
    /// Still the factory PIN.
    pub default_pin: bool,
}

impl PinInfo {
    pub fn locked(&self) -> bool {
        self.retries_left == 0
    }
}

/// What `SKF_GetDevInfo` says, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub version: (u8, u8),
    pub manufacturer: String,
    pub issuer: String,
    pub label: String,
    pub serial: String,
    pub hw_version: (u8, u8),
    pub firmware_version: (u8, u8),
    pub alg_sym_cap: u32,
    pub alg_asym_cap: u32,
    pub alg_hash_cap: u32,
    pub dev_auth_alg_id: u32,
    pub total_space: u32,
    pub free_space: u32,
}

impl From<&DevInfo> for DeviceInfo {
    fn from(d: &DevInfo) -> Self {
        let v = |v: Version| (v.major, v.minor);
        Self {
            version: v(d.Version),
            manufacturer: raw::fixed_str(&{ d.Manufacturer }),
            issuer: raw::fixed_str(&{ d.Issuer }),
            label: raw::fixed_str(&{ d.Label }),
            serial: raw::fixed_str(&{ d.SerialNumber }),
            hw_version: v(d.HWVersion),
            firmware_version: v(d.FirmwareVersion),
            alg_sym_cap: d.AlgSymCap,
            alg_asym_cap: d.AlgAsymCap,
            alg_hash_cap: d.AlgHashCap,
            dev_auth_alg_id: d.DevAuthAlgId,
            total_space: d.TotalSpace,
            free_space: d.FreeSpace,
        }
    }
}

/// A connected device.
pub struct Device {
    inner: Arc<DevInner>,
}

impl Library {
    /// Connect to a device by name (`SKF_ConnectDev`).
    pub fn connect(self: &Arc<Self>, name: &Name) -> Result<Device> {
        let f = self.functions().SKF_ConnectDev;
        let mut c = name.c();
        let mut h: HANDLE = std::ptr::null_mut();
        {
            let _g = self.devices_lock();
            // SAFETY: a NUL-terminated name and a handle out-parameter.
            check("SKF_ConnectDev", unsafe {
                f(c.as_mut_ptr().cast(), &mut h)
            })?;
        }
        if h.is_null() {
            return Err(Error::malformed(
                "SKF_ConnectDev",
                "SAR_OK with a NULL handle",
            ));
        }
        Ok(Device {
            inner: Arc::new(DevInner {
                lib: self.clone(),
                name: name.clone(),
                h: Handle(h),
                calls: Mutex::new(()),
            }),
        })
    }
}

impl Device {
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.inner.lib
    }

    /// `SKF_GetDevInfo`.
    pub fn info(&self) -> Result<DeviceInfo> {
        self.inner.call(dev_info).map(|d| DeviceInfo::from(&d))
    }

    /// The applications on the device (`SKF_EnumApplication`).
    pub fn applications(&self) -> Result<Vec<Name>> {
        let bytes = self.inner.call(|f, h| {
            raw::query("SKF_EnumApplication", |p, n| {
                // SAFETY: raw::query's buffer contract; a live device handle.
                unsafe { (f.SKF_EnumApplication)(h, p.cast(), n) }
            })
        })?;
        raw::name_list("SKF_EnumApplication", &bytes)
    }

    /// Open an application (`SKF_OpenApplication`).
    pub fn open_application(&self, name: &Name) -> Result<Application> {
        let mut c = name.c();
        let mut ha: HANDLE = std::ptr::null_mut();
        self.inner.call(|f, h| {
            // SAFETY: a NUL-terminated name and a handle out-parameter.
            check("SKF_OpenApplication", unsafe {
                (f.SKF_OpenApplication)(h, c.as_mut_ptr().cast(), &mut ha)
            })
        })?;
        if ha.is_null() {
            return Err(Error::malformed(
                "SKF_OpenApplication",
                "SAR_OK with a NULL handle",
            ));
        }
        Ok(Application {
            inner: Arc::new(AppInner {
                dev: self.inner.clone(),
                name: name.clone(),
                h: Handle(ha),
            }),
        })
    }

    /// `len` random bytes from the device (`SKF_GenRandom`).
    pub fn random(&self, len: usize) -> Result<Vec<u8>> {
        self.inner.lib.require(Capability::Random)?;
        if len == 0 || len > 4096 {
            return Err(Error::Argument(format!("{len} random bytes")));
        }
        self.inner.call(|f, h| gen_random(f, h, len))
    }

    /// Device authentication as consumers do it (GmSSL's `SKF_OpenDevice`,
    /// vendor samples): 8 random bytes from the device, zero-padded to a
    /// block, encrypted in ECB with the authentication key by the
    /// algorithm `DEVINFO.DevAuthAlgId` names (SM4 here; SM1 or SSF33
    /// through the token's own cipher), then `SKF_DevAuth`. The random and
    /// the authentication happen under one hold of the device's mutex, so
    /// no other call can renew the challenge in between.
    pub fn authenticate(&self, key: &[u8; 16]) -> Result<()> {
        self.inner.lib.require(Capability::DevAuth)?;
        let caps = self.inner.lib.capabilities();
        self.inner.call(|f, h| {
            let alg = dev_info(f, h)?.DevAuthAlgId;
            let mut block = [0u8; 16];
            block[..8].copy_from_slice(&gen_random(f, h, 8)?);
            let mut cipher = match alg {
                SGD_SM4_ECB | SGD_SM4 => crypto::sm4_ecb_block(key, &block),
                SGD_SM1_ECB | SGD_SSF33_ECB if caps.contains(Capability::TokenCipher) => {
                    token_ecb_block(f, h, key, alg, &block)?
                }
                other => {
                    return Err(Error::malformed(
                        "SKF_GetDevInfo",
                        format!("device authentication with algorithm {other:#x}, which ukey cannot compute"),
                    ))
                }
            };
            let dev_auth = f.SKF_DevAuth.ok_or(Error::NotSupported("SKF_DevAuth"))?;
            // SAFETY: a 16-byte buffer and its length.
            check("SKF_DevAuth", unsafe { dev_auth(h, cipher.as_mut_ptr(), 16) })
        })
    }

    /// Lock the device for this connection (`SKF_LockDev`), waiting at
    /// most `timeout_ms` for another holder.
    pub fn lock(&self, timeout_ms: u32) -> Result<()> {
        self.inner.lib.require(Capability::LockDev)?;
        let timeout = timeout_ms.min(DEV_LOCK_FOREVER - 1);
        self.inner.call(|f, h| {
            let lock = f.SKF_LockDev.ok_or(Error::NotSupported("SKF_LockDev"))?;
            // SAFETY: a live device handle; the timeout is finite.
            check("SKF_LockDev", unsafe { lock(h, timeout) })
        })
    }

    /// `SKF_UnlockDev`.
    pub fn unlock(&self) -> Result<()> {
        self.inner.lib.require(Capability::LockDev)?;
        self.inner.call(|f, h| {
            let unlock = f
                .SKF_UnlockDev
                .ok_or(Error::NotSupported("SKF_UnlockDev"))?;
            // SAFETY: a live device handle.
            check("SKF_UnlockDev", unsafe { unlock(h) })
        })
    }
}

fn dev_info(f: &crate::library::Functions, h: HANDLE) -> Result<DevInfo> {
    let mut buf = StructBuf::<DevInfo>::new();
    // SAFETY: a zeroed DEVINFO with spare bytes after it.
    check("SKF_GetDevInfo", unsafe {
        (f.SKF_GetDevInfo)(h, buf.ptr())
    })?;
    Ok(buf.get())
}

fn gen_random(f: &crate::library::Functions, h: HANDLE, len: usize) -> Result<Vec<u8>> {
    let gen = f
        .SKF_GenRandom
        .ok_or(Error::NotSupported("SKF_GenRandom"))?;
    let mut buf = vec![0u8; len + raw::SLACK];
    // SAFETY: a buffer of at least `len` bytes.
    check("SKF_GenRandom", unsafe {
        gen(h, buf.as_mut_ptr(), len as ULONG)
    })?;
    buf.truncate(len);
    Ok(buf)
}

/// One ECB block through the token's own cipher (SM1/SSF33 device auth).
fn token_ecb_block(
    f: &crate::library::Functions,
    h: HANDLE,
    key: &[u8; 16],
    alg: ULONG,
    block: &[u8; 16],
) -> Result<[u8; 16]> {
    let (Some(set), Some(init), Some(enc), Some(close)) = (
        f.SKF_SetSymmKey,
        f.SKF_EncryptInit,
        f.SKF_Encrypt,
        f.SKF_CloseHandle,
    ) else {
        return Err(Error::NotSupported(Capability::TokenCipher.name()));
    };
    let mut k = Zeroizing::new(*key);
    let mut hk: HANDLE = std::ptr::null_mut();
    // SAFETY: a 16-byte key and a handle out-parameter.
    check("SKF_SetSymmKey", unsafe {
        set(h, k.as_mut_ptr(), alg, &mut hk)
    })?;
    if hk.is_null() {
        return Err(Error::malformed(
            "SKF_SetSymmKey",
            "SAR_OK with a NULL handle",
        ));
    }
    let result = (|| {
        let param = BlockCipherParam {
            IV: [0; MAX_IV_LEN],
            IVLen: 0,
            PaddingType: NO_PADDING,
            FeedBitLen: 0,
        };
        // SAFETY: the key handle just made; the parameter by value.
        check("SKF_EncryptInit", unsafe { init(hk, param) })?;
        let mut input = *block;
        let mut out = [0u8; 16 + raw::SLACK];
        let mut n = OutU32::new(16);
        // SAFETY: 16 bytes in, a 16-byte (+ slack) buffer out with its length.
        check("SKF_Encrypt", unsafe {
            enc(hk, input.as_mut_ptr(), 16, out.as_mut_ptr(), n.ptr())
        })?;
        if n.get() != 16 {
            return Err(Error::malformed(
                "SKF_Encrypt",
                format!("{} bytes for one block", n.get()),
            ));
        }
        let mut b = [0u8; 16];
        b.copy_from_slice(&out[..16]);
        Ok(b)
    })();
    // SAFETY: the key handle, closed once.
    let _ = unsafe { close(hk) };
    result
}

struct AppInner {
    dev: Arc<DevInner>,
    name: Name,
    h: Handle,
}

impl AppInner {
    fn call<R>(&self, f: impl FnOnce(&crate::library::Functions, HANDLE) -> R) -> R {
        let h = self.h.0;
        self.dev.call(|fns, _| f(fns, h))
    }
}

impl Drop for AppInner {
    fn drop(&mut self) {
        // SAFETY: the handle SKF_OpenApplication gave, closed once; its
        // containers are closed (they held this Arc).
        let _ = self.call(|f, h| unsafe { (f.SKF_CloseApplication)(h) });
    }
}

/// An open application.
pub struct Application {
    inner: Arc<AppInner>,
}

/// `SKF_GetContainerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerType {
    Empty,
    Rsa,
    Ecc,
    Other(u32),
}

/// Which of a container's two pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    Signing,
    Encryption,
}

impl KeyUse {
    fn flag(self) -> BOOL {
        match self {
            KeyUse::Signing => TRUE,
            KeyUse::Encryption => FALSE,
        }
    }
}

fn pin_result(function: &'static str, rv: ULONG, left: &OutU32) -> Result<()> {
    match rv {
        SAR_OK => Ok(()),
        SAR_PIN_INCORRECT => Err(Error::PinIncorrect {
            tries_left: left.written(),
        }),
        other => Err(Error::from_sar(function, other)),
    }
}

impl Application {
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    fn lib(&self) -> &Library {
        &self.inner.dev.lib
    }

    /// Retry counters and the default-PIN flag (`SKF_GetPINInfo`): spends
    /// no try.
    pub fn pin_info(&self, kind: PinKind) -> Result<PinInfo> {
        let (mut max, mut left, mut def) = (OutU32::unset(), OutU32::unset(), OutU32::new(0));
        self.inner.call(|f, h| {
            // SAFETY: three 8-byte out-parameters.
            check("SKF_GetPINInfo", unsafe {
                (f.SKF_GetPINInfo)(h, kind.code(), max.ptr(), left.ptr(), def.ptr().cast())
            })
        })?;
        let (Some(max), Some(left)) = (max.written(), left.written()) else {
            return Err(Error::malformed(
                "SKF_GetPINInfo",
                "the retry counters were not reported",
            ));
        };
        if left > max {
            return Err(Error::malformed(
                "SKF_GetPINInfo",
                format!("{left} tries left of {max}"),
            ));
        }
        Ok(PinInfo {
            max_retries: max,
            retries_left: left,
            default_pin: def.get() != 0,
        })
    }

    /// `SKF_VerifyPIN`: a wrong PIN is [`Error::PinIncorrect`] with the
    /// tries left.
    pub fn verify_pin(&self, kind: PinKind, pin: &mut Pin) -> Result<()> {
        let mut left = OutU32::unset();
        let rv = self.inner.call(|f, h| {
            // SAFETY: a NUL-terminated PIN and an 8-byte out-parameter.
            unsafe { (f.SKF_VerifyPIN)(h, kind.code(), pin.ptr(), left.ptr()) }
        });
        pin_result("SKF_VerifyPIN", rv, &left)
    }

    /// `SKF_ChangePIN`.
    pub fn change_pin(&self, kind: PinKind, old: &mut Pin, new: &mut Pin) -> Result<()> {
        self.lib().require(Capability::ChangePin)?;
        let mut left = OutU32::unset();
        let rv = self.inner.call(|f, h| {
            let change = f
                .SKF_ChangePIN
                .ok_or(Error::NotSupported("SKF_ChangePIN"))?;
            // SAFETY: two NUL-terminated PINs and an 8-byte out-parameter.
            Ok(unsafe { change(h, kind.code(), old.ptr(), new.ptr(), left.ptr()) })
        })?;
        pin_result("SKF_ChangePIN", rv, &left)
    }

    /// `SKF_UnblockPIN`: a new user PIN, with the admin PIN (whose tries a
    /// wrong one spends).
    pub fn unblock_pin(&self, admin: &mut Pin, new_user: &mut Pin) -> Result<()> {
        self.lib().require(Capability::UnblockPin)?;
        let mut left = OutU32::unset();
        let rv = self.inner.call(|f, h| {
            let unblock = f
                .SKF_UnblockPIN
                .ok_or(Error::NotSupported("SKF_UnblockPIN"))?;
            // SAFETY: two NUL-terminated PINs and an 8-byte out-parameter.
            Ok(unsafe { unblock(h, admin.ptr(), new_user.ptr(), left.ptr()) })
        })?;
        pin_result("SKF_UnblockPIN", rv, &left)
    }

    /// Forget the verified PINs (`SKF_ClearSecureState`).
    pub fn logout(&self) -> Result<()> {
        self.lib().require(Capability::Logout)?;
        self.inner.call(|f, h| {
            let clear = f
                .SKF_ClearSecureState
                .ok_or(Error::NotSupported("SKF_ClearSecureState"))?;
            // SAFETY: a live application handle.
            check("SKF_ClearSecureState", unsafe { clear(h) })
        })
    }

    /// The containers (`SKF_EnumContainer`).
    pub fn containers(&self) -> Result<Vec<Name>> {
        let bytes = self.inner.call(|f, h| {
            raw::query("SKF_EnumContainer", |p, n| {
                // SAFETY: raw::query's buffer contract; a live application handle.
                unsafe { (f.SKF_EnumContainer)(h, p.cast(), n) }
            })
        })?;
        raw::name_list("SKF_EnumContainer", &bytes)
    }

    fn container(&self, name: &Name, function: &'static str, h: HANDLE) -> Result<Container> {
        if h.is_null() {
            return Err(Error::malformed(function, "SAR_OK with a NULL handle"));
        }
        Ok(Container {
            app: self.inner.clone(),
            name: name.clone(),
            h: Handle(h),
        })
    }

    /// `SKF_OpenContainer`.
    pub fn open_container(&self, name: &Name) -> Result<Container> {
        let mut c = name.c();
        let mut hc: HANDLE = std::ptr::null_mut();
        self.inner.call(|f, h| {
            // SAFETY: a NUL-terminated name and a handle out-parameter.
            check("SKF_OpenContainer", unsafe {
                (f.SKF_OpenContainer)(h, c.as_mut_ptr().cast(), &mut hc)
            })
        })?;
        self.container(name, "SKF_OpenContainer", hc)
    }

    /// `SKF_CreateContainer` (the user PIN verified first).
    pub fn create_container(&self, name: &Name) -> Result<Container> {
        self.lib().require(Capability::CreateContainer)?;
        let mut c = name.c();
        let mut hc: HANDLE = std::ptr::null_mut();
        self.inner.call(|f, h| {
            let create = f
                .SKF_CreateContainer
                .ok_or(Error::NotSupported("SKF_CreateContainer"))?;
            // SAFETY: a NUL-terminated name and a handle out-parameter.
            check("SKF_CreateContainer", unsafe {
                create(h, c.as_mut_ptr().cast(), &mut hc)
            })
        })?;
        self.container(name, "SKF_CreateContainer", hc)
    }

    /// A new container with a new SM2 signing pair made on the device; if
    /// the key generation fails, the container just made (empty) is
    /// deleted again.
    pub fn generate_in_new_container(&self, name: &Name) -> Result<(Container, ::sm2::PublicKey)> {
        self.lib().require(Capability::GenerateKey)?;
        let c = self.create_container(name)?;
        match c.generate_signing_key() {
            Ok(pk) => Ok((c, pk)),
            Err(e) => {
                drop(c);
                if self.lib().has(Capability::DeleteContainer) {
                    let _ = self.delete_container(name);
                }
                Err(e)
            }
        }
    }

    /// `SKF_DeleteContainer`: the container, its keys and certificates.
    pub fn delete_container(&self, name: &Name) -> Result<()> {
        self.lib().require(Capability::DeleteContainer)?;
        let mut c = name.c();
        self.inner.call(|f, h| {
            let delete = f
                .SKF_DeleteContainer
                .ok_or(Error::NotSupported("SKF_DeleteContainer"))?;
            // SAFETY: a NUL-terminated name.
            check("SKF_DeleteContainer", unsafe {
                delete(h, c.as_mut_ptr().cast())
            })
        })
    }
}

/// An open container.
pub struct Container {
    app: Arc<AppInner>,
    name: Name,
    h: Handle,
}

impl Drop for Container {
    fn drop(&mut self) {
        let hc = self.h.0;
        // SAFETY: the handle SKF_OpenContainer/SKF_CreateContainer gave,
        // closed once.
        let _ = self.app.call(|f, _| unsafe { (f.SKF_CloseContainer)(hc) });
    }
}

impl Container {
    pub fn name(&self) -> &Name {
        &self.name
    }

    fn call<R>(&self, f: impl FnOnce(&crate::library::Functions, HANDLE) -> R) -> R {
        let hc = self.h.0;
        self.app.call(|fns, _| f(fns, hc))
    }

    fn lib(&self) -> &Library {
        &self.app.dev.lib
    }

    /// `SKF_GetContainerType`.
    pub fn kind(&self) -> Result<ContainerType> {
        let mut t = OutU32::unset();
        self.call(|f, h| {
            // SAFETY: an 8-byte out-parameter.
            check("SKF_GetContainerType", unsafe {
                (f.SKF_GetContainerType)(h, t.ptr())
            })
        })?;
        Ok(match t.get() {
            CONTAINER_TYPE_EMPTY => ContainerType::Empty,
            CONTAINER_TYPE_RSA => ContainerType::Rsa,
            CONTAINER_TYPE_ECC => ContainerType::Ecc,
            other => ContainerType::Other(other),
        })
    }

    /// The SM2 public key of one pair (`SKF_ExportPublicKey`), `None` when
    /// the container has no such key.
    pub fn public_key(&self, usage: KeyUse) -> Result<Option<::sm2::PublicKey>> {
        let bytes = self.call(|f, h| {
            raw::query("SKF_ExportPublicKey", |p, n| {
                // SAFETY: raw::query's buffer contract; a live container handle.
                unsafe { (f.SKF_ExportPublicKey)(h, usage.flag(), p, n) }
            })
        });
        let bytes = match bytes {
            Ok(b) if b.is_empty() => return Ok(None),
            Ok(b) => b,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let blob: EccPublicKeyBlob = raw::from_bytes("SKF_ExportPublicKey", &bytes)?;
        crypto::point_from_blob("SKF_ExportPublicKey", &blob).map(Some)
    }

    /// The certificate of one pair (`SKF_ExportCertificate`), `None` when
    /// there is none. Bytes after the DER element (padding some libraries
    /// add) are dropped; a truncated element is malformed.
    pub fn certificate(&self, usage: KeyUse) -> Result<Option<Vec<u8>>> {
        let bytes = self.call(|f, h| {
            raw::query("SKF_ExportCertificate", |p, n| {
                // SAFETY: raw::query's buffer contract; a live container handle.
                unsafe { (f.SKF_ExportCertificate)(h, usage.flag(), p, n) }
            })
        });
        let mut der = match bytes {
            Ok(b) if b.is_empty() => return Ok(None),
            Ok(b) => b,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match raw::der_len(&der) {
            Some(n) if der[0] == 0x30 && n <= der.len() => {
                der.truncate(n);
                Ok(Some(der))
            }
            _ => Err(Error::malformed(
                "SKF_ExportCertificate",
                format!("{} bytes that are not one DER certificate", der.len()),
            )),
        }
    }

    /// Sign e = SM3(Z‖M) (computed by the caller, see
    /// [`crypto::sm2_e`]) with the signing key (`SKF_ECCSignData`): r‖s.
    pub fn sign(&self, e: &[u8; 32]) -> Result<[u8; 64]> {
        let mut digest = *e;
        let mut sig = StructBuf::<EccSignatureBlob>::new();
        self.call(|f, h| {
            // SAFETY: a 32-byte digest and a zeroed signature blob with spare bytes.
            check("SKF_ECCSignData", unsafe {
                (f.SKF_ECCSignData)(h, digest.as_mut_ptr(), 32, sig.ptr())
            })
        })?;
        crypto::signature_from_blob("SKF_ECCSignData", &sig.get())
    }

    /// A new SM2 signing pair made on the device (`SKF_GenECCKeyPair`),
    /// replacing the container's signing key.
    pub fn generate_signing_key(&self) -> Result<::sm2::PublicKey> {
        self.lib().require(Capability::GenerateKey)?;
        let mut blob = StructBuf::<EccPublicKeyBlob>::new();
        self.call(|f, h| {
            let gen = f
                .SKF_GenECCKeyPair
                .ok_or(Error::NotSupported("SKF_GenECCKeyPair"))?;
            // SAFETY: a zeroed public-key blob with spare bytes.
            check("SKF_GenECCKeyPair", unsafe {
                gen(h, SGD_SM2_1, blob.ptr())
            })
        })?;
        crypto::point_from_blob("SKF_GenECCKeyPair", &blob.get())
    }

    /// Write a certificate for one pair (`SKF_ImportCertificate`). The
    /// caller checks that it certifies the container's key.
    pub fn import_certificate(&self, usage: KeyUse, der: &[u8]) -> Result<()> {
        self.lib().require(Capability::ImportCertificate)?;
        if raw::der_len(der) != Some(der.len()) || der.first() != Some(&0x30) {
            return Err(Error::Argument("not one DER certificate".to_string()));
        }
        let len = ULONG::try_from(der.len())
            .ok()
            .filter(|&n| n as usize <= raw::MAX_ANSWER)
            .ok_or_else(|| Error::Argument("certificate too large".to_string()))?;
        let mut buf = der.to_vec();
        self.call(|f, h| {
            let import = f
                .SKF_ImportCertificate
                .ok_or(Error::NotSupported("SKF_ImportCertificate"))?;
            // SAFETY: `len` bytes at `buf`.
            check("SKF_ImportCertificate", unsafe {
                import(h, usage.flag(), buf.as_mut_ptr(), len)
            })
        })
    }

    /// Import an encryption pair delivered as an `ENVELOPEDKEYBLOB`
    /// (`SKF_ImportECCKeyPair`): the blob as the CA sent it, its
    /// `CipherLen` consistent with its length.
    pub fn import_enveloped_key(&self, blob: &[u8]) -> Result<()> {
        self.lib().require(Capability::ImportKey)?;
        let header = ENVELOPED_CIPHER_OFFSET + ECC_CIPHER_BLOB_HEADER;
        let ok = blob.len() >= std::mem::size_of::<EnvelopedKeyBlob>() && blob.len() <= 4096 && {
            let at = ENVELOPED_CIPHER_OFFSET + ECC_CIPHER_BLOB_HEADER - 4;
            let n = u32::from_le_bytes([blob[at], blob[at + 1], blob[at + 2], blob[at + 3]]);
            header + n as usize <= blob.len()
        };
        if !ok {
            return Err(Error::Argument(format!(
                "{} bytes are not an ENVELOPEDKEYBLOB",
                blob.len()
            )));
        }
        let mut buf = Zeroizing::new(blob.to_vec());
        buf.resize(blob.len() + raw::SLACK, 0);
        self.call(|f, h| {
            let import = f
                .SKF_ImportECCKeyPair
                .ok_or(Error::NotSupported("SKF_ImportECCKeyPair"))?;
            // SAFETY: a complete ENVELOPEDKEYBLOB (length checked above).
            check("SKF_ImportECCKeyPair", unsafe {
                import(h, buf.as_mut_ptr().cast())
            })
        })
    }
}
