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
}

#[derive(Debug)]
struct Pipeline {
    transforms: Vec<Boxed>,
    /// `None` when the last step is "passthrough".
    last: Option<Boxed>,
    n_features: usize,
    methods: &'static [Method],
}

fn pipeline(o: &Obj<'_, '_>, nested: BuildNested) -> Result<Pipeline> {
    let steps = tuples(o, "steps", 2)?;
    let n_steps = steps.len();
    let mut transforms = Vec::new();
    let mut last = None;
    for (i, step) in steps.into_iter().enumerate() {
        let path = format!("{}/{i}", o.sub("steps"));
        match member(o.ctx, step[1], &path, nested)? {
            Member::Est(e) if i + 1 == n_steps => last = Some(e),
            Member::Est(e) => {
                if !e.methods().contains(&Method::Transform) {
                    return Err(malformed(&path, format!("{} has no transform", e.class())));
                }
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
    Ok(Pipeline {
        transforms,
        last,
        n_features,
        methods,
    })
}

impl Pipeline {
    /// X through every step but the last.
    fn prefix(&self, x: &MatrixView<'_>) -> Result<Option<Matrix>> {
        let mut cur: Option<Matrix> = None;
        for t in &self.transforms {
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
        let Some(last) = &self.last else {
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
        let mut owned: Option<Frame> = None;
        let mut i = 0;
        while let Some(t) = self.transforms.get(i) {
            let (f, c) = match &owned {
                Some(f) => (f, (0..f.n_cols()).collect::<Vec<_>>()),
                None => (frame, cols.to_vec()),
            };
            match t.frame_transform(f, &c) {
                Some(next) => owned = Some(next?),
                None => break,
            }
            i += 1;
        }
        let (frame, cols) = match &owned {
            Some(f) => (f, (0..f.n_cols()).collect::<Vec<_>>()),
            None => (frame, cols.to_vec()),
        };
        let Some((first, rest)) = self.transforms[i..].split_first() else {
            return match &self.last {
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
        for t in rest {
            cur = t.transform(&cur.view())?;
        }
        match &self.last {
            Some(last) => call(last.as_ref(), method, &cur.view()),
            None if method == Method::Transform => Ok(Output::Matrix(cur)),
            None => Err(not_available(self.class(), method)),
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
            parts.push(self.weighted(b, out, n_rows)?);
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
            parts.push(self.weighted(b, out, n_rows)?);
        }
        Ok(Output::Matrix(hstack(&parts, n_rows)))
    }
}

impl Stack {
    /// A block's output, scaled by its weight, checked to keep the rows.
    fn weighted(&self, b: &Block, mut out: Matrix, n_rows: usize) -> Result<Matrix> {
        if let Some(w) = b.weight {
            out.data.iter_mut().for_each(|v| *v *= w);
        }
        if out.n_rows != n_rows {
            return Err(malformed(self.class, "a member changed the number of rows"));
        }
        Ok(out)
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
