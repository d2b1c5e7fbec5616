//! `guard::check` on small hand-made files: neighbors trees, distance metrics and libsvm
//! models as scikit-learn writes them pass; each hostile variant is refused with its reason.

// Helpers of a test binary are test code too: clippy.toml's allow-*-in-tests only covers
// #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Map;
use skvault_format::dtype::Kind;
use skvault_format::testing::{object, scalar, structured};
use skvault_format::{
    prepare, ArrayInput, Construct, DType, Node, Object, Order, SkvFile, WriteOptions,
};
use skvault_infer::guard::check;
use skvault_infer::InferError;

/// The arrays of a file being built; nodes refer to them by index.
#[derive(Default)]
struct Arrays(Vec<(DType, Vec<u64>, Vec<u8>)>);

impl Arrays {
    fn add(&mut self, dtype: DType, shape: &[u64], data: Vec<u8>) -> Node {
        self.0.push((dtype, shape.to_vec(), data));
        Node::Array(self.0.len() - 1)
    }

    fn f64(&mut self, shape: &[u64], v: &[f64]) -> Node {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add(scalar(Kind::Float, 8), shape, data)
    }

    fn f32(&mut self, shape: &[u64], v: &[f32]) -> Node {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add(scalar(Kind::Float, 4), shape, data)
    }

    fn i64(&mut self, v: &[i64]) -> Node {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add(scalar(Kind::Int, 8), &[v.len() as u64], data)
    }

    fn i32(&mut self, v: &[i32]) -> Node {
        let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.add(scalar(Kind::Int, 4), &[v.len() as u64], data)
    }

    /// scikit-learn's NodeData records: (idx_start, idx_end, is_leaf, radius).
    fn nodes(&mut self, nodes: &[(i64, i64, i64)]) -> Node {
        let dtype = structured(
            vec![
                ("idx_start", scalar(Kind::Int, 8), 0),
                ("idx_end", scalar(Kind::Int, 8), 8),
                ("is_leaf", scalar(Kind::Int, 8), 16),
                ("radius", scalar(Kind::Float, 8), 24),
            ],
            32,
        );
        let mut data = Vec::new();
        for (s, e, leaf) in nodes {
            for v in [s, e, leaf] {
                data.extend_from_slice(&v.to_le_bytes());
            }
            data.extend_from_slice(&1.0f64.to_le_bytes());
        }
        self.add(dtype, &[nodes.len() as u64], data)
    }

    fn check(&self, root: Node) -> Result<(), InferError> {
        check(&self.file(root))
    }

    /// The file of `root` and these arrays.
    fn file(&self, root: Node) -> SkvFile {
        let inputs: Vec<ArrayInput> = self
            .0
            .iter()
            .map(|(dtype, shape, data)| ArrayInput {
                dtype: dtype.clone(),
                shape: shape.clone(),
                order: Order::C,
                data,
            })
            .collect();
        let bytes = prepare(root, &inputs, Map::new(), WriteOptions::default())
            .unwrap()
            .to_vec()
            .unwrap();
        SkvFile::from_bytes(bytes).unwrap()
    }
}

/// An object created by `newObj(cls)` with a tuple state.
fn new_obj(class: &str, state: Vec<Node>) -> Node {
    Node::Object(Box::new(Object {
        class: class.into(),
        construct: Construct::New {
            args: vec![],
            kwargs: vec![],
        },
        state: Some(Node::Tuple(state)),
        list_items: vec![],
        dict_items: vec![],
    }))
}

fn refused(result: Result<(), InferError>, needle: &str) {
    match result {
        Err(InferError::Malformed { path, message }) => assert!(
            message.contains(needle) || path.contains(needle),
            "{path}: {message} (expected {needle:?})"
        ),
        other => panic!("expected a refusal mentioning {needle:?}, got {other:?}"),
    }
}

const KD: &str = "sklearn.neighbors._kd_tree.KDTree";
const BALL: &str = "sklearn.neighbors._ball_tree.BallTree";
const METRICS: &str = "sklearn.metrics._dist_metrics.";

/// A neighbors tree on 4 points of 2 dimensions: a root and two leaves of 2 points.
struct TreeSpec {
    class: &'static str,
    n: usize,
    d: usize,
    idx: Vec<i64>,
    nodes: Vec<(i64, i64, i64)>,
    n_levels: i64,
    n_nodes: i64,
    bounds_rows: u64,
    leaf_size: i64,
    metric: Option<(String, Vec<f64>, (u64, u64))>,
    sample_weight: Option<Vec<f64>>,
    float32: bool,
}

