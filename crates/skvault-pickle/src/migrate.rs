//! Migrations: state saved by an older scikit-learn, rewritten into the layout that
//! scikit-learn 1.4 and later expect, so that a converted model is right or refused, never
//! silently wrong.
//!
//! Each estimator pickles its own `_sklearn_version`; a migration applies to the objects an
//! estimator holds according to that version. Known changes:
//!
//! - **Tree node struct** (`sklearn.tree._tree.Tree`, 1.3): a `missing_go_to_left` byte was
//!   added, growing the record from 56 to 64 bytes. Older trees never routed missing values
//!   left (NaN compared false and went right), so the byte is written as 0.
//! - **Classifier tree values** (1.4): `tree_.value` of `DecisionTreeClassifier` and
//!   `ExtraTreeClassifier` (also inside forests) changed from weighted class counts to class
//!   fractions, and `predict_proba` stopped normalising. Unmigrated, a 1.3 forest returns
//!   "probabilities" like 74.1. The counts are divided by their sum over the classes, summed
//!   as numpy's `sum(axis=1)` sums them, so the fractions are bit-identical to what the old
//!   `predict_proba` returned.
//! - **HistGradientBoosting `_preprocessor`** (1.4): added for `categorical_features=
//!   "from_dtype"`; older models had none, which is `None` in 1.4 and later.
//! - **Cython module names of scikit-learn 1.5 builds**: the loss objects of 1.5 pickled
//!   their Cython helper under the bare module name `_loss` instead of `sklearn._loss._loss`
//!   (scikit-learn's own pickle cannot load those files); the name is restored.
//!
//! Refused with an error naming the object:
//! - IsolationForest of scikit-learn < 1.3 (it lacks per-tree path lengths that 1.3 computes
//!   at fit time);
//! - classes that no longer exist (GradientBoosting losses of < 1.4, distance metrics of
//!   < 1.3): the trust check of the converted tree names them;
//! - files written by scikit-learn older than 1.2: nothing was checked for them.

use std::borrow::Cow;

use skvault_format::dtype::{ByteOrder, Field, Kind};
use skvault_format::{DType, Node, Object, Order};

use crate::error::{PickleError, Result};
use crate::lower::{Converted, ConvertedArray};

/// The oldest scikit-learn whose files are converted.
pub const OLDEST_SUPPORTED: (u32, u32) = (1, 2);

/// Stable identifiers of the migrations, recorded in `metadata.converted_from.migrations`
/// (`id`) for programs to read; `what` is the sentence for people.
pub mod ids {
    pub use skvault_format::converted::{
        HGB_PREPROCESSOR, LOSS_MODULE, TREE_NODES, TREE_VALUES_FRACTIONS,
    };
}

/// One kind of change, for the converted file's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Stable identifier (one of [`ids`]).
    pub id: &'static str,
    pub what: &'static str,
    /// How many objects were changed this way.
    pub count: usize,
    /// Path of the first of them in the tree (`/estimators_/0/tree_`).
    pub first_path: String,
}

/// `major.minor` of a version string such as `"1.3.2"` or `"1.4.dev0"`.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// The scikit-learn versions named by the estimators of a tree (`_sklearn_version`), sorted
/// and deduplicated.
pub fn sklearn_versions(root: &Node) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    skvault_format::node::walk(root, &mut |n| {
        if let Node::Object(obj) = n {
            if let Some(Node::Str(v)) = state_get(obj, "_sklearn_version") {
                out.insert(v.clone());
            }
        }
    });
    out.into_iter().collect()
}

/// Applies every migration the tree needs, in place. Fails, naming the object, where the saved
/// state cannot be brought to the current layout.
pub fn migrate(converted: &mut Converted<'_>) -> Result<Vec<Migration>> {
    let mut m = Migrator {
        arrays: &mut converted.arrays,
        done: Vec::new(),
        path: vec![],
    };
    m.node(&mut converted.root, None)?;
    let mut out: Vec<Migration> = Vec::new();
    for (path, (id, what)) in m.done {
        match out.iter_mut().find(|x| x.id == id) {
            Some(x) => x.count += 1,
            None => out.push(Migration {
                id,
                what,
                count: 1,
                first_path: path,
            }),
        }
    }
    Ok(out)
}

struct Migrator<'m, 'a> {
    arrays: &'m mut Vec<ConvertedArray<'a>>,
    done: Vec<(String, (&'static str, &'static str))>,
    path: Vec<String>,
}

/// The estimator that holds an object, as far as migrations care.
#[derive(Clone, Copy)]
struct Owner<'s> {
    class: &'s str,
    version: (u32, u32),
}

