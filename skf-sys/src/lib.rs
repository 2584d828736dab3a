//! Declarations of the GM/T 0016-2012 "SKF" C API (智能密码钥匙密码应用接口规范):
//! the base types, the `#pragma pack(1)` structures, the `SAR_*` result
//! codes, the algorithm identifiers of GM/T 0006 that SKF uses, and one
//! function-pointer type per `SKF_*` function (for loading a vendor
//! library with `libloading`, and for checking that a library of ours
//! exports exactly these signatures).
//!
//! Written from the standard (section numbers in the doc lines), checked
//! against GmSSL 3's `src/skf/skf.h` and the `skf-api` crate. Points where
//! real consumers differ from the text and what we chose:
//! * `ULONG` is 32 bits on every platform (GmSSL's default, not C `long`).
//! * `BOOL` is the standard's 32-bit integer. GmSSL declares it as C `long`;
//!   passed by value that makes no difference on x86-64 (the low 32 bits
//!   are what the callee reads), and the only `BOOL *` out-parameter
//!   (`SKF_GetPINInfo`'s `pbDefaultPin`) is written as 4 bytes.
//! * `ECCCIPHERBLOB` ends in `Cipher[1]`, a C89 flexible array: the cipher
//!   text is `CipherLen` bytes starting at `Cipher`, so a blob carrying
//!   `n` bytes occupies `ECC_CIPHER_BLOB_HEADER + n` bytes
//!   ([`EccCipherBlob::size_for`]); `sizeof` is 165.
//! * `RSAPUBLICKEYBLOB` has no version field (the `skf-api` crate adds a
//!   2-byte `VERSION` after `BitLen`; GmSSL and the standard do not).
//! * `SGD_SM2_1/2/3` follow GM/T 0006 (0x00020200 / 0x00020400 /
//!   0x00020800, as GmSSL); some SKF headers number the signature scheme
//!   0x00020100, which is `SGD_SM2` here.

#![no_std]
#![allow(non_camel_case_types, non_snake_case)]

use core::ffi::{c_char, c_void};

pub type BYTE = u8;
pub type CHAR = c_char;
pub type UINT = u32;
pub type ULONG = u32;
pub type LONG = i32;
pub type DWORD = u32;
pub type BOOL = i32;
pub type LPSTR = *mut c_char;
pub type HANDLE = *mut c_void;
pub type DEVHANDLE = HANDLE;
pub type HAPPLICATION = HANDLE;
pub type HCONTAINER = HANDLE;

pub const TRUE: BOOL = 1;
pub const FALSE: BOOL = 0;

/// `ulPINType` values (§7.2.4).
pub const ADMIN_TYPE: ULONG = 0;
pub const USER_TYPE: ULONG = 1;

/// Access rights of files and applications (§6.4).
pub const SECURE_NEVER_ACCOUNT: ULONG = 0x0000_0000;
pub const SECURE_ADM_ACCOUNT: ULONG = 0x0000_0001;
pub const SECURE_USER_ACCOUNT: ULONG = 0x0000_0010;
pub const SECURE_ANYONE_ACCOUNT: ULONG = 0x0000_00FF;

/// `SKF_GetDevState` results (§7.1.7).
pub const DEV_ABSENT_STATE: ULONG = 0x0000_0000;
pub const DEV_PRESENT_STATE: ULONG = 0x0000_0001;
pub const DEV_UNKNOW_STATE: ULONG = 0x0000_0002;

/// `SKF_WaitForDevEvent` events (§7.1.2).
pub const DEV_EVENT_INSERTED: ULONG = 1;
pub const DEV_EVENT_REMOVED: ULONG = 2;

/// `SKF_LockDev` timeout meaning "wait forever".
pub const DEV_LOCK_FOREVER: ULONG = 0xFFFF_FFFF;

/// `SKF_GetContainerType` results (§7.5.7).
pub const CONTAINER_TYPE_EMPTY: ULONG = 0;
pub const CONTAINER_TYPE_RSA: ULONG = 1;
pub const CONTAINER_TYPE_ECC: ULONG = 2;

/// `BLOCKCIPHERPARAM.PaddingType`.
pub const NO_PADDING: ULONG = 0;
pub const PKCS5_PADDING: ULONG = 1;

/// `ENVELOPEDKEYBLOB.Version`.
pub const ENVELOPEDKEYBLOB_VERSION: ULONG = 1;

pub const MAX_RSA_MODULUS_LEN: usize = 256;
pub const MAX_RSA_EXPONENT_LEN: usize = 4;
pub const ECC_MAX_XCOORDINATE_BITS_LEN: usize = 512;
pub const ECC_MAX_YCOORDINATE_BITS_LEN: usize = 512;
pub const ECC_MAX_MODULUS_BITS_LEN: usize = 512;
pub const MAX_IV_LEN: usize = 32;
pub const MAX_FILE_NAME_SIZE: usize = 32;
pub const MAX_CONTAINER_NAME_SIZE: usize = 64;

