//! Resource limits: a hostile file fails with `LimitExceeded` instead of exhausting memory.

/// Bounds on what reading one file may allocate. The defaults accept any real scikit-learn
/// model (a 500-tree random forest stays far below each) on a machine with a few GiB free.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest decompressed stream of a compressed joblib file.
    pub max_decompressed: u64,
    /// Rough bound on the memory the interpreter allocates for values (stack, memo,
    /// containers), in bytes. Array bytes are borrowed from the input and not counted.
    pub max_alloc: u64,
    /// Most values on the stack, all MARK levels together.
    pub max_stack: usize,
    /// Most open MARKs at once.
    pub max_marks: usize,
    /// Most memo entries.
    pub max_memo: usize,
    /// Deepest nesting when converting to the object tree.
    pub max_depth: usize,
    /// Longest module or name of a global, in bytes.
    pub max_name_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_decompressed: 8 << 30,
            max_alloc: 4 << 30,
            max_stack: 10_000_000,
            max_marks: 100_000,
            max_memo: 10_000_000,
            max_depth: 120,
            max_name_len: 4096,
        }
    }
}