fn state_get<'o>(obj: &'o Object, key: &str) -> Option<&'o Node> {
    match obj.state.as_ref()? {
        Node::Dict(items) => items.iter().find_map(|(k, v)| match k {
            Node::Str(s) if s == key => Some(v.unshared()),
            _ => None,
        }),
        _ => None,
    }
}

const CLASSIFIER_TREES: &[&str] = &[
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._classes.ExtraTreeClassifier",
];
const HGB: &[&str] = &[
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
];
const TREE: &str = "sklearn.tree._tree.Tree";
const IFOREST: &str = "sklearn.ensemble._iforest.IsolationForest";
/// The node struct before 1.3, field by field.
const OLD_NODE_FIELDS: &[(&str, Kind, u64)] = &[
    ("left_child", Kind::Int, 8),
    ("right_child", Kind::Int, 8),
    ("feature", Kind::Int, 8),
    ("threshold", Kind::Float, 8),
    ("impurity", Kind::Float, 8),
    ("n_node_samples", Kind::Int, 8),
    ("weighted_n_node_samples", Kind::Float, 8),
];
const NEW_ITEMSIZE: u64 = 64;

impl Migrator<'_, '_> {
    fn path(&self) -> String {
        format!("/{}", self.path.join("/"))
    }

    fn fail(&self, message: impl Into<String>) -> PickleError {
        PickleError::Migrate {
            path: self.path(),
            message: message.into(),
        }
    }

