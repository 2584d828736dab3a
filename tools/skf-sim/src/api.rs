//! The exported `SKF_*` functions (GM/T 0016-2012 §7). Each is one shim
//! (`skf_export!`) around a body that works on the [`Registry`] and turns
//! caller pointers into values only through [`crate::ptr`].
//!
//! Who may do what (the standard's 权限要求, and what real keys enforce):
//! * device authentication (`SKF_DevAuth`): `SKF_CreateApplication`,
//!   `SKF_DeleteApplication`, `SKF_ChangeDevAuthKey`;
//! * the user PIN of the application: `SKF_CreateContainer`,
//!   `SKF_DeleteContainer`, `SKF_GenECCKeyPair`, `SKF_ImportECCKeyPair`,
//!   `SKF_ECCSignData`, `SKF_ImportCertificate`, `SKF_ImportSessionKey`;
//! * files: the rights given at `SKF_CreateFile` (read, write; delete needs
//!   the write right) and the application's create-file right;
//! * nothing: listing, `SKF_ExportPublicKey`, `SKF_ExportCertificate`,
//!   `SKF_ECCExportSessionKey` (it uses a public key), verification,
//!   hashing, random numbers, session-key encryption.
//!
//! A missing authentication is `SAR_USER_NOT_LOGGED_IN`.

#![allow(non_snake_case)] // the standard's parameter names

use crate::crypto::sm4mode::{self, Mode, ModeError, Stream};
use crate::crypto::{CryptoError, PublicPoint, Sm2Key};
use crate::ptr::{self, handle, to_handle};
use crate::registry::{self, Device, HashState, Kind, MacState, Obj, Registry, SymKey, WAKE};
use crate::state::{Application, Container, DeviceState, FileEntry, Pin, Secret, TOTAL_SPACE};
use crate::Sar;
use core::ffi::c_char;
use sm3::Digest;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use ukey_skf_sys::*;
use zeroize::Zeroizing;

/// DEVINFO.MaxECCBufferSize: longest SM2 plain text.
pub const MAX_ECC_BUFFER: usize = 256;
/// DEVINFO.MaxBufferSize: longest input of one symmetric call.
pub const MAX_BUFFER: usize = 4096;
pub const PIN_MIN: usize = 6;
pub const PIN_MAX: usize = 16;
pub const MAX_APPS: usize = 8;
pub const MAX_CONTAINERS: usize = 8;
pub const MAX_CERT: usize = 8192;
const APP_NAME_MAX: usize = 32;
const FILE_NAME_MAX: usize = MAX_FILE_NAME_SIZE - 1;
const CONTAINER_NAME_MAX: usize = MAX_CONTAINER_NAME_SIZE - 1;
const LABEL_MAX: usize = 31;

macro_rules! skf_export {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block )*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Pointers as GM/T 0016 describes them for this function: NULL or
        /// valid for the lengths given (output buffers for `*pul...Len` bytes).
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> ULONG {
            crate::guard(stringify!($name), || -> Result<(), Sar> {
                // SAFETY: every pointer goes through `crate::ptr`, whose
                // contracts are the standard's (see this function's Safety).
                #[allow(unused_unsafe)]
                unsafe { $body }
            })
        }
        const _: ukey_skf_sys::fns::$name = $name;
    )*};
}

// ---- helpers ---------------------------------------------------------------

fn name_list<'a>(names: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut v = Vec::new();
    for n in names {
        v.extend_from_slice(n.as_bytes());
        v.push(0);
    }
    if v.is_empty() {
        v.push(0);
    }
    v.push(0);
    v
}

fn name_str(b: &[u8], max: usize, err: Sar) -> Result<String, Sar> {
    if b.is_empty() || b.len() > max {
        return Err(err);
    }
    String::from_utf8(b.to_vec()).map_err(|_| err)
}

fn pin_value(b: &[u8]) -> Result<Zeroizing<Vec<u8>>, Sar> {
    if !(PIN_MIN..=PIN_MAX).contains(&b.len()) {
        return Err(SAR_PIN_LEN_RANGE);
    }
    Ok(Zeroizing::new(b.to_vec()))
}

fn blob_of(p: &PublicPoint) -> EccPublicKeyBlob {
    let (x, y) = p.xy();
    EccPublicKeyBlob {
        BitLen: 256,
        XCoordinate: ptr::field64(&x),
        YCoordinate: ptr::field64(&y),
    }
}

fn point_of(b: &EccPublicKeyBlob) -> Result<PublicPoint, Sar> {
    if b.BitLen != 256 {
        return Err(SAR_INVALIDPARAMERR);
    }
    let x = ptr::right32(&b.XCoordinate)?;
    let y = ptr::right32(&b.YCoordinate)?;
    PublicPoint::from_xy(&x, &y).map_err(|_| SAR_INVALIDPARAMERR)
}

fn sig_blob(rs: &[u8; 64]) -> EccSignatureBlob {
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&rs[..32]);
    s.copy_from_slice(&rs[32..]);
    EccSignatureBlob {
        r: ptr::field64(&r),
        s: ptr::field64(&s),
    }
}

fn rs_of(b: &EccSignatureBlob) -> Result<[u8; 64], Sar> {
    let mut rs = [0u8; 64];
    rs[..32].copy_from_slice(&ptr::right32(&b.r)?);
    rs[32..].copy_from_slice(&ptr::right32(&b.s)?);
    Ok(rs)
}

fn e32(data: &[u8]) -> Result<[u8; 32], Sar> {
    data.try_into().map_err(|_| SAR_INDATALENERR)
}

fn key_of(secret: &Option<Secret>) -> Result<Sm2Key, Sar> {
    let s = secret.as_ref().ok_or(SAR_KEYNOTFOUNTERR)?;
    Sm2Key::from_bytes(&s.0).map_err(|_| SAR_KEYNOTFOUNTERR)
}

fn crypto_sar(e: CryptoError) -> Sar {
    match e {
        CryptoError::BadInput => SAR_INDATAERR,
        CryptoError::Mismatch => SAR_HASHNOTEQUALERR,
    }
}

/// A device handle: its index.
fn dev_of(r: &mut Registry, h: HANDLE) -> Result<usize, Sar> {
    let (obj, _) = r.live(handle(h))?;
    match obj.kind {
        Kind::Dev => Ok(obj.dev),
        _ => Err(SAR_INVALIDHANDLEERR),
    }
}

/// An application handle: (device index, parent device handle, application name).
fn app_of(r: &mut Registry, h: HANDLE) -> Result<(usize, usize, String), Sar> {
    let (obj, dev) = r.live(handle(h))?;
    let Kind::App { app } = &obj.kind else {
        return Err(SAR_INVALIDHANDLEERR);
    };
    if !dev.state()?.applications.contains_key(app) {
        return Err(SAR_APPLICATION_NOT_EXISTS);
    }
    Ok((obj.dev, obj.parent, app.clone()))
}

/// A container handle: (device index, parent, application, container).
fn container_of(r: &mut Registry, h: HANDLE) -> Result<(usize, usize, String, String), Sar> {
    let (obj, dev) = r.live(handle(h))?;
    let Kind::Container { app, name } = &obj.kind else {
        return Err(SAR_INVALIDHANDLEERR);
    };
    let exists = dev
        .state()?
        .applications
        .get(app)
        .is_some_and(|a| a.containers.contains_key(name));
    if !exists {
        return Err(SAR_INVALIDHANDLEERR);
    }
    Ok((obj.dev, obj.parent, app.clone(), name.clone()))
}

fn rights(dev: &Device, app: &str) -> u32 {
    dev.vol.rights.get(app).copied().unwrap_or(0)
}

fn allowed(have: u32, need: u32) -> bool {
    need == SECURE_ANYONE_ACCOUNT || have & need != 0
}

fn need_user(dev: &Device, app: &str) -> Result<(), Sar> {
    if rights(dev, app) & SECURE_USER_ACCOUNT != 0 {
        Ok(())
    } else {
        Err(SAR_USER_NOT_LOGGED_IN)
    }
}

fn need_dev_auth(dev: &Device) -> Result<(), Sar> {
    if dev.vol.dev_authenticated {
        Ok(())
    } else {
        Err(SAR_USER_NOT_LOGGED_IN)
    }
}

/// Change the device's state and save it (all or nothing), under the
/// state file's lock and from its latest content.
fn update<R>(
    dev: &mut Device,
    f: impl FnOnce(&mut DeviceState) -> Result<R, Sar>,
) -> Result<R, Sar> {
    let _lock = dev.lock_file()?;
    let mut s = dev.state()?.clone();
    let r = f(&mut s)?;
    dev.commit(s)?;
    Ok(r)
}

fn app_mut<'a>(s: &'a mut DeviceState, app: &str) -> Result<&'a mut Application, Sar> {
    s.applications
        .get_mut(app)
        .ok_or(SAR_APPLICATION_NOT_EXISTS)
}

fn container_mut<'a>(
    s: &'a mut DeviceState,
    app: &str,
    name: &str,
) -> Result<&'a mut Container, Sar> {
    app_mut(s, app)?
        .containers
        .get_mut(name)
        .ok_or(SAR_INVALIDHANDLEERR)
}

fn container_ref(dev: &mut Device, app: &str, name: &str) -> Result<Container, Sar> {
    dev.state()?
        .applications
        .get(app)
        .and_then(|a| a.containers.get(name))
        .cloned()
        .ok_or(SAR_INVALIDHANDLEERR)
}

