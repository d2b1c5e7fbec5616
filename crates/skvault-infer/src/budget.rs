//! Bounds on building a model from a tree that shared references turn into a graph.
//!
//! The manifest's JSON is at most 127 levels deep, but a `ref` may point to any node
//! declared earlier: a chain of FeatureUnions, each holding a ref to the previous one, nests
//! as deep as the file is long, and a node whose two members are refs to the same lower
//! node doubles the model at every level (64 levels: 2^64 estimators from 640 bytes). The
//! built model is walked again by every prediction and by the exporters, so it is bounded
//! here, while it is built:
//!
//! - estimators nest at most [`MAX_DEPTH`] levels (a refless tree cannot reach 25);
//! - a node with an id is built once and shared ([`Budget::memo`]), and an id whose build
//!   reaches itself is a cycle, refused;
//! - the **work** of the model, counted as if every shared member were a copy of its own
//!   (one per estimator plus the elements of every array read), is at most
//!   [`WORK_FACTOR`] times what the file holds (its arrays' elements plus its nodes) plus
//!   [`WORK_SLACK`]. A model without refs reads each array once and stays far below.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use skvault_format::node::walk;
use skvault_format::SkvFile;

use crate::error::{InferError, Result};

/// Deepest nesting of estimators (Pipeline in FeatureUnion in ...), refs followed.
pub const MAX_DEPTH: usize = 64;
/// The model's work may be this many times the size of the file's content.
pub const WORK_FACTOR: u64 = 8;
/// ... plus this much, for models made of many small estimators.
pub const WORK_SLACK: u64 = 1 << 20;

/// What was built from a node with an id (an `Arc<dyn Estimator>` for the registry: the
/// budget does not name the type, so that `estimator` need not depend on it), and the work
/// its first build cost.
type Memo = HashMap<u64, (Arc<dyn Any + Send + Sync>, u64)>;

pub(crate) struct Budget {
    depth: Cell<usize>,
    work: Cell<u64>,
    limit: u64,
    memo: RefCell<Memo>,
    /// Ids whose build is under way: meeting one again is a cycle.
    open: RefCell<HashSet<u64>>,
}

impl Budget {
    pub fn new(file: &SkvFile) -> Budget {
        let m = file.manifest();
        let elements: u64 = m
            .arrays
            .iter()
            .map(|e| skvault_format::ArrayEntry::count(&e.shape).unwrap_or(u64::MAX))
            .fold(0u64, u64::saturating_add);
        let mut nodes = 0u64;
        for tree in m.trees() {
            walk(tree, &mut |_| nodes += 1);
        }
        Budget {
            depth: Cell::new(0),
            work: Cell::new(0),
            limit: elements
                .saturating_add(nodes)
                .saturating_mul(WORK_FACTOR)
                .saturating_add(WORK_SLACK),
            memo: RefCell::new(HashMap::new()),
            open: RefCell::new(HashSet::new()),
        }
    }

    /// The work done so far.
    pub fn work(&self) -> u64 {
        self.work.get()
    }

    /// Adds `n` units of work (array elements read, estimators built).
    pub fn charge(&self, n: u64, path: &str) -> Result<()> {
        let total = self.work.get().saturating_add(n);
        self.work.set(total);
        if total > self.limit {
            return Err(InferError::LimitExceeded {
                limit: "model work (estimators and array elements, shared members counted each time they are used)",
                max: self.limit,
                path: path.to_string(),
            });
        }
        Ok(())
    }

    /// Adds `n` units of work where no error can be returned (scans of lists and state
    /// dicts); the next [`Budget::charge`] fails if the limit has been passed.
    pub fn note(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.work.set(self.work.get().saturating_add(n));
    }

    /// Runs `f` one estimator level deeper.
    pub fn nested<T>(&self, path: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let depth = self.depth.get();
        if depth >= MAX_DEPTH {
            return Err(InferError::LimitExceeded {
                limit: "estimator nesting depth",
                max: MAX_DEPTH as u64,
                path: path.to_string(),
            });
        }
        self.depth.set(depth + 1);
        let out = f();
        self.depth.set(depth);
        out
    }

    /// What was already built for `id`, charging its work again (the model uses it once
    /// more). `T` is the type `remember` was given for it.
    pub fn recall<T: Clone + Send + Sync + 'static>(
        &self,
        id: u64,
        path: &str,
    ) -> Result<Option<T>> {
        let hit = self.memo.borrow().get(&id).cloned();
        match hit {
            Some((built, work)) => {
                self.charge(work, path)?;
                let built =
                    built
                        .downcast_ref::<T>()
                        .cloned()
                        .ok_or_else(|| InferError::Malformed {
                            path: path.to_string(),
                            message: format!(
                                "object {id} is used as two different kinds of object"
                            ),
                        })?;
                Ok(Some(built))
            }
            None if self.open.borrow().contains(&id) => Err(InferError::Malformed {
                path: path.to_string(),
                message: format!("object {id} contains itself (a cycle of references)"),
            }),
            None => Ok(None),
        }
    }

    /// Builds what `id` stands for with `f`, once; `recall` returns it afterwards.
    pub fn remember<T: Clone + Send + Sync + 'static>(
        &self,
        id: u64,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        self.open.borrow_mut().insert(id);
        let before = self.work();
        let built = f();
        self.open.borrow_mut().remove(&id);
        let built = built?;
        let work = self.work().saturating_sub(before);
        let stored: Arc<dyn Any + Send + Sync> = Arc::new(built.clone());
        self.memo.borrow_mut().insert(id, (stored, work));
        Ok(built)
    }
}