impl TreeSpec {
    fn new(class: &'static str) -> TreeSpec {
        TreeSpec {
            class,
            n: 4,
            d: 2,
            idx: vec![2, 0, 3, 1],
            nodes: vec![(0, 4, 0), (0, 2, 1), (2, 4, 1)],
            n_levels: 2,
            n_nodes: 3,
            bounds_rows: if class.starts_with("sklearn.neighbors._kd_tree.") {
                2
            } else {
                1
            },
            leaf_size: 1,
            metric: Some(("EuclideanDistance64".into(), vec![0.0], (1, 1))),
            sample_weight: None,
            float32: false,
        }
    }

    fn with_metric(mut self, class: &str, vec: Vec<f64>, mat: (u64, u64)) -> Self {
        self.metric = Some((class.into(), vec, mat));
        self
    }

    /// The tree alone at the root, or held by an estimator and shared with a second tree.
    fn node(&self, a: &mut Arrays) -> Node {
        let (n, d) = (self.n as u64, self.d as u64);
        let values: Vec<f64> = (0..self.n * self.d).map(|i| i as f64).collect();
        let data = if self.float32 {
            let v: Vec<f32> = values.iter().map(|x| *x as f32).collect();
            a.f32(&[n, d], &v)
        } else {
            a.f64(&[n, d], &values)
        };
        let idx = a.i64(&self.idx);
        let nodes = a.nodes(&self.nodes);
        let nb = self.bounds_rows * self.nodes.len() as u64 * d;
        let bounds_values = vec![0.0; nb as usize];
        let bounds = if self.float32 {
            a.f32(
                &[self.bounds_rows, self.nodes.len() as u64, d],
                &vec![0.0; nb as usize],
            )
        } else {
            a.f64(
                &[self.bounds_rows, self.nodes.len() as u64, d],
                &bounds_values,
            )
        };
        let metric = match &self.metric {
            None => Node::None,
            Some((class, vec, (r, c))) => metric(a, class, vec, (*r, *c)),
        };
        let weight = match &self.sample_weight {
            None => Node::None,
            Some(w) => a.f64(&[w.len() as u64], w),
        };
        new_obj(
            self.class,
            vec![
                data,
                idx,
                nodes,
                bounds,
                Node::Int(self.leaf_size),
                Node::Int(self.n_levels),
                Node::Int(self.n_nodes),
                Node::Int(0),
                Node::Int(0),
                Node::Int(0),
                Node::Int(0),
                metric,
                weight,
            ],
        )
    }

    fn check(&self) -> Result<(), InferError> {
        let mut a = Arrays::default();
        let root = self.node(&mut a);
        a.check(root)
    }
}

fn metric(a: &mut Arrays, class: &str, vec: &[f64], (r, c): (u64, u64)) -> Node {
    let vec_node = a.f64(&[vec.len() as u64], vec);
    let mat = a.f64(&[r, c], &vec![0.0; (r * c) as usize]);
    new_obj(
        &format!("{METRICS}{class}"),
        vec![Node::Float(2.0), vec_node, mat],
    )
}

#[test]
fn trees_as_scikit_learn_writes_them_pass() {
    TreeSpec::new(KD).check().unwrap();
    TreeSpec::new(BALL).check().unwrap();
    TreeSpec::new(BALL)
        .with_metric("MahalanobisDistance64", vec![0.0], (2, 2))
        .check()
        .unwrap();
    TreeSpec::new(BALL)
        .with_metric("SEuclideanDistance64", vec![1.0, 2.0], (1, 1))
        .check()
        .unwrap();
    TreeSpec::new(KD)
        .with_metric("MinkowskiDistance64", vec![], (1, 1))
        .check()
        .unwrap();
    TreeSpec::new(KD)
        .with_metric("MinkowskiDistance64", vec![1.0, 3.0], (1, 1))
        .check()
        .unwrap();
    let mut s = TreeSpec::new("sklearn.neighbors._kd_tree.KDTree32").with_metric(
        "EuclideanDistance32",
        vec![0.0],
        (1, 1),
    );
    s.float32 = true;
    s.check().unwrap();
    let mut s = TreeSpec::new(BALL);
    s.sample_weight = Some(vec![1.0, 2.0, 1.0, 0.5]);
    s.check().unwrap();
}

