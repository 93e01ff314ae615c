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
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
    /// The cursor of the last item of this page, if it has any.
    pub next_cursor: Option<Cursor>,
    /// How many items match the filter, over all pages.
    pub total_count: i64,
}
