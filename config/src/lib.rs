//! ukey's configuration file, read by `libukey_pkcs11.so` and `ukey`.
//!
//! Daemons such as certmonger clear their environment before running their
//! helpers, so everything an environment variable sets can also be set in
//! a file:
//!
//! ```toml
//! # /etc/ukey/ukey.toml (system-wide), then $XDG_CONFIG_HOME/ukey/ukey.toml
//! # (default ~/.config/ukey/ukey.toml): the user's file wins key by key,
//! # and an environment variable wins over both.
//! sim = ["/var/lib/ukey/token.json"]  # UKEY_SIM: simulated tokens (feature `sim`)
//! no_pcsc = false                       # UKEY_NO_PCSC: skip PC/SC readers
//! log = "info"                          # UKEY_LOG: tracing filter
//! log_file = "/var/log/ukey.log"        # UKEY_LOG_FILE
//! restore_login = true                  # UKEY_RESTORE_LOGIN
//! module = "/usr/lib/x86_64-linux-gnu/pkcs11/libukey_pkcs11.so"  # UKEY_MODULE (ukey)
//!
//! # Vendor SKF libraries (GM/T 0016 SM2 keys), one table each; UKEY_SKF_LIBS
//! [[skf]]
//! library = "/opt/vendor/lib/libskf.so"          # an absolute path
//! dev_auth_key = "31323334353637383132333435363738"  # optional, 16 bytes in hex
//! application = "UKEY_APP"                       # optional: only this application
//! ```
//!
//! A file that cannot be read or parsed, or has an unknown key or a value of
//! the wrong type, is ignored as a whole and reported as one line in
//! [`Loaded::problems`]: a typo never turns PC/SC readers off.
//! `UKEY_CONFIG=/path/file.toml` reads that file instead of the two
//! standard ones (`UKEY_CONFIG=` with an empty value reads none).
//!
//! Simulated tokens exist only with the feature `sim` (tests, the demo,
//! the benchmarks): without it `sim` is an unknown key like any other and
//! the simulator's environment variable is never read.
//!
//! `[[skf]]` is one key like the others: the user's file, when it has any
//! `[[skf]]` table, replaces the system's list. `UKEY_SKF_LIBS=/a.so:/b.so`
//! replaces the list again; a library it names keeps the `dev_auth_key` and
//! `application` a file gave the same path. A relative library path (which
//! `dlopen` would look up in the library search path) or a key that is not
//! 16 bytes of hex makes the file a bad file; in `UKEY_SKF_LIBS` such an
//! entry is one problem line and is skipped. A device authentication key is
//! a secret: a file holding one that others can read is reported (and still
//! used), and [`SkfLibrary`]'s `Debug` never shows it.

use serde::Deserialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The settings, after files and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Simulated tokens' state files.
    #[cfg(feature = "sim")]
    pub sim: Vec<PathBuf>,
    /// Skip PC/SC.
    pub no_pcsc: bool,
    /// A tracing filter (`debug`, `apdu=debug,ukey_pkcs11=info`).
    pub log: Option<String>,
    /// Log there instead of stderr.
    pub log_file: Option<PathBuf>,
    /// After another application reset the card, log in again with the PIN
    /// held in memory.
    pub restore_login: bool,
    /// The PKCS#11 module `ukey` loads.
    pub module: Option<PathBuf>,
    /// Vendor SKF libraries, in order.
    pub skf: Vec<SkfLibrary>,
}

/// One vendor SKF library (`[[skf]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkfLibrary {
    /// Absolute path of the `.so`.
    pub library: PathBuf,
    /// The device authentication key (`SKF_DevAuth`), if the vendor's
    /// devices need one for what ukey does.
    #[serde(default)]
    pub dev_auth_key: Option<DevAuthKey>,
    /// Show only this application of each device (default: all).
    #[serde(default)]
    pub application: Option<String>,
}

impl SkfLibrary {
    /// A library named only by its path.
    pub fn new(library: PathBuf) -> Self {
        Self {
            library,
            dev_auth_key: None,
            application: None,
        }
    }
}

