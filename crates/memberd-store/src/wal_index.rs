//! Tells whether a SQLite database in WAL mode has changed, without a transaction.
//!
//! Starting and ending a read transaction takes SQLite's locks on the shared WAL index: a
//! mutex that the server's threads contend for and, each time the last reader of the process
//! lets go, an `fcntl`. In profiles of the single-query reads that was about a fifth of their
//! time. A read connection can instead keep its snapshot open between requests for as long as
//! no commit has happened since it began. Every commit, from any connection of any process,
//! rewrites the WAL-index header at the start of the `-shm` file (its change counter, frame
//! count and checksums; see "WAL-index format" in SQLite's file format documentation), so
//! reading those bytes tells whether a snapshot is still the latest.

use std::fs::File;
use std::path::Path;

/// The two copies of the WAL-index header. SQLite writes the second copy, then the first;
/// reading both means a read torn by a commit in progress never looks unchanged.
pub(crate) type Header = [u8; 96];

/// The `-shm` file of one database, opened for reading.
pub(crate) struct WalIndex {
    file: File,
}

impl WalIndex {
    /// For the database at `path`; `None` when it has no WAL index (not in WAL mode) or the
    /// platform cannot read a file at an offset.
    pub(crate) fn open(path: &Path) -> Option<WalIndex> {
        let mut name = path.as_os_str().to_owned();
        name.push("-shm");
        let file = File::open(name).ok()?;
        let index = WalIndex { file };
        index.header()?;
        Some(index)
    }

    /// The header as it is now; `None` if it cannot be read, which callers take as "changed".
    pub(crate) fn header(&self) -> Option<Header> {
        let mut header = [0u8; 96];
        read_at(&self.file, &mut header)?;
        Some(header)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8]) -> Option<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, 0).ok()
}

#[cfg(not(unix))]
fn read_at(_file: &File, _buf: &mut [u8]) -> Option<()> {
    None
}
