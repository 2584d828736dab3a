//! The renewal verdict of a certificate: the one rule `status` and the
//! renewal commands share. CAs renew online only in the last days before
//! expiry (90 by default) and never after it.

use crate::certs::CertSummary;
use serde::Serialize;
use std::time::SystemTime;

pub const DEFAULT_WINDOW_DAYS: u32 = 90;
const DAY_SECS: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Valid, and not yet inside the renewal window.
    Ok,
    /// Inside the window: renew now.
    Renewable,
    /// Past its end: online renewal is impossible.
    Expired,
    /// No certificate in the slot.
    Missing,
    /// A certificate the slot cannot use: no key, or a key it does not
    /// certify. Never `ok`, whatever the dates say.
    Unusable,
    /// A renewed pair in a retired slot holds this slot's role (a card
    /// without MOVE KEY): the pair here is the old one, kept until it
    /// expires; renewing the role renews the pair in the retired slot.
    Superseded,
}

fn seconds_left(not_after: SystemTime, now: SystemTime) -> i64 {
    match not_after.duration_since(now) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Days from `now` until `not_after`, counting a started day as a day
/// (a certificate issued "for 25 days" shows 25); 0 or less once expired.
pub fn days_left(not_after: SystemTime, now: SystemTime) -> i64 {
    let secs = seconds_left(not_after, now);
    secs.div_euclid(DAY_SECS) + i64::from(secs.rem_euclid(DAY_SECS) != 0)
}

/// Renewable when at most `window_days` days are left.
pub fn judge(cert: Option<&CertSummary>, now: SystemTime, window_days: u32) -> Verdict {
    match cert {
        None => Verdict::Missing,
        Some(c) if c.not_after <= now => Verdict::Expired,
        Some(c) if seconds_left(c.not_after, now) <= i64::from(window_days) * DAY_SECS => {
            Verdict::Renewable
        }
        Some(_) => Verdict::Ok,
    }
}

impl Verdict {
    /// One sentence for people.
    pub fn explain(self, days_left: Option<i64>, window_days: u32) -> String {
        match self {
            Verdict::Ok => format!(
                "ok: renewable from {window_days} days before expiry{}",
                days_left
                    .map(|d| format!(" (in {} days)", d - i64::from(window_days)))
                    .unwrap_or_default()
            ),
            Verdict::Renewable => format!(
                "RENEWABLE now: within the {window_days}-day renewal window, {} left",
                match days_left {
                    Some(1) => "less than a day".to_string(),
                    Some(d) => format!("{d} days"),
                    None => "some days".to_string(),
                }
            ),
            Verdict::Expired => "EXPIRED: online renewal is no longer possible; the CA must \
                                 issue a new certificate (in person or by post)"
                .to_string(),
            Verdict::Missing => "missing: no certificate in this slot".to_string(),
            Verdict::Unusable => "UNUSABLE: this slot cannot sign with its certificate (see the \
                                  problem above)"
                .to_string(),
            Verdict::Superseded => "superseded: a renewed pair in a retired slot holds this \
                                    slot's role; this old pair stays until it expires"
                .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cert(now: SystemTime, secs_left: i64) -> CertSummary {
        let not_after = if secs_left >= 0 {
            now + Duration::from_secs(secs_left as u64)
        } else {
            now - Duration::from_secs((-secs_left) as u64)
        };
        CertSummary {
            subject: Default::default(),
            issuer: Default::default(),
            serial_hex: String::new(),
            not_before: now,
            not_after,
            not_before_unix: 0,
            not_before_text: String::new(),
            not_after_text: String::new(),
            spki_der: vec![],
        }
    }

    #[test]
    fn window_edges() {
        let now = SystemTime::now();
        let day = 86_400;
        assert_eq!(judge(None, now, 90), Verdict::Missing);
        assert_eq!(judge(Some(&cert(now, -1)), now, 90), Verdict::Expired);
        assert_eq!(judge(Some(&cert(now, 0)), now, 90), Verdict::Expired);
        assert_eq!(judge(Some(&cert(now, 10)), now, 90), Verdict::Renewable);
        assert_eq!(
            judge(Some(&cert(now, 25 * day)), now, 90),
            Verdict::Renewable
        );
        assert_eq!(
            judge(Some(&cert(now, 90 * day)), now, 90),
            Verdict::Renewable
        );
        assert_eq!(judge(Some(&cert(now, 90 * day + 1)), now, 90), Verdict::Ok);
        assert_eq!(judge(Some(&cert(now, 700 * day)), now, 90), Verdict::Ok);
        assert_eq!(judge(Some(&cert(now, 25 * day)), now, 20), Verdict::Ok);
    }

    #[test]
    fn days_left_counts_whole_days() {
        let now = SystemTime::now();
        assert_eq!(days_left(now + Duration::from_secs(86_400 * 25), now), 25);
        assert_eq!(
            days_left(now + Duration::from_secs(86_400 * 25 - 5), now),
            25
        );
        assert_eq!(
            days_left(now + Duration::from_secs(86_400 * 25 + 5), now),
            26
        );
        assert_eq!(days_left(now + Duration::from_secs(10), now), 1);
        assert_eq!(days_left(now - Duration::from_secs(10), now), 0);
        assert_eq!(days_left(now - Duration::from_secs(86_400 * 3), now), -3);
    }
}
