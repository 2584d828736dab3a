//! Library-wide state between C_Initialize and C_Finalize: slots, sessions
//! and object handles. A forked child sees the library as not initialized
//! (its parent's PC/SC handles are not its own) and may initialize again.

use crate::backend::{Backend, Ctx, LoginState};
use crate::error::{Error, Result};
use crate::object::Handles;
use crate::session::Session;
use crate::slots::Slots;
use crate::values::InitArgs;
use cryptoki_sys::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

pub struct Library {
    pid: u32,
    /// [`FORKS`] when this library was initialized.
    forks: u64,
    pub slots: Slots,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, Arc<Session>>>,
    next_session: AtomicU64,
    handles: Mutex<Handles>,
}

static LIBRARY: RwLock<Option<Arc<Library>>> = RwLock::new(None);

/// Bumped in the child of every fork(). Every PKCS#11 call checks that the
/// library was initialized in this process; comparing this counter costs a
/// load where asking for the process ID costs a system call.
static FORKS: AtomicU64 = AtomicU64::new(0);
/// The fork handler is registered (else the process ID is compared).
static WATCHING_FORKS: AtomicBool = AtomicBool::new(false);

extern "C" fn forked_child() {
    // Only an atomic increment: async-signal-safe, as a fork handler must be.
    FORKS.fetch_add(1, Ordering::SeqCst);
}

fn watch_forks() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `forked_child` is an `extern "C"` function that lives as
        // long as this library; glibc unregisters handlers of a shared
        // object when it is unloaded.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
        WATCHING_FORKS.store(rc == 0, Ordering::SeqCst);
    });
}

impl Library {
    /// Initialized in this process (not inherited through fork()).
    fn is_own(&self) -> bool {
        if WATCHING_FORKS.load(Ordering::Relaxed) {
            self.forks == FORKS.load(Ordering::Relaxed)
        } else {
            self.pid == std::process::id()
        }
    }
}

/// The initialized library of this process.
pub fn get() -> Result<Arc<Library>> {
    let guard = LIBRARY.read().unwrap_or_else(|e| e.into_inner());
    match &*guard {
        Some(lib) if lib.is_own() => Ok(lib.clone()),
        _ => Err(Error::NotInitialized),
    }
}

/// Read the configuration, start logging, report what was wrong with it:
/// one line per problem, in the log, or on stderr when nothing is logged.
fn load_settings() -> ukey_config::Config {
    let loaded = ukey_config::load();
    crate::log::init(&loaded.config);
    for p in &loaded.problems {
        if tracing::enabled!(tracing::Level::WARN) {
            tracing::warn!("ukey configuration: {p}");
        } else {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "libukey_pkcs11: configuration: {p}");
        }
    }
    loaded.config
}

/// C_Initialize.
pub fn initialize(args: Option<InitArgs>) -> Result<()> {
    let mut guard = LIBRARY.write().unwrap_or_else(|e| e.into_inner());
    if let Some(lib) = guard.as_ref() {
        if lib.is_own() {
            return Err(Error::AlreadyInitialized);
        }
        // After fork(): the parent's connections belong to the parent. Drop
        // nothing that would talk to pcscd on its behalf.
        std::mem::forget(guard.take());
    }
    if let Some(a) = args {
        // Application mutex callbacks without CKF_OS_LOCKING_OK: we lock with
        // the OS primitives, which is what those callbacks wrap on every
        // platform this module runs on.
        if a.has_callbacks && !a.os_locking_ok {
            tracing::debug!("C_Initialize: application mutex callbacks given; using OS locking");
        }
    }
    let settings = load_settings();
    watch_forks();
    let lib = Library {
        pid: std::process::id(),
        forks: FORKS.load(Ordering::SeqCst),
        slots: Slots::new(&settings)?,
        sessions: RwLock::new(HashMap::new()),
        next_session: AtomicU64::new(1),
        handles: Mutex::new(Handles::default()),
    };
    *guard = Some(Arc::new(lib));
    Ok(())
}

/// C_Finalize: close every session (logging tokens out) and wake waiters.
pub fn finalize() -> Result<()> {
    let lib = {
        let mut guard = LIBRARY.write().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(l) if l.is_own() => {}
            _ => return Err(Error::NotInitialized),
        }
        guard.take().ok_or(Error::NotInitialized)?
    };
    lib.slots.close();
    for token in lib.slots.tokens() {
        if token.login_state() != LoginState::None {
            let _ = token.logout();
        }
    }
    Ok(())
}

impl Library {
    pub fn handles(&self) -> MutexGuard<'_, Handles> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a backend may need of the calling session.
    pub fn ctx<'a>(&'a self, s: &Session) -> Ctx<'a> {
        Ctx {
            slot_id: s.slot_id,
            session: s.handle,
            rw: s.rw,
            handles: &self.handles,
        }
    }

    fn sessions_read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<CK_SESSION_HANDLE, Arc<Session>>> {
        self.sessions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn sessions_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<CK_SESSION_HANDLE, Arc<Session>>> {
        self.sessions.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The session behind a handle.
    pub fn session(&self, h: CK_SESSION_HANDLE) -> Result<Arc<Session>> {
        self.sessions_read()
            .get(&h)
            .cloned()
            .ok_or(Error::SessionHandleInvalid)
    }

    pub fn open_session(&self, token: Arc<dyn Backend>, rw: bool) -> Result<CK_SESSION_HANDLE> {
        let slot_id = token.slot_id();
        if !rw && token.login_state() == LoginState::So {
            return Err(Error::SessionReadWriteSoExists);
        }
        let h = self.next_session.fetch_add(1, Ordering::SeqCst);
        let s = Session::new(h, slot_id, token, rw);
        self.sessions_write().insert(h, Arc::new(s));
        Ok(h)
    }

    /// Close a session; the last session of a token logs it out.
    pub fn close_session(&self, h: CK_SESSION_HANDLE) -> Result<()> {
        let s = self
            .sessions_write()
            .remove(&h)
            .ok_or(Error::SessionHandleInvalid)?;
        let token = s.token.clone();
        self.handles().drop_session(h);
        self.logout_if_unused(&token);
        Ok(())
    }

    fn logout_if_unused(&self, token: &Arc<dyn Backend>) {
        let still_open = self
            .sessions_read()
            .values()
            .any(|s| Arc::ptr_eq(&s.token, token));
        if !still_open && token.login_state() != LoginState::None {
            if token.is_removed() {
                token.forget_login();
            } else {
                let _ = token.logout();
            }
        }
    }

    /// Close every session on `slot_id`.
    pub fn close_all(&self, slot_id: CK_SLOT_ID) {
        let mut closed = Vec::new();
        {
            let mut map = self.sessions_write();
            map.retain(|h, s| {
                if s.slot_id == slot_id {
                    closed.push((*h, s.token.clone()));
                    false
                } else {
                    true
                }
            });
        }
        for (h, token) in closed {
            self.handles().drop_session(h);
            self.logout_if_unused(&token);
        }
    }

    /// Sessions of `token` (for the read-only checks of SO login).
    pub fn sessions_of(&self, token: &Arc<dyn Backend>) -> Vec<(CK_SESSION_HANDLE, bool)> {
        self.sessions_read()
            .iter()
            .filter_map(|(h, s)| Arc::ptr_eq(&s.token, token).then_some((*h, s.rw)))
            .collect()
    }
}