    fn node(&mut self, node: &mut Node, owner: Option<Owner<'_>>) -> Result<()> {
        match node {
            Node::Object(obj) => self.object(obj, owner),
            Node::Shared { node, .. } => self.node(node, owner),
            Node::List(v) | Node::Tuple(v) | Node::Set(v) | Node::FrozenSet(v) => {
                self.each(v.iter_mut(), owner)
            }
            Node::ObjArray { items, .. } => self.each(items.iter_mut(), owner),
            Node::Dict(items) => {
                for (i, (k, v)) in items.iter_mut().enumerate() {
                    self.path.push(key_label(k, i));
                    self.node(k, owner)?;
                    self.node(v, owner)?;
                    self.path.pop();
                }
                Ok(())
            }
            Node::Global(name) => {
                if let Some(fixed) = cython_module_fix(name) {
                    self.record(
                        ids::LOSS_MODULE,
                        "the scikit-learn 1.5 Cython module name `_loss` restored",
                    );
                    *name = fixed;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn each<'n>(
        &mut self,
        items: impl Iterator<Item = &'n mut Node>,
        owner: Option<Owner<'_>>,
    ) -> Result<()> {
        for (i, n) in items.enumerate() {
            self.path.push(i.to_string());
            self.node(n, owner)?;
            self.path.pop();
        }
        Ok(())
    }

    fn record(&mut self, id: &'static str, what: &'static str) {
        self.done.push((self.path(), (id, what)));
    }

    fn object(&mut self, obj: &mut Object, owner: Option<Owner<'_>>) -> Result<()> {
        if let Some(fixed) = cython_module_fix(&obj.class) {
            self.record(
                ids::LOSS_MODULE,
                "the scikit-learn 1.5 Cython module name `_loss` restored",
            );
            obj.class = fixed;
        }
        let version = match state_get(obj, "_sklearn_version") {
            Some(Node::Str(v)) => {
                let parsed = parse_version(v)
                    .ok_or_else(|| self.fail(format!("unreadable scikit-learn version {v:?}")))?;
                if parsed < OLDEST_SUPPORTED {
                    return Err(self.fail(format!(
                        "{} was saved by scikit-learn {v}; skvault converts files from \
                         scikit-learn {}.{} or later",
                        obj.class, OLDEST_SUPPORTED.0, OLDEST_SUPPORTED.1
                    )));
                }
                Some(parsed)
            }
            _ => None,
        };
        let class = obj.class.clone();
        let mine = version.map(|version| Owner {
            class: &class,
            version,
        });
        let owner = mine.or(owner);
        if obj.class == TREE {
            self.tree(obj, owner)?;
        }
        if obj.class == IFOREST
            && owner.is_some_and(|o| o.version < (1, 3))
            && state_get(obj, "_decision_path_lengths").is_none()
        {
            return Err(self.fail(
                "IsolationForest saved by scikit-learn < 1.3 lacks `_decision_path_lengths` and \
                 `_average_path_length_per_tree`, which scikit-learn 1.3 and later compute when \
                 fitting; skvault does not recompute them",
            ));
        }
        if HGB.contains(&obj.class.as_str())
            && owner.is_some_and(|o| o.version < (1, 4))
            && state_get(obj, "_preprocessor").is_none()
        {
            if let Some(Node::Dict(items)) = obj.state.as_mut() {
                items.push((Node::Str("_preprocessor".into()), Node::None));
                self.record(
                    ids::HGB_PREPROCESSOR,
                    "HistGradientBoosting `_preprocessor = None` added (scikit-learn < 1.4)",
                );
            }
        }
        if let skvault_format::Construct::Call { args }
        | skvault_format::Construct::New { args, .. } = &mut obj.construct
        {
            self.path.push("args".into());
            self.each(args.iter_mut(), owner)?;
            self.path.pop();
        }
        if let Some(state) = obj.state.as_mut() {
            self.node(state, owner)?;
        }
        self.each(obj.list_items.iter_mut(), owner)?;
        for (k, v) in obj.dict_items.iter_mut() {
            self.node(k, owner)?;
            self.node(v, owner)?;
        }
        Ok(())
    }

    /// The array index a tree state member points to.
    fn array_of(&self, obj: &Object, key: &str) -> Result<usize> {
        match state_get(obj, key) {
            Some(Node::Array(i)) if *i < self.arrays.len() => Ok(*i),
            _ => Err(self.fail(format!("the Tree's {key:?} is not an array"))),
        }
    }

    fn tree(&mut self, obj: &mut Object, owner: Option<Owner<'_>>) -> Result<()> {
        let nodes = self.array_of(obj, "nodes")?;
        if let Some(widened) = self.widen_nodes(&self.arrays[nodes])? {
            self.arrays[nodes] = widened;
            self.record(
                ids::TREE_NODES,
                "Tree nodes: `missing_go_to_left = 0` added (scikit-learn < 1.3)",
            );
        }
        let Some(owner) = owner else {
            return Err(self.fail(
                "a Tree outside any estimator that records its scikit-learn version: cannot \
                 tell whether its values are counts or fractions",
            ));
        };
        if CLASSIFIER_TREES.contains(&owner.class) && owner.version < (1, 4) {
            let values = self.array_of(obj, "values")?;
            let n_classes = self.tree_classes(obj)?;
            self.normalise_values(values, &n_classes)?;
            self.record(
                ids::TREE_VALUES_FRACTIONS,
                "classifier Tree values: class counts turned into fractions (scikit-learn < 1.4)",
            );
        }
        Ok(())
    }

    /// The 56-byte record of scikit-learn < 1.3 widened to 64 bytes; `None` when the array
    /// already has another layout (the loader's own dtype check then decides).
    fn widen_nodes(&self, a: &ConvertedArray<'_>) -> Result<Option<ConvertedArray<'static>>> {
        let DType::Structured {
            fields, itemsize, ..
        } = &a.dtype
        else {
            return Err(self.fail("the Tree's nodes are not a structured array"));
        };
        let is_old = fields.len() == OLD_NODE_FIELDS.len()
            && fields.iter().zip(OLD_NODE_FIELDS).enumerate().all(|(i, (f, (name, kind, size)))| {
                f.name == *name
                    && f.offset == 8 * i as u64
                    && matches!(&f.dtype, DType::Scalar { order: ByteOrder::Little, kind: k, count }
                        if k == kind && count == size)
            })
            && *itemsize == 56;
        if !is_old {
            return Ok(None);
        }
        if a.order != Order::C || a.shape.len() != 1 {
            return Err(self.fail("the Tree's nodes are not a one-dimensional C array"));
        }
        let n = usize::try_from(a.shape[0]).map_err(|_| self.fail("too many nodes"))?;
        if a.data.len()
            != n.checked_mul(56)
                .ok_or_else(|| self.fail("too many nodes"))?
        {
            return Err(self.fail("the Tree's node bytes do not match its shape"));
        }
        let mut data = vec![0u8; n * NEW_ITEMSIZE as usize];
        for (src, dst) in a.data.chunks_exact(56).zip(data.chunks_exact_mut(64)) {
            dst[..56].copy_from_slice(src);
        }
        let mut new_fields = fields.clone();
        new_fields.push(Field {
            name: "missing_go_to_left".into(),
            dtype: DType::Scalar {
                order: ByteOrder::NotApplicable,
                kind: Kind::UInt,
                count: 1,
            },
            offset: 56,
        });
        Ok(Some(ConvertedArray {
            dtype: DType::Structured {
                fields: new_fields,
                itemsize: NEW_ITEMSIZE,
                aligned: false,
            },
            shape: a.shape.clone(),
            order: Order::C,
            data: Cow::Owned(data),
        }))
    }

    /// `n_classes` of a Tree: its second constructor argument, one count per output.
    fn tree_classes(&self, obj: &Object) -> Result<Vec<usize>> {
        let skvault_format::Construct::Call { args } = &obj.construct else {
            return Err(self.fail("the Tree is not built from (n_features, n_classes, n_outputs)"));
        };
        let Some(Node::Array(i)) = args.get(1).map(Node::unshared) else {
            return Err(self.fail("the Tree's n_classes is not an array"));
        };
        let a = self
            .arrays
            .get(*i)
            .ok_or_else(|| self.fail("bad array index"))?;
        let little_i8 = DType::Scalar {
            order: ByteOrder::Little,
            kind: Kind::Int,
            count: 8,
        };
        if a.dtype != little_i8 || a.data.len() % 8 != 0 {
            return Err(self.fail("the Tree's n_classes is not an int64 array"));
        }
        a.data
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                usize::try_from(i64::from_le_bytes(b))
                    .map_err(|_| self.fail("negative class count"))
            })
            .collect()
    }

    fn normalise_values(&mut self, index: usize, n_classes: &[usize]) -> Result<()> {
        let a = &self.arrays[index];
        let f8 = DType::Scalar {
            order: ByteOrder::Little,
            kind: Kind::Float,
            count: 8,
        };
        let [nodes, outputs, width] = a.shape[..] else {
            return Err(self.fail("the Tree's values are not a 3-d array"));
        };
        if a.dtype != f8 || a.order != Order::C || outputs as usize != n_classes.len() {
            return Err(
                self.fail("the Tree's values are not float64 (node, output, class) in C order")
            );
        }
        let width = usize::try_from(width).map_err(|_| self.fail("too many classes"))?;
        if n_classes.iter().any(|&k| k > width) {
            return Err(self.fail("a class count exceeds the Tree's value width"));
        }
        let expected = (nodes as u128) * (outputs as u128) * (width as u128) * 8;
        if a.data.len() as u128 != expected {
            return Err(self.fail("the Tree's value bytes do not match its shape"));
        }
        let mut values: Vec<f64> = a
            .data
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b)
            })
            .collect();
        if width > 0 {
            for row in values.chunks_exact_mut(width * n_classes.len()) {
                for (out, &k) in row.chunks_exact_mut(width).zip(n_classes) {
                    let mut normaliser = numpy_sum(&out[..k]);
                    if normaliser == 0.0 {
                        normaliser = 1.0;
                    }
                    for v in out.iter_mut() {
                        *v /= normaliser;
                    }
                }
            }
        }
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.arrays[index].data = Cow::Owned(data);
        Ok(())
    }
}

