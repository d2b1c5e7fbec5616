//! `skvault._native.Registry`: the Rust registry seen from Python. Documents and reports
//! cross the boundary as the classes of `records`; `python/skvault/registry.py` is the
//! public class.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyBytes;
use skvault_registry::{MetricFilter, NoProgress, Query, Registry, RegistryError, Selector};

use crate::errors::{from_format, new_err};
use crate::records::{GcReport, RegisterOptions as Options, VersionDoc, VersionInfo};

fn to_py(py: Python<'_>, err: RegistryError) -> PyErr {
    let message = err.to_string();
    match err {
        RegistryError::ModelNotFound { .. }
        | RegistryError::VersionNotFound { .. }
        | RegistryError::AliasNotFound { .. }
        | RegistryError::NoActiveVersion { .. } => new_err(py, "NotFoundError", message),
        RegistryError::InvalidName { .. }
        | RegistryError::InvalidArgument { .. }
        | RegistryError::InvalidUri { .. } => new_err(py, "InvalidNameError", message),
        RegistryError::Conflict { .. } | RegistryError::VersionInUse { .. } => {
            new_err(py, "ConflictError", message)
        }
        RegistryError::DigestMismatch { .. } => new_err(py, "IntegrityError", message),
        RegistryError::Signature { source, .. } => {
            let reason = source.reason();
            new_err(py, "SignatureError", (message, reason))
        }
        RegistryError::Format { source, .. } => from_format(py, source),
        RegistryError::Io { path, source } => from_format(
            py,
            skvault_format::FormatError::Io {
                path: path.into(),
                source,
            },
        ),
        _ => new_err(py, "RegistryError", message),
    }
}

trait PyResultExt<T> {
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> PyResultExt<T> for Result<T, RegistryError> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}

/// A version, an alias, or (neither) the latest: both at once is an error, never one of
/// them silently ignored.
fn selector(version: Option<u64>, alias: Option<String>) -> PyResult<Selector> {
    match (version, alias) {
        (Some(n), Some(a)) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "give a version or an alias, not both (version={n}, alias={a:?})"
        ))),
        (Some(n), None) => Ok(Selector::Version(n)),
        (None, Some(a)) => Ok(Selector::Alias(a)),
        (None, None) => Ok(Selector::Latest),
    }
}

fn grace(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
}

#[pyclass(name = "Registry", module = "skvault._native", frozen)]
pub struct NativeRegistry {
    inner: Registry,
}

#[pymethods]
impl NativeRegistry {
    #[new]
    #[pyo3(signature = (uri, options=Vec::new()))]
    fn new(py: Python<'_>, uri: &str, options: Vec<(String, String)>) -> PyResult<Self> {
        let inner = py
            .detach(|| Registry::open_with_options(uri, &options))
            .py(py)?;
        Ok(NativeRegistry { inner })
    }

    #[getter]
    fn uri(&self) -> &str {
        self.inner.uri()
    }

    /// Registers a .skv file as the next version of `name` (signed with `sign_with`, a
    /// private key file, when given).
    #[pyo3(signature = (path, name, options, sign_with=None, identity=String::new()))]
    fn register(
        &self,
        py: Python<'_>,
        path: PathBuf,
        name: &str,
        options: Bound<'_, Options>,
        sign_with: Option<PathBuf>,
        identity: String,
    ) -> PyResult<VersionInfo> {
        let mut opts = options.get().to_registry();
        if let Some(key) = sign_with {
            let key =
                skvault_sign::read_private_key(&key).map_err(|e| crate::sign::from_sign(py, e))?;
            opts.sign_with = Some(std::sync::Arc::new(key));
            opts.identity = identity;
        }
        let info = py
            .detach(|| self.inner.register(&path, name, &opts, &NoProgress))
            .py(py)?;
        Ok(VersionInfo(info))
    }