fn pin_type(t: ULONG) -> Result<u32, Sar> {
    match t {
        ADMIN_TYPE => Ok(SECURE_ADM_ACCOUNT),
        USER_TYPE => Ok(SECURE_USER_ACCOUNT),
        _ => Err(SAR_USER_TYPE_INVALID),
    }
}

fn pin_mut(a: &mut Application, acct: u32) -> &mut Pin {
    if acct == SECURE_ADM_ACCOUNT {
        &mut a.admin_pin
    } else {
        &mut a.user_pin
    }
}

/// Check a PIN as a card does: the try is spent (and saved) before the
/// comparison and given back on success. Returns the tries left.
fn check_pin(dev: &mut Device, app: &str, acct: u32, given: &[u8]) -> Result<u32, (Sar, u32)> {
    // Spend the try first (saved), as a card does against tearing.
    let (value, left) = update(dev, |s| {
        let p = pin_mut(app_mut(s, app)?, acct);
        if p.remaining == 0 {
            return Err(SAR_PIN_LOCKED);
        }
        p.remaining -= 1;
        Ok((p.value.clone(), p.remaining))
    })
    .map_err(|e| (e, 0))?;
    let right = given.len() == value.0.len() && bool::from(given.ct_eq(&value.0));
    if let Some(r) = dev.vol.rights.get_mut(app) {
        *r &= !acct;
    }
    if !right {
        let code = if left == 0 {
            SAR_PIN_LOCKED
        } else {
            SAR_PIN_INCORRECT
        };
        return Err((code, left));
    }
    update(dev, |s| {
        let p = pin_mut(app_mut(s, app)?, acct);
        p.remaining = p.max_retry;
        Ok(p.max_retry)
    })
    .map_err(|e| (e, left))
}

fn sym_alg(alg: ULONG) -> Result<(), Sar> {
    match alg {
        SGD_SM4_ECB | SGD_SM4_CBC | SGD_SM4_MAC => Ok(()),
        _ => Err(SAR_NOTSUPPORTYETERR),
    }
}

fn new_key(r: &mut Registry, dev: usize, parent: usize, key: &[u8; 16], alg: ULONG) -> usize {
    let insertion = r.devices[dev].insertion;
    r.add(Obj {
        dev,
        insertion,
        parent,
        kind: Kind::Key(SymKey {
            key: Zeroizing::new(*key),
            alg,
            op: None,
        }),
    })
}

fn random16() -> Zeroizing<[u8; 16]> {
    let mut k = Zeroizing::new([0u8; 16]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k[..]);
    k
}

fn mode_sar(e: ModeError) -> Sar {
    match e {
        ModeError::Length => SAR_INDATALENERR,
        ModeError::Padding => SAR_DECRYPTPADERR,
    }
}

fn cipher_init(r: &mut Registry, h: HANDLE, p: BlockCipherParam, encrypt: bool) -> Result<(), Sar> {
    let (obj, _) = r.live(handle(h))?;
    let Kind::Key(k) = &mut obj.kind else {
        return Err(SAR_INVALIDHANDLEERR);
    };
    let pad = match p.PaddingType {
        NO_PADDING => false,
        PKCS5_PADDING => true,
        _ => return Err(SAR_INVALIDPARAMERR),
    };
    let (mode, iv) = match k.alg {
        SGD_SM4_ECB => (Mode::Ecb, [0u8; 16]),
        SGD_SM4_CBC => {
            if p.IVLen != 16 {
                return Err(SAR_INVALIDPARAMERR);
            }
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&p.IV[..16]);
            (Mode::Cbc, iv)
        }
        _ => return Err(SAR_KEYUSAGEERR),
    };
    k.op = Some(Stream::new(&k.key, mode, encrypt, pad, iv));
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Single-part: update and final together, then the operation ends.
    Whole,
    Update,
    Final,
}

/// Encrypt/Decrypt(+Update/Final) with the length-query convention: a
/// query or a short buffer leaves the operation as it was.
unsafe fn cipher_step(
    r: &mut Registry,
    h: HANDLE,
    encrypt: bool,
    step: Step,
    input: &[u8],
    out: *mut u8,
    out_len: *mut ULONG,
) -> Result<(), Sar> {
    if input.len() > MAX_BUFFER {
        return Err(SAR_INDATALENERR);
    }
    let (obj, _) = r.live(handle(h))?;
    let Kind::Key(k) = &mut obj.kind else {
        return Err(SAR_INVALIDHANDLEERR);
    };
    let Some(op) = k.op.as_mut().filter(|op| op_is(op, encrypt)) else {
        return Err(SAR_NOTINITIALIZEERR);
    };
    let needed = match step {
        Step::Whole => op.update_len(input.len()) + op.final_len_after(input.len()),
        Step::Update => op.update_len(input.len()),
        Step::Final => op.final_len(),
    };
    // SAFETY: the caller's out pointers, per the standard.
    if !unsafe { ptr::room(out, out_len, needed) }? {
        return Ok(());
    }
    let result = match step {
        Step::Whole => {
            let mut v = op.update(input);
            op.finish().map(|f| {
                v.extend_from_slice(&f);
                v
            })
        }
        Step::Update => Ok(op.update(input)),
        Step::Final => op.finish(),
    };
    if step != Step::Update {
        k.op = None;
    }
    let data = result.map_err(|e| {
        k.op = None;
        mode_sar(e)
    })?;
    // SAFETY: `room` checked the buffer holds `needed >= data.len()` bytes.
    unsafe { ptr::put_bytes(out, out_len, &data) };
    Ok(())
}

fn op_is(op: &Stream, encrypt: bool) -> bool {
    op.is_encrypt() == encrypt
}

fn digest_of(r: &mut Registry, h: HANDLE) -> Result<&mut HashState, Sar> {
    let (obj, _) = r.live(handle(h))?;
    match &mut obj.kind {
        Kind::Hash(hs) => Ok(hs),
        _ => Err(SAR_INVALIDHANDLEERR),
    }
}

fn mac_of(r: &mut Registry, h: HANDLE) -> Result<&mut MacState, Sar> {
    let (obj, _) = r.live(handle(h))?;
    match &mut obj.kind {
        Kind::Mac(m) => Ok(m),
        _ => Err(SAR_INVALIDHANDLEERR),
    }
}

fn mac_feed(m: &mut MacState, data: &[u8]) -> Result<(), Sar> {
    if data.len() > MAX_BUFFER {
        return Err(SAR_INDATALENERR);
    }
    let out = m.stream.update(data);
    if out.len() >= 16 {
        m.last.copy_from_slice(&out[out.len() - 16..]);
    }
    Ok(())
}

fn mac_finish(m: &mut MacState) -> Result<[u8; 16], Sar> {
    let out = m.stream.finish().map_err(|e| match e {
        ModeError::Length => SAR_INDATALENERR,
        ModeError::Padding => SAR_MACLENERR,
    })?;
    if out.len() >= 16 {
        m.last.copy_from_slice(&out[out.len() - 16..]);
    }
    Ok(m.last)
}

/// Decode the envelope's private key: the standard encrypts the 64-byte
/// `PrivateKey` field of an ECCPRIVATEKEYBLOB (32 zero bytes, then d) with
/// SM4-ECB; some issuers encrypt only the 32 bytes of d and place them in
/// either half. Whichever decoding matches `PubKey` is the key.
fn envelope_private_key(
    sym: &[u8; 16],
    enc: &[u8; 64],
    pubkey: &PublicPoint,
) -> Result<Sm2Key, Sar> {
    let full = sm4mode::ecb_decrypt(sym, enc).map_err(mode_sar)?;
    let mut candidates: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    if full[..32].iter().all(|&b| b == 0) {
        candidates.push(Zeroizing::new(full[32..].to_vec()));
    }
    for half in [&enc[..32], &enc[32..]] {
        if let Ok(d) = sm4mode::ecb_decrypt(sym, half) {
            candidates.push(d);
        }
    }
    for d in candidates {
        if let Ok(k) = Sm2Key::from_bytes(&d) {
            if k.public() == *pubkey {
                return Ok(k);
            }
        }
    }
    Err(SAR_INDATAERR)
}

// ---- device management (§7.1) -------------------------------------------

