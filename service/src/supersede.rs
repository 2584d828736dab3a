//! A renewed pair that stays in a retired slot.
//!
//! A card without MOVE KEY (YubiKey firmware before 5.7, a YubiKey 4)
//! cannot move the renewed key from the retired slot R it was generated in
//! into the target slot T (9A...). `renew install` then leaves the new pair
//! in R, and from then on R holds the pair of T's role: applications that
//! find keys by certificate use it, and T's old pair is superseded (it
//! stays until it expires, for applications pinned to T). `status` says so,
//! and the next renewal of T starts from the pair in R.
//!
//! How ukey knows: `renew install` records the pair (target, R, its key's
//! hash, when) in the staging marker on the token ([`crate::marker`], an
//! `A2` record), in the same compare-and-swap that drops the staged entry.
//! The token carries it, so it holds in a new process, on another PC and
//! after a re-plug. A record is believed only while the card agrees:
//! * R's certificate certifies the recorded key, and R's key, where the
//!   card can tell, is that key (a key or certificate replaced in R since,
//!   by anyone, ends the record's effect);
//! * T does not hold the recorded key, nor a certificate newer than R's
//!   (T re-issued in person, or by another tool, wins again).
//!
//! A certificate in a retired slot that no record names never counts, even
//! with the same subject and issuer (retired slots legitimately keep old
//! key-management pairs, and 9A..9E often share one subject).

use crate::marker::{KeyHash, Marker, Renewed};
use apdu::piv::Slot;
use std::time::SystemTime;

/// What the card shows of a slot's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySeen {
    /// The card (or ukey's record of a key it generated) shows this key.
    Known(KeyHash),
    /// The card says there is no key.
    Absent,
    /// The card cannot tell (no GET METADATA): only the certificate shows one.
    Unknown,
}

/// What a slot holds, for judging a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub key: KeySeen,
    /// The key the slot's certificate certifies (`None`: no usable certificate).
    pub cert_key: Option<KeyHash>,
    pub cert_not_before: Option<SystemTime>,
}

/// Where the pair of a target slot's role lives, when a renewal left it
/// in a retired slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home<'m> {
    /// The newest renewed pair still on the card.
    pub live: &'m Renewed,
    /// Earlier renewed pairs of the same role still on the card (a role
    /// renewed twice on such a card): superseded by `live` too.
    pub older: Vec<&'m Renewed>,
}

/// Whether `seen` (the record's retired slot now) still holds the recorded pair.
fn holds(r: &Renewed, seen: &Seen) -> bool {
    let key_ok = match seen.key {
        KeySeen::Known(h) => h == r.key,
        KeySeen::Absent => false,
        KeySeen::Unknown => true,
    };
    key_ok && seen.cert_key == Some(r.key) && seen.cert_not_before.is_some()
}

