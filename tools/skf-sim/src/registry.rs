//! The library's process-wide state: the devices listed in `UKEY_SKF_SIM`,
//! whether each is present, their volatile security state, and the
//! handles given out.
//!
//! A device is present while its state file exists and no control command
//! pulled it. Tests control a device through `<state>.ctl` (first line a
//! sequence number, then commands, one per line — the same format as
//! `ukey-sim control`): `remove`, `insert`, `remove-after N` (the device is
//! pulled when N more SKF calls on it have run). A command is acted on
//! once, when its sequence number is new; a file left from an earlier run
//! is history.
//!
//! Handles are counters (never pointers, never reused), each bound to the
//! insertion of the device it was made on: after the device is pulled
//! they answer `SAR_DEVICE_REMOVED`.

use crate::crypto::sm4mode::Stream;
use crate::state::DeviceState;
use crate::Sar;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use ukey_skf_sys::*;
use zeroize::Zeroizing;

/// Environment variable listing the state files (separated like `PATH`).
pub const ENV_DEVICES: &str = "UKEY_SKF_SIM";

/// What a pulled device forgets.
#[derive(Default)]
pub struct Volatile {
    /// `SKF_DevAuth` succeeded since the device was connected.
    pub dev_authenticated: bool,
    /// The challenge for `SKF_DevAuth`: the first 16 bytes of the last
    /// `SKF_GenRandom` output, zero-padded.
    pub challenge: Option<Zeroizing<[u8; 16]>>,
    /// Verified PINs per application: `SECURE_USER_ACCOUNT` and/or
    /// `SECURE_ADM_ACCOUNT`.
    pub rights: HashMap<String, u32>,
    /// `SKF_LockDev` holder and depth.
    pub lock: Option<(usize, u32)>,
}

pub struct Device {
    pub name: String,
    pub path: PathBuf,
    ctl: PathBuf,
    /// The state, while present.
    pub state: Option<DeviceState>,
    pulled: bool,
    fault_after: Option<u32>,
    ctl_seq: u64,
    pub insertion: u64,
    was_present: bool,
    pub vol: Volatile,
}

impl Device {
    fn new(name: String, path: PathBuf) -> Self {
        let ctl = sibling(&path, ".ctl");
        let ctl_seq = read_control(&ctl).map_or(0, |(s, _)| s);
        Self {
            name,
            path,
            ctl,
            state: None,
            pulled: false,
            fault_after: None,
            ctl_seq,
            insertion: 0,
            was_present: false,
            vol: Volatile::default(),
        }
    }

    fn poll_control(&mut self) {
        let Some((seq, cmds)) = read_control(&self.ctl) else {
            return;
        };
        if seq == self.ctl_seq {
            return;
        }
        self.ctl_seq = seq;
        for c in cmds {
            match c {
                Control::Remove => {
                    self.pulled = true;
                    self.fault_after = None;
                }
                Control::Insert => {
                    self.pulled = false;
                    self.fault_after = None;
                }
                Control::RemoveAfter(n) => self.fault_after = Some(n),
            }
        }
    }

    /// Look at the device now: control commands, file presence, changes
    /// another process made. Returns whether it is present.
    pub fn refresh(&mut self) -> bool {
        self.poll_control();
        let loaded = (!self.pulled).then(|| DeviceState::load(&self.path));
        let present = match &loaded {
            None => false,
            Some(Err(e)) => e.kind() != std::io::ErrorKind::NotFound,
            Some(Ok(_)) => true,
        };
        if !present {
            if self.was_present {
                self.was_present = false;
                self.state = None;
                self.vol = Volatile::default();
            }
            return false;
        }
        if !self.was_present {
            self.was_present = true;
            self.insertion += 1;
            self.vol = Volatile::default();
        }
        // Read the file on every look: another process may have changed it,
        // and a rename can reuse an inode number within the clock's
        // granularity, so no stamp tells reliably (a few KiB of JSON).
        match loaded {
            Some(Ok(s)) => self.state = Some(s),
            Some(Err(e)) => {
                tracing::warn!("{}: {e}", self.path.display());
                self.state = None;
            }
            None => self.state = None,
        }
        true
    }

