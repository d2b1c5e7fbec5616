//! `skvault._native`: the Rust core seen from Python. The public API is `python/skvault`.

mod allocator;
mod buffers;
mod build;
mod dtypes;
mod errors;
mod export;
mod legacy;
mod mapped;
mod native;
mod pool;
mod records;
mod registry;
mod sign;
mod values;
mod walk;

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use skvault_format::{prepare_with_validation, ArrayInput, Codec, SkvFile, TrustSet, WriteOptions};

use crate::errors::{format_error, from_format, from_trust, new_err, IntoPyResult};
use crate::mapped::MappedFile;

/// A file path or the bytes of a file.
#[derive(FromPyObject)]
enum Source {
    Bytes(Vec<u8>),
    Path(PathBuf),
}

/// How a file's bytes are reached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Mmap,
    MmapCopy,
}

fn open(py: Python<'_>, source: Source, access: Access) -> PyResult<SkvFile> {
    let (file, padding) = open_deferred(py, source, access)?;
    if let Some(padding) = padding {
        py.detach(|| padding.run(&file)).py_err(py)?;
    }
    Ok(file)
}

/// [`open`], leaving a read-only mapped file's padding check to the caller (see
/// `SkvFile::open_mmap_deferred`).
fn open_deferred(
    py: Python<'_>,
    source: Source,
    access: Access,
) -> PyResult<(SkvFile, Option<skvault_format::PaddingCheck>)> {
    py.detach(|| match (source, access) {
        (Source::Path(p), Access::Mmap) => {
            SkvFile::open_mmap_deferred(&p).map(|(f, padding)| (f, Some(padding)))
        }
        (Source::Path(p), Access::MmapCopy) => SkvFile::open_mmap_copy(&p).map(|f| (f, None)),
        (Source::Path(p), Access::Read) => SkvFile::open(&p).map(|f| (f, None)),
        (Source::Bytes(b), _) => SkvFile::from_bytes(b).map(|f| (f, None)),
    })
    .py_err(py)
}

fn options(py: Python<'_>, compress: Option<&str>, level: Option<i32>) -> PyResult<WriteOptions> {
    let codec = match compress {
        None => Codec::None,
        Some(name) => Codec::from_name(name).ok_or_else(|| {
            new_err(
                py,
                "InvalidOptionError",
                format!("compress must be None, \"zstd\" or \"lz4\", not {name:?}"),
            )
        })?,
    };
    codec.check_level(level).map_err(|e| from_format(py, e))?;
    Ok(WriteOptions { codec, level })
}

/// The record `skvault._api` builds, converted as `json.dumps` would write it (see `values`).
fn metadata_map(
    py: Python<'_>,
    metadata: Option<&Bound<'_, PyDict>>,
) -> PyResult<serde_json::Map<String, serde_json::Value>> {
    let invalid = || format_error(py, "metadata must be a JSON object".into());
    match metadata {
        None => Ok(serde_json::Map::new()),
        Some(dict) => values::object(dict, 1, &invalid),
    }
}

/// Walks `obj` and lays out the file; `f` writes it.
struct DumpArgs<'a, 'py> {
    compress: Option<&'a str>,
    level: Option<i32>,
    metadata: Option<&'a Bound<'py, PyDict>>,
    validation: Option<&'a Bound<'py, PyAny>>,
}

fn with_prepared<'py, T>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    args: DumpArgs<'_, 'py>,
    f: impl FnOnce(&skvault_format::write::Prepared<'_>) -> PyResult<T>,
) -> PyResult<T> {
    let opts = options(py, args.compress, args.level)?;
    let metadata = metadata_map(py, args.metadata)?;
    let mut walker = walk::Walker::new(py)?;
    let root = walker.run(obj)?;
    let validation = args.validation.map(|v| walker.run(v)).transpose()?;
    let root = walker.finish(root);
    let validation = validation.map(|v| walker.finish(v));
    // Never write what load would refuse: standard-library values only in their checked shapes.
    for tree in std::iter::once(&root).chain(validation.as_ref()) {
        skvault_format::stdlib::check_tree(tree)
            .map_err(|e| errors::unsupported(py, format!("cannot save {e}")))?;
    }
    let inputs: Vec<ArrayInput<'_>> = walker
        .arrays
        .iter()
        .map(|a| ArrayInput {
            dtype: a.dtype.clone(),
            shape: a.shape.clone(),
            order: a.order,
            data: if a.nbytes == 0 {
                &[]
            } else {
                // SAFETY: `a.ptr` is the data of `a._owner`, a contiguous numpy array of
                // `a.nbytes` bytes kept alive by the walker until the end of this function. The
                // GIL is held throughout, so no Python code mutates it while the bytes are read
                // (only C code of another thread that released the GIL could, as with pickle).
                unsafe { std::slice::from_raw_parts(a.ptr as *const u8, a.nbytes) }
            },
        })
        .collect();
    let prepared = prepare_with_validation(root, validation, &inputs, metadata, opts).py_err(py)?;
    f(&prepared)
}

