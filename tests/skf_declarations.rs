//! Our GM/T 0016 declarations (`ukey-skf-sys`, which issue 18's loader of
//! vendor SKF libraries uses) against an independent set, the `skf-api`
//! crate's: every struct's size and field offsets, every result code.

use skf_api::native::{error as theirs_err, types as theirs};
use std::mem::{offset_of, size_of};
use ukey_skf_sys as ours;

#[test]
fn struct_layouts_agree_with_skf_api() {
    assert_eq!(size_of::<ours::Version>(), size_of::<theirs::Version>());
    assert_eq!(size_of::<ours::DevInfo>(), size_of::<theirs::DeviceInfo>());
    assert_eq!(
        offset_of!(ours::DevInfo, AlgSymCap),
        offset_of!(theirs::DeviceInfo, alg_sym_cap)
    );
    assert_eq!(
        offset_of!(ours::DevInfo, DevAuthAlgId),
        offset_of!(theirs::DeviceInfo, dev_auth_alg_id)
    );
    assert_eq!(
        offset_of!(ours::DevInfo, MaxBufferSize),
        offset_of!(theirs::DeviceInfo, max_buffer_size)
    );
    assert_eq!(
        size_of::<ours::EccPublicKeyBlob>(),
        size_of::<theirs::ECCPublicKeyBlob>()
    );
    assert_eq!(
        size_of::<ours::EccPrivateKeyBlob>(),
        size_of::<theirs::ECCPrivateKeyBlob>()
    );
    assert_eq!(
        size_of::<ours::EccCipherBlob>(),
        size_of::<theirs::ECCCipherBlob>()
    );
    assert_eq!(
        offset_of!(ours::EccCipherBlob, CipherLen),
        offset_of!(theirs::ECCCipherBlob, cipher_len)
    );
    assert_eq!(
        offset_of!(ours::EccCipherBlob, Cipher),
        offset_of!(theirs::ECCCipherBlob, cipher)
    );
    assert_eq!(
        size_of::<ours::EccSignatureBlob>(),
        size_of::<theirs::ECCSignatureBlob>()
    );
    assert_eq!(
        size_of::<ours::BlockCipherParam>(),
        size_of::<theirs::BlockCipherParam>()
    );
    assert_eq!(
        size_of::<ours::EnvelopedKeyBlob>(),
        size_of::<theirs::EnvelopedKeyBlob>()
    );
    assert_eq!(
        offset_of!(ours::EnvelopedKeyBlob, ECCCipherBlob),
        offset_of!(theirs::EnvelopedKeyBlob, ecc_cipher_blob)
    );
    assert_eq!(
        size_of::<ours::FileAttribute>(),
        size_of::<theirs::FileAttribute>()
    );
    assert_eq!(
        size_of::<ours::RsaPrivateKeyBlob>(),
        size_of::<theirs::RSAPrivateKeyBlob>()
    );
    // The one difference: skf-api puts a 2-byte VERSION after BitLen in
    // RSAPUBLICKEYBLOB; the standard and GmSSL's skf.h have none.
    assert_eq!(size_of::<ours::RsaPublicKeyBlob>(), 268);
    assert_eq!(size_of::<theirs::RSAPublicKeyBlob>(), 268 + 2);
}