// Algorithm identifiers (GM/T 0006-2012, used by GM/T 0016 appendix A).
pub const SGD_ECB: ULONG = 0x01;
pub const SGD_CBC: ULONG = 0x02;
pub const SGD_CFB: ULONG = 0x04;
pub const SGD_OFB: ULONG = 0x08;
pub const SGD_MAC: ULONG = 0x10;
pub const SGD_SM1: ULONG = 0x0000_0100;
pub const SGD_SSF33: ULONG = 0x0000_0200;
pub const SGD_SM4: ULONG = 0x0000_0400;
pub const SGD_SM1_ECB: ULONG = SGD_SM1 | SGD_ECB;
pub const SGD_SM1_CBC: ULONG = SGD_SM1 | SGD_CBC;
pub const SGD_SSF33_ECB: ULONG = SGD_SSF33 | SGD_ECB;
pub const SGD_SSF33_CBC: ULONG = SGD_SSF33 | SGD_CBC;
pub const SGD_SM4_ECB: ULONG = SGD_SM4 | SGD_ECB;
pub const SGD_SM4_CBC: ULONG = SGD_SM4 | SGD_CBC;
pub const SGD_SM4_CFB: ULONG = SGD_SM4 | SGD_CFB;
pub const SGD_SM4_OFB: ULONG = SGD_SM4 | SGD_OFB;
pub const SGD_SM4_MAC: ULONG = SGD_SM4 | SGD_MAC;
pub const SGD_RSA: ULONG = 0x0001_0000;
pub const SGD_SM2: ULONG = 0x0002_0100;
/// SM2 signature.
pub const SGD_SM2_1: ULONG = 0x0002_0200;
/// SM2 key exchange.
pub const SGD_SM2_2: ULONG = 0x0002_0400;
/// SM2 encryption.
pub const SGD_SM2_3: ULONG = 0x0002_0800;
pub const SGD_SM3: ULONG = 0x0000_0001;
pub const SGD_SHA1: ULONG = 0x0000_0002;
pub const SGD_SHA256: ULONG = 0x0000_0004;

/// The default SM2 user ID for Z (GM/T 0009 §10, GB/T 35276).
pub const SM2_DEFAULT_ID: &[u8] = b"1234567812345678";

/// Z of an SM2 public key (GB/T 32918.2 §5.5): SM3(ENTL‖ID‖a‖b‖xG‖yG‖xA‖yA),
/// the value every SM2 signature over a message starts from (e = SM3(Z‖M)).
/// `None` for an ID longer than ENTL's 16 bits can say.
#[cfg(feature = "z")]
pub fn sm2_z(public: &sm2::PublicKey, id: &[u8]) -> Option<[u8; 32]> {
    use sm2::elliptic_curve::sec1::ToEncodedPoint;
    use sm3::{Digest, Sm3};
    /// sm2p256v1's a and b (GB/T 32918.5).
    const CURVE_A: [u8; 32] = [
        0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFC,
    ];
    const CURVE_B: [u8; 32] = [
        0x28, 0xE9, 0xFA, 0x9E, 0x9D, 0x9F, 0x5E, 0x34, 0x4D, 0x5A, 0x9E, 0x4B, 0xCF, 0x65, 0x09,
        0xA7, 0xF3, 0x97, 0x89, 0xF5, 0x15, 0xAB, 0x8F, 0x92, 0xDD, 0xBC, 0xBD, 0x41, 0x4D, 0x94,
        0x0E, 0x93,
    ];
    let entl = u16::try_from(id.len().checked_mul(8)?).ok()?;
    let g = sm2::AffinePoint::GENERATOR.to_encoded_point(false);
    let a = public.to_encoded_point(false);
    Some(
        Sm3::new()
            .chain_update(entl.to_be_bytes())
            .chain_update(id)
            .chain_update(CURVE_A)
            .chain_update(CURVE_B)
            .chain_update(&g.as_bytes()[1..])
            .chain_update(&a.as_bytes()[1..])
            .finalize()
            .into(),
    )
}

