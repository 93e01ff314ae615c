//! `memberd import`: loads members from a JSON Lines or CSV file into one environment of an
//! app. A reader thread parses and checks the rows (and hashes passwords on every core); the
//! writer inserts them a batch per transaction, reports each rejected row by its line, and
//! keeps a progress bar on standard error. Memory stays flat however long the file is: at
//! most a few batches are in flight.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memberd_core::{AppId, Scope};
use memberd_store::Store;
use tokio::sync::mpsc;

use crate::cli::{EnvArg, ImportArgs, ImportFormat};
use memberd_server::import::{describe, plans_of, read_all, write_batch, How, Raw, Source};
use std::sync::Arc;

/// Rows per transaction: large enough that commits cost little, small enough to keep memory
/// flat and the progress bar moving.
const BATCH_ROWS: usize = 5_000;
/// Batches parsed ahead of the writer.
const BATCHES_AHEAD: usize = 2;

/// The format named by `--format`, or else by the file's extension; `Err` says why neither
/// tells (a usage error).
pub fn format_of(args: &ImportArgs) -> Result<ImportFormat, String> {
    if let Some(format) = args.format {
        return Ok(format);
    }
    if args.file == Path::new("-") {
        return Err("give --format jsonl or --format csv to read standard input".into());
    }
    let extension = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jsonl" | "ndjson" | "json") => Ok(ImportFormat::Jsonl),
        Some("csv") => Ok(ImportFormat::Csv),
        _ => Err(format!(
            "cannot tell the format of {} from its extension: give --format jsonl or --format csv",
            args.file.display()
        )),
    }
}

pub async fn run(
    store: &Store,
    args: ImportArgs,
    format: ImportFormat,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let scope = scope_of(store, &args.app, args.env)
        .await
        .context("nothing was imported")?;
    let (input, size) = open_input(&args.file)?;
    let (source, header) = match format {
        ImportFormat::Jsonl => (Source::jsonl(input), None),
        ImportFormat::Csv => {
            let (source, header) = Source::csv(input)?;
            (source, Some(header))
        }
    };
    let mut rejects = match &args.rejects {
        Some(path) => Some(RejectsFile::create(path, header)?),
        None => None,
    };

    let how = How {
        now: memberd_server::ops::now(),
        keep_ids: !args.new_ids,
        plans: Arc::new(
            plans_of(store, &scope)
                .await
                .context("could not read the plans")?,
        ),
    };
    let progress = progress_bar(size);
    let (tx, mut rx) = mpsc::channel(BATCHES_AHEAD);
    let reader = std::thread::spawn(move || read_all(source, BATCH_ROWS, how, tx));

    let mut imported = 0u64;
    let mut rejected = 0u64;
    while let Some(batch) = rx.recv().await {
        let mut batch = batch?;
        write_batch(store, &scope, &mut batch)
            .await
            .context("could not write to the database")?;
        let mut report = String::new();
        for row in &batch.rows {
            match &row.reject {
                None => imported += 1,
                Some(reject) => {
                    rejected += 1;
                    report.push_str(&describe(row.line, reject));
                    report.push('\n');
                    if let Some(file) = &mut rejects {
                        file.write(&row.raw)?;
                    }
                }
            }
        }
        if !report.is_empty() {
            progress.suspend(|| eprint!("{report}"));
        }
        progress.set_position(batch.bytes_read);
        progress.set_message(format!("{imported} imported, {rejected} rejected"));
    }
    // The channel closes when the reader is done, or gave up on an error it has sent.
    if reader.join().is_err() {
        bail!("the reader thread failed");
    }
    progress.finish_and_clear();
    if imported > 0 {
        store
            .analyze_members()
            .await
            .context("could not refresh the database's statistics")?;
    }
    if let Some(file) = rejects {
        file.finish()?;
    }

    let took = started.elapsed();
    println!(
        "Imported {imported} {} into {} ({}) in {}; {rejected} {} rejected.",
        if imported == 1 { "member" } else { "members" },
        scope.app_id,
        scope.env,
        seconds(took),
        if rejected == 1 { "row" } else { "rows" },
    );
    if rejected > 0 {
        if let Some(path) = &args.rejects {
            println!("The rejected rows are in {}.", path.display());
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn open_input(path: &PathBuf) -> anyhow::Result<(Box<dyn Read + Send>, Option<u64>)> {
    if path == Path::new("-") {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let file = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(file), size))
}

/// The environment `--app` and `--env` name, once the app is found.
pub(crate) async fn scope_of(store: &Store, app: &str, env: EnvArg) -> anyhow::Result<Scope> {
    let app_id = AppId::parse(app).with_context(|| format!("{app:?} is not an app id (app_…)"))?;
    if store.get_app(&app_id).await?.is_none() {
        bail!("no such app: {app_id} (see `memberd apps list`)");
    }
    Ok(Scope {
        app_id,
        env: env.into(),
    })
}

pub(crate) fn seconds(took: Duration) -> String {
    format!("{:.2} s", took.as_secs_f64())
}

/// A bar over the file's bytes, or a spinner for standard input. Drawn only when standard
/// error is a terminal.
pub(crate) fn progress_bar(size: Option<u64>) -> ProgressBar {
    let (bar, template) = match size {
        Some(size) => (
            ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr()),
            "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} [{elapsed_precise}] {bytes} read, {msg}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `--rejects`: the rejected rows as they stood, to fix and import again. A CSV file starts
/// with the input's header, once there is a row to write.
enum RejectsFile {
    Lines(BufWriter<File>),
    Csv {
        writer: Box<csv::Writer<File>>,
        header: Option<csv::ByteRecord>,
    },
}

impl RejectsFile {
    fn create(path: &Path, csv_header: Option<csv::ByteRecord>) -> anyhow::Result<RejectsFile> {
        let file =
            File::create(path).with_context(|| format!("could not create {}", path.display()))?;
        Ok(match csv_header {
            None => RejectsFile::Lines(BufWriter::new(file)),
            Some(header) => RejectsFile::Csv {
                writer: Box::new(csv::WriterBuilder::new().flexible(true).from_writer(file)),
                header: Some(header),
            },
        })
    }

    fn write(&mut self, raw: &Raw) -> anyhow::Result<()> {
        match (self, raw) {
            (RejectsFile::Lines(out), Raw::Line(line)) => {
                out.write_all(line)?;
                out.write_all(b"\n")?;
            }
            (RejectsFile::Csv { writer, header }, Raw::Record(record)) => {
                if let Some(header) = header.take() {
                    writer.write_byte_record(&header)?;
                }
                writer.write_byte_record(record)?;
            }
            _ => bail!("a row of one format went to the rejects file of another"),
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            RejectsFile::Lines(mut out) => out.flush()?,
            RejectsFile::Csv { mut writer, .. } => writer.flush()?,
        }
        Ok(())
    }
}
