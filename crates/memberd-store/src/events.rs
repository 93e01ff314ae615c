use std::time::{Duration, Instant};

use memberd_core::event::Event;
use memberd_core::{EventId, NewEvent, Scope, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool};

use crate::plans::into_page;
use crate::rows::{int, json_value, text, to_json, ts};
use crate::sql::Sql;
use crate::{Backend, EventCursor, Page, Result, Store};

/// Appends events to the log inside the caller's transaction.
///
/// Nothing is locked: on PostgreSQL a lock held until commit would make one environment's
/// writes commit one after another, each waiting for its own WAL flush. Instead each row
/// carries its transaction's id (the column's default), and the log is read in transaction
/// order, only as far as every earlier transaction has ended (`settled`). SQLite has a
/// single writer; there `tx` stays 0 and the order is the sequence numbers'.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    scope: &Scope,
    events: &[NewEvent],
    now: Timestamp,
) -> Result<()> {
    for event in events {
        sqlx::query(
            "INSERT INTO events (id, app_id, env, type, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(EventId::generate().as_str())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(event.kind.as_str())
        .bind(to_json(&event.data).as_str())
        .bind(now.as_micros())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Where the settled part of the log ends on PostgreSQL: the oldest transaction that was
/// running in this database when the statement's snapshot was taken (or, if none was, the
/// first transaction the snapshot does not see). Transactions of other databases on the same
/// server are left out when PostgreSQL says where they run; any it does not (one that ended
/// meanwhile, a prepared one) counts, which can only hold events back, never skip them.
const HORIZON: &str = "(SELECT COALESCE(MIN(x::text::bigint), \
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint) \
    FROM pg_snapshot_xip(pg_current_snapshot()) AS x \
    WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
    WHERE a.backend_xid::text::bigint = x::text::bigint % 4294967296 \
    AND a.datname <> current_database()))";

/// Keeps a read of the log to the events whose place in it is final: those of transactions
/// older than every transaction of this database still running (`HORIZON`). A reader that
/// has passed an event can then never meet one that sorts before it; an event waits, at
/// most, for the transactions that began writing before it to end.
pub(crate) fn settled(backend: Backend) -> String {
    match backend {
        Backend::Postgres => format!(" AND tx < {HORIZON}"),
        Backend::Sqlite => String::new(),
    }
}

/// How a read of the log waits for events that have committed but are not settled yet.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FeedWait {
    /// Until all of them are, or the deadline: a client reads its own writes in the feed.
    ForAll(Instant),
    /// Only while none at all is, until the deadline: the dispatcher, which has work as soon as
    /// one event has settled and takes the rest on its next pass.
    ForAny(Instant),
}

/// One read of a scope's log: the events after `after`, of `types` (all when empty).
pub(crate) struct FeedRead<'a> {
    pub scope: &'a Scope,
    pub types: &'a [String],
    pub after: Option<EventCursor>,
    pub limit: i64,
}

impl FeedRead<'_> {
    fn filter(&self, sql: &mut Sql) {
        sql.push(" WHERE app_id = ")
            .text(self.scope.app_id.as_str());
        sql.push(" AND env = ").text(self.scope.env.as_str());
        if !self.types.is_empty() {
            sql.push(" AND type")
                .in_list(self.types.iter().map(String::as_str));
        }
    }

    /// The events, settled or not, each saying which.
    fn list(&self, backend: Backend) -> Sql {
        let settled = match backend {
            Backend::Postgres => format!("CASE WHEN tx < {HORIZON} THEN 1 ELSE 0 END"),
            Backend::Sqlite => "1".to_owned(),
        };
        let mut sql = Sql::new(format!(
            "SELECT {EVENT_COLUMNS}, {settled} AS settled FROM events"
        ));
        self.filter(&mut sql);
        if let Some(EventCursor { tx, seq }) = self.after {
            sql.push(" AND (tx, seq) > (")
                .int(tx)
                .push(", ")
                .int(seq)
                .push(")");
        }
        sql.push(" ORDER BY tx, seq LIMIT ").int(self.limit);
        sql
    }

    /// How many settled events match, over all pages.
    fn count(&self, backend: Backend) -> Sql {
        let mut sql = Sql::new("SELECT COUNT(*) AS n FROM events");
        self.filter(&mut sql);
        sql.push(&settled(backend));
        sql
    }
}

