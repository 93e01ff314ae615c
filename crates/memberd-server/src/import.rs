//! Reading an import file (JSON Lines or CSV) into batches of checked members, for
//! `memberd import` and the dashboard's import alike. Reading runs on a thread of its own,
//! apart from the writer, so that parsing one batch overlaps with writing the one before.

use std::io::{BufRead, BufReader, Read};

use crate::api::native::members::MemberIn;
use crate::extract::parse_json;
use anyhow::{bail, Context};
use memberd_core::member::check_password;
use memberd_core::{DomainError, Member, MemberId, NewMember, Timestamp};
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
            member_rows: Vec::with_capacity(capacity),
            passwords: Vec::new(),
            bytes_read: 0,
        }
    }

    /// Checks a row's draft with the rules `POST /v1/members` applies, in the same order,
    /// and keeps either the member or the reason it was refused.
    fn push(&mut self, line: u64, raw: Raw, draft: Result<Draft, Reject>, now: Timestamp) {
        let checked = draft.and_then(|(draft, password)| {
            let member = Member::from_draft(MemberId::ordered(now.as_micros(), line), draft, now)?;
            if let Some(password) = &password {
                check_password(password)?;
            }
            Ok((member, password))
        });
        let reject = match checked {
            Ok((member, password)) => {
                if let Some(password) = password {
                    self.passwords.push((self.members.len(), password));
                }
                self.members.push(member);
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

/// A member as the core takes it, and their password in plain text.
type Draft = (NewMember, Option<String>);

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
    pub fn next_batch(&mut self, max: usize, now: Timestamp) -> anyhow::Result<Option<Batch>> {
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
                    let draft = json_draft(&raw);
                    batch.push(*line, Raw::Line(raw), draft, now);
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
                    let draft = csv_draft(columns, &record);
                    batch.push(line, Raw::Record(record.clone()), draft, now);
                }
                batch.bytes_read = reader.position().byte();
            }
        }
        Ok((!batch.rows.is_empty()).then_some(batch))
    }
}

/// A JSON line, read exactly as the API reads a request body.
fn json_draft(line: &[u8]) -> Result<Draft, Reject> {
    let input: MemberIn = parse_json(line).map_err(|err| match err.param.as_deref() {
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
    })?;
    let (draft, password, test_clock_id) = input.into_draft();
    if test_clock_id.is_some() {
        return Err(Reject::field(
            "testClockId",
            "test clocks cannot be imported; create such members through the API",
        ));
    }
    Ok((draft, password))
}

/// What a CSV column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    Email,
    Password,
    Verified,
    ExternalId,
    StripeCustomerId,
    LoginRedirect,
    ProfileImage,
    Json,
    Permissions,
    CustomField(String),
    MetaData(String),
}

const COLUMNS: &str = "email, password, verified, externalId, stripeCustomerId, loginRedirect, \
    profileImage, json, permissions, customFields.KEY, metaData.KEY";

fn columns(header: &csv::ByteRecord) -> anyhow::Result<Vec<Column>> {
    let mut columns = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw)
            .context("the CSV header is not valid UTF-8")?
            .trim_start_matches('\u{feff}')
            .trim();
        let column = match name {
            "email" => Column::Email,
            "password" => Column::Password,
            "verified" => Column::Verified,
            "externalId" => Column::ExternalId,
            "stripeCustomerId" => Column::StripeCustomerId,
            "loginRedirect" => Column::LoginRedirect,
            "profileImage" => Column::ProfileImage,
            "json" => Column::Json,
            "permissions" => Column::Permissions,
            other => match (
                other.strip_prefix("customFields."),
                other.strip_prefix("metaData."),
            ) {
                (Some(key), _) if !key.is_empty() => Column::CustomField(key.to_owned()),
                (_, Some(key)) if !key.is_empty() => Column::MetaData(key.to_owned()),
                _ => bail!(
                    "line 1: column {}: unknown column {name:?}; the columns are {COLUMNS}",
                    i + 1
                ),
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

fn csv_draft(columns: &[Column], record: &csv::ByteRecord) -> Result<Draft, Reject> {
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
    let mut draft = NewMember::default();
    let mut password = None;
    let mut custom_fields = Map::new();
    let mut meta_data = Map::new();
    for (column, cell) in columns.iter().zip(record.iter()) {
        if cell.is_empty() {
            continue;
        }
        let text = std::str::from_utf8(cell)
            .map_err(|_| Reject::field(column.name(), "not valid UTF-8"))?
            .to_owned();
        // As the API refuses NUL in any string of a body (JSONL rows go through the same
        // parser, `parse_json`).
        memberd_core::fields::check_no_nul(&column.name(), &text)?;
        match column {
            Column::Email => draft.email = text,
            Column::Password => password = Some(text),
            Column::Verified => {
                draft.verified = Some(match text.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(Reject::field("verified", "must be true or false")),
                })
            }
            Column::ExternalId => draft.external_id = Some(text),
            Column::StripeCustomerId => draft.stripe_customer_id = Some(text),
            Column::LoginRedirect => draft.login_redirect = Some(text),
            Column::ProfileImage => draft.profile_image = Some(text),
            Column::Json => {
                let value = serde_json::from_str::<Value>(&text)
                    .map_err(|e| Reject::field("json", format!("not valid JSON: {e}")))?;
                draft.json = Some(value);
            }
            Column::Permissions => {
                draft.permissions = Some(
                    text.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                )
            }
            Column::CustomField(key) => {
                custom_fields.insert(key.clone(), Value::String(text));
            }
            Column::MetaData(key) => {
                meta_data.insert(key.clone(), Value::String(text));
            }
        }
    }
    draft.custom_fields = (!custom_fields.is_empty()).then_some(custom_fields);
    draft.meta_data = (!meta_data.is_empty()).then_some(meta_data);
    Ok((draft, password))
}

impl Column {
    fn name(&self) -> String {
        match self {
            Column::Email => "email".into(),
            Column::Password => "password".into(),
            Column::Verified => "verified".into(),
            Column::ExternalId => "externalId".into(),
            Column::StripeCustomerId => "stripeCustomerId".into(),
            Column::LoginRedirect => "loginRedirect".into(),
            Column::ProfileImage => "profileImage".into(),
            Column::Json => "json".into(),
            Column::Permissions => "permissions".into(),
            Column::CustomField(key) => format!("customFields.{key}"),
            Column::MetaData(key) => format!("metaData.{key}"),
        }
    }
}

/// Writes the batch's members in one transaction, and marks the rows whose email or
/// externalId another member of the environment already has: each row then says whether it
/// was imported.
pub async fn write_batch(
    store: &memberd_store::Store,
    scope: &memberd_core::Scope,
    batch: &mut Batch,
) -> Result<(), memberd_store::StoreError> {
    let skipped = store.import_members(scope, &batch.members).await?;
    for (member, field) in skipped {
        let row = batch.member_rows[member];
        batch.rows[row].reject = Some(Reject::field(field, "already taken in this environment"));
    }
    Ok(())
}

/// Reads the whole input, `batch_rows` at a time (passwords hashed), until it ends, the
/// writer hangs up, or an error (which is sent on, to end the import). Blocks: run it on a
/// thread of its own.
pub fn read_all(
    mut source: Source,
    batch_rows: usize,
    now: Timestamp,
    tx: tokio::sync::mpsc::Sender<anyhow::Result<Batch>>,
) {
    loop {
        let next = source
            .next_batch(batch_rows, now)
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
