//! Where a served model comes from (a file or a registry version), loading it with every
//! check before it can take traffic, and the fingerprint hot reload compares.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use skvault_format::SkvFile;
use skvault_frame::InputSchema;
use skvault_infer::{Labels, Model};
use skvault_registry::{NoProgress, Registry, Selector};
use skvault_sign::PublicKey;

use crate::error::ServeError;

/// One model of the command line.
#[derive(Debug, Clone)]
pub enum Source {
    /// `PATH` (served under the file's stem) or `NAME=PATH`.
    File { path: PathBuf },
    /// `NAME`, `NAME@ALIAS` or `NAME@VERSION` in the registry (`SERVED=NAME@...` renames).
    Registry { model: String, selector: Selector },
}

/// A model argument: the name it is served under and where it comes from.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub source: Source,
    /// The public keys one of which must have signed the model (empty: no signature
    /// required). Checked at every load, hot reloads included, before the model is built.
    pub trusted: Arc<[PublicKey]>,
}

impl Spec {
    /// `PATH` or `NAME=PATH`.
    pub fn file(arg: &str) -> Result<Spec, ServeError> {
        let (name, path) = match arg.split_once('=') {
            Some((name, path)) => (name.to_string(), PathBuf::from(path)),
            None => {
                let path = PathBuf::from(arg);
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .map(str::to_string)
                    .ok_or_else(|| bad(arg, "no file name to serve the model under"))?;
                (stem, path)
            }
        };
        check_served_name(arg, &name)?;
        Ok(Spec {
            name,
            source: Source::File { path },
            trusted: Arc::new([]),
        })
    }

    /// `NAME`, `NAME@ALIAS`, `NAME@VERSION`, each optionally `SERVED=...`.
    pub fn registry(arg: &str) -> Result<Spec, ServeError> {
        let (served, rest) = match arg.split_once('=') {
            Some((served, rest)) => (Some(served), rest),
            None => (None, arg),
        };
        let (model, selector) = match rest.split_once('@') {
            None => (rest, Selector::Latest),
            Some((model, sel)) if !sel.is_empty() && sel.bytes().all(|b| b.is_ascii_digit()) => {
                let n = sel
                    .parse()
                    .map_err(|_| bad(arg, "the version number is too large"))?;
                (model, Selector::Version(n))
            }
            Some((model, alias)) => {
                skvault_registry::names::check_alias(alias)
                    .map_err(|e| bad(arg, &e.to_string()))?;
                (model, Selector::Alias(alias.to_string()))
            }
        };
        skvault_registry::names::check_model_name(model).map_err(|e| bad(arg, &e.to_string()))?;
        let name = served.unwrap_or(model).to_string();
        check_served_name(arg, &name)?;
        Ok(Spec {
            name,
            source: Source::Registry {
                model: model.to_string(),
                selector,
            },
            trusted: Arc::new([]),
        })
    }

    /// What the model list and the logs show as its origin.
    pub fn describe(&self, registry: Option<&Registry>) -> String {
        match &self.source {
            Source::File { path } => path.display().to_string(),
            Source::Registry { model, selector } => {
                let uri = registry.map(Registry::uri).unwrap_or("registry");
                format!("{uri} {model}{}", selector_text(selector))
            }
        }
    }
}

fn selector_text(selector: &Selector) -> String {
    match selector {
        Selector::Latest => String::new(),
        Selector::Version(n) => format!("@{n}"),
        Selector::Alias(a) => format!("@{a}"),
    }
}

fn bad(arg: &str, reason: &str) -> ServeError {
    ServeError::BadSpec {
        arg: arg.to_string(),
        reason: reason.to_string(),
    }
}

/// Served names appear in URLs (`/v1/models/{name}/predict`) and metric labels.
fn check_served_name(arg: &str, name: &str) -> Result<(), ServeError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(bad(
            arg,
            &format!(
                "{name:?} cannot be served under: use letters, digits, '-', '_' and '.' \
                 (NAME=... chooses the name)"
            ),
        ))
    }
}

