//! What a run records for the scanner.

use crate::value::Global;

/// A global the stream names (each occurrence), with where it is.
#[derive(Debug, Clone)]
pub struct GlobalUse {
    pub global: Global,
    pub offset: u64,
}

/// Something the stream does that the globals alone do not show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Issue {
    /// REDUCE, NEWOBJ or OBJ calls a value that is not a global (the result of another call).
    ComputedCallable { opcode: &'static str, offset: u64 },
    /// BUILD sets attributes on a class or function named by a global.
    BuildOnGlobal { name: String, offset: u64 },
    /// `bytes(n)` / `bytearray(n)` with a large `n`: memory exhaustion without data.
    LargeAllocation { name: String, offset: u64 },
    /// A function (not a class, not a pickle helper) is called: pickles of models never do
    /// this, and conversion refuses it. Rates the file `unknown` at least.
    CallsFunction { name: String, offset: u64 },
    /// A numpy dtype whose state numpy's pickler never writes: flags or sizes that disagree
    /// with its fields or type (numpy would read object pointers from file bytes), a dtype
    /// made otherwise than by `numpy.dtype(typestr, False, True)`, or changed after use.
    ForgedDtype { reason: String, offset: u64 },
    /// SETITEM(S), APPEND(S) or ADDITEMS on something that is not a container the stream
    /// built, nor an instance of a class the loader creates: a call of its `__setitem__`,
    /// `append`, `extend` or `add` (a `numpy.memmap` writes to its file).
    ItemsCall {
        opcode: &'static str,
        target: String,
        offset: u64,
    },
    /// BUILD on what a function (not a class) returned: `__setstate__` of an object whose
    /// type the stream does not name.
    StateOfCallResult { name: String, offset: u64 },
}

impl Issue {
    /// True if the issue alone makes a file unsafe (else it makes it `unknown`).
    pub fn is_unsafe(&self) -> bool {
        !matches!(self, Issue::CallsFunction { .. })
    }
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Issue::ComputedCallable { opcode, offset } => write!(
                f,
                "{opcode} at offset {offset} calls a computed object, not a named global"
            ),
            Issue::BuildOnGlobal { name, offset } => write!(
                f,
                "BUILD at offset {offset} sets attributes of the global {name}"
            ),
            Issue::LargeAllocation { name, offset } => write!(
                f,
                "offset {offset} calls {name} with a large integer (memory exhaustion)"
            ),
            Issue::CallsFunction { name, offset } => {
                write!(f, "offset {offset} calls the function {name}, not a class")
            }
            Issue::ForgedDtype { reason, offset } => write!(
                f,
                "numpy dtype at offset {offset} is not one numpy writes: {reason}"
            ),
            Issue::ItemsCall {
                opcode,
                target,
                offset,
            } => write!(
                f,
                "{opcode} at offset {offset} calls a method of {target}, not a container the \
                 stream built"
            ),
            Issue::StateOfCallResult { name, offset } => write!(
                f,
                "BUILD at offset {offset} sets the state of what the function {name} returned"
            ),
        }
    }
}

/// What one run of the interpreter saw, across nested pickles.
#[derive(Debug, Default)]
pub struct Log {
    pub globals: Vec<GlobalUse>,
    pub issues: Vec<Issue>,
    /// Highest PROTO seen.
    pub protocol: Option<u8>,
    /// joblib arrays read (raw bytes skipped, or nested object-array pickles).
    pub joblib_reads: usize,
}