skf_export! {
    /// §7.1.2: block until a listed device appears or disappears (polled
    /// every 50 ms in the caller's thread: the library runs no thread of
    /// its own). `SKF_CancelWaitForDevEvent` ends the wait with `SAR_OK`,
    /// event 0 and an empty name. A name buffer too short for the device's
    /// name is `SAR_BUFFER_TOO_SMALL` with the size, and the event stays
    /// to be reported.
    fn SKF_WaitForDevEvent(szDevName: LPSTR, pulDevNameLen: *mut ULONG, pulEvent: *mut ULONG) {
        // No size query here: the name of an event must be delivered with it.
        ptr::read(pulDevNameLen)?;
        if pulEvent.is_null() || szDevName.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let mut g = registry::lock();
        let start_gen = g.as_ref().map_or(0, |r| r.cancel_gen);
        loop {
            let Some(r) = g.as_mut() else {
                return Err(SAR_UNKNOWNERR);
            };
            if r.cancel_gen != start_gen {
                ptr::write(pulEvent, 0)?;
                return ptr::out_bytes(szDevName.cast(), pulDevNameLen, b"\0");
            }
            let mut found = None;
            for i in 0..r.devices.len() {
                let now = r.devices[i].refresh();
                if now != r.reported[i] {
                    found = Some((i, now));
                    break;
                }
            }
            if let Some((i, now)) = found {
                let mut name = r.devices[i].name.clone().into_bytes();
                name.push(0);
                ptr::out_bytes(szDevName.cast(), pulDevNameLen, &name)?;
                r.reported[i] = now;
                ptr::write(pulEvent, if now { DEV_EVENT_INSERTED } else { DEV_EVENT_REMOVED })?;
                return Ok(());
            }
            g = WAKE
                .wait_timeout(g, Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// §7.1.3: end every `SKF_WaitForDevEvent` in progress.
    fn SKF_CancelWaitForDevEvent() {
        registry::with(|r| {
            r.cancel_gen += 1;
            Ok(())
        })?;
        WAKE.notify_all();
        Ok(())
    }

    /// §7.1.4: the devices (present ones, or all that are listed), each
    /// name NUL-terminated, the list ending in a second NUL.
    fn SKF_EnumDev(bPresent: BOOL, szNameList: LPSTR, pulSize: *mut ULONG) {
        let list = registry::with(|r| {
            let names: Vec<String> = r
                .devices
                .iter_mut()
                .filter_map(|d| (bPresent == 0 || d.refresh()).then(|| d.name.clone()))
                .collect();
            Ok(name_list(names.iter().map(String::as_str)))
        })?;
        ptr::out_bytes(szNameList.cast(), pulSize, &list)
    }

    /// §7.1.5
    fn SKF_ConnectDev(szName: LPSTR, phDev: *mut DEVHANDLE) {
        let name = ptr::cstr(szName)?;
        if phDev.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let h = registry::with(|r| {
            let i = r.device_by_name(name)?;
            let d = &mut r.devices[i];
            if !d.refresh() {
                return Err(SAR_DEVICE_REMOVED);
            }
            d.state()?;
            let insertion = d.insertion;
            Ok(r.add(Obj { dev: i, insertion, parent: 0, kind: Kind::Dev }))
        })?;
        ptr::write(phDev, to_handle(h))
    }

    /// §7.1.6: also closes what was opened through the handle and releases
    /// its `SKF_LockDev`; the last connection drops the security state.
    fn SKF_DisConnectDev(hDev: DEVHANDLE) {
        registry::with(|r| match r.objects.get(&handle(hDev)) {
            Some(Obj { kind: Kind::Dev, .. }) => {
                r.close(handle(hDev));
                Ok(())
            }
            _ => Err(SAR_INVALIDHANDLEERR),
        })?;
        WAKE.notify_all();
        Ok(())
    }

    /// §7.1.7: `DEV_PRESENT_STATE` or `DEV_ABSENT_STATE` (unknown names are absent).
    fn SKF_GetDevState(szDevName: LPSTR, pulDevState: *mut ULONG) {
        let name = ptr::cstr(szDevName)?;
        let present = registry::with(|r| match r.device_by_name(name) {
            Ok(i) => Ok(r.devices[i].refresh()),
            Err(_) => Ok(false),
        })?;
        ptr::write(pulDevState, if present { DEV_PRESENT_STATE } else { DEV_ABSENT_STATE })
    }

    /// §7.1.8: a label of at most 31 bytes.
    fn SKF_SetLabel(hDev: DEVHANDLE, szLabel: LPSTR) {
        let label = name_str(ptr::cstr(szLabel)?, LABEL_MAX, SAR_NAMELENERR)?;
        registry::with(|r| {
            let i = dev_of(r, hDev)?;
            update(&mut r.devices[i], |s| {
                s.label = label;
                Ok(())
            })
        })
    }

    /// §7.1.9
    fn SKF_GetDevInfo(hDev: DEVHANDLE, pDevInfo: *mut DevInfo) {
        if pDevInfo.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let info = registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let s = r.devices[i].state()?;
            let mut info = DevInfo {
                Version: Version { major: 1, minor: 0 },
                Manufacturer: [0; 64],
                Issuer: [0; 64],
                Label: [0; 32],
                SerialNumber: [0; 32],
                HWVersion: Version { major: 1, minor: 0 },
                FirmwareVersion: Version { major: 1, minor: 0 },
                AlgSymCap: SGD_SM4_ECB | SGD_SM4_CBC | SGD_SM4_MAC,
                AlgAsymCap: SGD_SM2_1 | SGD_SM2_3,
                AlgHashCap: SGD_SM3,
                DevAuthAlgId: SGD_SM4_ECB,
                TotalSpace: TOTAL_SPACE,
                FreeSpace: u32::try_from(s.free_space()).unwrap_or(0),
                MaxECCBufferSize: MAX_ECC_BUFFER as ULONG,
                MaxBufferSize: MAX_BUFFER as ULONG,
                Reserved: [0; 64],
            };
            fill(&mut info.Manufacturer, b"ukey project");
            fill(&mut info.Issuer, b"ukey-skf-sim (simulated token)");
            fill(&mut info.Label, s.label.as_bytes());
            fill(&mut info.SerialNumber, s.serial.as_bytes());
            Ok(info)
        })?;
        ptr::write(pDevInfo, info)
    }

    /// §7.1.10: exclusive use within this process; the holder may lock
    /// again (a depth count), another connection's `SKF_LockDev` waits up
    /// to `ulTimeOut` ms (`SAR_TIMEOUTERR`); its other calls are not held up.
    fn SKF_LockDev(hDev: DEVHANDLE, ulTimeOut: ULONG) {
        let h = handle(hDev);
        let deadline = (ulTimeOut != DEV_LOCK_FOREVER)
            .then(|| Instant::now() + Duration::from_millis(u64::from(ulTimeOut)));
        let mut g = registry::lock();
        loop {
            let Some(r) = g.as_mut() else {
                return Err(SAR_UNKNOWNERR);
            };
            let i = dev_of(r, hDev)?;
            let vol = &mut r.devices[i].vol;
            match vol.lock {
                None => {
                    vol.lock = Some((h, 1));
                    return Ok(());
                }
                Some((owner, depth)) if owner == h => {
                    vol.lock = Some((owner, depth.saturating_add(1)));
                    return Ok(());
                }
                Some(_) => {}
            }
            let wait = match deadline {
                None => Duration::from_millis(100),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(SAR_TIMEOUTERR);
                    }
                    (d - now).min(Duration::from_millis(100))
                }
            };
            g = WAKE
                .wait_timeout(g, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// §7.1.11: one level of `SKF_LockDev` (not locked: nothing to do).
    fn SKF_UnlockDev(hDev: DEVHANDLE) {
        let h = handle(hDev);
        registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let vol = &mut r.devices[i].vol;
            match vol.lock {
                Some((owner, depth)) if owner == h => {
                    vol.lock = (depth > 1).then_some((owner, depth - 1));
                    Ok(())
                }
                Some(_) => Err(SAR_FAIL),
                None => Ok(()),
            }
        })?;
        WAKE.notify_all();
        Ok(())
    }

    /// §7.1.12: there are no APDUs under a soft token.
    fn SKF_Transmit(hDev: DEVHANDLE, pbCommand: *mut BYTE, ulCommandLen: ULONG, pbData: *mut BYTE, pulDataLen: *mut ULONG) {
        registry::with(|r| dev_of(r, hDev))?;
        let _ = (pbCommand, ulCommandLen, pbData, pulDataLen);
        Err(SAR_NOTSUPPORTYETERR)
    }
}

fn fill(dst: &mut [c_char], src: &[u8]) {
    // Leave room for a NUL where the field is longer than the value.
    let n = src.len().min(dst.len() - 1);
    for (d, s) in dst.iter_mut().zip(&src[..n]) {
        *d = *s as c_char;
    }
}

// ---- access control (§7.2) -------------------------------------------------