/// Saves `obj` to `path` atomically (and durably unless `durable` is false).
#[pyfunction]
#[pyo3(signature = (obj, path, *, compress=None, level=None, metadata=None, validation=None, durable=true))]
#[allow(clippy::too_many_arguments)]
fn dump<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    path: PathBuf,
    compress: Option<&str>,
    level: Option<i32>,
    metadata: Option<Bound<'py, PyDict>>,
    validation: Option<Bound<'py, PyAny>>,
    durable: bool,
) -> PyResult<()> {
    let args = DumpArgs {
        compress,
        level,
        metadata: metadata.as_ref(),
        validation: validation.as_ref(),
    };
    with_prepared(py, obj, args, |prepared| {
        prepared
            .write_file_with(&path, durable, &mut |_| Ok(()))
            .py_err(py)
    })
}

/// Returns the bytes of the `.skv` file for `obj`.
#[pyfunction]
#[pyo3(signature = (obj, *, compress=None, level=None, metadata=None, validation=None))]
fn dumps<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    compress: Option<&str>,
    level: Option<i32>,
    metadata: Option<Bound<'py, PyDict>>,
    validation: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyBytes>> {
    let args = DumpArgs {
        compress,
        level,
        metadata: metadata.as_ref(),
        validation: validation.as_ref(),
    };
    with_prepared(py, obj, args, |prepared| {
        // Written straight into the bytes object: no intermediate copy of the whole file.
        let len = usize::try_from(prepared.len())
            .map_err(|_| format_error(py, "file too large".into()))?;
        PyBytes::new_with(py, len, |buf| {
            let mut cursor = std::io::Cursor::new(buf);
            prepared
                .write_to(&mut cursor, &mut |_| {})
                .map_err(|e| format_error(py, format!("writing to memory failed: {e}")))
        })
    })
}

fn trust_set(py: Python<'_>, trusted: Vec<String>) -> PyResult<TrustSet> {
    TrustSet::new(trusted).map_err(|e| from_trust(py, e))
}

/// Loads a `.skv` file (path or bytes). `verify=None` checks digests except those of arrays
/// viewed in place in a mapped file.
/// With `with_validation`, returns `(obj, validation)` (`None` when the file has none).
/// `before_build`, if given, is called with the environment recorded in the metadata (usually a
/// dict, `None` if none) once the file is validated and before anything is built; an exception
/// it raises aborts the load.
#[pyfunction]
#[pyo3(signature = (source, *, trusted=Vec::new(), mmap=None, verify=None, with_validation=false, before_build=None, signature_policy="env", signature_keys=None))]
#[allow(clippy::too_many_arguments)]
fn load<'py>(
    py: Python<'py>,
    source: Source,
    trusted: Vec<String>,
    mmap: Option<String>,
    verify: Option<bool>,
    with_validation: bool,
    before_build: Option<Bound<'py, PyAny>>,
    signature_policy: &str,
    signature_keys: Option<Vec<PathBuf>>,
) -> PyResult<Bound<'py, PyAny>> {
    let trust = trust_set(py, trusted)?;
    // Keys first: a bad key path is an error whatever the file holds.
    let signers = sign::policy_keys(py, signature_policy, signature_keys)?;
    let access = match (mmap.as_deref(), &source) {
        (_, Source::Bytes(_)) | (None, _) => Access::Read,
        (Some("r"), _) => Access::Mmap,
        (Some("c"), _) => Access::MmapCopy,
        (Some(other), _) => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "mmap must be False, True, \"r\" or \"c\", not {other:?}"
            )))
        }
    };
    let mmap = access != Access::Read;
    // A mapped file's padding is checked by the load, beside the build (`build::load_tree`).
    let (file, padding) = open_deferred(py, source, access)?;
    let file = Arc::new(file);
    // Before anything is built, and on the opened file itself (not its path again).
    sign::enforce(py, &file, signers.as_deref())?;
    let verify = build::Verify::from_option(verify);
    if let Some(callback) = before_build {
        // Only the recorded environment: the version check needs nothing else, and a forest's
        // whole metadata would cost a conversion on every load.
        let environment = file.manifest().metadata.get("environment");
        let environment = values::to_py(py, environment.unwrap_or(&serde_json::Value::Null))?;
        callback.call1((environment,))?;
    }
    let mapped = match MappedFile::new(file.clone()) {
        Some(m) if mmap => Some(Bound::new(py, m)?),
        _ => None,
    };
    if mapped.is_some() {
        warn_unmapped(py, &file)?;
    }
    build::load_tree(
        py,
        file,
        padding,
        &trust,
        mapped.as_ref(),
        verify,
        with_validation,
    )
}

