//! Where each array of a file goes when it is loaded, decided from the file alone.
//!
//! A loader makes one array per entry of the table, in one of three ways ([`Place`]): a view
//! of the file's own bytes (a mapped file, uncompressed blob), a buffer of its own, or a range
//! of one shared pool. The pool holds the arrays that only scikit-learn's `Tree.__setstate__`
//! will see (see [`copied_by_trees`]): it copies them into memory it owns, so they need no
//! lasting buffer, and a forest has thousands of them. The plan also lists the work
//! ([`Task`]) that [`crate::fill::Fill`] does for the loader, in table order, which is the
//! order the writer met the arrays in and so the order a builder asks for them.

use crate::error::{FormatError, Result};
use crate::node::{self, Node};
use crate::write::worth_threads;
use crate::{Manifest, SkvFile};

/// Alignment of each array in the pool: that of a blob in the file (FORMAT.md 2.4), more than
/// any dtype needs.
pub const POOL_ALIGN: usize = 64;

/// How one array of the table reaches memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A view of the file's bytes, `offset` bytes from its start (the uncompressed blob of a
    /// non-empty array; the file must stay mapped as long as the view lives).
    View { offset: u64 },
    /// A buffer of its own of `len` bytes (0 for an empty array, which needs no filling).
    Own { len: usize },
    /// `len` bytes (never 0) at `start` of the pool, a buffer of [`LoadPlan::pool_len`] bytes
    /// that can be freed once the load is over.
    Pool { start: usize, len: usize },
}

/// Work for [`crate::fill::Fill`]: every array that is not a view (and not empty) is filled,
/// and views are verified in place when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Read (decompress, maybe verify) array `index` into its `len`-byte buffer or pool range.
    Fill { index: usize, len: usize },
    /// Check the digest of the viewed array `index`.
    Verify { index: usize },
}

impl Task {
    pub fn index(&self) -> usize {
        match *self {
            Task::Fill { index, .. } | Task::Verify { index } => index,
        }
    }
}

/// What the loader can do with the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// The loader exposes the file's bytes (a memory map) as arrays: uncompressed arrays are
    /// viewed rather than copied.
    pub view_in_place: bool,
    /// Views are verified (hashed where they lie); otherwise they are trusted unread, which
    /// is what keeps a mapped load from reading the whole file.
    pub verify_views: bool,
}

/// The load plan of one file: a [`Place`] per array, the pool size and the tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    places: Vec<Place>,
    pool_len: usize,
    tasks: Vec<Task>,
    /// Bytes the tasks read or hash, which decides whether threads are worth starting.
    work: usize,
}

impl LoadPlan {
    pub fn new(file: &SkvFile, options: PlanOptions) -> Result<LoadPlan> {
        let manifest = file.manifest();
        let pooled = copied_by_trees(manifest);
        let too_large = |index| FormatError::layout(index, "array too large");
        let mut plan = LoadPlan {
            places: Vec::with_capacity(manifest.arrays.len()),
            pool_len: 0,
            tasks: Vec::new(),
            work: 0,
        };
        for (index, entry) in manifest.arrays.iter().enumerate() {
            let len = usize::try_from(entry.raw_length).map_err(|_| too_large(index))?;
            let viewed = if options.view_in_place && len > 0 {
                file.mapped_bytes(index)
            } else {
                None
            };
            let place = if let Some(bytes) = viewed {
                if options.verify_views {
                    plan.tasks.push(Task::Verify { index });
                    plan.work = plan.work.saturating_add(bytes.len());
                }
                Place::View {
                    offset: file.blob_offset(index)?,
                }
            } else if len > 0 && pooled[index] {
                let start = plan
                    .pool_len
                    .checked_next_multiple_of(POOL_ALIGN)
                    .ok_or_else(|| too_large(index))?;
                plan.pool_len = start.checked_add(len).ok_or_else(|| too_large(index))?;
                Place::Pool { start, len }
            } else {
                Place::Own { len }
            };
            if let Place::Own { len } | Place::Pool { len, .. } = place {
                if len > 0 {
                    plan.tasks.push(Task::Fill { index, len });
                    plan.work = plan.work.saturating_add(len);
                }
            }
            plan.places.push(place);
        }
        Ok(plan)
    }

    /// One place per array of the table, by index.
    pub fn places(&self) -> &[Place] {
        &self.places
    }

    /// Size of the pool; 0 when no array is pooled.
    pub fn pool_len(&self) -> usize {
        self.pool_len
    }

    /// The tasks, in table order; no array has more than one.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Bytes the tasks read or hash.
    pub fn work_bytes(&self) -> usize {
        self.work
    }

