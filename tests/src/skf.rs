//! Helpers for the SKF tests: `libukey_skf_sim.so` loaded with
//! `libloading` through declarations that are NOT the library's own (the
//! structs of the third-party `skf-api` crate, the function types written
//! here from GM/T 0016-2012), each scenario in a process of its own, and
//! conversions between SKF blobs and what OpenSSL reads and writes.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use skf_api::native::types::{
    BlockCipherParam, DeviceInfo, ECCCipherBlob, ECCPrivateKeyBlob, ECCPublicKeyBlob,
    ECCSignatureBlob, EnvelopedKeyBlob, FileAttribute,
};

pub type H = *mut c_void;
pub type U = u32;

/// Result codes and identifiers, from the standard (GM/T 0016-2012
/// appendix A, GM/T 0006).
pub mod code {
    pub const SAR_OK: u32 = 0;
    pub const SAR_FAIL: u32 = 0x0A00_0001;
    pub const SAR_NOTSUPPORTYETERR: u32 = 0x0A00_0003;
    pub const SAR_FILEERR: u32 = 0x0A00_0004;
    pub const SAR_INVALIDHANDLEERR: u32 = 0x0A00_0005;
    pub const SAR_INVALIDPARAMERR: u32 = 0x0A00_0006;
    pub const SAR_NAMELENERR: u32 = 0x0A00_0009;
    pub const SAR_NOTINITIALIZEERR: u32 = 0x0A00_000C;
    pub const SAR_TIMEOUTERR: u32 = 0x0A00_000F;
    pub const SAR_INDATALENERR: u32 = 0x0A00_0010;
    pub const SAR_INDATAERR: u32 = 0x0A00_0011;
    pub const SAR_HASHOBJERR: u32 = 0x0A00_0013;
    pub const SAR_HASHNOTEQUALERR: u32 = 0x0A00_001A;
    pub const SAR_KEYNOTFOUNTERR: u32 = 0x0A00_001B;
    pub const SAR_CERTNOTFOUNTERR: u32 = 0x0A00_001C;
    pub const SAR_DECRYPTPADERR: u32 = 0x0A00_001E;
    pub const SAR_BUFFER_TOO_SMALL: u32 = 0x0A00_0020;
    pub const SAR_DEVICE_REMOVED: u32 = 0x0A00_0023;
    pub const SAR_PIN_INCORRECT: u32 = 0x0A00_0024;
    pub const SAR_PIN_LOCKED: u32 = 0x0A00_0025;
    pub const SAR_PIN_LEN_RANGE: u32 = 0x0A00_0027;
    pub const SAR_USER_TYPE_INVALID: u32 = 0x0A00_002A;
    pub const SAR_APPLICATION_EXISTS: u32 = 0x0A00_002C;
    pub const SAR_USER_NOT_LOGGED_IN: u32 = 0x0A00_002D;
    pub const SAR_APPLICATION_NOT_EXISTS: u32 = 0x0A00_002E;
    pub const SAR_FILE_ALREADY_EXIST: u32 = 0x0A00_002F;
    pub const SAR_FILE_NOT_EXIST: u32 = 0x0A00_0031;
    pub const SGD_SM2_1: u32 = 0x0002_0200;
    pub const SGD_SM3: u32 = 0x0000_0001;
    pub const SGD_SM4_ECB: u32 = 0x0000_0401;
    pub const SGD_SM4_CBC: u32 = 0x0000_0402;
    pub const SGD_SM4_MAC: u32 = 0x0000_0410;
    pub const ADMIN_TYPE: u32 = 0;
    pub const USER_TYPE: u32 = 1;
    pub const SECURE_USER_ACCOUNT: u32 = 0x10;
    pub const SECURE_ANYONE_ACCOUNT: u32 = 0xFF;
}

macro_rules! skf_functions {
    ($($name:ident: fn($($t:ty),* $(,)?);)*) => {
        /// The library's functions, resolved by name.
        #[allow(non_snake_case)]
        pub struct Api {
            $(pub $name: unsafe extern "C" fn($($t),*) -> U,)*
            _lib: libloading::Library,
        }

        impl Api {
            /// Every SKF function name the standard defines.
            pub const NAMES: &'static [&'static str] = &[$(concat!("SKF_", stringify!($name))),*];

            #[allow(non_snake_case)]
            pub fn load(path: &Path) -> Self {
                // SAFETY: loading our own test library; its initialisers are Rust's.
                let lib = unsafe { libloading::Library::new(path) }.expect("load the SKF library");
                $(
                    // SAFETY: the symbol has the standard's signature written above;
                    // the pointer is used only while `_lib` keeps the library loaded.
                    let $name = unsafe {
                        *lib.get::<unsafe extern "C" fn($($t),*) -> U>(
                            concat!("SKF_", stringify!($name), "\0").as_bytes(),
                        )
                        .expect(concat!("SKF_", stringify!($name)))
                    };
                )*
                Api { $($name,)* _lib: lib }
            }
        }
    };
}

