//! Pipeline, ColumnTransformer, FeatureUnion and the identity FunctionTransformer.
//!
//! Composites build every member when they are built, so an unsupported member anywhere
//! fails `Model::open` with its path.

use skvault_format::{Construct, Node};
use skvault_frame::Frame;

use crate::classes::Classes;
use crate::error::{malformed, unsupported, Result};
use crate::estimator::{
    call, not_available, transform_frame, Boxed, BuildNested, Estimator, Method, Output,
};
use crate::matrix::{Matrix, MatrixView, Prediction};
use crate::state::{node_float, node_int, seq_items, Ctx, Obj};

/// `nested` builds the members (steps, transformers).
pub(crate) fn build(o: &Obj<'_, '_>, nested: BuildNested) -> Result<Option<Boxed>> {
    let est: Boxed = match o.class() {
        "sklearn.pipeline.Pipeline" => Box::new(pipeline(o, nested)?),
        "sklearn.compose._column_transformer.ColumnTransformer" => {
            Box::new(column_transformer(o, nested)?)
        }
        "sklearn.pipeline.FeatureUnion" => Box::new(feature_union(o, nested)?),
        "sklearn.preprocessing._function_transformer.FunctionTransformer" => {
            if !o.is_none("func") && !is_check_array(o) {
                return Err(unsupported(
                    o.class(),
                    &o.path,
                    Some("only func=None (the identity) is supported".into()),
                ));
            }
            Box::new(Identity {
                n_features: o.usize("n_features_in_")?,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(est))
}

/// `func=functools.partial(check_array, ...)`: what HistGradientBoosting's preprocessor
/// applies to numeric columns, the identity on float64 input.
fn is_check_array(o: &Obj<'_, '_>) -> bool {
    let Some(func) = o.attr("func").and_then(|f| o.ctx.object(f)) else {
        return false;
    };
    let Construct::Call { args } = &func.construct else {
        return false;
    };
    func.class == "functools.partial"
        && matches!(args.first().map(|a| o.ctx.resolve(a)),
            Some(Node::Global(g)) if g == "sklearn.utils.validation.check_array")
}

/// `(name, estimator)` or `(name, estimator, columns)` tuples of a list attribute.
fn tuples<'f>(o: &Obj<'_, 'f>, name: &str, arity: usize) -> Result<Vec<Vec<&'f Node>>> {
    let path = o.sub(name);
    o.seq(name)?
        .into_iter()
        .map(|t| {
            seq_items(o.ctx, t)
                .filter(|items| items.len() == arity)
                .ok_or_else(|| malformed(&path, format!("expected tuples of {arity} items")))
        })
        .collect()
}

/// A member: an estimator, or the strings "passthrough" / "drop" (None as passthrough).
enum Member {
    Est(Boxed),
    Passthrough,
    Drop,
}

fn member<'f>(ctx: &Ctx<'f>, node: &'f Node, path: &str, nested: BuildNested) -> Result<Member> {
    match ctx.resolve(node) {
        Node::Str(s) if s == "passthrough" => Ok(Member::Passthrough),
        Node::None => Ok(Member::Passthrough),
        Node::Str(s) if s == "drop" => Ok(Member::Drop),
        _ => nested(ctx, node, path).map(Member::Est),
    }
}

fn name_of(node: &Node) -> String {
    match node {
        Node::Str(s) => s.clone(),
        _ => String::new(),
    }
}

#[derive(Debug)]
struct Identity {
    n_features: usize,
}

impl Estimator for Identity {
    fn class(&self) -> &str {
        "sklearn.preprocessing._function_transformer.FunctionTransformer"
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Identity {
            class: self.class(),
            n_features: self.n_features,
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Transform]
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        Ok(Matrix::from_vec(x.data().to_vec(), x.n_rows(), x.n_cols()))
    }
    fn n_outputs(&self) -> Option<usize> {
        Some(self.n_features)
    }
}

#[derive(Debug)]
struct Pipeline {
    transforms: Vec<Boxed>,
    /// `None` when the last step is "passthrough".
    last: Option<Boxed>,
    n_features: usize,
    methods: &'static [Method],
    /// What predictions run on instead of the last transform and the final estimator, when
    /// the final estimator reads few of the columns before it (see [`narrowed`]).
    narrow: Option<Narrowed>,
}

/// Second copies of a pipeline's last transform, made to output only the columns the final
/// estimator reads, and of the final estimator, made to read only those.
#[derive(Debug)]
struct Narrowed {
    transform: Boxed,
    last: Boxed,
}

/// Narrowing pays when the final estimator reads at most this share of its columns: trees
/// after a one-hot encoding split on a few of its hundreds of columns, and the rest would
/// be zeroed, copied and laid out for the trees on every call.
const NARROW_SHARE: (usize, usize) = (3, 4);

/// [`Narrowed`] copies of the pipeline's last transform (step `t`) and final estimator
/// (step `l`), built again from the file, or `None` where the final estimator reads most of
/// its columns or a step cannot be narrowed. The copies keep every check: the transform
/// still reads (and refuses) every value, and the estimator is one whose checks of the
/// dropped columns cannot fail (see [`Estimator::used_columns`]).
fn narrowed<'f>(
    o: &Obj<'_, 'f>,
    steps: &[Vec<&'f Node>],
    (t, l): (usize, usize),
    (transform, last): (&Boxed, &Boxed),
    nested: BuildNested,
) -> Result<Option<Narrowed>> {
    let Some(used) = last.used_columns() else {
        return Ok(None);
    };
    let n = last.n_features();
    if used.len() * NARROW_SHARE.1 > n * NARROW_SHARE.0 || transform.n_outputs() != Some(n) {
        return Ok(None);
    }
    let path = |i: usize| format!("{}/{i}", o.sub("steps"));
    let mut transform = nested(o.ctx, steps[t][1], &path(t))?;
    let mut last = nested(o.ctx, steps[l][1], &path(l))?;
    if !(last.read_only(&used) && transform.keep_outputs(&used)) {
        return Ok(None);
    }
    Ok(Some(Narrowed { transform, last }))
}

fn pipeline(o: &Obj<'_, '_>, nested: BuildNested) -> Result<Pipeline> {
    let steps = tuples(o, "steps", 2)?;
    let n_steps = steps.len();
    let mut transforms = Vec::new();
    let mut last = None;
    let mut last_transform = None;
    for (i, step) in steps.iter().enumerate() {
        let path = format!("{}/{i}", o.sub("steps"));
        match member(o.ctx, step[1], &path, nested)? {
            Member::Est(e) if i + 1 == n_steps => last = Some(e),
            Member::Est(e) => {
                if !e.methods().contains(&Method::Transform) {
                    return Err(malformed(&path, format!("{} has no transform", e.class())));
                }
                last_transform = Some(i);
                transforms.push(e);
            }
            Member::Passthrough => {}
            Member::Drop => return Err(malformed(&path, "a pipeline step cannot be 'drop'")),
        }
    }
    let first = transforms.first().or(last.as_ref());
    let n_features = match first {
        Some(e) => e.n_features(),
        None => o.usize("n_features_in_")?,
    };
    let methods = match &last {
        Some(e) => e.methods(),
        None => &[Method::Transform],
    };
    let narrow = match (last_transform, transforms.last(), &last) {
        (Some(t), Some(transform), Some(l)) => {
            narrowed(o, &steps, (t, n_steps - 1), (transform, l), nested)?
        }
        _ => None,
    };
    Ok(Pipeline {
        transforms,
        last,
        n_features,
        methods,
        narrow,
    })
}

impl Pipeline {
    /// The transforms predictions run, in order: the narrowed copy of the last one where
    /// there is one.
    fn steps(&self) -> impl Iterator<Item = &Boxed> {
        let n = self.transforms.len();
        self.transforms
            .iter()
            .enumerate()
            .map(move |(i, t)| match &self.narrow {
                Some(narrow) if i + 1 == n => &narrow.transform,
                _ => t,
            })
    }

    /// The final estimator predictions run: its narrowed copy where there is one.
    fn final_step(&self) -> Option<&Boxed> {
        match &self.narrow {
            Some(narrow) => Some(&narrow.last),
            None => self.last.as_ref(),
        }
    }

    /// X through every step but the last.
    fn prefix(&self, x: &MatrixView<'_>) -> Result<Option<Matrix>> {
        let mut cur: Option<Matrix> = None;
        for t in self.steps() {
            let next = match &cur {
                None => t.transform(x)?,
                Some(m) => t.transform(&m.view())?,
            };
            cur = Some(next);
        }
        Ok(cur)
    }

    fn with_last<T>(
        &self,
        x: &MatrixView<'_>,
        method: Method,
        f: impl Fn(&Boxed, &MatrixView<'_>) -> Result<T>,
    ) -> Result<T> {
        let Some(last) = self.final_step() else {
            return Err(not_available("sklearn.pipeline.Pipeline", method));
        };
        match self.prefix(x)? {
            None => f(last, x),
            Some(m) => f(last, &m.view()),
        }
    }
}

impl Estimator for Pipeline {
    fn class(&self) -> &str {
        "sklearn.pipeline.Pipeline"
    }
    fn prepare_few_rows(&self) -> bool {
        let narrow = self.narrow.iter().flat_map(|n| [&n.transform, &n.last]);
        let steps = self.transforms.iter().chain(&self.last).chain(narrow);
        steps.fold(false, |any, step| step.prepare_few_rows() | any)
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Pipeline {
            n_features: self.n_features,
            transforms: self.transforms.iter().map(|t| t.view()).collect(),
            last: self.last.as_ref().map(|l| Box::new(l.view())),
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        self.methods
    }
    fn classes(&self) -> Option<&Classes> {
        self.last.as_ref().and_then(|l| l.classes())
    }
    fn predict(&self, x: &MatrixView<'_>) -> Result<Prediction> {
        self.with_last(x, Method::Predict, |e, v| e.predict(v))
    }
    fn predict_proba(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.with_last(x, Method::PredictProba, |e, v| e.predict_proba(v))
    }
    fn decision_function(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.with_last(x, Method::DecisionFunction, |e, v| e.decision_function(v))
    }
    fn score_samples(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        self.with_last(x, Method::ScoreSamples, |e, v| e.score_samples(v))
    }
    /// Steps whose output can hold text (imputers fitted on text) pass a frame on; the
    /// first other step reads the frame (it may encode text); the rest see numbers.
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        let mut steps = self.steps().peekable();
        let mut owned: Option<Frame> = None;
        while let Some(t) = steps.peek() {
            let (f, c) = match &owned {
                Some(f) => (f, (0..f.n_cols()).collect::<Vec<_>>()),
                None => (frame, cols.to_vec()),
            };
            match t.frame_transform(f, &c) {
                Some(next) => owned = Some(next?),
                None => break,
            }
            steps.next();
        }
        let (frame, cols) = match &owned {
            Some(f) => (f, (0..f.n_cols()).collect::<Vec<_>>()),
            None => (frame, cols.to_vec()),
        };
        let Some(first) = steps.next() else {
            return match self.final_step() {
                Some(last) => last.call_frame(method, frame, &cols),
                None if method == Method::Transform => Ok(Output::Matrix(Matrix::from_vec(
                    frame.numeric_matrix(&cols)?,
                    frame.n_rows(),
                    cols.len(),
                ))),
                None => Err(not_available(self.class(), method)),
            };
        };
        let mut cur = transform_frame(first.as_ref(), frame, &cols)?;
        for t in steps {
            cur = t.transform(&cur.view())?;
        }
        match self.final_step() {
            Some(last) => call(last.as_ref(), method, &cur.view()),
            None if method == Method::Transform => Ok(Output::Matrix(cur)),
            None => Err(not_available(self.class(), method)),
        }
    }
    fn n_outputs(&self) -> Option<usize> {
        match (&self.last, self.transforms.last()) {
            (Some(last), _) => last.n_outputs(),
            (None, Some(t)) => t.n_outputs(),
            (None, None) => Some(self.n_features),
        }
    }
    fn keep_outputs(&mut self, keep: &[usize]) -> bool {
        if self.narrow.is_some() {
            return false;
        }
        match (&mut self.last, self.transforms.last_mut()) {
            (Some(last), _) => last.keep_outputs(keep),
            (None, Some(t)) => t.keep_outputs(keep),
            (None, None) => false,
        }
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        if self.last.is_none() {
            return Ok(match self.prefix(x)? {
                Some(m) => m,
                None => Matrix::from_vec(x.data().to_vec(), x.n_rows(), x.n_cols()),
            });
        }
        self.with_last(x, Method::Transform, |e, v| e.transform(v))
    }
}

/// One block of a ColumnTransformer or FeatureUnion: input columns (all when `None`),
/// the transformer (`None` for passthrough) and a weight.
#[derive(Debug)]
struct Block {
    columns: Option<Vec<usize>>,
    est: Option<Boxed>,
    weight: Option<f64>,
    /// The output columns kept, for a block narrowed by [`Estimator::keep_outputs`] whose
    /// estimator could not narrow itself (it runs whole, then these are picked).
    pick: Option<Vec<usize>>,
}

/// Concatenates the blocks' outputs side by side (ColumnTransformer and FeatureUnion).
#[derive(Debug)]
struct Stack {
    class: &'static str,
    n_features: usize,
    blocks: Vec<Block>,
}

/// Column indices of a ColumnTransformer entry: what `_transformer_to_input_indices` says.
fn input_indices(o: &Obj<'_, '_>, name: &str, n: usize) -> Result<Vec<usize>> {
    let path = o.sub("_transformer_to_input_indices");
    let Some(Node::Dict(items)) = o.attr("_transformer_to_input_indices") else {
        return Err(unsupported(
            o.class(),
            &o.path,
            Some("no _transformer_to_input_indices (scikit-learn < 1.2)".into()),
        ));
    };
    let list = items
        .iter()
        .find(|(k, _)| matches!(o.ctx.resolve(k), Node::Str(s) if s == name))
        .map(|(_, v)| v)
        .ok_or_else(|| malformed(&path, format!("no entry for {name:?}")))?;
    let list = seq_items(o.ctx, list).ok_or_else(|| malformed(&path, "expected a list"))?;
    list.into_iter()
        .map(|v| {
            node_int(v)
                .and_then(|i| usize::try_from(i).ok())
                .filter(|i| *i < n)
                .ok_or_else(|| malformed(&path, format!("column index not below {n}")))
        })
        .collect()
}

fn column_transformer(o: &Obj<'_, '_>, nested: BuildNested) -> Result<Stack> {
    let n = o.usize("n_features_in_")?;
    let mut blocks = Vec::new();
    for (i, t) in tuples(o, "transformers_", 3)?.into_iter().enumerate() {
        let path = format!("{}/{i}", o.sub("transformers_"));
        let name = name_of(t[0]);
        let columns = input_indices(o, &name, n)?;
        if columns.is_empty() {
            continue;
        }
        let est = match member(o.ctx, t[1], &path, nested)? {
            Member::Drop => continue,
            Member::Passthrough => None,
            Member::Est(e) => Some(e),
        };
        blocks.push(Block {
            columns: Some(columns),
            est,
            weight: None,
            pick: None,
        });
    }
    Ok(Stack {
        class: "sklearn.compose._column_transformer.ColumnTransformer",
        n_features: n,
        blocks,
    })
}

fn feature_union(o: &Obj<'_, '_>, nested: BuildNested) -> Result<Stack> {
    let weights: Vec<(String, f64)> = match o.attr("transformer_weights") {
        None | Some(Node::None) => Vec::new(),
        Some(Node::Dict(items)) => items
            .iter()
            .map(
                |(k, v)| match (o.ctx.resolve(k), node_float(o.ctx.resolve(v))) {
                    (Node::Str(k), Some(w)) => Ok((k.clone(), w)),
                    _ => Err(malformed(
                        &o.sub("transformer_weights"),
                        "expected name: number",
                    )),
                },
            )
            .collect::<Result<_>>()?,
        Some(_) => return Err(malformed(&o.sub("transformer_weights"), "expected a dict")),
    };
    let mut blocks = Vec::new();
    let mut n_features = None;
    for (i, t) in tuples(o, "transformer_list", 2)?.into_iter().enumerate() {
        let path = format!("{}/{i}", o.sub("transformer_list"));
        let name = name_of(t[0]);
        let est = match member(o.ctx, t[1], &path, nested)? {
            Member::Drop => continue,
            Member::Passthrough => None,
            Member::Est(e) => {
                n_features.get_or_insert(e.n_features());
                Some(e)
            }
        };
        let weight = weights.iter().find(|(k, _)| *k == name).map(|(_, w)| *w);
        blocks.push(Block {
            columns: None,
            est,
            weight,
            pick: None,
        });
    }
    let n_features = match n_features {
        Some(n) => n,
        None => o.usize("n_features_in_")?,
    };
    Ok(Stack {
        class: "sklearn.pipeline.FeatureUnion",
        n_features,
        blocks,
    })
}

impl Estimator for Stack {
    fn class(&self) -> &str {
        self.class
    }
    fn view(&self) -> crate::view::View<'_> {
        crate::view::View::Stack {
            class: self.class,
            n_features: self.n_features,
            blocks: self
                .blocks
                .iter()
                .map(|b| crate::view::BlockView {
                    columns: b.columns.as_deref(),
                    est: b.est.as_ref().map(|e| e.view()),
                    weight: b.weight,
                })
                .collect(),
        }
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn methods(&self) -> &'static [Method] {
        &[Method::Transform]
    }
    fn n_outputs(&self) -> Option<usize> {
        Some(self.widths()?.iter().sum())
    }
    /// Each block keeps its share of `keep`: narrowed itself where its estimator can be,
    /// else run whole and picked. Every block still runs, so its errors are raised.
    fn keep_outputs(&mut self, keep: &[usize]) -> bool {
        let Some(widths) = self.widths() else {
            return false;
        };
        let total: usize = widths.iter().sum();
        let sorted = keep.windows(2).all(|w| w[0] < w[1]);
        if !sorted || keep.last().is_some_and(|&k| k >= total) {
            return false;
        }
        let (mut start, mut rest) = (0, keep);
        for (b, width) in self.blocks.iter_mut().zip(widths) {
            let n = rest.iter().take_while(|&&k| k < start + width).count();
            let local: Vec<usize> = rest[..n].iter().map(|k| k - start).collect();
            (start, rest) = (start + width, &rest[n..]);
            if local.len() == width {
                continue;
            }
            let local = match &b.pick {
                Some(pick) => local.iter().map(|&k| pick[k]).collect(),
                None if b.est.as_mut().is_some_and(|e| e.keep_outputs(&local)) => continue,
                None => local,
            };
            b.pick = Some(local);
        }
        true
    }
    fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
        crate::matrix::check_input(self.class, x, self.n_features, crate::matrix::Finite::Any)?;
        let n_rows = x.n_rows();
        let mut parts = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let selected = b.columns.as_ref().map(|cols| {
                let mut data = Vec::with_capacity(n_rows * cols.len());
                for row in x.rows() {
                    data.extend(cols.iter().map(|c| row[*c]));
                }
                Matrix::from_vec(data, n_rows, cols.len())
            });
            let input = selected.as_ref().map_or(*x, Matrix::view);
            let out = match &b.est {
                Some(e) => e.transform(&input)?,
                None => Matrix::from_vec(input.data().to_vec(), n_rows, input.n_cols()),
            };
            parts.push(self.finished(b, out, n_rows)?);
        }
        Ok(hstack(&parts, n_rows))
    }

    /// Each block reads its own columns of the frame, so a text column reaches only the
    /// encoder that was fitted on it.
    fn call_frame(&self, method: Method, frame: &Frame, cols: &[usize]) -> Result<Output> {
        if method != Method::Transform {
            return Err(not_available(self.class, method));
        }
        if cols.len() != self.n_features {
            return Err(crate::InferError::FeatureCount {
                class: self.class.to_string(),
                expected: self.n_features,
                found: cols.len(),
            });
        }
        let n_rows = frame.n_rows();
        let mut parts = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let sub: Vec<usize> = match &b.columns {
                Some(own) => own.iter().map(|&i| cols[i]).collect(),
                None => cols.to_vec(),
            };
            let out = match &b.est {
                Some(e) => transform_frame(e.as_ref(), frame, &sub)?,
                None => Matrix::from_vec(frame.numeric_matrix(&sub)?, n_rows, sub.len()),
            };
            parts.push(self.finished(b, out, n_rows)?);
        }
        Ok(Output::Matrix(hstack(&parts, n_rows)))
    }
}

