//! The file layer under the WAL: a trait with the few operations the WAL needs, the real
//! implementation and a fault-injecting one for crash and disk-full tests.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// The operations the WAL performs on a directory.
pub trait FileSystem: Send + Sync + Debug {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The bytes of a file that nobody writes to meanwhile (WAL replay); the real file system
    /// maps it into memory instead of copying it.
    fn read_whole(&self, path: &Path) -> io::Result<FileBytes> {
        Ok(Box::new(self.read(path)?))
    }
    /// Opens a file for appending, creating it if needed.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes renames and creations in a directory durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// The bytes of a whole file, read or mapped.
pub type FileBytes = Box<dyn AsRef<[u8]> + Send + Sync>;

/// A file opened for appending.
pub trait AppendFile: Send + Debug {
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes (to drop a partial write).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// A handle that fsyncs this file without borrowing it, so a background syncer can sync
    /// while appends go on (the WAL's interval policy). `None` (the default): the syncer syncs
    /// through [`AppendFile::sync`], holding the writer meanwhile.
    fn sync_handle(&self) -> Option<Box<dyn SyncHandle>> {
        None
    }
}

/// Syncs a file from another thread than its writer (see [`AppendFile::sync_handle`]).
pub trait SyncHandle: Send + Debug {
    /// Makes everything written to the file before this call durable.
    fn sync(&self) -> io::Result<()>;
}

#[derive(Debug)]
struct StdSyncHandle(File);

impl SyncHandle for StdSyncHandle {
    fn sync(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFileSystem;

#[derive(Debug)]
struct StdFile(File);

impl AppendFile for StdFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_handle(&self) -> Option<Box<dyn SyncHandle>> {
        // A second descriptor of the same open file: fsync through it covers every write.
        Some(Box::new(StdSyncHandle(self.0.try_clone().ok()?)))
    }
}

impl FileSystem for StdFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn read_whole(&self, path: &Path) -> io::Result<FileBytes> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Box::new(Vec::new()));
        }
        // SAFETY: the database's lock file keeps other writers out, and this process does not
        // write to a file while it is read this way (WAL replay happens before the writer opens).
        // Populated up front: one call instead of a page fault every few pages.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
        Ok(Box::new(map))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        Ok(Box::new(StdFile(OpenOptions::new().create(true).append(true).open(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

/// A [`StdFileSystem`] that can be told to fail: writes beyond a byte budget fail with
/// "no space left on device" after writing the part that fits (like a real full disk), and
/// syncs can be made to fail. Shared by clones, so a test keeps a handle while the database
/// owns another.
#[derive(Debug, Clone, Default)]
pub struct FaultyFileSystem {
    state: Arc<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    /// Bytes that may still be written; negative means unlimited.
    budget: AtomicI64,
    fail_sync: AtomicBool,
    limited: AtomicBool,
}

impl FaultyFileSystem {
    pub fn new() -> FaultyFileSystem {
        FaultyFileSystem::default()
    }

    /// Allows only `bytes` more bytes to be written (`None`: no limit, space is back).
    pub fn set_write_budget(&self, bytes: Option<u64>) {
        match bytes {
            Some(b) => {
                self.state.budget.store(i64::try_from(b).unwrap_or(i64::MAX), Ordering::SeqCst);
                self.state.limited.store(true, Ordering::SeqCst);
            }
            None => self.state.limited.store(false, Ordering::SeqCst),
        }
    }

    /// Makes every `sync` fail (or succeed again).
    pub fn set_fail_sync(&self, fail: bool) {
        self.state.fail_sync.store(fail, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct FaultyFile {
    file: StdFile,
    state: Arc<FaultState>,
}

fn disk_full() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "no space left on device (injected)")
}

impl AppendFile for FaultyFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.state.limited.load(Ordering::SeqCst) {
            let budget = self.state.budget.load(Ordering::SeqCst).max(0) as u64;
            if (buf.len() as u64) > budget {
                self.file.append(&buf[..budget as usize])?;
                self.state.budget.store(0, Ordering::SeqCst);
                return Err(disk_full());
            }
            self.state.budget.fetch_sub(buf.len() as i64, Ordering::SeqCst);
        }
        self.file.append(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        if self.state.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("sync failed (injected)"));
        }
        self.file.sync()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.truncate(len)
    }
    fn sync_handle(&self) -> Option<Box<dyn SyncHandle>> {
        let file = StdSyncHandle(self.file.0.try_clone().ok()?);
        Some(Box::new(FaultySyncHandle { file, state: self.state.clone() }))
    }
}

#[derive(Debug)]
struct FaultySyncHandle {
    file: StdSyncHandle,
    state: Arc<FaultState>,
}

impl SyncHandle for FaultySyncHandle {
    fn sync(&self) -> io::Result<()> {
        if self.state.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("sync failed (injected)"));
        }
        self.file.sync()
    }
}

impl FileSystem for FaultyFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFileSystem.list_dir(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        StdFileSystem.read(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = StdFile(OpenOptions::new().create(true).append(true).open(path)?);
        Ok(Box::new(FaultyFile { file, state: self.state.clone() }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.sync_dir(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The syncer's handle syncs the writer's file from elsewhere, and fails when syncs are
    /// made to fail, as the file's own `sync` does.
    #[test]
    fn sync_handles_follow_the_file_layer() {
        let dir = tempfile::tempdir().unwrap();
        let faulty = FaultyFileSystem::new();
        let systems: [&dyn FileSystem; 2] = [&StdFileSystem, &faulty];
        for (i, fs) in systems.into_iter().enumerate() {
            let path = dir.path().join(format!("f{i}"));
            let mut file = fs.open_append(&path).unwrap();
            let handle = file.sync_handle().expect("a handle");
            file.append(b"abc").unwrap();
            handle.sync().unwrap();
            // Writes after the handle was taken are synced by it too (same open file).
            file.append(b"def").unwrap();
            handle.sync().unwrap();
            assert_eq!(fs.read(&path).unwrap(), b"abcdef");
        }
        faulty.set_fail_sync(true);
        let mut file = faulty.open_append(&dir.path().join("g")).unwrap();
        let handle = file.sync_handle().unwrap();
        assert!(handle.sync().is_err());
        assert!(file.sync().is_err());
        faulty.set_fail_sync(false);
        assert!(handle.sync().is_ok());
    }
}