/// Result codes (appendix A, 错误代码定义).
pub const SAR_OK: ULONG = 0x0000_0000;
pub const SAR_FAIL: ULONG = 0x0A00_0001;
pub const SAR_UNKNOWNERR: ULONG = 0x0A00_0002;
pub const SAR_NOTSUPPORTYETERR: ULONG = 0x0A00_0003;
pub const SAR_FILEERR: ULONG = 0x0A00_0004;
pub const SAR_INVALIDHANDLEERR: ULONG = 0x0A00_0005;
pub const SAR_INVALIDPARAMERR: ULONG = 0x0A00_0006;
pub const SAR_READFILEERR: ULONG = 0x0A00_0007;
pub const SAR_WRITEFILEERR: ULONG = 0x0A00_0008;
pub const SAR_NAMELENERR: ULONG = 0x0A00_0009;
pub const SAR_KEYUSAGEERR: ULONG = 0x0A00_000A;
pub const SAR_MODULUSLENERR: ULONG = 0x0A00_000B;
pub const SAR_NOTINITIALIZEERR: ULONG = 0x0A00_000C;
pub const SAR_OBJERR: ULONG = 0x0A00_000D;
pub const SAR_MEMORYERR: ULONG = 0x0A00_000E;
pub const SAR_TIMEOUTERR: ULONG = 0x0A00_000F;
pub const SAR_INDATALENERR: ULONG = 0x0A00_0010;
pub const SAR_INDATAERR: ULONG = 0x0A00_0011;
pub const SAR_GENRANDERR: ULONG = 0x0A00_0012;
pub const SAR_HASHOBJERR: ULONG = 0x0A00_0013;
pub const SAR_HASHERR: ULONG = 0x0A00_0014;
pub const SAR_GENRSAKEYERR: ULONG = 0x0A00_0015;
pub const SAR_RSAMODULUSLENERR: ULONG = 0x0A00_0016;
pub const SAR_CSPIMPRTPUBKEYERR: ULONG = 0x0A00_0017;
pub const SAR_RSAENCERR: ULONG = 0x0A00_0018;
pub const SAR_RSADECERR: ULONG = 0x0A00_0019;
pub const SAR_HASHNOTEQUALERR: ULONG = 0x0A00_001A;
pub const SAR_KEYNOTFOUNTERR: ULONG = 0x0A00_001B;
pub const SAR_CERTNOTFOUNTERR: ULONG = 0x0A00_001C;
pub const SAR_NOTEXPORTERR: ULONG = 0x0A00_001D;
pub const SAR_DECRYPTPADERR: ULONG = 0x0A00_001E;
pub const SAR_MACLENERR: ULONG = 0x0A00_001F;
pub const SAR_BUFFER_TOO_SMALL: ULONG = 0x0A00_0020;
pub const SAR_KEYINFOTYPEERR: ULONG = 0x0A00_0021;
pub const SAR_NOT_EVENTERR: ULONG = 0x0A00_0022;
pub const SAR_DEVICE_REMOVED: ULONG = 0x0A00_0023;
pub const SAR_PIN_INCORRECT: ULONG = 0x0A00_0024;
pub const SAR_PIN_LOCKED: ULONG = 0x0A00_0025;
pub const SAR_PIN_INVALID: ULONG = 0x0A00_0026;
pub const SAR_PIN_LEN_RANGE: ULONG = 0x0A00_0027;
pub const SAR_USER_ALREADY_LOGGED_IN: ULONG = 0x0A00_0028;
pub const SAR_USER_PIN_NOT_INITIALIZED: ULONG = 0x0A00_0029;
pub const SAR_USER_TYPE_INVALID: ULONG = 0x0A00_002A;
pub const SAR_APPLICATION_NAME_INVALID: ULONG = 0x0A00_002B;
pub const SAR_APPLICATION_EXISTS: ULONG = 0x0A00_002C;
pub const SAR_USER_NOT_LOGGED_IN: ULONG = 0x0A00_002D;
pub const SAR_APPLICATION_NOT_EXISTS: ULONG = 0x0A00_002E;
pub const SAR_FILE_ALREADY_EXIST: ULONG = 0x0A00_002F;
pub const SAR_NO_ROOM: ULONG = 0x0A00_0030;
pub const SAR_FILE_NOT_EXIST: ULONG = 0x0A00_0031;
pub const SAR_REACH_MAX_CONTAINER_COUNT: ULONG = 0x0A00_0032;

