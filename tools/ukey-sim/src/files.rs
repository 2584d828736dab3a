//! Opening and writing the simulator's files safely: the state file holds
//! private keys, the PIN and the PUK, and state files may live in a
//! directory others can write to (`/tmp`).
//!
//! * Nothing is followed through a symbolic link: the state file, its lock
//!   and control files and the demo CA's key are opened with `O_NOFOLLOW`;
//!   a link planted at any of those names is refused, so nothing outside is
//!   read or written.
//! * Secrets are written atomically into a fresh temp file in the same
//!   directory (`O_CREAT | O_EXCL | O_NOFOLLOW`, a random name), mode 0600
//!   unless the file it replaces already had a stricter one, then renamed
//!   over the old file. Run as root on another user's file, the new file
//!   keeps that user as owner.
//! * Only regular files of a bounded size are read.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Mode of files with secrets (state files, the demo CA's key).
pub const SECRET_MODE: u32 = 0o600;

fn refused(path: &Path, why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{}: {why}", path.display()),
    )
}

/// A failed open of a symbolic link (`O_NOFOLLOW` gives ELOOP; the kernel's
/// protections in sticky directories may say EACCES first) is reported as
/// the refusal it is.
fn no_link(path: &Path, e: std::io::Error) -> std::io::Error {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if e.raw_os_error() == Some(libc::ELOOP) || is_link {
        refused(path, "is a symbolic link; refused")
    } else {
        e
    }
}

/// Read the regular file at `path` (never through a symbolic link), at most
/// `max` bytes; into memory that zeroizes on drop.
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| no_link(path, e))?;
    let m = f.metadata()?;
    if m.is_dir() {
        return Err(refused(path, "is a directory, not a token state file"));
    }
    if !m.is_file() {
        return Err(refused(path, "is not a regular file"));
    }
    if m.len() > max {
        return Err(refused(
            path,
            &format!("is {} bytes, more than a state file can be", m.len()),
        ));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(m.len() as usize));
    f.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(refused(path, "grew past the size a state file can have"));
    }
    Ok(out)
}

/// What is at `path` now (not following a symbolic link): its mode and owner.
fn existing(path: &Path) -> std::io::Result<Option<(u32, u32, u32)>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(refused(path, "is a symbolic link; refused")),
        Ok(m) if !m.is_file() => Err(refused(path, "is not a regular file")),
        Ok(m) => Ok(Some((m.mode() & 0o7777, m.uid(), m.gid()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A new file next to `path` that did not exist before (`O_EXCL`, never a
/// link), with mode `mode`; its name ends in `.tmp.<pid>.<random>`.
pub fn create_temp(path: &Path, mode: u32) -> std::io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .ok_or_else(|| refused(path, "names no file"))?;
    let mut last = None;
    for _ in 0..16 {
        let mut n = name.to_os_string();
        let mut r = [0u8; 6];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut r);
        n.push(format!(".tmp.{}.{}", std::process::id(), hex::encode(r)));
        let tmp = path.with_file_name(n);
        match open_new(&tmp, mode) {
            Ok(f) => return Ok((tmp, f)),
            // Someone (or something) holds that name: never touch it.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| refused(path, "no free temporary name")))
}

/// Create `path`, which must not exist (not even as a dangling link).
pub fn create_new(path: &Path, mode: u32) -> std::io::Result<File> {
    open_new(path, mode).map_err(|e| no_link(path, e))
}

fn open_new(path: &Path, mode: u32) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    // The umask may have taken bits away, never added them: set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(f)
}

/// Replace `path` with `data` atomically: temp file in the same directory,
/// fsync, rename, fsync of the directory. A new file gets `default_mode`; a
/// file being replaced keeps its mode if that is stricter, and its owner.
/// A symbolic link or anything but a regular file at `path` is refused.
pub fn write_atomic(path: &Path, data: &[u8], default_mode: u32) -> std::io::Result<()> {
    let before = existing(path)?;
    let mode = match before {
        Some((m, _, _)) => m & default_mode,
        None => default_mode,
    };
    let (tmp, mut f) = create_temp(path, mode)?;
    let r = (|| {
        if let Some((_, uid, gid)) = before {
            let m = f.metadata()?;
            if (m.uid(), m.gid()) != (uid, gid) {
                // Root writing another user's file: it stays theirs.
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            }
        }
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        // Checked again right before the rename: the name still holds no
        // link (a rename would replace a link itself, never its target, but
        // the user's link would silently become a file).
        existing(path)?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Open (creating it, mode 0600, if needed) a lock file: never through a
/// symbolic link, nothing written.
pub fn open_lock(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(SECRET_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| no_link(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_0600_and_a_stricter_mode_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        write_atomic(&p, b"one", SECRET_MODE).unwrap();
        assert_eq!(mode(&p), 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&p, b"two", SECRET_MODE).unwrap();
        assert_eq!(mode(&p), 0o600, "a looser mode is tightened");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        write_atomic(&p, b"three", SECRET_MODE).unwrap();
        assert_eq!(mode(&p), 0o400, "a stricter mode is kept");
        assert_eq!(&read_regular(&p, 100).unwrap()[..], b"three");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left");
    }

    #[test]
    fn links_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_atomic(&link, b"evil", SECRET_MODE).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = read_regular(&link, 100).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(open_lock(&link).is_err());
        assert!(create_new(&link, SECRET_MODE).is_err());
        // A dangling link is not followed to create its target either.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("created"), &dangling).unwrap();
        assert!(open_lock(&dangling).is_err());
        assert!(create_new(&dangling, SECRET_MODE).is_err());
        assert!(!dir.path().join("created").exists());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        let e = read_regular(dir.path(), 100).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let e = write_atomic(dir.path(), b"x", SECRET_MODE).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn oversized_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'x'; 101]).unwrap();
        assert!(read_regular(&p, 100).is_err());
        assert!(read_regular(&p, 101).is_ok());
    }
}
