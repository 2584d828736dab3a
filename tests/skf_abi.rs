//! `libukey_skf_sim.so` through `libloading` with declarations independent
//! of the library's own (structs from the third-party `skf-api` crate,
//! function types written from GM/T 0016-2012 in `ukey_tests::skf`): every
//! function, the length-query convention, PINs counting down to a lock
//! and an unblock, wrong handles, NULLs, hot-plug and a pulled device.
//! Each scenario runs in a process of its own (the library reads
//! `UKEY_SKF_SIM` once per process).

use std::path::Path;
use std::ptr::{null, null_mut};
use ukey_tests::skf;
use ukey_tests::skf::code::*;
use ukey_tests::skf::*;

fn api() -> Api {
    Api::load(&library())
}

fn connect(api: &Api, name: &str) -> H {
    let mut h: H = null_mut();
    assert_eq!(skf!(api.ConnectDev(c(name).as_ptr(), &mut h)), SAR_OK);
    assert!(!h.is_null());
    h
}

/// Device authentication as GmSSL's `SKF_OpenDevice` does it: 16 random
/// bytes, SM4-ECB with the authentication key through the token's own
/// SetSymmKey/Encrypt (DEVINFO.DevAuthAlgId), then SKF_DevAuth.
fn dev_auth(api: &Api, h: H, key: &[u8; 16]) -> U {
    let mut info: DeviceInfo = zeroed();
    assert_eq!(skf!(api.GetDevInfo(h, &mut info)), SAR_OK);
    let mut rnd = [0u8; 16];
    assert_eq!(skf!(api.GenRandom(h, rnd.as_mut_ptr(), 16)), SAR_OK);
    let mut hk: H = null_mut();
    assert_eq!(
        skf!(api.SetSymmKey(h, key.as_ptr(), info.dev_auth_alg_id, &mut hk)),
        SAR_OK
    );
    let param: BlockCipherParam = zeroed();
    assert_eq!(skf!(api.EncryptInit(hk, param)), SAR_OK);
    let mut out = [0u8; 16];
    let mut n: U = 16;
    assert_eq!(
        skf!(api.Encrypt(hk, rnd.as_ptr(), 16, out.as_mut_ptr(), &mut n)),
        SAR_OK
    );
    assert_eq!(n, 16);
    assert_eq!(skf!(api.CloseHandle(hk)), SAR_OK);
    skf!(api.DevAuth(h, out.as_ptr(), n))
}

const AUTH_KEY: &[u8; 16] = b"1234567812345678";

fn open_app(api: &Api, h: H, app: &str) -> H {
    let mut ha: H = null_mut();
    assert_eq!(
        skf!(api.OpenApplication(h, c(app).as_ptr(), &mut ha)),
        SAR_OK
    );
    ha
}

fn verify_pin(api: &Api, ha: H, kind: U, pin: &str) -> (U, U) {
    let mut left: U = 0xFFFF;
    let rv = skf!(api.VerifyPIN(ha, kind, c(pin).as_ptr(), &mut left));
    (rv, left)
}

fn pin_info(api: &Api, ha: H, kind: U) -> (U, U, i32) {
    let (mut max, mut left, mut def) = (0u32, 0u32, -1i32);
    assert_eq!(
        skf!(api.GetPINInfo(ha, kind, &mut max, &mut left, &mut def)),
        SAR_OK
    );
    (max, left, def)
}

/// A name list through the length-query convention: NULL gives the size,
/// a buffer one byte short is SAR_BUFFER_TOO_SMALL with the size again.
fn list(f: impl Fn(*mut u8, *mut U) -> U) -> Vec<String> {
    let mut n: U = 0;
    assert_eq!(f(null_mut(), &mut n), SAR_OK);
    assert!(n >= 2);
    let mut short = vec![0u8; n as usize - 1];
    let mut m = n - 1;
    assert_eq!(f(short.as_mut_ptr(), &mut m), SAR_BUFFER_TOO_SMALL);
    assert_eq!(m, n);
    let mut buf = vec![0u8; n as usize];
    let mut m = n;
    assert_eq!(f(buf.as_mut_ptr(), &mut m), SAR_OK);
    assert_eq!(m, n);
    names(&buf)
}

fn state_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("state")).expect("json")
}

#[test]
fn layouts_of_the_independent_declarations_match_and_every_function_is_exported() {
    use std::mem::{offset_of, size_of};
    // skf-api's structs are the independent set; the sizes real consumers assume.
    assert_eq!(size_of::<DeviceInfo>(), 294);
    assert_eq!(offset_of!(DeviceInfo, alg_sym_cap), 198);
    assert_eq!(offset_of!(DeviceInfo, dev_auth_alg_id), 210);
    assert_eq!(size_of::<ECCPublicKeyBlob>(), 132);
    assert_eq!(size_of::<ECCSignatureBlob>(), 128);
    assert_eq!(size_of::<ECCCipherBlob>(), 165);
    assert_eq!(size_of::<EnvelopedKeyBlob>(), 373);
    assert_eq!(size_of::<BlockCipherParam>(), 44);
    assert_eq!(size_of::<FileAttribute>(), 44);
    // Every function of the standard resolves (Api::load fails otherwise).
    let _ = api();
    assert_eq!(Api::NAMES.len(), 78);
}

