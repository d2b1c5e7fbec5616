//! `skvault inspect`: a readable summary of a file, from its manifest alone.

use std::fmt::Write as _;
use std::path::Path;

use skvault_format::manifest::Placement;
use skvault_format::SkvFile;

use skvault_card::census::census;
pub use skvault_card::census::{array_paths, size};

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

/// The text `skvault inspect` prints: the file's record (`skvault_card::record`, the same
/// facts the card and the registry page show), then what the file holds (objects, arrays,
/// untrusted names).
pub fn summary(file: &SkvFile, name: &str, all: bool) -> String {
    let cx = skvault_card::Context {
        name: name.to_string(),
        ..Default::default()
    };
    let r = skvault_card::record(file, &cx);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{name}: {} ({}), format {}, {}",
        r.class, r.file_size, r.format_version, r.writer
    );
    record(&mut out, &r);
    contents(&mut out, file, all);
    let untrusted = &r.provenance.untrusted;
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

/// Lines of `name = value` under a heading, when there are any.
fn items<'a>(out: &mut String, heading: &str, items: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut items = items.into_iter().peekable();
    if items.peek().is_some() {
        let _ = writeln!(out, "\n{heading}:");
        for (k, v) in items {
            let _ = writeln!(out, "  {k} = {v}");
        }
    }
}

fn as_strs((k, v): &(String, String)) -> (&str, &str) {
    (k, v)
}

fn params_heading(mode: &str) -> &'static str {
    if mode == "non_default" {
        "params (those set away from their defaults)"
    } else {
        "params"
    }
}

/// The record: environment, estimator, input, user fields, metrics, validation.
fn record(out: &mut String, r: &skvault_card::Record) {
    if let Some(t) = &r.created {
        let _ = writeln!(out, "created: {t}");
    }
    if !r.environment.is_empty() {
        let parts: Vec<String> = r
            .environment
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(out, "environment: {}", parts.join(", "));
    }
    items(
        out,
        params_heading(r.params_mode),
        r.params.iter().map(|p| (p.name.as_str(), p.value.as_str())),
    );
    if !r.steps.is_empty() {
        let _ = writeln!(out, "\nsteps:");
        for step in &r.steps {
            let _ = writeln!(out, "  {}: {}", step.name, step.class);
            for member in &step.children {
                let on = if member.columns.is_empty() {
                    String::new()
                } else {
                    format!(", columns {}", member.columns)
                };
                let _ = writeln!(out, "    - {}: {}{on}", member.name, member.class);
            }
            let params = r.step_params.iter().find(|p| p.name == step.name);
            for p in params.map(|p| p.params.as_slice()).unwrap_or_default() {
                let _ = writeln!(out, "    {} = {}", p.name, p.value);
            }
        }
    }
    if let Some(n) = &r.n_features {
        let _ = writeln!(out, "\nfeatures: {n}");
    }
    if !r.classes.is_empty() {
        let _ = writeln!(out, "classes: {}", r.classes.join(", "));
    }
    match (&r.schema_source, &r.schema_error) {
        (Some(source), _) => {
            let _ = writeln!(out, "\ninput ({} columns, {source}):", r.columns.len());
            for column in &r.columns {
                let _ = writeln!(out, "  {}", column.line);
            }
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "\ninput: unreadable input_schema ({e})");
        }
        (None, None) => {}
    }
    items(out, "metrics", r.metrics.iter().map(as_strs));
    items(out, "user metadata", r.user.iter().map(as_strs));
    if let Some(v) = &r.validation_rows {
        let _ = writeln!(
            out,
            "\nvalidation: {} rows, outputs of {}",
            v.n_rows, v.methods
        );
    }
}

/// What the file holds: objects by class, referenced functions, arrays (largest first).
fn contents(out: &mut String, file: &SkvFile, all: bool) {
    let m = file.manifest();
    let census = census(m);
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
}
