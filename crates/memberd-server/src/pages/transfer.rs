//! Import and export: a CSV or JSON Lines file uploaded into `memberd import`'s engine (the
//! same checks, the same batches), with its progress and its rejected rows to download; and
//! every member with their plans as CSV, streamed a page at a time, for any size.
//!
//! An import runs as a task of the node that took the upload, and its progress is kept in that
//! node's memory for an hour: behind a load balancer, its page is that node's (sticky
//! sessions), and a restart forgets it (what was written stays written).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use memberd_core::operator::Capability;
use memberd_core::Scope;
use memberd_store::Store;

use super::auth::same_token;
use super::layout::{self, csrf, Section};
use super::{see_other, PageError, PageResult, Place};
use crate::export::ExportFormat;
use crate::import::{describe, plans_of, read_all, write_batch, How, Raw, Source};
use crate::state::AppState;

/// Rows per transaction: small enough that the progress moves on a file of a thousand.
const BATCH_ROWS: usize = 500;
/// How long a finished import's report is kept.
const KEPT_FOR: Duration = Duration::from_secs(3600);
/// Rejected rows whose reason the page lists (all are in the download).
const LISTED_REJECTS: usize = 100;

/// The imports this node runs or ran lately, by id.
#[derive(Clone, Default)]
pub struct ImportJobs(Arc<Mutex<HashMap<String, ImportJob>>>);

#[derive(Clone)]
pub struct ImportJob {
    scope: Scope,
    file_name: String,
    csv: bool,
    total_bytes: u64,
    read_bytes: u64,
    imported: u64,
    rejected: u64,
    done: bool,
    failure: Option<String>,
    reasons: Vec<String>,
    /// The rejected rows as they stood (a CSV file starts with the input's header).
    rejects: Vec<u8>,
    finished_at: Option<Instant>,
}

