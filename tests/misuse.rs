//! C-ABI misuse: the module called through raw function pointers with NULL
//! pointers, bad handles, short buffers, wrong call order and odd
//! templates. Each case expects the CK_RV the spec gives; none may crash.

use cryptoki_sys::*;
use std::ffi::c_void;
use std::ptr::null_mut;
use ukey_tests::RawModule;

/// Call a function of the 2.40 table.
macro_rules! call {
    ($m:expr, $f:ident ( $($a:expr),* $(,)? )) => {{
        // SAFETY: deliberately bad arguments are the point of this suite; the
        // module must answer every one with a CK_RV, which is what we check.
        unsafe { ($m.f.$f.expect(stringify!($f)))($($a),*) }
    }};
}

/// Call a function only the 3.0 table has.
macro_rules! call3 {
    ($m:expr, $f:ident ( $($a:expr),* $(,)? )) => {{
        // SAFETY: as for `call!`.
        unsafe { ($m.f3.$f.expect(stringify!($f)))($($a),*) }
    }};
}

/// One test per case.
macro_rules! case {
    ($(#[$doc:meta])* $name:ident, tokens = $n:expr, |$m:ident| $body:block) => {
        $(#[$doc])*
        #[test]
        fn $name() {
            let $m = RawModule::load($n);
            $body
        }
    };
}

fn init(m: &RawModule) {
    assert_eq!(call!(m, C_Initialize(null_mut())), CKR_OK);
}

fn slots(m: &RawModule) -> Vec<CK_SLOT_ID> {
    let mut n: CK_ULONG = 0;
    assert_eq!(call!(m, C_GetSlotList(CK_TRUE, null_mut(), &mut n)), CKR_OK);
    let mut v = vec![0; n as usize];
    assert_eq!(
        call!(m, C_GetSlotList(CK_TRUE, v.as_mut_ptr(), &mut n)),
        CKR_OK
    );
    v.truncate(n as usize);
    v
}

fn open(m: &RawModule, slot: CK_SLOT_ID) -> CK_SESSION_HANDLE {
    let mut h = 0;
    let rv = call!(
        m,
        C_OpenSession(
            slot,
            CKF_SERIAL_SESSION | CKF_RW_SESSION,
            null_mut(),
            None,
            &mut h
        )
    );
    assert_eq!(rv, CKR_OK);
    h
}

fn login(m: &RawModule, h: CK_SESSION_HANDLE) {
    let mut pin = *b"123456";
    assert_eq!(call!(m, C_Login(h, CKU_USER, pin.as_mut_ptr(), 6)), CKR_OK);
}

/// A ready session (initialized, logged in) on the first token.
fn ready(m: &RawModule) -> CK_SESSION_HANDLE {
    init(m);
    let h = open(m, slots(m)[0]);
    login(m, h);
    h
}

fn attr(kind: CK_ATTRIBUTE_TYPE, value: &mut [u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_: kind,
        pValue: value.as_mut_ptr() as *mut c_void,
        ulValueLen: value.len() as CK_ULONG,
    }
}

fn find(
    m: &RawModule,
    h: CK_SESSION_HANDLE,
    template: &mut [CK_ATTRIBUTE],
) -> Vec<CK_OBJECT_HANDLE> {
    assert_eq!(
        call!(
            m,
            C_FindObjectsInit(h, template.as_mut_ptr(), template.len() as CK_ULONG)
        ),
        CKR_OK
    );
    let mut out = vec![0; 64];
    let mut n: CK_ULONG = 0;
    assert_eq!(
        call!(m, C_FindObjects(h, out.as_mut_ptr(), 64, &mut n)),
        CKR_OK
    );
    assert_eq!(call!(m, C_FindObjectsFinal(h)), CKR_OK);
    out.truncate(n as usize);
    out
}

fn private_key(m: &RawModule, h: CK_SESSION_HANDLE, id: u8) -> CK_OBJECT_HANDLE {
    let mut class = CKO_PRIVATE_KEY.to_ne_bytes();
    let mut id = [id];
    let found = find(
        m,
        h,
        &mut [attr(CKA_CLASS, &mut class), attr(CKA_ID, &mut id)],
    );
    assert_eq!(found.len(), 1);
    found[0]
}

fn mech(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

// ---- tables and interfaces -------------------------------------------------

case!(every_function_is_present_in_both_tables, tokens = 0, |m| {
    assert_eq!((m.f.version.major, m.f.version.minor), (2, 40));
    assert_eq!((m.f3.version.major, m.f3.version.minor), (3, 0));
    // Every entry is a non-NULL function pointer (the tables are arrays of them after the version).
    let n2 = (std::mem::size_of::<CK_FUNCTION_LIST>() - 8) / 8;
    let n3 = (std::mem::size_of::<CK_FUNCTION_LIST_3_0>() - 8) / 8;
    // SAFETY: both tables are repr(C) structs of a CK_VERSION (padded to 8) then function pointers.
    let (t2, t3) = unsafe {
        (
            std::slice::from_raw_parts(
                (m.f as *const CK_FUNCTION_LIST as *const u8).add(8) as *const usize,
                n2,
            ),
            std::slice::from_raw_parts(
                (m.f3 as *const CK_FUNCTION_LIST_3_0 as *const u8).add(8) as *const usize,
                n3,
            ),
        )
    };
    assert_eq!((n2, n3), (68, 92));
    assert!(t2.iter().chain(t3).all(|p| *p != 0));
});

case!(
    get_function_list_with_null_is_arguments_bad,
    tokens = 0,
    |m| {
        assert_eq!(call!(m, C_GetFunctionList(null_mut())), CKR_ARGUMENTS_BAD);
    }
);

case!(get_interface_by_name_and_version, tokens = 0, |m| {
    let mut name = *b"PKCS 11\0";
    let mut v240 = CK_VERSION {
        major: 2,
        minor: 40,
    };
    let mut v9 = CK_VERSION { major: 9, minor: 9 };
    let mut iface: *mut CK_INTERFACE = null_mut();
    assert_eq!(
        call3!(
            m,
            C_GetInterface(name.as_mut_ptr(), &mut v240, &mut iface, 0)
        ),
        CKR_OK
    );
    // SAFETY: the module returned a pointer to its static interface.
    let list = unsafe { &*((*iface).pFunctionList as *const CK_FUNCTION_LIST) };
    assert_eq!((list.version.major, list.version.minor), (2, 40));
    assert_eq!(
        call3!(m, C_GetInterface(name.as_mut_ptr(), &mut v9, &mut iface, 0)),
        CKR_ARGUMENTS_BAD
    );
    let mut other = *b"Vendor\0";
    assert_eq!(
        call3!(
            m,
            C_GetInterface(other.as_mut_ptr(), null_mut(), &mut iface, 0)
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call3!(m, C_GetInterface(null_mut(), null_mut(), null_mut(), 0)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call3!(
            m,
            C_GetInterface(null_mut(), null_mut(), &mut iface, CKF_INTERFACE_FORK_SAFE)
        ),
        CKR_ARGUMENTS_BAD
    );
});

case!(the_interface_returned_can_be_written, tokens = 0, |m| {
    // OpenSC's pkcs11-spy replaces pFunctionList in the CK_INTERFACE it gets
    // back; in read-only memory that write was a segfault.
    for version in [None, Some((2, 40)), Some((3, 0))] {
        let mut v = version.map(|(major, minor)| CK_VERSION { major, minor });
        let vp = v.as_mut().map_or(null_mut(), |v| v as *mut CK_VERSION);
        let mut iface: *mut CK_INTERFACE = null_mut();
        assert_eq!(
            call3!(m, C_GetInterface(null_mut(), vp, &mut iface, 0)),
            CKR_OK
        );
        // SAFETY: the module returned a valid interface pointer; the spec
        // lets the caller write there, and we write back what was read.
        unsafe {
            let saved = (*iface).pFunctionList;
            (*iface).pFunctionList = null_mut();
            (*iface).pFunctionList = saved;
        }
    }
});

case!(get_interface_list_sizes, tokens = 0, |m| {
    let mut n: CK_ULONG = 0;
    assert_eq!(call3!(m, C_GetInterfaceList(null_mut(), &mut n)), CKR_OK);
    assert_eq!(n, 2);
    let mut one = [CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    }; 1];
    n = 1;
    assert_eq!(
        call3!(m, C_GetInterfaceList(one.as_mut_ptr(), &mut n)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(n, 2);
    assert_eq!(
        call3!(m, C_GetInterfaceList(null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
});

// ---- before C_Initialize, after C_Finalize, twice --------------------------

case!(calls_before_initialize, tokens = 1, |m| {
    let mut n: CK_ULONG = 0;
    let mut info: CK_INFO = unsafe_zeroed();
    let mut h = 0;
    assert_eq!(
        call!(m, C_GetSlotList(CK_TRUE, null_mut(), &mut n)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(call!(m, C_GetInfo(&mut info)), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_eq!(
        call!(
            m,
            C_OpenSession(0, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
        ),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(call!(m, C_CloseSession(1)), CKR_CRYPTOKI_NOT_INITIALIZED);
    assert_eq!(
        call!(m, C_Sign(1, null_mut(), 0, null_mut(), &mut n)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        call!(m, C_DigestInit(1, null_mut())),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        call!(m, C_Finalize(null_mut())),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
});

fn unsafe_zeroed<T: Copy>() -> T {
    // SAFETY: only used for plain C structs of integers and byte arrays.
    unsafe { std::mem::zeroed() }
}

case!(double_initialize, tokens = 0, |m| {
    init(&m);
    assert_eq!(
        call!(m, C_Initialize(null_mut())),
        CKR_CRYPTOKI_ALREADY_INITIALIZED
    );
});

case!(initialize_arguments, tokens = 0, |m| {
    let mut reserved = 0u8;
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: CKF_OS_LOCKING_OK,
        pReserved: &mut reserved as *mut u8 as *mut c_void,
    };
    let p = |a: &mut CK_C_INITIALIZE_ARGS| a as *mut CK_C_INITIALIZE_ARGS as *mut c_void;
    assert_eq!(
        call!(m, C_Initialize(p(&mut args))),
        CKR_ARGUMENTS_BAD,
        "pReserved must be NULL"
    );
    args.pReserved = null_mut();
    unsafe extern "C" fn create(_: *mut *mut c_void) -> CK_RV {
        CKR_OK
    }
    args.CreateMutex = Some(create);
    assert_eq!(
        call!(m, C_Initialize(p(&mut args))),
        CKR_ARGUMENTS_BAD,
        "some but not all callbacks"
    );
    args.CreateMutex = None;
    assert_eq!(
        call!(m, C_Initialize(p(&mut args))),
        CKR_OK,
        "CKF_OS_LOCKING_OK"
    );
    let mut r = 0u8;
    assert_eq!(
        call!(m, C_Finalize(&mut r as *mut u8 as *mut c_void)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(m, C_Finalize(null_mut())), CKR_OK);
});

case!(calls_after_finalize, tokens = 1, |m| {
    let h = ready(&m);
    assert_eq!(call!(m, C_Finalize(null_mut())), CKR_OK);
    let mut info: CK_SESSION_INFO = unsafe_zeroed();
    assert_eq!(
        call!(m, C_GetSessionInfo(h, &mut info)),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        call!(m, C_Finalize(null_mut())),
        CKR_CRYPTOKI_NOT_INITIALIZED
    );
    init(&m);
    assert_eq!(
        call!(m, C_GetSessionInfo(h, &mut info)),
        CKR_SESSION_HANDLE_INVALID,
        "sessions died"
    );
});

// ---- NULL pointers ---------------------------------------------------------

case!(null_out_pointers_are_arguments_bad, tokens = 1, |m| {
    let h = ready(&m);
    let slot = slots(&m)[0];
    let mut n: CK_ULONG = 0;
    assert_eq!(call!(m, C_GetInfo(null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(m, C_GetSlotList(CK_FALSE, null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(m, C_GetSlotInfo(slot, null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(m, C_GetTokenInfo(slot, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(m, C_GetMechanismList(slot, null_mut(), null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(m, C_GetMechanismInfo(slot, CKM_ECDSA, null_mut())),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            m,
            C_OpenSession(slot, CKF_SERIAL_SESSION, null_mut(), None, null_mut())
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(call!(m, C_GetSessionInfo(h, null_mut())), CKR_ARGUMENTS_BAD);
    assert_eq!(
        call!(m, C_FindObjects(h, null_mut(), 1, &mut n)),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(
            m,
            C_WaitForSlotEvent(CKF_DONT_BLOCK, null_mut(), null_mut())
        ),
        CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        call!(m, C_GetObjectSize(h, 1, null_mut())),
        CKR_OBJECT_HANDLE_INVALID
    );
});

case!(
    null_in_pointers_with_lengths_are_arguments_bad,
    tokens = 1,
    |m| {
        let h = ready(&m);
        let key = private_key(&m, h, 1);
        let mut out = [0u8; 512];
        let mut n: CK_ULONG = 512;
        assert_eq!(
            call!(m, C_Login(h, CKU_USER, null_mut(), 6)),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(m, C_FindObjectsInit(h, null_mut(), 3)),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(m, C_GetAttributeValue(h, key, null_mut(), 1)),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(call!(m, C_SignInit(h, null_mut(), key)), CKR_ARGUMENTS_BAD);
        let mut mm = mech(CKM_SHA256_RSA_PKCS);
        assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OK);
        assert_eq!(
            call!(m, C_Sign(h, null_mut(), 10, out.as_mut_ptr(), &mut n)),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(m, C_GenerateRandom(h, null_mut(), 10)),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(call!(m, C_SeedRandom(h, null_mut(), 10)), CKR_ARGUMENTS_BAD);
        assert_eq!(
            call!(m, C_CreateObject(h, null_mut(), 2, &mut n)),
            CKR_ARGUMENTS_BAD
        );
    }
);

case!(null_signature_length_pointer, tokens = 1, |m| {
    let h = ready(&m);
    let key = private_key(&m, h, 1);
    let mut mm = mech(CKM_SHA256_RSA_PKCS);
    let mut data = *b"data";
    let mut sig = [0u8; 256];
    assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OK);
    assert_eq!(
        call!(
            m,
            C_Sign(h, data.as_mut_ptr(), 4, sig.as_mut_ptr(), null_mut())
        ),
        CKR_ARGUMENTS_BAD
    );
});

// ---- handles ---------------------------------------------------------------

case!(invalid_session_handles, tokens = 1, |m| {
    let h = ready(&m);
    let mut info: CK_SESSION_INFO = unsafe_zeroed();
    for bad in [0, 9999, CK_ULONG::MAX] {
        assert_eq!(
            call!(m, C_GetSessionInfo(bad, &mut info)),
            CKR_SESSION_HANDLE_INVALID
        );
        assert_eq!(call!(m, C_CloseSession(bad)), CKR_SESSION_HANDLE_INVALID);
        assert_eq!(
            call!(m, C_FindObjectsFinal(bad)),
            CKR_SESSION_HANDLE_INVALID
        );
    }
    assert_eq!(call!(m, C_CloseSession(h)), CKR_OK);
    assert_eq!(
        call!(m, C_GetSessionInfo(h, &mut info)),
        CKR_SESSION_HANDLE_INVALID,
        "closed"
    );
    assert_eq!(
        call!(m, C_CloseSession(h)),
        CKR_SESSION_HANDLE_INVALID,
        "closed twice"
    );
});

case!(session_handles_are_never_reused, tokens = 1, |m| {
    init(&m);
    let slot = slots(&m)[0];
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let h = open(&m, slot);
        assert!(seen.insert(h), "handle {h} reused");
        assert_eq!(call!(m, C_CloseSession(h)), CKR_OK);
    }
});

case!(invalid_object_and_key_handles, tokens = 1, |m| {
    let h = ready(&m);
    let mut label = [0u8; 64];
    let mut t = [attr(CKA_LABEL, &mut label)];
    let mut mm = mech(CKM_ECDSA);
    assert_eq!(
        call!(m, C_GetAttributeValue(h, 0, t.as_mut_ptr(), 1)),
        CKR_OBJECT_HANDLE_INVALID
    );
    assert_eq!(
        call!(m, C_GetAttributeValue(h, 424242, t.as_mut_ptr(), 1)),
        CKR_OBJECT_HANDLE_INVALID
    );
    assert_eq!(
        call!(m, C_SignInit(h, &mut mm, 424242)),
        CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(
        call!(m, C_DestroyObject(h, 424242)),
        CKR_OBJECT_HANDLE_INVALID
    );
    // A certificate handle is not a key.
    let mut class = CKO_CERTIFICATE.to_ne_bytes();
    let cert = find(&m, h, &mut [attr(CKA_CLASS, &mut class)])[0];
    assert_eq!(
        call!(m, C_SignInit(h, &mut mm, cert)),
        CKR_KEY_HANDLE_INVALID
    );
});

case!(foreign_handles_from_another_token, tokens = 2, |m| {
    init(&m);
    let s = slots(&m);
    let (a, b) = (open(&m, s[0]), open(&m, s[1]));
    login(&m, a);
    login(&m, b);
    let key_a = private_key(&m, a, 1);
    let mut mm = mech(CKM_SHA256_RSA_PKCS);
    assert_eq!(
        call!(m, C_SignInit(b, &mut mm, key_a)),
        CKR_KEY_HANDLE_INVALID
    );
    let mut label = [0u8; 64];
    let mut t = [attr(CKA_LABEL, &mut label)];
    assert_eq!(
        call!(m, C_GetAttributeValue(b, key_a, t.as_mut_ptr(), 1)),
        CKR_OBJECT_HANDLE_INVALID
    );
});

case!(invalid_slot_ids, tokens = 1, |m| {
    init(&m);
    let mut si: CK_SLOT_INFO = unsafe_zeroed();
    let mut ti: CK_TOKEN_INFO = unsafe_zeroed();
    let mut h = 0;
    assert_eq!(call!(m, C_GetSlotInfo(77, &mut si)), CKR_SLOT_ID_INVALID);
    assert_eq!(call!(m, C_GetTokenInfo(77, &mut ti)), CKR_SLOT_ID_INVALID);
    assert_eq!(
        call!(
            m,
            C_OpenSession(77, CKF_SERIAL_SESSION, null_mut(), None, &mut h)
        ),
        CKR_SLOT_ID_INVALID
    );
    assert_eq!(call!(m, C_CloseAllSessions(77)), CKR_SLOT_ID_INVALID);
    assert_eq!(
        call!(m, C_OpenSession(slots(&m)[0], 0, null_mut(), None, &mut h)),
        CKR_SESSION_PARALLEL_NOT_SUPPORTED
    );
});

// ---- buffers: size query, short, exact -------------------------------------

case!(
    signature_buffer_size_query_short_and_exact,
    tokens = 1,
    |m| {
        let h = ready(&m);
        let key = private_key(&m, h, 1);
        let mut mm = mech(CKM_SHA256_RSA_PKCS);
        let mut data = *b"data";
        assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OK);
        let mut n: CK_ULONG = 0;
        assert_eq!(
            call!(m, C_Sign(h, data.as_mut_ptr(), 4, null_mut(), &mut n)),
            CKR_OK
        );
        assert_eq!(n, 256, "size query");
        let mut short = [0u8; 100];
        n = 100;
        assert_eq!(
            call!(
                m,
                C_Sign(h, data.as_mut_ptr(), 4, short.as_mut_ptr(), &mut n)
            ),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(n, 256);
        let mut exact = [0u8; 256];
        assert_eq!(
            call!(
                m,
                C_Sign(h, data.as_mut_ptr(), 4, exact.as_mut_ptr(), &mut n)
            ),
            CKR_OK,
            "still active"
        );
        assert_eq!(n, 256);
        assert_eq!(
            call!(
                m,
                C_Sign(h, data.as_mut_ptr(), 4, exact.as_mut_ptr(), &mut n)
            ),
            CKR_OPERATION_NOT_INITIALIZED,
            "the operation ended"
        );
    }
);

case!(slot_list_and_mechanism_list_buffers, tokens = 2, |m| {
    init(&m);
    let mut one = [0 as CK_SLOT_ID; 1];
    let mut n: CK_ULONG = 1;
    assert_eq!(
        call!(m, C_GetSlotList(CK_TRUE, one.as_mut_ptr(), &mut n)),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(n, 2);
    n = 0;
    assert_eq!(
        call!(m, C_GetSlotList(CK_TRUE, one.as_mut_ptr(), &mut n)),
        CKR_BUFFER_TOO_SMALL
    );
    let slot = slots(&m)[0];
    let mut mechs = [0 as CK_MECHANISM_TYPE; 2];
    n = 2;
    assert_eq!(
        call!(m, C_GetMechanismList(slot, mechs.as_mut_ptr(), &mut n)),
        CKR_BUFFER_TOO_SMALL
    );
    assert!(n > 2);
});

case!(attribute_value_precedence, tokens = 1, |m| {
    let h = ready(&m);
    let key = private_key(&m, h, 1);
    let mut small = [0u8; 2];
    let mut label = [0u8; 64];
    let mut modulus = [0u8; 256];
    let mut prime = [0u8; 256];
    let mut t = [
        attr(CKA_LABEL, &mut small),
        attr(0x7fff_fff0, &mut label),
        attr(CKA_PRIME_1, &mut prime),
        attr(CKA_MODULUS, &mut modulus),
    ];
    let rv = call!(m, C_GetAttributeValue(h, key, t.as_mut_ptr(), 4));
    assert!(
        [
            CKR_BUFFER_TOO_SMALL,
            CKR_ATTRIBUTE_TYPE_INVALID,
            CKR_ATTRIBUTE_SENSITIVE
        ]
        .contains(&rv),
        "rv {rv:#x}"
    );
    assert_eq!(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION, "too small");
    assert_eq!(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION, "unknown type");
    assert_eq!(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION, "sensitive");
    assert_eq!(t[3].ulValueLen, 256, "the rest is still filled");
    // Exact and size-query forms.
    let mut exact = [0u8; 12];
    let mut t = [
        attr(CKA_LABEL, &mut exact),
        CK_ATTRIBUTE {
            type_: CKA_MODULUS,
            pValue: null_mut(),
            ulValueLen: 0,
        },
    ];
    assert_eq!(
        call!(m, C_GetAttributeValue(h, key, t.as_mut_ptr(), 2)),
        CKR_OK
    );
    assert_eq!(&exact, b"PIV AUTH key");
    assert_eq!(t[1].ulValueLen, 256);
});

// ---- wrong state -----------------------------------------------------------

case!(operations_without_init, tokens = 1, |m| {
    let h = ready(&m);
    let mut out = [0u8; 256];
    let mut n: CK_ULONG = 256;
    let mut data = *b"data";
    let mut handles = [0; 4];
    assert_eq!(
        call!(m, C_Sign(h, data.as_mut_ptr(), 4, out.as_mut_ptr(), &mut n)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(m, C_SignUpdate(h, data.as_mut_ptr(), 4)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(m, C_SignFinal(h, out.as_mut_ptr(), &mut n)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(
            m,
            C_Decrypt(h, data.as_mut_ptr(), 4, out.as_mut_ptr(), &mut n)
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(m, C_Verify(h, data.as_mut_ptr(), 4, out.as_mut_ptr(), 4)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(m, C_FindObjects(h, handles.as_mut_ptr(), 4, &mut n)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(
        call!(m, C_FindObjectsFinal(h)),
        CKR_OPERATION_NOT_INITIALIZED
    );
    let mut pin = *b"123456";
    assert_eq!(
        call!(m, C_Login(h, CKU_CONTEXT_SPECIFIC, pin.as_mut_ptr(), 6)),
        CKR_OPERATION_NOT_INITIALIZED
    );
});

case!(operations_started_twice, tokens = 1, |m| {
    let h = ready(&m);
    let key = private_key(&m, h, 1);
    let mut mm = mech(CKM_SHA256_RSA_PKCS);
    assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OK);
    assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OPERATION_ACTIVE);
    assert_eq!(call!(m, C_FindObjectsInit(h, null_mut(), 0)), CKR_OK);
    assert_eq!(
        call!(m, C_FindObjectsInit(h, null_mut(), 0)),
        CKR_OPERATION_ACTIVE
    );
    let mut dm = mech(CKM_RSA_PKCS);
    assert_eq!(call!(m, C_DecryptInit(h, &mut dm, key)), CKR_OK);
    assert_eq!(
        call!(m, C_DecryptInit(h, &mut dm, key)),
        CKR_OPERATION_ACTIVE
    );
});

case!(sign_before_login_and_wrong_mechanisms, tokens = 1, |m| {
    init(&m);
    let h = open(&m, slots(&m)[0]);
    login(&m, h);
    let key = private_key(&m, h, 1);
    let ec_key = private_key(&m, h, 4);
    assert_eq!(call!(m, C_Logout(h)), CKR_OK);
    let mut mm = mech(CKM_SHA256_RSA_PKCS);
    assert_eq!(
        call!(m, C_SignInit(h, &mut mm, key)),
        CKR_USER_NOT_LOGGED_IN
    );
    login(&m, h);
    let mut ecdsa = mech(CKM_ECDSA);
    assert_eq!(
        call!(m, C_SignInit(h, &mut ecdsa, key)),
        CKR_KEY_TYPE_INCONSISTENT,
        "ECDSA on an RSA key"
    );
    assert_eq!(
        call!(m, C_SignInit(h, &mut mm, ec_key)),
        CKR_KEY_TYPE_INCONSISTENT
    );
    let mut aes = mech(CKM_AES_CBC);
    assert_eq!(
        call!(m, C_SignInit(h, &mut aes, key)),
        CKR_MECHANISM_INVALID
    );
    let mut pss = mech(CKM_RSA_PKCS_PSS);
    assert_eq!(
        call!(m, C_SignInit(h, &mut pss, key)),
        CKR_MECHANISM_PARAM_INVALID,
        "PSS needs parameters"
    );
    let mut short_params = [0u8; 3];
    let mut bad = CK_MECHANISM {
        mechanism: CKM_RSA_PKCS_PSS,
        pParameter: short_params.as_mut_ptr() as *mut c_void,
        ulParameterLen: 3,
    };
    assert_eq!(
        call!(m, C_SignInit(h, &mut bad, key)),
        CKR_MECHANISM_PARAM_INVALID
    );
});

case!(login_edge_cases, tokens = 1, |m| {
    init(&m);
    let h = open(&m, slots(&m)[0]);
    let mut pin = *b"123456";
    assert_eq!(
        call!(m, C_Login(h, 7, pin.as_mut_ptr(), 6)),
        CKR_USER_TYPE_INVALID
    );
    assert_eq!(
        call!(m, C_Login(h, CKU_USER, pin.as_mut_ptr(), 0)),
        CKR_PIN_INCORRECT,
        "a login PIN of the wrong length is simply not the PIN"
    );
    let mut ff = [0xFFu8; 6];
    assert_eq!(
        call!(m, C_Login(h, CKU_USER, ff.as_mut_ptr(), 6)),
        CKR_PIN_INVALID
    );
    assert_eq!(call!(m, C_Logout(h)), CKR_USER_NOT_LOGGED_IN);
    let p = ukey_sim::state::Persistent::load(&m.states[0]).unwrap();
    assert_eq!(p.pin.tries_left, 3, "none of these reached the card");
});

// ---- digests -------------------------------------------------------------------

const DIGESTS: [(CK_MECHANISM_TYPE, usize); 5] = [
    (CKM_SHA_1, 20),
    (CKM_SHA224, 28),
    (CKM_SHA256, 32),
    (CKM_SHA384, 48),
    (CKM_SHA512, 64),
];

case!(
    digest_mechanisms_are_listed_with_their_info,
    tokens = 1,
    |m| {
        init(&m);
        let slot = slots(&m)[0];
        let mut n: CK_ULONG = 0;
        assert_eq!(
            call!(m, C_GetMechanismList(slot, null_mut(), &mut n)),
            CKR_OK
        );
        let mut list = vec![0; n as usize];
        assert_eq!(
            call!(m, C_GetMechanismList(slot, list.as_mut_ptr(), &mut n)),
            CKR_OK
        );
        for (kind, _) in DIGESTS {
            assert!(list.contains(&kind), "{kind:#x} listed");
            let mut info: CK_MECHANISM_INFO = unsafe_zeroed();
            assert_eq!(call!(m, C_GetMechanismInfo(slot, kind, &mut info)), CKR_OK);
            assert_eq!(
                (info.ulMinKeySize, info.ulMaxKeySize, info.flags),
                (0, 0, CKF_DIGEST)
            );
        }
    }
);

case!(
    /// v3.0 §5.2 and §5.12 on one session: a size query and a short buffer
    /// keep the operation (the length is set both times), a result ends it,
    /// C_Digest after C_DigestUpdate is CKR_OPERATION_ACTIVE (the multi-part
    /// operation stays), other errors end it, C_SessionCancel(CKF_DIGEST)
    /// ends it.
    digest_buffer_sizes_and_operation_state, tokens = 1, |m| {
    init(&m);
    let h = open(&m, slots(&m)[0]);
    let mut data = *b"abc";
    for (kind, len) in DIGESTS {
        let mut mm = mech(kind);
        assert_eq!(call!(m, C_DigestInit(h, &mut mm)), CKR_OK);
        assert_eq!(call!(m, C_DigestInit(h, &mut mm)), CKR_OPERATION_ACTIVE);
        // One-shot: size query, short buffer, then the result.
        let mut n: CK_ULONG = 0;
        assert_eq!(
            call!(m, C_Digest(h, data.as_mut_ptr(), 3, null_mut(), &mut n)),
            CKR_OK
        );
        assert_eq!(n as usize, len, "{kind:#x} size query");
        let mut out = vec![0u8; 64];
        n = len as CK_ULONG - 1;
        assert_eq!(
            call!(
                m,
                C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut n)
            ),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(n as usize, len);
        n = 64;
        assert_eq!(
            call!(
                m,
                C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut n)
            ),
            CKR_OK,
            "still active after the size query and the short buffer"
        );
        assert_eq!(n as usize, len);
        let one_shot = out[..len].to_vec();
        assert_eq!(
            call!(
                m,
                C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut n)
            ),
            CKR_OPERATION_NOT_INITIALIZED,
            "the result ended it"
        );
        // Multi-part: C_Digest is refused, C_DigestFinal follows the same rules.
        assert_eq!(call!(m, C_DigestInit(h, &mut mm)), CKR_OK);
        assert_eq!(call!(m, C_DigestUpdate(h, data.as_mut_ptr(), 1)), CKR_OK);
        assert_eq!(
            call!(
                m,
                C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut n)
            ),
            CKR_OPERATION_ACTIVE
        );
        assert_eq!(
            call!(m, C_DigestUpdate(h, data.as_mut_ptr().add(1), 2)),
            CKR_OK
        );
        n = 0;
        assert_eq!(call!(m, C_DigestFinal(h, null_mut(), &mut n)), CKR_OK);
        assert_eq!(n as usize, len);
        n = 1;
        assert_eq!(
            call!(m, C_DigestFinal(h, out.as_mut_ptr(), &mut n)),
            CKR_BUFFER_TOO_SMALL
        );
        assert_eq!(n as usize, len);
        n = 64;
        assert_eq!(call!(m, C_DigestFinal(h, out.as_mut_ptr(), &mut n)), CKR_OK);
        assert_eq!(out[..len], one_shot[..], "{kind:#x} multi-part = one-shot");
        assert_eq!(
            call!(m, C_DigestFinal(h, out.as_mut_ptr(), &mut n)),
            CKR_OPERATION_NOT_INITIALIZED
        );
        // Other errors end the operation.
        assert_eq!(call!(m, C_DigestInit(h, &mut mm)), CKR_OK);
        assert_eq!(
            call!(m, C_DigestUpdate(h, null_mut(), 5)),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(m, C_DigestFinal(h, out.as_mut_ptr(), &mut n)),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(call!(m, C_DigestInit(h, &mut mm)), CKR_OK);
        assert_eq!(
            call!(m, C_DigestFinal(h, out.as_mut_ptr(), null_mut())),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(
            call!(m, C_DigestFinal(h, out.as_mut_ptr(), &mut n)),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(call!(m, C_DigestInit(h, &mut mm)), CKR_OK);
        assert_eq!(call3!(m, C_SessionCancel(h, CKF_DIGEST)), CKR_OK);
        assert_eq!(
            call!(m, C_DigestUpdate(h, data.as_mut_ptr(), 3)),
            CKR_OPERATION_NOT_INITIALIZED
        );
    }
    // Without C_DigestInit, with a mechanism that is no digest, with parameters.
    let mut out = [0u8; 64];
    let mut n: CK_ULONG = 64;
    assert_eq!(
        call!(
            m,
            C_Digest(h, data.as_mut_ptr(), 3, out.as_mut_ptr(), &mut n)
        ),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(call!(m, C_DigestKey(h, 1)), CKR_OPERATION_NOT_INITIALIZED);
    let mut rsa = mech(CKM_RSA_PKCS);
    assert_eq!(call!(m, C_DigestInit(h, &mut rsa)), CKR_MECHANISM_INVALID);
    let mut param = [0u8; 4];
    let mut with_param = CK_MECHANISM {
        mechanism: CKM_SHA256,
        pParameter: param.as_mut_ptr() as *mut c_void,
        ulParameterLen: 4,
    };
    assert_eq!(
        call!(m, C_DigestInit(h, &mut with_param)),
        CKR_MECHANISM_PARAM_INVALID
    );
    assert_eq!(call!(m, C_DigestInit(h, null_mut())), CKR_ARGUMENTS_BAD);
    // The digest mechanisms do not sign.
    let key = {
        login(&m, h);
        private_key(&m, h, 1)
    };
    let mut sha = mech(CKM_SHA256);
    assert_eq!(
        call!(m, C_SignInit(h, &mut sha, key)),
        CKR_MECHANISM_INVALID
    );
});

// ---- absurd PIN lengths ------------------------------------------------------
//
// Each PIN-taking function and user type gets lengths of 2^40 (an allocation
// of that size aborts the process) and 2^32 + 6 (a 32-bit truncation would
// read "123456" and log in) on a 7-byte heap buffer holding "1234567"
// (valgrind sees any read past it). The answer is an error code, and no
// VERIFY reaches the card: the counters stay full.

const HUGE_LENGTHS: [CK_ULONG; 2] = [1 << 40, (1 << 32) + 6];

/// A 7-byte buffer on the heap, where memcheck notices a read past its end.
fn short_pin() -> Box<[u8]> {
    b"1234567".to_vec().into_boxed_slice()
}

/// Nothing was spent: the card's PIN and PUK counters are full.
fn no_try_spent(m: &RawModule) {
    let p = ukey_sim::state::Persistent::load(&m.states[0]).unwrap();
    assert_eq!((p.pin.tries_left, p.puk.tries_left), (3, 3));
}

/// A read-write session on the first token, logged in as `user` with
/// `secret` (no login for `None`).
fn session_as(m: &RawModule, user: Option<(CK_USER_TYPE, &str)>) -> CK_SESSION_HANDLE {
    init(m);
    let h = open(m, slots(m)[0]);
    if let Some((user, secret)) = user {
        let mut s = secret.as_bytes().to_vec();
        let rv = call!(m, C_Login(h, user, s.as_mut_ptr(), s.len() as CK_ULONG));
        assert_eq!(rv, CKR_OK);
    }
    h
}

/// The demo token's management key (random, PIN-protected), in hex.
fn mgmt_key(m: &RawModule) -> String {
    let p = ukey_sim::state::Persistent::load(&m.states[0]).unwrap();
    hex::encode(&p.management_key.key.0[..])
}

/// A signature with the PIN-always 9C key initialised, waiting for
/// C_Login(CKU_CONTEXT_SPECIFIC); its first use spent by a signature.
fn context_login_pending(m: &RawModule) -> CK_SESSION_HANDLE {
    let h = ready(m);
    let key = private_key(m, h, 2);
    let mut mm = mech(CKM_ECDSA);
    let mut digest = [0x5Au8; 32];
    let mut sig = [0u8; 64];
    let mut n: CK_ULONG = 64;
    assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OK);
    assert_eq!(
        call!(
            m,
            C_Sign(h, digest.as_mut_ptr(), 32, sig.as_mut_ptr(), &mut n)
        ),
        CKR_OK,
        "the login's own PIN authorises the first use"
    );
    assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OK);
    h
}

case!(huge_pin_length_c_login_user, tokens = 1, |m| {
    let h = session_as(&m, None);
    for len in HUGE_LENGTHS {
        let mut pin = short_pin();
        let rv = call!(m, C_Login(h, CKU_USER, pin.as_mut_ptr(), len));
        assert_eq!(rv, CKR_PIN_INCORRECT, "length {len:#x}");
    }
    no_try_spent(&m);
});

case!(huge_pin_length_c_login_so, tokens = 1, |m| {
    let h = session_as(&m, None);
    for len in HUGE_LENGTHS {
        let mut pin = short_pin();
        let rv = call!(m, C_Login(h, CKU_SO, pin.as_mut_ptr(), len));
        assert_eq!(rv, CKR_PIN_INCORRECT, "length {len:#x}");
    }
    no_try_spent(&m);
});

case!(huge_pin_length_c_login_context_specific, tokens = 1, |m| {
    let h = context_login_pending(&m);
    for len in HUGE_LENGTHS {
        let mut pin = short_pin();
        let rv = call!(m, C_Login(h, CKU_CONTEXT_SPECIFIC, pin.as_mut_ptr(), len));
        assert_eq!(rv, CKR_PIN_INCORRECT, "length {len:#x}");
    }
    no_try_spent(&m);
});

case!(huge_pin_length_c_login_user_3_0, tokens = 1, |m| {
    let h = session_as(&m, None);
    for len in HUGE_LENGTHS {
        let mut pin = short_pin();
        let rv = call3!(
            m,
            C_LoginUser(h, CKU_USER, pin.as_mut_ptr(), len, null_mut(), 0)
        );
        assert_eq!(rv, CKR_PIN_INCORRECT, "length {len:#x}");
        // A user name of an absurd length is not read either.
        let mut name = short_pin();
        let rv = call3!(
            m,
            C_LoginUser(h, CKU_USER, pin.as_mut_ptr(), 6, name.as_mut_ptr(), len)
        );
        assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED, "user name length {len:#x}");
    }
    no_try_spent(&m);
});

case!(huge_pin_length_c_login_user_3_0_so, tokens = 1, |m| {
    let h = session_as(&m, None);
    for len in HUGE_LENGTHS {
        let mut pin = short_pin();
        let rv = call3!(
            m,
            C_LoginUser(h, CKU_SO, pin.as_mut_ptr(), len, null_mut(), 0)
        );
        assert_eq!(rv, CKR_PIN_INCORRECT, "length {len:#x}");
    }
    no_try_spent(&m);
});

case!(
    huge_pin_length_c_login_user_3_0_context_specific,
    tokens = 1,
    |m| {
        let h = context_login_pending(&m);
        for len in HUGE_LENGTHS {
            let mut pin = short_pin();
            let rv = call3!(
                m,
                C_LoginUser(
                    h,
                    CKU_CONTEXT_SPECIFIC,
                    pin.as_mut_ptr(),
                    len,
                    null_mut(),
                    0
                )
            );
            assert_eq!(rv, CKR_PIN_INCORRECT, "length {len:#x}");
        }
        no_try_spent(&m);
    }
);

/// C_SetPIN with the old, then the new value of an absurd length.
fn set_pin_refuses_huge_lengths(m: &RawModule, h: CK_SESSION_HANDLE, good_old: &str) {
    let mut old = good_old.as_bytes().to_vec();
    let old_len = old.len() as CK_ULONG;
    for len in HUGE_LENGTHS {
        let mut huge = short_pin();
        let mut new = *b"654321";
        let rv = call!(m, C_SetPIN(h, huge.as_mut_ptr(), len, new.as_mut_ptr(), 6));
        assert_eq!(rv, CKR_PIN_LEN_RANGE, "old length {len:#x}");
        let rv = call!(
            m,
            C_SetPIN(h, old.as_mut_ptr(), old_len, huge.as_mut_ptr(), len)
        );
        assert_eq!(rv, CKR_PIN_LEN_RANGE, "new length {len:#x}");
    }
}

case!(huge_pin_length_c_set_pin_user, tokens = 1, |m| {
    let h = session_as(&m, Some((CKU_USER, "123456")));
    set_pin_refuses_huge_lengths(&m, h, "123456");
    no_try_spent(&m);
    assert_eq!(
        ukey_sim::state::Persistent::load(&m.states[0])
            .unwrap()
            .pin
            .value
            .0[..6],
        *b"123456",
        "the PIN is unchanged"
    );
});

case!(huge_pin_length_c_set_pin_public_session, tokens = 1, |m| {
    let h = session_as(&m, None);
    set_pin_refuses_huge_lengths(&m, h, "123456");
    no_try_spent(&m);
});

case!(huge_pin_length_c_set_pin_so_puk, tokens = 1, |m| {
    let h = session_as(&m, Some((CKU_SO, "12345678")));
    set_pin_refuses_huge_lengths(&m, h, "12345678");
    no_try_spent(&m);
});

case!(
    huge_pin_length_c_set_pin_so_management_key,
    tokens = 1,
    |m| {
        let key = mgmt_key(&m);
        let h = session_as(&m, Some((CKU_SO, &key)));
        set_pin_refuses_huge_lengths(&m, h, &key);
        no_try_spent(&m);
    }
);

case!(huge_pin_length_c_init_pin_so_puk, tokens = 1, |m| {
    let h = session_as(&m, Some((CKU_SO, "12345678")));
    for len in HUGE_LENGTHS {
        let mut pin = short_pin();
        let rv = call!(m, C_InitPIN(h, pin.as_mut_ptr(), len));
        assert_eq!(rv, CKR_PIN_LEN_RANGE, "length {len:#x}");
    }
    no_try_spent(&m);
});

case!(
    huge_pin_length_c_init_pin_so_management_key,
    tokens = 1,
    |m| {
        let key = mgmt_key(&m);
        let h = session_as(&m, Some((CKU_SO, &key)));
        for len in HUGE_LENGTHS {
            let mut pin = short_pin();
            let rv = call!(m, C_InitPIN(h, pin.as_mut_ptr(), len));
            assert_eq!(rv, CKR_PIN_LEN_RANGE, "length {len:#x}");
        }
        no_try_spent(&m);
    }
);

case!(huge_pin_length_c_init_token, tokens = 1, |m| {
    init(&m);
    for len in HUGE_LENGTHS {
        let mut pin = short_pin();
        let mut label = [b' '; 32];
        let rv = call!(
            m,
            C_InitToken(slots(&m)[0], pin.as_mut_ptr(), len, label.as_mut_ptr())
        );
        assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED, "length {len:#x}");
    }
    no_try_spent(&m);
});

case!(huge_data_and_template_lengths, tokens = 1, |m| {
    let h = ready(&m);
    let key = private_key(&m, h, 1);
    for len in HUGE_LENGTHS {
        // Data to sign (hashing and raw), to verify and to decrypt.
        for kind in [CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS] {
            let mut mm = mech(kind);
            let mut data = short_pin();
            let mut sig = [0u8; 256];
            let mut n: CK_ULONG = 256;
            assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OK);
            let rv = call!(
                m,
                C_Sign(h, data.as_mut_ptr(), len, sig.as_mut_ptr(), &mut n)
            );
            assert_ne!(rv, CKR_OK, "sign {kind:#x}, length {len:#x}");
            assert_eq!(call!(m, C_SignInit(h, &mut mm, key)), CKR_OK);
            let rv = call!(m, C_SignUpdate(h, data.as_mut_ptr(), len));
            assert_ne!(rv, CKR_OK, "sign update {kind:#x}, length {len:#x}");
        }
        let mut mm = mech(CKM_RSA_PKCS);
        let mut data = short_pin();
        let mut out = [0u8; 256];
        let mut n: CK_ULONG = 256;
        assert_eq!(call!(m, C_DecryptInit(h, &mut mm, key)), CKR_OK);
        let rv = call!(
            m,
            C_Decrypt(h, data.as_mut_ptr(), len, out.as_mut_ptr(), &mut n)
        );
        assert_ne!(rv, CKR_OK, "decrypt, length {len:#x}");
        // A template value and a template count.
        let mut value = short_pin();
        let mut t = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: value.as_mut_ptr() as *mut c_void,
            ulValueLen: len,
        }];
        assert_eq!(
            call!(m, C_FindObjectsInit(h, t.as_mut_ptr(), 1)),
            CKR_ATTRIBUTE_VALUE_INVALID,
            "template value length {len:#x}"
        );
        assert_eq!(
            call!(m, C_FindObjectsInit(h, t.as_mut_ptr(), len)),
            CKR_ARGUMENTS_BAD,
            "template count {len:#x}"
        );
        let mut random = short_pin();
        assert_eq!(
            call!(m, C_GenerateRandom(h, random.as_mut_ptr(), len)),
            CKR_ARGUMENTS_BAD,
            "random length {len:#x}"
        );
    }
    no_try_spent(&m);
});

// ---- templates -------------------------------------------------------------

case!(
    find_templates_with_duplicate_unknown_and_wrong_length_attributes,
    tokens = 1,
    |m| {
        let h = ready(&m);
        let mut cert = CKO_CERTIFICATE.to_ne_bytes();
        let mut key = CKO_PRIVATE_KEY.to_ne_bytes();
        let mut cert2 = CKO_CERTIFICATE.to_ne_bytes();
        assert_eq!(
            find(
                &m,
                h,
                &mut [attr(CKA_CLASS, &mut cert), attr(CKA_CLASS, &mut key)]
            )
            .len(),
            0,
            "contradiction"
        );
        assert_eq!(
            find(
                &m,
                h,
                &mut [attr(CKA_CLASS, &mut cert), attr(CKA_CLASS, &mut cert2)]
            )
            .len(),
            4,
            "repeat"
        );
        let mut junk = [1u8, 2, 3];
        assert_eq!(
            find(&m, h, &mut [attr(0x7fff_0001, &mut junk)]).len(),
            0,
            "unknown attribute"
        );
        let mut short_class = [1u8, 0, 0, 0];
        assert_eq!(
            find(&m, h, &mut [attr(CKA_CLASS, &mut short_class)]).len(),
            0,
            "wrong length"
        );
        let mut long_id = [1u8, 1];
        assert_eq!(find(&m, h, &mut [attr(CKA_ID, &mut long_id)]).len(), 0);
        let mut huge: CK_ATTRIBUTE = attr(CKA_LABEL, &mut junk);
        assert_eq!(
            call!(m, C_FindObjectsInit(h, &mut huge, 1 << 40)),
            CKR_ARGUMENTS_BAD
        );
        huge.pValue = null_mut();
        assert_eq!(
            call!(m, C_FindObjectsInit(h, &mut huge, 1)),
            CKR_ARGUMENTS_BAD,
            "NULL value with a length"
        );
    }
);

case!(create_object_templates, tokens = 1, |m| {
    let h = ready(&m);
    let mut cert = CKO_CERTIFICATE.to_ne_bytes();
    let mut data = CKO_DATA.to_ne_bytes();
    let mut short_class = [1u8, 0];
    let mut id = [1u8];
    let mut not_der = [0x30u8, 0x03, 1, 2];
    let mut handle = 0;
    let mut t = [attr(CKA_CLASS, &mut cert), attr(CKA_ID, &mut id)];
    assert_eq!(
        call!(m, C_CreateObject(h, t.as_mut_ptr(), 2, &mut handle)),
        CKR_TEMPLATE_INCOMPLETE
    );
    let mut t = [
        attr(CKA_CLASS, &mut cert),
        attr(CKA_ID, &mut id),
        attr(CKA_VALUE, &mut not_der),
    ];
    assert_eq!(
        call!(m, C_CreateObject(h, t.as_mut_ptr(), 3, &mut handle)),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    // The only data object is ukey's renewal marker: a bare CKO_DATA lacks
    // its application and value; another application's data is refused.
    let mut t = [attr(CKA_CLASS, &mut data)];
    assert_eq!(
        call!(m, C_CreateObject(h, t.as_mut_ptr(), 1, &mut handle)),
        CKR_TEMPLATE_INCOMPLETE
    );
    let mut app = *b"someone else";
    let mut value = [1u8, 2, 3];
    let mut t = [
        attr(CKA_CLASS, &mut data),
        attr(CKA_APPLICATION, &mut app),
        attr(CKA_VALUE, &mut value),
    ];
    assert_eq!(
        call!(m, C_CreateObject(h, t.as_mut_ptr(), 3, &mut handle)),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    let mut t = [attr(CKA_CLASS, &mut short_class)];
    assert_eq!(
        call!(m, C_CreateObject(h, t.as_mut_ptr(), 1, &mut handle)),
        CKR_ATTRIBUTE_VALUE_INVALID
    );
    let mut t: [CK_ATTRIBUTE; 0] = [];
    assert_eq!(
        call!(m, C_CreateObject(h, t.as_mut_ptr(), 0, &mut handle)),
        CKR_TEMPLATE_INCOMPLETE
    );
});

// CKA_ID and CKA_LABEL can be set (kept on the card); nothing else can,
// alone or next to a label.
case!(
    set_attribute_value_is_read_only_but_for_names,
    tokens = 1,
    |m| {
        let h = ready(&m);
        let key = private_key(&m, h, 1);
        let mut no = [CK_FALSE];
        let mut t = [attr(CKA_SIGN, &mut no)];
        assert_eq!(
            call!(m, C_SetAttributeValue(h, key, t.as_mut_ptr(), 1)),
            CKR_ATTRIBUTE_READ_ONLY
        );
        let mut label = *b"new label";
        let mut t = [attr(CKA_LABEL, &mut label), attr(CKA_SIGN, &mut no)];
        assert_eq!(
            call!(m, C_SetAttributeValue(h, key, t.as_mut_ptr(), 2)),
            CKR_ATTRIBUTE_READ_ONLY
        );
        let mut t = [attr(CKA_LABEL, &mut label)];
        assert_eq!(
            call!(m, C_SetAttributeValue(h, key, t.as_mut_ptr(), 1)),
            CKR_OK
        );
        let mut back = [0u8; 9];
        let mut t = [attr(CKA_LABEL, &mut back)];
        assert_eq!(
            call!(m, C_GetAttributeValue(h, key, t.as_mut_ptr(), 1)),
            CKR_OK
        );
        assert_eq!(&back, b"new label");
    }
);

// ---- unsupported functions -------------------------------------------------

case!(unsupported_functions_say_so, tokens = 1, |m| {
    let h = ready(&m);
    let mut n: CK_ULONG = 0;
    assert_eq!(
        call!(m, C_EncryptInit(h, null_mut(), 0)),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(
            m,
            C_DigestEncryptUpdate(h, null_mut(), 0, null_mut(), &mut n)
        ),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(m, C_GenerateKey(h, null_mut(), null_mut(), 0, &mut n)),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(m, C_WrapKey(h, null_mut(), 0, 0, null_mut(), &mut n)),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(
        call!(m, C_InitToken(slots(&m)[0], null_mut(), 0, null_mut())),
        CKR_FUNCTION_NOT_SUPPORTED
    );
    assert_eq!(call!(m, C_GetFunctionStatus(h)), CKR_FUNCTION_NOT_PARALLEL);
    assert_eq!(
        call3!(m, C_MessageSignInit(h, null_mut(), 0)),
        CKR_FUNCTION_NOT_SUPPORTED
    );
});

// ---- threads and processes -------------------------------------------------

case!(
    wait_for_slot_event_is_unblocked_by_finalize,
    tokens = 1,
    |m| {
        init(&m);
        let f = m.f;
        let waiter = std::thread::spawn(move || {
            let mut slot: CK_SLOT_ID = 0;
            // SAFETY: a valid out-pointer; blocking wait.
            unsafe { (f.C_WaitForSlotEvent.expect("fn"))(0, &mut slot, null_mut()) }
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(call!(m, C_Finalize(null_mut())), CKR_OK);
        let started = std::time::Instant::now();
        assert_eq!(waiter.join().unwrap(), CKR_CRYPTOKI_NOT_INITIALIZED);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let mut slot = 0;
        init(&m);
        assert_eq!(
            call!(m, C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut())),
            CKR_NO_EVENT
        );
    }
);

case!(a_forked_child_initializes_again, tokens = 1, |m| {
    let h = ready(&m);
    // SAFETY: fork in a test process; the child only calls the module and _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut info: CK_SESSION_INFO = unsafe_zeroed();
        let mut code = 0;
        if call!(m, C_GetSessionInfo(h, &mut info)) != CKR_CRYPTOKI_NOT_INITIALIZED {
            code |= 1;
        }
        if call!(m, C_Initialize(null_mut())) != CKR_OK {
            code |= 2;
        }
        let mut n: CK_ULONG = 0;
        if call!(m, C_GetSlotList(CK_TRUE, null_mut(), &mut n)) != CKR_OK || n != 1 {
            code |= 4;
        }
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child crashed");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child saw the wrong answers");
    let mut info: CK_SESSION_INFO = unsafe_zeroed();
    assert_eq!(
        call!(m, C_GetSessionInfo(h, &mut info)),
        CKR_OK,
        "the parent is unaffected"
    );
});
