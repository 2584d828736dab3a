//! A simulated SKF device's memory: one JSON file, written atomically
//! (a new temp file opened `O_CREAT|O_EXCL|O_NOFOLLOW` with mode 0600 in
//! the same directory, fsync, rename over the state file, fsync of the
//! directory), so a killed process leaves the old or the new state.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

pub const STATE_FORMAT: u32 = 1;
/// The device authentication key most vendors ship (ASCII "1234567812345678").
pub const DEFAULT_DEV_AUTH_KEY: &[u8; 16] = b"1234567812345678";
/// Notional capacity reported in DEVINFO (bytes).
pub const TOTAL_SPACE: u32 = 64 * 1024;

/// Bytes that serialize as hex and zeroize on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(v: &[u8]) -> Self {
        Self(Zeroizing::new(v.to_vec()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} secret bytes>", self.0.len())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Zeroizing::new(hex::encode(&self.0[..])))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        hex::decode(&*s)
            .map(|v| Secret(Zeroizing::new(v)))
            .map_err(serde::de::Error::custom)
    }
}

mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&hex::encode(v)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A PIN with its retry counter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pin {
    pub value: Secret,
    pub max_retry: u32,
    pub remaining: u32,
    /// Still the value the application was created with.
    pub default: bool,
}

impl Pin {
    pub fn new(value: &[u8], max_retry: u32) -> Self {
        Self {
            value: Secret::new(value),
            max_retry,
            remaining: max_retry,
            default: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub read_rights: u32,
    pub write_rights: u32,
    /// Fixed at creation; `data.len()` is always `size`.
    #[serde(with = "hex_vec")]
    pub data: Vec<u8>,
}

/// A container: an SM2 signing pair (made on the token) and an encryption
/// pair (imported in an envelope), each with its certificate.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Container {
    /// 32-byte private scalars.
    pub sign_key: Option<Secret>,
    pub enc_key: Option<Secret>,
    #[serde(with = "hex_opt", default)]
    pub sign_cert: Option<Vec<u8>>,
    #[serde(with = "hex_opt", default)]
    pub enc_cert: Option<Vec<u8>>,
}

impl Container {
    pub fn is_empty(&self) -> bool {
        self.sign_key.is_none() && self.enc_key.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Application {
    pub admin_pin: Pin,
    pub user_pin: Pin,
    pub create_file_rights: u32,
    pub files: BTreeMap<String, FileEntry>,
    pub containers: BTreeMap<String, Container>,
}

impl Application {
    pub fn used_space(&self) -> usize {
        let files: usize = self.files.values().map(|f| f.data.len() + 64).sum();
        let containers: usize = self
            .containers
            .values()
            .map(|c| {
                256 + c.sign_cert.as_ref().map_or(0, Vec::len)
                    + c.enc_cert.as_ref().map_or(0, Vec::len)
            })
            .sum();
        files + containers + 128
    }
}

/// What survives power-off: the state file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceState {
    pub format: u32,
    pub serial: String,
    pub label: String,
    /// 16 bytes, SM4 (DEVINFO.DevAuthAlgId = SGD_SM4_ECB).
    pub dev_auth_key: Secret,
    pub applications: BTreeMap<String, Application>,
}

impl DeviceState {
    /// A factory-fresh device: no application, the default authentication key.
    pub fn factory(serial: &str) -> Self {
        Self {
            format: STATE_FORMAT,
            serial: serial.to_string(),
            label: "ukey SKF sim".to_string(),
            dev_auth_key: Secret::new(DEFAULT_DEV_AUTH_KEY),
            applications: BTreeMap::new(),
        }
    }

    pub fn used_space(&self) -> usize {
        self.applications
            .values()
            .map(Application::used_space)
            .sum()
    }

    pub fn free_space(&self) -> usize {
        (TOTAL_SPACE as usize).saturating_sub(self.used_space())
    }

    pub fn load(path: &Path) -> std::io::Result<Self> {
        let bytes = Zeroizing::new(std::fs::read(path)?);
        let s: DeviceState = serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if s.format != STATE_FORMAT {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("state file format {} not supported", s.format),
            ));
        }
        if s.dev_auth_key.0.len() != 16 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "dev_auth_key must be 16 bytes",
            ));
        }
        Ok(s)
    }

    /// Write atomically (see the module documentation), mode 0600.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(self)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
        );
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tmp_path(path);
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// A fresh temp name: process, counter and a random part (two copies of
/// the library in one process have counters of their own).
fn tmp_path(path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(
        ".tmp.{}.{}.{:016x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        rand::RngCore::next_u64(&mut rand::rngs::OsRng)
    ));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn save_is_atomic_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.json");
        let mut s = DeviceState::factory("42");
        s.applications.insert(
            "APP".into(),
            Application {
                admin_pin: Pin::new(b"12345678", 10),
                user_pin: Pin::new(b"123456", 10),
                create_file_rights: 0xFF,
                files: BTreeMap::new(),
                containers: BTreeMap::new(),
            },
        );
        s.save(&path).unwrap();
        s.save(&path).unwrap();
        assert_eq!(DeviceState::load(&path).unwrap(), s);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temp file left");
        assert!(!format!("{s:?}").contains("313233343536"));
    }
}
