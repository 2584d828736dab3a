//! The client against a fake vendor library: a table of functions written
//! here, misbehaving on purpose. Devices: `good` (standard answers),
//! `wide` (writes every ULONG/BOOL out-parameter as 64 bits), `hostile`
//! (lengths, names, points and signatures that break the contract),
//! `gone` (pulled after connecting).

use crate::*;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use ukey_skf_sys::*;

const GOOD: usize = 1;
const GONE: usize = 2;
const WIDE: usize = 3;
const HOSTILE: usize = 4;
/// Like `good`; only the concurrency test uses it.
const BUSY: usize = 5;
const APP: usize = 0x100;
const CONTAINER: usize = 0x200;

fn dev_of(h: HANDLE) -> usize {
    h as usize & 0xff
}

/// Write a ULONG out-parameter, 64 bits wide for the `wide` device.
///
/// # Safety
/// `p` points to 8 writable bytes (the client always passes that many).
unsafe fn put(h: HANDLE, p: *mut ULONG, v: u32) {
    if dev_of(h) == WIDE {
        // SAFETY: the caller's contract: 8 bytes.
        unsafe { p.cast::<u64>().write_unaligned(u64::from(v)) }
    } else {
        // SAFETY: at least 4 bytes.
        unsafe { p.write(v) }
    }
}

/// The length-query convention with `data`.
///
/// # Safety
/// `buf` is NULL or holds `*len` bytes; `len` is valid.
unsafe fn answer(buf: *mut u8, len: *mut ULONG, data: &[u8]) -> ULONG {
    // SAFETY: the caller's contract.
    unsafe {
        if !buf.is_null() {
            if (*len as usize) < data.len() {
                *len = data.len() as u32;
                return SAR_BUFFER_TOO_SMALL;
            }
            std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        }
        *len = data.len() as u32;
    }
    SAR_OK
}

unsafe extern "C" fn enum_dev(_: BOOL, buf: LPSTR, len: *mut ULONG) -> ULONG {
    // SAFETY: the client's buffer contract.
    unsafe { answer(buf.cast(), len, b"good\0gone\0wide\0hostile\0\0") }
}

unsafe extern "C" fn connect_dev(name: LPSTR, h: *mut DEVHANDLE) -> ULONG {
    // SAFETY: a NUL-terminated name and a handle out-parameter from the client.
    let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
    let id = match name {
        b"good" => GOOD,
        b"gone" => GONE,
        b"wide" => WIDE,
        b"hostile" => HOSTILE,
        b"busy" => BUSY,
        _ => return SAR_INVALIDPARAMERR,
    };
    // SAFETY: as above.
    unsafe { *h = id as HANDLE };
    SAR_OK
}

unsafe extern "C" fn disconnect(_: DEVHANDLE) -> ULONG {
    SAR_OK
}

unsafe extern "C" fn dev_info(h: DEVHANDLE, info: *mut DevInfo) -> ULONG {
    if dev_of(h) == GONE {
        return SAR_DEVICE_REMOVED;
    }
    // SAFETY: the client passes a DEVINFO-sized (plus slack) buffer.
    let d = unsafe { &mut *info };
    d.Label = [b'L' as _; 32]; // no NUL: the whole field is the label
    let mut sn = [0 as std::ffi::c_char; 32];
    sn[..2].copy_from_slice(&[b'S' as _, b'1' as _]);
    d.SerialNumber = sn;
    d.DevAuthAlgId = SGD_SM4_ECB;
    SAR_OK
}

unsafe extern "C" fn enum_app(h: DEVHANDLE, buf: LPSTR, len: *mut ULONG) -> ULONG {
    // SAFETY: the client's buffer contract.
    unsafe {
        match dev_of(h) {
            GONE => SAR_DEVICE_REMOVED,
            HOSTILE => answer(buf.cast(), len, b"APP"),
            _ => answer(buf.cast(), len, b"APP\0\0"),
        }
    }
}

unsafe extern "C" fn open_app(h: DEVHANDLE, _: LPSTR, ha: *mut HANDLE) -> ULONG {
    // SAFETY: a handle out-parameter.
    unsafe { *ha = (dev_of(h) | APP) as HANDLE };
    SAR_OK
}

unsafe extern "C" fn close(_: HANDLE) -> ULONG {
    SAR_OK
}

