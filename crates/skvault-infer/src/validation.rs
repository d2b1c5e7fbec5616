//! Re-checking a file's validation rows with native inference, without Python.
//!
//! `dump(..., validation=...)` stores rows and the model's outputs on them
//! (docs/FORMAT.md section 4). [`check`] rebuilds the rows (a numeric matrix, or a frame
//! from a DataFrame), runs each recorded method and compares: labels exactly, numbers
//! within `|got - expected| <= ATOL + RTOL * |expected|` (NaN equal to NaN), the tolerance
//! `skvault.load(..., validate=True)` uses. Outputs native inference cannot compare (a
//! sparse matrix, a list of arrays) are reported as skipped, never as passed.

use skvault_format::{Node, SkvFile};
use skvault_frame::{Column, DictBuilder, DictColumn, Frame, Value};

use crate::classes::read_classes;
use crate::error::{malformed, InferError, Result};
use crate::estimator::{Method, Output};
use crate::matrix::{Matrix, MatrixView, Prediction};
use crate::state::{node_value, Ctx};
use crate::Model;

pub const RTOL: f64 = 1e-7;
pub const ATOL: f64 = 1e-10;

/// What a check covered.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub n_rows: usize,
    /// The methods whose outputs matched.
    pub methods: Vec<&'static str>,
    /// Recorded outputs that could not be compared natively, with the reason.
    pub skipped: Vec<(String, String)>,
}

fn mismatch(
    method: &str,
    rows: usize,
    max_diff: Option<f64>,
    detail: impl Into<String>,
) -> InferError {
    InferError::Validation {
        method: method.to_string(),
        rows,
        max_diff,
        detail: detail.into(),
    }
}

fn dict_get<'f>(ctx: &Ctx<'f>, node: &'f Node, key: &str) -> Option<&'f Node> {
    match ctx.resolve(node) {
        Node::Dict(items) => items
            .iter()
            .find(|(k, _)| matches!(ctx.resolve(k), Node::Str(s) if s == key))
            .map(|(_, v)| ctx.resolve(v)),
        _ => None,
    }
}

/// The stored rows: a numeric matrix, or a frame.
enum Rows {
    Matrix(Vec<f64>, usize, usize),
    Frame(Frame),
}

impl Rows {
    fn n_rows(&self) -> usize {
        match self {
            Rows::Matrix(_, n, _) => *n,
            Rows::Frame(f) => f.n_rows(),
        }
    }
}

/// One stored column of a frame (FORMAT.md section 4).
fn column<'f>(ctx: &Ctx<'f>, name: &str, node: &'f Node, path: &str) -> Result<Column> {
    if let Some(codes) = dict_get(ctx, node, "codes") {
        let cats =
            dict_get(ctx, node, "categories").ok_or_else(|| malformed(path, "no categories"))?;
        let mut values: Vec<Value> = match cats {
            Node::ObjArray { items, .. } => items
                .iter()
                .map(|n| node_value(ctx.resolve(n)).ok_or_else(|| malformed(path, "a category")))
                .collect::<Result<_>>()?,
            other => ctx
                .f64_array(other, path)?
                .data
                .into_iter()
                .map(Value::number)
                .collect(),
        };
        let missing = values.len() as u64;
        values.push(Value::NaN);
        let codes = ctx
            .i64_array(codes, path)?
            .1
            .into_iter()
            .map(|c| match c {
                -1 => Ok(missing as u32),
                c if c >= 0 && (c as u64) < missing => Ok(c as u32),
                c => Err(malformed(path, format!("category code {c}"))),
            })
            .collect::<Result<Vec<u32>>>()?;
        return Ok(Column::Dict(DictColumn::new(name, values, codes)?));
    }
    match node {
        Node::ObjArray { shape, items } if shape.len() == 1 => {
            let mut b = DictBuilder::with_capacity(name, items.len());
            for item in items {
                let v = node_value(ctx.resolve(item))
                    .ok_or_else(|| malformed(path, "a value that is not text, a number or None"))?;
                b.push(v)?;
            }
            Ok(Column::Dict(b.finish()))
        }
        other => {
            let a = ctx.f64_array(other, path)?;
            if a.shape.len() != 1 {
                return Err(malformed(path, "a column must be 1-d"));
            }
            Ok(Column::Numeric(a.data))
        }
    }
}

