//! Atomic file writes, shared by every writer of the workspace (`.skv` files, exports,
//! registry downloads, predictions): a temporary file in the destination folder, fsync,
//! rename over the destination, fsync of the folder. Readers see the old file or the
//! complete new one; an error, or a crash before the rename, leaves the destination as it
//! was and removes the temporary file.
//!
//! Only a missing destination or an existing **regular file** is written. A rename replaces
//! whatever name it lands on, so without a check `dump(model, "/dev/null")` run as root
//! would replace the device with a file. A directory, device, FIFO, socket or symbolic link
//! (whatever it points at: replacing the link would silently break the layout it belongs
//! to, and following it would write wherever the link chooses) is refused with a
//! [`RefusedDestination`] before anything is created, and checked again just before the
//! rename. Between that last check and the rename another process that can write to the
//! folder could still put something else there; the rename then replaces that name, never
//! what it points at.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where an atomic write failed: the path concerned (the destination, or its folder when
/// that is what is missing) and the OS error. A refused destination is an error whose
/// inner error is a [`RefusedDestination`] (see [`WriteFailure::refused`]).
#[derive(Debug)]
pub struct WriteFailure {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl WriteFailure {
    /// The refusal, when the destination exists and is not a regular file.
    pub fn refused(&self) -> Option<&RefusedDestination> {
        RefusedDestination::of(&self.source)
    }
}

/// What exists at a destination that is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DestinationKind {
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Other,
    /// The file the command reads (the same file, whatever the path: hard links and
    /// symbolic links to it included).
    Input,
}

impl DestinationKind {
    /// What a file type is, `None` for a regular file (links are what they are, not followed).
    pub fn of(file_type: std::fs::FileType) -> Option<DestinationKind> {
        use std::os::unix::fs::FileTypeExt;
        Some(if file_type.is_file() {
            return None;
        } else if file_type.is_dir() {
            DestinationKind::Directory
        } else if file_type.is_symlink() {
            DestinationKind::Symlink
        } else if file_type.is_char_device() {
            DestinationKind::CharDevice
        } else if file_type.is_block_device() {
            DestinationKind::BlockDevice
        } else if file_type.is_fifo() {
            DestinationKind::Fifo
        } else if file_type.is_socket() {
            DestinationKind::Socket
        } else {
            DestinationKind::Other
        })
    }

    /// A short name: `"directory"`, `"symbolic link"`, `"character device"`, ...
    pub fn name(self) -> &'static str {
        match self {
            DestinationKind::Directory => "directory",
            DestinationKind::Symlink => "symbolic link",
            DestinationKind::CharDevice => "character device",
            DestinationKind::BlockDevice => "block device",
            DestinationKind::Fifo => "FIFO",
            DestinationKind::Socket => "socket",
            DestinationKind::Other => "special file",
            DestinationKind::Input => "input file",
        }
    }
}

/// The destination exists and is not a regular file: nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedDestination {
    pub kind: DestinationKind,
}

impl std::fmt::Display for RefusedDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == DestinationKind::Input {
            return f.write_str(
                "the destination is the input file itself: refusing to replace it (nothing was written)",
            );
        }
        write!(
            f,
            "the destination is a {}, not a regular file: refusing to replace it (nothing was written)",
            self.kind.name()
        )
    }
}

impl std::error::Error for RefusedDestination {}

impl RefusedDestination {
    /// The refusal carried by an I/O error, if it is one (callers keep `std::io::Error`).
    pub fn of(err: &std::io::Error) -> Option<&RefusedDestination> {
        err.get_ref()?.downcast_ref::<RefusedDestination>()
    }

    fn into_io(self) -> std::io::Error {
        let kind = match self.kind {
            DestinationKind::Directory => std::io::ErrorKind::IsADirectory,
            _ => std::io::ErrorKind::AlreadyExists,
        };
        std::io::Error::new(kind, self)
    }
}

/// Refuses to write `output` when it is one of `inputs` (the same file: same device and
/// inode, so another path, a hard link or a symbolic link to it counts too), before anything
/// is read or written: `skvault convert model.pkl model.pkl` must not replace its source.
/// A missing output or input is not this check's business.
pub fn refuse_input_as_output(output: &Path, inputs: &[&Path]) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(meta) = std::fs::metadata(input) {
            if (meta.dev(), meta.ino()) == (out.dev(), out.ino()) {
                return Err(RefusedDestination {
                    kind: DestinationKind::Input,
                }
                .into_io());
            }
        }
    }
    Ok(())
}

