//! `memberd export`: every member of one environment, with their plan connections, written
//! a page at a time to a file (or standard output) that `memberd import` reads back. A file
//! is written beside its name and renamed into place once whole, so that an export cut
//! short never passes for a complete one.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use memberd_server::export::{next_page, ExportFormat, Exporter};
use memberd_store::Store;

use crate::cli::{ExportArgs, ImportFormat};
use crate::import::{progress_bar, scope_of, seconds};

pub async fn run(store: &Store, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let scope = scope_of(store, &args.app, args.env).await?;
    let file = args.file.filter(|f| f != Path::new("-"));
    let format = format_of(args.format, file.as_deref())?;
    let mut out = match &file {
        Some(path) => Output::file(path, args.force)?,
        None => Output::Stdout(BufWriter::new(std::io::stdout())),
    };

    let mut exporter = Exporter::new(format, args.with_password_hashes);
    let mut after = None;
    let mut written = 0u64;
    let mut progress = None;
    loop {
        let page = next_page(store, &scope, after)
            .await
            .context("could not read the members")?;
        let bar = progress.get_or_insert_with(|| {
            let bar = progress_bar(Some(u64::try_from(page.total_count).unwrap_or(0)));
            bar.set_message("members");
            bar
        });
        out.write_all(&exporter.page(&page.items))
            .context("could not write the export")?;
        written += page.items.len() as u64;
        bar.set_position(written);
        if !page.has_more {
            break;
        }
        after = page.next_cursor;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let place = out.finish()?;
    drop(out);
    // On standard output the export is the output: the summary goes to standard error.
    let summary = format!(
        "Exported {written} {} of {} ({}) {place} in {}.",
        if written == 1 { "member" } else { "members" },
        scope.app_id,
        scope.env,
        seconds(started.elapsed()),
    );
    match file {
        Some(_) => println!("{summary}"),
        None => eprintln!("{summary}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn format_of(asked: Option<ImportFormat>, file: Option<&Path>) -> anyhow::Result<ExportFormat> {
    let format = match (asked, file) {
        (Some(format), _) => format,
        (None, None) => ImportFormat::Jsonl,
        (None, Some(path)) => {
            let extension = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            match extension.as_deref() {
                Some("jsonl" | "ndjson" | "json") => ImportFormat::Jsonl,
                Some("csv") => ImportFormat::Csv,
                _ => bail!(
                    "cannot tell the format of {} from its extension: give --format jsonl or --format csv",
                    path.display()
                ),
            }
        }
    };
    Ok(match format {
        ImportFormat::Jsonl => ExportFormat::Jsonl,
        ImportFormat::Csv => ExportFormat::Csv,
    })
}

enum Output {
    Stdout(BufWriter<std::io::Stdout>),
    File {
        out: BufWriter<File>,
        /// Where the export is written until it is whole; `None` once it is in place.
        partial: Option<PathBuf>,
        path: PathBuf,
    },
}

impl Output {
    fn file(path: &Path, force: bool) -> anyhow::Result<Output> {
        if path.exists() && !force {
            bail!("{} exists; give --force to write over it", path.display());
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial)
            .with_context(|| format!("could not create {}", partial.display()))?;
        Ok(Output::File {
            out: BufWriter::with_capacity(1 << 20, file),
            partial: Some(partial),
            path: path.to_owned(),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Output::Stdout(out) => out.write_all(bytes),
            Output::File { out, .. } => out.write_all(bytes),
        }
    }

    /// Flushes, and puts a file in place; says where the export went.
    fn finish(&mut self) -> anyhow::Result<String> {
        match self {
            Output::Stdout(out) => {
                out.flush().context("could not write the export")?;
                Ok("to standard output".into())
            }
            Output::File { out, partial, path } => {
                out.flush().context("could not write the export")?;
                out.get_ref()
                    .sync_all()
                    .context("could not write the export")?;
                if let Some(partial) = partial.take() {
                    std::fs::rename(&partial, &*path)
                        .with_context(|| format!("could not rename {}", partial.display()))?;
                }
                Ok(format!("to {}", path.display()))
            }
        }
    }
}

impl Drop for Output {
    /// An export that failed part-way leaves no partial file behind.
    fn drop(&mut self) {
        if let Output::File {
            partial: Some(partial),
            ..
        } = self
        {
            let _ = std::fs::remove_file(partial);
        }
    }
}