unsafe extern "C" fn pin_info(
    h: HANDLE,
    _: ULONG,
    max: *mut ULONG,
    left: *mut ULONG,
    def: *mut BOOL,
) -> ULONG {
    // SAFETY: 8-byte out-parameters from the client.
    unsafe {
        match dev_of(h) {
            HOSTILE => {}
            _ => {
                put(h, max, 10);
                put(h, left, 7);
                put(h, def.cast(), 1);
            }
        }
    }
    SAR_OK
}

unsafe extern "C" fn verify_pin(h: HANDLE, _: ULONG, pin: LPSTR, left: *mut ULONG) -> ULONG {
    // SAFETY: a NUL-terminated PIN.
    if unsafe { std::ffi::CStr::from_ptr(pin) }.to_bytes() == b"123456" {
        return SAR_OK;
    }
    if dev_of(h) != HOSTILE {
        // SAFETY: an 8-byte out-parameter.
        unsafe { put(h, left, 6) };
    }
    SAR_PIN_INCORRECT
}

unsafe extern "C" fn enum_container(h: HANDLE, buf: LPSTR, len: *mut ULONG) -> ULONG {
    if dev_of(h) == HOSTILE {
        // Claims more than the buffer it was given.
        // SAFETY: the length out-parameter.
        unsafe { *len = if buf.is_null() { 4 } else { 400 } };
        return SAR_OK;
    }
    // SAFETY: the client's buffer contract.
    unsafe { answer(buf.cast(), len, b"C1\0\0") }
}

unsafe extern "C" fn open_container(h: HANDLE, _: LPSTR, hc: *mut HANDLE) -> ULONG {
    // SAFETY: a handle out-parameter.
    unsafe { *hc = (dev_of(h) | CONTAINER) as HANDLE };
    SAR_OK
}

unsafe extern "C" fn container_type(h: HANDLE, t: *mut ULONG) -> ULONG {
    // SAFETY: an 8-byte out-parameter.
    unsafe { put(h, t, CONTAINER_TYPE_ECC) };
    SAR_OK
}

fn fixed_key() -> sm2::PublicKey {
    sm2::SecretKey::from_slice(&[7u8; 32]).unwrap().public_key()
}

unsafe extern "C" fn export_public(
    h: HANDLE,
    sign: BOOL,
    buf: *mut BYTE,
    len: *mut ULONG,
) -> ULONG {
    if sign == FALSE {
        return SAR_KEYNOTFOUNTERR;
    }
    let mut blob = crypto::blob_from_point(&fixed_key());
    if dev_of(h) == HOSTILE {
        let mut y = blob.YCoordinate;
        y[63] ^= 1;
        blob.YCoordinate = y;
    }
    // SAFETY: a packed struct viewed as its bytes.
    let bytes =
        unsafe { std::slice::from_raw_parts((&blob as *const EccPublicKeyBlob).cast::<u8>(), 132) };
    // SAFETY: the client's buffer contract.
    unsafe { answer(buf, len, bytes) }
}

unsafe extern "C" fn export_cert(h: HANDLE, sign: BOOL, buf: *mut BYTE, len: *mut ULONG) -> ULONG {
    if sign == FALSE {
        return SAR_CERTNOTFOUNTERR;
    }
    let data: &[u8] = if dev_of(h) == HOSTILE {
        b"\x30\x82\x10\x00garbage"
    } else {
        b"\x30\x03\x02\x01\x05\0\0\0\0\0"
    };
    // SAFETY: the client's buffer contract.
    unsafe { answer(buf, len, data) }
}

static IN_CALL: AtomicBool = AtomicBool::new(false);
static OVERLAPS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn sign(h: HANDLE, _: *mut BYTE, n: ULONG, sig: *mut EccSignatureBlob) -> ULONG {
    if n != 32 {
        return SAR_INDATALENERR;
    }
    // Detect concurrent calls on one device (the client must serialise them).
    if dev_of(h) == BUSY {
        if IN_CALL.swap(true, Ordering::SeqCst) {
            OVERLAPS.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(2));
        IN_CALL.store(false, Ordering::SeqCst);
    }
    let mut r = [0u8; 64];
    if dev_of(h) != HOSTILE {
        r[63] = 1;
    }
    // SAFETY: the client passes a signature blob (plus slack).
    unsafe { (*sig).r = r };
    // SAFETY: as above.
    unsafe { (*sig).s = r };
    SAR_OK
}