pub(crate) fn cursor_from_row(row: &AnyRow) -> Result<EventCursor> {
    Ok(EventCursor {
        tx: int(row, "tx")?,
        seq: int(row, "seq")?,
    })
}

/// Where the settled log of a scope ends now: a cursor that reads only what comes after.
pub(crate) async fn feed_end(
    pool: &AnyPool,
    backend: Backend,
    scope: &Scope,
) -> Result<EventCursor> {
    let row = sqlx::query(&format!(
        "SELECT tx, seq FROM events WHERE app_id = $1 AND env = $2{} \
         ORDER BY tx DESC, seq DESC LIMIT 1",
        settled(backend)
    ))
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(row
        .as_ref()
        .map(cursor_from_row)
        .transpose()?
        .unwrap_or_default())
}

pub(crate) const EVENT_COLUMNS: &str = "tx, seq, id, type, data, created_at";

pub(crate) fn event_from_row(row: &AnyRow) -> Result<Event> {
    Ok(Event {
        id: EventId::from_trusted(text(row, "id")?),
        kind: text(row, "type")?,
        data: json_value(row, "data")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Which events a person is looking for.
#[derive(Debug, Clone, Default)]
pub struct EventBrowse {
    pub member: Option<memberd_core::MemberId>,
    /// Any of these types; empty is every type.
    pub types: Vec<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Older than this position.
    pub before: Option<EventCursor>,
    pub limit: u32,
}

impl Store {
    /// The event log of a scope in the order the events were committed: the change feed.
    /// `types` empty means every type. Every event whose change committed before the call is
    /// there, unless on PostgreSQL a transaction that began writing before it runs for a
    /// second more (see `read_feed`).
    pub async fn list_events(
        &self,
        scope: &Scope,
        after: Option<EventCursor>,
        types: &[String],
        limit: u32,
    ) -> Result<Page<Event, EventCursor>> {
        let read = FeedRead {
            scope,
            types,
            after,
            limit: i64::from(limit) + 1,
        };
        let wait = FeedWait::ForAll(Instant::now() + Duration::from_secs(1));
        let items = self.read_feed(&read, wait).await?;
        let total = int(
            &read
                .count(self.backend)
                .query()
                .fetch_one(self.reads().await?)
                .await?,
            "n",
        )?;
        Ok(into_page(items, limit, total))
    }

    /// The settled events of `read`, in the log's order. On PostgreSQL, events that have
    /// committed but are not settled yet (a transaction that began writing before them is
    /// still running: usually for a millisecond) are waited for as `wait` says; what has not
    /// settled by its deadline is left for the next read.
    pub(crate) async fn read_feed(
        &self,
        read: &FeedRead<'_>,
        wait: FeedWait,
    ) -> Result<Vec<(EventCursor, Event)>> {
        let list = read.list(self.backend);
        let mut rows = list.query().fetch_all(self.reads().await?).await?;
        let mut settled = 0;
        let mut newest_unsettled = None;
        for row in &rows {
            if int(row, "settled")? == 0 {
                newest_unsettled = newest_unsettled.max(Some(int(row, "tx")?));
            } else {
                settled += 1;
            }
        }
        let deadline = match wait {
            FeedWait::ForAll(deadline) => Some(deadline),
            FeedWait::ForAny(deadline) => (settled == 0).then_some(deadline),
        };
        if let (Some(tx), Some(deadline)) = (newest_unsettled, deadline) {
            if self.wait_until_settled(tx, deadline).await? {
                rows = list.query().fetch_all(self.reads().await?).await?;
            }
        }
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            // Settled events come first: their transactions are older than any other's.
            if int(row, "settled")? == 0 {
                break;
            }
            events.push((cursor_from_row(row)?, event_from_row(row)?));
        }
        Ok(events)
    }

    /// Waits until every transaction up to `tx` has ended, or `deadline` has passed (false).
    async fn wait_until_settled(&self, tx: i64, deadline: Instant) -> Result<bool> {
        let mut pause = Duration::from_millis(1);
        loop {
            let row = sqlx::query(&format!("SELECT {HORIZON} AS horizon"))
                .fetch_one(self.reads().await?)
                .await?;
            if int(&row, "horizon")? > tx {
                return Ok(true);
            }
            if Instant::now() + pause > deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// The newest events of the scope, newest first, for people to glance at (the feed's
    /// order, not its settling: an event still settling may show before an older one).
    /// `member` keeps to the events about one member.
    pub async fn latest_events(
        &self,
        scope: &Scope,
        member: Option<&memberd_core::MemberId>,
        limit: u32,
    ) -> Result<Vec<Event>> {
        let browse = EventBrowse {
            member: member.cloned(),
            limit,
            ..EventBrowse::default()
        };
        Ok(self
            .browse_events(scope, &browse)
            .await?
            .0
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    /// A page of the scope's events as `browse` picks them, newest first, each with its
    /// cursor, and whether older ones are left.
    pub async fn browse_events(
        &self,
        scope: &Scope,
        browse: &EventBrowse,
    ) -> Result<(Vec<(EventCursor, Event)>, bool)> {
        let mut sql = Sql::new(format!(
            "SELECT tx, seq, {EVENT_COLUMNS} FROM events WHERE app_id = "
        ));
        sql.text(scope.app_id.as_str());
        sql.push(" AND env = ").text(scope.env.as_str());
        if let Some(member) = &browse.member {
            // Events carry the member's id in their body, and an id is long and random: a
            // match on the text finds that member's events (reading the scope's log, which
            // is fine for a person's page).
            sql.push(" AND data LIKE ").text(format!("%\"{member}\"%"));
        }
        if !browse.types.is_empty() {
            sql.push(" AND type IN (");
            for (i, kind) in browse.types.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.text(kind);
            }
            sql.push(")");
        }
        if let Some(from) = browse.from {
            sql.push(" AND created_at >= ").int(from.as_micros());
        }
        if let Some(to) = browse.to {
            sql.push(" AND created_at < ").int(to.as_micros());
        }
        if let Some(before) = browse.before {
            sql.push(" AND (tx < ").int(before.tx);
            sql.push(" OR (tx = ").int(before.tx);
            sql.push(" AND seq < ").int(before.seq);
            sql.push("))");
        }
        sql.push(&format!(
            " ORDER BY tx DESC, seq DESC LIMIT {}",
            browse.limit + 1
        ));
        let mut rows = sql
            .query()
            .fetch_all(self.reads().await?)
            .await?
            .iter()
            .map(|row| Ok((cursor_from_row(row)?, event_from_row(row)?)))
            .collect::<Result<Vec<_>>>()?;
        let more = rows.len() > browse.limit as usize;
        rows.truncate(browse.limit as usize);
        Ok((rows, more))
    }

    pub async fn get_event(&self, scope: &Scope, id: &EventId) -> Result<Option<Event>> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE app_id = $1 AND env = $2 AND id = $3"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .fetch_optional(self.reads().await?)
        .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    /// The cursor of an event, so that `?after=evt_…` works as well as `?after=<cursor>`.
    pub async fn event_cursor(&self, scope: &Scope, id: &EventId) -> Result<Option<EventCursor>> {
        let row =
            sqlx::query("SELECT tx, seq FROM events WHERE app_id = $1 AND env = $2 AND id = $3")
                .bind(scope.app_id.as_str())
                .bind(scope.env.as_str())
                .bind(id.as_str())
                .fetch_optional(self.reads().await?)
                .await?;
        row.as_ref().map(cursor_from_row).transpose()
    }
}
