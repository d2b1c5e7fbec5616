//! Files and folders: what `skvault scan` and `skvault convert` (CLI and Python) run.
//!
//! Every file is opened by path and recognised by its first bytes. `.skv` files are checked
//! the way `skvault.load` checks them (the names their trees need against the trust set);
//! a file that is not a pickle at all by its first bytes ([`crate::not_a_pickle_reason`]) is an
//! error ([`FileError::NotAPickle`]), not a verdict; anything else is read as a pickle or
//! joblib stream. When a folder is walked, a file without a pickle or joblib extension that is
//! not a pickle, or whose reading fails before it names any importable global (dotted Python
//! identifiers), is skipped: `pickle.load` would fail on it before importing anything (a text
//! file read as protocol 0 names globals like `mport numpy as np`). Files named explicitly
//! are always judged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use skvault_format::{Node, SkvFile, TrustSet, WriteOptions};

use crate::container::{decompress, detect, Format};
use crate::error::PickleError;
use crate::limits::Limits;
use crate::migrate::{self, Migration};
use crate::names::classify;
use crate::scan::{scan_stream, verdict_of, GlobalFinding, ScanOptions, ScanReport, Verdict};
use crate::value::Global;

/// Extensions under which pickles are usually saved (checked only to skip files in folders).
const PICKLE_EXTENSIONS: &[&str] = &[
    "pkl", "pickle", "joblib", "jbl", "sav", "p", "pk", "pck", "pcl", "dat", "bin", "pt", "pth",
    "ckpt", "model", "z", "gz", "bz2", "xz", "lzma", "lz4", "skv",
];

/// Errors of the file-level operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The scan found something dangerous, suspicious, or could not read the file.
    #[error("{}: refusing to convert an {} file: {}", path.display(), report.verdict.as_str(), summary(report))]
    Unsafe {
        path: PathBuf,
        report: Box<ScanReport>,
    },
    /// The file names classes or functions that are not trusted (and not known dangerous).
    #[error(
        "{}: the file needs {} untrusted name(s): {}. Review them, then trust them \
         (--trust NAME, or trusted=[...]) to convert", path.display(), names.len(), names.join(", ")
    )]
    Untrusted { path: PathBuf, names: Vec<String> },
    /// A model saved by another scikit-learn names scikit-learn classes that the current one
    /// does not have, and skvault knows no migration for them.
    #[error(
        "{}: saved by scikit-learn {saved}, and {} do(es) not exist in scikit-learn {current}: \
         skvault has no migration for this model. Refit it with scikit-learn {current}, or load \
         it with scikit-learn {saved}", path.display(), names.join(", ")
    )]
    Unmigratable {
        path: PathBuf,
        names: Vec<String>,
        saved: String,
        current: String,
    },
    /// The stream is safe to read but cannot become a `.skv` file (or needs a migration that
    /// skvault cannot do).
    #[error("{}: {source}", path.display())]
    Convert {
        path: PathBuf,
        #[source]
        source: PickleError,
    },
    /// Writing the `.skv` file failed (nothing is left at the destination).
    #[error(transparent)]
    Write(#[from] skvault_format::FormatError),
    /// The source is already a `.skv` file.
    #[error("{}: already a .skv file", path.display())]
    AlreadySkv { path: PathBuf },
    /// The file is not a pickle at all, by its first bytes
    /// ([`crate::not_a_pickle_reason`]): neither `pickle.load` nor `joblib.load` could run
    /// anything from it, so it is an error, not a verdict.
    #[error("{}: not a pickle or joblib file: {reason}", path.display())]
    NotAPickle { path: PathBuf, reason: String },
}

fn summary(report: &ScanReport) -> String {
    if let Some(e) = &report.error {
        return format!("it cannot be read to its end ({e})");
    }
    let mut parts: Vec<String> = report
        .globals
        .iter()
        .filter(|g| g.kind != crate::GlobalKind::Safe)
        .map(|g| format!("{} ({})", g.qualified(), g.kind.as_str()))
        .collect();
    parts.extend(report.issues.iter().map(ToString::to_string));
    parts.join("; ")
}

