//! The configuration file and environment (`ukey-config`), read once; the
//! module `ukey` loads reads the same files itself.

use std::sync::OnceLock;

fn loaded() -> &'static ukey_config::Loaded {
    static LOADED: OnceLock<ukey_config::Loaded> = OnceLock::new();
    LOADED.get_or_init(ukey_config::load)
}

/// The settings: configuration files, then environment variables.
pub fn get() -> &'static ukey_config::Config {
    &loaded().config
}

/// One warning per configuration problem (a file ignored, a bad value).
pub fn report_problems() {
    for p in &loaded().problems {
        crate::output::warn(format_args!("configuration: {p}"));
    }
}