#[test]
fn hostile_tree_indices_are_refused() {
    let mut s = TreeSpec::new(KD);
    s.idx[1] = 4; // beyond the 4 points
    refused(s.check(), "permutation");
    let mut s = TreeSpec::new(KD);
    s.idx[1] = -1;
    refused(s.check(), "permutation");
    let mut s = TreeSpec::new(KD);
    s.idx = vec![0, 0, 1, 2]; // not a permutation
    refused(s.check(), "permutation");
    let mut s = TreeSpec::new(KD);
    s.idx = vec![0, 1, 2];
    refused(s.check(), "idx_array");
    let mut s = TreeSpec::new(KD);
    s.nodes[2] = (2, 5, 1); // a leaf past the end of idx_array
    refused(s.check(), "node 2 covers");
    let mut s = TreeSpec::new(KD);
    s.nodes[1] = (3, 2, 1); // end before start
    refused(s.check(), "node 1 covers");
    let mut s = TreeSpec::new(BALL);
    s.nodes[1] = (0, 2, 0); // a non-leaf whose children 3 and 4 do not exist
    refused(s.check(), "children");
}

#[test]
fn hostile_tree_sizes_are_refused() {
    let mut s = TreeSpec::new(KD);
    s.n_nodes = 7; // node_data has 3
    refused(s.check(), "n_nodes");
    let mut s = TreeSpec::new(KD);
    s.n_levels = 3;
    refused(s.check(), "n_levels");
    let mut s = TreeSpec::new(KD);
    s.n_levels = 1;
    s.n_nodes = 1;
    refused(s.check(), "3 nodes, but n_nodes is 1");
    let mut s = TreeSpec::new(KD);
    s.n_levels = 64;
    refused(s.check(), "n_levels");
    let mut s = TreeSpec::new(KD);
    s.bounds_rows = 1; // a KD tree has lower and upper bounds
    refused(s.check(), "node_bounds");
    let mut s = TreeSpec::new(BALL);
    s.bounds_rows = 2;
    refused(s.check(), "node_bounds");
    let mut s = TreeSpec::new(KD);
    s.leaf_size = 0;
    refused(s.check(), "leaf_size");
    let mut s = TreeSpec::new(BALL);
    s.sample_weight = Some(vec![1.0, 1.0]);
    refused(s.check(), "sample_weight");
    let mut s = TreeSpec::new(KD);
    s.n = 0;
    s.idx = vec![];
    s.nodes = vec![(0, 0, 1)];
    s.n_levels = 1;
    s.n_nodes = 1;
    refused(s.check(), "empty");
    // A 32-bit tree with 64-bit data.
    let s = TreeSpec::new("sklearn.neighbors._kd_tree.KDTree32").with_metric(
        "EuclideanDistance32",
        vec![0.0],
        (1, 1),
    );
    refused(s.check(), "float32");
}

#[test]
fn tree_metrics_must_fit_the_tree() {
    // No metric: the queries would call through None.
    let mut s = TreeSpec::new(KD);
    s.metric = None;
    refused(s.check(), "DistanceMetric");
    // A 32-bit metric in a 64-bit tree.
    refused(
        TreeSpec::new(KD)
            .with_metric("EuclideanDistance32", vec![0.0], (1, 1))
            .check(),
        "not a metric",
    );
    // Mahalanobis is not a KD tree metric.
    refused(
        TreeSpec::new(KD)
            .with_metric("MahalanobisDistance64", vec![0.0], (2, 2))
            .check(),
        "not a metric",
    );
    // A Mahalanobis matrix for 1 dimension in a 2-d tree: its buffer would overflow.
    refused(
        TreeSpec::new(BALL)
            .with_metric("MahalanobisDistance64", vec![0.0], (1, 1))
            .check(),
        "dimensions",
    );
    refused(
        TreeSpec::new(BALL)
            .with_metric("MahalanobisDistance64", vec![0.0], (2, 1))
            .check(),
        "square",
    );
    refused(
        TreeSpec::new(BALL)
            .with_metric("SEuclideanDistance64", vec![1.0], (1, 1))
            .check(),
        "variances",
    );
    refused(
        TreeSpec::new(KD)
            .with_metric("MinkowskiDistance64", vec![1.0], (1, 1))
            .check(),
        "weights",
    );
    refused(
        TreeSpec::new(KD)
            .with_metric("DistanceMetric64", vec![0.0], (1, 1))
            .check(),
        "not a metric",
    );
}