skf_export! {
    /// §7.2.2: a new 16-byte authentication key (after `SKF_DevAuth`).
    fn SKF_ChangeDevAuthKey(hDev: DEVHANDLE, pbKeyValue: *mut BYTE, ulKeyLen: ULONG) {
        let key = Zeroizing::new(ptr::bytes_in(pbKeyValue, ulKeyLen)?.to_vec());
        if key.len() != 16 {
            return Err(SAR_INVALIDPARAMERR);
        }
        registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let d = &mut r.devices[i];
            need_dev_auth(d)?;
            update(d, |s| {
                s.dev_auth_key = Secret::new(&key);
                Ok(())
            })
        })
    }

    /// §7.2.3: the host encrypts the challenge (the last `SKF_GenRandom`
    /// output, zero-padded to 16 bytes) with the authentication key in
    /// SM4-ECB: 16 bytes, or 32 when it padded a full block (PKCS#5). The
    /// challenge is good for one attempt; a wrong answer is `SAR_FAIL`.
    fn SKF_DevAuth(hDev: DEVHANDLE, pbAuthData: *mut BYTE, ulLen: ULONG) {
        let data = ptr::bytes_in(pbAuthData, ulLen)?;
        registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let d = &mut r.devices[i];
            let challenge = d.vol.challenge.take().ok_or(SAR_FAIL)?;
            let key: Zeroizing<[u8; 16]> = Zeroizing::new(
                d.state()?.dev_auth_key.0[..].try_into().map_err(|_| SAR_FILEERR)?,
            );
            let expect = sm4mode::ecb_encrypt(&key, &challenge[..]).map_err(mode_sar)?;
            let ok = match data.len() {
                16 => bool::from(data.ct_eq(&expect[..])),
                32 => {
                    let pad = sm4mode::ecb_encrypt(&key, &[16u8; 16]).map_err(mode_sar)?;
                    bool::from(data[..16].ct_eq(&expect[..])) && data[16..] == pad[..]
                }
                _ => false,
            };
            d.vol.dev_authenticated = ok;
            if ok {
                Ok(())
            } else {
                Err(SAR_FAIL)
            }
        })
    }

    /// §7.2.4: checks the old PIN (spending a try when wrong; the new
    /// one's length is checked first and costs none).
    fn SKF_ChangePIN(hApplication: HAPPLICATION, ulPINType: ULONG, szOldPin: LPSTR, szNewPin: LPSTR, pulRetryCount: *mut ULONG) {
        let acct = pin_type(ulPINType)?;
        let old = pin_value(ptr::cstr(szOldPin)?)?;
        let new = pin_value(ptr::cstr(szNewPin)?)?;
        registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let d = &mut r.devices[i];
            match check_pin(d, &app, acct, &old) {
                Ok(_) => {}
                Err((e, left)) => {
                    ptr::write_opt(pulRetryCount, left);
                    return Err(e);
                }
            }
            update(d, |s| {
                let p = pin_mut(app_mut(s, &app)?, acct);
                p.value = Secret::new(&new);
                p.remaining = p.max_retry;
                p.default = false;
                Ok(())
            })
        })
    }

    /// §7.2.5: the retry limit, the tries left and whether the PIN is
    /// still the one the application was created with.
    fn SKF_GetPINInfo(hApplication: HAPPLICATION, ulPINType: ULONG, pulMaxRetryCount: *mut ULONG, pulRemainRetryCount: *mut ULONG, pbDefaultPin: *mut BOOL) {
        let acct = pin_type(ulPINType)?;
        if pulMaxRetryCount.is_null() || pulRemainRetryCount.is_null() || pbDefaultPin.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let p = registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let a = app_mut(r.devices[i].state()?, &app)?;
            Ok(pin_mut(a, acct).clone())
        })?;
        ptr::write(pulMaxRetryCount, p.max_retry)?;
        ptr::write(pulRemainRetryCount, p.remaining)?;
        ptr::write(pbDefaultPin, BOOL::from(p.default))
    }

    /// §7.2.6: a wrong PIN spends a try and answers `SAR_PIN_INCORRECT`
    /// (`SAR_PIN_LOCKED` at 0) with the tries left in `*pulRetryCount`; a
    /// PIN of the wrong length (6..16 bytes) spends none.
    fn SKF_VerifyPIN(hApplication: HAPPLICATION, ulPINType: ULONG, szPIN: LPSTR, pulRetryCount: *mut ULONG) {
        let acct = pin_type(ulPINType)?;
        let pin = pin_value(ptr::cstr(szPIN)?)?;
        registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let d = &mut r.devices[i];
            match check_pin(d, &app, acct, &pin) {
                Ok(left) => {
                    *d.vol.rights.entry(app).or_insert(0) |= acct;
                    ptr::write_opt(pulRetryCount, left);
                    Ok(())
                }
                Err((e, left)) => {
                    ptr::write_opt(pulRetryCount, left);
                    Err(e)
                }
            }
        })
    }

    /// §7.2.7: the admin PIN sets a new user PIN and resets its counter;
    /// `*pulRetryCount` is the admin PIN's tries left on failure.
    fn SKF_UnblockPIN(hApplication: HAPPLICATION, szAdminPIN: LPSTR, szNewUserPIN: LPSTR, pulRetryCount: *mut ULONG) {
        let admin = pin_value(ptr::cstr(szAdminPIN)?)?;
        let new = pin_value(ptr::cstr(szNewUserPIN)?)?;
        registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let d = &mut r.devices[i];
            if let Err((e, left)) = check_pin(d, &app, SECURE_ADM_ACCOUNT, &admin) {
                ptr::write_opt(pulRetryCount, left);
                return Err(e);
            }
            update(d, |s| {
                let p = &mut app_mut(s, &app)?.user_pin;
                p.value = Secret::new(&new);
                p.remaining = p.max_retry;
                p.default = false;
                Ok(())
            })
        })
    }

    /// §7.2.8: forget the application's verified PINs.
    fn SKF_ClearSecureState(hApplication: HAPPLICATION) {
        registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            r.devices[i].vol.rights.remove(&app);
            Ok(())
        })
    }
}

// ---- applications (§7.3) ---------------------------------------------------

skf_export! {
    /// §7.3.2: needs device authentication; names of 1..32 bytes, PINs of
    /// 6..16, retry limits 1..15; at most 8 applications.
    fn SKF_CreateApplication(hDev: DEVHANDLE, szAppName: LPSTR, szAdminPin: LPSTR, dwAdminPinRetryCount: DWORD, szUserPin: LPSTR, dwUserPinRetryCount: DWORD, dwCreateFileRights: DWORD, phApplication: *mut HAPPLICATION) {
        let name = name_str(ptr::cstr(szAppName)?, APP_NAME_MAX, SAR_APPLICATION_NAME_INVALID)?;
        let admin = pin_value(ptr::cstr(szAdminPin)?)?;
        let user = pin_value(ptr::cstr(szUserPin)?)?;
        if phApplication.is_null()
            || !(1..=15).contains(&dwAdminPinRetryCount)
            || !(1..=15).contains(&dwUserPinRetryCount)
        {
            return Err(SAR_INVALIDPARAMERR);
        }
        let h = registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let d = &mut r.devices[i];
            need_dev_auth(d)?;
            update(d, |s| {
                if s.applications.contains_key(&name) {
                    return Err(SAR_APPLICATION_EXISTS);
                }
                if s.applications.len() >= MAX_APPS {
                    return Err(SAR_NO_ROOM);
                }
                s.applications.insert(
                    name.clone(),
                    Application {
                        admin_pin: Pin::new(&admin, dwAdminPinRetryCount),
                        user_pin: Pin::new(&user, dwUserPinRetryCount),
                        create_file_rights: dwCreateFileRights,
                        files: Default::default(),
                        containers: Default::default(),
                    },
                );
                Ok(())
            })?;
            let insertion = d.insertion;
            Ok(r.add(Obj { dev: i, insertion, parent: handle(hDev), kind: Kind::App { app: name } }))
        })?;
        ptr::write(phApplication, to_handle(h))
    }

    /// §7.3.3
    fn SKF_EnumApplication(hDev: DEVHANDLE, szAppName: LPSTR, pulSize: *mut ULONG) {
        let list = registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let s = r.devices[i].state()?;
            Ok(name_list(s.applications.keys().map(String::as_str)))
        })?;
        ptr::out_bytes(szAppName.cast(), pulSize, &list)
    }

    /// §7.3.4: needs device authentication; handles to it die.
    fn SKF_DeleteApplication(hDev: DEVHANDLE, szAppName: LPSTR) {
        let name = ptr::cstr(szAppName)?.to_vec();
        registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let d = &mut r.devices[i];
            need_dev_auth(d)?;
            let name = String::from_utf8(name).map_err(|_| SAR_APPLICATION_NOT_EXISTS)?;
            update(d, |s| s.applications.remove(&name).map(|_| ()).ok_or(SAR_APPLICATION_NOT_EXISTS))?;
            d.vol.rights.remove(&name);
            r.objects.retain(|_, o| {
                o.dev != i
                    || !matches!(&o.kind, Kind::App { app } | Kind::Container { app, .. } if *app == name)
            });
            Ok(())
        })
    }

    /// §7.3.5
    fn SKF_OpenApplication(hDev: DEVHANDLE, szAppName: LPSTR, phApplication: *mut HAPPLICATION) {
        let name = ptr::cstr(szAppName)?;
        if phApplication.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let h = registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let d = &mut r.devices[i];
            let app = d
                .state()?
                .applications
                .keys()
                .find(|k| k.as_bytes() == name)
                .cloned()
                .ok_or(SAR_APPLICATION_NOT_EXISTS)?;
            let insertion = d.insertion;
            Ok(r.add(Obj { dev: i, insertion, parent: handle(hDev), kind: Kind::App { app } }))
        })?;
        ptr::write(phApplication, to_handle(h))
    }

    /// §7.3.6: the verified PINs stay (until `SKF_ClearSecureState` or the
    /// last `SKF_DisConnectDev`), as on a card.
    fn SKF_CloseApplication(hApplication: HAPPLICATION) {
        registry::with(|r| match r.objects.get(&handle(hApplication)) {
            Some(Obj { kind: Kind::App { .. }, .. }) => {
                r.close(handle(hApplication));
                Ok(())
            }
            _ => Err(SAR_INVALIDHANDLEERR),
        })
    }
}

// ---- files (§7.4) ------------------------------------------------------------

