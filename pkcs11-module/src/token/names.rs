//! Applications' CKA_ID and CKA_LABEL on the card (object 5FFF0A; the
//! format is [`crate::token::names_object`]): read once per insertion, rewritten in one
//! PUT DATA under the management key; kept in memory where the card refuses.

use super::names_object::{Names, NamesState, SlotNames, MAX_NAMES_LEN, NAMES_OBJECT};
use super::state::{Token, TokenState};
use crate::error::{Error, Result};
use apdu::piv::Slot;
use apdu::{Session, StatusWord};

pub(super) fn refused(e: &apdu::Error) -> bool {
    matches!(
        e.status(),
        Some(
            StatusWord::IncorrectData
                | StatusWord::FileNotFound
                | StatusWord::FunctionNotSupported
                | StatusWord::IncorrectP1P2
                | StatusWord::WrongP1P2
                | StatusWord::InsNotSupported
                | StatusWord::ConditionsNotSatisfied
        )
    )
}

impl Token {
    pub(super) fn names_lookup(s: &mut Session<'_>, st: &mut TokenState) -> Result<NamesState> {
        if let Some(n) = &st.names {
            return Ok(n.clone());
        }
        let n = match s.get_data_opt(NAMES_OBJECT) {
            Ok(None) => NamesState {
                names: Names::default(),
                on_card: true,
            },
            Ok(Some(c)) if c.is_empty() => NamesState {
                names: Names::default(),
                on_card: true,
            },
            Ok(Some(c)) => match Names::parse(&c) {
                Some(names) => NamesState {
                    names,
                    on_card: true,
                },
                None => {
                    tracing::warn!(
                        "object {NAMES_OBJECT} holds another application's data: CKA_ID and \
                         CKA_LABEL changes last until the token is removed"
                    );
                    NamesState {
                        names: Names::default(),
                        on_card: false,
                    }
                }
            },
            // Some cards guard objects they do not know (6982).
            Err(e) if refused(&e) || e.status() == Some(StatusWord::SecurityStatusNotSatisfied) => {
                tracing::warn!(
                    "the card does not keep object {NAMES_OBJECT} ({e}): CKA_ID and CKA_LABEL \
                     changes last until the token is removed"
                );
                NamesState {
                    names: Names::default(),
                    on_card: false,
                }
            }
            Err(e) => return Err(e.into()),
        };
        st.names = Some(n.clone());
        Ok(n)
    }

    /// The names applications gave (read once per insertion).
    pub fn names(&self, st: &mut TokenState) -> Result<Names> {
        if let Some(n) = &st.names {
            return Ok(n.names.clone());
        }
        self.info(st)?;
        self.transact(st, &mut |s, st| Ok(Self::names_lookup(s, st)?.names))
    }

    /// The names of `slot` from the cache (no card traffic).
    pub fn cached_names(st: &TokenState, slot: Slot) -> Option<SlotNames> {
        st.names.as_ref().and_then(|n| n.names.get(slot).cloned())
    }

    /// Apply `change` to the names and store them: re-read from the card,
    /// changed, written in one PUT DATA, in one transaction under the
    /// management key. Nothing is written when nothing changes.
    pub fn update_names(&self, st: &mut TokenState, change: &dyn Fn(&mut Names)) -> Result<()> {
        // Enough room? Checked before anything is written.
        let mut preview = self.names(st)?;
        change(&mut preview);
        if preview.encode().len() > MAX_NAMES_LEN {
            return Err(Error::DeviceMemory);
        }
        self.write_op(st, &mut |s, st| {
            st.names = None;
            let current = Self::names_lookup(s, st)?;
            let mut next = current.names.clone();
            change(&mut next);
            if next == current.names {
                return Ok(());
            }
            let content = next.encode();
            if content.len() > MAX_NAMES_LEN {
                return Err(Error::DeviceMemory);
            }
            let on_card = if current.on_card {
                match s.put_data(NAMES_OBJECT, &content) {
                    Ok(()) => true,
                    Err(e) if e.status() == Some(StatusWord::NotEnoughMemory) => {
                        return Err(Error::DeviceMemory)
                    }
                    Err(e) if refused(&e) => {
                        tracing::warn!(
                            "the card refused object {NAMES_OBJECT} ({e}): CKA_ID and CKA_LABEL \
                             changes last until the token is removed"
                        );
                        false
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                false
            };
            st.names = Some(NamesState {
                names: next,
                on_card,
            });
            Ok(())
        })
    }
}