skf_functions! {
    WaitForDevEvent: fn(*mut u8, *mut U, *mut U);
    CancelWaitForDevEvent: fn();
    EnumDev: fn(i32, *mut u8, *mut U);
    ConnectDev: fn(*const u8, *mut H);
    DisConnectDev: fn(H);
    GetDevState: fn(*const u8, *mut U);
    SetLabel: fn(H, *const u8);
    GetDevInfo: fn(H, *mut DeviceInfo);
    LockDev: fn(H, U);
    UnlockDev: fn(H);
    Transmit: fn(H, *const u8, U, *mut u8, *mut U);
    ChangeDevAuthKey: fn(H, *const u8, U);
    DevAuth: fn(H, *const u8, U);
    ChangePIN: fn(H, U, *const u8, *const u8, *mut U);
    GetPINInfo: fn(H, U, *mut U, *mut U, *mut i32);
    VerifyPIN: fn(H, U, *const u8, *mut U);
    UnblockPIN: fn(H, *const u8, *const u8, *mut U);
    ClearSecureState: fn(H);
    CreateApplication: fn(H, *const u8, *const u8, U, *const u8, U, U, *mut H);
    EnumApplication: fn(H, *mut u8, *mut U);
    DeleteApplication: fn(H, *const u8);
    OpenApplication: fn(H, *const u8, *mut H);
    CloseApplication: fn(H);
    CreateFile: fn(H, *const u8, U, U, U);
    DeleteFile: fn(H, *const u8);
    EnumFiles: fn(H, *mut u8, *mut U);
    GetFileInfo: fn(H, *const u8, *mut FileAttribute);
    ReadFile: fn(H, *const u8, U, U, *mut u8, *mut U);
    WriteFile: fn(H, *const u8, U, *const u8, U);
    CreateContainer: fn(H, *const u8, *mut H);
    DeleteContainer: fn(H, *const u8);
    OpenContainer: fn(H, *const u8, *mut H);
    CloseContainer: fn(H);
    EnumContainer: fn(H, *mut u8, *mut U);
    GetContainerType: fn(H, *mut U);
    ImportCertificate: fn(H, i32, *const u8, U);
    ExportCertificate: fn(H, i32, *mut u8, *mut U);
    GenRandom: fn(H, *mut u8, U);
    GenExtRSAKey: fn(H, U, *mut c_void);
    GenRSAKeyPair: fn(H, U, *mut c_void);
    ImportRSAKeyPair: fn(H, U, *const u8, U, *const u8, U);
    RSASignData: fn(H, *const u8, U, *mut u8, *mut U);
    RSAVerify: fn(H, *const c_void, *const u8, U, *const u8, U);
    RSAExportSessionKey: fn(H, U, *const c_void, *mut u8, *mut U, *mut H);
    ExtRSAPubKeyOperation: fn(H, *const c_void, *const u8, U, *mut u8, *mut U);
    ExtRSAPriKeyOperation: fn(H, *const c_void, *const u8, U, *mut u8, *mut U);
    GenECCKeyPair: fn(H, U, *mut ECCPublicKeyBlob);
    ImportECCKeyPair: fn(H, *const u8);
    ECCSignData: fn(H, *const u8, U, *mut ECCSignatureBlob);
    ECCVerify: fn(H, *const ECCPublicKeyBlob, *const u8, U, *const ECCSignatureBlob);
    ECCExportSessionKey: fn(H, U, *const ECCPublicKeyBlob, *mut u8, *mut H);
    ExtECCEncrypt: fn(H, *const ECCPublicKeyBlob, *const u8, U, *mut u8);
    ExtECCDecrypt: fn(H, *const ECCPrivateKeyBlob, *const u8, *mut u8, *mut U);
    ExtECCSign: fn(H, *const ECCPrivateKeyBlob, *const u8, U, *mut ECCSignatureBlob);
    ExtECCVerify: fn(H, *const ECCPublicKeyBlob, *const u8, U, *const ECCSignatureBlob);
    GenerateAgreementDataWithECC: fn(H, U, *mut ECCPublicKeyBlob, *const u8, U, *mut H);
    GenerateAgreementDataAndKeyWithECC: fn(H, U, *const ECCPublicKeyBlob, *const ECCPublicKeyBlob, *mut ECCPublicKeyBlob, *const u8, U, *const u8, U, *mut H);
    GenerateKeyWithECC: fn(H, *const ECCPublicKeyBlob, *const ECCPublicKeyBlob, *const u8, U, *mut H);
    ExportPublicKey: fn(H, i32, *mut u8, *mut U);
    ImportSessionKey: fn(H, U, *const u8, U, *mut H);
    SetSymmKey: fn(H, *const u8, U, *mut H);
    EncryptInit: fn(H, BlockCipherParam);
    Encrypt: fn(H, *const u8, U, *mut u8, *mut U);
    EncryptUpdate: fn(H, *const u8, U, *mut u8, *mut U);
    EncryptFinal: fn(H, *mut u8, *mut U);
    DecryptInit: fn(H, BlockCipherParam);
    Decrypt: fn(H, *const u8, U, *mut u8, *mut U);
    DecryptUpdate: fn(H, *const u8, U, *mut u8, *mut U);
    DecryptFinal: fn(H, *mut u8, *mut U);
    DigestInit: fn(H, U, *const ECCPublicKeyBlob, *const u8, U, *mut H);
    Digest: fn(H, *const u8, U, *mut u8, *mut U);
    DigestUpdate: fn(H, *const u8, U);
    DigestFinal: fn(H, *mut u8, *mut U);
    MacInit: fn(H, *const BlockCipherParam, *mut H);
    Mac: fn(H, *const u8, U, *mut u8, *mut U);
    MacUpdate: fn(H, *const u8, U);
    MacFinal: fn(H, *mut u8, *mut U);
    CloseHandle: fn(H);
}

