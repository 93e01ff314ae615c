//! Reading an import file (JSON Lines or CSV) into batches of checked members, for
//! `memberd import` and the dashboard's import alike. Reading runs on a thread of its own,
//! apart from the writer, so that parsing one batch overlaps with writing the one before.

use std::io::{BufRead, BufReader, Read};

use std::sync::Arc;

use crate::extract::parse_json;
use crate::records::{Imported, MemberRecord, Plans};
use anyhow::{bail, Context};
use memberd_core::{DomainError, Member, MemberId, PlanConnection, Timestamp};
use memberd_store::Taken;
use serde_json::{Map, Value};

/// Why a row was not imported: the field at fault, when there is one, and what is wrong.
#[derive(Debug)]
pub struct Reject {
    pub field: Option<String>,
    pub message: String,
}

impl Reject {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Reject {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<DomainError> for Reject {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid { field, message, .. } => Reject::field(field, message),
            other => Reject {
                field: None,
                message: other.to_string(),
            },
        }
    }
}

/// A row as it stood in the file, to write back out when it is rejected.
pub enum Raw {
    Line(Vec<u8>),
    Record(csv::ByteRecord),
}

pub struct Row {
    /// The row's line in the file, from 1; for CSV, the line its record starts on.
    pub line: u64,
    pub raw: Raw,
    pub reject: Option<Reject>,
}

/// Rows read together and written in one transaction.
pub struct Batch {
    pub rows: Vec<Row>,
    /// The members of the rows that passed every check, in file order.
    pub members: Vec<Member>,
    /// Their plan connections, each naming its member.
    pub connections: Vec<PlanConnection>,
    /// For each member, the index of its row in `rows`.
    pub member_rows: Vec<usize>,
    /// Plain passwords still to hash, by index in `members`.
    pub passwords: Vec<(usize, String)>,
    /// How far into the input the batch reaches, in bytes.
    pub bytes_read: u64,
}

impl Batch {
    fn new(capacity: usize) -> Self {
        Batch {
            rows: Vec::with_capacity(capacity),
            members: Vec::with_capacity(capacity),
            connections: Vec::new(),
            member_rows: Vec::with_capacity(capacity),
            passwords: Vec::new(),
            bytes_read: 0,
        }
    }

    /// Checks a row with the rules `POST /v1/members` applies, in the same order, and keeps
    /// either the member or the reason it was refused.
    fn push(&mut self, line: u64, raw: Raw, record: Result<MemberRecord, Reject>, how: &How) {
        let fresh_id = MemberId::ordered(how.now.as_micros(), line);
        let checked =
            record.and_then(|r| r.into_import(fresh_id, how.keep_ids, how.now, &how.plans));
        let reject = match checked {
            Ok(Imported {
                member,
                password,
                connections,
            }) => {
                if let Some(password) = password {
                    self.passwords.push((self.members.len(), password));
                }
                self.members.push(member);
                self.connections.extend(connections);
                self.member_rows.push(self.rows.len());
                None
            }
            Err(reject) => Some(reject),
        };
        self.rows.push(Row { line, raw, reject });
    }

    /// Hashes the batch's passwords, spread over the machine's cores: argon2 is slow on
    /// purpose, and a file of a million passwords would otherwise take hours on one core.
    pub fn hash_passwords(&mut self) -> anyhow::Result<()> {
        if self.passwords.is_empty() {
            return Ok(());
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let per_thread = self.passwords.len().div_ceil(threads);
        let hashed = std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .passwords
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(i, plain)| {
                                crate::passwords::hash_password_blocking(plain)
                                    .map(|hash| (*i, hash))
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|err| anyhow::anyhow!("could not hash a password: {err}"))?;
        for (i, hash) in hashed.into_iter().flatten() {
            self.members[i].password_hash = Some(hash);
        }
        self.passwords.clear();
        Ok(())
    }
}

/// What every row of an import is checked against.
#[derive(Clone)]
pub struct How {
    /// The time of members and connections whose row gives none.
    pub now: Timestamp,
    /// Keep the ids a row gives (an export's), rather than make new ones.
    pub keep_ids: bool,
    /// The environment's plans, which plan connections must name.
    pub plans: Arc<Plans>,
}

/// An open import file.
pub enum Source {
    Jsonl {
        input: BufReader<Box<dyn Read + Send>>,
        line: u64,
        bytes: u64,
    },
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        columns: Vec<Column>,
    },
}