/// `mmap=True` maps only arrays stored uncompressed: say so when others are decompressed
/// into memory instead (`skvault.MmapCopyWarning`), rather than copying them silently.
fn warn_unmapped(py: Python<'_>, file: &SkvFile) -> PyResult<()> {
    let arrays = &file.manifest().arrays;
    let (mut count, mut bytes) = (0usize, 0u64);
    for (i, entry) in arrays.iter().enumerate() {
        if entry.raw_length > 0 && file.mapped_bytes(i).is_none() {
            count += 1;
            bytes = bytes.saturating_add(entry.raw_length);
        }
    }
    if count == 0 {
        return Ok(());
    }
    let message = std::ffi::CString::new(format!(
        "mmap: {count} of {} arrays ({:.1} MB) are stored compressed in this file, so they are \
         decompressed into memory, not mapped; save with compress=None to map every array",
        arrays.len(),
        bytes as f64 / 1e6
    ))
    .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    let category = errors::exception_class(py, "MmapCopyWarning")?;
    // 1 is `_api._load`, 2 `_api.load`, 3 the caller of `skvault.load`.
    PyErr::warn(py, &category, &message, 3)
}

/// The qualified names a file needs beyond the default allow-list and `trusted`.
#[pyfunction]
#[pyo3(signature = (source, *, trusted=Vec::new()))]
fn get_untrusted_types(
    py: Python<'_>,
    source: Source,
    trusted: Vec<String>,
) -> PyResult<Vec<String>> {
    let trust = trust_set(py, trusted)?;
    let file = open(py, source, Access::Read)?;
    Ok(trust.untrusted_in(file.manifest()))
}

/// The manifest, plus layout facts, as dicts and lists, without building anything: what
/// `skvault inspect --json` prints.
#[pyfunction]
fn describe<'py>(py: Python<'py>, source: Source) -> PyResult<Bound<'py, PyAny>> {
    let file = open(py, source, Access::Read)?;
    values::to_py(py, &file.describe())
}

/// The same document as JSON text (the export tests and the profiling bench read the text).
#[pyfunction]
fn manifest_json(py: Python<'_>, source: Source) -> PyResult<String> {
    let file = open(py, source, Access::Read)?;
    let doc = file.describe();
    Ok(doc.to_string())
}

/// Checks every array digest; raises `IntegrityError` naming the first bad array.
#[pyfunction]
fn verify(py: Python<'_>, source: Source) -> PyResult<()> {
    let file = open(py, source, Access::Read)?;
    py.detach(|| file.verify()).py_err(py)
}

/// The pip requirements file of `skvault requirements`: the versions the file was saved with.
#[pyfunction]
fn requirements(py: Python<'_>, source: Source) -> PyResult<String> {
    let name = match &source {
        Source::Path(p) => p.display().to_string(),
        Source::Bytes(_) => "<bytes>".to_string(),
    };
    let file = open(py, source, Access::Read)?;
    Ok(skvault_cli::requirements::text(&file, &name))
}