/// The renewed pair that holds `target`'s role now, if a record says so and
/// the card agrees (see the module documentation). `seen` reads a slot.
pub fn home<'m, E>(
    marker: &'m Marker,
    target: Slot,
    mut seen: impl FnMut(Slot) -> Result<Seen, E>,
) -> Result<Option<Home<'m>>, E> {
    let mut valid: Vec<(&Renewed, SystemTime)> = Vec::new();
    // Latest record first, so that the stable sort below keeps it first when
    // two renewals share their second (certificate start and install time).
    for r in marker.renewed.iter().rev().filter(|r| r.target == target) {
        let s = seen(r.slot)?;
        if let (true, Some(nb)) = (holds(r, &s), s.cert_not_before) {
            valid.push((r, nb));
        }
    }
    // Newest first: by the certificate's start, then by the install time,
    // then by the record's place in the marker (`record_renewed` appends).
    valid.sort_by(|(a, anb), (b, bnb)| bnb.cmp(anb).then(b.installed.cmp(&a.installed)));
    let Some(&(live, live_nb)) = valid.first() else {
        return Ok(None);
    };
    let t = seen(target)?;
    let holds_it = t.key == KeySeen::Known(live.key) || t.cert_key == Some(live.key);
    if holds_it || t.cert_not_before.is_some_and(|nb| nb > live_nb) {
        return Ok(None);
    }
    Ok(Some(Home {
        live,
        older: valid[1..].iter().map(|(r, _)| *r).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::convert::Infallible;
    use std::time::Duration;

    const T: Slot = Slot::Authentication;
    const R1: Slot = Slot::Retired(1);
    const R2: Slot = Slot::Retired(2);

    fn at(days: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400)
    }

    fn pair(key: u8, nb: u64) -> Seen {
        Seen {
            key: KeySeen::Known([key; 32]),
            cert_key: Some([key; 32]),
            cert_not_before: Some(at(nb)),
        }
    }

    fn record(slot: Slot, key: u8, installed: u64) -> Renewed {
        Renewed {
            target: T,
            slot,
            installed,
            key: [key; 32],
        }
    }

    fn judge(m: &Marker, card: &HashMap<Slot, Seen>) -> Option<(Slot, Vec<Slot>)> {
        let empty = Seen {
            key: KeySeen::Absent,
            cert_key: None,
            cert_not_before: None,
        };
        home::<Infallible>(m, T, |s| Ok(card.get(&s).copied().unwrap_or(empty)))
            .unwrap()
            .map(|h| (h.live.slot, h.older.iter().map(|r| r.slot).collect()))
    }

    fn marker(records: &[Renewed]) -> Marker {
        let mut m = Marker::new();
        for r in records {
            m.record_renewed(r.clone());
        }
        m
    }

    #[test]
    fn a_recorded_pair_still_in_its_slot_supersedes_the_target() {
        let m = marker(&[record(R1, 2, 100)]);
        let card = HashMap::from([(T, pair(1, 10)), (R1, pair(2, 100))]);
        assert_eq!(judge(&m, &card), Some((R1, vec![])));
        // On a card that cannot report keys, the certificate's key counts.
        let mut no_md = card.clone();
        no_md.get_mut(&R1).unwrap().key = KeySeen::Unknown;
        assert_eq!(judge(&m, &no_md), Some((R1, vec![])));
    }

    #[test]
    fn an_unrecorded_certificate_in_a_retired_slot_never_counts() {
        // Same key hash pattern, newer dates: without a record, nothing.
        let card = HashMap::from([(T, pair(1, 10)), (R1, pair(2, 100))]);
        assert_eq!(judge(&Marker::new(), &card), None);
        // A record for another slot does not cover R1.
        assert_eq!(judge(&marker(&[record(R2, 2, 100)]), &card), None);
    }

    #[test]
    fn a_record_the_card_no_longer_agrees_with_is_ignored() {
        let m = marker(&[record(R1, 2, 100)]);
        for (why, r1) in [
            ("another key in R1", pair(3, 100)),
            (
                "the key went, the certificate stayed",
                Seen {
                    key: KeySeen::Absent,
                    ..pair(2, 100)
                },
            ),
            (
                "the certificate went",
                Seen {
                    cert_key: None,
                    cert_not_before: None,
                    ..pair(2, 100)
                },
            ),
            (
                "another certificate next to the key",
                Seen {
                    cert_key: Some([4; 32]),
                    ..pair(2, 100)
                },
            ),
        ] {
            let card = HashMap::from([(T, pair(1, 10)), (R1, r1)]);
            assert_eq!(judge(&m, &card), None, "{why}");
        }
    }

    #[test]
    fn a_newer_pair_in_the_target_wins_again() {
        let m = marker(&[record(R1, 2, 100)]);
        let card = HashMap::from([(T, pair(5, 200)), (R1, pair(2, 100))]);
        assert_eq!(judge(&m, &card), None, "re-issued in 9A later");
        let card = HashMap::from([(T, pair(2, 100)), (R1, pair(2, 100))]);
        assert_eq!(judge(&m, &card), None, "the key is in the target");
    }

    #[test]
    fn a_role_renewed_twice_lives_in_the_newest_slot() {
        let m = marker(&[record(R1, 2, 100), record(R2, 3, 400)]);
        let card = HashMap::from([(T, pair(1, 10)), (R1, pair(2, 100)), (R2, pair(3, 400))]);
        assert_eq!(judge(&m, &card), Some((R2, vec![R1])));
        // The newest gone: the earlier one holds the role again.
        let card = HashMap::from([(T, pair(1, 10)), (R1, pair(2, 100))]);
        assert_eq!(judge(&m, &card), Some((R1, vec![])));
    }

    #[test]
    fn two_renewals_in_the_same_second_go_by_the_order_of_their_records() {
        // Same certificate start, same install time: the later record wins.
        let m = marker(&[record(R1, 2, 100), record(R2, 3, 100)]);
        let card = HashMap::from([(T, pair(1, 10)), (R1, pair(2, 100)), (R2, pair(3, 100))]);
        assert_eq!(judge(&m, &card), Some((R2, vec![R1])));
    }
}
