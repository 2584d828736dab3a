//! `libukey_skf_sim.so`: a software token behind the GM/T 0016-2012 "SKF"
//! C API (智能密码钥匙密码应用接口规范), with SM2 (signature, encryption),
//! SM3 and SM4 — the kind of USB key Chinese CAs issue, for tests and
//! demos, as `ukey-sim` is for PIV.
//!
//! * Devices: one JSON state file each, listed in `UKEY_SKF_SIM`
//!   (`/a.json:/b.json`); see [`registry`] for presence, hot-plug and the
//!   `<state>.ctl` fault injection, [`state`] for the file.
//! * The exported functions and who may call what: [`api`].
//! * `ukey-sim skf ...` (provisioning, the SM2 demo CA): [`cli`], [`ca`].
//!
//! No function panics across the C ABI: each export runs inside
//! [`guard`], which answers `SAR_UNKNOWNERR` if anything panicked. The
//! library starts no thread, so nothing outlives a `dlclose`.

pub mod api;
pub mod ca;
pub mod cli;
pub mod crypto;
pub mod ptr;
pub mod registry;
pub mod state;

/// A `SAR_*` result code.
pub type Sar = ukey_skf_sys::ULONG;

/// Run one SKF function: its `Result` as a `SAR_*` code, a panic as
/// `SAR_UNKNOWNERR` (never unwinding into C).
pub(crate) fn guard(name: &str, f: impl FnOnce() -> Result<(), Sar>) -> Sar {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => ukey_skf_sys::SAR_OK,
        Ok(Err(code)) => {
            tracing::debug!("{name}: {}", ukey_skf_sys::sar_name(code));
            code
        }
        Err(_) => {
            tracing::error!("{name}: internal error (panic)");
            ukey_skf_sys::SAR_UNKNOWNERR
        }
    }
}
