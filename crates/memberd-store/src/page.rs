/// A position in a list: the internal sequence number of the last item seen. Items are
/// ordered by it, so a page costs the same however deep it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(pub i64);

impl Cursor {
    pub fn encode(self) -> String {
        self.0.to_string()
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        s.parse::<i64>().ok().filter(|n| *n >= 0).map(Cursor)
    }
}

/// A position in the event log: the transaction that recorded the event, then its sequence
/// number. On PostgreSQL the log is ordered by transaction, not by number alone: numbers are
/// drawn before commit, and transactions commit in another order than they drew them (see
/// `events::record`). On SQLite `tx` is always 0, and the order is the numbers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EventCursor {
    pub tx: i64,
    pub seq: i64,
}

impl EventCursor {
    /// `seq` alone while `tx` is 0, which keeps the cursors of SQLite and of events recorded
    /// before the log was ordered by transaction as they were; `tx-seq` otherwise.
    pub fn encode(self) -> String {
        if self.tx == 0 {
            self.seq.to_string()
        } else {
            format!("{}-{}", self.tx, self.seq)
        }
    }

    pub fn decode(s: &str) -> Option<EventCursor> {
        let (tx, seq) = match s.split_once('-') {
            Some((tx, seq)) => (tx.parse::<i64>().ok()?, seq.parse::<i64>().ok()?),
            None => (0, s.parse::<i64>().ok()?),
        };
        (tx >= 0 && seq >= 0).then_some(EventCursor { tx, seq })
    }
}

/// A list position as the API renders it.
pub trait PageCursor: Copy {
    fn encode(self) -> String;
}

impl PageCursor for Cursor {
    fn encode(self) -> String {
        Cursor::encode(self)
    }
}

impl PageCursor for EventCursor {
    fn encode(self) -> String {
        EventCursor::encode(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Items strictly after (in `order`) this cursor.
    pub after: Option<Cursor>,
    /// How many items at most; the store does not cap it, the adapters do.
    pub limit: u32,
    pub order: Order,
}

#[derive(Debug, Clone)]
pub struct Page<T, C = Cursor> {
    pub items: Vec<T>,
    pub has_more: bool,
    /// The cursor of the last item of this page, if it has any.
    pub next_cursor: Option<C>,
    /// How many items match the filter, over all pages.
    pub total_count: i64,
}

#[cfg(test)]
mod tests {
    use super::EventCursor;

    #[test]
    fn event_cursors_survive_the_round_trip() {
        for cursor in [
            EventCursor { tx: 0, seq: 0 },
            EventCursor { tx: 0, seq: 42 },
            EventCursor {
                tx: 7_654_321,
                seq: 42,
            },
        ] {
            assert_eq!(EventCursor::decode(&cursor.encode()), Some(cursor));
        }
        assert_eq!(EventCursor { tx: 0, seq: 42 }.encode(), "42");
        for bad in ["", "-", "1-", "-1", "x", "1-x", "1-2-3", "-1-2"] {
            assert_eq!(EventCursor::decode(bad), None, "{bad:?}");
        }
    }
}