impl Stack {
    /// A block's output: its kept columns, scaled by its weight, checked to keep the rows.
    fn finished(&self, b: &Block, out: Matrix, n_rows: usize) -> Result<Matrix> {
        if out.n_rows != n_rows {
            return Err(malformed(self.class, "a member changed the number of rows"));
        }
        let mut out = match &b.pick {
            None => out,
            Some(pick) => {
                if pick.iter().any(|&c| c >= out.n_cols) {
                    return Err(malformed(self.class, "a member returned fewer columns"));
                }
                let mut data = Vec::with_capacity(n_rows * pick.len());
                for i in 0..n_rows {
                    let row = out.row(i);
                    data.extend(pick.iter().map(|&c| row[c]));
                }
                Matrix::from_vec(data, n_rows, pick.len())
            }
        };
        if let Some(w) = b.weight {
            out.data.iter_mut().for_each(|v| *v *= w);
        }
        Ok(out)
    }

    /// The number of output columns of each block, where every one is known.
    fn widths(&self) -> Option<Vec<usize>> {
        self.blocks
            .iter()
            .map(|b| match (&b.pick, &b.est, &b.columns) {
                (Some(pick), _, _) => Some(pick.len()),
                (None, Some(e), _) => e.n_outputs(),
                (None, None, Some(columns)) => Some(columns.len()),
                (None, None, None) => Some(self.n_features),
            })
            .collect()
    }
}