/// The destination's mode if it is a regular file, `None` if nothing is there, and the
/// refusal for anything else. Links are not followed.
fn check_destination(path: &Path) -> std::io::Result<Option<std::fs::Permissions>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => match DestinationKind::of(meta.file_type()) {
            None => Ok(Some(meta.permissions())),
            Some(kind) => Err(RefusedDestination { kind }.into_io()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes what `fill` produces to `path` atomically. A new file gets 0666 less the umask,
/// like open(2); a replaced file keeps its mode. A destination that exists and is not a
/// regular file is refused before anything is written (see the module documentation).
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), WriteFailure> {
    write_atomic_with(path, true, fill)
}

/// [`write_atomic`], choosing whether the write is durable. Not durable skips the two
/// flushes to the disk (the file's data and the folder's entry): the rename stays atomic, so
/// readers never see a partial file, but after a power loss or an OS crash the file may be
/// missing or empty. For checkpoints and tests, where speed matters more (FORMAT.md is
/// unchanged; `dump(..., durable=False)`).
pub fn write_atomic_with(
    path: &Path,
    durable: bool,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), WriteFailure> {
    write_atomic_send_with(path, durable, |w| fill(w))
}

/// [`write_atomic`] for a `fill` that needs a `Send` writer (the `parquet` crate's file
/// writer does).
pub fn write_atomic_send(
    path: &Path,
    fill: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<(), WriteFailure> {
    write_atomic_send_with(path, true, fill)
}

fn write_atomic_send_with(
    path: &Path,
    durable: bool,
    fill: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<(), WriteFailure> {
    write_atomic_file(path, durable, |tmp| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp);
        fill(&mut w)?;
        w.flush()
    })
}

/// [`write_atomic_with`] for a `fill` that writes the temporary file itself: in order through
/// `Write`, and in place with [`TempFile::write_all_at`] (e.g. a header completed last).
pub fn write_atomic_file(
    path: &Path,
    durable: bool,
    fill: impl FnOnce(&mut TempFile<'_>) -> std::io::Result<()>,
) -> Result<(), WriteFailure> {
    let failure = |p: &Path| {
        let p = p.to_path_buf();
        move |source| WriteFailure { path: p, source }
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // The folder is checked first so that a missing one is reported with its OS error
    // (ENOENT, ENOTDIR) rather than through tempfile's wrapper.
    std::fs::metadata(dir).map_err(failure(dir))?;
    let existing = check_destination(path).map_err(failure(path))?;
    let mode = existing
        .clone()
        .unwrap_or_else(|| std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = tempfile::Builder::new()
        .prefix(".skvault-")
        .suffix(".tmp")
        .permissions(mode)
        .tempfile_in(dir)
        .map_err(failure(path))?;
    // The file system matters only when a file is replaced (see the two functions below).
    let replacing_on = existing.as_ref().and_then(|_| file_system(tmp.as_file()));
    fill(&mut TempFile {
        file: tmp.as_file(),
        durable,
        writeback: durable || flushes_when_replacing(replacing_on),
        written: 0,
        handed: 0,
    })
    .map_err(failure(path))?;
    // open(2) applied the umask; an existing file's exact mode is restored explicitly.
    if let Some(mode) = &existing {
        tmp.as_file()
            .set_permissions(mode.clone())
            .map_err(failure(path))?;
    }
    if durable {
        tmp.as_file().sync_data().map_err(failure(path))?;
    }
    // Again, as late as possible: the fill may have taken a while. Dropping `tmp` removes it.
    check_destination(path).map_err(failure(path))?;
    let replaced = may_hold_replaced(replacing_on)
        .then(|| hold_replaced(path))
        .flatten();
    tmp.persist(path).map_err(|e| failure(path)(e.error))?;
    if let Some(old) = replaced {
        release_behind(old);
    }
    // Make the rename itself durable; not every platform lets a folder be opened for this.
    if durable {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Replaced files from this size are let go on a thread of their own (see [`hold_replaced`]).
const RELEASE_BEHIND_FROM: u64 = 32 << 20;

/// The file about to be replaced at `path`, held open across the rename when it is large.
/// The rename only unlinks it then; the kernel frees its pages and blocks when the last
/// descriptor closes, which [`release_behind`] does on another thread. Done by the rename,
/// that took 50 ms of a 160 MB forest's save over its previous file (the same work that
/// `open(path, "wb")` does when it truncates one). `None` (the rename frees it) for a small
/// file, one that cannot be opened, or one no longer a regular file (opened without
/// following a link, and without blocking on a FIFO swapped in meanwhile).
fn hold_replaced(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    (meta.file_type().is_file() && meta.len() >= RELEASE_BEHIND_FROM).then_some(file)
}

/// Closes `file` on a thread of its own (here if none can be started).
fn release_behind(file: std::fs::File) {
    let _ = std::thread::Builder::new()
        .name("skvault-release".into())
        .spawn(move || drop(file));
}

/// File system magic numbers (`statfs(2)`).
const EXT4_SUPER_MAGIC: i64 = 0xEF53;
const XFS_SUPER_MAGIC: i64 = 0x5846_5342;
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The magic number of the file system that holds `file`; `None` if it cannot be read.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
// `f_type`'s integer type differs between targets (i64 here, i32 or u32 elsewhere).
#[allow(clippy::unnecessary_cast)]
fn file_system(file: &std::fs::File) -> Option<i64> {
    use std::os::fd::AsRawFd;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs fills the statfs it is given (ours, of the right type) for a descriptor
    // borrowed for the duration of the call; it is read only if the call succeeded.
    unsafe {
        (libc::fstatfs(file.as_raw_fd(), stat.as_mut_ptr()) == 0)
            .then(|| stat.assume_init().f_type as i64)
    }
}

#[cfg(not(target_os = "linux"))]
fn file_system(_file: &std::fs::File) -> Option<i64> {
    None
}

/// Whether a file system (its magic number) writes out a file renamed over another at the rename:
/// ext4 does (`auto_da_alloc`, on by default), so that the new content reaches the disk
/// before the rename does. Its writeback is then better started while the file is written,
/// as a durable write does, than all at once in the rename (a 160 MB forest's save over its
/// previous file: 197 to 220 ms, 164 to 178 ms with the writeback started as it is written).
fn flushes_when_replacing(file_system: Option<i64>) -> bool {
    file_system == Some(EXT4_SUPER_MAGIC)
}

/// Whether a replaced file may be held open across the rename (see [`hold_replaced`]) on a
/// file system (its magic number): on local ones only. A network one may keep an unlinked
/// file that is still open under a temporary name in the folder (NFS's `.nfsXXXX` files)
/// until it is closed.
fn may_hold_replaced(file_system: Option<i64>) -> bool {
    matches!(
        file_system,
        Some(EXT4_SUPER_MAGIC | XFS_SUPER_MAGIC | BTRFS_SUPER_MAGIC | TMPFS_MAGIC)
    )
}

/// Bytes a durable write lets pile up in the page cache before it asks the kernel to start
/// writing them to the disk: the disk then works while the rest is produced, and the final
/// `fdatasync` waits for the last few megabytes instead of the whole file.
pub const WRITEBACK_CHUNK: u64 = 8 << 20;

/// The temporary file of an atomic write, as [`write_atomic_file`] hands it to its fill.
/// Written in order through `Write` (from offset 0), and in place through
/// [`TempFile::write_all_at`]. When the write is durable, or replaces a file on a file
/// system that writes a replacing file out at the rename (see [`flushes_when_replacing`]),
/// every [`WRITEBACK_CHUNK`] written in order is handed to the disk at once (Linux
/// `sync_file_range`, which only starts the writeback): the `fdatasync` before the rename is
/// still what makes a durable file durable.
pub struct TempFile<'f> {
    file: &'f std::fs::File,
    durable: bool,
    writeback: bool,
    /// Bytes written in order so far.
    written: u64,
    /// Bytes already handed to the disk.
    handed: u64,
}

impl TempFile<'_> {
    /// Tells the file system that `len` bytes are coming, where that makes writing them
    /// cheaper: a non-durable write of at least [`RESERVE_FROM`] bytes on ext4, whose blocks
    /// are then allocated at once (`fallocate` with `FALLOC_FL_KEEP_SIZE`: the file's size
    /// still grows only as it is written) instead of reserved page by page as the writes
    /// come. A 160 MB file's writes took 0.88x to 0.92x the time (33 to 42 against 37 to
    /// 47 ms, alternated runs); a durable write's time, bound by the disk, did not change,
    /// so it is left as it was. Only a hint: errors are ignored (the writes report what
    /// matters), and elsewhere than on Linux it does nothing.
    pub fn reserve(&self, len: u64) {
        if !self.durable && len >= RESERVE_FROM && file_system(self.file) == Some(EXT4_SUPER_MAGIC)
        {
            preallocate(self.file, len);
        }
    }

    /// Writes `buf` at `offset`, leaving the position of the writes in order where it is.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self.file, buf, offset)
    }

    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        if self.writeback && self.written - self.handed >= WRITEBACK_CHUNK {
            start_writeback(self.file, self.handed, self.written - self.handed);
            self.handed = self.written;
        }
    }
}

impl Write for TempFile<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.wrote(n);
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        let n = (&mut &*self.file).write_vectored(bufs)?;
        self.wrote(n);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes from this size are announced to the file system first (see [`TempFile::reserve`]).
pub const RESERVE_FROM: u64 = 32 << 20;

/// Allocates `len` bytes of disk for `file` without changing its size (`FALLOC_FL_KEEP_SIZE`).
/// A hint: an error (a file system without `fallocate`, no space left) is ignored.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn preallocate(file: &std::fs::File, len: u64) {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off64_t::try_from(len) else {
        return;
    };
    // SAFETY: fallocate only reads its integer arguments; the descriptor is open for as long
    // as `file` is borrowed, and a bad argument is an error return, not undefined behaviour.
    let _ = unsafe { libc::fallocate64(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) };
}