impl Source {
    pub fn jsonl(input: Box<dyn Read + Send>) -> Source {
        Source::Jsonl {
            input: BufReader::with_capacity(1 << 20, input),
            line: 0,
            bytes: 0,
        }
    }

    /// Reads and checks the header row; an unknown column stops the import before it starts.
    pub fn csv(input: Box<dyn Read + Send>) -> anyhow::Result<(Source, csv::ByteRecord)> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(input);
        let header = reader
            .byte_headers()
            .context("could not read the CSV header")?
            .clone();
        let columns = columns(&header)?;
        Ok((Source::Csv { reader, columns }, header))
    }

    /// The next batch of at most `max` rows; `None` at the end of the input.
    pub fn next_batch(&mut self, max: usize, how: &How) -> anyhow::Result<Option<Batch>> {
        let mut batch = Batch::new(max);
        match self {
            Source::Jsonl { input, line, bytes } => {
                while batch.rows.len() < max {
                    let mut raw = Vec::new();
                    let n = input
                        .read_until(b'\n', &mut raw)
                        .context("could not read the input")?;
                    if n == 0 {
                        break;
                    }
                    *line += 1;
                    *bytes += n as u64;
                    while raw.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        raw.pop();
                    }
                    if raw.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let record = json_record(&raw);
                    batch.push(*line, Raw::Line(raw), record, how);
                }
                batch.bytes_read = *bytes;
            }
            Source::Csv { reader, columns } => {
                let mut record = csv::ByteRecord::new();
                while batch.rows.len() < max {
                    if !reader
                        .read_byte_record(&mut record)
                        .context("could not read the input")?
                    {
                        break;
                    }
                    let line = record.position().map_or(0, |p| p.line());
                    let member = csv_record(columns, &record);
                    batch.push(line, Raw::Record(record.clone()), member, how);
                }
                batch.bytes_read = reader.position().byte();
            }
        }
        Ok((!batch.rows.is_empty()).then_some(batch))
    }
}

/// A JSON line, read exactly as the API reads a request body.
fn json_record(line: &[u8]) -> Result<MemberRecord, Reject> {
    parse_json(line).map_err(reject_of)
}

/// The API's refusal of a body, as the refusal of a row.
fn reject_of(err: crate::error::ApiError) -> Reject {
    match err.param.as_deref() {
        Some("body") | None => Reject {
            field: None,
            message: err.message.replacen("the body", "the line", 1),
        },
        Some(param) => {
            let message = err
                .message
                .strip_prefix(&format!("{param}: "))
                .unwrap_or(&err.message)
                .to_owned();
            Reject::field(param, message)
        }
    }
}

/// What a CSV column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Id,
    Email,
    Password,
    PasswordHash,
    Verified,
    ExternalId,
    StripeCustomerId,
    LoginRedirect,
    ProfileImage,
    Json,
    Permissions,
    /// All of them, as a JSON object.
    CustomFields,
    CustomField(String),
    /// All of them, as a JSON object.
    MetaData,
    MetaDataKey(String),
    LastLogin,
    CreatedAt,
    UpdatedAt,
    /// A JSON array, as in a JSON line.
    PlanConnections,
}

/// The columns a name stands for, without the `customFields.KEY` and `metaData.KEY` ones.
const NAMED: &[(&str, Column)] = &[
    ("id", Column::Id),
    ("email", Column::Email),
    ("password", Column::Password),
    ("passwordHash", Column::PasswordHash),
    ("verified", Column::Verified),
    ("externalId", Column::ExternalId),
    ("stripeCustomerId", Column::StripeCustomerId),
    ("loginRedirect", Column::LoginRedirect),
    ("profileImage", Column::ProfileImage),
    ("json", Column::Json),
    ("permissions", Column::Permissions),
    ("customFields", Column::CustomFields),
    ("metaData", Column::MetaData),
    ("lastLogin", Column::LastLogin),
    ("createdAt", Column::CreatedAt),
    ("updatedAt", Column::UpdatedAt),
    ("planConnections", Column::PlanConnections),
];