/// The blocks' outputs side by side.
fn hstack(parts: &[Matrix], n_rows: usize) -> Matrix {
    {
        let n_cols: usize = parts.iter().map(|p| p.n_cols).sum();
        let mut data = Vec::with_capacity(n_rows * n_cols);
        for i in 0..n_rows {
            for p in parts {
                data.extend_from_slice(p.row(i));
            }
        }
        Matrix::from_vec(data, n_rows, n_cols)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Returns its input columns, times ten plus the column index (so that every output
    /// column is told apart); narrows itself when `narrowable`.
    #[derive(Debug)]
    struct Cols {
        n: usize,
        narrowable: bool,
        kept: Option<Vec<usize>>,
    }

    impl Estimator for Cols {
        fn class(&self) -> &str {
            "test.Cols"
        }
        fn n_features(&self) -> usize {
            self.n
        }
        fn methods(&self) -> &'static [Method] {
            &[Method::Transform]
        }
        fn n_outputs(&self) -> Option<usize> {
            Some(self.kept.as_ref().map_or(self.n, Vec::len))
        }
        fn keep_outputs(&mut self, keep: &[usize]) -> bool {
            if !self.narrowable || self.kept.is_some() {
                return false;
            }
            self.kept = Some(keep.to_vec());
            true
        }
        fn transform(&self, x: &MatrixView<'_>) -> Result<Matrix> {
            let all: Vec<usize> = (0..self.n).collect();
            let cols = self.kept.as_ref().unwrap_or(&all);
            let mut data = Vec::new();
            for row in x.rows() {
                data.extend(cols.iter().map(|&c| row[c] * 10.0 + c as f64));
            }
            Ok(Matrix::from_vec(data, x.n_rows(), cols.len()))
        }
    }

    fn block(columns: std::ops::Range<usize>, est: Option<Cols>) -> Block {
        Block {
            columns: Some(columns.collect()),
            est: est.map(|e| Box::new(e) as Boxed),
            weight: None,
            pick: None,
        }
    }

    fn stack() -> Stack {
        let cols = |n, narrowable| {
            Some(Cols {
                n,
                narrowable,
                kept: None,
            })
        };
        Stack {
            class: "test.Stack",
            n_features: 7,
            blocks: vec![
                block(0..3, cols(3, true)),
                block(3..5, cols(2, false)),
                block(5..6, None),
                block(6..7, cols(1, true)),
            ],
        }
    }

    #[test]
    fn a_narrowed_stack_returns_the_kept_columns_of_the_whole_output() {
        let data: Vec<f64> = (0..21).map(f64::from).collect();
        let x = MatrixView::new(&data, 3, 7).unwrap();
        let whole = stack().transform(&x).unwrap();
        for keep in [
            vec![1, 4, 5],
            vec![0, 1, 2, 3, 4, 5, 6],
            vec![6],
            vec![2, 3],
            vec![],
        ] {
            let mut narrow = stack();
            assert!(narrow.keep_outputs(&keep));
            assert_eq!(narrow.n_outputs(), Some(keep.len()));
            let got = narrow.transform(&x).unwrap();
            for i in 0..3 {
                let want: Vec<f64> = keep.iter().map(|&k| whole.row(i)[k]).collect();
                assert_eq!(got.row(i), want.as_slice(), "keep {keep:?}, row {i}");
            }
            // Narrowing again composes with the first.
            if keep.len() > 1 {
                assert!(narrow.keep_outputs(&[keep.len() - 1]));
                let again = narrow.transform(&x).unwrap();
                assert_eq!(again.row(0), &[got.row(0)[keep.len() - 1]]);
            }
        }
    }

    #[test]
    fn a_stack_refuses_unsorted_or_out_of_range_columns_unchanged() {
        for keep in [vec![2, 1], vec![1, 1], vec![7]] {
            let mut s = stack();
            assert!(!s.keep_outputs(&keep));
            assert_eq!(s.n_outputs(), Some(7));
        }
    }
}