fn rows<'f>(ctx: &Ctx<'f>, x: &'f Node) -> Result<Option<Rows>> {
    if let Some(frame) = dict_get(ctx, x, "frame") {
        let path = "/validation/X/frame";
        let names: Vec<String> = crate::state::seq_items(
            ctx,
            dict_get(ctx, frame, "columns").ok_or_else(|| malformed(path, "no columns"))?,
        )
        .ok_or_else(|| malformed(path, "columns must be a list"))?
        .into_iter()
        .map(|n| match n {
            Node::Str(s) => Ok(s.clone()),
            _ => Err(malformed(path, "column names must be text")),
        })
        .collect::<Result<_>>()?;
        let data = crate::state::seq_items(
            ctx,
            dict_get(ctx, frame, "data").ok_or_else(|| malformed(path, "no data"))?,
        )
        .filter(|d| d.len() == names.len())
        .ok_or_else(|| malformed(path, "one data entry per column"))?;
        let columns = names
            .iter()
            .zip(data)
            .enumerate()
            .map(|(i, (name, node))| column(ctx, name, node, &format!("{path}/data/{i}")))
            .collect::<Result<Vec<_>>>()?;
        // A frame the file stores badly is a malformed file, not bad input.
        let frame = Frame::new(names, columns).map_err(|e| malformed(path, e.to_string()))?;
        return Ok(Some(Rows::Frame(frame)));
    }
    match x {
        Node::Array(_) => {
            let a = ctx.f64_array(x, "/validation/X")?;
            match a.shape[..] {
                [n, d] => Ok(Some(Rows::Matrix(a.data, n, d))),
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// Compares one method's output; `Ok(Some(reason))` when it cannot be compared natively.
fn compare<'f>(
    ctx: &Ctx<'f>,
    model: &Model,
    name: &str,
    got: Output,
    expected: &'f Node,
    n_rows: usize,
) -> Result<Option<String>> {
    let path = format!("/validation/outputs/{name}");
    if !matches!(expected, Node::Array(_) | Node::ObjArray { .. }) {
        return Ok(Some("the recorded output is not a dense array".into()));
    }
    match got {
        Output::Prediction(Prediction::Labels(idx)) => {
            let want = read_classes(ctx, expected, &path)?;
            let classes = model
                .classes()
                .ok_or_else(|| malformed(&path, "labels without classes"))?;
            if want.len() != idx.len() {
                return Err(mismatch(
                    name,
                    n_rows,
                    None,
                    format!("{} labels instead of {}", idx.len(), want.len()),
                ));
            }
            let bad = idx
                .iter()
                .enumerate()
                .filter(|(i, k)| classes.label_text(**k) != want.label_text(*i))
                .count();
            if bad > 0 {
                return Err(mismatch(name, bad, None, "labels differ"));
            }
            Ok(None)
        }
        Output::Prediction(Prediction::Values(m)) | Output::Matrix(m) => {
            compare_values(ctx, name, &m, expected, &path)
        }
    }
}

fn compare_values<'f>(
    ctx: &Ctx<'f>,
    name: &str,
    m: &Matrix,
    expected: &'f Node,
    path: &str,
) -> Result<Option<String>> {
    let Ok(want) = ctx.f64_array(expected, path) else {
        return Ok(Some("the recorded output is not numeric".into()));
    };
    let rows_match = want.shape.first() == Some(&m.n_rows);
    if !rows_match || want.data.len() != m.data.len() {
        return Err(mismatch(
            name,
            m.n_rows,
            None,
            format!(
                "shape {:?} instead of {:?}",
                (m.n_rows, m.n_cols),
                want.shape
            ),
        ));
    }
    let width = m.n_cols.max(1);
    let mut bad_rows = std::collections::BTreeSet::new();
    let mut max_diff: f64 = 0.0;
    for (i, (g, e)) in m.data.iter().zip(&want.data).enumerate() {
        if g.is_nan() && e.is_nan() {
            continue;
        }
        let diff = (g - e).abs();
        // A NaN difference (one side NaN) fails too: `partial_cmp` gives no ordering.
        let within = diff.partial_cmp(&(ATOL + RTOL * e.abs()))
            != Some(std::cmp::Ordering::Greater)
            && !diff.is_nan();
        if !within {
            bad_rows.insert(i / width);
            max_diff = max_diff.max(if diff.is_nan() { f64::INFINITY } else { diff });
        }
    }
    if !bad_rows.is_empty() {
        return Err(mismatch(name, bad_rows.len(), Some(max_diff), ""));
    }
    Ok(None)
}

/// Re-checks the file's validation rows with `model` (built from the same file). `None`
/// when the file has no validation rows.
pub fn check(model: &Model, file: &SkvFile) -> Result<Option<Checked>> {
    let Some(tree) = &file.manifest().validation else {
        return Ok(None);
    };
    let ctx = Ctx::with_validation(file);
    let x = dict_get(&ctx, tree, "X").ok_or_else(|| malformed("/validation", "no X"))?;
    let outputs = match dict_get(&ctx, tree, "outputs") {
        Some(Node::Dict(items)) => items,
        _ => return Err(malformed("/validation", "no outputs")),
    };
    let mut checked = Checked {
        n_rows: 0,
        methods: Vec::new(),
        skipped: Vec::new(),
    };
    let Some(rows) = rows(&ctx, x)? else {
        for (k, _) in outputs {
            if let Node::Str(k) = ctx.resolve(k) {
                checked.skipped.push((
                    k.clone(),
                    "rows of this kind (sparse, lists) are checked in Python only".into(),
                ));
            }
        }
        return Ok(Some(checked));
    };
    checked.n_rows = rows.n_rows();
    for (k, expected) in outputs {
        let Node::Str(name) = ctx.resolve(k) else {
            return Err(malformed(
                "/validation/outputs",
                "method names must be text",
            ));
        };
        let Some(method) = Method::from_name(name) else {
            checked
                .skipped
                .push((name.clone(), "not a method native inference has".into()));
            continue;
        };
        if !model.has(method) {
            return Err(mismatch(
                name,
                checked.n_rows,
                None,
                "the model cannot compute it natively",
            ));
        }
        let got = match &rows {
            Rows::Matrix(data, n, d) => model.call(method, &MatrixView::new(data, *n, *d)?)?,
            Rows::Frame(f) => model.call_frame(method, f)?,
        };
        match compare(
            &ctx,
            model,
            name,
            got,
            ctx.resolve(expected),
            checked.n_rows,
        )? {
            None => checked.methods.push(method.name()),
            Some(reason) => checked.skipped.push((name.clone(), reason)),
        }
    }
    Ok(Some(checked))
}
