//! Writing every member of an environment, with their plan connections, as JSON Lines or CSV
//! that `memberd import` reads back: for `memberd export`, `GET /v1/members/export` and the
//! dashboard alike. Members are read a page at a time, so memory stays flat for any size.

use axum::body::{Body, Bytes};
use memberd_core::Scope;
use memberd_store::{
    Cursor, MemberFilter, MemberView, Order, Page, PageRequest, Store, StoreError,
};

use crate::records::{record_of, MemberRecord};

/// Members read per page.
pub const EXPORT_PAGE: u32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "application/jsonl; charset=utf-8",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

/// The CSV columns, in order: names `memberd import` reads. JSON values (custom fields,
/// metadata, json, plan connections) are JSON text in their cell.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "email",
    "verified",
    "externalId",
    "stripeCustomerId",
    "loginRedirect",
    "profileImage",
    "customFields",
    "metaData",
    "json",
    "permissions",
    "lastLogin",
    "createdAt",
    "updatedAt",
    "planConnections",
];

/// Renders pages of members; the first page of a CSV file starts with its header.
pub struct Exporter {
    format: ExportFormat,
    with_password_hashes: bool,
    started: bool,
}

impl Exporter {
    pub fn new(format: ExportFormat, with_password_hashes: bool) -> Self {
        Exporter {
            format,
            with_password_hashes,
            started: false,
        }
    }

    pub fn page(&mut self, members: &[MemberView]) -> Vec<u8> {
        let first = !std::mem::replace(&mut self.started, true);
        let records = members
            .iter()
            .map(|view| record_of(view, self.with_password_hashes));
        match self.format {
            ExportFormat::Jsonl => {
                let mut out = Vec::with_capacity(members.len() * 256);
                for record in records {
                    // A record is maps and strings: it always serializes.
                    if serde_json::to_writer(&mut out, &record).is_ok() {
                        out.push(b'\n');
                    }
                }
                out
            }
            ExportFormat::Csv => {
                let mut writer = csv::Writer::from_writer(Vec::with_capacity(members.len() * 256));
                if first {
                    let mut header = CSV_COLUMNS.to_vec();
                    if self.with_password_hashes {
                        header.push("passwordHash");
                    }
                    let _ = writer.write_record(header);
                }
                for record in records {
                    let _ = writer.write_record(csv_row(&record, self.with_password_hashes));
                }
                writer.into_inner().unwrap_or_default()
            }
        }
    }
}

fn csv_row(r: &MemberRecord, with_password_hash: bool) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let json = |v: Option<serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
    let time = |t: Option<memberd_core::Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    let mut row = vec![
        r.id.as_ref().map(|id| id.to_string()).unwrap_or_default(),
        r.email.clone(),
        r.verified.unwrap_or(false).to_string(),
        text(&r.external_id),
        text(&r.stripe_customer_id),
        text(&r.login_redirect),
        text(&r.profile_image),
        json(r.custom_fields.clone().map(serde_json::Value::Object)),
        json(r.meta_data.clone().map(serde_json::Value::Object)),
        json(r.json.clone()),
        r.permissions.clone().unwrap_or_default().join(","),
        time(r.last_login),
        time(r.created_at),
        time(r.updated_at),
        if r.plan_connections.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&r.plan_connections).unwrap_or_default()
        },
    ];
    if with_password_hash {
        row.push(text(&r.password_hash));
    }
    row
}

/// The page of members after `after`, oldest first.
pub async fn next_page(
    store: &Store,
    scope: &Scope,
    after: Option<Cursor>,
) -> Result<Page<MemberView>, StoreError> {
    let page = PageRequest {
        after,
        limit: EXPORT_PAGE,
        order: Order::Asc,
    };
    store
        .list_members(scope, &MemberFilter::default(), page)
        .await
}

/// Every member as a response body, written as it is read. A failure part-way ends the body
/// with an error, so that the client sees a broken download rather than a short file.
pub fn body(store: Store, scope: Scope, format: ExportFormat) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let mut exporter = Exporter::new(format, false);
        let mut after = None;
        loop {
            let page = match next_page(&store, &scope, after).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(%error, "an export could not read the members");
                    let failed = std::io::Error::other("the export could not read the members");
                    let _ = tx.send(Err(failed)).await;
                    return;
                }
            };
            let chunk = exporter.page(&page.items);
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() || !page.has_more {
                return;
            }
            after = page.next_cursor;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(stream)
}