#[test]
fn a_metric_shared_by_trees_of_other_dimensions_is_refused() {
    let mut a = Arrays::default();
    let shared = Node::Shared {
        id: 1,
        node: Box::new(metric(&mut a, "MinkowskiDistance64", &[1.0, 2.0], (1, 1))),
    };
    let mut two = TreeSpec::new(BALL);
    two.metric = None;
    let mut three = TreeSpec::new(BALL);
    three.metric = None;
    three.d = 3;
    three.metric = None;
    let with = |node: Node, m: Node| match node {
        Node::Object(mut o) => {
            if let Some(Node::Tuple(items)) = &mut o.state {
                items[11] = m;
            }
            Node::Object(o)
        }
        other => other,
    };
    let first = with(two.node(&mut a), shared);
    let second = with(three.node(&mut a), Node::Ref(1));
    refused(a.check(Node::List(vec![first, second])), "shared by trees");
}

#[test]
fn standalone_metrics() {
    let check_metric = |class: &str, vec: &[f64], mat: (u64, u64)| {
        let mut a = Arrays::default();
        let root = metric(&mut a, class, vec, mat);
        a.check(root)
    };
    check_metric("MahalanobisDistance64", &[0.0], (3, 3)).unwrap();
    check_metric("SEuclideanDistance32", &[1.0, 2.0, 3.0], (1, 1)).unwrap();
    check_metric("HammingDistance64", &[0.0], (1, 1)).unwrap();
    refused(
        check_metric("MahalanobisDistance64", &[0.0], (3, 1)),
        "square",
    );
    refused(check_metric("DistanceMetric64", &[0.0], (1, 1)), "abstract");
    // p must be a positive number.
    let mut a = Arrays::default();
    let vec = a.f64(&[1], &[0.0]);
    let mat = a.f64(&[1, 1], &[0.0]);
    let root = new_obj(
        &format!("{METRICS}ManhattanDistance64"),
        vec![Node::Str("x".into()), vec, mat],
    );
    refused(a.check(root), "positive");
    // vec must be a 1-d float64 array.
    let mut a = Arrays::default();
    let vec = a.i64(&[1, 2]);
    let mat = a.f64(&[1, 1], &[0.0]);
    let root = new_obj(
        &format!("{METRICS}ManhattanDistance64"),
        vec![Node::Float(1.0), vec, mat],
    );
    refused(a.check(root), "float64");
    // PyFuncDistance carries a named function and a dict of keyword arguments.
    let pyfunc = |func: Node, kwargs: Node| {
        let mut a = Arrays::default();
        let vec = a.f64(&[1], &[0.0]);
        let mat = a.f64(&[1, 1], &[0.0]);
        let root = new_obj(
            &format!("{METRICS}PyFuncDistance64"),
            vec![Node::Float(2.0), vec, mat, func, kwargs],
        );
        a.check(root)
    };
    pyfunc(
        Node::Global("sklearn.metrics.pairwise.euclidean_distances".into()),
        Node::Dict(vec![]),
    )
    .unwrap();
    refused(pyfunc(Node::Str("f".into()), Node::Dict(vec![])), "func");
    refused(
        pyfunc(
            Node::Global("sklearn.metrics.pairwise.euclidean_distances".into()),
            Node::List(vec![]),
        ),
        "kwargs",
    );
    // Three items are not a PyFuncDistance state.
    let mut a = Arrays::default();
    let root = metric(&mut a, "PyFuncDistance64", &[0.0], (1, 1));
    refused(a.check(root), "func, kwargs");
    // A metric built by a call is refused.
    let a = Arrays::default();
    let root = Node::Object(Box::new(Object {
        class: format!("{METRICS}EuclideanDistance64"),
        construct: Construct::Call { args: vec![] },
        state: None,
        list_items: vec![],
        dict_items: vec![],
    }));
    refused(a.check(root), "created empty");
}

