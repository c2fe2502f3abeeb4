//! Writing the config file the way its owner laid it out: one writer at a time, through
//! a symlink to the file it names, with the file's mode, owner and group kept.
//!
//! `init` rewrites the whole file (atomically: a reader never sees half of it). A
//! rename puts a new file in place, so everything the old file carried is set on the
//! new one first: the documented service layout (`0640 root:dhan-login`) must survive
//! an `init`, and a symlinked config must stay a link to the file it names.

use std::fs::{File, TryLockError};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// How long an `init` waits for another one to finish writing.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The file a config path stands for: the file a symlink names, else the path itself.
pub fn target(file: &Path) -> PathBuf {
    match std::fs::symlink_metadata(file) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf())
        }
        _ => file.to_path_buf(),
    }
}

/// Held while the config is read, changed and written back; released when dropped.
#[derive(Debug)]
pub struct WriteLock {
    _dir: File,
}

/// Takes the config folder's lock (created 0700 when missing). The folder is locked, not
/// the file: the file is replaced by every write, and a lock on a replaced file would
/// let the next writer in beside the one holding it.
pub fn lock(file: &Path) -> Result<WriteLock> {
    let dir = folder(file);
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let handle = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    let started = Instant::now();
    loop {
        // flock(2) on Unix: held until the handle is closed.
        match handle.try_lock() {
            Ok(()) => return Ok(WriteLock { _dir: handle }),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("cannot lock {}", dir.display()));
            }
        }
        if started.elapsed() > LOCK_WAIT {
            bail!(
                "another dhan-login init has been writing in {} for {LOCK_WAIT:?}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn folder(file: &Path) -> &Path {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Replaces `file` (a symlink's target already resolved) with `bytes`, keeping the old
/// file's owner, group and mode; a new file is 0600. A mode that let every user read
/// the file was no deliberate layout: it becomes 0600, since the file may hold secrets.
/// Returns the mode written.
pub fn write(file: &Path, bytes: &[u8], _lock: &WriteLock) -> Result<u32> {
    let old = match std::fs::metadata(file) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let mode = match &old {
        Some(m) if m.mode() & 0o007 == 0 => m.mode() & 0o770,
        _ => 0o600,
    };
    let dir = folder(file);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    if let Some(m) = &old {
        std::os::unix::fs::fchown(tmp.as_file(), Some(m.uid()), Some(m.gid())).with_context(
            || {
                format!(
                    "cannot keep the owner and group of {} (uid {}, gid {}): run init as its owner",
                    file.display(),
                    m.uid(),
                    m.gid()
                )
            },
        )?;
    }
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", file.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", file.display()))?;
    File::open(dir)?.sync_all()?;
    Ok(mode)
}