fn columns(header: &csv::ByteRecord) -> anyhow::Result<Vec<Column>> {
    let mut columns = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .context("the CSV header is not valid UTF-8")?
            .trim_start_matches('\u{feff}')
            .trim();
        let named = NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.clone());
        let column = match named {
            Some(column) => column,
            None => match (
                name.strip_prefix("customFields."),
                name.strip_prefix("metaData."),
            ) {
                (Some(key), _) if !key.is_empty() => Column::CustomField(key.to_owned()),
                (_, Some(key)) if !key.is_empty() => Column::MetaDataKey(key.to_owned()),
                _ => {
                    let known: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
                    bail!(
                        "line 1: column {}: unknown column {name:?}; the columns are {}, \
                         customFields.KEY, metaData.KEY",
                        i + 1,
                        known.join(", ")
                    )
                }
            },
        };
        if columns.contains(&column) {
            bail!("line 1: column {}: {name:?} appears twice", i + 1);
        }
        columns.push(column);
    }
    if !columns.contains(&Column::Email) {
        bail!("line 1: the CSV header has no email column");
    }
    Ok(columns)
}

fn csv_record(columns: &[Column], record: &csv::ByteRecord) -> Result<MemberRecord, Reject> {
    if record.len() != columns.len() {
        return Err(Reject {
            field: None,
            message: format!(
                "has {} columns where the header has {}",
                record.len(),
                columns.len()
            ),
        });
    }
    let mut member = MemberRecord::default();
    let mut custom_fields = Map::new();
    let mut meta_data = Map::new();
    for (column, cell) in columns.iter().zip(record.iter()) {
        if cell.is_empty() {
            continue;
        }
        let name = column.name();
        let text = std::str::from_utf8(cell)
            .map_err(|_| Reject::field(name.clone(), "not valid UTF-8"))?
            .to_owned();
        // As the API refuses NUL in any string of a body (JSONL rows go through the same
        // parser, `parse_json`).
        memberd_core::fields::check_no_nul(&name, &text)?;
        let json = |text: &str| {
            serde_json::from_str::<Value>(text)
                .map_err(|e| Reject::field(name.clone(), format!("not valid JSON: {e}")))
        };
        let object = |text: &str| match json(text)? {
            Value::Object(map) => Ok(map),
            _ => Err(Reject::field(name.clone(), "must be a JSON object")),
        };
        let time = |text: &str| {
            Timestamp::parse(text)
                .ok_or_else(|| Reject::field(name.clone(), "not an RFC 3339 date-time"))
        };
        match column {
            Column::Id => {
                member.id = Some(MemberId::parse(&text).ok_or_else(|| {
                    Reject::field("id", format!("{text:?} is not an id of the form mem_…"))
                })?)
            }
            Column::Email => member.email = text,
            Column::Password => member.password = Some(text),
            Column::PasswordHash => member.password_hash = Some(text),
            Column::Verified => {
                member.verified = Some(match text.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(Reject::field("verified", "must be true or false")),
                })
            }
            Column::ExternalId => member.external_id = Some(text),
            Column::StripeCustomerId => member.stripe_customer_id = Some(text),
            Column::LoginRedirect => member.login_redirect = Some(text),
            Column::ProfileImage => member.profile_image = Some(text),
            Column::Json => member.json = Some(json(&text)?),
            Column::Permissions => {
                member.permissions = Some(
                    text.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            }
            Column::CustomFields => custom_fields.extend(object(&text)?),
            Column::MetaData => meta_data.extend(object(&text)?),
            Column::CustomField(key) => {
                custom_fields.insert(key.clone(), Value::String(text));
            }
            Column::MetaDataKey(key) => {
                meta_data.insert(key.clone(), Value::String(text));
            }
            Column::LastLogin => member.last_login = Some(time(&text)?),
            Column::CreatedAt => member.created_at = Some(time(&text)?),
            Column::UpdatedAt => member.updated_at = Some(time(&text)?),
            Column::PlanConnections => {
                member.plan_connections = connections_cell(&text)?;
            }
        }
    }
    member.custom_fields = (!custom_fields.is_empty()).then_some(custom_fields);
    member.meta_data = (!meta_data.is_empty()).then_some(meta_data);
    Ok(member)
}