#[cfg(not(target_os = "linux"))]
fn preallocate(_file: &std::fs::File, _len: u64) {}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to the disk, without
/// waiting for them. Only a hint: an error is ignored (the `fdatasync` that follows reports
/// what matters), and elsewhere than on Linux it does nothing.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is open for
    // as long as `file` is borrowed, and a bad range is an error return, not undefined
    // behaviour.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &std::fs::File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::{
        file_system, hold_replaced, write_atomic, write_atomic_file, write_atomic_with,
        DestinationKind, WriteFailure, EXT4_SUPER_MAGIC, RELEASE_BEHIND_FROM, RESERVE_FROM,
    };
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::path::Path;

    /// Tries to write `path`; the fill must never run for a refused destination.
    fn refused_write(path: &Path) -> WriteFailure {
        let mut filled = false;
        let err = write_atomic(path, |w| {
            filled = true;
            w.write_all(b"new")
        })
        .unwrap_err();
        assert!(
            !filled,
            "{}: the fill ran before the refusal",
            path.display()
        );
        err
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn directories_fifos_sockets_and_symlinks_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("folder")).unwrap();
        std::fs::write(root.join("folder").join("inside"), b"keep").unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("fifo"))
            .status()
            .unwrap();
        assert!(made.success());
        let _listener = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
        std::fs::write(root.join("target"), b"target").unwrap();
        std::os::unix::fs::symlink(root.join("target"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("nowhere"), root.join("dangling")).unwrap();
        let before = entries(root);
        for (name, kind) in [
            ("folder", DestinationKind::Directory),
            ("fifo", DestinationKind::Fifo),
            ("socket", DestinationKind::Socket),
            ("link", DestinationKind::Symlink),
            ("dangling", DestinationKind::Symlink),
        ] {
            let path = root.join(name);
            let err = refused_write(&path);
            assert_eq!(err.path, path);
            assert_eq!(err.refused().map(|r| r.kind), Some(kind), "{name}: {err:?}");
            let text = err.source.to_string();
            assert!(text.contains(kind.name()), "{name}: {text}");
        }
        // Nothing replaced, nothing written through the link, no temporary left behind.
        assert_eq!(entries(root), before);
        assert!(std::fs::symlink_metadata(root.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        assert!(std::fs::symlink_metadata(root.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(root.join("target")).unwrap(), b"target");
        assert!(!root.join("nowhere").exists());
        assert_eq!(entries(&root.join("folder")), ["inside"]);
    }

    /// A character device made for the test (`mknod`, root only), never a shared one: if the
    /// refusal ever regressed, this test must not replace the machine's `/dev/null`.
    #[test]
    fn a_character_device_is_refused_and_stays_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("null");
        let made = std::process::Command::new("mknod")
            .args(["-m", "666"])
            .arg(&node)
            .args(["c", "1", "3"])
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: cannot create a device node here (not root)");
            return;
        }
        let err = refused_write(&node);
        assert_eq!(
            err.refused().map(|r| r.kind),
            Some(DestinationKind::CharDevice)
        );
        assert!(std::fs::symlink_metadata(&node)
            .unwrap()
            .file_type()
            .is_char_device());
        assert_eq!(entries(dir.path()), ["null"]);
        // Only now that a device is known to be refused: the real one.
        let err = refused_write(Path::new("/dev/null"));
        assert_eq!(
            err.refused().map(|r| r.kind),
            Some(DestinationKind::CharDevice)
        );
        assert!(std::fs::symlink_metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    #[test]
    fn a_regular_file_is_still_replaced_and_other_errors_are_not_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, |w| w.write_all(b"one")).unwrap();
        write_atomic(&path, |w| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let err = write_atomic(&path, |_| Err(std::io::Error::other("boom"))).unwrap_err();
        assert!(err.refused().is_none());
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"old").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        })
        .unwrap_err();
        assert_eq!(err.path, path);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replacing_keeps_the_mode_and_a_missing_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let missing = dir.path().join("no").join("f");
        let err = write_atomic(&missing, |w| w.write_all(b"x")).unwrap_err();
        assert_eq!(err.path, dir.path().join("no"));
        assert_eq!(err.source.kind(), std::io::ErrorKind::NotFound);
    }

    /// Descriptors of this process open on a file named `name` that has been unlinked.
    fn open_deleted(name: &str) -> usize {
        let wanted = format!("{name} (deleted)");
        std::fs::read_dir("/proc/self/fd")
            .map(|fds| {
                fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter(|target| target.to_string_lossy().ends_with(&wanted))
                    .count()
            })
            .unwrap_or(0)
    }

    #[test]
    fn a_large_replaced_file_is_let_go_after_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large-model");
        let old = vec![7u8; RELEASE_BEHIND_FROM as usize + 1];
        std::fs::write(&path, &old).unwrap();
        for durable in [false, true] {
            write_atomic_with(&path, durable, |w| w.write_all(b"new")).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"new");
            assert_eq!(entries(dir.path()), ["large-model"]);
            std::fs::write(&path, &old).unwrap();
        }
        // The replaced file, held open across the rename where the file system allows it,
        // is closed soon after: no descriptor is left on it.
        let start = std::time::Instant::now();
        while open_deleted("large-model") > 0 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "a replaced file is still open"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn only_a_large_regular_file_is_held_across_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let large = root.join("large");
        std::fs::write(&large, vec![1u8; RELEASE_BEHIND_FROM as usize]).unwrap();
        std::fs::write(root.join("small"), b"small").unwrap();
        std::os::unix::fs::symlink(&large, root.join("link")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("fifo"))
            .status()
            .unwrap();
        assert!(made.success());
        assert!(hold_replaced(&large).is_some());
        // Not followed, not waited for (a FIFO opened without blocking), not worth it.
        for name in ["link", "fifo", "small", "missing"] {
            assert!(hold_replaced(&root.join(name)).is_none(), "{name}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_file_system_of_a_file_is_known() {
        let file = tempfile::tempfile().unwrap();
        assert!(file_system(&file).is_some());
    }

    /// Blocks allocated to the temporary file when `reserve(len)` is asked before anything
    /// is written, and the finished file.
    #[cfg(target_os = "linux")]
    fn reserved_blocks(dir: &Path, len: u64, durable: bool) -> (u64, Vec<u8>) {
        use std::os::unix::fs::MetadataExt;
        let path = dir.join(format!("r{len}{durable}.bin"));
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut blocks = 0;
        write_atomic_file(&path, durable, |tmp| {
            tmp.reserve(len);
            let meta = tmp.file.metadata()?;
            assert_eq!(meta.len(), 0, "the size grows only as the file is written");
            blocks = meta.blocks();
            tmp.write_all(&data)
        })
        .unwrap();
        (blocks, std::fs::read(&path).unwrap())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_non_durable_write_on_ext4_reserves_its_blocks_first() {
        let dir = tempfile::tempdir().unwrap();
        let probe = tempfile::tempfile_in(dir.path()).unwrap();
        let ext4 = file_system(&probe) == Some(EXT4_SUPER_MAGIC);
        let len = RESERVE_FROM + 4096;
        let (blocks, written) = reserved_blocks(dir.path(), len, false);
        // st_blocks counts 512-byte units.
        assert_eq!(
            blocks * 512 >= len,
            ext4,
            "{blocks} blocks reserved on ext4: {ext4}"
        );
        assert_eq!(written.len() as u64, len);
        assert!(written
            .iter()
            .enumerate()
            .all(|(i, b)| *b == (i % 251) as u8));
        for (len, durable) in [(len, true), (RESERVE_FROM - 1, false)] {
            let (blocks, written) = reserved_blocks(dir.path(), len, durable);
            assert_eq!(
                blocks, 0,
                "nothing reserved for {len} bytes, durable: {durable}"
            );
            assert_eq!(written.len() as u64, len);
        }
    }
}