    /// (the version's document, the bytes of its .skv file). Under a signature policy (the
    /// caller's, see `sign::policy_keys`, or the registry's own) the version's signature is
    /// verified first.
    #[pyo3(signature = (name, version=None, alias=None, signature_policy="env", signature_keys=None))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        version: Option<u64>,
        alias: Option<String>,
        signature_policy: &str,
        signature_keys: Option<Vec<PathBuf>>,
    ) -> PyResult<(VersionDoc, Bound<'py, PyBytes>)> {
        let sel = selector(version, alias)?;
        let keys = crate::sign::policy_keys(py, signature_policy, signature_keys)?;
        let (doc, bytes) = py
            .detach(|| {
                let (doc, bytes) = self.inner.fetch(name, &sel, &NoProgress)?;
                if let Some(keys) = &keys {
                    self.inner.check_signature(&doc, &bytes, keys)?;
                }
                Ok::<_, RegistryError>((doc, bytes))
            })
            .py(py)?;
        Ok((VersionDoc(doc), PyBytes::new(py, &bytes)))
    }

    /// Requires versions to be signed by one of these public keys (none: no requirement).
    fn set_signature_policy(&self, py: Python<'_>, keys: Vec<PathBuf>) -> PyResult<()> {
        let keys = if keys.is_empty() {
            Vec::new()
        } else {
            skvault_sign::read_trusted_keys(&keys).map_err(|e| crate::sign::from_sign(py, e))?
        };
        py.detach(|| self.inner.set_signature_policy(&keys)).py(py)
    }

    /// The ids of the keys the registry requires versions to be signed by (None: no policy).
    fn signature_policy(&self, py: Python<'_>) -> PyResult<Option<Vec<String>>> {
        let keys = py.detach(|| self.inner.signature_policy()).py(py)?;
        Ok(keys.map(|k| k.iter().map(|k| k.key_id().to_owned()).collect()))
    }

    #[pyo3(signature = (name, dest, version=None, alias=None))]
    fn download(
        &self,
        py: Python<'_>,
        name: &str,
        dest: PathBuf,
        version: Option<u64>,
        alias: Option<String>,
    ) -> PyResult<VersionDoc> {
        let sel = selector(version, alias)?;
        let doc = py
            .detach(|| self.inner.download(name, &sel, &dest, &NoProgress))
            .py(py)?;
        Ok(VersionDoc(doc))
    }

    #[pyo3(signature = (name, version=None, alias=None))]
    fn info(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<u64>,
        alias: Option<String>,
    ) -> PyResult<VersionInfo> {
        let sel = selector(version, alias)?;
        let info = py.detach(|| self.inner.version(name, &sel)).py(py)?;
        Ok(VersionInfo(info))
    }

    fn versions(
        &self,
        py: Python<'_>,
        name: &str,
        include_archived: bool,
    ) -> PyResult<Vec<VersionInfo>> {
        let v = py
            .detach(|| self.inner.versions(name, include_archived))
            .py(py)?;
        Ok(v.into_iter().map(VersionInfo).collect())
    }

    fn models(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.models()).py(py)
    }

    /// `tags` maps keys to a value or None (any value); `metrics` are filters like "acc>=0.9".
    fn search(
        &self,
        py: Python<'_>,
        name: Option<String>,
        tags: BTreeMap<String, Option<String>>,
        metrics: Vec<String>,
        include_archived: bool,
    ) -> PyResult<Vec<VersionInfo>> {
        let metrics = metrics
            .iter()
            .map(|m| MetricFilter::parse(m))
            .collect::<Result<Vec<_>, _>>()
            .py(py)?;
        let query = Query {
            name,
            tags,
            metrics,
            include_archived,
        };
        let found = py.detach(|| self.inner.search(&query)).py(py)?;
        Ok(found.into_iter().map(VersionInfo).collect())
    }

    fn aliases(&self, py: Python<'_>, name: &str) -> PyResult<BTreeMap<String, u64>> {
        py.detach(|| self.inner.aliases(name)).py(py)
    }

    /// With `check`, a compare-and-swap against `expected` (None: the alias must not exist).
    #[pyo3(signature = (name, alias, version, check=false, expected=None))]
    fn set_alias(
        &self,
        py: Python<'_>,
        name: &str,
        alias: &str,
        version: u64,
        check: bool,
        expected: Option<u64>,
    ) -> PyResult<Option<u64>> {
        let expected = check.then_some(expected);
        py.detach(|| self.inner.set_alias(name, alias, version, expected))
            .py(py)
    }

    fn delete_alias(&self, py: Python<'_>, name: &str, alias: &str) -> PyResult<u64> {
        py.detach(|| self.inner.delete_alias(name, alias, None))
            .py(py)
    }

    fn tag(
        &self,
        py: Python<'_>,
        name: &str,
        version: u64,
        set: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> PyResult<BTreeMap<String, String>> {
        py.detach(|| self.inner.tag(name, version, &set, &remove))
            .py(py)
    }

    fn archive(&self, py: Python<'_>, name: &str, version: u64, archived: bool) -> PyResult<()> {
        py.detach(|| self.inner.archive(name, version, archived))
            .py(py)
    }

    fn delete_version(
        &self,
        py: Python<'_>,
        name: &str,
        version: u64,
        grace_seconds: f64,
    ) -> PyResult<GcReport> {
        let report = py
            .detach(|| {
                self.inner
                    .delete_version(name, version, grace(grace_seconds))
            })
            .py(py)?;
        Ok(GcReport(report))
    }

    fn gc(&self, py: Python<'_>, grace_seconds: f64) -> PyResult<GcReport> {
        let report = py.detach(|| self.inner.gc(grace(grace_seconds))).py(py)?;
        Ok(GcReport(report))
    }

    fn check(&self, py: Python<'_>, deep: bool) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.check(deep)).py(py)
    }

    /// (number of blobs, their total size in bytes).
    fn usage(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let u = py.detach(|| self.inner.usage()).py(py)?;
        Ok((u.blobs, u.blob_bytes))
    }
}
