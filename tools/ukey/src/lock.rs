//! One renewal at a time per token, across processes: an advisory lock
//! (`flock`) on a per-token file, held from before the first read of the
//! staging marker to the end of the command.
//!
//! Where: `/run/lock/ukey-renew-<token>.lock` when `/run/lock` is there
//! and writable (Debian's world-writable, sticky tmpfs: every user of the
//! machine shares it, so renewals of one token by two users are
//! serialised too), else `$XDG_RUNTIME_DIR` (per user), else the temp
//! directory. `<token>` is `serial-N` for a card with a serial (the same
//! card in any reader), or a hash of the reader name or simulated state
//! file. The file is opened without following symbolic links and, when
//! another user created it, read-only (a lock needs no write access); it
//! holds nothing and is never removed (removing a lock file races with
//! its next user). The kernel drops the lock when the process ends,
//! however it ends.
//!
//! The lock is a courtesy between ukey processes on one machine. What
//! keeps the token consistent when something else writes to it (another
//! machine, an older ukey, any PKCS#11 application) is the module's
//! check-and-act in one card transaction and the marker's
//! compare-and-swap claims (see `cmd/renew`).

use crate::error::{CliError, ErrorKind, Result};
use crate::output;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for another renewal (a real card's RSA key generation
/// takes up to a minute).
const WAIT: Duration = Duration::from_secs(180);

/// Held while it lives.
pub struct RenewalLock {
    _file: File,
}

/// The directory for lock files.
fn lock_dir() -> PathBuf {
    let run_lock = Path::new("/run/lock");
    let writable = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
            .map(|c| {
                // SAFETY: `c` is a valid NUL-terminated path for the call.
                unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
            })
            .unwrap_or(false)
    };
    if run_lock.is_dir() && writable(run_lock) {
        return run_lock.to_path_buf();
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir() && writable(p))
        .unwrap_or_else(std::env::temp_dir)
}

/// The file name part for a token: its serial, else a hash of `place`.
pub fn token_key(serial: Option<u32>, place: &str) -> String {
    match serial {
        Some(n) => format!("serial-{n}"),
        None => {
            let h = Sha256::digest(place.as_bytes());
            format!("place-{}", hex::encode(&h[..8]))
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC;
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(flags)
        .open(path)
    {
        // Another user's file in the shared directory: a lock needs no write access.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            OpenOptions::new().read(true).custom_flags(flags).open(path)
        }
        other => other,
    }
}

/// Take the renewal lock of the token `key` (see [`token_key`]), waiting
/// for another ukey renewal of it to end.
pub fn acquire(key: &str) -> Result<RenewalLock> {
    let path = lock_dir().join(format!("ukey-renew-{key}.lock"));
    let file = open(&path).map_err(|e| {
        CliError::new(format!(
            "the renewal lock {}: {e} (a symbolic link or another user's file in the way?)",
            path.display()
        ))
        .with_kind(ErrorKind::Busy)
    })?;
    let start = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RenewalLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(CliError::new(format!("locking {}: {e}", path.display()))
                    .with_kind(ErrorKind::Busy))
            }
        }
        if start.elapsed() > WAIT {
            return Err(CliError::new(format!(
                "another ukey renewal of this token has been running for over {} s (lock {}): \
                 nothing was done; try again when it has finished",
                WAIT.as_secs(),
                path.display()
            ))
            .with_kind(ErrorKind::Busy));
        }
        if !told {
            output::note("another ukey renewal of this token is running: waiting for it to end...");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