#[test]
fn result_codes_agree_with_skf_api() {
    let pairs = [
        (ours::SAR_OK, theirs_err::SAR_OK),
        (ours::SAR_FAIL, theirs_err::SAR_FAIL),
        (ours::SAR_UNKNOWNERR, theirs_err::SAR_UNKNOWNERR),
        (ours::SAR_NOTSUPPORTYETERR, theirs_err::SAR_NOTSUPPORTYETERR),
        (ours::SAR_FILEERR, theirs_err::SAR_FILEERR),
        (ours::SAR_INVALIDHANDLEERR, theirs_err::SAR_INVALIDHANDLEERR),
        (ours::SAR_INVALIDPARAMERR, theirs_err::SAR_INVALIDPARAMERR),
        (ours::SAR_READFILEERR, theirs_err::SAR_READFILEERR),
        (ours::SAR_WRITEFILEERR, theirs_err::SAR_WRITEFILEERR),
        (ours::SAR_NAMELENERR, theirs_err::SAR_NAMELENERR),
        (ours::SAR_KEYUSAGEERR, theirs_err::SAR_KEYUSAGEERR),
        (ours::SAR_MODULUSLENERR, theirs_err::SAR_MODULUSLENERR),
        (ours::SAR_NOTINITIALIZEERR, theirs_err::SAR_NOTINITIALIZEERR),
        (ours::SAR_OBJERR, theirs_err::SAR_OBJERR),
        (ours::SAR_MEMORYERR, theirs_err::SAR_MEMORYERR),
        (ours::SAR_TIMEOUTERR, theirs_err::SAR_TIMEOUTERR),
        (ours::SAR_INDATALENERR, theirs_err::SAR_INDATALENERR),
        (ours::SAR_INDATAERR, theirs_err::SAR_INDATAERR),
        (ours::SAR_GENRANDERR, theirs_err::SAR_GENRANDERR),
        (ours::SAR_HASHOBJERR, theirs_err::SAR_HASHOBJERR),
        (ours::SAR_HASHERR, theirs_err::SAR_HASHERR),
        (ours::SAR_GENRSAKEYERR, theirs_err::SAR_GENRSAKEYERR),
        (ours::SAR_RSAMODULUSLENERR, theirs_err::SAR_RSAMODULUSLENERR),
        (
            ours::SAR_CSPIMPRTPUBKEYERR,
            theirs_err::SAR_CSPIMPRTPUBKEYERR,
        ),
        (ours::SAR_RSAENCERR, theirs_err::SAR_RSAENCERR),
        (ours::SAR_RSADECERR, theirs_err::SAR_RSADECERR),
        (ours::SAR_HASHNOTEQUALERR, theirs_err::SAR_HASHNOTEQUALERR),
        (ours::SAR_KEYNOTFOUNTERR, theirs_err::SAR_KEYNOTFOUNTERR),
        (ours::SAR_CERTNOTFOUNTERR, theirs_err::SAR_CERTNOTFOUNTERR),
        (ours::SAR_NOTEXPORTERR, theirs_err::SAR_NOTEXPORTERR),
        (ours::SAR_DECRYPTPADERR, theirs_err::SAR_DECRYPTPADERR),
        (ours::SAR_MACLENERR, theirs_err::SAR_MACLENERR),
        (ours::SAR_BUFFER_TOO_SMALL, theirs_err::SAR_BUFFER_TOO_SMALL),
        (ours::SAR_KEYINFOTYPEERR, theirs_err::SAR_KEYINFOTYPEERR),
        (ours::SAR_NOT_EVENTERR, theirs_err::SAR_NOT_EVENTERR),
        (ours::SAR_DEVICE_REMOVED, theirs_err::SAR_DEVICE_REMOVED),
        (ours::SAR_PIN_INCORRECT, theirs_err::SAR_PIN_INCORRECT),
        (ours::SAR_PIN_LOCKED, theirs_err::SAR_PIN_LOCKED),
        (ours::SAR_PIN_INVALID, theirs_err::SAR_PIN_INVALID),
        (ours::SAR_PIN_LEN_RANGE, theirs_err::SAR_PIN_LEN_RANGE),
        (
            ours::SAR_USER_ALREADY_LOGGED_IN,
            theirs_err::SAR_USER_ALREADY_LOGGED_IN,
        ),
        (
            ours::SAR_USER_PIN_NOT_INITIALIZED,
            theirs_err::SAR_USER_PIN_NOT_INITIALIZED,
        ),
        (
            ours::SAR_USER_TYPE_INVALID,
            theirs_err::SAR_USER_TYPE_INVALID,
        ),
        (
            ours::SAR_APPLICATION_NAME_INVALID,
            theirs_err::SAR_APPLICATION_NAME_INVALID,
        ),
        (
            ours::SAR_APPLICATION_EXISTS,
            theirs_err::SAR_APPLICATION_EXISTS,
        ),
        (
            ours::SAR_USER_NOT_LOGGED_IN,
            theirs_err::SAR_USER_NOT_LOGGED_IN,
        ),
        (
            ours::SAR_APPLICATION_NOT_EXISTS,
            theirs_err::SAR_APPLICATION_NOT_EXISTS,
        ),
        (
            ours::SAR_FILE_ALREADY_EXIST,
            theirs_err::SAR_FILE_ALREADY_EXIST,
        ),
        (ours::SAR_NO_ROOM, theirs_err::SAR_NO_ROOM),
        (ours::SAR_FILE_NOT_EXIST, theirs_err::SAR_FILE_NOT_EXIST),
        (
            ours::SAR_REACH_MAX_CONTAINER_COUNT,
            theirs_err::SAR_REACH_MAX_CONTAINER_COUNT,
        ),
    ];
    for (a, b) in pairs {
        assert_eq!(a, b, "{}", ours::sar_name(a));
    }
    // skf-api also has SAR_NO_AUTH (0x0A000033), which GM/T 0016-2012 does not define.
    assert_eq!(theirs_err::SAR_NO_AUTH, 0x0A00_0033);
    assert_eq!(ours::fns::NAMES.len(), 78);
}