skf_export! {
    /// §7.4.2: names of 1..31 bytes, a fixed size, read and write rights.
    fn SKF_CreateFile(hApplication: HAPPLICATION, szFileName: LPSTR, ulFileSize: ULONG, ulReadRights: ULONG, ulWriteRights: ULONG) {
        let name = name_str(ptr::cstr(szFileName)?, FILE_NAME_MAX, SAR_NAMELENERR)?;
        registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let d = &mut r.devices[i];
            let have = rights(d, &app);
            update(d, |s| {
                let free = s.free_space();
                let a = app_mut(s, &app)?;
                if !allowed(have, a.create_file_rights) {
                    return Err(SAR_USER_NOT_LOGGED_IN);
                }
                if a.files.contains_key(&name) {
                    return Err(SAR_FILE_ALREADY_EXIST);
                }
                if ulFileSize as usize + 64 > free {
                    return Err(SAR_NO_ROOM);
                }
                a.files.insert(name, FileEntry {
                    read_rights: ulReadRights,
                    write_rights: ulWriteRights,
                    data: vec![0; ulFileSize as usize],
                });
                Ok(())
            })
        })
    }

    /// §7.4.3: needs the file's write right.
    fn SKF_DeleteFile(hApplication: HAPPLICATION, szFileName: LPSTR) {
        let name = ptr::cstr(szFileName)?.to_vec();
        registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let d = &mut r.devices[i];
            let have = rights(d, &app);
            update(d, |s| {
                let a = app_mut(s, &app)?;
                let key = a.files.keys().find(|k| k.as_bytes() == name).cloned().ok_or(SAR_FILE_NOT_EXIST)?;
                if !allowed(have, a.files[&key].write_rights) {
                    return Err(SAR_USER_NOT_LOGGED_IN);
                }
                a.files.remove(&key);
                Ok(())
            })
        })
    }

    /// §7.4.4
    fn SKF_EnumFiles(hApplication: HAPPLICATION, szFileList: LPSTR, pulSize: *mut ULONG) {
        let list = registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let a = app_mut(r.devices[i].state()?, &app)?;
            Ok(name_list(a.files.keys().map(String::as_str)))
        })?;
        ptr::out_bytes(szFileList.cast(), pulSize, &list)
    }

    /// §7.4.5
    fn SKF_GetFileInfo(hApplication: HAPPLICATION, szFileName: LPSTR, pFileInfo: *mut FileAttribute) {
        let name = ptr::cstr(szFileName)?;
        if pFileInfo.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let info = registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let a = app_mut(r.devices[i].state()?, &app)?;
            let (k, f) = a.files.iter().find(|(k, _)| k.as_bytes() == name).ok_or(SAR_FILE_NOT_EXIST)?;
            let mut info = FileAttribute {
                FileName: [0; MAX_FILE_NAME_SIZE],
                FileSize: f.data.len() as ULONG,
                ReadRights: f.read_rights,
                WriteRights: f.write_rights,
            };
            fill(&mut info.FileName, k.as_bytes());
            Ok(info)
        })?;
        ptr::write(pFileInfo, info)
    }

    /// §7.4.6: up to `ulSize` bytes from `ulOffset` (fewer at the end of
    /// the file); needs the file's read right.
    fn SKF_ReadFile(hApplication: HAPPLICATION, szFileName: LPSTR, ulOffset: ULONG, ulSize: ULONG, pbOutData: *mut BYTE, pulOutLen: *mut ULONG) {
        let name = ptr::cstr(szFileName)?;
        let data = registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let d = &mut r.devices[i];
            let have = rights(d, &app);
            let a = app_mut(d.state()?, &app)?;
            let f = a.files.iter().find(|(k, _)| k.as_bytes() == name).map(|(_, f)| f).ok_or(SAR_FILE_NOT_EXIST)?;
            if !allowed(have, f.read_rights) {
                return Err(SAR_USER_NOT_LOGGED_IN);
            }
            let off = ulOffset as usize;
            if off > f.data.len() {
                return Err(SAR_INDATAERR);
            }
            let end = off.saturating_add(ulSize as usize).min(f.data.len());
            Ok(Zeroizing::new(f.data[off..end].to_vec()))
        })?;
        ptr::out_bytes(pbOutData, pulOutLen, &data)
    }

    /// §7.4.7: within the size fixed at creation; needs the write right.
    fn SKF_WriteFile(hApplication: HAPPLICATION, szFileName: LPSTR, ulOffset: ULONG, pbData: *mut BYTE, ulSize: ULONG) {
        let name = ptr::cstr(szFileName)?.to_vec();
        let data = ptr::bytes_in(pbData, ulSize)?;
        registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let d = &mut r.devices[i];
            let have = rights(d, &app);
            update(d, |s| {
                let a = app_mut(s, &app)?;
                let f = a.files.iter_mut().find(|(k, _)| k.as_bytes() == name).map(|(_, f)| f).ok_or(SAR_FILE_NOT_EXIST)?;
                if !allowed(have, f.write_rights) {
                    return Err(SAR_USER_NOT_LOGGED_IN);
                }
                let off = ulOffset as usize;
                let end = off.checked_add(data.len()).filter(|&e| e <= f.data.len()).ok_or(SAR_INDATALENERR)?;
                f.data[off..end].copy_from_slice(data);
                Ok(())
            })
        })
    }
}

// ---- containers (§7.5) -------------------------------------------------------

fn open_container(
    r: &mut Registry,
    h_app: HAPPLICATION,
    name: &[u8],
    create: bool,
) -> Result<usize, Sar> {
    let (i, parent, app) = app_of(r, h_app)?;
    let d = &mut r.devices[i];
    let cname = if create {
        need_user(d, &app)?;
        let cname = name_str(name, CONTAINER_NAME_MAX, SAR_NAMELENERR)?;
        update(d, |s| {
            let a = app_mut(s, &app)?;
            if a.containers.contains_key(&cname) {
                return Err(SAR_FILE_ALREADY_EXIST);
            }
            if a.containers.len() >= MAX_CONTAINERS {
                return Err(SAR_REACH_MAX_CONTAINER_COUNT);
            }
            a.containers.insert(cname.clone(), Container::default());
            Ok(())
        })?;
        cname
    } else {
        app_mut(d.state()?, &app)?
            .containers
            .keys()
            .find(|k| k.as_bytes() == name)
            .cloned()
            .ok_or(SAR_FILE_NOT_EXIST)?
    };
    let insertion = d.insertion;
    Ok(r.add(Obj {
        dev: i,
        insertion,
        parent,
        kind: Kind::Container { app, name: cname },
    }))
}

skf_export! {
    /// §7.5.2: needs the user PIN; names of 1..63 bytes, at most 8 containers.
    fn SKF_CreateContainer(hApplication: HAPPLICATION, szContainerName: LPSTR, phContainer: *mut HCONTAINER) {
        let name = ptr::cstr(szContainerName)?;
        if phContainer.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let h = registry::with(|r| open_container(r, hApplication, name, true))?;
        ptr::write(phContainer, to_handle(h))
    }

    /// §7.5.3: needs the user PIN; keys and certificates go with it.
    fn SKF_DeleteContainer(hApplication: HAPPLICATION, szContainerName: LPSTR) {
        let name = ptr::cstr(szContainerName)?.to_vec();
        registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let d = &mut r.devices[i];
            need_user(d, &app)?;
            let removed = update(d, |s| {
                let a = app_mut(s, &app)?;
                let key = a.containers.keys().find(|k| k.as_bytes() == name).cloned().ok_or(SAR_FILE_NOT_EXIST)?;
                a.containers.remove(&key);
                Ok(key)
            })?;
            r.objects.retain(|_, o| {
                !(o.dev == i && matches!(&o.kind, Kind::Container { app: a, name: n } if *a == app && *n == removed))
            });
            Ok(())
        })
    }

    /// §7.5.4
    fn SKF_OpenContainer(hApplication: HAPPLICATION, szContainerName: LPSTR, phContainer: *mut HCONTAINER) {
        let name = ptr::cstr(szContainerName)?;
        if phContainer.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let h = registry::with(|r| open_container(r, hApplication, name, false))?;
        ptr::write(phContainer, to_handle(h))
    }

    /// §7.5.5
    fn SKF_CloseContainer(hContainer: HCONTAINER) {
        registry::with(|r| match r.objects.get(&handle(hContainer)) {
            Some(Obj { kind: Kind::Container { .. }, .. }) => {
                r.close(handle(hContainer));
                Ok(())
            }
            _ => Err(SAR_INVALIDHANDLEERR),
        })
    }

    /// §7.5.6
    fn SKF_EnumContainer(hApplication: HAPPLICATION, szContainerName: LPSTR, pulSize: *mut ULONG) {
        let list = registry::with(|r| {
            let (i, _, app) = app_of(r, hApplication)?;
            let a = app_mut(r.devices[i].state()?, &app)?;
            Ok(name_list(a.containers.keys().map(String::as_str)))
        })?;
        ptr::out_bytes(szContainerName.cast(), pulSize, &list)
    }

    /// §7.5.7: 0 empty, 2 ECC (SM2); this token has no RSA containers.
    fn SKF_GetContainerType(hContainer: HCONTAINER, pulContainerType: *mut ULONG) {
        if pulContainerType.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let t = registry::with(|r| {
            let (i, _, app, name) = container_of(r, hContainer)?;
            let c = container_ref(&mut r.devices[i], &app, &name)?;
            Ok(if c.is_empty() { CONTAINER_TYPE_EMPTY } else { CONTAINER_TYPE_ECC })
        })?;
        ptr::write(pulContainerType, t)
    }

    /// §7.5.8: the signing (`bSignFlag` TRUE) or encryption certificate,
    /// DER, at most 8 KiB; needs the user PIN.
    fn SKF_ImportCertificate(hContainer: HCONTAINER, bSignFlag: BOOL, pbCert: *mut BYTE, ulCertLen: ULONG) {
        let cert = ptr::bytes_in(pbCert, ulCertLen)?;
        if cert.is_empty() || cert.len() > MAX_CERT || cert[0] != 0x30 {
            return Err(SAR_INVALIDPARAMERR);
        }
        registry::with(|r| {
            let (i, _, app, name) = container_of(r, hContainer)?;
            let d = &mut r.devices[i];
            need_user(d, &app)?;
            update(d, |s| {
                let c = container_mut(s, &app, &name)?;
                if bSignFlag != 0 {
                    c.sign_cert = Some(cert.to_vec());
                } else {
                    c.enc_cert = Some(cert.to_vec());
                }
                Ok(())
            })
        })
    }

    /// §7.5.9
    fn SKF_ExportCertificate(hContainer: HCONTAINER, bSignFlag: BOOL, pbCert: *mut BYTE, pulCertLen: *mut ULONG) {
        let cert = registry::with(|r| {
            let (i, _, app, name) = container_of(r, hContainer)?;
            let c = container_ref(&mut r.devices[i], &app, &name)?;
            if bSignFlag != 0 { c.sign_cert } else { c.enc_cert }.ok_or(SAR_CERTNOTFOUNTERR)
        })?;
        ptr::out_bytes(pbCert, pulCertLen, &cert)
    }
}