/// An SVC on 2 features with 3 classes and 4 support vectors (1, 2 and 1 per class).
struct SvmSpec {
    class: &'static str,
    support: Vec<i32>,
    sv_shape: (u64, u64),
    n_support: Vec<i32>,
    dual_coef: (u64, u64),
    intercept: u64,
    prob: u64,
    probability: bool,
    kernel: Node,
    shape_fit: i64,
    classes: u64,
    attrs: Vec<(&'static str, Node)>,
}

impl SvmSpec {
    fn svc() -> SvmSpec {
        SvmSpec {
            class: "sklearn.svm._classes.SVC",
            support: vec![0, 3, 5, 9],
            sv_shape: (4, 2),
            n_support: vec![1, 2, 1],
            dual_coef: (2, 4),
            intercept: 3,
            prob: 3,
            probability: true,
            kernel: Node::Str("rbf".into()),
            shape_fit: 10,
            classes: 3,
            attrs: vec![],
        }
    }

    fn nusvr() -> SvmSpec {
        SvmSpec {
            class: "sklearn.svm._classes.NuSVR",
            n_support: vec![4, 0],
            dual_coef: (1, 4),
            intercept: 1,
            prob: 0,
            probability: false,
            ..SvmSpec::svc()
        }
    }

    fn node(&self, a: &mut Arrays) -> Node {
        let (r, c) = self.sv_shape;
        let (dr, dc) = self.dual_coef;
        let classes: Vec<i64> = (0..self.classes as i64).collect();
        let mut attrs = vec![
            ("kernel", self.kernel.clone()),
            ("degree", Node::Int(3)),
            ("coef0", Node::Float(0.0)),
            ("_sparse", Node::Bool(false)),
            ("n_features_in_", Node::Int(2)),
            ("_gamma", Node::Float(0.5)),
            ("_effective_probability", Node::Bool(self.probability)),
            ("support_", a.i32(&self.support)),
            (
                "support_vectors_",
                a.f64(&[r, c], &vec![0.5; (r * c) as usize]),
            ),
            ("_n_support", a.i32(&self.n_support)),
            (
                "_dual_coef_",
                a.f64(&[dr, dc], &vec![1.0; (dr * dc) as usize]),
            ),
            (
                "_intercept_",
                a.f64(&[self.intercept], &vec![0.0; self.intercept as usize]),
            ),
            (
                "_probA",
                a.f64(&[self.prob], &vec![-1.0; self.prob as usize]),
            ),
            (
                "_probB",
                a.f64(&[self.prob], &vec![0.0; self.prob as usize]),
            ),
            ("fit_status_", Node::Int(0)),
            (
                "shape_fit_",
                Node::Tuple(vec![Node::Int(self.shape_fit), Node::Int(2)]),
            ),
        ];
        if self.class.ends_with("SVC") {
            attrs.push(("classes_", a.i64(&classes)));
            attrs.push((
                "class_weight_",
                a.f64(&[self.classes], &vec![1.0; self.classes as usize]),
            ));
        }
        for (k, v) in &self.attrs {
            attrs.retain(|(name, _)| name != k);
            attrs.push((k, v.clone()));
        }
        object(self.class, attrs)
    }