static CANCELLED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn wait_event(name: LPSTR, len: *mut ULONG, event: *mut ULONG) -> ULONG {
    while !CANCELLED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: the client's buffer of *len bytes and out-parameters.
    unsafe {
        std::ptr::write_bytes(name.cast::<u8>(), b'x', *len as usize);
        *event = DEV_EVENT_INSERTED;
    }
    SAR_OK
}

unsafe extern "C" fn cancel_wait() -> ULONG {
    CANCELLED.store(true, Ordering::SeqCst);
    SAR_OK
}

fn lookup(name: &str) -> *const c_void {
    match name {
        "SKF_EnumDev" => enum_dev as *const c_void,
        "SKF_ConnectDev" => connect_dev as *const c_void,
        "SKF_DisConnectDev" => disconnect as *const c_void,
        "SKF_GetDevInfo" => dev_info as *const c_void,
        "SKF_EnumApplication" => enum_app as *const c_void,
        "SKF_OpenApplication" => open_app as *const c_void,
        "SKF_CloseApplication" | "SKF_CloseContainer" => close as *const c_void,
        "SKF_GetPINInfo" => pin_info as *const c_void,
        "SKF_VerifyPIN" => verify_pin as *const c_void,
        "SKF_EnumContainer" => enum_container as *const c_void,
        "SKF_OpenContainer" => open_container as *const c_void,
        "SKF_GetContainerType" => container_type as *const c_void,
        "SKF_ExportPublicKey" => export_public as *const c_void,
        "SKF_ExportCertificate" => export_cert as *const c_void,
        "SKF_ECCSignData" => sign as *const c_void,
        "SKF_WaitForDevEvent" => wait_event as *const c_void,
        "SKF_CancelWaitForDevEvent" => cancel_wait as *const c_void,
        _ => std::ptr::null(),
    }
}

fn fake() -> Arc<Library> {
    // SAFETY: every address `lookup` gives is a function above with the
    // standard's signature for that name.
    let f = unsafe { Functions::resolve(lookup) }.expect("all required functions");
    Library::from_functions("fake", f)
}

fn open(lib: &Arc<Library>, dev: &str) -> (Device, Application) {
    let d = lib.connect(&Name::try_from(dev).unwrap()).unwrap();
    let a = d.open_application(&Name::try_from("APP").unwrap()).unwrap();
    (d, a)
}

fn malformed<T: std::fmt::Debug>(r: Result<T>, what: &str) {
    match r {
        Err(Error::Malformed { what: w, .. }) => assert!(w.contains(what), "{w}"),
        other => panic!("expected a malformed answer ({what}), got {other:?}"),
    }
}

#[test]
fn a_missing_required_function_is_named_and_optional_ones_are_capabilities() {
    let without_sign = |n: &str| {
        if n == "SKF_ECCSignData" {
            std::ptr::null()
        } else {
            lookup(n)
        }
    };
    // SAFETY: as in `fake`.
    let resolved = unsafe { Functions::resolve(without_sign) };
    assert_eq!(resolved.err(), Some("SKF_ECCSignData"));
    let lib = fake();
    let caps = lib.capabilities();
    assert!(caps.contains(Capability::WaitForEvent) && caps.contains(Capability::CancelWait));
    for c in [
        Capability::GenerateKey,
        Capability::ImportCertificate,
        Capability::UnblockPin,
        Capability::DevAuth,
        Capability::LockDev,
    ] {
        assert!(!caps.contains(c), "{c:?}");
    }
    let (d, a) = open(&lib, "good");
    let c = a.open_container(&Name::try_from("C1").unwrap()).unwrap();
    assert_eq!(
        c.generate_signing_key().unwrap_err(),
        Error::NotSupported("SM2 key generation")
    );
    assert!(matches!(
        a.unblock_pin(
            &mut Pin::new(b"12345678").unwrap(),
            &mut Pin::new(b"1").unwrap()
        ),
        Err(Error::NotSupported(_))
    ));
    assert!(matches!(
        d.authenticate(&[0; 16]),
        Err(Error::NotSupported(_))
    ));
    assert!(matches!(d.lock(100), Err(Error::NotSupported(_))));
}