/// numpy's `add.reduce` over a contiguous float64 row: pairwise summation with eight
/// accumulators in blocks of up to 128 (`pairwise_sum` in numpy's `loops_utils.h.src`).
pub fn numpy_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for v in a {
            res += v;
        }
        // numpy adds the row to -0.0's identity-free start: 0.0 + x keeps the sign rules of x.
        return res;
    }
    if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i + 8 <= n {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[i..] {
            res += v;
        }
        return res;
    }
    let mut n2 = n / 2;
    n2 -= n2 % 8;
    numpy_sum(&a[..n2]) + numpy_sum(&a[n2..])
}

/// `_loss.X` (scikit-learn 1.5's Cython helpers) -> `sklearn._loss._loss.X`.
fn cython_module_fix(name: &str) -> Option<String> {
    let rest = name.strip_prefix("_loss.")?;
    Some(format!("sklearn._loss._loss.{rest}"))
}

fn key_label(k: &Node, i: usize) -> String {
    match k {
        Node::Str(s) => s.clone(),
        _ => i.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("1.3.2"), Some((1, 3)));
        assert_eq!(parse_version("1.4.dev0"), Some((1, 4)));
        assert_eq!(parse_version("1.10rc1"), Some((1, 10)));
        assert_eq!(parse_version("1"), None);
        assert_eq!(parse_version("1.10.0rc1"), Some((1, 10)));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn numpy_sum_blocks_like_numpy() {
        // Values chosen so that the association order changes the result.
        let a: Vec<f64> = (0..200).map(|i| 1.0 / f64::from(i + 3)).collect();
        let seq: f64 = a.iter().sum();
        assert_eq!(numpy_sum(&a[..5]), a[..5].iter().sum::<f64>());
        assert_ne!(
            numpy_sum(&a),
            seq,
            "pairwise and sequential sums should differ here"
        );
    }
}
