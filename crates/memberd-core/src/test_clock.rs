//! Test clocks: a sandbox's way to move time on for a set of members, so that a year of
//! renewals, failed charges and expiries can be watched in seconds, as with Stripe's.

use crate::{DomainError, TestClockId, Timestamp};

/// How far one advance may move a clock. Every renewal on the way is applied before the advance
/// returns, so a bound keeps one request from asking for centuries of daily charges.
pub const MAX_ADVANCE_DAYS: u32 = 3 * 366;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestClock {
    pub id: TestClockId,
    /// The time the clock's members live at; it only moves forward.
    pub frozen_time: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TestClock {
    pub fn create(frozen_time: Timestamp, now: Timestamp) -> TestClock {
        TestClock {
            id: TestClockId::generate(),
            frozen_time,
            created_at: now,
            updated_at: now,
        }
    }

    /// Moves the clock to `to`. Moving to the time it shows already is allowed: it finishes
    /// what an interrupted advance left due.
    pub fn advance(&self, to: Timestamp, now: Timestamp) -> Result<TestClock, DomainError> {
        if to < self.frozen_time {
            return Err(DomainError::invalid(
                "frozenTime",
                "clock_backwards",
                format!(
                    "a test clock only moves forward: it shows {} already",
                    self.frozen_time
                ),
            ));
        }
        if to > self.frozen_time.plus_days(MAX_ADVANCE_DAYS) {
            return Err(DomainError::invalid(
                "frozenTime",
                "advance_too_far",
                format!("one advance moves a test clock at most {MAX_ADVANCE_DAYS} days; advance in steps"),
            ));
        }
        Ok(TestClock {
            frozen_time: to,
            updated_at: now,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn a_clock_moves_forward_only_and_not_too_far_at_once() {
        let clock = TestClock::create(at("2026-01-01"), at("2026-11-23"));
        let moved = clock.advance(at("2026-02-01"), at("2026-11-24")).unwrap();
        assert_eq!(moved.frozen_time, at("2026-02-01"));
        assert_eq!(moved.created_at, clock.created_at);
        assert!(moved.advance(at("2026-02-01"), at("2026-11-24")).is_ok());
        let back = moved
            .advance(at("2026-01-15"), at("2026-11-24"))
            .unwrap_err();
        assert!(matches!(
            back,
            DomainError::Invalid {
                code: "clock_backwards",
                ..
            }
        ));
        let far = moved
            .advance(at("2030-01-01"), at("2026-11-24"))
            .unwrap_err();
        assert!(matches!(
            far,
            DomainError::Invalid {
                code: "advance_too_far",
                ..
            }
        ));
    }
}