    fn check(&self) -> Result<(), InferError> {
        let mut a = Arrays::default();
        let root = self.node(&mut a);
        a.check(root)
    }
}

#[test]
fn libsvm_models_as_scikit_learn_writes_them_pass() {
    SvmSpec::svc().check().unwrap();
    SvmSpec::nusvr().check().unwrap();
    let mut s = SvmSpec::svc();
    s.probability = false;
    s.prob = 0;
    s.check().unwrap();
    // A precomputed kernel: no support vectors, support_ indexes the training samples.
    let mut s = SvmSpec::svc();
    s.kernel = Node::Str("precomputed".into());
    s.sv_shape = (0, 0);
    s.check().unwrap();
    // Not fitted: nothing reaches libsvm.
    Arrays::default()
        .check(object(
            "sklearn.svm._classes.SVC",
            vec![("kernel", Node::Str("rbf".into()))],
        ))
        .unwrap();
}

#[test]
fn hostile_libsvm_counts_are_refused() {
    let mut s = SvmSpec::svc();
    s.n_support = vec![1, 2, 100]; // more vectors than support_ holds
    refused(s.check(), "add up to 103");
    let mut s = SvmSpec::svc();
    s.n_support = vec![1, -1, 4];
    refused(s.check(), "negative");
    let mut s = SvmSpec::svc();
    s.n_support = vec![4];
    refused(s.check(), "at least 2 classes");
    let mut s = SvmSpec::svc();
    s.n_support = vec![1, 1, 1, 1];
    s.dual_coef = (3, 4);
    s.intercept = 6;
    s.prob = 6;
    refused(s.check(), "4 support counts for 3 classes");
    let mut s = SvmSpec::nusvr();
    s.n_support = vec![4, 0, 0];
    refused(s.check(), "2 support counts");
}

#[test]
fn hostile_libsvm_arrays_are_refused() {
    let mut s = SvmSpec::svc();
    s.dual_coef = (2, 3);
    refused(s.check(), "_dual_coef_");
    let mut s = SvmSpec::svc();
    s.dual_coef = (1, 4);
    refused(s.check(), "_dual_coef_");
    let mut s = SvmSpec::svc();
    s.intercept = 1;
    refused(s.check(), "_intercept_");
    let mut s = SvmSpec::svc();
    s.prob = 1;
    refused(s.check(), "_probA");
    let mut s = SvmSpec::svc();
    s.prob = 0; // probabilities on, but no Platt parameters
    refused(s.check(), "_probA");
    let mut s = SvmSpec::svc();
    s.sv_shape = (3, 2);
    refused(s.check(), "3 rows for 4 support vectors");
    let mut s = SvmSpec::svc();
    s.sv_shape = (4, 5);
    refused(s.check(), "5 columns");
    let mut s = SvmSpec::svc();
    s.support[2] = 10; // beyond the 10 training samples
    refused(s.check(), "index 10");
    let mut s = SvmSpec::svc();
    s.kernel = Node::Str("precomputed".into());
    s.sv_shape = (0, 0);
    s.support[0] = -3;
    refused(s.check(), "index -3");
    let mut s = SvmSpec::nusvr();
    s.dual_coef = (1, 5);
    refused(s.check(), "_dual_coef_");
}

#[test]
fn hostile_libsvm_settings_are_refused() {
    let mut s = SvmSpec::svc();
    s.attrs.push(("_impl", Node::Str("epsilon_svr".into())));
    refused(s.check(), "_impl");
    let mut s = SvmSpec::svc();
    s.kernel = Node::Str("custom".into());
    refused(s.check(), "kernel");
    let mut s = SvmSpec::svc();
    s.kernel = Node::Global("numpy.minimum".into());
    refused(s.check(), "kernel");
    // A callable kernel needs the training samples it is evaluated against.
    let mut s = SvmSpec::svc();
    s.kernel = Node::Global("sklearn.metrics.pairwise.rbf_kernel".into());
    refused(s.check(), "_BaseLibSVM__Xfit");
    let mut s = SvmSpec::svc();
    s.kernel = Node::Global("sklearn.metrics.pairwise.rbf_kernel".into());
    s.attrs
        .push(("_BaseLibSVM__Xfit", Node::List(vec![Node::Int(0); 10])));
    s.check().unwrap();
    let mut s = SvmSpec::svc();
    s.kernel = Node::Global("sklearn.metrics.pairwise.rbf_kernel".into());
    s.attrs
        .push(("_BaseLibSVM__Xfit", Node::List(vec![Node::Int(0); 3])));
    refused(s.check(), "_BaseLibSVM__Xfit");
    let mut s = SvmSpec::svc();
    s.attrs.push(("_sparse", Node::Bool(true)));
    refused(s.check(), "support_vectors_");
    let mut s = SvmSpec::svc();
    s.attrs.push(("degree", Node::Int(-1)));
    refused(s.check(), "degree");
    let mut s = SvmSpec::svc();
    s.attrs.push(("fit_status_", Node::Int(7)));
    refused(s.check(), "fit_status_");
    let base = SvmSpec {
        class: "sklearn.svm._base.BaseSVC",
        ..SvmSpec::svc()
    };
    refused(base.check(), "abstract");
}

/// A sparse SVC: support vectors and dual coefficients are CSR matrices.
fn sparse_svc(a: &mut Arrays, sv_rows: i64, sv_cols: i64, coef_nnz: usize) -> Node {
    let csr = |a: &mut Arrays, rows: i64, cols: i64, nnz: usize| {
        let per_row = if rows > 0 { nnz / rows as usize } else { 0 };
        let indptr: Vec<i32> = (0..=rows).map(|r| (r as usize * per_row) as i32).collect();
        let indices: Vec<i32> = (0..nnz)
            .map(|k| (k % per_row.max(1)) as i32 % cols.max(1) as i32)
            .collect();
        object(
            "scipy.sparse._csr.csr_matrix",
            vec![
                (
                    "_shape",
                    Node::Tuple(vec![Node::Int(rows), Node::Int(cols)]),
                ),
                ("data", a.f64(&[nnz as u64], &vec![1.0; nnz])),
                ("indices", a.i32(&indices)),
                ("indptr", a.i32(&indptr)),
            ],
        )
    };
    let sv = csr(a, sv_rows, sv_cols, sv_rows.max(0) as usize * 2);
    let coef = csr(a, 2, 4, coef_nnz);
    object(
        "sklearn.svm._classes.SVC",
        vec![
            ("kernel", Node::Str("rbf".into())),
            ("degree", Node::Int(3)),
            ("coef0", Node::Float(0.0)),
            ("_sparse", Node::Bool(true)),
            ("n_features_in_", Node::Int(2)),
            ("_gamma", Node::Float(0.5)),
            ("_effective_probability", Node::Bool(false)),
            ("support_", a.i32(&[0, 1, 2, 3])),
            ("support_vectors_", sv),
            ("_n_support", a.i32(&[1, 2, 1])),
            ("_dual_coef_", coef),
            ("_intercept_", a.f64(&[3], &[0.0; 3])),
            ("_probA", a.f64(&[0], &[])),
            ("_probB", a.f64(&[0], &[])),
            ("shape_fit_", Node::Tuple(vec![Node::Int(10), Node::Int(2)])),
            ("classes_", a.i64(&[0, 1, 2])),
        ],
    )
}

#[test]
fn sparse_libsvm_models() {
    let mut a = Arrays::default();
    let root = sparse_svc(&mut a, 4, 2, 8);
    a.check(root).unwrap();
    let mut a = Arrays::default();
    let root = sparse_svc(&mut a, 3, 2, 8);
    refused(a.check(root), "3 rows for 4 support vectors");
    let mut a = Arrays::default();
    let root = sparse_svc(&mut a, 4, 3, 8);
    refused(a.check(root), "3 columns");
    // Dual coefficients with stored zeros left out: libsvm would copy 8 values from 6.
    let mut a = Arrays::default();
    let root = sparse_svc(&mut a, 4, 2, 6);
    refused(a.check(root), "stored values");
}

#[test]
fn node_data_fields_are_read_by_position() {
    // node_data with the right names in another order is refused: the compiled code reads
    // the fields by position.
    let mut s = TreeSpec::new(KD);
    s.metric = Some(("EuclideanDistance64".into(), vec![0.0], (1, 1)));
    let mut a = Arrays::default();
    let Node::Object(tree) = s.node(&mut a) else {
        unreachable!()
    };
    let swapped = structured(
        vec![
            ("is_leaf", scalar(Kind::Int, 8), 0),
            ("idx_end", scalar(Kind::Int, 8), 8),
            ("idx_start", scalar(Kind::Int, 8), 16),
            ("radius", scalar(Kind::Float, 8), 24),
        ],
        32,
    );
    a.0[2].0 = swapped;
    refused(a.check(Node::Object(tree)), "NodeData layout");
}

/// The array bytes a loader read and verified already, by index (see `guard::Preread`).
struct Held(Vec<Option<Vec<u8>>>);

impl skvault_infer::guard::Preread for Held {
    fn holds(&self, index: usize) -> bool {
        matches!(self.0.get(index), Some(Some(_)))
    }