/// Call an SKF function: `skf!(api.EnumDev(1, p, &mut n))`.
#[macro_export]
macro_rules! skf {
    ($api:ident . $f:ident ( $($a:expr),* $(,)? )) => {{
        // SAFETY: the arguments follow the standard's contract for this
        // function, or deliberately break it (NULLs, bad handles, short
        // lengths) to check the library answers with a SAR code.
        unsafe { ($api.$f)($($a),*) }
    }};
}

/// The built library.
pub fn library() -> PathBuf {
    let p = crate::release_dir().join("libukey_skf_sim.so");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --release --workspace` first",
        p.display()
    );
    p
}

/// A NUL-terminated C string.
pub fn c(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Split a double-NUL-terminated name list.
pub fn names(list: &[u8]) -> Vec<String> {
    assert!(
        list.ends_with(&[0, 0]) || list == [0],
        "{list:?} must end with a double NUL"
    );
    list.split(|&b| b == 0)
        .take_while(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// Run `body` in a process of its own (this test binary, re-run for just
/// `test`) with `UKEY_SKF_SIM` listing `<dir>/<stem>.json` for each stem:
/// the library reads it once per process. `setup` runs first, in this
/// process, in the scenario's directory.
pub fn isolated(test: &str, stems: &[&str], setup: impl FnOnce(&Path), body: impl FnOnce(&Path)) {
    if let Some(dir) = std::env::var_os("UKEY_SKF_TEST_DIR") {
        body(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let list = std::env::join_paths(stems.iter().map(|s| dir.path().join(format!("{s}.json"))))
        .expect("paths");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("UKEY_SKF_TEST_DIR", dir.path())
        .env("UKEY_SKF_SIM", list)
        .output()
        .expect("run the scenario");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "scenario {test} failed:\n{text}"
    );
}

/// `ukey-sim skf init --state <dir>/<stem>.json` with `args`.
pub fn init(dir: &Path, stem: &str, args: &[&str]) -> PathBuf {
    let state = dir.join(format!("{stem}.json"));
    crate::run_ok(
        Command::new(crate::bin("ukey-sim"))
            .args(["skf", "init", "--force", "--state"])
            .arg(&state)
            .args(args),
    );
    state
}

/// `ukey-sim skf control --state S <cmd...>`.
pub fn control(state: &Path, cmd: &[&str]) {
    crate::run_ok(
        Command::new(crate::bin("ukey-sim"))
            .args(["skf", "control", "--state"])
            .arg(state)
            .args(cmd),
    );
}

/// Run openssl with `args` in `dir`; its stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    crate::run_ok(Command::new("openssl").current_dir(dir).args(args)).stdout
}

/// Whether openssl succeeds.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn right32(field: &[u8; 64]) -> &[u8] {
    assert!(
        field[..32].iter().all(|&b| b == 0),
        "value must be right-aligned"
    );
    &field[32..]
}

/// 04‖x‖y of an ECCPUBLICKEYBLOB.
pub fn point(b: &ECCPublicKeyBlob) -> Vec<u8> {
    assert_eq!({ b.bit_len }, 256);
    let mut v = vec![4u8];
    v.extend_from_slice(right32(&{ b.x_coordinate }));
    v.extend_from_slice(right32(&{ b.y_coordinate }));
    v
}

/// An ECCPUBLICKEYBLOB for 04‖x‖y.
pub fn blob_of_point(p: &[u8]) -> ECCPublicKeyBlob {
    assert_eq!(p.len(), 65);
    let mut x = [0u8; 64];
    let mut y = [0u8; 64];
    x[32..].copy_from_slice(&p[1..33]);
    y[32..].copy_from_slice(&p[33..]);
    ECCPublicKeyBlob {
        bit_len: 256,
        x_coordinate: x,
        y_coordinate: y,
    }
}

/// An SM2 SubjectPublicKeyInfo (id-ecPublicKey, sm2p256v1) as PEM.
pub fn spki_pem(point: &[u8]) -> String {
    let mut der = hex::decode("3059301306072a8648ce3d020106082a811ccf5501822d034200").expect("hex");
    der.extend_from_slice(point);
    der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &der).expect("pem")
}

fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=127 => vec![n as u8],
        128..=255 => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn der_tlv(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(v.len()));
    out.extend_from_slice(v);
    out
}

fn der_uint(b: &[u8]) -> Vec<u8> {
    let mut b = b;
    while b.len() > 1 && b[0] == 0 {
        b = &b[1..];
    }
    let mut v = Vec::new();
    if b[0] & 0x80 != 0 {
        v.push(0);
    }
    v.extend_from_slice(b);
    der_tlv(0x02, &v)
}

/// An ECCSIGNATUREBLOB as DER `SEQUENCE { r, s }` (what OpenSSL verifies).
pub fn sig_der(s: &ECCSignatureBlob) -> Vec<u8> {
    let mut body = der_uint(right32(&{ s.r }));
    body.extend(der_uint(right32(&{ s.s })));
    der_tlv(0x30, &body)
}

/// Parse a DER TLV: (tag, value, rest).
fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = b[0];
    let (len, hdr) = match b[1] {
        n @ 0..=127 => (n as usize, 2),
        0x81 => (b[2] as usize, 3),
        0x82 => (((b[2] as usize) << 8) | b[3] as usize, 4),
        n => panic!("length form {n:#x}"),
    };
    (tag, &b[hdr..hdr + len], &b[hdr + len..])
}

fn int32(v: &[u8]) -> [u8; 32] {
    let v = if v.len() == 33 { &v[1..] } else { v };
    let mut out = [0u8; 32];
    out[32 - v.len()..].copy_from_slice(v);
    out
}

/// OpenSSL's SM2 cipher text (`SEQUENCE { x, y, hash, c2 }`, GM/T 0009)
/// as the bytes of an ECCCIPHERBLOB (C1 right-aligned, C3, CipherLen, C2).
pub fn cipher_blob_from_openssl(der: &[u8]) -> Vec<u8> {
    let (tag, seq, _) = tlv(der);
    assert_eq!(tag, 0x30);
    let (_, x, rest) = tlv(seq);
    let (_, y, rest) = tlv(rest);
    let (_, hash, rest) = tlv(rest);
    let (_, c2, _) = tlv(rest);
    let mut v = vec![0u8; 164];
    v[32..64].copy_from_slice(&int32(x));
    v[96..128].copy_from_slice(&int32(y));
    v[128..160].copy_from_slice(hash);
    v[160..164].copy_from_slice(&(c2.len() as u32).to_le_bytes());
    v.extend_from_slice(c2);
    v
}

/// The bytes of an ECCCIPHERBLOB (with `CipherLen` bytes of C2) as
/// OpenSSL's SM2 cipher text.
pub fn openssl_cipher_from_blob(b: &[u8]) -> Vec<u8> {
    let n = u32::from_le_bytes([b[160], b[161], b[162], b[163]]) as usize;
    let mut body = der_uint(&b[32..64]);
    body.extend(der_uint(&b[96..128]));
    body.extend(der_tlv(0x04, &b[128..160]));
    body.extend(der_tlv(0x04, &b[164..164 + n]));
    der_tlv(0x30, &body)
}

/// A struct as bytes (only for the plain packed C structs above).
pub fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: T is one of skf-api's packed structs of integers and byte arrays.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
        .to_vec()
}

/// A zeroed plain C struct.
pub fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for skf-api's structs of integers and byte arrays.
    unsafe { std::mem::zeroed() }
}

/// The 32-byte private scalar of an OpenSSL SM2 key file.
pub fn openssl_private_scalar(dir: &Path, key: &str) -> [u8; 32] {
    let text =
        String::from_utf8(openssl(dir, &["pkey", "-in", key, "-noout", "-text"])).expect("utf-8");
    let mut hexs = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("priv:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with(' ') {
                break;
            }
            hexs.extend(line.trim().split(':'));
        }
    }
    int32(&hex::decode(hexs).expect("priv hex"))
}

/// The uncompressed point of an OpenSSL public key file.
pub fn openssl_public_point(dir: &Path, pubkey: &str) -> Vec<u8> {
    let der = openssl(dir, &["pkey", "-pubin", "-in", pubkey, "-outform", "DER"]);
    der[der.len() - 65..].to_vec()
}