    /// Worker threads for the tasks: the rayon pool when the work is large enough to gain from
    /// it, else none (the caller fills everything at once, which is quicker for small files).
    pub fn threads(&self) -> usize {
        if worth_threads(self.work) {
            crate::threads::current_num_threads()
        } else {
            0
        }
    }
}

/// For each array of the table, whether only scikit-learn's `Tree.__setstate__` will see it:
/// it is the `nodes` or `values` of a `sklearn.tree._tree.Tree` state dict, written directly
/// there (not under a shared id, so no reference can reach it) and used nowhere else in the
/// file, validation tree included. `Tree.__setstate__` copies both into memory it owns, so
/// such an array is needed only while the load runs. (The reader already refuses an array
/// referenced twice; the uses are counted again so that this decision, which lets a buffer
/// be freed early, does not rest on a check made elsewhere.)
pub fn copied_by_trees(manifest: &Manifest) -> Vec<bool> {
    let mut uses = vec![0u32; manifest.arrays.len()];
    let mut candidates = Vec::new();
    let mut visit = |n: &Node| match n {
        Node::Array(i) => {
            if let Some(count) = uses.get_mut(*i) {
                *count = count.saturating_add(1);
            }
        }
        Node::Object(o) if o.class == "sklearn.tree._tree.Tree" => {
            if let Some(Node::Dict(items)) = &o.state {
                for (k, v) in items {
                    if let (Node::Str(k), Node::Array(i)) = (k, v) {
                        if k == "nodes" || k == "values" {
                            candidates.push(*i);
                        }
                    }
                }
            }
        }
        _ => {}
    };
    for tree in manifest.trees() {
        node::walk(tree, &mut visit);
    }
    let mut copied = vec![false; manifest.arrays.len()];
    for i in candidates {
        if uses.get(i) == Some(&1) {
            copied[i] = true;
        }
    }
    copied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{object, TreeSpec};
    use crate::{prepare, ArrayInput, Codec, DType, Order, WriteOptions};

    fn f64s(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| (i as f64).to_le_bytes()).collect()
    }

    /// A file of `root` over `arrays` (`<f8` vectors), written with `codec`.
    fn file(root: Node, arrays: &[Vec<u8>], codec: Codec) -> SkvFile {
        let dtype = DType::from_json(&serde_json::json!("<f8"), "/").unwrap();
        let inputs: Vec<ArrayInput<'_>> = arrays
            .iter()
            .map(|data| ArrayInput {
                dtype: dtype.clone(),
                shape: vec![data.len() as u64 / 8],
                order: Order::C,
                data,
            })
            .collect();
        let options = WriteOptions { codec, level: None };
        let bytes = prepare(root, &inputs, Default::default(), options)
            .unwrap()
            .to_vec()
            .unwrap();
        SkvFile::from_bytes(bytes).unwrap()
    }

    fn tree(nodes: Node, values: Node) -> Node {
        object(
            "sklearn.tree._tree.Tree",
            vec![("nodes", nodes), ("values", values)],
        )
    }

    fn copied(root: Node, n_arrays: usize) -> Vec<bool> {
        let arrays: Vec<Vec<u8>> = (0..n_arrays).map(|i| f64s(i + 1)).collect();
        copied_by_trees(file(root, &arrays, Codec::None).manifest())
    }

    #[test]
    fn tree_nodes_and_values_used_once_are_copied() {
        let root = Node::List(vec![
            tree(Node::Array(0), Node::Array(1)),
            tree(Node::Array(2), Node::Array(3)),
        ]);
        assert_eq!(copied(root, 4), [true; 4]);
    }

    /// The reader refuses an array referenced twice, so this needs a manifest edited after
    /// reading: the analysis does not rely on that check.
    #[test]
    fn an_array_used_twice_is_not_copied() {
        let root = Node::List(vec![tree(Node::Array(0), Node::Array(1)), Node::Array(2)]);
        let arrays: Vec<Vec<u8>> = (0..3).map(|i| f64s(i + 1)).collect();
        let mut manifest = file(root, &arrays, Codec::None).manifest().clone();
        manifest.root = Node::List(vec![tree(Node::Array(0), Node::Array(1)), Node::Array(1)]);
        assert_eq!(copied_by_trees(&manifest), [true, false, false]);
        manifest.validation = Some(Node::Array(0));
        assert_eq!(copied_by_trees(&manifest), [false, false, false]);
    }

    #[test]
    fn a_shared_array_or_other_keys_or_classes_are_not_copied() {
        let shared = Node::Shared {
            id: 7,
            node: Box::new(Node::Array(0)),
        };
        let other_key = object("sklearn.tree._tree.Tree", vec![("other", Node::Array(1))]);
        let other_class = object(
            "sklearn.tree._tree.NotTree",
            vec![("nodes", Node::Array(2))],
        );
        let root = Node::List(vec![tree(shared, Node::None), other_key, other_class]);
        assert_eq!(copied(root, 3), [false; 3]);
    }

    #[test]
    fn plan_of_a_tree_pools_its_arrays_aligned_in_table_order() {
        let bytes = TreeSpec::regressor().bytes().unwrap();
        let file = SkvFile::from_bytes(bytes).unwrap();
        let plan = LoadPlan::new(&file, PlanOptions::default()).unwrap();
        let lens: Vec<usize> = file
            .manifest()
            .arrays
            .iter()
            .map(|e| e.raw_length as usize)
            .collect();
        assert_eq!(
            plan.places(),
            [
                Place::Pool {
                    start: 0,
                    len: lens[0]
                },
                Place::Pool {
                    start: lens[0].next_multiple_of(POOL_ALIGN),
                    len: lens[1]
                },
            ]
        );
        assert_eq!(
            plan.pool_len(),
            lens[0].next_multiple_of(POOL_ALIGN) + lens[1]
        );
        assert_eq!(
            plan.tasks(),
            [
                Task::Fill {
                    index: 0,
                    len: lens[0]
                },
                Task::Fill {
                    index: 1,
                    len: lens[1]
                }
            ]
        );
        assert_eq!(plan.work_bytes(), lens[0] + lens[1]);
        assert_eq!(plan.threads(), 0, "a small file is filled at once");
    }

    #[test]
    fn views_only_for_nonempty_uncompressed_arrays_when_asked() {
        let root = Node::List((0..3).map(Node::Array).collect());
        // Large enough that zstd keeps the codec for the first; the empty one stays empty.
        let arrays = [vec![0u8; 1 << 16], Vec::new(), f64s(4)];
        // zstd is C code, which Miri cannot run.
        let codecs = if cfg!(miri) {
            vec![Codec::None]
        } else {
            vec![Codec::None, Codec::Zstd]
        };
        for codec in codecs {
            let file = file(root.clone(), &arrays, codec);
            let compressed = file.mapped_bytes(0).is_none();
            assert_eq!(compressed, codec == Codec::Zstd);
            let options = PlanOptions {
                view_in_place: true,
                verify_views: true,
            };
            let plan = LoadPlan::new(&file, options).unwrap();
            let places = plan.places();
            if compressed {
                assert_eq!(places[0], Place::Own { len: 1 << 16 });
                assert_eq!(
                    plan.tasks()[0],
                    Task::Fill {
                        index: 0,
                        len: 1 << 16
                    }
                );
            } else {
                let offset = file.blob_offset(0).unwrap();
                assert_eq!(places[0], Place::View { offset });
                assert_eq!(plan.tasks()[0], Task::Verify { index: 0 });
            }
            assert_eq!(places[1], Place::Own { len: 0 });
            assert!(plan.tasks().iter().all(|t| t.index() != 1));
            assert_eq!(plan.pool_len(), 0);

            let unverified = LoadPlan::new(
                &file,
                PlanOptions {
                    view_in_place: true,
                    verify_views: false,
                },
            )
            .unwrap();
            assert!(unverified
                .tasks()
                .iter()
                .all(|t| matches!(t, Task::Fill { .. })));
            let copied = LoadPlan::new(&file, PlanOptions::default()).unwrap();
            assert!(copied
                .places()
                .iter()
                .all(|p| matches!(p, Place::Own { .. })));
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "hashes 8 MiB: hours under Miri")]
    fn tasks_are_in_table_order_and_large_work_gets_threads() {
        let root = Node::List(vec![
            tree(Node::Array(0), Node::Array(1)),
            Node::Array(2),
            tree(Node::Array(3), Node::Array(4)),
        ]);
        let big = vec![1u8; 4 << 20];
        let arrays = [f64s(3), f64s(5), big.clone(), f64s(1), big];
        let plan =
            LoadPlan::new(&file(root, &arrays, Codec::None), PlanOptions::default()).unwrap();
        let indices: Vec<usize> = plan.tasks().iter().map(Task::index).collect();
        assert_eq!(indices, [0, 1, 2, 3, 4]);
        assert!(matches!(plan.places()[2], Place::Own { .. }));
        assert!(matches!(plan.places()[4], Place::Pool { .. }));
        assert!(worth_threads(plan.work_bytes()));
        assert_eq!(plan.threads(), crate::threads::current_num_threads());
    }
}
