//! How an email in the outbox fares: its states, and when a failed send is tried again.

use crate::Timestamp;

/// An email is given up on when it could not be sent for this long after it was written.
pub const GIVE_UP_AFTER_SECS: i64 = 24 * 60 * 60;
/// The longest wait between two tries.
pub const LONGEST_WAIT_SECS: i64 = 60 * 60;

/// Where an email is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(rename_all = "snake_case"))]
pub enum EmailState {
    /// Waiting for the sender (also between tries).
    Queued,
    /// The SMTP server took it.
    Sent,
    /// Refused for good, or not sent within a day.
    Failed,
    /// Kept, not sent: no SMTP server is configured.
    NotSent,
}

impl EmailState {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailState::Queued => "queued",
            EmailState::Sent => "sent",
            EmailState::Failed => "failed",
            EmailState::NotSent => "not_sent",
        }
    }

    pub fn parse(raw: &str) -> Option<EmailState> {
        [
            EmailState::Queued,
            EmailState::Sent,
            EmailState::Failed,
            EmailState::NotSent,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// When to try again after `tries` failed tries of an email written at `created_at`, or
/// `None` when a day has gone by and it is time to give up. The wait starts at
/// `first_wait_ms` and doubles, up to an hour; `jitter` in [0, 1) adds up to a tenth, so that
/// a server coming back is not hit by every waiting email at once.
pub fn next_try(
    tries: u32,
    created_at: Timestamp,
    now: Timestamp,
    first_wait_ms: i64,
    jitter: f64,
) -> Option<Timestamp> {
    let doublings = tries.saturating_sub(1).min(30);
    let wait_ms = first_wait_ms
        .max(1)
        .saturating_mul(1_i64 << doublings)
        .min(LONGEST_WAIT_SECS * 1_000);
    let spread = (wait_ms as f64 * 0.1 * jitter.clamp(0.0, 1.0)) as i64;
    let at = now.as_micros().saturating_add((wait_ms + spread) * 1_000);
    (at <= created_at.as_micros() + GIVE_UP_AFTER_SECS * 1_000_000)
        .then(|| Timestamp::from_micros(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn waits_double_up_to_an_hour_and_stop_after_a_day() {
        let created = t("2026-01-01T00:00:00Z");
        assert_eq!(
            next_try(1, created, created, 30_000, 0.0),
            Some(t("2026-01-01T00:00:30Z"))
        );
        assert_eq!(
            next_try(2, created, created, 30_000, 0.0),
            Some(t("2026-01-01T00:01:00Z"))
        );
        assert_eq!(
            next_try(20, created, created, 30_000, 0.0),
            Some(t("2026-01-01T01:00:00Z"))
        );
        let late = t("2026-01-01T23:30:00Z");
        assert_eq!(next_try(20, created, late, 30_000, 0.0), None);
    }

    #[test]
    fn states_round_trip() {
        for s in ["queued", "sent", "failed", "not_sent"] {
            assert_eq!(EmailState::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(EmailState::parse("bounced"), None);
    }
}
