//! `memberd backup` and `memberd restore`: a consistent copy of a SQLite database taken while
//! it serves, and putting one back into an empty path. PostgreSQL has its own tools for both.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};

use crate::commands::{open, redact, Database};

const POSTGRES_BACKUP: &str = "on PostgreSQL, back up with pg_dump and restore with pg_restore \
     (see README, \"Running it in production\")";

pub async fn backup(db: &Database, file: &Path) -> anyhow::Result<()> {
    if memberd_store::sqlite_file(&db.url).is_none() {
        bail!("memberd backup copies a SQLite database file; {POSTGRES_BACKUP}");
    }
    if file.exists() {
        bail!(
            "{} already exists: give a path that does not, so that no file is overwritten",
            file.display()
        );
    }
    let store = open(db).await?;
    let started = Instant::now();
    let copied = store.backup_to(file).await;
    store.close().await;
    copied.with_context(|| format!("could not back up to {}", file.display()))?;
    let bytes = std::fs::metadata(file)?.len();
    println!(
        "Backed up {} to {} ({:.1} MB in {:.1} s).",
        redact(&db.url),
        file.display(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn restore(db: &Database, file: &Path) -> anyhow::Result<()> {
    let Some(target) = memberd_store::sqlite_file(&db.url) else {
        bail!("memberd restore puts a backup into a SQLite database file; {POSTGRES_BACKUP}");
    };
    memberd_store::check_backup(file)
        .map_err(|problem| anyhow!("{} cannot be restored: {problem}", file.display()))?;
    let mut wal = target.clone().into_os_string();
    wal.push("-wal");
    for path in [target.as_path(), Path::new(&wal)] {
        let holds_data = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        if holds_data {
            bail!(
                "{} already holds a database: restore into a path with none (memberd restore never overwrites one)",
                path.display()
            );
        }
    }
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not make the folder {}", dir.display()))?;
    }
    // Copied beside the target and renamed into place: a restore cut short leaves no
    // half-written database where memberd would open it.
    let mut partial = target.clone().into_os_string();
    partial.push(".restoring");
    let partial = Path::new(&partial);
    std::fs::copy(file, partial)
        .with_context(|| format!("could not copy {} to {}", file.display(), partial.display()))?;
    std::fs::File::open(partial)?.sync_all()?;
    std::fs::rename(partial, &target)?;
    // Brings a backup made by an older memberd up to this one's schema.
    let store = open(db).await?;
    let apps = store.list_apps().await;
    store.close().await;
    println!(
        "Restored {} into {} ({} apps).",
        file.display(),
        target.display(),
        apps?.len()
    );
    Ok(())
}
