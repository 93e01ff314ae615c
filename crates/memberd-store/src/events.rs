use memberd_core::event::Event;
use memberd_core::{EventId, NewEvent, Scope, Timestamp};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::plans::{fetch_page, page_tail};
use crate::rows::{int, json_value, text, to_json, ts};
use crate::sql::Sql;
use crate::{Backend, Cursor, Order, Page, PageRequest, Result, Store};

/// Appends events to the log inside the caller's transaction.
///
/// On PostgreSQL, concurrent transactions could take sequence numbers in one order and commit
/// in another, and a reader of the feed that had passed number 10 would never see a 9 that
/// committed after it. A per-scope advisory lock, held until commit, makes numbering order
/// commit order. SQLite has a single writer, so the order is already right there.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    backend: Backend,
    scope: &Scope,
    events: &[NewEvent],
    now: Timestamp,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // On PostgreSQL the first insert takes the lock itself: one round trip fewer while it is
    // held, and everything else this scope writes waits for it.
    let locked_insert = "INSERT INTO events (id, app_id, env, type, data, created_at) \
         SELECT $1, $2, $3, $4, $5, $6 FROM (SELECT pg_advisory_xact_lock(hashtext($7))) AS lock";
    let lock_name = format!("events:{}:{}", scope.app_id, scope.env);
    for (i, event) in events.iter().enumerate() {
        let take_lock = i == 0 && backend == Backend::Postgres;
        let id = EventId::generate();
        let data = to_json(&event.data);
        let query = sqlx::query(if take_lock {
            locked_insert
        } else {
            "INSERT INTO events (id, app_id, env, type, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        })
        .bind(id.as_str())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(event.kind.as_str())
        .bind(data.as_str())
        .bind(now.as_micros());
        let query = if take_lock {
            query.bind(lock_name.as_str())
        } else {
            query
        };
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

const EVENT_COLUMNS: &str = "seq, id, type, data, created_at";

fn event_from_row(row: &AnyRow) -> Result<Event> {
    Ok(Event {
        id: EventId::from_trusted(text(row, "id")?),
        kind: text(row, "type")?,
        data: json_value(row, "data")?,
        created_at: ts(row, "created_at")?,
    })
}

impl Store {
    /// The event log of a scope in the order the events were recorded: the change feed.
    /// `types` empty means every type.
    pub async fn list_events(
        &self,
        scope: &Scope,
        after: Option<Cursor>,
        types: &[String],
        limit: u32,
    ) -> Result<Page<Event>> {
        let filtered = |sql: &mut Sql| {
            sql.push(" WHERE app_id = ").text(scope.app_id.as_str());
            sql.push(" AND env = ").text(scope.env.as_str());
            if !types.is_empty() {
                sql.push(" AND type IN (");
                for (i, t) in types.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.text(t.as_str());
                }
                sql.push(")");
            }
        };
        let page = PageRequest {
            after,
            limit,
            order: Order::Asc,
        };
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM events");
        filtered(&mut count);
        let mut list = Sql::new(format!("SELECT {EVENT_COLUMNS} FROM events"));
        filtered(&mut list);
        page_tail(&mut list, "seq", page);

        fetch_page(&self.read, &count, &list, page, event_from_row).await
    }

    pub async fn get_event(&self, scope: &Scope, id: &EventId) -> Result<Option<Event>> {
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE app_id = $1 AND env = $2 AND id = $3"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    /// The cursor of an event, so that `?after=evt_…` works as well as `?after=<cursor>`.
    pub async fn event_cursor(&self, scope: &Scope, id: &EventId) -> Result<Option<Cursor>> {
        let row = sqlx::query("SELECT seq FROM events WHERE app_id = $1 AND env = $2 AND id = $3")
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| int(&r, "seq").map(Cursor)).transpose()
    }
}
