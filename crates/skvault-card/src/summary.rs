//! One summary of a record, which the card's HTML and Markdown templates and the registry
//! page render: every value here is read from the file (its manifest, arrays, signature
//! file), none from scikit-learn.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use skvault_format::manifest::hex;
use skvault_format::SkvFile;

use crate::census::{census, root_class, size};
use crate::charts::{self, Step};
use crate::state::Ctx;
use crate::structure::{self, Structure};

/// The parameters that list a ColumnTransformer's or FeatureUnion's members (the
/// [`Step::children`] of its step).
const MEMBERS: [&str; 2] = ["transformers", "transformer_list"];

/// Arrays listed in the provenance section, largest first.
const TOP_ARRAYS: usize = 12;

/// What a file says of its model, read from the manifest alone: no array is read, no model
/// is built and no file beside it is opened. `skvault inspect` prints it; [`Summary`] adds
/// what takes more than the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub name: String,
    pub class: String,
    pub class_short: String,
    pub writer: String,
    pub format_version: String,
    pub file_size: String,
    pub created: Option<String>,
    pub params: Vec<Param>,
    /// `"non_default"`: the file records which parameters differ from the defaults and only
    /// those are listed; `"all"`: it does not, every recorded parameter is listed.
    pub params_mode: &'static str,
    pub steps: Vec<Step>,
    /// Each pipeline step's parameters, listed as `params` are.
    pub step_params: Vec<StepParams>,
    pub n_features: Option<String>,
    /// How the input schema was learnt, when the file has one.
    pub schema_source: Option<String>,
    pub columns: Vec<Column>,
    /// Why the file's `input_schema` could not be read, when it could not.
    pub schema_error: Option<String>,
    pub classes: Vec<String>,
    pub metrics: Vec<(String, String)>,
    pub environment: Vec<(String, String)>,
    pub provenance: Provenance,
    /// The validation rows the writer recorded (their re-check is [`Summary::validation`]).
    pub validation_rows: Option<ValidationRows>,
    pub user: Vec<(String, String)>,
    /// `metadata.user.card`: title to Markdown text.
    pub card_sections: Vec<(String, String)>,
}

