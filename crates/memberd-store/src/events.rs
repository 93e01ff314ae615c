use memberd_core::event::Event;
use memberd_core::{EventId, Scope};

use crate::{Cursor, Page, Result, Store};

impl Store {
    /// The event log of a scope in the order the events were recorded: the change feed.
    /// `types` empty means every type. On PostgreSQL, events are numbered under a per-scope
    /// lock held to commit, so a reader never sees a later event before an earlier one.
    pub async fn list_events(
        &self,
        scope: &Scope,
        after: Option<Cursor>,
        types: &[String],
        limit: u32,
    ) -> Result<Page<Event>> {
        todo!()
    }

    pub async fn get_event(&self, scope: &Scope, id: &EventId) -> Result<Option<Event>> {
        todo!()
    }

    /// The cursor of an event, so that `?after=evt_…` works as well as `?after=<cursor>`.
    pub async fn event_cursor(&self, scope: &Scope, id: &EventId) -> Result<Option<Cursor>> {
        todo!()
    }
}