#[test]
fn standard_answers_decoded() {
    let lib = fake();
    let names: Vec<String> = lib
        .devices(true)
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["good", "gone", "wide", "hostile"]);
    for dev in ["good", "wide"] {
        let (d, a) = open(&lib, dev);
        let info = d.info().unwrap();
        assert_eq!(info.label, "L".repeat(32));
        assert_eq!(info.serial, "S1");
        assert_eq!(
            a.pin_info(PinKind::User).unwrap(),
            PinInfo {
                max_retries: 10,
                retries_left: 7,
                default_pin: true
            },
            "{dev}"
        );
        assert_eq!(
            a.verify_pin(PinKind::User, &mut Pin::new(b"000000").unwrap()),
            Err(Error::PinIncorrect {
                tries_left: Some(6)
            }),
            "{dev}"
        );
        a.verify_pin(PinKind::User, &mut Pin::new(b"123456").unwrap())
            .unwrap();
        let cs = a.containers().unwrap();
        assert_eq!(cs.len(), 1);
        let c = a.open_container(&cs[0]).unwrap();
        assert_eq!(c.kind().unwrap(), ContainerType::Ecc);
        assert_eq!(c.public_key(KeyUse::Signing).unwrap(), Some(fixed_key()));
        assert_eq!(c.public_key(KeyUse::Encryption).unwrap(), None);
        // Padding after the DER element is dropped.
        assert_eq!(
            c.certificate(KeyUse::Signing).unwrap().unwrap(),
            b"\x30\x03\x02\x01\x05"
        );
        assert_eq!(c.certificate(KeyUse::Encryption).unwrap(), None);
        assert_eq!(c.sign(&[0; 32]).unwrap()[31], 1);
    }
}

#[test]
fn hostile_answers_are_errors() {
    let lib = fake();
    let (d, a) = open(&lib, "hostile");
    malformed(d.applications(), "without its NUL");
    malformed(a.containers(), "400 bytes");
    malformed(a.pin_info(PinKind::User), "not reported");
    assert_eq!(
        a.verify_pin(PinKind::User, &mut Pin::new(b"000000").unwrap()),
        Err(Error::PinIncorrect { tries_left: None })
    );
    let c = a.open_container(&Name::try_from("C1").unwrap()).unwrap();
    malformed(c.public_key(KeyUse::Signing), "not a point");
    malformed(c.certificate(KeyUse::Signing), "not one DER certificate");
    malformed(c.sign(&[0; 32]), "out of range");

    // Device lists: no double NUL, absurd sizes.
    unsafe extern "C" fn no_end(_: BOOL, buf: LPSTR, len: *mut ULONG) -> ULONG {
        // SAFETY: the client's buffer contract.
        unsafe { answer(buf.cast(), len, b"good\0") }
    }
    unsafe extern "C" fn huge(_: BOOL, _: LPSTR, len: *mut ULONG) -> ULONG {
        // SAFETY: the length out-parameter.
        unsafe { *len = 0x7fff_ffff };
        SAR_OK
    }
    let base = *lib.functions();
    let l = Library::from_functions(
        "no-end",
        Functions {
            SKF_EnumDev: no_end,
            ..base
        },
    );
    malformed(l.devices(true), "double NUL");
    let l = Library::from_functions(
        "huge",
        Functions {
            SKF_EnumDev: huge,
            ..base
        },
    );
    malformed(l.devices(true), "announced");
}

#[test]
fn a_pulled_device_is_removed() {
    let lib = fake();
    let d = lib.connect(&Name::try_from("gone").unwrap()).unwrap();
    assert_eq!(d.info(), Err(Error::Removed));
    assert_eq!(d.applications(), Err(Error::Removed));
}

#[test]
fn calls_on_one_device_never_overlap() {
    let lib = fake();
    let (_d, a) = open(&lib, "busy");
    let c = Arc::new(a.open_container(&Name::try_from("C1").unwrap()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    c.sign(&[1; 32]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(OVERLAPS.load(Ordering::SeqCst), 0);
}

#[test]
fn a_wait_blocks_nothing_else_and_its_answer_is_checked() {
    let lib = fake();
    let waiter = {
        let lib = lib.clone();
        std::thread::spawn(move || lib.wait_for_event())
    };
    std::thread::sleep(Duration::from_millis(20));
    // Enumeration, connection and device calls go on during the wait.
    let (d, _a) = open(&lib, "good");
    assert_eq!(lib.devices(true).unwrap().len(), 4);
    assert_eq!(d.info().unwrap().serial, "S1");
    lib.cancel_wait().unwrap();
    // This fake fills the whole name buffer, with no NUL.
    malformed(waiter.join().unwrap(), "without its NUL");
}
