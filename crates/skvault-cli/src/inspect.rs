//! `skvault inspect`: a readable summary of a file, from its manifest alone.

use std::fmt::Write as _;
use std::path::Path;

use skvault_format::manifest::Placement;
use skvault_format::SkvFile;

pub use skvault_card::census::{array_paths, size};
use skvault_card::census::{census, root_class};

use crate::CliError;

/// Arrays listed by default, largest first.
const TOP_ARRAYS: usize = 15;

pub fn run(path: &Path, json: bool, all: bool, params: bool) -> Result<(), CliError> {
    let file = SkvFile::open(path)?;
    if params {
        let record = file
            .manifest()
            .metadata
            .get("estimator")
            .and_then(|e| e.get("params"));
        let Some(record) = record else {
            return Err(CliError::NoParams {
                path: path.to_path_buf(),
            });
        };
        let text = serde_json::to_string_pretty(record)?;
        outln!("{text}");
    } else if json {
        let text = serde_json::to_string_pretty(&file.describe())?;
        outln!("{text}");
    } else {
        out!("{}", summary(&file, &path.display().to_string(), all));
    }
    Ok(())
}

pub fn summary(file: &SkvFile, name: &str, all: bool) -> String {
    let m = file.manifest();
    let h = file.header();
    let mut out = String::new();
    let census = census(m);
    let _ = writeln!(
        out,
        "{name}: {} ({}), format {}.{}, {}",
        root_class(&m.root),
        size(file.file_len()),
        h.major,
        h.minor,
        m.writer
    );
    record(&mut out, &m.metadata);
    let _ = writeln!(out, "\nobjects ({} classes):", census.classes.len());
    for (class, count) in &census.classes {
        let _ = writeln!(out, "  {count:>6} x {class}");
    }
    if !census.globals.is_empty() {
        let _ = writeln!(out, "\nreferenced functions and types:");
        for name in census.globals.keys() {
            let _ = writeln!(out, "  {name}");
        }
    }
    let raw: u64 = m.arrays.iter().map(|a| a.raw_length).sum();
    let stored: u64 = m.blobs().map(|(_, b)| b.length).sum();
    let _ = writeln!(
        out,
        "\narrays: {} ({} raw, {} stored)",
        m.arrays.len(),
        size(raw),
        size(stored)
    );
    for (p, pack) in m.packs.iter().enumerate() {
        let _ = writeln!(
            out,
            "  pack {p}: {} arrays, {} {:>10} -> {:>10}",
            pack.members.len(),
            pack.blob.codec.name(),
            size(pack.blob.raw_length),
            size(pack.blob.length)
        );
    }
    let mut order: Vec<usize> = (0..m.arrays.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(m.arrays.get(*i).map_or(0, |a| a.raw_length)));
    let shown = if all {
        order.len()
    } else {
        order.len().min(TOP_ARRAYS)
    };
    for i in order.iter().take(shown) {
        let Some(a) = m.arrays.get(*i) else { continue };
        let dtype = a.dtype.scalar_str().unwrap_or_else(|| "struct".into());
        let shape: Vec<String> = a.shape.iter().map(u64::to_string).collect();
        let path = census.array_paths.get(i).map_or("?", String::as_str);
        let (codec, stored) = match &a.placement {
            Placement::Stored(b) => (b.codec.name().to_string(), size(b.length)),
            Placement::Packed { pack, .. } => (format!("pack {pack}"), "(in pack)".to_string()),
        };
        let _ = writeln!(
            out,
            "  {:<48} {:<7} ({}) {} {:>10} -> {:>10}",
            path,
            dtype,
            shape.join(", "),
            codec,
            size(a.raw_length),
            stored
        );
    }
    if shown < order.len() {
        let _ = writeln!(
            out,
            "  ... and {} more (--all lists them)",
            order.len() - shown
        );
    }
    let untrusted = skvault_format::TrustSet::default().untrusted_in(m);
    if untrusted.is_empty() {
        let _ = writeln!(
            out,
            "\nuntrusted names: none (loads with the default allow-list)"
        );
    } else {
        let _ = writeln!(
            out,
            "\nuntrusted names ({}): review before load(..., trusted=[...])",
            untrusted.len()
        );
        for n in untrusted {
            let _ = writeln!(out, "  {n}");
        }
    }
    out
}

fn compact(v: &serde_json::Value) -> String {
    let text = v.to_string();
    if text.len() > 200 {
        format!("{}...", text.chars().take(197).collect::<String>())
    } else {
        text
    }
}

/// The metadata record: environment, estimator, user fields, metrics, validation.
fn record(out: &mut String, md: &serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    if let Some(Value::String(t)) = md.get("created_at") {
        let _ = writeln!(out, "created: {t}");
    }
    if let Some(Value::Object(env)) = md.get("environment") {
        let parts: Vec<String> = env
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|v| format!("{k} {v}")))
            .collect();
        let _ = writeln!(out, "environment: {}", parts.join(", "));
    }
    if let Some(Value::Object(est)) = md.get("estimator") {
        if let Some(Value::Object(params)) = est.get("params") {
            let _ = writeln!(out, "\nparams:");
            for (k, v) in params {
                let _ = writeln!(out, "  {k} = {}", compact(v));
            }
        }
        if let Some(Value::Array(steps)) = est.get("steps") {
            let _ = writeln!(out, "\nsteps:");
            for step in steps {
                let name = step.get("name").and_then(Value::as_str).unwrap_or("?");
                let class = step.get("class").map(compact).unwrap_or_default();
                let _ = writeln!(out, "  {name}: {}", class.trim_matches('"'));
            }
        }
        if let Some(n) = est.get("n_features_in") {
            let _ = writeln!(out, "\nfeatures: {n}");
        }
        if let Some(names) = est.get("feature_names_in") {
            let _ = writeln!(out, "feature names: {}", compact(names));
        }
        if let Some(classes) = est.get("classes") {
            let _ = writeln!(out, "classes: {}", compact(classes));
        }
    }
    if let Some(schema) = md.get("input_schema") {
        input_schema(out, schema);
    }
    for (key, title) in [("metrics", "metrics"), ("user", "user metadata")] {
        if let Some(Value::Object(items)) = md.get(key) {
            let _ = writeln!(out, "\n{title}:");
            for (k, v) in items {
                let _ = writeln!(out, "  {k} = {}", compact(v));
            }
        }
    }
    if let Some(Value::Object(v)) = md.get("validation") {
        let rows = v.get("n_rows").map(compact).unwrap_or_default();
        let methods = v.get("methods").map(compact).unwrap_or_default();
        let _ = writeln!(out, "\nvalidation: {rows} rows, outputs of {methods}");
    }
}

/// The columns the model was fitted on (`input_schema`, FORMAT.md section 8).
fn input_schema(out: &mut String, value: &serde_json::Value) {
    match serde_json::from_value::<skvault_frame::InputSchema>(value.clone()) {
        Ok(schema) => {
            let source = match schema.source {
                skvault_frame::SchemaSource::Validation => "dtypes of the validation rows",
                skvault_frame::SchemaSource::Model => "kinds derived from the model",
                skvault_frame::SchemaSource::User => "given at save time",
            };
            let _ = writeln!(out, "\ninput ({} columns, {source}):", schema.columns.len());
            for column in &schema.columns {
                let _ = writeln!(out, "  {column}");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "\ninput: unreadable input_schema ({e})");
        }
    }
}