fn io_err(path: &Path, source: std::io::Error) -> FileError {
    FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file's bytes, memory-mapped (an empty file cannot be mapped: it reads as empty).
struct Mapped(Option<memmap2::Mmap>);

impl Mapped {
    fn open(path: &Path) -> Result<Mapped, FileError> {
        let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        let len = file.metadata().map_err(|e| io_err(path, e))?.len();
        if len == 0 {
            return Ok(Mapped(None));
        }
        // SAFETY: the mapping is read-only and private to this process; a file truncated by
        // another process while mapped is the one hazard, as for every mmap reader.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err(path, e))?;
        Ok(Mapped(Some(map)))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// Scans one file, whatever its kind.
pub fn scan_path(path: &Path, options: &ScanOptions) -> Result<ScanReport, FileError> {
    let map = Mapped::open(path)?;
    refuse_non_pickle(path, map.bytes())?;
    if detect(map.bytes()) == Format::Skv {
        return match SkvFile::open(path) {
            Ok(file) => Ok(scan_skv(&file, &options.trust)),
            Err(skvault_format::FormatError::Io { path, source }) => {
                Err(FileError::Io { path, source })
            }
            Err(e) => Ok(skv_failure(e)),
        };
    }
    Ok(crate::scan::scan_with(map.bytes(), options))
}

fn refuse_non_pickle(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    match crate::container::not_a_pickle_reason(bytes) {
        Some(reason) => Err(FileError::NotAPickle {
            path: path.to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The verdict on a `.skv` file: the names its trees need, rated like pickle globals.
pub fn scan_skv(file: &SkvFile, trust: &TrustSet) -> ScanReport {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for tree in file.manifest().trees() {
        count_names(tree, &mut counts);
    }
    let globals: Vec<GlobalFinding> = counts
        .into_iter()
        .map(|(q, count)| {
            let (module, name) = q.rsplit_once('.').unwrap_or(("", &q));
            let global = Global {
                module: module.to_string(),
                name: name.to_string(),
            };
            GlobalFinding {
                kind: classify(&global, trust),
                module: global.module,
                name: global.name,
                count,
                first_offset: 0,
            }
        })
        .collect();
    ScanReport {
        verdict: verdict_of(&globals, &[], false),
        format: Format::Skv,
        protocol: None,
        pickles: 0,
        joblib_arrays: 0,
        globals,
        issues: Vec::new(),
        error: None,
    }
}

pub(crate) fn skv_failure(e: skvault_format::FormatError) -> ScanReport {
    ScanReport {
        verdict: Verdict::Unsafe,
        format: Format::Skv,
        protocol: None,
        pickles: 0,
        joblib_arrays: 0,
        globals: Vec::new(),
        issues: Vec::new(),
        error: Some(PickleError::Skv(e)),
    }
}

fn count_names(root: &Node, counts: &mut BTreeMap<String, usize>) {
    skvault_format::node::walk(root, &mut |n| {
        let name = match n {
            Node::Global(name) => name,
            Node::Object(obj) => &obj.class,
            _ => return,
        };
        *counts.entry(name.clone()).or_default() += 1;
    });
}

/// One file met by [`scan_paths`].
#[derive(Debug)]
pub struct FileScan {
    pub path: PathBuf,
    pub size: u64,
    pub result: Result<ScanReport, FileError>,
}

/// Scans files and folders (recursively, in name order), calling `each` as every file is
/// done. Files skipped in folders (see the module docs) are not reported; their number is
/// returned.
pub fn scan_paths(
    paths: &[PathBuf],
    options: &ScanOptions,
    each: &mut dyn FnMut(FileScan),
) -> usize {
    let mut skipped = 0;
    for path in paths {
        if path.is_dir() {
            walk_dir(path, options, each, &mut skipped);
        } else {
            each(scan_one(path, options));
        }
    }
    skipped
}

fn scan_one(path: &Path, options: &ScanOptions) -> FileScan {
    FileScan {
        path: path.to_path_buf(),
        size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        result: scan_path(path, options),
    }
}

fn walk_dir(
    dir: &Path,
    options: &ScanOptions,
    each: &mut dyn FnMut(FileScan),
    skipped: &mut usize,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            each(FileScan {
                path: dir.to_path_buf(),
                size: 0,
                result: Err(io_err(dir, e)),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        // Symlinks are not followed into folders (no loops); linked files are scanned.
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            walk_dir(&path, options, each, skipped);
            continue;
        }
        let scanned = scan_one(&path, options);
        if is_not_a_pickle(&scanned) {
            *skipped += 1;
        } else {
            each(scanned);
        }
    }
}

fn is_not_a_pickle(scan: &FileScan) -> bool {
    let named_like_one = scan
        .path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PICKLE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    match &scan.result {
        Ok(r) => {
            !named_like_one
                && r.format != Format::Skv
                && !matches!(r.format, Format::Compressed(_))
                && r.error.is_some()
                && r.issues.is_empty()
                && !r.globals.iter().any(importable)
        }
        Err(FileError::NotAPickle { .. }) => !named_like_one,
        Err(_) => false,
    }
}

/// Whether `import module; module.name` could succeed: dotted Python identifiers. Text files
/// read as protocol-0 pickles name globals like `mport numpy as np` that no import can find.
fn importable(g: &GlobalFinding) -> bool {
    fn dotted(s: &str) -> bool {
        !s.is_empty()
            && s.split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c == '_' || c.is_alphabetic())
                    && part.chars().all(|c| c == '_' || c.is_alphanumeric())
            })
    }
    dotted(&g.module) && dotted(&g.name)
}

/// How to convert.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    pub scan: ScanOptions,
    pub write: WriteOptions,
}

/// What a conversion did.
#[derive(Debug)]
pub struct Conversion {
    pub report: ScanReport,
    pub migrations: Vec<Migration>,
    pub sklearn_versions: Vec<String>,
    pub arrays: usize,
    pub bytes_written: u64,
}

/// The steps of a conversion, for progress display.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Decompressing,
    Scanning,
    Converting,
    /// `done` of `total` bytes written.
    Writing {
        done: u64,
        total: u64,
    },
}

/// Converts a pickle or joblib file into a `.skv` file at `dst` (atomically: on any failure
/// nothing is left at `dst`). The file is scanned first with the same reader: anything but a
/// `safe` verdict is refused.
pub fn convert_file(
    src: &Path,
    dst: &Path,
    options: &ConvertOptions,
    progress: &mut dyn FnMut(Step),
) -> Result<Conversion, FileError> {
    convert_file_checked(src, dst, options, &mut |step| {
        progress(step);
        Ok(())
    })
}

/// Like [`convert_file`], but `progress` may stop the conversion by returning an error
/// (between steps, and while writing: at least every
/// [`skvault_format::write::PROGRESS_CHUNK`] bytes). The error is returned as
/// [`FileError::Io`] on `dst`, or in [`FileError::Write`] while writing; nothing is left at
/// `dst` and no temporary file remains.
pub fn convert_file_checked(
    src: &Path,
    dst: &Path,
    options: &ConvertOptions,
    progress: &mut dyn FnMut(Step) -> std::io::Result<()>,
) -> Result<Conversion, FileError> {
    let mut step = |s: Step| progress(s).map_err(|e| io_err(dst, e));
    skvault_format::atomic::refuse_input_as_output(dst, &[src]).map_err(|source| {
        FileError::Io {
            path: dst.to_path_buf(),
            source,
        }
    })?;
    let map = Mapped::open(src)?;
    let bytes = map.bytes();
    if detect(bytes) == Format::Skv {
        return Err(FileError::AlreadySkv {
            path: src.to_path_buf(),
        });
    }
    refuse_non_pickle(src, bytes)?;
    let limits: &Limits = &options.scan.limits;
    step(Step::Decompressing)?;
    let (format, stream) = decompress(bytes, limits).map_err(|_| FileError::Unsafe {
        path: src.to_path_buf(),
        report: Box::new(crate::scan::scan_with(bytes, &options.scan)),
    })?;
    step(Step::Scanning)?;
    let report = refuse_unless_safe(src, scan_stream(format, &stream, &options.scan))?;
    step(Step::Converting)?;
    let convert_err = |source| FileError::Convert {
        path: src.to_path_buf(),
        source,
    };
    let mut converted = crate::convert(&stream, limits).map_err(convert_err)?;
    let sklearn_versions = migrate::sklearn_versions(&converted.root);
    let migrations = migrate::migrate(&mut converted).map_err(convert_err)?;
    let untrusted = options.scan.trust.untrusted_names(&converted.root);
    if !untrusted.is_empty() {
        return Err(untrusted_error(src, untrusted, &sklearn_versions));
    }
    // The load would refuse it: standard-library values only in the shapes their pickles have.
    skvault_format::stdlib::check_tree(&converted.root).map_err(|e| {
        convert_err(PickleError::Convert {
            path: "/root".into(),
            message: e.to_string(),
        })
    })?;
    let metadata = record(
        src,
        bytes,
        &report,
        &converted.root,
        &sklearn_versions,
        &migrations,
    );
    let prepared = skvault_format::prepare(
        converted.root.clone(),
        &converted.array_inputs(),
        metadata,
        options.write,
    )?;
    // The writer reports the bytes written so far (not each call's increment).
    let total = prepared.len();
    prepared.write_file_checked(dst, &mut |done| progress(Step::Writing { done, total }))?;
    Ok(Conversion {
        report,
        migrations,
        sklearn_versions,
        arrays: converted.arrays.len(),
        bytes_written: total,
    })
}

/// Dangerous globals, suspicious constructs and unreadable streams are refused here. Unknown
/// globals are left to the trust check of the converted tree, which names exactly what
/// loading would import (after migrations rename what they rename).
fn refuse_unless_safe(path: &Path, report: ScanReport) -> Result<ScanReport, FileError> {
    match report.verdict {
        Verdict::Safe => Ok(report),
        Verdict::Unknown if report.issues.is_empty() => Ok(report),
        _ => Err(FileError::Unsafe {
            path: path.to_path_buf(),
            report: Box::new(report),
        }),
    }
}

/// Names under `sklearn.` that the allow-list (made from the scikit-learn it names) lacks, in
/// a file saved by another scikit-learn, are classes that no longer exist: say so.
fn untrusted_error(path: &Path, names: Vec<String>, versions: &[String]) -> FileError {
    let current = skvault_format::trust::sklearn_list_version();
    let saved = versions.iter().find(|v| Some(v.as_str()) != current);
    match (saved, current) {
        (Some(saved), Some(current)) if names.iter().all(|n| n.starts_with("sklearn.")) => {
            FileError::Unmigratable {
                path: path.to_path_buf(),
                names,
                saved: saved.clone(),
                current: current.to_string(),
            }
        }
        _ => FileError::Untrusted {
            path: path.to_path_buf(),
            names,
        },
    }
}

/// The converted file's metadata: where it came from, and the scikit-learn version that wrote
/// it as its environment (so that `skvault.load` applies its version policy).
fn record(
    src: &Path,
    bytes: &[u8],
    report: &ScanReport,
    root: &Node,
    versions: &[String],
    migrations: &[Migration],
) -> Map<String, Value> {
    let mut env = Map::new();
    env.insert("skvault".into(), json!(env!("CARGO_PKG_VERSION")));
    // With several versions in one file, the oldest decides the policy.
    let oldest = versions
        .iter()
        .min_by_key(|v| migrate::parse_version(v).unwrap_or((0, 0)));
    if let Some(v) = oldest {
        env.insert("scikit-learn".into(), json!(v));
    }
    let object = match root.unshared() {
        Node::Object(obj) => obj.class.clone(),
        Node::Dict(_) => "builtins.dict".into(),
        Node::List(_) => "builtins.list".into(),
        Node::Tuple(_) => "builtins.tuple".into(),
        _ => "builtins.object".into(),
    };
    let mut m = Map::new();
    m.insert("created_at".into(), json!(created_at()));
    m.insert("environment".into(), Value::Object(env));
    m.insert("object".into(), json!(object));
    m.insert(
        "converted_from".into(),
        json!({
            "file": src.file_name().map(|n| n.to_string_lossy().into_owned()),
            "format": report.format.name(),
            "protocol": report.protocol,
            "size": bytes.len(),
            "blake3": blake3::hash(bytes).to_hex().to_string(),
            "sklearn_versions": versions,
            "migrations": migrations
                .iter()
                .map(|m| json!({"id": m.id, "what": m.what, "count": m.count, "first_path": m.first_path}))
                .collect::<Vec<_>>(),
        }),
    );
    m
}

/// UTC now (or `SOURCE_DATE_EPOCH`), ISO 8601 with seconds, as the Python writer records it.
fn created_at() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let time = match epoch {
        Some(secs) => std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        None => std::time::SystemTime::now(),
    };
    humantime::format_rfc3339_seconds(time).to_string()
}