/// A 16-byte device authentication key: zeroized on drop, never shown by
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct DevAuthKey(Zeroizing<[u8; 16]>);

impl DevAuthKey {
    /// The key from 32 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let mut key = Zeroizing::new([0u8; 16]);
        hex::decode_to_slice(s.trim(), &mut key[..])
            .map_err(|_| "dev_auth_key must be 16 bytes in hex (32 hex digits)".to_string())?;
        Ok(Self(key))
    }

    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Debug for DevAuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevAuthKey(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for DevAuthKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        DevAuthKey::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            #[cfg(feature = "sim")]
            sim: Vec::new(),
            no_pcsc: false,
            log: None,
            log_file: None,
            restore_login: true,
            module: None,
            skf: Vec::new(),
        }
    }
}

/// A list of paths: a TOML array, or one string separated like `PATH`.
#[cfg(feature = "sim")]
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PathList {
    One(String),
    Many(Vec<PathBuf>),
}

#[cfg(feature = "sim")]
impl PathList {
    fn paths(self) -> Vec<PathBuf> {
        match self {
            PathList::One(s) => split(s.as_ref()),
            PathList::Many(v) => v
                .into_iter()
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
        }
    }
}

/// One file's contents: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[cfg(feature = "sim")]
    sim: Option<PathList>,
    no_pcsc: Option<bool>,
    log: Option<String>,
    log_file: Option<PathBuf>,
    restore_login: Option<bool>,
    module: Option<PathBuf>,
    skf: Option<Vec<SkfLibrary>>,
}

/// What [`load`] found.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: Config,
    /// The files read (in order; later ones won).
    pub files: Vec<PathBuf>,
    /// One line per file that was ignored, and per environment variable
    /// whose value was not understood.
    pub problems: Vec<String>,
}

#[cfg(feature = "sim")]
fn split(v: &std::ffi::OsStr) -> Vec<PathBuf> {
    std::env::split_paths(v)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// A yes/no environment value: `1`, `true`, `yes`, `on` or `0`, `false`,
/// `no`, `off`, empty.
fn flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "" | "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The files read, in order: `UKEY_CONFIG` if set, else
/// `/etc/ukey/ukey.toml` and the user's `ukey/ukey.toml` under
/// `$XDG_CONFIG_HOME` (or `~/.config`).
pub fn standard_files(env: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    if let Some(one) = env("UKEY_CONFIG") {
        return if one.is_empty() {
            Vec::new()
        } else {
            vec![PathBuf::from(one)]
        };
    }
    let mut files = vec![PathBuf::from("/etc/ukey/ukey.toml")];
    let user_dir = env("XDG_CONFIG_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        });
    if let Some(d) = user_dir {
        files.push(d.join("ukey").join("ukey.toml"));
    }
    files
}

/// Read the standard files, then the environment.
pub fn load() -> Loaded {
    let env = |k: &str| std::env::var_os(k);
    load_from(&standard_files(&env), &env)
}

/// Read `files` (missing ones are skipped), then let `env` override.
pub fn load_from(files: &[PathBuf], env: &dyn Fn(&str) -> Option<OsString>) -> Loaded {
    let mut out = Loaded::default();
    let c = &mut out.config;
    for path in files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.problems
                    .push(format!("{}: cannot be read ({e}): ignored", path.display()));
                continue;
            }
        };
        let f: File = match toml::from_str(&text).and_then(check_skf) {
            Ok(f) => f,
            Err(e) => {
                let why = e.message().replace('\n', " ");
                let at = e
                    .span()
                    .map(|s| format!(" (line {})", text[..s.start].matches('\n').count() + 1))
                    .unwrap_or_default();
                out.problems.push(format!(
                    "{}: {why}{at}: the whole file is ignored",
                    path.display()
                ));
                continue;
            }
        };
        out.files.push(path.clone());
        #[cfg(feature = "sim")]
        if let Some(s) = f.sim {
            c.sim = s.paths();
        }
        if let Some(v) = f.no_pcsc {
            c.no_pcsc = v;
        }
        if let Some(v) = f.log {
            c.log = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = f.log_file {
            c.log_file = Some(v).filter(|v| !v.as_os_str().is_empty());
        }
        if let Some(v) = f.restore_login {
            c.restore_login = v;
        }
        if let Some(v) = f.module {
            c.module = Some(v).filter(|v| !v.as_os_str().is_empty());
        }
        if let Some(libs) = f.skf {
            if libs.iter().any(|l| l.dev_auth_key.is_some()) && readable_by_others(path) {
                out.problems.push(format!(
                    "{}: holds a dev_auth_key and others can read it (chmod 600)",
                    path.display()
                ));
            }
            c.skf = libs;
        }
    }
    #[cfg(feature = "sim")]
    if let Some(v) = env("UKEY_SIM") {
        c.sim = split(&v);
    }
    let mut env_flag = |name: &str, target: &mut bool| {
        if let Some(v) = env(name) {
            match flag(&v.to_string_lossy()) {
                Some(b) => *target = b,
                None => out.problems.push(format!(
                    "{name}={}: not a yes/no value (1 or 0): ignored",
                    v.to_string_lossy()
                )),
            }
        }
    };
    env_flag("UKEY_NO_PCSC", &mut c.no_pcsc);
    env_flag("UKEY_RESTORE_LOGIN", &mut c.restore_login);
    if let Some(v) = env("UKEY_LOG") {
        c.log = Some(v.to_string_lossy().into_owned()).filter(|v| !v.is_empty());
    }
    if let Some(v) = env("UKEY_LOG_FILE") {
        c.log_file = Some(PathBuf::from(v)).filter(|v| !v.as_os_str().is_empty());
    }
    if let Some(v) = env("UKEY_MODULE") {
        c.module = Some(PathBuf::from(v)).filter(|v| !v.as_os_str().is_empty());
    }
    if let Some(v) = env("UKEY_SKF_LIBS") {
        let mut libs = Vec::new();
        for p in std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()) {
            if !p.is_absolute() {
                out.problems.push(format!(
                    "UKEY_SKF_LIBS: {}: not an absolute path: ignored",
                    p.display()
                ));
                continue;
            }
            let from_file = c.skf.iter().find(|l| l.library == p).cloned();
            libs.push(from_file.unwrap_or_else(|| SkfLibrary::new(p)));
        }
        c.skf = libs;
    }
    out
}