// ---- cryptographic services (§7.6) ---------------------------------------------

skf_export! {
    /// §7.6.2: also the challenge for `SKF_DevAuth` (its first 16 bytes).
    fn SKF_GenRandom(hDev: DEVHANDLE, pbRandom: *mut BYTE, ulRandomLen: ULONG) {
        let n = ulRandomLen as usize;
        if pbRandom.is_null() || n == 0 {
            return Err(SAR_INVALIDPARAMERR);
        }
        if n > ptr::MAX_INPUT {
            return Err(SAR_INDATALENERR);
        }
        let mut buf = Zeroizing::new(vec![0u8; n]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut buf[..]);
        registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let mut ch = Zeroizing::new([0u8; 16]);
            let m = n.min(16);
            ch[..m].copy_from_slice(&buf[..m]);
            r.devices[i].vol.challenge = Some(ch);
            Ok(())
        })?;
        ptr::copy_out(pbRandom, &buf);
        Ok(())
    }

    /// §7.6.3: RSA is not implemented (SM2 only).
    fn SKF_GenExtRSAKey(hDev: DEVHANDLE, ulBitsLen: ULONG, pBlob: *mut RsaPrivateKeyBlob) {
        let _ = (hDev, ulBitsLen, pBlob);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.4: RSA is not implemented.
    fn SKF_GenRSAKeyPair(hContainer: HCONTAINER, ulBitsLen: ULONG, pBlob: *mut RsaPublicKeyBlob) {
        let _ = (hContainer, ulBitsLen, pBlob);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.5: RSA is not implemented.
    fn SKF_ImportRSAKeyPair(hContainer: HCONTAINER, ulSymAlgId: ULONG, pbWrappedKey: *mut BYTE, ulWrappedKeyLen: ULONG, pbEncryptedData: *mut BYTE, ulEncryptedDataLen: ULONG) {
        let _ = (hContainer, ulSymAlgId, pbWrappedKey, ulWrappedKeyLen, pbEncryptedData, ulEncryptedDataLen);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.6: RSA is not implemented.
    fn SKF_RSASignData(hContainer: HCONTAINER, pbData: *mut BYTE, ulDataLen: ULONG, pbSignature: *mut BYTE, pulSignLen: *mut ULONG) {
        let _ = (hContainer, pbData, ulDataLen, pbSignature, pulSignLen);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.7: RSA is not implemented.
    fn SKF_RSAVerify(hDev: DEVHANDLE, pRSAPubKeyBlob: *mut RsaPublicKeyBlob, pbData: *mut BYTE, ulDataLen: ULONG, pbSignature: *mut BYTE, ulSignLen: ULONG) {
        let _ = (hDev, pRSAPubKeyBlob, pbData, ulDataLen, pbSignature, ulSignLen);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.8: RSA is not implemented.
    fn SKF_RSAExportSessionKey(hContainer: HCONTAINER, ulAlgId: ULONG, pPubKey: *mut RsaPublicKeyBlob, pbData: *mut BYTE, pulDataLen: *mut ULONG, phSessionKey: *mut HANDLE) {
        let _ = (hContainer, ulAlgId, pPubKey, pbData, pulDataLen, phSessionKey);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.9: RSA is not implemented.
    fn SKF_ExtRSAPubKeyOperation(hDev: DEVHANDLE, pRSAPubKeyBlob: *mut RsaPublicKeyBlob, pbInput: *mut BYTE, ulInputLen: ULONG, pbOutput: *mut BYTE, pulOutputLen: *mut ULONG) {
        let _ = (hDev, pRSAPubKeyBlob, pbInput, ulInputLen, pbOutput, pulOutputLen);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.10: RSA is not implemented.
    fn SKF_ExtRSAPriKeyOperation(hDev: DEVHANDLE, pRSAPriKeyBlob: *mut RsaPrivateKeyBlob, pbInput: *mut BYTE, ulInputLen: ULONG, pbOutput: *mut BYTE, pulOutputLen: *mut ULONG) {
        let _ = (hDev, pRSAPriKeyBlob, pbInput, ulInputLen, pbOutput, pulOutputLen);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.11: a new SM2 signing pair made on the token (`SGD_SM2_1`, or
    /// `SGD_SM2` as some headers number it); it replaces the container's
    /// signing key, whose certificate is then removed. Needs the user PIN.
    fn SKF_GenECCKeyPair(hContainer: HCONTAINER, ulAlgId: ULONG, pBlob: *mut EccPublicKeyBlob) {
        if ulAlgId != SGD_SM2_1 && ulAlgId != SGD_SM2 {
            return Err(SAR_NOTSUPPORTYETERR);
        }
        if pBlob.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let blob = registry::with(|r| {
            let (i, _, app, name) = container_of(r, hContainer)?;
            let d = &mut r.devices[i];
            need_user(d, &app)?;
            let key = Sm2Key::generate();
            update(d, |s| {
                let c = container_mut(s, &app, &name)?;
                c.sign_key = Some(Secret::new(&key.to_bytes()[..]));
                c.sign_cert = None;
                Ok(())
            })?;
            Ok(blob_of(&key.public()))
        })?;
        ptr::write(pBlob, blob)
    }

    /// §7.6.12: the encryption pair in an ENVELOPEDKEYBLOB: the SM4 key in
    /// `ECCCipherBlob` (SM2 to this container's signing key, `CipherLen`
    /// bytes from `Cipher` on), the private key in `cbEncryptedPriKey`
    /// (SM4-ECB), checked against `PubKey` before anything is stored.
    /// Needs the user PIN.
    fn SKF_ImportECCKeyPair(hContainer: HCONTAINER, pEnvelopedKeyBlob: *mut EnvelopedKeyBlob) {
        let env: EnvelopedKeyBlob = ptr::read(pEnvelopedKeyBlob)?;
        let cipher_ptr = pEnvelopedKeyBlob.cast::<u8>().add(ENVELOPED_CIPHER_OFFSET).cast::<EccCipherBlob>();
        let wrapped = ptr::cipher_blob_in(cipher_ptr, 64)?;
        if env.Version > ENVELOPEDKEYBLOB_VERSION || env.ulBits != 256 {
            return Err(SAR_INVALIDPARAMERR);
        }
        if env.ulSymmAlgID != SGD_SM4_ECB {
            return Err(SAR_NOTSUPPORTYETERR);
        }
        let pubkey = point_of(&{ env.PubKey })?;
        let enc = env.cbEncryptedPriKey;
        registry::with(|r| {
            let (i, _, app, name) = container_of(r, hContainer)?;
            let d = &mut r.devices[i];
            need_user(d, &app)?;
            let signer = key_of(&container_ref(d, &app, &name)?.sign_key)?;
            let sym = signer.decrypt(&wrapped).map_err(crypto_sar)?;
            let sym: Zeroizing<[u8; 16]> = Zeroizing::new(sym[..].try_into().map_err(|_| SAR_INDATAERR)?);
            let key = envelope_private_key(&sym, &enc, &pubkey)?;
            update(d, |s| {
                let c = container_mut(s, &app, &name)?;
                let new = Secret::new(&key.to_bytes()[..]);
                if c.enc_key.as_ref() != Some(&new) {
                    c.enc_cert = None;
                }
                c.enc_key = Some(new);
                Ok(())
            })
        })
    }

    /// §7.6.13: signs the 32-byte e = SM3(Z‖M) the caller computed (no
    /// hashing here) with the signing key. Needs the user PIN.
    fn SKF_ECCSignData(hContainer: HCONTAINER, pbDigest: *mut BYTE, ulDigestLen: ULONG, pSignature: *mut EccSignatureBlob) {
        let e = e32(ptr::bytes_in(pbDigest, ulDigestLen)?)?;
        if pSignature.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let rs = registry::with(|r| {
            let (i, _, app, name) = container_of(r, hContainer)?;
            let d = &mut r.devices[i];
            need_user(d, &app)?;
            let key = key_of(&container_ref(d, &app, &name)?.sign_key)?;
            key.sign_e(&e).map_err(crypto_sar)
        })?;
        ptr::write(pSignature, sig_blob(&rs))
    }

    /// §7.6.14: verify a signature over the 32-byte e; a bad one is `SAR_FAIL`.
    fn SKF_ECCVerify(hDev: DEVHANDLE, pECCPubKeyBlob: *mut EccPublicKeyBlob, pbData: *mut BYTE, ulDataLen: ULONG, pSignature: *mut EccSignatureBlob) {
        verify(hDev, pECCPubKeyBlob, pbData, ulDataLen, pSignature)
    }

    /// §7.6.15: a new SM4 session key (`SGD_SM4_ECB`/`CBC`), returned as a
    /// handle and SM2-encrypted to `pPubKey` in `pData` (which must have
    /// room for `ECC_CIPHER_BLOB_HEADER + 16` = 180 bytes).
    fn SKF_ECCExportSessionKey(hContainer: HCONTAINER, ulAlgId: ULONG, pPubKey: *mut EccPublicKeyBlob, pData: *mut EccCipherBlob, phSessionKey: *mut HANDLE) {
        if ulAlgId != SGD_SM4_ECB && ulAlgId != SGD_SM4_CBC {
            return Err(SAR_NOTSUPPORTYETERR);
        }
        let to = point_of(&ptr::read(pPubKey)?)?;
        if pData.is_null() || phSessionKey.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let key = random16();
        let c = to.encrypt(&key[..]).map_err(crypto_sar)?;
        let h = registry::with(|r| {
            let (i, parent, _, _) = container_of(r, hContainer)?;
            Ok(new_key(r, i, parent, &key, ulAlgId))
        })?;
        ptr::cipher_blob_out(pData, &c)?;
        ptr::write(phSessionKey, to_handle(h))
    }

    /// §7.6.16: SM2 encryption to an external public key (1..256 bytes;
    /// `pCipherText` needs room for `ECC_CIPHER_BLOB_HEADER + ulPlainTextLen`).
    fn SKF_ExtECCEncrypt(hDev: DEVHANDLE, pECCPubKeyBlob: *mut EccPublicKeyBlob, pbPlainText: *mut BYTE, ulPlainTextLen: ULONG, pCipherText: *mut EccCipherBlob) {
        let to = point_of(&ptr::read(pECCPubKeyBlob)?)?;
        let m = ptr::bytes_in(pbPlainText, ulPlainTextLen)?;
        if m.is_empty() || m.len() > MAX_ECC_BUFFER {
            return Err(SAR_INDATALENERR);
        }
        registry::with(|r| dev_of(r, hDev))?;
        let c = to.encrypt(m).map_err(crypto_sar)?;
        ptr::cipher_blob_out(pCipherText, &c)
    }

    /// §7.6.17: SM2 decryption with an external private key.
    fn SKF_ExtECCDecrypt(hDev: DEVHANDLE, pECCPriKeyBlob: *mut EccPrivateKeyBlob, pCipherText: *mut EccCipherBlob, pbPlainText: *mut BYTE, pulPlainTextLen: *mut ULONG) {
        let blob: EccPrivateKeyBlob = ptr::read(pECCPriKeyBlob)?;
        let key = ext_key(&blob)?;
        let c = ptr::cipher_blob_in(pCipherText, MAX_ECC_BUFFER)?;
        registry::with(|r| dev_of(r, hDev))?;
        let m = key.decrypt(&c).map_err(crypto_sar)?;
        ptr::out_bytes(pbPlainText, pulPlainTextLen, &m)
    }

    /// §7.6.18: SM2 signature over a 32-byte e with an external private key.
    fn SKF_ExtECCSign(hDev: DEVHANDLE, pECCPriKeyBlob: *mut EccPrivateKeyBlob, pbData: *mut BYTE, ulDataLen: ULONG, pSignature: *mut EccSignatureBlob) {
        let blob: EccPrivateKeyBlob = ptr::read(pECCPriKeyBlob)?;
        let key = ext_key(&blob)?;
        let e = e32(ptr::bytes_in(pbData, ulDataLen)?)?;
        registry::with(|r| dev_of(r, hDev))?;
        let rs = key.sign_e(&e).map_err(crypto_sar)?;
        ptr::write(pSignature, sig_blob(&rs))
    }

    /// §7.6.19: as `SKF_ECCVerify`.
    fn SKF_ExtECCVerify(hDev: DEVHANDLE, pECCPubKeyBlob: *mut EccPublicKeyBlob, pbData: *mut BYTE, ulDataLen: ULONG, pSignature: *mut EccSignatureBlob) {
        verify(hDev, pECCPubKeyBlob, pbData, ulDataLen, pSignature)
    }

    /// §7.6.20: SM2 key exchange is not implemented.
    fn SKF_GenerateAgreementDataWithECC(hContainer: HCONTAINER, ulAlgId: ULONG, pTempECCPubKeyBlob: *mut EccPublicKeyBlob, pbID: *mut BYTE, ulIDLen: ULONG, phAgreementHandle: *mut HANDLE) {
        let _ = (hContainer, ulAlgId, pTempECCPubKeyBlob, pbID, ulIDLen, phAgreementHandle);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.21: SM2 key exchange is not implemented.
    fn SKF_GenerateAgreementDataAndKeyWithECC(hContainer: HANDLE, ulAlgId: ULONG, pSponsorECCPubKeyBlob: *mut EccPublicKeyBlob, pSponsorTempECCPubKeyBlob: *mut EccPublicKeyBlob, pTempECCPubKeyBlob: *mut EccPublicKeyBlob, pbID: *mut BYTE, ulIDLen: ULONG, pbSponsorID: *mut BYTE, ulSponsorIDLen: ULONG, phKeyHandle: *mut HANDLE) {
        let _ = (hContainer, ulAlgId, pSponsorECCPubKeyBlob, pSponsorTempECCPubKeyBlob, pTempECCPubKeyBlob, pbID, ulIDLen, pbSponsorID, ulSponsorIDLen, phKeyHandle);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.22: SM2 key exchange is not implemented.
    fn SKF_GenerateKeyWithECC(hAgreementHandle: HANDLE, pECCPubKeyBlob: *mut EccPublicKeyBlob, pTempECCPubKeyBlob: *mut EccPublicKeyBlob, pbID: *mut BYTE, ulIDLen: ULONG, phKeyHandle: *mut HANDLE) {
        let _ = (hAgreementHandle, pECCPubKeyBlob, pTempECCPubKeyBlob, pbID, ulIDLen, phKeyHandle);
        Err(SAR_NOTSUPPORTYETERR)
    }

    /// §7.6.23: the signing (`bSignFlag` TRUE) or encryption public key as
    /// an ECCPUBLICKEYBLOB (132 bytes).
    fn SKF_ExportPublicKey(hContainer: HCONTAINER, bSignFlag: BOOL, pbBlob: *mut BYTE, pulBlobLen: *mut ULONG) {
        let blob = registry::with(|r| {
            let (i, _, app, name) = container_of(r, hContainer)?;
            let c = container_ref(&mut r.devices[i], &app, &name)?;
            let key = key_of(if bSignFlag != 0 { &c.sign_key } else { &c.enc_key })?;
            Ok(blob_of(&key.public()))
        })?;
        let mut bytes = [0u8; core::mem::size_of::<EccPublicKeyBlob>()];
        std::ptr::write_unaligned(bytes.as_mut_ptr().cast::<EccPublicKeyBlob>(), blob);
        ptr::out_bytes(pbBlob, pulBlobLen, &bytes)
    }

    /// §7.6.24: an SM4 key (`SGD_SM4_ECB`/`CBC`) SM2-encrypted to this
    /// container's encryption key, as an ECCCIPHERBLOB of `ulWrapedLen`
    /// bytes: how a digital envelope addressed to the encryption
    /// certificate is opened on the token. Needs the user PIN.
    fn SKF_ImportSessionKey(hContainer: HCONTAINER, ulAlgId: ULONG, pbWrapedData: *mut BYTE, ulWrapedLen: ULONG, phKey: *mut HANDLE) {
        if ulAlgId != SGD_SM4_ECB && ulAlgId != SGD_SM4_CBC {
            return Err(SAR_NOTSUPPORTYETERR);
        }
        let c = ptr::cipher_blob_from_bytes(ptr::bytes_in(pbWrapedData, ulWrapedLen)?, 64)?;
        if phKey.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let h = registry::with(|r| {
            let (i, parent, app, name) = container_of(r, hContainer)?;
            let d = &mut r.devices[i];
            need_user(d, &app)?;
            let key = key_of(&container_ref(d, &app, &name)?.enc_key)?;
            let m = key.decrypt(&c).map_err(crypto_sar)?;
            let k: Zeroizing<[u8; 16]> = Zeroizing::new(m[..].try_into().map_err(|_| SAR_INDATAERR)?);
            Ok(new_key(r, i, parent, &k, ulAlgId))
        })?;
        ptr::write(phKey, to_handle(h))
    }

    /// §7.6.25: a 16-byte SM4 key (`SGD_SM4_ECB`, `_CBC`, `_MAC`).
    fn SKF_SetSymmKey(hDev: DEVHANDLE, pbKey: *mut BYTE, ulAlgID: ULONG, phKey: *mut HANDLE) {
        sym_alg(ulAlgID)?;
        let key: Zeroizing<[u8; 16]> = Zeroizing::new(ptr::read(pbKey.cast::<[u8; 16]>())?);
        if phKey.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let h = registry::with(|r| {
            let i = dev_of(r, hDev)?;
            Ok(new_key(r, i, handle(hDev), &key, ulAlgID))
        })?;
        ptr::write(phKey, to_handle(h))
    }

    /// §7.6.26: padding 0 (none) or 1 (PKCS#5); CBC needs a 16-byte IV.
    fn SKF_EncryptInit(hKey: HANDLE, EncryptParam: BlockCipherParam) {
        registry::with(|r| cipher_init(r, hKey, EncryptParam, true))
    }

    /// §7.6.27
    fn SKF_Encrypt(hKey: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG, pbEncryptedData: *mut BYTE, pulEncryptedLen: *mut ULONG) {
        let input = ptr::bytes_in(pbData, ulDataLen)?;
        registry::with(|r| cipher_step(r, hKey, true, Step::Whole, input, pbEncryptedData, pulEncryptedLen))
    }

    /// §7.6.28
    fn SKF_EncryptUpdate(hKey: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG, pbEncryptedData: *mut BYTE, pulEncryptedLen: *mut ULONG) {
        let input = ptr::bytes_in(pbData, ulDataLen)?;
        registry::with(|r| cipher_step(r, hKey, true, Step::Update, input, pbEncryptedData, pulEncryptedLen))
    }

    /// §7.6.29
    fn SKF_EncryptFinal(hKey: HANDLE, pbEncryptedData: *mut BYTE, pulEncryptedDataLen: *mut ULONG) {
        registry::with(|r| cipher_step(r, hKey, true, Step::Final, &[], pbEncryptedData, pulEncryptedDataLen))
    }

    /// §7.6.30
    fn SKF_DecryptInit(hKey: HANDLE, DecryptParam: BlockCipherParam) {
        registry::with(|r| cipher_init(r, hKey, DecryptParam, false))
    }

    /// §7.6.31: a size query answers the cipher text's length (the plain
    /// text is at most that).
    fn SKF_Decrypt(hKey: HANDLE, pbEncryptedData: *mut BYTE, ulEncryptedLen: ULONG, pbData: *mut BYTE, pulDataLen: *mut ULONG) {
        let input = ptr::bytes_in(pbEncryptedData, ulEncryptedLen)?;
        registry::with(|r| cipher_step(r, hKey, false, Step::Whole, input, pbData, pulDataLen))
    }

    /// §7.6.32
    fn SKF_DecryptUpdate(hKey: HANDLE, pbEncryptedData: *mut BYTE, ulEncryptedLen: ULONG, pbData: *mut BYTE, pulDataLen: *mut ULONG) {
        let input = ptr::bytes_in(pbEncryptedData, ulEncryptedLen)?;
        registry::with(|r| cipher_step(r, hKey, false, Step::Update, input, pbData, pulDataLen))
    }

    /// §7.6.33
    fn SKF_DecryptFinal(hKey: HANDLE, pbDecryptedData: *mut BYTE, pulDecryptedDataLen: *mut ULONG) {
        registry::with(|r| cipher_step(r, hKey, false, Step::Final, &[], pbDecryptedData, pulDecryptedDataLen))
    }

    /// §7.6.34: SM3 only. With `pPubKey`, the hash starts with Z of that key
    /// and the ID (`pbID`, or 1234567812345678 when `ulIDLen` is 0).
    fn SKF_DigestInit(hDev: DEVHANDLE, ulAlgID: ULONG, pPubKey: *mut EccPublicKeyBlob, pbID: *mut BYTE, ulIDLen: ULONG, phHash: *mut HANDLE) {
        if ulAlgID != SGD_SM3 {
            return Err(SAR_NOTSUPPORTYETERR);
        }
        if phHash.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let mut sm3 = sm3::Sm3::new();
        if !pPubKey.is_null() {
            let p = point_of(&ptr::read(pPubKey)?)?;
            let id = ptr::bytes_in(pbID, ulIDLen)?;
            let id = if id.is_empty() { SM2_DEFAULT_ID } else { id };
            sm3.update(p.z(id).map_err(|_| SAR_INDATALENERR)?);
        }
        let h = registry::with(|r| {
            let i = dev_of(r, hDev)?;
            let insertion = r.devices[i].insertion;
            Ok(r.add(Obj { dev: i, insertion, parent: handle(hDev), kind: Kind::Hash(HashState { sm3: Some(sm3) }) }))
        })?;
        ptr::write(phHash, to_handle(h))
    }

    /// §7.6.35: hash all of the data at once; the operation ends.
    fn SKF_Digest(hHash: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG, pbHashData: *mut BYTE, pulHashLen: *mut ULONG) {
        let data = ptr::bytes_in(pbData, ulDataLen)?;
        registry::with(|r| {
            let hs = digest_of(r, hHash)?;
            let sm3 = hs.sm3.as_ref().ok_or(SAR_HASHOBJERR)?;
            if ptr::room(pbHashData, pulHashLen, 32)? {
                let out = sm3.clone().chain_update(data).finalize();
                hs.sm3 = None;
                ptr::put_bytes(pbHashData, pulHashLen, &out);
            }
            Ok(())
        })
    }

    /// §7.6.36
    fn SKF_DigestUpdate(hHash: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG) {
        let data = ptr::bytes_in(pbData, ulDataLen)?;
        registry::with(|r| {
            let hs = digest_of(r, hHash)?;
            hs.sm3.as_mut().ok_or(SAR_HASHOBJERR)?.update(data);
            Ok(())
        })
    }

    /// §7.6.37
    fn SKF_DigestFinal(hHash: HANDLE, pHashData: *mut BYTE, pulHashLen: *mut ULONG) {
        registry::with(|r| {
            let hs = digest_of(r, hHash)?;
            if hs.sm3.is_none() {
                return Err(SAR_HASHOBJERR);
            }
            if ptr::room(pHashData, pulHashLen, 32)? {
                if let Some(sm3) = hs.sm3.take() {
                    ptr::put_bytes(pHashData, pulHashLen, &sm3.finalize());
                }
            }
            Ok(())
        })
    }

    /// §7.6.38: SM4 CBC-MAC with the key of `hKey`; the IV from
    /// `pMacParam` (16 bytes, or zeros when `IVLen` is 0), padding as given.
    fn SKF_MacInit(hKey: HANDLE, pMacParam: *mut BlockCipherParam, phMac: *mut HANDLE) {
        let p: BlockCipherParam = ptr::read(pMacParam)?;
        if phMac.is_null() {
            return Err(SAR_INVALIDPARAMERR);
        }
        let pad = match p.PaddingType {
            NO_PADDING => false,
            PKCS5_PADDING => true,
            _ => return Err(SAR_INVALIDPARAMERR),
        };
        let mut iv = [0u8; 16];
        match p.IVLen {
            0 => {}
            16 => iv.copy_from_slice(&p.IV[..16]),
            _ => return Err(SAR_INVALIDPARAMERR),
        }
        let h = registry::with(|r| {
            let (obj, _) = r.live(handle(hKey))?;
            let Kind::Key(k) = &obj.kind else {
                return Err(SAR_INVALIDHANDLEERR);
            };
            let stream = Stream::new(&k.key, Mode::Cbc, true, pad, iv);
            let (dev, insertion, parent) = (obj.dev, obj.insertion, obj.parent);
            Ok(r.add(Obj { dev, insertion, parent, kind: Kind::Mac(MacState { stream, last: iv }) }))
        })?;
        ptr::write(phMac, to_handle(h))
    }

    /// §7.6.39: MAC of all the data at once (16 bytes).
    fn SKF_Mac(hMac: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG, pbMacData: *mut BYTE, pulMacLen: *mut ULONG) {
        let data = ptr::bytes_in(pbData, ulDataLen)?;
        registry::with(|r| {
            let m = mac_of(r, hMac)?;
            if ptr::room(pbMacData, pulMacLen, 16)? {
                mac_feed(m, data)?;
                let mac = mac_finish(m)?;
                ptr::put_bytes(pbMacData, pulMacLen, &mac);
            }
            Ok(())
        })
    }

    /// §7.6.40
    fn SKF_MacUpdate(hMac: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG) {
        let data = ptr::bytes_in(pbData, ulDataLen)?;
        registry::with(|r| mac_feed(mac_of(r, hMac)?, data))
    }

    /// §7.6.41
    fn SKF_MacFinal(hMac: HANDLE, pbMacData: *mut BYTE, pulMacDataLen: *mut ULONG) {
        registry::with(|r| {
            let m = mac_of(r, hMac)?;
            if ptr::room(pbMacData, pulMacDataLen, 16)? {
                let mac = mac_finish(m)?;
                ptr::put_bytes(pbMacData, pulMacDataLen, &mac);
            }
            Ok(())
        })
    }

    /// §7.6.42: close a session-key, hash or MAC handle (works after the
    /// device was pulled).
    fn SKF_CloseHandle(hHandle: HANDLE) {
        registry::with(|r| match r.objects.get(&handle(hHandle)) {
            Some(Obj { kind: Kind::Key(_) | Kind::Hash(_) | Kind::Mac(_), .. }) => {
                r.close(handle(hHandle));
                Ok(())
            }
            _ => Err(SAR_INVALIDHANDLEERR),
        })
    }
}

fn ext_key(blob: &EccPrivateKeyBlob) -> Result<Sm2Key, Sar> {
    if blob.BitLen != 256 {
        return Err(SAR_INVALIDPARAMERR);
    }
    let d = Zeroizing::new(ptr::right32(&blob.PrivateKey)?);
    Sm2Key::from_bytes(&d[..]).map_err(|_| SAR_INVALIDPARAMERR)
}

/// # Safety
/// As `SKF_ECCVerify`'s pointers.
unsafe fn verify(
    h_dev: DEVHANDLE,
    pub_blob: *mut EccPublicKeyBlob,
    data: *mut BYTE,
    len: ULONG,
    sig: *mut EccSignatureBlob,
) -> Result<(), Sar> {
    // SAFETY: the caller's pointers, per the standard.
    let (p, e, rs) = unsafe {
        (
            point_of(&ptr::read(pub_blob)?)?,
            e32(ptr::bytes_in(data, len)?)?,
            rs_of(&ptr::read(sig)?)?,
        )
    };
    registry::with(|r| dev_of(r, h_dev))?;
    if p.verify_e(&e, &rs) {
        Ok(())
    } else {
        Err(SAR_FAIL)
    }
}