/// The model card of `skvault card`: HTML or Markdown text, from the file alone.
#[pyfunction]
#[pyo3(signature = (source, *, format="html", sections=None, pubkeys=Vec::new(), signature=None, name=None))]
fn card(
    py: Python<'_>,
    source: Source,
    format: &str,
    sections: Option<String>,
    pubkeys: Vec<std::path::PathBuf>,
    signature: Option<std::path::PathBuf>,
    name: Option<String>,
) -> PyResult<String> {
    let format = format
        .parse::<skvault_card::Format>()
        .map_err(|e| errors::new_err(py, "InvalidOptionError", e.to_string()))?;
    let pubkeys = pubkeys
        .iter()
        .map(|p| skvault_sign::read_public_key(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| match e {
            skvault_sign::SignError::Io { source, .. } => pyo3::exceptions::PyOSError::new_err((
                source.raw_os_error().unwrap_or(0),
                source.to_string(),
            )),
            other => errors::new_err(py, "InvalidOptionError", other.to_string()),
        })?;
    let shown = name.unwrap_or_else(|| match &source {
        Source::Path(p) => p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        Source::Bytes(_) => "<bytes>".to_string(),
    });
    let file = open(py, source, Access::Read)?;
    let options = skvault_card::Options {
        format,
        context: skvault_card::Context {
            name: shown,
            signature_path: signature,
            pubkeys,
            ..skvault_card::Context::default()
        },
        sections,
    };
    py.detach(|| skvault_card::card(&file, &options))
        .map_err(|e| errors::new_err(py, "SkvaultError", e.to_string()))
}

/// Runs the `skvault` command line with `argv` (program name first); returns the exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    let code = py.detach(|| skvault_cli::run_cli(argv));
    if skvault_cli::interrupted() {
        // The command's SIGINT handler chains to Python's, which noted the signal too: run
        // it now and drop its KeyboardInterrupt, already handled (exit 130, temporary files
        // removed), instead of a traceback after the command returned.
        let _ = py.check_signals();
    }
    code
}

/// The default allow-list, sorted.
#[pyfunction]
fn default_trusted() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = skvault_format::trust::default_names()
        .iter()
        .copied()
        .collect();
    names.sort_unstable();
    names
}

/// The extension's allocator and the option it sets when loaded (`allocator.rs`): a
/// diagnostic, and what the tests check.
#[pyfunction]
fn allocator_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = PyDict::new(py);
    info.set_item("name", "mimalloc")?;
    info.set_item("arena_eager_commit", allocator::arena_eager_commit())?;
    Ok(info)
}

/// The classes whose state `load` checks in Rust before building anything: those with
/// compiled code of `skvault_infer::guard::GUARDED`, and the standard-library values of
/// `skvault_format::stdlib` (checked in the exact shape of their pickles), sorted.
#[pyfunction]
fn guarded_classes() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = skvault_infer::guard::GUARDED
        .iter()
        .map(|(name, _)| *name)
        .chain(skvault_format::stdlib::CLASSES.iter().copied())
        .collect();
    names.sort_unstable();
    names
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ARCHIVE_LEVEL", skvault_format::codec::ARCHIVE_ZSTD_LEVEL)?;
    // Tests derive their array sizes from the writer's pack threshold instead of copying it.
    m.add("PACK_BELOW", skvault_format::write::PACK_BELOW)?;
    m.add_function(wrap_pyfunction!(dump, m)?)?;
    m.add_function(wrap_pyfunction!(dumps, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(get_untrusted_types, m)?)?;
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    m.add_function(wrap_pyfunction!(manifest_json, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(requirements, m)?)?;
    m.add_function(wrap_pyfunction!(card, m)?)?;
    m.add_function(wrap_pyfunction!(default_trusted, m)?)?;
    m.add_function(wrap_pyfunction!(guarded_classes, m)?)?;
    m.add_function(wrap_pyfunction!(allocator_info, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(legacy::scan_paths, m)?)?;
    m.add_function(wrap_pyfunction!(legacy::convert, m)?)?;
    m.add_function(wrap_pyfunction!(export::export_onnx, m)?)?;
    m.add_function(wrap_pyfunction!(export::export_json, m)?)?;
    m.add_function(wrap_pyfunction!(export::import_json, m)?)?;
    m.add_class::<MappedFile>()?;
    m.add_class::<native::NativeModel>()?;
    m.add_function(wrap_pyfunction!(native::native_load, m)?)?;
    m.add_function(wrap_pyfunction!(sign::keygen, m)?)?;
    m.add_function(wrap_pyfunction!(sign::sign, m)?)?;
    m.add_function(wrap_pyfunction!(sign::verify_signature, m)?)?;
    m.add_class::<registry::NativeRegistry>()?;
    records::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SLICE_ROWS", skvault_infer::SLICE_ROWS)?;
    Ok(())
}