/// What identifies the loaded bytes: hot reload loads again when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fingerprint {
    /// A file by identity and content stamp: an atomic replace (rename) changes the inode.
    File {
        dev: u64,
        ino: u64,
        len: u64,
        mtime_ns: i128,
    },
    /// The registry version the selector resolved to.
    Version(u64),
}

/// A file's fingerprint now.
pub fn file_fingerprint(path: &Path) -> std::io::Result<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(Fingerprint::File {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

/// A model ready to take traffic: built, its digests and validation rows checked.
#[derive(Debug)]
pub struct Loaded {
    pub model: Model,
    pub schema: Option<InputSchema>,
    /// The model's entry in `GET /v1/models`.
    pub info: Value,
    /// `blake3:<hex>` of the manifest, which covers every array digest.
    pub digest: String,
    pub version: Option<u64>,
    pub fingerprint: Fingerprint,
}

/// Loads `spec` now. The whole model is built and its validation rows (when the file has
/// them) are predicted again and compared before this returns: a model that fails any
/// check is an error, never a model that answers.
pub fn load(spec: &Spec, registry: Option<&Registry>) -> Result<Arc<Loaded>, ServeError> {
    let failed = |message: String| ServeError::Model {
        name: spec.name.clone(),
        message,
    };
    let (file, fingerprint, doc) = match &spec.source {
        Source::File { path } => {
            let before =
                file_fingerprint(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
            // Read, not mapped: the native model holds its own re-laid-out copy of every
            // array once built, so a mapping would save nothing, and a file truncated in
            // place while mapped would kill the server (SIGBUS) instead of failing a load.
            let file = SkvFile::open(path).map_err(|e| failed(e.to_string()))?;
            if !spec.trusted.is_empty() {
                skvault_sign::check_open(&file, None, &spec.trusted)
                    .map_err(|e| failed(format!("signature refused: {e}")))?;
            }
            (file, before, None)
        }
        Source::Registry { model, selector } => {
            let registry =
                registry.ok_or_else(|| failed("a registry model needs --registry URI".into()))?;
            let (doc, bytes) = registry
                .fetch(model, selector, &NoProgress)
                .map_err(|e| failed(e.to_string()))?;
            if !spec.trusted.is_empty() {
                registry
                    .check_signature(&doc, &bytes, &spec.trusted)
                    .map_err(|e| failed(format!("signature refused: {e}")))?;
            }
            let file = SkvFile::from_bytes(bytes).map_err(|e| failed(e.to_string()))?;
            (file, Fingerprint::Version(doc.version), Some(doc))
        }
    };
    let model = Model::from_file(&file).map_err(|e| failed(e.to_string()))?;
    skvault_infer::validation::check(&model, &file)
        .map_err(|e| failed(format!("the file's validation rows do not pass: {e}")))?;
    // Requests are mostly a row or a few: built here, not by the first of them.
    model.prepare_few_rows();
    let metadata = &file.manifest().metadata;
    let schema_json = metadata.get("input_schema").cloned();
    let schema = match &schema_json {
        Some(v) => Some(
            serde_json::from_value::<InputSchema>(v.clone())
                .map_err(|e| failed(format!("metadata.input_schema: {e}")))?,
        ),
        None => None,
    };
    let digest = format!(
        "blake3:{}",
        skvault_format::manifest::hex(&file.header().manifest_digest)
    );
    let metrics = doc
        .as_ref()
        .map(|d| json!(d.metrics))
        .or_else(|| metadata.get("metrics").cloned())
        .unwrap_or_else(|| json!({}));
    let mut info = Map::new();
    info.insert("name".into(), json!(spec.name));
    info.insert("source".into(), json!(spec.describe(registry)));
    info.insert("version".into(), json!(doc.as_ref().map(|d| d.version)));
    info.insert(
        "alias".into(),
        json!(match &spec.source {
            Source::Registry {
                selector: Selector::Alias(a),
                ..
            } => Some(a.as_str()),
            _ => None,
        }),
    );
    info.insert("digest".into(), json!(digest));
    info.insert("class".into(), json!(model.class()));
    info.insert(
        "methods".into(),
        json!(model.methods().iter().map(|m| m.name()).collect::<Vec<_>>()),
    );
    info.insert("n_features".into(), json!(model.n_features()));
    info.insert("feature_names".into(), json!(model.feature_names()));
    info.insert("input_schema".into(), schema_json.unwrap_or(Value::Null));
    info.insert("classes".into(), classes_json(&model));
    info.insert("metrics".into(), metrics);
    // What a person reads about the model, as `skvault inspect`, the card and the registry
    // page show it: one record of the file, from its manifest (skvault-card).
    let cx = skvault_card::Context {
        name: spec.name.clone(),
        ..skvault_card::Context::default()
    };
    let record = serde_json::to_value(skvault_card::record(&file, &cx))
        .map_err(|e| failed(format!("the file's record: {e}")))?;
    info.insert("record".into(), record);
    Ok(Arc::new(Loaded {
        version: doc.as_ref().map(|d| d.version),
        model,
        schema,
        info: Value::Object(info),
        digest,
        fingerprint,
    }))
}

fn classes_json(model: &Model) -> Value {
    match model.classes().map(|c| &c.labels) {
        None => Value::Null,
        Some(Labels::Int(v)) => json!(v),
        Some(Labels::Float(v)) => json!(v),
        Some(Labels::Bool(v)) => json!(v),
        Some(Labels::Str(v)) => json!(v),
    }
}

/// The source's fingerprint now, without loading it (a stat, or resolving the selector).
pub fn current_fingerprint(
    spec: &Spec,
    registry: Option<&Registry>,
) -> Result<Fingerprint, String> {
    match &spec.source {
        Source::File { path } => {
            file_fingerprint(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Source::Registry { model, selector } => {
            let registry = registry.ok_or("no registry")?;
            registry
                .resolve(model, selector)
                .map(Fingerprint::Version)
                .map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_specs_take_the_stem_or_the_given_name() {
        let s = Spec::file("models/fraud.skv").unwrap();
        assert_eq!(s.name, "fraud");
        assert!(
            matches!(s.source, Source::File { ref path } if path == Path::new("models/fraud.skv"))
        );
        let s = Spec::file("churn-v2=/tmp/x.skv").unwrap();
        assert_eq!(s.name, "churn-v2");
    }

    #[test]
    fn registry_specs_parse_selectors() {
        let s = Spec::registry("fraud").unwrap();
        assert!(matches!(
            s.source,
            Source::Registry {
                selector: Selector::Latest,
                ..
            }
        ));
        let s = Spec::registry("fraud@champion").unwrap();
        assert_eq!(s.name, "fraud");
        assert!(
            matches!(s.source, Source::Registry { selector: Selector::Alias(ref a), .. } if a == "champion")
        );
        let s = Spec::registry("old=fraud@3").unwrap();
        assert_eq!(s.name, "old");
        assert!(matches!(
            s.source,
            Source::Registry { selector: Selector::Version(3), ref model } if model == "fraud"
        ));
    }

    #[test]
    fn bad_specs_are_refused_naming_the_argument() {
        for arg in [
            "fraud@",
            "fraud@99999999999999999999999",
            "bad/name@x",
            "a b=fraud",
            "=fraud",
        ] {
            let e = Spec::registry(arg).unwrap_err().to_string();
            assert!(e.contains(arg), "{arg}: {e}");
        }
        assert!(Spec::file(".hidden=/tmp/x.skv").is_err());
        let e = Spec::file("/").unwrap_err().to_string();
        assert!(e.contains("no file name"), "{e}");
    }

    #[test]
    fn a_replaced_file_changes_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.skv");
        std::fs::write(&path, b"one").unwrap();
        let before = file_fingerprint(&path).unwrap();
        assert_eq!(before, file_fingerprint(&path).unwrap());
        let staged = dir.path().join("m.new");
        std::fs::write(&staged, b"one").unwrap();
        std::fs::rename(&staged, &path).unwrap();
        assert_ne!(before, file_fingerprint(&path).unwrap());
    }
}