/// The standard's name of a result code, for messages.
pub fn sar_name(code: ULONG) -> &'static str {
    match code {
        SAR_OK => "SAR_OK",
        SAR_FAIL => "SAR_FAIL",
        SAR_UNKNOWNERR => "SAR_UNKNOWNERR",
        SAR_NOTSUPPORTYETERR => "SAR_NOTSUPPORTYETERR",
        SAR_FILEERR => "SAR_FILEERR",
        SAR_INVALIDHANDLEERR => "SAR_INVALIDHANDLEERR",
        SAR_INVALIDPARAMERR => "SAR_INVALIDPARAMERR",
        SAR_READFILEERR => "SAR_READFILEERR",
        SAR_WRITEFILEERR => "SAR_WRITEFILEERR",
        SAR_NAMELENERR => "SAR_NAMELENERR",
        SAR_KEYUSAGEERR => "SAR_KEYUSAGEERR",
        SAR_MODULUSLENERR => "SAR_MODULUSLENERR",
        SAR_NOTINITIALIZEERR => "SAR_NOTINITIALIZEERR",
        SAR_OBJERR => "SAR_OBJERR",
        SAR_MEMORYERR => "SAR_MEMORYERR",
        SAR_TIMEOUTERR => "SAR_TIMEOUTERR",
        SAR_INDATALENERR => "SAR_INDATALENERR",
        SAR_INDATAERR => "SAR_INDATAERR",
        SAR_GENRANDERR => "SAR_GENRANDERR",
        SAR_HASHOBJERR => "SAR_HASHOBJERR",
        SAR_HASHERR => "SAR_HASHERR",
        SAR_GENRSAKEYERR => "SAR_GENRSAKEYERR",
        SAR_RSAMODULUSLENERR => "SAR_RSAMODULUSLENERR",
        SAR_CSPIMPRTPUBKEYERR => "SAR_CSPIMPRTPUBKEYERR",
        SAR_RSAENCERR => "SAR_RSAENCERR",
        SAR_RSADECERR => "SAR_RSADECERR",
        SAR_HASHNOTEQUALERR => "SAR_HASHNOTEQUALERR",
        SAR_KEYNOTFOUNTERR => "SAR_KEYNOTFOUNTERR",
        SAR_CERTNOTFOUNTERR => "SAR_CERTNOTFOUNTERR",
        SAR_NOTEXPORTERR => "SAR_NOTEXPORTERR",
        SAR_DECRYPTPADERR => "SAR_DECRYPTPADERR",
        SAR_MACLENERR => "SAR_MACLENERR",
        SAR_BUFFER_TOO_SMALL => "SAR_BUFFER_TOO_SMALL",
        SAR_KEYINFOTYPEERR => "SAR_KEYINFOTYPEERR",
        SAR_NOT_EVENTERR => "SAR_NOT_EVENTERR",
        SAR_DEVICE_REMOVED => "SAR_DEVICE_REMOVED",
        SAR_PIN_INCORRECT => "SAR_PIN_INCORRECT",
        SAR_PIN_LOCKED => "SAR_PIN_LOCKED",
        SAR_PIN_INVALID => "SAR_PIN_INVALID",
        SAR_PIN_LEN_RANGE => "SAR_PIN_LEN_RANGE",
        SAR_USER_ALREADY_LOGGED_IN => "SAR_USER_ALREADY_LOGGED_IN",
        SAR_USER_PIN_NOT_INITIALIZED => "SAR_USER_PIN_NOT_INITIALIZED",
        SAR_USER_TYPE_INVALID => "SAR_USER_TYPE_INVALID",
        SAR_APPLICATION_NAME_INVALID => "SAR_APPLICATION_NAME_INVALID",
        SAR_APPLICATION_EXISTS => "SAR_APPLICATION_EXISTS",
        SAR_USER_NOT_LOGGED_IN => "SAR_USER_NOT_LOGGED_IN",
        SAR_APPLICATION_NOT_EXISTS => "SAR_APPLICATION_NOT_EXISTS",
        SAR_FILE_ALREADY_EXIST => "SAR_FILE_ALREADY_EXIST",
        SAR_NO_ROOM => "SAR_NO_ROOM",
        SAR_FILE_NOT_EXIST => "SAR_FILE_NOT_EXIST",
        SAR_REACH_MAX_CONTAINER_COUNT => "SAR_REACH_MAX_CONTAINER_COUNT",
        _ => "unknown SAR code",
    }
}

/// `VERSION` (§6.4).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Version {
    pub major: BYTE,
    pub minor: BYTE,
}

/// `DEVINFO` (§6.4): 294 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct DevInfo {
    pub Version: Version,
    pub Manufacturer: [CHAR; 64],
    pub Issuer: [CHAR; 64],
    pub Label: [CHAR; 32],
    pub SerialNumber: [CHAR; 32],
    pub HWVersion: Version,
    pub FirmwareVersion: Version,
    pub AlgSymCap: ULONG,
    pub AlgAsymCap: ULONG,
    pub AlgHashCap: ULONG,
    pub DevAuthAlgId: ULONG,
    pub TotalSpace: ULONG,
    pub FreeSpace: ULONG,
    pub MaxECCBufferSize: ULONG,
    pub MaxBufferSize: ULONG,
    pub Reserved: [BYTE; 64],
}

/// `RSAPUBLICKEYBLOB` (§6.4).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct RsaPublicKeyBlob {
    pub AlgID: ULONG,
    pub BitLen: ULONG,
    pub Modulus: [BYTE; MAX_RSA_MODULUS_LEN],
    pub PublicExponent: [BYTE; MAX_RSA_EXPONENT_LEN],
}

/// `RSAPRIVATEKEYBLOB` (§6.4).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct RsaPrivateKeyBlob {
    pub AlgID: ULONG,
    pub BitLen: ULONG,
    pub Modulus: [BYTE; MAX_RSA_MODULUS_LEN],
    pub PublicExponent: [BYTE; MAX_RSA_EXPONENT_LEN],
    pub PrivateExponent: [BYTE; MAX_RSA_MODULUS_LEN],
    pub Prime1: [BYTE; MAX_RSA_MODULUS_LEN / 2],
    pub Prime2: [BYTE; MAX_RSA_MODULUS_LEN / 2],
    pub Prime1Exponent: [BYTE; MAX_RSA_MODULUS_LEN / 2],
    pub Prime2Exponent: [BYTE; MAX_RSA_MODULUS_LEN / 2],
    pub Coefficient: [BYTE; MAX_RSA_MODULUS_LEN / 2],
}

/// `ECCPUBLICKEYBLOB` (§6.4): coordinates right-aligned in 64-byte fields.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct EccPublicKeyBlob {
    pub BitLen: ULONG,
    pub XCoordinate: [BYTE; ECC_MAX_XCOORDINATE_BITS_LEN / 8],
    pub YCoordinate: [BYTE; ECC_MAX_YCOORDINATE_BITS_LEN / 8],
}

