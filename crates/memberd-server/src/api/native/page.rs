//! Cursor pagination shared by every native list: `?limit=&after=` in,
//! `{data, hasMore, nextCursor, totalCount}` out.

use memberd_store::{Cursor, Order, Page, PageCursor, PageRequest};
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::query_param;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

pub fn parse_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    let limit = query_param(
        "limit",
        raw,
        &format!("a whole number from 1 to {MAX_LIMIT}"),
        |s| {
            s.parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
        },
    )?;
    Ok(limit.unwrap_or(DEFAULT_LIMIT))
}

pub fn parse_cursor(raw: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    query_param(
        "after",
        raw,
        "the nextCursor of a previous page",
        Cursor::decode,
    )
}

pub fn parse_order(raw: Option<&str>) -> Result<Order, ApiError> {
    let order = query_param("order", raw, "asc or desc", |s| {
        if s.eq_ignore_ascii_case("asc") {
            Some(Order::Asc)
        } else if s.eq_ignore_ascii_case("desc") {
            Some(Order::Desc)
        } else {
            None
        }
    })?;
    Ok(order.unwrap_or_default())
}

pub fn page_request(
    limit: Option<&str>,
    after: Option<&str>,
    order: Option<&str>,
) -> Result<PageRequest, ApiError> {
    Ok(PageRequest {
        after: parse_cursor(after)?,
        limit: parse_limit(limit)?,
        order: parse_order(order)?,
    })
}

/// One page of a list. The OpenAPI document names a concrete type per list (`MemberList`,
/// …) through the aliases below.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOut<T> {
    pub data: Vec<T>,
    pub has_more: bool,
    /// Pass as `after` to read the next page; null on an empty page.
    pub next_cursor: Option<String>,
    pub total_count: i64,
}

impl<T> ListOut<T> {
    pub fn from_page<U, C: PageCursor>(page: Page<U, C>, render: impl FnMut(U) -> T) -> Self {
        ListOut {
            data: page.items.into_iter().map(render).collect(),
            has_more: page.has_more,
            next_cursor: page.next_cursor.map(PageCursor::encode),
            total_count: page.total_count,
        }
    }
}

/// Declares the OpenAPI schema of a list of `$item`.
macro_rules! list_schema {
    ($name:ident, $item:ty) => {
        #[derive(serde::Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase")]
        #[allow(dead_code)]
        pub struct $name {
            pub data: Vec<$item>,
            pub has_more: bool,
            /// Pass as `after` to read the next page; null on an empty page.
            pub next_cursor: Option<String>,
            pub total_count: i64,
        }
    };
}
pub(crate) use list_schema;
