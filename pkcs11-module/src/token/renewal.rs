//! The renewal data object (ukey's staging marker, object 5FFF10): read,
//! cached, written and deleted under the management key.

use super::state::{RenewalData, Token, TokenState};
use super::vendor::{RENEWAL_APPLICATION, RENEWAL_OBJECT};
use crate::error::{Error, Result};
use apdu::tlv::Builder;
use apdu::{Session, StatusWord};
use std::sync::Arc;

/// The value of our container, `None` if it is not ours.
pub(super) fn parse_renewal(content: &[u8]) -> Option<Vec<u8>> {
    let app = apdu::tlv::find(content, 0x80u32).ok()??;
    if app != RENEWAL_APPLICATION.as_bytes() {
        return None;
    }
    apdu::tlv::find(content, 0x81u32).ok()?.map(<[u8]>::to_vec)
}

impl Token {
    pub(super) fn renewal_lookup(s: &mut Session<'_>, st: &mut TokenState) -> Result<RenewalData> {
        if let Some(r) = &st.renewal {
            return Ok(r.clone());
        }
        let r = match s.get_data_opt(RENEWAL_OBJECT)? {
            None => RenewalData::Absent,
            Some(c) if c.is_empty() => RenewalData::Absent,
            Some(c) => match parse_renewal(&c) {
                Some(v) => RenewalData::Ours(Arc::new(v)),
                None => {
                    tracing::info!("object {RENEWAL_OBJECT} holds another application's data");
                    RenewalData::Foreign
                }
            },
        };
        st.renewal = Some(r.clone());
        Ok(r)
    }

    /// What the renewal object holds (from cache or card).
    pub fn renewal(&self, st: &mut TokenState) -> Result<RenewalData> {
        self.info(st)?;
        self.transact(st, &mut |s, st| Self::renewal_lookup(s, st))
    }

    /// Cached renewal value (no card traffic), for attribute reads.
    pub fn cached_renewal(st: &TokenState) -> Option<Arc<Vec<u8>>> {
        match &st.renewal {
            Some(RenewalData::Ours(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// Create (`create`: only if there is none) or replace the value of the
    /// renewal object (only if it still holds the value this module showed:
    /// a compare-and-swap, checked in the same transaction): one PUT DATA,
    /// read back. Never overwrites another application's data.
    pub fn write_renewal(&self, st: &mut TokenState, value: &[u8], create: bool) -> Result<()> {
        let content = Builder::new()
            .add(0x80u32, RENEWAL_APPLICATION.as_bytes())
            .add(0x81u32, value)
            .build();
        let shown = Self::shown_renewal(st);
        self.write_op(st, &mut |s, st| {
            Self::require_renewal(s, st, &shown, create)?;
            st.renewal = None;
            match s.put_data(RENEWAL_OBJECT, &content) {
                Ok(()) => {}
                Err(e) if e.status() == Some(StatusWord::SecurityStatusNotSatisfied) => {
                    return Err(Error::UserNotLoggedIn)
                }
                Err(e) => return Err(e.into()),
            }
            match Self::renewal_lookup(s, st)? {
                RenewalData::Ours(v) if v[..] == *value => Ok(()),
                _ => {
                    st.renewal = None;
                    Err(Error::DeviceError(
                        "the renewal data read back differs from what was written".into(),
                    ))
                }
            }
        })
    }

    /// Empty the renewal object (only ours, and only if it still holds the
    /// value this module showed: checked in the same transaction).
    pub fn delete_renewal(&self, st: &mut TokenState) -> Result<()> {
        let shown = Self::shown_renewal(st);
        self.write_op(st, &mut |s, st| {
            Self::require_renewal(s, st, &shown, false)?;
            st.renewal = None;
            s.delete_data(RENEWAL_OBJECT)
                .map_err(|e| match e.status() {
                    Some(StatusWord::SecurityStatusNotSatisfied) => Error::UserNotLoggedIn,
                    _ => e.into(),
                })?;
            st.renewal = Some(RenewalData::Absent);
            Ok(())
        })
    }
}
