//! Facts every reader of a record shares (`skvault inspect`, `skvault diff`, the model card,
//! the registry page): where each array sits in the object trees, which classes and
//! functions the trees name, sizes for people.

use std::collections::BTreeMap;

use skvault_format::node::Node;
use skvault_format::Construct;

/// Human-readable byte count.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"?"))
    }
}

/// Where each array sits in the object trees, e.g. `model.estimators_[3].tree_.nodes`.
pub fn array_paths(manifest: &skvault_format::Manifest) -> BTreeMap<usize, String> {
    census(manifest).array_paths
}

pub fn census(manifest: &skvault_format::Manifest) -> Census {
    let mut census = Census::default();
    census.visit(&manifest.root, "model");
    if let Some(v) = &manifest.validation {
        census.visit(v, "validation");
    }
    census
}

/// What a walk of the tree collects: where each array sits and how often each class appears.
#[derive(Default)]
pub struct Census {
    pub array_paths: BTreeMap<usize, String>,
    pub classes: BTreeMap<String, usize>,
    pub globals: BTreeMap<String, usize>,
}

impl Census {
    fn visit(&mut self, node: &Node, path: &str) {
        if let Node::Object(obj) = node {
            *self.classes.entry(obj.class.clone()).or_default() += 1;
        }
        let mut each = |n: &Node, p: String| self.visit(n, &p);
        match node {
            Node::Array(i) => {
                self.array_paths.insert(*i, path.to_string());
            }
            Node::Global(name) => *self.globals.entry(name.clone()).or_default() += 1,
            Node::Shared { node, .. } => each(node, path.to_string()),
            Node::List(items) | Node::Tuple(items) | Node::Set(items) | Node::FrozenSet(items) => {
                for (i, item) in items.iter().enumerate() {
                    each(item, format!("{path}[{i}]"));
                }
            }
            Node::ObjArray { items, .. } => {
                for (i, item) in items.iter().enumerate() {
                    each(item, format!("{path}.flat[{i}]"));
                }
            }
            Node::Dict(items) => {
                for (k, v) in items {
                    let key = match k {
                        Node::Str(s) => format!("{s:?}"),
                        Node::Int(i) => i.to_string(),
                        _ => "<key>".into(),
                    };
                    each(k, format!("{path}<key>"));
                    each(v, format!("{path}[{key}]"));
                }
            }
            Node::Object(obj) => {
                match &obj.construct {
                    Construct::New { args, .. } | Construct::Call { args } => {
                        for (i, a) in args.iter().enumerate() {
                            each(a, format!("{path}.<arg{i}>"));
                        }
                    }
                    Construct::Base { value, .. } => each(value, format!("{path}.<base>")),
                }
                match &obj.state {
                    Some(Node::Dict(items)) => {
                        for (k, v) in items {
                            match k {
                                Node::Str(s) => each(v, format!("{path}.{s}")),
                                _ => each(v, format!("{path}.<state>")),
                            }
                        }
                    }
                    Some(other) => each(other, format!("{path}.<state>")),
                    None => {}
                }
                for (i, item) in obj.list_items.iter().enumerate() {
                    each(item, format!("{path}[{i}]"));
                }
                for (k, v) in &obj.dict_items {
                    each(k, format!("{path}<key>"));
                    each(v, format!("{path}[<key>]"));
                }
            }
            Node::RandomState(n) | Node::Generator(n) => each(n, format!("{path}.<rng>")),
            Node::BitGenerator { state, .. } => each(state, format!("{path}.state")),
            Node::Slice(parts) => {
                for p in parts.iter() {
                    each(p, format!("{path}.<slice>"));
                }
            }
            _ => {}
        }
    }
}

pub fn root_class(node: &Node) -> String {
    match node {
        Node::Shared { node, .. } => root_class(node),
        Node::Object(obj) => obj.class.clone(),
        Node::Dict(_) => "dict".into(),
        Node::List(_) => "list".into(),
        Node::Tuple(_) => "tuple".into(),
        Node::Array(_) => "numpy.ndarray".into(),
        other => format!("{:?}", std::mem::discriminant(other)),
    }
}