    fn bytes(&self, index: usize) -> Option<skvault_format::Result<&[u8]>> {
        Some(Ok(self.0.get(index)?.as_deref()?))
    }
}

/// A DecisionTreeRegressor over 2 features whose tree has `records` as its nodes (`node_dtype`),
/// as `Tree(n_features, n_classes, n_outputs)` with its state dict.
fn decision_tree(a: &mut Arrays, records: &[Vec<u8>]) -> Node {
    let n_classes = a.i64(&[1]);
    let nodes = a.add(
        skvault_format::testing::node_dtype(),
        &[records.len() as u64],
        records.concat(),
    );
    let values = a.f64(&[records.len() as u64, 1, 1], &vec![0.0; records.len()]);
    let n = records.len() as i64;
    let tree = Node::Object(Box::new(Object {
        class: "sklearn.tree._tree.Tree".into(),
        construct: Construct::Call {
            args: vec![Node::Int(2), n_classes, Node::Int(1)],
        },
        state: Some(Node::Dict(vec![
            (Node::Str("max_depth".into()), Node::Int(2)),
            (Node::Str("node_count".into()), Node::Int(n)),
            (Node::Str("nodes".into()), nodes),
            (Node::Str("values".into()), values),
        ])),
        list_items: vec![],
        dict_items: vec![],
    }));
    object(
        "sklearn.tree._classes.DecisionTreeRegressor",
        vec![("n_features_in_", Node::Int(2)), ("tree_", tree)],
    )
}

/// The node records of a tree with one split (on feature 0) and its two leaves.
fn one_split() -> [Vec<u8>; 3] {
    use skvault_format::testing::record;
    [
        record(1, 2, 0, 0.5, 0),
        record(-1, -1, -2, -2.0, 0),
        record(-1, -1, -2, -2.0, 0),
    ]
}

/// With a loader's pre-read arrays, the checks judge those bytes (what the classes will
/// receive), not the file's: hostile pre-read nodes are refused even though the file's pass,
/// and the file's own nodes pre-read pass.
#[test]
fn checks_read_the_arrays_a_loader_holds() {
    use skvault_format::testing::record;
    use skvault_infer::guard::check_with;
    let good = one_split();
    let mut a = Arrays::default();
    let root = decision_tree(&mut a, &good);
    a.check(root.clone()).unwrap();
    let nodes =
        a.0.iter()
            .position(|(d, _, _)| matches!(d, DType::Structured { .. }))
            .unwrap();
    let file = a.file(root);
    let mut held = Held(vec![None; a.0.len()]);
    held.0[nodes] = Some(good.concat());
    check_with(&file, Some(&held)).unwrap();
    // Node 0's left child points back at itself: a cycle the compiled tree would follow.
    held.0[nodes] = Some([record(0, 2, 0, 0.5, 0), good[1].clone(), good[2].clone()].concat());
    refused(
        check_with(&file, Some(&held)),
        "node 0 has children 0 and 2",
    );
}

/// Records what the checks report, by class, in order.
#[derive(Default)]
struct Reports(std::cell::RefCell<Vec<String>>);

impl skvault_infer::guard::Progress for Reports {
    fn passed(&self, obj: &Object) {
        let short = obj.class.rsplit('.').next().unwrap_or_default();
        self.0.borrow_mut().push(short.to_string());
    }
}

/// A loader that builds while the checks run creates each guarded object once it is
/// reported: a forest's trees are reported one by one as they pass (before the forest
/// itself), each object once, and nothing after a refusal.
#[test]
fn checks_report_each_object_as_it_passes_and_nothing_after_a_refusal() {
    use skvault_format::testing::record;
    use skvault_infer::guard::check_reporting;
    let good = one_split();
    // Node 0's left child points back at itself.
    let cycle = [record(0, 2, 0, 0.5, 0), good[1].clone(), good[2].clone()];
    let forest = |a: &mut Arrays, trees: &[&[Vec<u8>]]| {
        let estimators = trees.iter().map(|t| decision_tree(a, t)).collect();
        object(
            "sklearn.ensemble._forest.RandomForestRegressor",
            vec![
                ("n_features_in_", Node::Int(2)),
                ("estimators_", Node::List(estimators)),
            ],
        )
    };
    let mut a = Arrays::default();
    let root = forest(&mut a, &[&good, &good]);
    let reports = Reports::default();
    check_reporting(&a.file(root), None, Some(&reports)).unwrap();
    // The trees' own estimators hold them too, and are checked after the forest.
    let holder = "DecisionTreeRegressor";
    assert_eq!(
        *reports.0.borrow(),
        ["Tree", "Tree", "RandomForestRegressor", holder, holder]
    );

    let mut a = Arrays::default();
    let root = forest(&mut a, &[&good, &cycle, &good]);
    let reports = Reports::default();
    refused(
        check_reporting(&a.file(root), None, Some(&reports)),
        "node 0 has children 0 and 2",
    );
    assert_eq!(*reports.0.borrow(), ["Tree"]);
}