/// `ECCPRIVATEKEYBLOB` (§6.4): the scalar right-aligned in 64 bytes.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct EccPrivateKeyBlob {
    pub BitLen: ULONG,
    pub PrivateKey: [BYTE; ECC_MAX_MODULUS_BITS_LEN / 8],
}

/// `ECCCIPHERBLOB` (§6.4): C1 (X, Y), C3 (`HASH`), then `CipherLen` bytes
/// of C2 starting at `Cipher` (a flexible array declared with one byte).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct EccCipherBlob {
    pub XCoordinate: [BYTE; ECC_MAX_XCOORDINATE_BITS_LEN / 8],
    pub YCoordinate: [BYTE; ECC_MAX_XCOORDINATE_BITS_LEN / 8],
    pub HASH: [BYTE; 32],
    pub CipherLen: ULONG,
    pub Cipher: [BYTE; 1],
}

/// Bytes of an `ECCCIPHERBLOB` before `Cipher`.
pub const ECC_CIPHER_BLOB_HEADER: usize = 64 + 64 + 32 + 4;

impl EccCipherBlob {
    /// Bytes a blob with `cipher_len` bytes of cipher text occupies
    /// (at least `sizeof(ECCCIPHERBLOB)`).
    pub const fn size_for(cipher_len: usize) -> usize {
        let n = ECC_CIPHER_BLOB_HEADER + cipher_len;
        if n < core::mem::size_of::<EccCipherBlob>() {
            core::mem::size_of::<EccCipherBlob>()
        } else {
            n
        }
    }
}

/// `ECCSIGNATUREBLOB` (§6.4): r and s right-aligned in 64-byte fields.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct EccSignatureBlob {
    pub r: [BYTE; ECC_MAX_XCOORDINATE_BITS_LEN / 8],
    pub s: [BYTE; ECC_MAX_XCOORDINATE_BITS_LEN / 8],
}

/// `BLOCKCIPHERPARAM` (§6.4), passed by value to `SKF_EncryptInit`.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct BlockCipherParam {
    pub IV: [BYTE; MAX_IV_LEN],
    pub IVLen: ULONG,
    pub PaddingType: ULONG,
    pub FeedBitLen: ULONG,
}

/// `ENVELOPEDKEYBLOB` (§6.4): an SM2 key pair protected for import:
/// `cbEncryptedPriKey` is the private key encrypted with a symmetric key
/// (`ulSymmAlgID`, ECB), and `ECCCipherBlob` is that symmetric key
/// encrypted with SM2 to the container's signing public key.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct EnvelopedKeyBlob {
    pub Version: ULONG,
    pub ulSymmAlgID: ULONG,
    pub ulBits: ULONG,
    pub cbEncryptedPriKey: [BYTE; ECC_MAX_MODULUS_BITS_LEN / 8],
    pub PubKey: EccPublicKeyBlob,
    pub ECCCipherBlob: EccCipherBlob,
}

/// Offset of `ECCCipherBlob` in an `ENVELOPEDKEYBLOB`.
pub const ENVELOPED_CIPHER_OFFSET: usize = core::mem::offset_of!(EnvelopedKeyBlob, ECCCipherBlob);

/// `FILEATTRIBUTE` (§6.4).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct FileAttribute {
    pub FileName: [CHAR; MAX_FILE_NAME_SIZE],
    pub FileSize: ULONG,
    pub ReadRights: ULONG,
    pub WriteRights: ULONG,
}

// The binary layout real consumers (GmSSL, vendor headers) assume.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Version>() == 2);
    assert!(size_of::<DevInfo>() == 294);
    assert!(offset_of!(DevInfo, Label) == 130);
    assert!(offset_of!(DevInfo, SerialNumber) == 162);
    assert!(offset_of!(DevInfo, AlgSymCap) == 198);
    assert!(offset_of!(DevInfo, DevAuthAlgId) == 210);
    assert!(offset_of!(DevInfo, Reserved) == 230);
    assert!(size_of::<RsaPublicKeyBlob>() == 268);
    assert!(size_of::<RsaPrivateKeyBlob>() == 1164);
    assert!(size_of::<EccPublicKeyBlob>() == 132);
    assert!(size_of::<EccPrivateKeyBlob>() == 68);
    assert!(size_of::<EccCipherBlob>() == 165);
    assert!(offset_of!(EccCipherBlob, HASH) == 128);
    assert!(offset_of!(EccCipherBlob, CipherLen) == 160);
    assert!(offset_of!(EccCipherBlob, Cipher) == ECC_CIPHER_BLOB_HEADER);
    assert!(size_of::<EccSignatureBlob>() == 128);
    assert!(size_of::<BlockCipherParam>() == 44);
    assert!(size_of::<EnvelopedKeyBlob>() == 373);
    assert!(offset_of!(EnvelopedKeyBlob, PubKey) == 76);
    assert!(ENVELOPED_CIPHER_OFFSET == 208);
    assert!(size_of::<FileAttribute>() == 44);
};

/// One function-pointer type per SKF function, with the standard's
/// parameter types (section of GM/T 0016-2012 in each doc line).
pub mod fns {
    use super::*;