    /// One SKF call reaches the device: count it for `remove-after`.
    fn call(&mut self) -> Result<(), Sar> {
        if let Some(n) = self.fault_after {
            if n == 0 {
                self.fault_after = None;
                self.pulled = true;
                self.refresh();
                return Err(SAR_DEVICE_REMOVED);
            }
            self.fault_after = Some(n - 1);
        }
        Ok(())
    }

    /// The state of a present device (an unreadable file is `SAR_FILEERR`).
    pub fn state(&mut self) -> Result<&mut DeviceState, Sar> {
        self.state.as_mut().ok_or(SAR_FILEERR)
    }

    /// Hold `<state>.lock` (an advisory `flock`, as `ukey-sim` does) and
    /// bring the state up to date under it, so a read-modify-write by two
    /// processes cannot lose a change (a PIN try, say).
    pub fn lock_file(&mut self) -> Result<std::fs::File, Sar> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(sibling(&self.path, ".lock"))
            .map_err(|_| SAR_FILEERR)?;
        f.lock().map_err(|_| SAR_FILEERR)?;
        if !self.refresh() {
            return Err(SAR_DEVICE_REMOVED);
        }
        // `refresh` read the file under the lock.
        self.state.as_ref().ok_or(SAR_FILEERR)?;
        Ok(f)
    }

    /// Save a changed state; on failure the device keeps what the file has.
    pub fn commit(&mut self, new: DeviceState) -> Result<(), Sar> {
        match new.save(&self.path) {
            Ok(()) => {
                self.state = Some(new);
                Ok(())
            }
            Err(e) => {
                tracing::error!("{}: saving failed: {e}", self.path.display());
                Err(SAR_WRITEFILEERR)
            }
        }
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut n = path.file_name().unwrap_or_default().to_os_string();
    n.push(suffix);
    path.with_file_name(n)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Remove,
    Insert,
    RemoveAfter(u32),
}

impl Control {
    pub fn parse(line: &str) -> Option<Self> {
        let mut it = line.split_whitespace();
        match (it.next()?, it.next(), it.next()) {
            ("remove", None, None) => Some(Self::Remove),
            ("insert", None, None) => Some(Self::Insert),
            ("remove-after", Some(n), None) => n.parse().ok().map(Self::RemoveAfter),
            _ => None,
        }
    }

    fn line(self) -> String {
        match self {
            Self::Remove => "remove".into(),
            Self::Insert => "insert".into(),
            Self::RemoveAfter(n) => format!("remove-after {n}"),
        }
    }

    /// Send this command to every process using the state file `state`.
    pub fn send(self, state: &Path) -> std::io::Result<()> {
        let ctl = sibling(state, ".ctl");
        let seq = read_control(&ctl).map_or(0, |(s, _)| s) + 1;
        let tmp = sibling(state, ".ctl.tmp");
        std::fs::write(&tmp, format!("{seq}\n{}\n", self.line()))?;
        std::fs::rename(tmp, ctl)
    }
}

fn read_control(ctl: &Path) -> Option<(u64, Vec<Control>)> {
    let text = std::fs::read_to_string(ctl).ok()?;
    let mut lines = text.lines();
    let seq = lines.next()?.trim().parse().ok()?;
    Some((seq, lines.filter_map(Control::parse).collect()))
}

/// A symmetric key handle's state.
pub struct SymKey {
    pub key: Zeroizing<[u8; 16]>,
    pub alg: ULONG,
    pub op: Option<Stream>,
}

/// A hash handle's state.
pub struct HashState {
    /// None once the digest was delivered.
    pub sm3: Option<sm3::Sm3>,
}

/// A MAC handle's state (SM4 CBC-MAC).
pub struct MacState {
    pub stream: Stream,
    pub last: [u8; 16],
}

pub enum Kind {
    Dev,
    App { app: String },
    Container { app: String, name: String },
    Key(SymKey),
    Hash(HashState),
    Mac(MacState),
}

/// Something a handle names.
pub struct Obj {
    pub dev: usize,
    pub insertion: u64,
    /// The device handle it was made through (closed with it).
    pub parent: usize,
    pub kind: Kind,
}

pub struct Registry {
    pub devices: Vec<Device>,
    pub objects: HashMap<usize, Obj>,
    next: usize,
    pub cancel_gen: u64,
    /// Presence last reported by `SKF_WaitForDevEvent`.
    pub reported: Vec<bool>,
}