/// A relative `library` is refused: `dlopen` would search for it.
fn check_skf(f: File) -> Result<File, toml::de::Error> {
    use serde::de::Error;
    for l in f.skf.iter().flatten() {
        if !l.library.is_absolute() {
            return Err(toml::de::Error::custom(format!(
                "[[skf]] library {:?} is not an absolute path",
                l.library
            )));
        }
    }
    Ok(f)
}

fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).is_ok_and(|m| m.mode() & 0o044 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let m: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[cfg(feature = "sim")]
    #[test]
    fn the_users_file_wins_key_by_key_and_the_environment_wins_over_both() {
        let d = tempfile::tempdir().unwrap();
        let sys = write(
            d.path(),
            "sys.toml",
            "sim = [\"/a.json\", \"/b.json\"]\nlog = \"info\"\nrestore_login = false\n",
        );
        let user = write(d.path(), "user.toml", "log = \"debug\"\nno_pcsc = true\n");
        let l = load_from(&[sys.clone(), user.clone()], &env_of(&[]));
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(l.files, [sys.clone(), user.clone()]);
        assert_eq!(
            l.config,
            Config {
                sim: vec!["/a.json".into(), "/b.json".into()],
                no_pcsc: true,
                log: Some("debug".into()),
                log_file: None,
                restore_login: false,
                module: None,
                skf: Vec::new(),
            }
        );
        let l = load_from(
            &[sys, user],
            &env_of(&[
                ("UKEY_SIM", "/c.json:/d.json"),
                ("UKEY_NO_PCSC", "0"),
                ("UKEY_LOG", "warn"),
                ("UKEY_RESTORE_LOGIN", "1"),
                ("UKEY_LOG_FILE", "/tmp/l"),
            ]),
        );
        assert_eq!(l.config.sim, [PathBuf::from("/c.json"), "/d.json".into()]);
        assert!(!l.config.no_pcsc && l.config.restore_login);
        assert_eq!(l.config.log.as_deref(), Some("warn"));
        assert_eq!(l.config.log_file, Some("/tmp/l".into()));
    }

    #[test]
    fn a_bad_file_is_one_problem_and_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        for (name, text, why) in [
            (
                "typo.toml",
                "no_pcsc = true\nsimm = [\"/x\"]\n",
                "unknown field `simm`",
            ),
            ("type.toml", "no_pcsc = \"yes\"\n", "invalid type"),
            ("syntax.toml", "no_pcsc = true\nsim = [\n", "invalid array"),
        ] {
            let f = write(d.path(), name, text);
            let l = load_from(&[f], &env_of(&[]));
            assert_eq!(l.config, Config::default(), "{name}");
            assert_eq!(l.problems.len(), 1, "{name}: {:?}", l.problems);
            assert!(
                l.problems[0].contains(name) && l.problems[0].contains(why),
                "{name}: {}",
                l.problems[0]
            );
            assert!(!l.problems[0].contains('\n'));
        }
        // A missing file is no problem; an unreadable one is.
        let l = load_from(&[d.path().join("none.toml")], &env_of(&[]));
        assert!(l.problems.is_empty());
        let l = load_from(&[d.path().to_path_buf()], &env_of(&[]));
        assert_eq!(l.problems.len(), 1);
    }

    #[cfg(feature = "sim")]
    #[test]
    fn sim_may_be_one_string_and_flags_read_like_the_environment() {
        let d = tempfile::tempdir().unwrap();
        let f = write(d.path(), "one.toml", "sim = \"/a.json:/b.json\"\n");
        let l = load_from(&[f], &env_of(&[("UKEY_NO_PCSC", "maybe")]));
        assert_eq!(l.config.sim, [PathBuf::from("/a.json"), "/b.json".into()]);
        assert!(!l.config.no_pcsc);
        assert_eq!(l.problems.len(), 1, "{:?}", l.problems);
        assert!(flag("TRUE") == Some(true) && flag("off") == Some(false));
    }

    /// The shipped build (no `sim`): a file naming simulated tokens is a
    /// file with an unknown key, and the environment variable is not read.
    #[cfg(not(feature = "sim"))]
    #[test]
    fn without_the_sim_feature_sim_is_an_unknown_key() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            "dev.toml",
            "sim = [\"/a.json\"]\nno_pcsc = true\n",
        );
        let l = load_from(&[f], &env_of(&[("UKEY_SIM", "/b.json")]));
        assert_eq!(l.config, Config::default());
        assert_eq!(l.problems.len(), 1, "{:?}", l.problems);
        assert!(
            l.problems[0].contains("unknown field `sim`"),
            "{:?}",
            l.problems
        );
        let g = write(d.path(), "log.toml", "log = \"debug\"\n");
        let l = load_from(&[g], &env_of(&[("UKEY_SIM", "/b.json")]));
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(l.config.log.as_deref(), Some("debug"));
    }

    #[test]
    fn skf_libraries_from_files_and_the_environment() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let sys = write(
            d.path(),
            "sys.toml",
            "[[skf]]\nlibrary = \"/opt/a/libskf.so\"\n\
             dev_auth_key = \"31323334353637383132333435363738\"\napplication = \"APP\"\n\
             [[skf]]\nlibrary = \"/opt/b/libskf.so\"\n",
        );
        std::fs::set_permissions(&sys, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = load_from(std::slice::from_ref(&sys), &env_of(&[]));
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        let skf = &l.config.skf;
        assert_eq!(skf.len(), 2);
        assert_eq!(skf[0].library, PathBuf::from("/opt/a/libskf.so"));
        assert_eq!(
            skf[0].dev_auth_key.as_ref().map(|k| *k.bytes()),
            Some(*b"1234567812345678")
        );
        assert_eq!(skf[0].application.as_deref(), Some("APP"));
        assert_eq!(skf[1], SkfLibrary::new("/opt/b/libskf.so".into()));
        // The key never shows in Debug output.
        let shown = format!("{:?}", l.config);
        assert!(
            shown.contains("redacted") && !shown.contains("49, 50"),
            "{shown}"
        );
        assert!(!shown.contains("3132333435363738"), "{shown}");

        // The environment replaces the list; a path the file named keeps its settings.
        let l = load_from(
            std::slice::from_ref(&sys),
            &env_of(&[("UKEY_SKF_LIBS", "/opt/c/libskf.so::/opt/a/libskf.so:rel.so")]),
        );
        let skf = &l.config.skf;
        assert_eq!(skf.len(), 2, "{skf:?}");
        assert_eq!(skf[0], SkfLibrary::new("/opt/c/libskf.so".into()));
        assert_eq!(skf[1].application.as_deref(), Some("APP"));
        assert!(skf[1].dev_auth_key.is_some());
        assert_eq!(l.problems.len(), 1, "{:?}", l.problems);
        assert!(l.problems[0].contains("rel.so"), "{:?}", l.problems);

        // A user file with [[skf]] replaces the system's list; one without keeps it.
        let user = write(
            d.path(),
            "user.toml",
            "[[skf]]\nlibrary = \"/u/libskf.so\"\n",
        );
        let l = load_from(&[sys.clone(), user], &env_of(&[]));
        assert_eq!(l.config.skf, [SkfLibrary::new("/u/libskf.so".into())]);
        let other = write(d.path(), "other.toml", "no_pcsc = true\n");
        let l = load_from(&[sys.clone(), other], &env_of(&[]));
        assert_eq!(l.config.skf.len(), 2);

        // A key in a file others can read is reported and still used.
        std::fs::set_permissions(&sys, std::fs::Permissions::from_mode(0o644)).unwrap();
        let l = load_from(&[sys], &env_of(&[]));
        assert_eq!(l.config.skf.len(), 2);
        assert_eq!(l.problems.len(), 1, "{:?}", l.problems);
        assert!(l.problems[0].contains("chmod 600"), "{:?}", l.problems);
    }

    #[test]
    fn a_bad_skf_table_is_a_bad_file() {
        let d = tempfile::tempdir().unwrap();
        for (name, text, why) in [
            (
                "relative.toml",
                "[[skf]]\nlibrary = \"libskf.so\"\n",
                "not an absolute path",
            ),
            (
                "short.toml",
                "[[skf]]\nlibrary = \"/a.so\"\ndev_auth_key = \"3132\"\n",
                "16 bytes in hex",
            ),
            (
                "nothex.toml",
                "[[skf]]\nlibrary = \"/a.so\"\ndev_auth_key = \"zz323334353637383132333435363738\"\n",
                "16 bytes in hex",
            ),
            (
                "typo.toml",
                "[[skf]]\nlibrary = \"/a.so\"\napplicaton = \"X\"\n",
                "unknown field `applicaton`",
            ),
            ("nolib.toml", "[[skf]]\napplication = \"X\"\n", "missing field `library`"),
        ] {
            let f = write(d.path(), name, text);
            let l = load_from(&[f], &env_of(&[]));
            assert_eq!(l.config, Config::default(), "{name}");
            assert_eq!(l.problems.len(), 1, "{name}: {:?}", l.problems);
            assert!(
                l.problems[0].contains(name) && l.problems[0].contains(why),
                "{name}: {}",
                l.problems[0]
            );
            assert!(!l.problems[0].contains('\n'));
        }
    }

    #[test]
    fn standard_files_follow_xdg() {
        let f = standard_files(&env_of(&[("HOME", "/home/u")]));
        assert_eq!(
            f,
            [
                PathBuf::from("/etc/ukey/ukey.toml"),
                "/home/u/.config/ukey/ukey.toml".into()
            ]
        );
        let f = standard_files(&env_of(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/x")]));
        assert_eq!(f[1], PathBuf::from("/x/ukey/ukey.toml"));
        let f = standard_files(&env_of(&[("UKEY_CONFIG", "/etc/other.toml")]));
        assert_eq!(f, [PathBuf::from("/etc/other.toml")]);
        assert!(standard_files(&env_of(&[("UKEY_CONFIG", "")])).is_empty());
    }
}