impl ImportJobs {
    fn get(&self, id: &str, scope: &Scope) -> Option<ImportJob> {
        let jobs = self.0.lock().ok()?;
        jobs.get(id).filter(|j| &j.scope == scope).cloned()
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut ImportJob)) {
        if let Ok(mut jobs) = self.0.lock() {
            if let Some(job) = jobs.get_mut(id) {
                change(job);
            }
        }
    }

    fn start(&self, id: &str, job: ImportJob) {
        if let Ok(mut jobs) = self.0.lock() {
            jobs.retain(|_, j| j.finished_at.is_none_or(|t| t.elapsed() < KEPT_FOR));
            jobs.insert(id.to_owned(), job);
        }
    }

    fn of_scope(&self, scope: &Scope) -> Vec<(String, ImportJob)> {
        self.0
            .lock()
            .map(|jobs| {
                jobs.iter()
                    .filter(|(_, j)| &j.scope == scope)
                    .map(|(id, j)| (id.clone(), j.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub async fn show(State(state): State<AppState>, place: Place) -> PageResult {
    let base = place.base();
    let jobs = state.imports().of_scope(&place.scope());
    let body = html! {
        h2 { "Export" }
        p { "Every member of this environment with their plan connections, as CSV: one row per member, written as it is read. Importing the file (here, or with " code { "memberd import" } ") into an environment with the same plans gives the same members back." }
        p { a.button href={ (base) "/transfer/members.csv" } download { "Export members (CSV)" } }
        h2 { "Import" }
        @if place.may(Capability::Change) {
            p { "A CSV file with a header row (email, password, verified, externalId, customFields.NAME, metaData.NAME, …) or JSON Lines, one member per line as " code { "POST /v1/members" } " takes it. Rows are checked as the API checks them; a row whose email or externalId is taken is skipped. No events or webhooks are sent for imported members." }
            form.stack method="post" action={ (base) "/transfer/import" } enctype="multipart/form-data" {
                (csrf(&place.signed_in.csrf))
                div.field {
                    label for="file" { "File" }
                    input #file type="file" name="file" accept=".csv,.jsonl,.ndjson,.json,text/csv" required;
                }
                div.actions { button type="submit" { "Import members" } }
            }
        } @else {
            p.hint { "Your role does not allow importing." }
        }
        @if !jobs.is_empty() {
            h2 { "Recent imports" }
            ul { @for (id, job) in &jobs {
                li { a href={ (base) "/transfer/import/" (id) } { (job.file_name) } ": " (job.imported) " imported, " (job.rejected) " rejected"
                    @if !job.done { " (running)" } }
            } }
        }
    };
    Ok(
        Html(layout::page(&place, Section::Transfer, "Import and export", body).into_string())
            .into_response(),
    )
}

/// Takes the upload and starts the import; answers with its progress page.
pub async fn import(
    State(state): State<AppState>,
    place: Place,
    mut multipart: Multipart,
) -> PageResult {
    let mut token = None;
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| PageError::bad_request(format!("The upload could not be read: {e}.")))?
    {
        match field.name() {
            Some(super::CSRF_FIELD) => token = field.text().await.ok(),
            Some("file") => {
                let name = field.file_name().unwrap_or("upload").to_owned();
                let bytes = field.bytes().await.map_err(|e| {
                    PageError::bad_request(format!("The file could not be read: {e}."))
                })?;
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    if !token.is_some_and(|t| same_token(&t, &place.signed_in.csrf)) {
        return Err(PageError::StaleForm);
    }
    place.require(Capability::Change, "import members")?;
    let Some((file_name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(PageError::bad_request(
            "Choose a file to import: it was empty or missing.",
        ));
    };
    let lower = file_name.to_ascii_lowercase();
    let csv = if lower.ends_with(".csv") {
        true
    } else if [".jsonl", ".ndjson", ".json"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        false
    } else {
        // Without a telling name, the first byte does: JSON Lines start with an object.
        bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{')
    };
    let id = memberd_core::ids::random_suffix(16);
    state.imports().start(
        &id,
        ImportJob {
            scope: place.scope(),
            file_name: file_name.clone(),
            csv,
            total_bytes: bytes.len() as u64,
            read_bytes: 0,
            imported: 0,
            rejected: 0,
            done: false,
            failure: None,
            reasons: Vec::new(),
            rejects: Vec::new(),
            finished_at: None,
        },
    );
    place
        .audit(
            &state,
            "members.imported",
            None,
            format!("started importing {file_name}"),
        )
        .await;
    tokio::spawn(run_import(
        state.store().clone(),
        state.imports().clone(),
        id.clone(),
        place.scope(),
        bytes,
        csv,
    ));
    Ok(see_other(&format!("{}/transfer/import/{id}", place.base())))
}

async fn run_import(
    store: Store,
    jobs: ImportJobs,
    id: String,
    scope: Scope,
    bytes: Bytes,
    csv: bool,
) {
    let input: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(bytes));
    let opened = if csv {
        Source::csv(input).map(|(source, header)| (source, Some(header)))
    } else {
        Ok((Source::jsonl(input), None))
    };
    let (source, header) = match opened {
        Ok(opened) => opened,
        Err(error) => return finish(&jobs, &id, Some(error.to_string())),
    };
    let plans = match plans_of(&store, &scope).await {
        Ok(plans) => plans,
        Err(error) => {
            tracing::error!(%error, "an import could not read the plans");
            let failure = "memberd could not read the plans; the server's log says why";
            return finish(&jobs, &id, Some(failure.into()));
        }
    };
    let how = How {
        now: crate::ops::now(),
        keep_ids: true,
        plans: std::sync::Arc::new(plans),
    };
    let mut rejects = Rejects::new(header);
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    std::thread::spawn(move || read_all(source, BATCH_ROWS, how, tx));
    let mut imported_any = false;
    while let Some(batch) = rx.recv().await {
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => return finish(&jobs, &id, Some(error.to_string())),
        };
        if let Err(error) = write_batch(&store, &scope, &mut batch).await {
            tracing::error!(%error, "an import could not write to the database");
            return finish(
                &jobs,
                &id,
                Some("memberd could not write to the database; the server's log says why".into()),
            );
        }
        let (mut imported, mut reasons) = (0u64, Vec::new());
        for row in &batch.rows {
            match &row.reject {
                None => imported += 1,
                Some(reject) => {
                    reasons.push(describe(row.line, reject));
                    rejects.push(&row.raw);
                }
            }
        }
        imported_any |= imported > 0;
        let rejected_rows = rejects.take();
        jobs.update(&id, |job| {
            job.imported += imported;
            job.rejected += reasons.len() as u64;
            job.read_bytes = batch.bytes_read;
            let room = LISTED_REJECTS.saturating_sub(job.reasons.len());
            job.reasons.extend(reasons.into_iter().take(room));
            job.rejects.extend_from_slice(&rejected_rows);
        });
    }
    if imported_any {
        if let Err(error) = store.analyze_members().await {
            tracing::warn!(%error, "could not refresh the database's statistics after an import");
        }
    }
    finish(&jobs, &id, None);
}

fn finish(jobs: &ImportJobs, id: &str, failure: Option<String>) {
    jobs.update(id, |job| {
        job.done = true;
        job.read_bytes = job.total_bytes;
        job.failure = failure;
        job.finished_at = Some(Instant::now());
    });
}

/// The rejected rows of an import, written as the input's format writes them.
struct Rejects {
    header: Option<csv::ByteRecord>,
    out: Vec<u8>,
}

impl Rejects {
    fn new(header: Option<csv::ByteRecord>) -> Self {
        Rejects {
            header,
            out: Vec::new(),
        }
    }

    fn push(&mut self, raw: &Raw) {
        match raw {
            Raw::Line(line) => {
                self.out.extend_from_slice(line);
                self.out.push(b'\n');
            }
            Raw::Record(record) => {
                let mut writer = csv::WriterBuilder::new()
                    .flexible(true)
                    .from_writer(Vec::new());
                if let Some(header) = self.header.take() {
                    let _ = writer.write_byte_record(&header);
                }
                let _ = writer.write_byte_record(record);
                if let Ok(bytes) = writer.into_inner() {
                    self.out.extend_from_slice(&bytes);
                }
            }
        }
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

pub async fn progress(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
) -> PageResult {
    let job = state
        .imports()
        .get(&id, &place.scope())
        .ok_or(PageError::NotFound)?;
    let base = place.base();
    let percent = (job.read_bytes * 100)
        .checked_div(job.total_bytes)
        .unwrap_or(100);
    let body = html! {
        div data-refresh-until-done[!job.done] role="status" aria-live="polite" {
            p { label for="import-progress" { "Read " (percent) "% of " (job.file_name) } }
            progress #import-progress max="100" value=(percent) { (percent) "%" }
            p #import-counts { (job.imported) " imported, " (job.rejected) " rejected" @if job.done { ". Done." } @else { "…" } }
        }
        @if let Some(failure) = &job.failure {
            div.alert role="alert" { p { "The import stopped: " (failure) } }
        }
        @if !job.done { p { a href="" { "Refresh" } } }
        @if job.rejected > 0 {
            h2 { "Rejected rows" }
            p { a.button href={ (base) "/transfer/import/" (id) "/rejects" } download { "Download the rejected rows" } }
            ul { @for reason in &job.reasons { li { (reason) } } }
            @if job.rejected as usize > job.reasons.len() { p.hint { "The first " (job.reasons.len()) " are listed; every one is in the download." } }
        }
        p { a href={ (base) "/members" } { "See the members" } }
    };
    Ok(Html(layout::page(&place, Section::Transfer, "Import", body).into_string()).into_response())
}

pub async fn rejects(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
) -> PageResult {
    let job = state
        .imports()
        .get(&id, &place.scope())
        .ok_or(PageError::NotFound)?;
    let (kind, extension) = if job.csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/x-ndjson", "jsonl")
    };
    let disposition = format!("attachment; filename=\"rejected-rows.{extension}\"");
    Ok((
        [
            (CONTENT_TYPE, kind.to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        job.rejects,
    )
        .into_response())
}

/// Every member as CSV, the file `memberd export --format csv` writes, a page at a time.
pub async fn export(State(state): State<AppState>, place: Place) -> PageResult<Response> {
    let body = crate::export::body(state.store().clone(), place.scope(), ExportFormat::Csv);
    let name = format!(
        "attachment; filename=\"members-{}-{}.csv\"",
        place.app.id, place.env
    );
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response())
}
