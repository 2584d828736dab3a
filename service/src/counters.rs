//! PIN and PUK retry counters, read without spending a try: GET METADATA
//! where the card's works, else an empty VERIFY for the PIN (there is no
//! such VERIFY for the PUK: its counter is unknown then, never guessed).

use apdu::piv::caps::{CardFacts, PinCount, Tries};
use apdu::Session;

/// A PIN or PUK retry counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Counter {
    pub tries_left: u8,
    /// Unknown when only an empty VERIFY could tell.
    pub tries_total: Option<u8>,
    /// Still the factory value (metadata only).
    pub default: Option<bool>,
}

impl From<Tries> for Counter {
    fn from(t: Tries) -> Self {
        Self {
            tries_left: t.left,
            tries_total: t.total,
            default: t.default,
        }
    }
}

impl Counter {
    pub fn blocked(&self) -> bool {
        self.tries_left == 0
    }

    /// "2 of 3 tries left", "1 try left", "BLOCKED".
    pub fn describe(&self) -> String {
        let of = self
            .tries_total
            .map(|t| format!(" of {t}"))
            .unwrap_or_default();
        match self.tries_left {
            0 => "BLOCKED".to_string(),
            1 => format!("1{of} try left"),
            n => format!("{n}{of} tries left"),
        }
    }
}

/// The PIN counter without spending a try: GET METADATA 80 where it
/// works, else an empty VERIFY. `None` when the PIN is verified in this
/// card session and the card has no working metadata (an empty VERIFY then
/// gives no count), or when the card cannot tell at all.
pub fn pin_counter(s: &mut Session<'_>, facts: &CardFacts) -> Result<Option<Counter>, apdu::Error> {
    Ok(match facts.pin_count(s)? {
        Some(PinCount::Tries(t)) => Some(t.into()),
        Some(PinCount::Verified) | None => None,
    })
}

/// The PIN counter right after the probe ([`crate::card::read_card_info`]):
/// the probe's own GET METADATA answer where it gave one (no second APDU),
/// else as [`pin_counter`].
pub fn first_pin_counter(
    s: &mut Session<'_>,
    facts: &CardFacts,
) -> Result<Option<Counter>, apdu::Error> {
    match facts.pin {
        Some(t) => Ok(Some(t.into())),
        None => pin_counter(s, facts),
    }
}

/// The PUK counter: only GET METADATA 81 can tell, so `None` where it does
/// not work.
pub fn puk_counter(s: &mut Session<'_>, facts: &CardFacts) -> Result<Option<Counter>, apdu::Error> {
    Ok(facts.puk_tries(s)?.map(Counter::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_describe_themselves() {
        let c = Counter {
            tries_left: 2,
            tries_total: Some(3),
            default: None,
        };
        assert_eq!(c.describe(), "2 of 3 tries left");
        let one = Counter {
            tries_left: 1,
            tries_total: None,
            ..c
        };
        assert_eq!(one.describe(), "1 try left");
        let b = Counter { tries_left: 0, ..c };
        assert_eq!(b.describe(), "BLOCKED");
        assert!(b.blocked() && !c.blocked());
    }

    #[test]
    fn metadata_tries_keep_total_and_default() {
        let c = Counter::from(Tries {
            left: 3,
            total: Some(3),
            default: Some(true),
        });
        assert_eq!(
            c,
            Counter {
                tries_left: 3,
                tries_total: Some(3),
                default: Some(true)
            }
        );
    }
}