    macro_rules! skf_fn_types {
        ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {
            $($(#[$doc])* pub type $name = unsafe extern "C" fn($($arg: $ty),*) -> ULONG;)*
            /// Every function name, as exported.
            pub const NAMES: &[&str] = &[$(stringify!($name)),*];
        };
    }

    skf_fn_types! {
        /// §7.1.2
        SKF_WaitForDevEvent(szDevName: LPSTR, pulDevNameLen: *mut ULONG, pulEvent: *mut ULONG);
        /// §7.1.3
        SKF_CancelWaitForDevEvent();
        /// §7.1.4
        SKF_EnumDev(bPresent: BOOL, szNameList: LPSTR, pulSize: *mut ULONG);
        /// §7.1.5
        SKF_ConnectDev(szName: LPSTR, phDev: *mut DEVHANDLE);
        /// §7.1.6
        SKF_DisConnectDev(hDev: DEVHANDLE);
        /// §7.1.7
        SKF_GetDevState(szDevName: LPSTR, pulDevState: *mut ULONG);
        /// §7.1.8
        SKF_SetLabel(hDev: DEVHANDLE, szLabel: LPSTR);
        /// §7.1.9
        SKF_GetDevInfo(hDev: DEVHANDLE, pDevInfo: *mut DevInfo);
        /// §7.1.10
        SKF_LockDev(hDev: DEVHANDLE, ulTimeOut: ULONG);
        /// §7.1.11
        SKF_UnlockDev(hDev: DEVHANDLE);
        /// §7.1.12
        SKF_Transmit(hDev: DEVHANDLE, pbCommand: *mut BYTE, ulCommandLen: ULONG, pbData: *mut BYTE, pulDataLen: *mut ULONG);
        /// §7.2.2
        SKF_ChangeDevAuthKey(hDev: DEVHANDLE, pbKeyValue: *mut BYTE, ulKeyLen: ULONG);
        /// §7.2.3
        SKF_DevAuth(hDev: DEVHANDLE, pbAuthData: *mut BYTE, ulLen: ULONG);
        /// §7.2.4
        SKF_ChangePIN(hApplication: HAPPLICATION, ulPINType: ULONG, szOldPin: LPSTR, szNewPin: LPSTR, pulRetryCount: *mut ULONG);
        /// §7.2.5
        SKF_GetPINInfo(hApplication: HAPPLICATION, ulPINType: ULONG, pulMaxRetryCount: *mut ULONG, pulRemainRetryCount: *mut ULONG, pbDefaultPin: *mut BOOL);
        /// §7.2.6
        SKF_VerifyPIN(hApplication: HAPPLICATION, ulPINType: ULONG, szPIN: LPSTR, pulRetryCount: *mut ULONG);
        /// §7.2.7
        SKF_UnblockPIN(hApplication: HAPPLICATION, szAdminPIN: LPSTR, szNewUserPIN: LPSTR, pulRetryCount: *mut ULONG);
        /// §7.2.8
        SKF_ClearSecureState(hApplication: HAPPLICATION);
        /// §7.3.2
        SKF_CreateApplication(hDev: DEVHANDLE, szAppName: LPSTR, szAdminPin: LPSTR, dwAdminPinRetryCount: DWORD, szUserPin: LPSTR, dwUserPinRetryCount: DWORD, dwCreateFileRights: DWORD, phApplication: *mut HAPPLICATION);
        /// §7.3.3
        SKF_EnumApplication(hDev: DEVHANDLE, szAppName: LPSTR, pulSize: *mut ULONG);
        /// §7.3.4
        SKF_DeleteApplication(hDev: DEVHANDLE, szAppName: LPSTR);
        /// §7.3.5
        SKF_OpenApplication(hDev: DEVHANDLE, szAppName: LPSTR, phApplication: *mut HAPPLICATION);
        /// §7.3.6
        SKF_CloseApplication(hApplication: HAPPLICATION);
        /// §7.4.2
        SKF_CreateFile(hApplication: HAPPLICATION, szFileName: LPSTR, ulFileSize: ULONG, ulReadRights: ULONG, ulWriteRights: ULONG);
        /// §7.4.3
        SKF_DeleteFile(hApplication: HAPPLICATION, szFileName: LPSTR);
        /// §7.4.4
        SKF_EnumFiles(hApplication: HAPPLICATION, szFileList: LPSTR, pulSize: *mut ULONG);
        /// §7.4.5
        SKF_GetFileInfo(hApplication: HAPPLICATION, szFileName: LPSTR, pFileInfo: *mut FileAttribute);
        /// §7.4.6
        SKF_ReadFile(hApplication: HAPPLICATION, szFileName: LPSTR, ulOffset: ULONG, ulSize: ULONG, pbOutData: *mut BYTE, pulOutLen: *mut ULONG);
        /// §7.4.7
        SKF_WriteFile(hApplication: HAPPLICATION, szFileName: LPSTR, ulOffset: ULONG, pbData: *mut BYTE, ulSize: ULONG);
        /// §7.5.2
        SKF_CreateContainer(hApplication: HAPPLICATION, szContainerName: LPSTR, phContainer: *mut HCONTAINER);
        /// §7.5.3
        SKF_DeleteContainer(hApplication: HAPPLICATION, szContainerName: LPSTR);
        /// §7.5.4
        SKF_OpenContainer(hApplication: HAPPLICATION, szContainerName: LPSTR, phContainer: *mut HCONTAINER);
        /// §7.5.5
        SKF_CloseContainer(hContainer: HCONTAINER);
        /// §7.5.6
        SKF_EnumContainer(hApplication: HAPPLICATION, szContainerName: LPSTR, pulSize: *mut ULONG);
        /// §7.5.7
        SKF_GetContainerType(hContainer: HCONTAINER, pulContainerType: *mut ULONG);
        /// §7.5.8
        SKF_ImportCertificate(hContainer: HCONTAINER, bSignFlag: BOOL, pbCert: *mut BYTE, ulCertLen: ULONG);
        /// §7.5.9
        SKF_ExportCertificate(hContainer: HCONTAINER, bSignFlag: BOOL, pbCert: *mut BYTE, pulCertLen: *mut ULONG);
        /// §7.6.2
        SKF_GenRandom(hDev: DEVHANDLE, pbRandom: *mut BYTE, ulRandomLen: ULONG);
        /// §7.6.3
        SKF_GenExtRSAKey(hDev: DEVHANDLE, ulBitsLen: ULONG, pBlob: *mut RsaPrivateKeyBlob);
        /// §7.6.4
        SKF_GenRSAKeyPair(hContainer: HCONTAINER, ulBitsLen: ULONG, pBlob: *mut RsaPublicKeyBlob);
        /// §7.6.5
        SKF_ImportRSAKeyPair(hContainer: HCONTAINER, ulSymAlgId: ULONG, pbWrappedKey: *mut BYTE, ulWrappedKeyLen: ULONG, pbEncryptedData: *mut BYTE, ulEncryptedDataLen: ULONG);
        /// §7.6.6
        SKF_RSASignData(hContainer: HCONTAINER, pbData: *mut BYTE, ulDataLen: ULONG, pbSignature: *mut BYTE, pulSignLen: *mut ULONG);
        /// §7.6.7
        SKF_RSAVerify(hDev: DEVHANDLE, pRSAPubKeyBlob: *mut RsaPublicKeyBlob, pbData: *mut BYTE, ulDataLen: ULONG, pbSignature: *mut BYTE, ulSignLen: ULONG);
        /// §7.6.8
        SKF_RSAExportSessionKey(hContainer: HCONTAINER, ulAlgId: ULONG, pPubKey: *mut RsaPublicKeyBlob, pbData: *mut BYTE, pulDataLen: *mut ULONG, phSessionKey: *mut HANDLE);
        /// §7.6.9
        SKF_ExtRSAPubKeyOperation(hDev: DEVHANDLE, pRSAPubKeyBlob: *mut RsaPublicKeyBlob, pbInput: *mut BYTE, ulInputLen: ULONG, pbOutput: *mut BYTE, pulOutputLen: *mut ULONG);
        /// §7.6.10
        SKF_ExtRSAPriKeyOperation(hDev: DEVHANDLE, pRSAPriKeyBlob: *mut RsaPrivateKeyBlob, pbInput: *mut BYTE, ulInputLen: ULONG, pbOutput: *mut BYTE, pulOutputLen: *mut ULONG);
        /// §7.6.11
        SKF_GenECCKeyPair(hContainer: HCONTAINER, ulAlgId: ULONG, pBlob: *mut EccPublicKeyBlob);
        /// §7.6.12
        SKF_ImportECCKeyPair(hContainer: HCONTAINER, pEnvelopedKeyBlob: *mut EnvelopedKeyBlob);
        /// §7.6.13
        SKF_ECCSignData(hContainer: HCONTAINER, pbDigest: *mut BYTE, ulDigestLen: ULONG, pSignature: *mut EccSignatureBlob);
        /// §7.6.14
        SKF_ECCVerify(hDev: DEVHANDLE, pECCPubKeyBlob: *mut EccPublicKeyBlob, pbData: *mut BYTE, ulDataLen: ULONG, pSignature: *mut EccSignatureBlob);
        /// §7.6.15
        SKF_ECCExportSessionKey(hContainer: HCONTAINER, ulAlgId: ULONG, pPubKey: *mut EccPublicKeyBlob, pData: *mut EccCipherBlob, phSessionKey: *mut HANDLE);
        /// §7.6.16
        SKF_ExtECCEncrypt(hDev: DEVHANDLE, pECCPubKeyBlob: *mut EccPublicKeyBlob, pbPlainText: *mut BYTE, ulPlainTextLen: ULONG, pCipherText: *mut EccCipherBlob);
        /// §7.6.17
        SKF_ExtECCDecrypt(hDev: DEVHANDLE, pECCPriKeyBlob: *mut EccPrivateKeyBlob, pCipherText: *mut EccCipherBlob, pbPlainText: *mut BYTE, pulPlainTextLen: *mut ULONG);
        /// §7.6.18
        SKF_ExtECCSign(hDev: DEVHANDLE, pECCPriKeyBlob: *mut EccPrivateKeyBlob, pbData: *mut BYTE, ulDataLen: ULONG, pSignature: *mut EccSignatureBlob);
        /// §7.6.19
        SKF_ExtECCVerify(hDev: DEVHANDLE, pECCPubKeyBlob: *mut EccPublicKeyBlob, pbData: *mut BYTE, ulDataLen: ULONG, pSignature: *mut EccSignatureBlob);
        /// §7.6.20
        SKF_GenerateAgreementDataWithECC(hContainer: HCONTAINER, ulAlgId: ULONG, pTempECCPubKeyBlob: *mut EccPublicKeyBlob, pbID: *mut BYTE, ulIDLen: ULONG, phAgreementHandle: *mut HANDLE);
        /// §7.6.21
        SKF_GenerateAgreementDataAndKeyWithECC(hContainer: HANDLE, ulAlgId: ULONG, pSponsorECCPubKeyBlob: *mut EccPublicKeyBlob, pSponsorTempECCPubKeyBlob: *mut EccPublicKeyBlob, pTempECCPubKeyBlob: *mut EccPublicKeyBlob, pbID: *mut BYTE, ulIDLen: ULONG, pbSponsorID: *mut BYTE, ulSponsorIDLen: ULONG, phKeyHandle: *mut HANDLE);
        /// §7.6.22
        SKF_GenerateKeyWithECC(hAgreementHandle: HANDLE, pECCPubKeyBlob: *mut EccPublicKeyBlob, pTempECCPubKeyBlob: *mut EccPublicKeyBlob, pbID: *mut BYTE, ulIDLen: ULONG, phKeyHandle: *mut HANDLE);
        /// §7.6.23
        SKF_ExportPublicKey(hContainer: HCONTAINER, bSignFlag: BOOL, pbBlob: *mut BYTE, pulBlobLen: *mut ULONG);
        /// §7.6.24
        SKF_ImportSessionKey(hContainer: HCONTAINER, ulAlgId: ULONG, pbWrapedData: *mut BYTE, ulWrapedLen: ULONG, phKey: *mut HANDLE);
        /// §7.6.25
        SKF_SetSymmKey(hDev: DEVHANDLE, pbKey: *mut BYTE, ulAlgID: ULONG, phKey: *mut HANDLE);
        /// §7.6.26
        SKF_EncryptInit(hKey: HANDLE, EncryptParam: BlockCipherParam);
        /// §7.6.27
        SKF_Encrypt(hKey: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG, pbEncryptedData: *mut BYTE, pulEncryptedLen: *mut ULONG);
        /// §7.6.28
        SKF_EncryptUpdate(hKey: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG, pbEncryptedData: *mut BYTE, pulEncryptedLen: *mut ULONG);
        /// §7.6.29
        SKF_EncryptFinal(hKey: HANDLE, pbEncryptedData: *mut BYTE, pulEncryptedDataLen: *mut ULONG);
        /// §7.6.30
        SKF_DecryptInit(hKey: HANDLE, DecryptParam: BlockCipherParam);
        /// §7.6.31
        SKF_Decrypt(hKey: HANDLE, pbEncryptedData: *mut BYTE, ulEncryptedLen: ULONG, pbData: *mut BYTE, pulDataLen: *mut ULONG);
        /// §7.6.32
        SKF_DecryptUpdate(hKey: HANDLE, pbEncryptedData: *mut BYTE, ulEncryptedLen: ULONG, pbData: *mut BYTE, pulDataLen: *mut ULONG);
        /// §7.6.33
        SKF_DecryptFinal(hKey: HANDLE, pbDecryptedData: *mut BYTE, pulDecryptedDataLen: *mut ULONG);
        /// §7.6.34
        SKF_DigestInit(hDev: DEVHANDLE, ulAlgID: ULONG, pPubKey: *mut EccPublicKeyBlob, pbID: *mut BYTE, ulIDLen: ULONG, phHash: *mut HANDLE);
        /// §7.6.35
        SKF_Digest(hHash: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG, pbHashData: *mut BYTE, pulHashLen: *mut ULONG);
        /// §7.6.36
        SKF_DigestUpdate(hHash: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG);
        /// §7.6.37
        SKF_DigestFinal(hHash: HANDLE, pHashData: *mut BYTE, pulHashLen: *mut ULONG);
        /// §7.6.38
        SKF_MacInit(hKey: HANDLE, pMacParam: *mut BlockCipherParam, phMac: *mut HANDLE);
        /// §7.6.39
        SKF_Mac(hMac: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG, pbMacData: *mut BYTE, pulMacLen: *mut ULONG);
        /// §7.6.40
        SKF_MacUpdate(hMac: HANDLE, pbData: *mut BYTE, ulDataLen: ULONG);
        /// §7.6.41
        SKF_MacFinal(hMac: HANDLE, pbMacData: *mut BYTE, pulMacDataLen: *mut ULONG);
        /// §7.6.42
        SKF_CloseHandle(hHandle: HANDLE);
    }
}