/// The record and what takes more than the manifest to tell: pictures from the arrays, the
/// signature, the validation rows re-checked by native inference, the requirements. The
/// card and the registry page render it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub record: Record,
    pub requirements: String,
    pub signature: Signature,
    pub validation: Option<Validation>,
    pub charts: Vec<Chart>,
    /// Why a picture the model would have is missing (e.g. unreadable tree arrays).
    pub chart_notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Param {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepParams {
    pub name: String,
    pub class: String,
    pub params: Vec<Param>,
    pub params_mode: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub dtype: String,
    pub kind: String,
    pub categories: String,
    /// The column in one line, as `skvault inspect` prints it (`city: str (text)`).
    pub line: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub converted_from: Option<String>,
    pub lineage: Option<String>,
    pub manifest_blake3: String,
    pub n_arrays: usize,
    pub raw_size: String,
    pub stored_size: String,
    pub arrays: Vec<ArrayRow>,
    pub untrusted: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArrayRow {
    pub path: String,
    pub dtype: String,
    pub shape: String,
    pub size: String,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Signature {
    /// `unsigned`, `unverified`, `verified`, `refused` or `unknown`.
    pub status: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ValidationRows {
    pub n_rows: String,
    pub methods: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    #[serde(flatten)]
    pub rows: ValidationRows,
    /// `pass`, `fail` or `unchecked`.
    pub native: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    pub caption: String,
    pub svg: String,
    /// The same numbers as text (the Markdown card's table): label, value.
    pub table: Vec<(String, String)>,
}

/// The rows of a bar chart as text, largest first, as many as the chart shows.
fn bar_rows(items: &[(String, f64)]) -> Vec<(String, String)> {
    let mut sorted: Vec<&(String, f64)> = items.iter().collect();
    sorted.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    sorted
        .into_iter()
        .take(charts::MAX_BARS)
        .map(|(l, v)| (l.clone(), charts::num(*v)))
        .collect()
}

/// Counts of each value, as text.
fn count_rows(values: &[u64]) -> Vec<(String, String)> {
    let mut counts = std::collections::BTreeMap::new();
    for v in values {
        *counts.entry(*v).or_insert(0u64) += 1;
    }
    counts
        .into_iter()
        .map(|(v, c)| (v.to_string(), c.to_string()))
        .collect()
}

/// What the summary may look at beyond the file itself.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The name the card shows (a file name, a registry name and version).
    pub name: String,
    /// The signature bundle beside the file (`<file>.sig` by default), if any.
    pub signature_path: Option<PathBuf>,
    /// Public keys to verify the signature with; none: the status says it is unverified.
    pub pubkeys: Vec<skvault_sign::PublicKey>,
    /// The registry's lineage record of this version, shown with the provenance.
    pub lineage: Option<Value>,
    /// The card is of a registry version (fetched bytes, no file to look beside)...
    pub registry_version: bool,
    /// ...and the signature its version document records, if any.
    pub registry_signature: Option<String>,
}

/// JSON text of a value, cut to `max` characters: parameters can hold whole estimators.
pub fn compact(v: &Value, max: usize) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > max {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    } else {
        text
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn obj<'a>(md: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    md.get(key).and_then(Value::as_object)
}

/// The record of `file`, from its manifest alone.
pub fn record(file: &SkvFile, cx: &Context) -> Record {
    let m = file.manifest();
    let md = &m.metadata;
    let est = obj(md, "estimator");
    let class = est
        .and_then(|e| e.get("class"))
        .and_then(Value::as_str)
        .map_or_else(|| root_class(&m.root), str::to_string);
    let class_short = class.rsplit('.').next().unwrap_or(&class).to_string();
    let (mut params, params_mode) = params(est);
    let step_params = step_params(est);
    if !step_params.is_empty() {
        // The steps are listed with their own parameters below.
        params.retain(|p| p.name != "steps");
    }
    let (schema_source, columns, schema_error) = schema(md.get("input_schema"));
    Record {
        name: cx.name.clone(),
        class_short,
        class,
        writer: m.writer.clone(),
        format_version: format!("{}.{}", file.header().major, file.header().minor),
        file_size: size(file.file_len()),
        created: md
            .get("created_at")
            .and_then(Value::as_str)
            .map(str::to_string),
        params,
        params_mode,
        steps: steps(est),
        step_params,
        n_features: est
            .and_then(|e| e.get("n_features_in"))
            .map(|v| compact(v, 40)),
        schema_source,
        columns,
        schema_error,
        classes: est
            .and_then(|e| e.get("classes"))
            .and_then(Value::as_array)
            .map(|cs| cs.iter().map(|c| compact(c, 80)).collect())
            .unwrap_or_default(),
        metrics: pairs(obj(md, "metrics"), 80),
        environment: pairs(obj(md, "environment"), 80),
        provenance: provenance(file, cx),
        validation_rows: validation_rows(file),
        user: obj(md, "user")
            .map(|u| {
                u.iter()
                    .filter(|(k, _)| k.as_str() != "card")
                    .map(|(k, v)| (k.clone(), compact(v, 300)))
                    .collect()
            })
            .unwrap_or_default(),
        card_sections: card_sections(md),
    }
}

/// The record of `file` and what its arrays, its signature and native inference tell.
pub fn summarize(file: &SkvFile, cx: &Context) -> Summary {
    let record = record(file, cx);
    let est = obj(&file.manifest().metadata, "estimator");
    let ctx = Ctx::new(file);
    let structure = structure::of_model(&ctx, &file.manifest().root);
    let (charts, chart_notes) = charts(&record.steps, structure.as_ref(), est, &record.columns);
    Summary {
        requirements: crate::requirements::text(file, &cx.name),
        signature: signature(file, cx),
        validation: record
            .validation_rows
            .clone()
            .map(|rows| validation(file, rows)),
        charts,
        chart_notes,
        record,
    }
}

/// A record's map (metrics, environment) as text pairs, each value cut to `max` characters;
/// `null` (e.g. a package whose version could not be read) is "not recorded".
fn pairs(map: Option<&Map<String, Value>>, max: usize) -> Vec<(String, String)> {
    map.map(|items| {
        items
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::Null => "not recorded".to_string(),
                    v => compact(v, max),
                };
                (k.clone(), text)
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The parameters to list: those the writer marked as differing from the class's defaults
/// (`estimator.non_default`, written since skvault 0.1 by `dump`), else every recorded one.
/// A file cannot tell defaults otherwise (they are the class's, not the file's), so the card
/// says which of the two lists it shows rather than guessing.
fn params(est: Option<&Map<String, Value>>) -> (Vec<Param>, &'static str) {
    let Some(params) = est.and_then(|e| e.get("params")).and_then(Value::as_object) else {
        return (Vec::new(), "all");
    };
    let marked: Option<Vec<&str>> = est
        .and_then(|e| e.get("non_default"))
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect());
    let keep = |k: &str| marked.as_ref().is_none_or(|names| names.contains(&k));
    let list = params
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| Param {
            name: k.clone(),
            value: compact(v, 200),
        })
        .collect();
    (
        list,
        if marked.is_some() {
            "non_default"
        } else {
            "all"
        },
    )
}

fn step_params(est: Option<&Map<String, Value>>) -> Vec<StepParams> {
    let Some(steps) = est.and_then(|e| e.get("steps")).and_then(Value::as_array) else {
        return Vec::new();
    };
    steps
        .iter()
        .filter_map(|s| {
            let record = s.as_object()?;
            let (mut params, params_mode) = params(Some(record));
            // A ColumnTransformer's or FeatureUnion's members are listed as its children.
            params.retain(|p| !MEMBERS.contains(&p.name.as_str()));
            Some(StepParams {
                name: s.get("name").map(|n| compact(n, 60)).unwrap_or_default(),
                class: step_class(s),
                params,
                params_mode,
            })
        })
        .collect()
}

/// Pipeline steps from the record (`estimator.steps`), with the transformers of a
/// ColumnTransformer or FeatureUnion step (from its `transformers` / `transformer_list`).
fn steps(est: Option<&Map<String, Value>>) -> Vec<Step> {
    let Some(steps) = est.and_then(|e| e.get("steps")).and_then(Value::as_array) else {
        return Vec::new();
    };
    steps
        .iter()
        .map(|s| {
            let class = step_class(s);
            let params = s.get("params");
            let members = params
                .and_then(|p| MEMBERS.iter().find_map(|m| p.get(*m)))
                .and_then(Value::as_array);
            let children = members
                .map(|ms| {
                    ms.iter()
                        .filter_map(Value::as_array)
                        .map(|t| Step {
                            name: t.first().map(|n| compact(n, 60)).unwrap_or_default(),
                            class: t.get(1).map(step_class).unwrap_or_default(),
                            columns: t.get(2).map(|c| compact(c, 120)).unwrap_or_default(),
                            children: Vec::new(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Step {
                name: s.get("name").map(|n| compact(n, 60)).unwrap_or_default(),
                class,
                columns: String::new(),
                children,
            }
        })
        .collect()
}

/// A step's class as the record holds it: `{"class": ...}`, or `"passthrough"`/`"drop"`.
fn step_class(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("class") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => step_class(other),
            None => o.get("repr").map(|r| compact(r, 60)).unwrap_or_default(),
        },
        other => compact(other, 60),
    }
}

/// Categories listed per column; the rest are counted.
const SHOWN_CATEGORIES: usize = 50;

/// The input schema (FORMAT.md section 8), read as native inference reads it: its source,
/// its columns, or why it could not be read.
fn schema(value: Option<&Value>) -> (Option<String>, Vec<Column>, Option<String>) {
    use skvault_frame::{CategoryValue, InputSchema, SchemaSource};
    let Some(value) = value else {
        return (None, Vec::new(), None);
    };
    let schema = match InputSchema::deserialize(value) {
        Ok(schema) => schema,
        Err(e) => return (None, Vec::new(), Some(e.to_string())),
    };
    let source = match schema.source {
        SchemaSource::Validation => "dtypes of the validation rows",
        SchemaSource::Model => "kinds derived from the fitted model",
        SchemaSource::User => "given at save time",
    };
    let text = |v: &Value| compact(v, 200);
    let columns = schema
        .columns
        .iter()
        .map(|c| {
            let categories = c.categories.as_ref().map(|cats| {
                let shown: Vec<String> = cats
                    .iter()
                    .take(SHOWN_CATEGORIES)
                    .map(|v| match v {
                        CategoryValue::Str(s) => compact(&Value::String(s.clone()), 60),
                        CategoryValue::Num(n) => n.to_string(),
                    })
                    .collect();
                let more = cats.len().saturating_sub(SHOWN_CATEGORIES);
                format!(
                    "{}{}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    },
                    if c.ordered == Some(true) {
                        " (ordered)"
                    } else {
                        ""
                    }
                )
            });
            Column {
                name: text(&Value::String(c.name.clone())),
                dtype: c.dtype.clone().unwrap_or_default(),
                kind: serde_json::to_value(c.kind)
                    .ok()
                    .as_ref()
                    .map(text)
                    .unwrap_or_default(),
                categories: categories.unwrap_or_default(),
                line: c.to_string(),
            }
        })
        .collect();
    (Some(source.to_string()), columns, None)
}

/// Feature labels for the final estimator's inputs: the recorded names when it reads the
/// model's own input (no pipeline, or names recorded for it), else `x0`, `x1`, ...
fn feature_labels(
    n: usize,
    structure: &Structure,
    est: Option<&Map<String, Value>>,
    columns: &[Column],
) -> Vec<String> {
    let recorded: Option<Vec<String>> = if structure.step.is_none() {
        est.and_then(|e| e.get("feature_names_in"))
            .and_then(Value::as_array)
            .map(|ns| ns.iter().map(|v| compact(v, 80)).collect())
            .or_else(|| {
                (!columns.is_empty()).then(|| columns.iter().map(|c| c.name.clone()).collect())
            })
    } else {
        None
    };
    match recorded {
        Some(names) if names.len() == n => names,
        _ => (0..n).map(|i| format!("x{i}")).collect(),
    }
}

fn charts(
    steps: &[Step],
    structure: Option<&Structure>,
    est: Option<&Map<String, Value>>,
    columns: &[Column],
) -> (Vec<Chart>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    if !steps.is_empty() {
        out.push(Chart {
            id: "pipeline",
            title: "Pipeline".into(),
            caption: format!("{} steps, applied from top to bottom.", steps.len()),
            svg: charts::pipeline("Pipeline steps", steps),
            table: Vec::new(),
        });
    }
    let Some(s) = structure else {
        return (out, notes);
    };
    let of = match &s.step {
        Some(step) => format!(
            " of the final step {step:?} ({}), over the features it receives",
            s.class.rsplit('.').next().unwrap_or(&s.class)
        ),
        None => String::new(),
    };
    if let Some(imp) = &s.importances {
        let labels = feature_labels(imp.len(), s, est, columns);
        let items: Vec<(String, f64)> = labels.into_iter().zip(imp.iter().copied()).collect();
        out.push(Chart {
            id: "importances",
            title: "Feature importances".into(),
            caption: format!(
                "Mean decrease in impurity{of}, computed from the tree arrays as scikit-learn's feature_importances_ (sums to 1; {} features, the top {} shown).",
                items.len(),
                items.len().min(charts::MAX_BARS)
            ),
            svg: charts::bars("Feature importances", &items),
            table: bar_rows(&items),
        });
    }
    if s.tree_depths.len() > 1 {
        out.push(Chart {
            id: "depths",
            title: "Tree depths".into(),
            caption: format!("Depth of each of the {} trees{of}.", s.tree_depths.len()),
            svg: charts::histogram("Tree depths", &s.tree_depths, "depth"),
            table: count_rows(&s.tree_depths),
        });
        out.push(Chart {
            id: "leaves",
            title: "Leaves per tree".into(),
            caption: format!(
                "Leaf count of each of the {} trees{of}.",
                s.tree_leaves.len()
            ),
            svg: charts::histogram("Leaves per tree", &s.tree_leaves, "leaves"),
            table: count_rows(&s.tree_leaves),
        });
    } else if let (Some(d), Some(l)) = (s.tree_depths.first(), s.tree_leaves.first()) {
        notes.push(format!("One tree{of}: depth {d}, {l} leaves."));
    }
    if let Some((mags, k)) = &s.coef_magnitudes {
        let labels = feature_labels(mags.len(), s, est, columns);
        let items: Vec<(String, f64)> = labels.into_iter().zip(mags.iter().copied()).collect();
        let over = if *k > 1 {
            format!(", mean over the {k} rows of coef_ (one per class or output)")
        } else {
            String::new()
        };
        out.push(Chart {
            id: "coefficients",
            title: "Coefficient magnitudes".into(),
            caption: format!(
                "|coef_| per feature{of}{over}. Magnitudes compare features only when the inputs share a scale (e.g. after a StandardScaler)."
            ),
            svg: charts::bars("Coefficient magnitudes", &items),
            table: bar_rows(&items),
        });
    }
    let tree_like = ["Tree", "Forest", "Boosting", "Trees"];
    if s.importances.is_none()
        && s.tree_depths.is_empty()
        && tree_like.iter().any(|t| s.class.contains(t))
    {
        notes.push(format!(
            "No tree pictures for {}: its tree arrays are not in a form the card reads.",
            s.class
        ));
    }
    (out, notes)
}

fn provenance(file: &SkvFile, cx: &Context) -> Provenance {
    let m = file.manifest();
    let paths = census(m).array_paths;
    let mut order: Vec<usize> = (0..m.arrays.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(m.arrays.get(*i).map_or(0, |a| a.raw_length)));
    let arrays = order
        .iter()
        .take(TOP_ARRAYS)
        .filter_map(|i| {
            let a = m.arrays.get(*i)?;
            let shape: Vec<String> = a.shape.iter().map(u64::to_string).collect();
            Some(ArrayRow {
                path: paths
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("array {i}")),
                dtype: a.dtype.scalar_str().unwrap_or_else(|| "struct".into()),
                shape: format!("({})", shape.join(", ")),
                size: size(a.raw_length),
                blake3: hex(&a.digest),
            })
        })
        .collect();
    Provenance {
        converted_from: m.metadata.get("converted_from").map(pretty),
        lineage: cx
            .lineage
            .as_ref()
            .or_else(|| m.metadata.get("lineage"))
            .map(pretty),
        manifest_blake3: hex(&file.header().manifest_digest),
        n_arrays: m.arrays.len(),
        raw_size: size(m.arrays.iter().map(|a| a.raw_length).sum()),
        stored_size: size(m.blobs().map(|(_, b)| b.length).sum()),
        arrays,
        untrusted: skvault_format::TrustSet::default().untrusted_in(m),
    }
}

fn signature(file: &SkvFile, cx: &Context) -> Signature {
    let status = |status, text: String| Signature { status, text };
    let Some(path) = file.path() else {
        // A registry version: its signature lives in the version document.
        return match &cx.registry_signature {
            Some(bundle) if !cx.pubkeys.is_empty() => {
                let place = "recorded by the registry";
                match skvault_sign::verify_skv(file, bundle.as_bytes(), &cx.pubkeys) {
                    Ok(v) => status("verified", verified_text(&v, place)),
                    Err(e) => status("refused", format!("signature refused ({place}): {e}")),
                }
            }
            Some(_) => status(
                "unverified",
                "signed: the registry records a signature for this version; not verified: no trusted key given".into(),
            ),
            None if cx.registry_version => status(
                "unsigned",
                "the registry records no signature for this version".into(),
            ),
            None => status(
                "unknown",
                "the card was made from bytes, not from a file whose signature it could look for".into(),
            ),
        };
    };
    // Where skvault looks on load: the given file, else embedded, else FILE.sig beside it.
    let (bundle, source) =
        match skvault_sign::policy::find_signature(path, cx.signature_path.as_deref()) {
            Ok(Some(found)) => found,
            Ok(None) => {
                return status(
                    "unsigned",
                    "no signature embedded in the file or beside it".into(),
                )
            }
            Err(e) => return status("refused", format!("signature unreadable: {e}")),
        };
    let place = match &source {
        skvault_sign::policy::SignatureSource::Embedded => "embedded in the file".to_string(),
        skvault_sign::policy::SignatureSource::Detached(p) => format!("in {}", p.display()),
    };
    if cx.pubkeys.is_empty() {
        return status(
            "unverified",
            format!("signed ({place}), not verified: no key given (pass --pubkey to verify)"),
        );
    }
    match skvault_sign::verify(path, &bundle, &cx.pubkeys) {
        Ok(v) => status("verified", verified_text(&v, &place)),
        Err(e) => status("refused", format!("signature refused ({place}): {e}")),
    }
}

fn verified_text(v: &skvault_sign::Verified, place: &str) -> String {
    let by = match &v.claim {
        Some(c) if !c.identity.is_empty() => {
            format!(", identity {}, signed {}", c.identity, c.signed_at)
        }
        Some(c) => format!(", signed {}", c.signed_at),
        None => String::new(),
    };
    format!("signature verified ({place}): key {}{by}", v.key_id)
}

/// The validation rows the writer recorded: how many, and which methods' outputs.
fn validation_rows(file: &SkvFile) -> Option<ValidationRows> {
    let md = obj(&file.manifest().metadata, "validation");
    file.manifest().validation.as_ref()?;
    let n_rows = md
        .and_then(|v| v.get("n_rows"))
        .map(|v| compact(v, 40))
        .unwrap_or_default();
    let methods = md
        .and_then(|v| v.get("methods"))
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| compact(m, 40))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    Some(ValidationRows { n_rows, methods })
}

/// The validation rows re-checked by native inference.
fn validation(file: &SkvFile, rows: ValidationRows) -> Validation {
    let (native, text) = match skvault_infer::Model::from_file(file) {
        Err(e) => (
            "unchecked",
            format!("not re-checked: native inference does not run this model ({e})"),
        ),
        Ok(model) => match skvault_infer::validation::check(&model, file) {
            Ok(Some(c)) if c.methods.is_empty() => (
                "unchecked",
                format!(
                    "not re-checked natively: {}",
                    c.skipped
                        .iter()
                        .map(|(m, why)| format!("{m}: {why}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            Ok(Some(c)) => (
                "pass",
                format!(
                    "native inference reproduces {} on all {} rows",
                    c.methods.join(", "),
                    c.n_rows
                ),
            ),
            Ok(None) => ("unchecked", "no validation rows".into()),
            Err(e) => ("fail", format!("FAILS with native inference: {e}")),
        },
    };
    Validation { rows, native, text }
}

/// `metadata.user.card`: `{"intended_use": "...markdown...", ...}`; keys become titles
/// (`intended_use` -> "Intended use"), `title` names the card and is not a section.
fn card_sections(md: &Map<String, Value>) -> Vec<(String, String)> {
    let Some(card) = obj(md, "user")
        .and_then(|u| u.get("card"))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    card.iter()
        .filter(|(k, _)| k.as_str() != "title")
        .map(|(k, v)| {
            let mut title = k.replace('_', " ");
            if let Some(first) = title.get(..1) {
                title = format!("{}{}", first.to_uppercase(), title.get(1..).unwrap_or(""));
            }
            let text = match v {
                Value::String(s) => s.clone(),
                other => pretty(other),
            };
            (title, text)
        })
        .collect()
}

/// The card's title from `metadata.user.card.title`, if the writer gave one.
pub fn card_title(file: &SkvFile) -> Option<String> {
    obj(&file.manifest().metadata, "user")
        .and_then(|u| u.get("card"))
        .and_then(|c| c.get("title"))
        .and_then(Value::as_str)
        .map(str::to_string)
}