impl Registry {
    fn from_env() -> Self {
        let paths: Vec<PathBuf> = std::env::var_os(ENV_DEVICES)
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Self::with_paths(&paths)
    }

    /// Devices named after their state files' stems (`-2`, `-3`... when
    /// two stems are equal).
    pub fn with_paths(paths: &[PathBuf]) -> Self {
        let mut devices: Vec<Device> = Vec::new();
        for p in paths {
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "skf".into());
            let mut name = stem.clone();
            let mut n = 1;
            while devices.iter().any(|d| d.name == name) {
                n += 1;
                name = format!("{stem}-{n}");
            }
            devices.push(Device::new(name, p.clone()));
        }
        let reported = devices.iter_mut().map(Device::refresh).collect();
        Self {
            devices,
            objects: HashMap::new(),
            next: 0,
            cancel_gen: 0,
            reported,
        }
    }

    pub fn add(&mut self, obj: Obj) -> usize {
        self.next += 1;
        self.objects.insert(self.next, obj);
        self.next
    }

    pub fn device_by_name(&mut self, name: &[u8]) -> Result<usize, Sar> {
        self.devices
            .iter()
            .position(|d| d.name.as_bytes() == name)
            .ok_or(SAR_INVALIDPARAMERR)
    }

    /// The live object behind `h` (its device present, same insertion),
    /// counting the call for fault injection.
    pub fn live(&mut self, h: usize) -> Result<(&mut Obj, &mut Device), Sar> {
        let obj = self.objects.get_mut(&h).ok_or(SAR_INVALIDHANDLEERR)?;
        let dev = self.devices.get_mut(obj.dev).ok_or(SAR_INVALIDHANDLEERR)?;
        if !dev.refresh() || dev.insertion != obj.insertion {
            return Err(SAR_DEVICE_REMOVED);
        }
        dev.call()?;
        Ok((obj, dev))
    }

    /// Remove `h` and every object made through it (when it is a device handle).
    pub fn close(&mut self, h: usize) -> Option<Obj> {
        let obj = self.objects.remove(&h)?;
        if matches!(obj.kind, Kind::Dev) {
            self.objects.retain(|_, o| o.parent != h);
            let still = self
                .objects
                .values()
                .any(|o| o.dev == obj.dev && matches!(o.kind, Kind::Dev));
            if let Some(d) = self.devices.get_mut(obj.dev) {
                if d.vol.lock.is_some_and(|(owner, _)| owner == h) {
                    d.vol.lock = None;
                }
                if !still {
                    // The last connection: the device's security state goes.
                    d.vol = Volatile::default();
                }
            }
        }
        Some(obj)
    }
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
/// Woken on `SKF_CancelWaitForDevEvent` and `SKF_UnlockDev`.
pub static WAKE: Condvar = Condvar::new();

/// The registry, locked (created from the environment on first use). A
/// panic while it was held does not make it unusable.
pub fn lock() -> MutexGuard<'static, Option<Registry>> {
    let mut g = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        *g = Some(Registry::from_env());
    }
    g
}

/// Run `f` on the registry.
pub fn with<R>(f: impl FnOnce(&mut Registry) -> Result<R, Sar>) -> Result<R, Sar> {
    let mut g = lock();
    match g.as_mut() {
        Some(r) => f(r),
        None => unreachable_registry(),
    }
}

#[cold]
fn unreachable_registry() -> ! {
    // `lock` always fills the option; reaching here is a bug caught by
    // the FFI guard as SAR_UNKNOWNERR.
    panic!("SKF registry missing")
}

/// Runs when the library is unloaded (`dlclose`, or the process exits):
/// the registry is dropped, so no memory and no secret (PINs, keys, all in
/// zeroizing buffers) outlives the library. A registry in use by another
/// thread at that moment is left alone.
extern "C" fn unload() {
    let _ = std::panic::catch_unwind(|| {
        let taken = match REGISTRY.try_lock() {
            Ok(mut g) => g.take(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        drop(taken);
    });
}

#[used]
#[link_section = ".fini_array"]
static UNLOAD: extern "C" fn() = unload;
