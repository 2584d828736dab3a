//! The C ABI: `catch_unwind` + tracing + Result→CK_RV around every entry
//! point (written once, in [`guard`]), the static 2.40 and 3.0 function
//! tables, and the three exported symbols.

pub mod entry;
pub mod ptr;

use crate::error::Result;
use crate::log::quietly;
use cryptoki_sys::*;
use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Run a safe inner function: panics never cross the FFI boundary. The
/// guard's own log lines run under `catch_unwind` too (see [`crate::log`]):
/// a failing logger must not turn a caught panic into an abort.
pub fn guard(name: &'static str, f: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            quietly(|| tracing::trace!(target: "pkcs11", "{name} -> CKR_OK"));
            CKR_OK
        }
        Ok(Err(e)) => {
            let rv = e.rv();
            quietly(|| tracing::debug!(target: "pkcs11", "{name} -> {e} ({rv:#x})"));
            rv
        }
        Err(panic) => {
            quietly(
                || tracing::error!(target: "pkcs11", "{name} panicked; returning CKR_GENERAL_ERROR"),
            );
            // Under a fuzzer a panic is a finding, not something to hide.
            if cfg!(fuzzing) {
                std::panic::resume_unwind(panic);
            }
            CKR_GENERAL_ERROR
        }
    }
}

/// Defines `unsafe extern "C" fn C_X(..) -> CK_RV` shims around safe inner
/// functions. `unsafe =>` bodies build `ptr` wrappers, whose contract is
/// the C caller's (PKCS#11 v3.0 §5.2); `safe =>` bodies take no pointers.
macro_rules! shims {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $kind:ident => $body:expr;)*) => {
        $( shims!(@one $(#[$doc])* $name ($($arg: $ty),*) $kind $body); )*
    };
    (@one $(#[$doc:meta])* $name:ident ($($arg:ident: $ty:ty),*) unsafe $body:expr) => {
        $(#[$doc])*
        #[allow(non_snake_case, clippy::missing_safety_doc)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            $crate::ffi::guard(stringify!($name), || {
                // SAFETY: the caller passes pointers that are valid as the
                // PKCS#11 signature of this function says; the ptr wrappers
                // check NULLs and lengths before any access.
                unsafe { $body }
            })
        }
    };
    (@one $(#[$doc:meta])* $name:ident ($($arg:ident: $ty:ty),*) safe $body:expr) => {
        $(#[$doc])*
        #[allow(non_snake_case, clippy::missing_safety_doc)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            $crate::ffi::guard(stringify!($name), || $body)
        }
    };
}
pub(crate) use shims;

/// The 2.40 function table.
pub static FUNCTION_LIST: CK_FUNCTION_LIST = entry::function_list();
/// The 3.0 function table.
pub static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = entry::function_list_3_0();

static INTERFACE_NAME: [u8; 8] = *b"PKCS 11\0";

/// A CK_INTERFACE in writable memory. Callers may write into the interface
/// C_GetInterface hands them: OpenSC's pkcs11-spy replaces its
/// `pFunctionList` with its own table (in read-only memory that segfaulted).
/// OpenSC's own module keeps its interfaces in writable globals the same way.
#[repr(transparent)]
pub struct WritableInterface(UnsafeCell<CK_INTERFACE>);

// SAFETY: the module never reads or writes these after static
// initialisation: it only hands out raw pointers to them, and whatever a
// caller writes there is the caller's (and other callers') business, as
// with any module's writable interface globals. C_GetInterfaceList builds
// its answer from the constants, not from these.
unsafe impl Sync for WritableInterface {}

/// The interfaces: 3.0 first (the default), then 2.40.
pub static INTERFACES: [WritableInterface; 2] = [
    WritableInterface(UnsafeCell::new(CK_INTERFACE {
        pInterfaceName: &INTERFACE_NAME as *const [u8; 8] as *mut CK_CHAR,
        pFunctionList: &FUNCTION_LIST_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut c_void,
        flags: 0,
    })),
    WritableInterface(UnsafeCell::new(CK_INTERFACE {
        pInterfaceName: &INTERFACE_NAME as *const [u8; 8] as *mut CK_CHAR,
        pFunctionList: &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut c_void,
        flags: 0,
    })),
];

/// The interface values, as C_GetInterfaceList copies them out.
fn interface_values() -> [CK_INTERFACE; 2] {
    let name = &INTERFACE_NAME as *const [u8; 8] as *mut CK_CHAR;
    [
        CK_INTERFACE {
            pInterfaceName: name,
            pFunctionList: &FUNCTION_LIST_3_0 as *const CK_FUNCTION_LIST_3_0 as *mut c_void,
            flags: 0,
        },
        CK_INTERFACE {
            pInterfaceName: name,
            pFunctionList: &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut c_void,
            flags: 0,
        },
    ]
}

/// §5.4.4 C_GetFunctionList: the 2.40 table.
pub fn get_function_list(out: ptr::Out<*mut CK_FUNCTION_LIST>) -> Result<()> {
    out.write(&FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST)
}

/// §5.4.5 C_GetInterfaceList.
pub fn get_interface_list(out: ptr::OutArray<CK_INTERFACE>) -> Result<()> {
    out.write(&interface_values())
}

/// §5.4.6 C_GetInterface: by name ("PKCS 11" or NULL), version (NULL = the
/// newest) and flags (none are offered).
pub fn get_interface(
    name: Option<Vec<u8>>,
    version: Option<CK_VERSION>,
    out: ptr::Out<*mut CK_INTERFACE>,
    flags: CK_FLAGS,
) -> Result<()> {
    if out.is_null() {
        return Err(crate::error::Error::ArgumentsBad);
    }
    if name.as_deref().is_some_and(|n| n != b"PKCS 11") || flags != 0 {
        return Err(crate::error::Error::ArgumentsBad);
    }
    let idx = match version {
        None => 0,
        Some(CK_VERSION { major: 3, minor: 0 }) => 0,
        Some(CK_VERSION {
            major: 2,
            minor: 40,
        }) => 1,
        Some(_) => return Err(crate::error::Error::ArgumentsBad),
    };
    out.write(INTERFACES[idx].0.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// A logger that fails on every line, as tracing-subscriber's `fmt`
    /// layer did once the thread-local destructors had run.
    struct Broken;

    impl Subscriber for Broken {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {
            panic!("the logger is broken");
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// The guard answers with the right CK_RV whatever the logger does,
    /// a caught panic included (a second panic there used to abort).
    #[test]
    fn the_guard_survives_a_logger_that_panics() {
        tracing::subscriber::with_default(Broken, || {
            assert_eq!(guard("C_Ok", || Ok(())), CKR_OK);
            assert_eq!(
                guard("C_Err", || Err(Error::ArgumentsBad)),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                guard("C_Panics", || panic!("a bug in the module")),
                CKR_GENERAL_ERROR
            );
        });
    }
}