#[test]
fn device_management_lists_connects_describes_labels_and_locks() {
    isolated(
        "device_management_lists_connects_describes_labels_and_locks",
        &["alpha", "beta", "missing"],
        |dir| {
            init(dir, "alpha", &["--serial", "A-0001"]);
            init(dir, "beta", &[]);
        },
        |dir| {
            let api = api();
            // Present devices only, then every listed one.
            assert_eq!(list(|p, n| skf!(api.EnumDev(1, p, n))), ["alpha", "beta"]);
            assert_eq!(
                list(|p, n| skf!(api.EnumDev(0, p, n))),
                ["alpha", "beta", "missing"]
            );
            let mut st: U = 9;
            assert_eq!(skf!(api.GetDevState(c("alpha").as_ptr(), &mut st)), SAR_OK);
            assert_eq!(st, 1);
            assert_eq!(
                skf!(api.GetDevState(c("missing").as_ptr(), &mut st)),
                SAR_OK
            );
            assert_eq!(st, 0);
            let mut h: H = null_mut();
            assert_eq!(
                skf!(api.ConnectDev(c("missing").as_ptr(), &mut h)),
                SAR_DEVICE_REMOVED
            );
            assert_eq!(
                skf!(api.ConnectDev(c("nope").as_ptr(), &mut h)),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(skf!(api.ConnectDev(null(), &mut h)), SAR_INVALIDPARAMERR);
            assert_eq!(
                skf!(api.ConnectDev(c("alpha").as_ptr(), null_mut())),
                SAR_INVALIDPARAMERR
            );

            let h = connect(&api, "alpha");
            let mut info: DeviceInfo = zeroed();
            assert_eq!(skf!(api.GetDevInfo(h, &mut info)), SAR_OK);
            let raw = bytes_of(&info);
            // DevAuthAlgId (SGD_SM4_ECB) at 210 and AlgSymCap at 198, little-endian.
            assert_eq!(&raw[210..214], &0x401u32.to_le_bytes());
            assert_ne!(
                u32::from_le_bytes(raw[198..202].try_into().unwrap()) & 0x401,
                0
            );
            assert_eq!({ info.alg_hash_cap } & SGD_SM3, SGD_SM3);
            assert_eq!(&{ info.serial_number }[..7], b"A-0001\0");
            assert_eq!(skf!(api.GetDevInfo(h, null_mut())), SAR_INVALIDPARAMERR);

            // A label is written to the device (the state file).
            assert_eq!(skf!(api.SetLabel(h, c("My Key").as_ptr())), SAR_OK);
            assert_eq!(skf!(api.GetDevInfo(h, &mut info)), SAR_OK);
            assert_eq!(&{ info.label }[..7], b"My Key\0");
            assert_eq!(state_json(&dir.join("alpha.json"))["label"], "My Key");
            assert_eq!(
                skf!(api.SetLabel(h, c(&"x".repeat(32)).as_ptr())),
                SAR_NAMELENERR
            );

            // LockDev is re-entrant for its holder; another connection waits.
            let h2 = connect(&api, "alpha");
            assert_eq!(skf!(api.LockDev(h, 0xFFFF_FFFF)), SAR_OK);
            assert_eq!(skf!(api.LockDev(h, 0xFFFF_FFFF)), SAR_OK);
            assert_eq!(skf!(api.UnlockDev(h)), SAR_OK);
            assert_eq!(skf!(api.LockDev(h2, 100)), SAR_TIMEOUTERR);
            assert_eq!(skf!(api.UnlockDev(h)), SAR_OK);
            assert_eq!(skf!(api.LockDev(h2, 100)), SAR_OK);
            // Disconnecting the holder releases its lock.
            assert_eq!(skf!(api.DisConnectDev(h2)), SAR_OK);
            assert_eq!(skf!(api.LockDev(h, 100)), SAR_OK);

            let mut n: U = 16;
            let mut buf = [0u8; 16];
            assert_eq!(
                skf!(api.Transmit(h, [0u8, 0xA4, 4, 0].as_ptr(), 4, buf.as_mut_ptr(), &mut n)),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(skf!(api.DisConnectDev(h)), SAR_OK);
            // Closed, bogus and wrong-kind handles.
            assert_eq!(skf!(api.GetDevInfo(h, &mut info)), SAR_INVALIDHANDLEERR);
            assert_eq!(skf!(api.DisConnectDev(h)), SAR_INVALIDHANDLEERR);
            assert_eq!(
                skf!(api.GetDevInfo(0xDEAD_BEEF as H, &mut info)),
                SAR_INVALIDHANDLEERR
            );
            assert_eq!(
                skf!(api.GetDevInfo(null_mut(), &mut info)),
                SAR_INVALIDHANDLEERR
            );
        },
    );
}

#[test]
fn device_authentication_gates_applications_and_the_key_can_change() {
    isolated(
        "device_authentication_gates_applications_and_the_key_can_change",
        &["tok"],
        |dir| {
            init(dir, "tok", &[]);
        },
        |_| {
            let api = api();
            let h = connect(&api, "tok");
            let mut ha: H = null_mut();
            let create = |ha: &mut H| {
                skf!(api.CreateApplication(
                    h,
                    c("APP").as_ptr(),
                    c("12345678").as_ptr(),
                    10,
                    c("123456").as_ptr(),
                    10,
                    SECURE_ANYONE_ACCOUNT,
                    ha
                ))
            };
            assert_eq!(create(&mut ha), SAR_USER_NOT_LOGGED_IN);
            // No challenge yet, a wrong key, a replayed answer.
            assert_eq!(skf!(api.DevAuth(h, [0u8; 16].as_ptr(), 16)), SAR_FAIL);
            assert_eq!(dev_auth(&api, h, &[0u8; 16]), SAR_FAIL);
            assert_eq!(create(&mut ha), SAR_USER_NOT_LOGGED_IN);
            assert_eq!(dev_auth(&api, h, AUTH_KEY), SAR_OK);
            assert_eq!(create(&mut ha), SAR_OK);
            assert_eq!(create(&mut ha), SAR_APPLICATION_EXISTS);
            assert_eq!(list(|p, n| skf!(api.EnumApplication(h, p, n))), ["APP"]);

            let new_key = *b"abcdefghijklmnop";
            assert_eq!(
                skf!(api.ChangeDevAuthKey(h, new_key.as_ptr(), 15)),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(skf!(api.ChangeDevAuthKey(h, new_key.as_ptr(), 16)), SAR_OK);
            // A new connection starts unauthenticated; the old key fails now.
            assert_eq!(skf!(api.DisConnectDev(h)), SAR_OK);
            let h = connect(&api, "tok");
            assert_eq!(
                skf!(api.DeleteApplication(h, c("APP").as_ptr())),
                SAR_USER_NOT_LOGGED_IN
            );
            assert_eq!(dev_auth(&api, h, AUTH_KEY), SAR_FAIL);
            assert_eq!(dev_auth(&api, h, &new_key), SAR_OK);
            assert_eq!(skf!(api.DeleteApplication(h, c("APP").as_ptr())), SAR_OK);
            assert_eq!(
                skf!(api.DeleteApplication(h, c("APP").as_ptr())),
                SAR_APPLICATION_NOT_EXISTS
            );
            assert_eq!(
                skf!(api.OpenApplication(h, c("APP").as_ptr(), &mut ha)),
                SAR_APPLICATION_NOT_EXISTS
            );
            assert!(list(|p, n| skf!(api.EnumApplication(h, p, n))).is_empty());
        },
    );
}

#[test]
fn wrong_pins_count_down_to_a_lock_and_the_admin_pin_unblocks() {
    isolated(
        "wrong_pins_count_down_to_a_lock_and_the_admin_pin_unblocks",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            let api = api();
            let state = dir.join("demo.json");
            let h = connect(&api, "demo");
            let ha = open_app(&api, h, "UKEY_APP");
            assert_eq!(pin_info(&api, ha, USER_TYPE), (10, 10, 1));
            assert_eq!(pin_info(&api, ha, ADMIN_TYPE), (10, 10, 1));
            // A PIN of the wrong length costs no try.
            assert_eq!(verify_pin(&api, ha, USER_TYPE, "123").0, SAR_PIN_LEN_RANGE);
            assert_eq!(verify_pin(&api, ha, 7, "123456").0, SAR_USER_TYPE_INVALID);
            assert_eq!(pin_info(&api, ha, USER_TYPE).1, 10);
            for left in (1..10).rev() {
                assert_eq!(
                    verify_pin(&api, ha, USER_TYPE, "654321"),
                    (SAR_PIN_INCORRECT, left)
                );
                let saved = &state_json(&state)["applications"]["UKEY_APP"]["user_pin"];
                assert_eq!(saved["remaining"], left, "the counter is on the device");
            }
            assert_eq!(
                verify_pin(&api, ha, USER_TYPE, "654321"),
                (SAR_PIN_LOCKED, 0)
            );
            // Locked: even the right PIN is refused, and costs nothing.
            assert_eq!(
                verify_pin(&api, ha, USER_TYPE, "123456"),
                (SAR_PIN_LOCKED, 0)
            );
            assert_eq!(pin_info(&api, ha, USER_TYPE), (10, 0, 1));
            // A wrong admin PIN spends an admin try; the right one unblocks.
            let mut left: U = 0;
            assert_eq!(
                skf!(api.UnblockPIN(ha, c("87654321").as_ptr(), c("111111").as_ptr(), &mut left)),
                SAR_PIN_INCORRECT
            );
            assert_eq!(left, 9);
            assert_eq!(
                skf!(api.UnblockPIN(ha, c("12345678").as_ptr(), c("11").as_ptr(), &mut left)),
                SAR_PIN_LEN_RANGE
            );
            assert_eq!(pin_info(&api, ha, ADMIN_TYPE).1, 9);
            assert_eq!(
                skf!(api.UnblockPIN(ha, c("12345678").as_ptr(), c("111111").as_ptr(), &mut left)),
                SAR_OK
            );
            assert_eq!(pin_info(&api, ha, ADMIN_TYPE).1, 10);
            assert_eq!(pin_info(&api, ha, USER_TYPE), (10, 10, 0));
            assert_eq!(
                verify_pin(&api, ha, USER_TYPE, "123456").0,
                SAR_PIN_INCORRECT
            );
            assert_eq!(verify_pin(&api, ha, USER_TYPE, "111111").0, SAR_OK);
            assert_eq!(pin_info(&api, ha, USER_TYPE).1, 10);
            // ChangePIN: the old PIN is checked (a wrong one spends a try).
            assert_eq!(
                skf!(api.ChangePIN(
                    ha,
                    USER_TYPE,
                    c("000000").as_ptr(),
                    c("222222").as_ptr(),
                    &mut left
                )),
                SAR_PIN_INCORRECT
            );
            assert_eq!(left, 9);
            assert_eq!(
                skf!(api.ChangePIN(
                    ha,
                    USER_TYPE,
                    c("111111").as_ptr(),
                    c("222222").as_ptr(),
                    &mut left
                )),
                SAR_OK
            );
            assert_eq!(verify_pin(&api, ha, USER_TYPE, "222222").0, SAR_OK);
            // Login state: containers need the user PIN; ClearSecureState forgets it.
            let mut hc: H = null_mut();
            assert_eq!(
                skf!(api.CreateContainer(ha, c("C1").as_ptr(), &mut hc)),
                SAR_OK
            );
            assert_eq!(skf!(api.ClearSecureState(ha)), SAR_OK);
            assert_eq!(
                skf!(api.CreateContainer(ha, c("C2").as_ptr(), &mut hc)),
                SAR_USER_NOT_LOGGED_IN
            );
            assert_eq!(
                skf!(api.DeleteContainer(ha, c("C1").as_ptr())),
                SAR_USER_NOT_LOGGED_IN
            );
            assert_eq!(skf!(api.CloseApplication(ha)), SAR_OK);
            assert_eq!(skf!(api.CloseApplication(ha)), SAR_INVALIDHANDLEERR);
            assert_eq!(
                verify_pin(&api, ha, USER_TYPE, "222222").0,
                SAR_INVALIDHANDLEERR
            );
            // Wrong-kind handles.
            assert_eq!(
                verify_pin(&api, h, USER_TYPE, "222222").0,
                SAR_INVALIDHANDLEERR
            );
            let mut info: DeviceInfo = zeroed();
            assert_eq!(skf!(api.GetDevInfo(ha, &mut info)), SAR_INVALIDHANDLEERR);
            assert_eq!(
                skf!(api.GetPINInfo(h, USER_TYPE, null_mut(), null_mut(), null_mut())),
                SAR_INVALIDPARAMERR
            );
        },
    );
}

#[test]
fn files_follow_their_rights_and_the_length_query_convention() {
    isolated(
        "files_follow_their_rights_and_the_length_query_convention",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |_| {
            let api = api();
            let h = connect(&api, "demo");
            let ha = open_app(&api, h, "UKEY_APP");
            let name = c("notes");
            assert_eq!(
                skf!(api.CreateFile(
                    ha,
                    name.as_ptr(),
                    64,
                    SECURE_USER_ACCOUNT,
                    SECURE_USER_ACCOUNT
                )),
                SAR_OK
            );
            assert_eq!(
                skf!(api.CreateFile(ha, name.as_ptr(), 64, 0xFF, 0xFF)),
                SAR_FILE_ALREADY_EXIST
            );
            assert_eq!(
                skf!(api.CreateFile(ha, c(&"f".repeat(32)).as_ptr(), 1, 0xFF, 0xFF)),
                SAR_NAMELENERR
            );
            assert_eq!(
                skf!(api.CreateFile(ha, c("open").as_ptr(), 8, 0xFF, 0xFF)),
                SAR_OK
            );
            assert_eq!(
                list(|p, n| skf!(api.EnumFiles(ha, p, n))),
                ["notes", "open"]
            );
            let mut fa: FileAttribute = zeroed();
            assert_eq!(skf!(api.GetFileInfo(ha, name.as_ptr(), &mut fa)), SAR_OK);
            assert_eq!(
                ({ fa.file_size }, { fa.read_rights }, { fa.write_rights }),
                (64, 0x10, 0x10)
            );
            assert_eq!(&{ fa.file_name }[..6], b"notes\0");
            assert_eq!(
                skf!(api.GetFileInfo(ha, c("none").as_ptr(), &mut fa)),
                SAR_FILE_NOT_EXIST
            );
            // Rights: the user PIN first.
            let data = b"SKF file data";
            assert_eq!(
                skf!(api.WriteFile(ha, name.as_ptr(), 0, data.as_ptr(), 13)),
                SAR_USER_NOT_LOGGED_IN
            );
            let mut n: U = 64;
            let mut buf = [0u8; 64];
            assert_eq!(
                skf!(api.ReadFile(ha, name.as_ptr(), 0, 64, buf.as_mut_ptr(), &mut n)),
                SAR_USER_NOT_LOGGED_IN
            );
            assert_eq!(
                skf!(api.WriteFile(ha, c("open").as_ptr(), 4, data.as_ptr(), 4)),
                SAR_OK
            );
            assert_eq!(verify_pin(&api, ha, USER_TYPE, "123456").0, SAR_OK);
            assert_eq!(
                skf!(api.WriteFile(ha, name.as_ptr(), 10, data.as_ptr(), 13)),
                SAR_OK
            );
            assert_eq!(
                skf!(api.WriteFile(ha, name.as_ptr(), 60, data.as_ptr(), 13)),
                SAR_INDATALENERR
            );
            assert_eq!(
                skf!(api.WriteFile(ha, name.as_ptr(), 0xFFFF_FFF0, data.as_ptr(), 13)),
                SAR_INDATALENERR
            );
            assert_eq!(
                skf!(api.WriteFile(ha, name.as_ptr(), 0, null(), 13)),
                SAR_INVALIDPARAMERR
            );
            // Length queries: NULL gives the size, short is BUFFER_TOO_SMALL with it.
            let mut n: U = 0;
            assert_eq!(
                skf!(api.ReadFile(ha, name.as_ptr(), 10, 13, null_mut(), &mut n)),
                SAR_OK
            );
            assert_eq!(n, 13);
            let mut n: U = 12;
            assert_eq!(
                skf!(api.ReadFile(ha, name.as_ptr(), 10, 13, buf.as_mut_ptr(), &mut n)),
                SAR_BUFFER_TOO_SMALL
            );
            assert_eq!(n, 13);
            let mut n: U = 64;
            assert_eq!(
                skf!(api.ReadFile(ha, name.as_ptr(), 10, 13, buf.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(&buf[..n as usize], data);
            // Reading past the end gives what there is; beyond it is an error.
            let mut n: U = 64;
            assert_eq!(
                skf!(api.ReadFile(ha, name.as_ptr(), 60, 100, buf.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(n, 4);
            assert_eq!(
                skf!(api.ReadFile(ha, name.as_ptr(), 65, 1, buf.as_mut_ptr(), &mut n)),
                SAR_INDATAERR
            );
            assert_eq!(
                skf!(api.ReadFile(ha, name.as_ptr(), 0, 1, buf.as_mut_ptr(), null_mut())),
                SAR_INVALIDPARAMERR
            );
            let mut n: U = 8;
            assert_eq!(
                skf!(api.ReadFile(ha, c("open").as_ptr(), 0, 8, buf.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(&buf[..8], b"\0\0\0\0SKF ");
            assert_eq!(skf!(api.DeleteFile(ha, name.as_ptr())), SAR_OK);
            assert_eq!(skf!(api.DeleteFile(ha, name.as_ptr())), SAR_FILE_NOT_EXIST);
            assert_eq!(list(|p, n| skf!(api.EnumFiles(ha, p, n))), ["open"]);
        },
    );
}

#[test]
fn containers_keys_and_certificates() {
    isolated(
        "containers_keys_and_certificates",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |_| {
            let api = api();
            let h = connect(&api, "demo");
            let ha = open_app(&api, h, "UKEY_APP");
            assert_eq!(
                list(|p, n| skf!(api.EnumContainer(ha, p, n))),
                ["UKEY_CONTAINER"]
            );
            let mut hc: H = null_mut();
            assert_eq!(
                skf!(api.OpenContainer(ha, c("UKEY_CONTAINER").as_ptr(), &mut hc)),
                SAR_OK
            );
            let mut t: U = 9;
            assert_eq!(skf!(api.GetContainerType(hc, &mut t)), SAR_OK);
            assert_eq!(t, 2, "ECC");
            // Public keys and certificates need no PIN; length queries.
            for sign in [1, 0] {
                let mut n: U = 0;
                assert_eq!(
                    skf!(api.ExportPublicKey(hc, sign, null_mut(), &mut n)),
                    SAR_OK
                );
                assert_eq!(n, 132);
                let mut blob: ECCPublicKeyBlob = zeroed();
                let mut n: U = 131;
                assert_eq!(
                    skf!(api.ExportPublicKey(
                        hc,
                        sign,
                        (&mut blob as *mut ECCPublicKeyBlob).cast(),
                        &mut n
                    )),
                    SAR_BUFFER_TOO_SMALL
                );
                assert_eq!(n, 132);
                assert_eq!(
                    skf!(api.ExportPublicKey(
                        hc,
                        sign,
                        (&mut blob as *mut ECCPublicKeyBlob).cast(),
                        &mut n
                    )),
                    SAR_OK
                );
                assert_eq!(point(&blob).len(), 65);
                let mut n: U = 0;
                assert_eq!(
                    skf!(api.ExportCertificate(hc, sign, null_mut(), &mut n)),
                    SAR_OK
                );
                let mut cert = vec![0u8; n as usize];
                assert_eq!(
                    skf!(api.ExportCertificate(hc, sign, cert.as_mut_ptr(), &mut n)),
                    SAR_OK
                );
                assert_eq!(cert[0], 0x30);
            }
            // Signing needs the user PIN.
            let e = [7u8; 32];
            let mut sig: ECCSignatureBlob = zeroed();
            assert_eq!(
                skf!(api.ECCSignData(hc, e.as_ptr(), 32, &mut sig)),
                SAR_USER_NOT_LOGGED_IN
            );
            assert_eq!(verify_pin(&api, ha, USER_TYPE, "123456").0, SAR_OK);
            assert_eq!(
                skf!(api.ECCSignData(hc, e.as_ptr(), 31, &mut sig)),
                SAR_INDATALENERR
            );
            assert_eq!(
                skf!(api.ECCSignData(hc, e.as_ptr(), 32, null_mut())),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(skf!(api.ECCSignData(hc, e.as_ptr(), 32, &mut sig)), SAR_OK);

            // A new container: empty, then a key made on the token.
            let mut hn: H = null_mut();
            assert_eq!(
                skf!(api.CreateContainer(ha, c("NEW").as_ptr(), &mut hn)),
                SAR_OK
            );
            assert_eq!(
                skf!(api.CreateContainer(ha, c("NEW").as_ptr(), &mut hn)),
                SAR_FILE_ALREADY_EXIST
            );
            assert_eq!(skf!(api.GetContainerType(hn, &mut t)), SAR_OK);
            assert_eq!(t, 0);
            let mut n: U = 132;
            let mut buf = [0u8; 132];
            assert_eq!(
                skf!(api.ExportPublicKey(hn, 1, buf.as_mut_ptr(), &mut n)),
                SAR_KEYNOTFOUNTERR
            );
            assert_eq!(
                skf!(api.ExportCertificate(hn, 1, buf.as_mut_ptr(), &mut n)),
                SAR_CERTNOTFOUNTERR
            );
            assert_eq!(
                skf!(api.ECCSignData(hn, e.as_ptr(), 32, &mut sig)),
                SAR_KEYNOTFOUNTERR
            );
            let mut blob: ECCPublicKeyBlob = zeroed();
            assert_eq!(
                skf!(api.GenECCKeyPair(hn, 0x0001_0000, &mut blob)),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(skf!(api.GenECCKeyPair(hn, SGD_SM2_1, &mut blob)), SAR_OK);
            assert_eq!(skf!(api.GetContainerType(hn, &mut t)), SAR_OK);
            assert_eq!(t, 2);
            let mut n: U = 132;
            assert_eq!(
                skf!(api.ExportPublicKey(hn, 1, buf.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(&buf[..], &bytes_of(&blob)[..]);
            let cert = [0x30u8, 3, 2, 1, 0];
            assert_eq!(skf!(api.ImportCertificate(hn, 0, cert.as_ptr(), 5)), SAR_OK);
            assert_eq!(
                skf!(api.ImportCertificate(hn, 0, [1u8, 2].as_ptr(), 2)),
                SAR_INVALIDPARAMERR
            );
            let mut n: U = 132;
            assert_eq!(
                skf!(api.ExportCertificate(hn, 0, buf.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(&buf[..5], &cert);
            assert_eq!(
                skf!(api.ExportCertificate(hn, 1, buf.as_mut_ptr(), &mut n)),
                SAR_CERTNOTFOUNTERR
            );
            assert_eq!(
                list(|p, n| skf!(api.EnumContainer(ha, p, n))),
                ["NEW", "UKEY_CONTAINER"]
            );
            assert_eq!(skf!(api.CloseContainer(hn)), SAR_OK);
            assert_eq!(skf!(api.CloseContainer(hn)), SAR_INVALIDHANDLEERR);
            assert_eq!(skf!(api.DeleteContainer(ha, c("NEW").as_ptr())), SAR_OK);
            assert_eq!(
                skf!(api.OpenContainer(ha, c("NEW").as_ptr(), &mut hn)),
                SAR_FILE_NOT_EXIST
            );
            // A deleted container's handles are gone.
            assert_eq!(
                skf!(api.DeleteContainer(ha, c("UKEY_CONTAINER").as_ptr())),
                SAR_OK
            );
            assert_eq!(skf!(api.GetContainerType(hc, &mut t)), SAR_INVALIDHANDLEERR);
            // RSA and SM2 key exchange are not implemented.
            let mut hx: H = null_mut();
            assert_eq!(
                skf!(api.GenRSAKeyPair(hc, 2048, null_mut())),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.GenExtRSAKey(h, 2048, null_mut())),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.ImportRSAKeyPair(hc, 0, null(), 0, null(), 0)),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.RSASignData(hc, null(), 0, null_mut(), null_mut())),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.RSAVerify(h, null(), null(), 0, null(), 0)),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.RSAExportSessionKey(hc, 0, null(), null_mut(), null_mut(), &mut hx)),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.ExtRSAPubKeyOperation(h, null(), null(), 0, null_mut(), null_mut())),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.ExtRSAPriKeyOperation(h, null(), null(), 0, null_mut(), null_mut())),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.GenerateAgreementDataWithECC(hc, 0, null_mut(), null(), 0, &mut hx)),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.GenerateAgreementDataAndKeyWithECC(
                    hc,
                    0,
                    null(),
                    null(),
                    null_mut(),
                    null(),
                    0,
                    null(),
                    0,
                    &mut hx
                )),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.GenerateKeyWithECC(hx, null(), null(), null(), 0, &mut hx)),
                SAR_NOTSUPPORTYETERR
            );
        },
    );
}

#[test]
fn sm4_session_keys_digests_and_macs_keep_their_state_across_length_queries() {
    isolated(
        "sm4_session_keys_digests_and_macs_keep_their_state_across_length_queries",
        &["tok"],
        |dir| {
            init(dir, "tok", &[]);
        },
        |_| {
            let api = api();
            let h = connect(&api, "tok");
            let key = [0x11u8; 16];
            let mut hk: H = null_mut();
            assert_eq!(
                skf!(api.SetSymmKey(h, key.as_ptr(), 0x101, &mut hk)),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.SetSymmKey(h, key.as_ptr(), SGD_SM4_CBC, &mut hk)),
                SAR_OK
            );
            let data = [0x42u8; 20];
            let mut n: U = 64;
            let mut out = [0u8; 64];
            assert_eq!(
                skf!(api.Encrypt(hk, data.as_ptr(), 20, out.as_mut_ptr(), &mut n)),
                SAR_NOTINITIALIZEERR
            );
            let mut p: BlockCipherParam = zeroed();
            p.padding_type = 1;
            assert_eq!(
                skf!(api.EncryptInit(hk, p)),
                SAR_INVALIDPARAMERR,
                "CBC without an IV"
            );
            p.iv_len = 16;
            p.iv[..16].copy_from_slice(&[9u8; 16]);
            p.padding_type = 7;
            assert_eq!(skf!(api.EncryptInit(hk, p)), SAR_INVALIDPARAMERR);
            p.padding_type = 1;
            assert_eq!(skf!(api.EncryptInit(hk, p)), SAR_OK);
            let mut n: U = 0;
            assert_eq!(
                skf!(api.Encrypt(hk, data.as_ptr(), 20, null_mut(), &mut n)),
                SAR_OK
            );
            assert_eq!(n, 32);
            let mut n: U = 31;
            assert_eq!(
                skf!(api.Encrypt(hk, data.as_ptr(), 20, out.as_mut_ptr(), &mut n)),
                SAR_BUFFER_TOO_SMALL
            );
            assert_eq!(n, 32);
            assert_eq!(
                skf!(api.Encrypt(hk, data.as_ptr(), 20, out.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(n, 32);
            let whole = out[..32].to_vec();
            // The operation ended.
            assert_eq!(
                skf!(api.Encrypt(hk, data.as_ptr(), 20, out.as_mut_ptr(), &mut n)),
                SAR_NOTINITIALIZEERR
            );
            // In pieces: the same cipher text.
            assert_eq!(skf!(api.EncryptInit(hk, p)), SAR_OK);
            let mut pieces = Vec::new();
            for chunk in data.chunks(7) {
                let mut n: U = 64;
                assert_eq!(
                    skf!(api.EncryptUpdate(
                        hk,
                        chunk.as_ptr(),
                        chunk.len() as U,
                        out.as_mut_ptr(),
                        &mut n
                    )),
                    SAR_OK
                );
                pieces.extend_from_slice(&out[..n as usize]);
            }
            let mut n: U = 0;
            assert_eq!(skf!(api.EncryptFinal(hk, null_mut(), &mut n)), SAR_OK);
            assert_eq!(n, 16);
            assert_eq!(skf!(api.EncryptFinal(hk, out.as_mut_ptr(), &mut n)), SAR_OK);
            pieces.extend_from_slice(&out[..n as usize]);
            assert_eq!(pieces, whole);
            // Decryption, in one go and in pieces; a broken pad.
            assert_eq!(skf!(api.DecryptInit(hk, p)), SAR_OK);
            let mut n: U = 64;
            assert_eq!(
                skf!(api.Decrypt(hk, whole.as_ptr(), 32, out.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(&out[..n as usize], &data);
            assert_eq!(skf!(api.DecryptInit(hk, p)), SAR_OK);
            let mut plain = Vec::new();
            for chunk in whole.chunks(5) {
                let mut n: U = 64;
                assert_eq!(
                    skf!(api.DecryptUpdate(
                        hk,
                        chunk.as_ptr(),
                        chunk.len() as U,
                        out.as_mut_ptr(),
                        &mut n
                    )),
                    SAR_OK
                );
                plain.extend_from_slice(&out[..n as usize]);
            }
            let mut n: U = 64;
            assert_eq!(skf!(api.DecryptFinal(hk, out.as_mut_ptr(), &mut n)), SAR_OK);
            plain.extend_from_slice(&out[..n as usize]);
            assert_eq!(plain, data);
            let mut broken = whole.clone();
            broken[31] ^= 0x5A;
            broken[15] ^= 0x5A;
            assert_eq!(skf!(api.DecryptInit(hk, p)), SAR_OK);
            let mut n: U = 64;
            assert_eq!(
                skf!(api.Decrypt(hk, broken.as_ptr(), 32, out.as_mut_ptr(), &mut n)),
                SAR_DECRYPTPADERR
            );
            // ECB without padding needs whole blocks.
            let mut he: H = null_mut();
            assert_eq!(
                skf!(api.SetSymmKey(h, key.as_ptr(), SGD_SM4_ECB, &mut he)),
                SAR_OK
            );
            assert_eq!(skf!(api.EncryptInit(he, zeroed())), SAR_OK);
            let mut n: U = 64;
            assert_eq!(
                skf!(api.Encrypt(he, data.as_ptr(), 20, out.as_mut_ptr(), &mut n)),
                SAR_INDATALENERR
            );
            assert_eq!(skf!(api.EncryptInit(he, zeroed())), SAR_OK);
            let big = vec![0u8; 4097];
            assert_eq!(
                skf!(api.Encrypt(he, big.as_ptr(), 4097, out.as_mut_ptr(), &mut n)),
                SAR_INDATALENERR
            );
            assert_eq!(skf!(api.CloseHandle(he)), SAR_OK);
            assert_eq!(skf!(api.CloseHandle(he)), SAR_INVALIDHANDLEERR);
            assert_eq!(skf!(api.EncryptInit(he, p)), SAR_INVALIDHANDLEERR);
            assert_eq!(
                skf!(api.CloseHandle(h)),
                SAR_INVALIDHANDLEERR,
                "not a key handle"
            );

            // Digests: one-shot equals update/final; length queries.
            let mut hh: H = null_mut();
            assert_eq!(
                skf!(api.DigestInit(h, 2, null(), null(), 0, &mut hh)),
                SAR_NOTSUPPORTYETERR
            );
            assert_eq!(
                skf!(api.DigestInit(h, SGD_SM3, null(), null(), 0, &mut hh)),
                SAR_OK
            );
            let mut n: U = 0;
            assert_eq!(
                skf!(api.Digest(hh, b"abc".as_ptr(), 3, null_mut(), &mut n)),
                SAR_OK
            );
            assert_eq!(n, 32);
            let mut d1 = [0u8; 32];
            let mut n: U = 31;
            assert_eq!(
                skf!(api.Digest(hh, b"abc".as_ptr(), 3, d1.as_mut_ptr(), &mut n)),
                SAR_BUFFER_TOO_SMALL
            );
            let mut n: U = 32;
            assert_eq!(
                skf!(api.Digest(hh, b"abc".as_ptr(), 3, d1.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            // GB/T 32905 example 1: SM3("abc").
            assert_eq!(
                hex::encode(d1),
                "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
            );
            assert_eq!(
                skf!(api.DigestUpdate(hh, b"x".as_ptr(), 1)),
                SAR_HASHOBJERR,
                "finished"
            );
            assert_eq!(skf!(api.CloseHandle(hh)), SAR_OK);
            assert_eq!(
                skf!(api.DigestInit(h, SGD_SM3, null(), null(), 0, &mut hh)),
                SAR_OK
            );
            assert_eq!(skf!(api.DigestUpdate(hh, b"a".as_ptr(), 1)), SAR_OK);
            assert_eq!(skf!(api.DigestUpdate(hh, b"bc".as_ptr(), 2)), SAR_OK);
            let mut d2 = [0u8; 32];
            let mut n: U = 32;
            assert_eq!(skf!(api.DigestFinal(hh, d2.as_mut_ptr(), &mut n)), SAR_OK);
            assert_eq!(d1, d2);
            assert_eq!(
                skf!(api.DigestFinal(hh, d2.as_mut_ptr(), &mut n)),
                SAR_HASHOBJERR
            );

            // MAC: one-shot equals update/final, 16 bytes.
            let mut hm: H = null_mut();
            let mp: BlockCipherParam = zeroed();
            assert_eq!(skf!(api.MacInit(hk, &mp, &mut hm)), SAR_OK);
            let mut m1 = [0u8; 16];
            let mut n: U = 16;
            assert_eq!(
                skf!(api.Mac(hm, [1u8; 32].as_ptr(), 32, m1.as_mut_ptr(), &mut n)),
                SAR_OK
            );
            assert_eq!(skf!(api.MacInit(hk, &mp, &mut hm)), SAR_OK);
            assert_eq!(skf!(api.MacUpdate(hm, [1u8; 32].as_ptr(), 16)), SAR_OK);
            assert_eq!(skf!(api.MacUpdate(hm, [1u8; 32].as_ptr(), 16)), SAR_OK);
            let mut m2 = [0u8; 16];
            let mut n: U = 16;
            assert_eq!(skf!(api.MacFinal(hm, m2.as_mut_ptr(), &mut n)), SAR_OK);
            assert_eq!(m1, m2);
            assert_eq!(skf!(api.MacInit(hk, &mp, &mut hm)), SAR_OK);
            assert_eq!(skf!(api.MacUpdate(hm, [1u8; 3].as_ptr(), 3)), SAR_OK);
            assert_eq!(
                skf!(api.MacFinal(hm, m2.as_mut_ptr(), &mut n)),
                SAR_INDATALENERR,
                "no padding"
            );
        },
    );
}

#[test]
fn a_pulled_device_answers_device_removed_and_returns_as_a_new_insertion() {
    isolated(
        "a_pulled_device_answers_device_removed_and_returns_as_a_new_insertion",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            let api = api();
            let state = dir.join("demo.json");
            let away = dir.join("away.json");
            let h = connect(&api, "demo");
            let ha = open_app(&api, h, "UKEY_APP");
            assert_eq!(verify_pin(&api, ha, USER_TYPE, "123456").0, SAR_OK);
            // The file goes away: the device is pulled.
            std::fs::rename(&state, &away).unwrap();
            let mut st: U = 9;
            assert_eq!(skf!(api.GetDevState(c("demo").as_ptr(), &mut st)), SAR_OK);
            assert_eq!(st, 0);
            assert!(list(|p, n| skf!(api.EnumDev(1, p, n))).is_empty());
            assert_eq!(list(|p, n| skf!(api.EnumDev(0, p, n))), ["demo"]);
            let mut info: DeviceInfo = zeroed();
            assert_eq!(skf!(api.GetDevInfo(h, &mut info)), SAR_DEVICE_REMOVED);
            assert_eq!(pin_info_rv(&api, ha), SAR_DEVICE_REMOVED);
            // Back in: old handles stay dead, the login is gone.
            std::fs::rename(&away, &state).unwrap();
            assert_eq!(skf!(api.GetDevInfo(h, &mut info)), SAR_DEVICE_REMOVED);
            let h2 = connect(&api, "demo");
            let ha2 = open_app(&api, h2, "UKEY_APP");
            let mut hc: H = null_mut();
            assert_eq!(
                skf!(api.CreateContainer(ha2, c("X").as_ptr(), &mut hc)),
                SAR_USER_NOT_LOGGED_IN
            );
            // Closing dead handles still works.
            assert_eq!(skf!(api.CloseApplication(ha)), SAR_OK);
            assert_eq!(skf!(api.DisConnectDev(h)), SAR_OK);

            // Fault injection: pulled after 2 more calls, until `insert`.
            control(&state, &["remove-after", "2"]);
            assert_eq!(skf!(api.GetDevInfo(h2, &mut info)), SAR_OK);
            assert_eq!(pin_info_rv(&api, ha2), SAR_OK);
            assert_eq!(skf!(api.GetDevInfo(h2, &mut info)), SAR_DEVICE_REMOVED);
            assert_eq!(skf!(api.GetDevState(c("demo").as_ptr(), &mut st)), SAR_OK);
            assert_eq!(st, 0);
            control(&state, &["insert"]);
            assert_eq!(skf!(api.GetDevState(c("demo").as_ptr(), &mut st)), SAR_OK);
            assert_eq!(st, 1);
            let h3 = connect(&api, "demo");
            assert_eq!(skf!(api.GetDevInfo(h3, &mut info)), SAR_OK);
            control(&state, &["remove"]);
            assert_eq!(skf!(api.GetDevInfo(h3, &mut info)), SAR_DEVICE_REMOVED);
        },
    );
}

fn pin_info_rv(api: &Api, ha: H) -> U {
    let (mut a, mut b, mut d) = (0u32, 0u32, 0i32);
    skf!(api.GetPINInfo(ha, USER_TYPE, &mut a, &mut b, &mut d))
}

#[test]
fn wait_for_dev_event_reports_removal_and_insertion_and_cancel_ends_it() {
    isolated(
        "wait_for_dev_event_reports_removal_and_insertion_and_cancel_ends_it",
        &["one", "two"],
        |dir| {
            init(dir, "one", &[]);
        },
        |dir| {
            let api = std::sync::Arc::new(api());
            // The library takes its first look at the devices now.
            assert_eq!(list(|p, n| skf!(api.EnumDev(1, p, n))), ["one"]);
            let wait = |api: &Api| {
                let mut name = [0u8; 64];
                let mut n: U = 64;
                let mut ev: U = 99;
                let rv = skf!(api.WaitForDevEvent(name.as_mut_ptr(), &mut n, &mut ev));
                let name =
                    String::from_utf8_lossy(&name[..(n as usize).saturating_sub(1)]).into_owned();
                (rv, name, ev)
            };
            // "two" appears.
            let a = api.clone();
            let t = std::thread::spawn(move || wait(&a));
            init(dir, "two", &[]);
            assert_eq!(t.join().unwrap(), (SAR_OK, "two".to_string(), 1));
            // "one" goes.
            let a = api.clone();
            let t = std::thread::spawn(move || wait(&a));
            std::fs::remove_file(dir.join("one.json")).unwrap();
            assert_eq!(t.join().unwrap(), (SAR_OK, "one".to_string(), 2));
            // Nothing happens: the cancel ends the wait with event 0.
            let a = api.clone();
            let t = std::thread::spawn(move || wait(&a));
            while !t.is_finished() {
                std::thread::sleep(std::time::Duration::from_millis(50));
                assert_eq!(skf!(api.CancelWaitForDevEvent()), SAR_OK);
            }
            assert_eq!(t.join().unwrap(), (SAR_OK, String::new(), 0));
            // A short name buffer is the length-query convention too.
            init(dir, "one", &[]);
            let mut n: U = 2;
            let mut name = [0u8; 2];
            let mut ev: U = 0;
            assert_eq!(
                skf!(api.WaitForDevEvent(name.as_mut_ptr(), &mut n, &mut ev)),
                SAR_BUFFER_TOO_SMALL
            );
            assert_eq!(n, 4);
            assert_eq!(wait(&api), (SAR_OK, "one".to_string(), 1));
            assert_eq!(
                skf!(api.WaitForDevEvent(name.as_mut_ptr(), null_mut(), &mut ev)),
                SAR_INVALIDPARAMERR
            );
            let mut n: U = 64;
            assert_eq!(
                skf!(api.WaitForDevEvent(null_mut(), &mut n, &mut ev)),
                SAR_INVALIDPARAMERR
            );
            // The library starts no thread: unloading it here is safe.
            drop(std::sync::Arc::try_unwrap(api).ok().expect("last user"));
        },
    );
}

#[test]
fn hostile_pointers_lengths_and_handles_get_sar_codes() {
    isolated(
        "hostile_pointers_lengths_and_handles_get_sar_codes",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |_| {
            let api = api();
            let h = connect(&api, "demo");
            let ha = open_app(&api, h, "UKEY_APP");
            let mut hc: H = null_mut();
            assert_eq!(
                skf!(api.OpenContainer(ha, c("UKEY_CONTAINER").as_ptr(), &mut hc)),
                SAR_OK
            );
            let mut n: U = 0;
            assert_eq!(
                skf!(api.EnumDev(1, null_mut(), null_mut())),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(
                skf!(api.EnumApplication(h, null_mut(), null_mut())),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(skf!(api.GenRandom(h, null_mut(), 16)), SAR_INVALIDPARAMERR);
            assert_eq!(
                skf!(api.GenRandom(h, [0u8; 1].as_ptr().cast_mut(), 0)),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(
                skf!(api.GenRandom(h, [0u8; 1].as_ptr().cast_mut(), u32::MAX)),
                SAR_INDATALENERR
            );
            assert_eq!(skf!(api.DevAuth(h, null(), 16)), SAR_INVALIDPARAMERR);
            assert_eq!(
                skf!(api.VerifyPIN(ha, USER_TYPE, null(), &mut n)),
                SAR_INVALIDPARAMERR
            );
            // A name without its NUL within 256 bytes.
            let long = vec![b'a'; 300];
            assert_eq!(
                skf!(api.OpenApplication(h, long.as_ptr(), &mut hc)),
                SAR_NAMELENERR
            );
            assert_eq!(
                skf!(api.ImportCertificate(hc, 1, null(), 5)),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(
                skf!(api.ImportCertificate(hc, 1, [0x30u8].as_ptr(), u32::MAX)),
                SAR_INDATALENERR
            );
            assert_eq!(
                skf!(api.ExportCertificate(hc, 1, null_mut(), null_mut())),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(
                skf!(api.GetContainerType(hc, null_mut())),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(skf!(api.ImportECCKeyPair(hc, null())), SAR_INVALIDPARAMERR);
            assert_eq!(
                skf!(api.ImportSessionKey(hc, SGD_SM4_ECB, null(), 200, &mut hc)),
                SAR_INVALIDPARAMERR
            );
            assert_eq!(
                skf!(api.ImportSessionKey(hc, SGD_SM4_ECB, [0u8; 10].as_ptr(), 10, &mut hc)),
                SAR_INDATALENERR
            );
            // An ECCCIPHERBLOB claiming more cipher text than it carries.
            let mut blob = [0u8; 180];
            blob[160..164].copy_from_slice(&1_000_000u32.to_le_bytes());
            let mut hk: H = null_mut();
            assert_eq!(
                skf!(api.ImportSessionKey(hc, SGD_SM4_ECB, blob.as_ptr(), 180, &mut hk)),
                SAR_INDATALENERR
            );
            let mut out = [0u8; 16];
            assert_eq!(
                skf!(api.ExtECCDecrypt(h, null(), blob.as_ptr(), out.as_mut_ptr(), &mut n)),
                SAR_INVALIDPARAMERR
            );
            let mut pk: ECCPrivateKeyBlob = zeroed();
            pk.bit_len = 256;
            pk.private_key[63] = 1;
            let mut n: U = 16;
            assert_eq!(
                skf!(api.ExtECCDecrypt(h, &pk, blob.as_ptr(), out.as_mut_ptr(), &mut n)),
                SAR_INDATALENERR
            );
            // Points off the curve, fields not right-aligned.
            let mut bad: ECCPublicKeyBlob = zeroed();
            bad.bit_len = 256;
            bad.x_coordinate[63] = 1;
            let sig: ECCSignatureBlob = zeroed();
            assert_eq!(
                skf!(api.ECCVerify(h, &bad, [0u8; 32].as_ptr(), 32, &sig)),
                SAR_INVALIDPARAMERR
            );
            bad.x_coordinate[0] = 1;
            assert_eq!(
                skf!(api.ExtECCVerify(h, &bad, [0u8; 32].as_ptr(), 32, &sig)),
                SAR_INVALIDPARAMERR
            );
            let mut hh: H = null_mut();
            assert_eq!(
                skf!(api.DigestInit(h, SGD_SM3, &bad, null(), 0, &mut hh)),
                SAR_INVALIDPARAMERR
            );
            // Handles of the wrong kind everywhere.
            let mut t: U = 0;
            assert_eq!(skf!(api.GetContainerType(ha, &mut t)), SAR_INVALIDHANDLEERR);
            assert_eq!(
                skf!(api.EnumFiles(hc, null_mut(), &mut n)),
                SAR_INVALIDHANDLEERR
            );
            assert_eq!(
                skf!(api.SetSymmKey(hc, [0u8; 16].as_ptr(), SGD_SM4_ECB, &mut hk)),
                SAR_INVALIDHANDLEERR
            );
            assert_eq!(
                skf!(api.Digest(hc, null(), 0, null_mut(), &mut n)),
                SAR_INVALIDHANDLEERR
            );
            assert_eq!(
                skf!(api.Mac(h, null(), 0, null_mut(), &mut n)),
                SAR_INVALIDHANDLEERR
            );
            assert_eq!(
                skf!(api.MacInit(h, &zeroed(), &mut hk)),
                SAR_INVALIDHANDLEERR
            );
            assert_eq!(skf!(api.EncryptInit(ha, zeroed())), SAR_INVALIDHANDLEERR);
            assert_eq!(skf!(api.CloseContainer(ha)), SAR_INVALIDHANDLEERR);
            assert_eq!(skf!(api.CloseApplication(hc)), SAR_INVALIDHANDLEERR);
            assert_eq!(skf!(api.DisConnectDev(ha)), SAR_INVALIDHANDLEERR);
            // Still fine afterwards.
            assert_eq!(verify_pin(&api, ha, USER_TYPE, "123456").0, SAR_OK);
        },
    );
}

#[test]
fn the_demo_device_has_the_documented_names_and_defaults() {
    isolated(
        "the_demo_device_has_the_documented_names_and_defaults",
        &["demo"],
        |dir| {
            let state = init(dir, "demo", &["--demo"]);
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&state).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "state file mode");
            let key = std::fs::metadata(dir.join("skf-demo-ca/ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(key & 0o777, 0o600, "CA key mode");
        },
        |_| {
            let api = api();
            let h = connect(&api, "demo");
            assert_eq!(
                list(|p, n| skf!(api.EnumApplication(h, p, n))),
                ["UKEY_APP"]
            );
            let ha = open_app(&api, h, "UKEY_APP");
            assert_eq!(verify_pin(&api, ha, ADMIN_TYPE, "12345678").0, SAR_OK);
            assert_eq!(verify_pin(&api, ha, USER_TYPE, "123456").0, SAR_OK);
            // Device authentication with the default key 1234567812345678.
            assert_eq!(dev_auth(&api, h, AUTH_KEY), SAR_OK);
        },
    );
}

#[test]
fn an_unreadable_state_file_is_listed_but_cannot_be_connected() {
    isolated(
        "an_unreadable_state_file_is_listed_but_cannot_be_connected",
        &["garbage"],
        |dir| {
            std::fs::write(dir.join("garbage.json"), b"{ not json").unwrap();
        },
        |_| {
            let api = api();
            // Listed and present (the file exists) but unreadable: connecting fails cleanly.
            assert_eq!(list(|p, n| skf!(api.EnumDev(1, p, n))), ["garbage"]);
            let mut h: H = null_mut();
            assert_eq!(
                skf!(api.ConnectDev(c("garbage").as_ptr(), &mut h)),
                SAR_FILEERR
            );
        },
    );
}

#[test]
fn two_instances_on_one_device_lose_no_pin_try() {
    isolated(
        "two_instances_on_one_device_lose_no_pin_try",
        &["demo"],
        |dir| {
            init(dir, "demo", &["--demo"]);
        },
        |dir| {
            // A second copy of the library is a second instance with its own
            // memory, as a second process would be; both share the state file.
            let copy = dir.join("libcopy.so");
            std::fs::copy(library(), &copy).unwrap();
            let apis = [
                std::sync::Arc::new(api()),
                std::sync::Arc::new(Api::load(&copy)),
            ];
            let threads: Vec<_> = apis
                .iter()
                .map(|a| {
                    let a = a.clone();
                    std::thread::spawn(move || {
                        let h = connect(&a, "demo");
                        let ha = open_app(&a, h, "UKEY_APP");
                        for _ in 0..4 {
                            assert_eq!(
                                verify_pin(&a, ha, USER_TYPE, "000000").0,
                                SAR_PIN_INCORRECT
                            );
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let saved = &state_json(&dir.join("demo.json"))["applications"]["UKEY_APP"]["user_pin"];
            assert_eq!(saved["remaining"], 2, "8 wrong PINs, 8 tries spent");
            let h = connect(&apis[1], "demo");
            let ha = open_app(&apis[1], h, "UKEY_APP");
            assert_eq!(pin_info(&apis[1], ha, USER_TYPE).1, 2);
        },
    );
}
