//! Atomic file writes, shared by every writer of the workspace (`.skv` files, exports,
//! registry downloads, predictions): a temporary file in the destination folder, fsync,
//! rename over the destination, fsync of the folder. Readers see the old file or the
//! complete new one; an error, or a crash before the rename, leaves the destination as it
//! was and removes the temporary file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where an atomic write failed: the path concerned (the destination, or its folder when
/// that is what is missing) and the OS error.
#[derive(Debug)]
pub struct WriteFailure {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Writes what `fill` produces to `path` atomically. A new file gets 0666 less the umask,
/// like open(2); a replaced file keeps its mode.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
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
    let existing = std::fs::metadata(path).ok().map(|m| m.permissions());
    let mode = existing
        .clone()
        .unwrap_or_else(|| std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = tempfile::Builder::new()
        .prefix(".skvault-")
        .suffix(".tmp")
        .permissions(mode)
        .tempfile_in(dir)
        .map_err(failure(path))?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        fill(&mut w).map_err(failure(path))?;
        w.flush().map_err(failure(path))?;
    }
    // open(2) applied the umask; an existing file's exact mode is restored explicitly.
    if let Some(mode) = existing {
        tmp.as_file().set_permissions(mode).map_err(failure(path))?;
    }
    tmp.as_file().sync_data().map_err(failure(path))?;
    tmp.persist(path).map_err(|e| failure(path)(e.error))?;
    // Make the rename itself durable; not every platform lets a folder be opened for this.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_atomic;
    use std::os::unix::fs::PermissionsExt;

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
}