/// A `planConnections` cell: the JSON array a JSON line holds, read the same way.
fn connections_cell(text: &str) -> Result<Vec<crate::records::ConnectionRecord>, Reject> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Cell {
        plan_connections: Vec<crate::records::ConnectionRecord>,
    }
    let wrapped = format!("{{\"planConnections\":{text}}}");
    parse_json::<Cell>(wrapped.as_bytes())
        .map(|cell| cell.plan_connections)
        .map_err(reject_of)
}

impl Column {
    fn name(&self) -> String {
        match self {
            Column::CustomField(key) => format!("customFields.{key}"),
            Column::MetaDataKey(key) => format!("metaData.{key}"),
            named => NAMED
                .iter()
                .find(|(_, c)| c == named)
                .map_or_else(String::new, |(n, _)| (*n).to_owned()),
        }
    }
}

/// Writes the batch's members and their plan connections in one transaction, and marks the
/// rows whose id, email or externalId (or a connection's id) is already taken: each row then
/// says whether it was imported.
pub async fn write_batch(
    store: &memberd_store::Store,
    scope: &memberd_core::Scope,
    batch: &mut Batch,
) -> Result<(), memberd_store::StoreError> {
    let skipped = store
        .import_members(scope, &batch.members, &batch.connections)
        .await?;
    for (member, taken) in skipped {
        let field = match taken {
            Taken::Id => "id".to_owned(),
            Taken::Email => "email".to_owned(),
            Taken::ExternalId => "externalId".to_owned(),
            Taken::Connection(id) => {
                let member_id = &batch.members[member].id;
                let index = batch
                    .connections
                    .iter()
                    .filter(|c| &c.member_id == member_id)
                    .position(|c| c.id == id)
                    .unwrap_or_default();
                format!("planConnections[{index}].id")
            }
        };
        let row = batch.member_rows[member];
        let message = if field == "id" || field.ends_with(".id") {
            "already taken in this database; import with --new-ids to give new ones"
        } else {
            "already taken in this environment"
        };
        batch.rows[row].reject = Some(Reject::field(field, message));
    }
    Ok(())
}

/// Reads the whole input, `batch_rows` at a time (passwords hashed), until it ends, the
/// writer hangs up, or an error (which is sent on, to end the import). Blocks: run it on a
/// thread of its own.
pub fn read_all(
    mut source: Source,
    batch_rows: usize,
    how: How,
    tx: tokio::sync::mpsc::Sender<anyhow::Result<Batch>>,
) {
    loop {
        let next = source
            .next_batch(batch_rows, &how)
            .and_then(|batch| match batch {
                Some(mut batch) => batch.hash_passwords().map(|()| Some(batch)),
                None => Ok(None),
            });
        let message = match next {
            Ok(Some(batch)) => Ok(batch),
            Ok(None) => return,
            Err(err) => Err(err),
        };
        let failed = message.is_err();
        if tx.blocking_send(message).is_err() || failed {
            return;
        }
    }
}

/// A rejected row, as people read it: `line 12: email: …`.
pub fn describe(line: u64, reject: &Reject) -> String {
    match &reject.field {
        Some(field) => format!("line {line}: {field}: {}", reject.message),
        None => format!("line {line}: {}", reject.message),
    }
}

/// Every plan of the environment, archived ones too (members may hold those), for an
/// import's plan connections to name.
pub async fn plans_of(
    store: &memberd_store::Store,
    scope: &memberd_core::Scope,
) -> Result<Plans, memberd_store::StoreError> {
    let mut plans = Plans::new();
    let mut after = None;
    loop {
        let page = memberd_store::PageRequest {
            after,
            limit: 500,
            order: memberd_store::Order::Asc,
        };
        let page = store
            .list_plans(scope, &memberd_store::PlanFilter::default(), page)
            .await?;
        plans.extend(page.items.into_iter().map(|p| (p.id.clone(), p)));
        if !page.has_more {
            return Ok(plans);
        }
        after = page.next_cursor;
    }
}
