//! Global names: how the unpickler resolves them, and how the scanner classifies them.

use skvault_format::trust::{is_dangerous, TrustSet};

use crate::compat;
use crate::value::Global;

/// Pickle helpers that conversion understands and replaces by tree nodes (the class arguments
/// of numpy's and joblib's array helpers among them): none of them can run code of the file's
/// choosing. Rated safe by the scanner, whatever the allow-list says.
pub const HELPERS: &[&str] = &[
    "_codecs.encode",
    "builtins.Ellipsis",
    "builtins.bytearray",
    "builtins.bytes",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "copyreg._reconstructor",
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "numpy._core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.numeric._frombuffer",
    "numpy.core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy.ma.core._mareconstruct",
    "numpy.ndarray",
    "numpy.random._mt19937.MT19937",
    "numpy.random._pcg64.PCG64",
    "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox",
    "numpy.random._pickle.__bit_generator_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._sfc64.SFC64",
    "numpy.random.bit_generator.SeedSequence",
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
];

/// Names (a global's last component) of functions and classes that open, read or write files
/// (or load pickles): `numpy.memmap` creates or truncates any path and SETITEM writes into it,
/// `numpy.ndarray.tofile`, `pandas.read_pickle`, `torch.load`, ...
const FILE_NAMES: &[&str] = &[
    "DataSource",
    "ExcelFile",
    "ExcelWriter",
    "FileHandler",
    "HDFStore",
    "dump",
    "dump_svmlight_file",
    "dumps",
    "fromfile",
    "fromregex",
    "genfromtxt",
    "load",
    "load_library",
    "load_npz",
    "load_svmlight_file",
    "load_svmlight_files",
    "loads",
    "loadtxt",
    "memmap",
    "open",
    "open_memmap",
    "read_array",
    "recfromcsv",
    "recfromtxt",
    "save",
    "save_npz",
    "savetxt",
    "savez",
    "savez_compressed",
    "tofile",
    "write_array",
];

/// Modules (any component) that read or write files, fetch data or load code.
const FILE_MODULES: &[&str] = &[
    "_datasource",
    "_npyio_impl",
    "bz2",
    "ctypeslib",
    "datasets",
    "dbm",
    "distutils",
    "f2py",
    "fileinput",
    "glob",
    "gzip",
    "h5py",
    "linecache",
    "lzma",
    "mmap",
    "npyio",
    "sqlite3",
    "tables",
    "tarfile",
    "testing",
    "zarr",
    "zipfile",
    "zipimport",
];

/// A callable that opens, reads or writes files: dangerous, not merely unknown (`numpy.memmap`
/// and the `numpy.lib.format` readers and writers under any of their names included).
pub fn touches_files(g: &Global) -> bool {
    let last = g.name.rsplit('.').next().unwrap_or(&g.name);
    let module_part = |m: &str| g.module.split('.').any(|p| p == m);
    let pandas_io = (g.module == "pandas" || g.module.starts_with("pandas."))
        && (last.starts_with("read_") || last.starts_with("to_"));
    let numpy_format = g.module.starts_with("numpy.") && module_part("format");
    let memmap_module = g.module.starts_with("numpy") && module_part("memmap");
    let logging = g.module == "logging.handlers" || g.module == "logging.config";
    FILE_NAMES.contains(&last)
        || FILE_MODULES.iter().any(|m| module_part(m))
        || pandas_io
        || numpy_format
        || memmap_module
        || logging
}

/// Classes called with arguments (`Construct::Call`) whose names do not start with a capital.
const LOWERCASE_CLASSES: &[&str] = &[
    "builtins.bool",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.complex",
    "builtins.dict",
    "builtins.float",
    "builtins.frozenset",
    "builtins.int",
    "builtins.list",
    "builtins.object",
    "builtins.range",
    "builtins.set",
    "builtins.slice",
    "builtins.str",
    "builtins.tuple",
    "collections.defaultdict",
    "collections.deque",
    "datetime.date",
    "datetime.datetime",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "functools.partial",
    "numpy.dtype",
];

/// Whether a REDUCE callable is taken to be a class (`cls(*args)`). The loader checks again
/// that the name it resolves is a trusted class; this only decides what to refuse early.
pub fn looks_like_class(g: &Global) -> bool {
    let last = g.name.rsplit('.').next().unwrap_or(&g.name);
    last.starts_with(|c: char| c.is_ascii_uppercase())
        || LOWERCASE_CLASSES.contains(&g.qualified().as_str())
}

/// The global the unpickler looks up, and another one worth checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What `find_class(module, name)` imports at the current protocol.
    pub global: Global,
    /// The other reading of a name that protocols 0-2 remap (joblib resolves the names of its
    /// nested pickles with the outer stream's protocol): kept only when it is dangerous.
    pub alternate: Option<Global>,
}

/// `pickle.Unpickler.find_class`'s renaming: Python 2 names are mapped for protocols 0 to 2.
pub fn find_class(module: &str, name: &str, proto: u8) -> Resolved {
    let raw = Global {
        module: module.to_string(),
        name: name.to_string(),
    };
    let Some((new_module, new_name)) = compat::map(module, name) else {
        return Resolved {
            global: raw,
            alternate: None,
        };
    };
    let mapped = Global {
        module: new_module.to_string(),
        name: new_name.unwrap_or(name).to_string(),
    };
    let (global, other) = if proto < 3 {
        (mapped, raw)
    } else {
        (raw, mapped)
    };
    let alternate = is_dangerous(&other.qualified()).then_some(other);
    Resolved { global, alternate }
}

/// How the scanner rates a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GlobalKind {
    /// On the allow-list, or a pickle helper that conversion understands.
    Safe,
    /// Neither dangerous nor allowed: loading would need the user to trust it.
    Unknown,
    /// A known code-execution or system-access callable, or attribute traversal into
    /// Python internals.
    Dangerous,
}

impl GlobalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GlobalKind::Safe => "safe",
            GlobalKind::Unknown => "unknown",
            GlobalKind::Dangerous => "dangerous",
        }
    }
}

pub fn is_helper(qualified: &str) -> bool {
    HELPERS.contains(&qualified)
}

/// `a.b` where `b` walks through dunder attributes (`x.__globals__`, `f.__self__`): the
/// protocol-4 unpickler follows dotted names attribute by attribute.
fn traverses_internals(name: &str) -> bool {
    name.contains('.')
        && name
            .split('.')
            .any(|part| part.len() > 4 && part.starts_with("__") && part.ends_with("__"))
}

/// Cython's `module.__pyx_unpickle_Class` creates `module.Class` and nothing else.
fn cython_class(g: &Global) -> Option<String> {
    let class = g.name.strip_prefix("__pyx_unpickle_")?;
    Some(format!("{}.{class}", g.module))
}

/// Rates a global: file access first, then helpers (joblib's own wrapper lives in a module that
/// is dangerous as a whole), then the deny-list, then the trust set.
pub fn classify(g: &Global, trust: &TrustSet) -> GlobalKind {
    let q = g.qualified();
    if touches_files(g) {
        return GlobalKind::Dangerous;
    }
    if is_helper(&q) {
        return GlobalKind::Safe;
    }
    if is_dangerous(&q) || traverses_internals(&g.name) {
        return GlobalKind::Dangerous;
    }
    if trust.check(&q) {
        return GlobalKind::Safe;
    }
    if let Some(class) = cython_class(g) {
        if is_helper(&class) || trust.check(&class) {
            return GlobalKind::Safe;
        }
    }
    // scikit-learn's `newObj(cls)` is `cls.__new__(cls)`.
    if g.name == "newObj" && g.module.starts_with("sklearn.") {
        return GlobalKind::Safe;
    }
    GlobalKind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(module: &str, name: &str) -> Global {
        Global {
            module: module.into(),
            name: name.into(),
        }
    }

    #[test]
    fn protocol_decides_the_mapping() {
        let r = find_class("__builtin__", "eval", 2);
        assert_eq!(r.global, g("builtins", "eval"));
        assert_eq!(r.alternate, None);
        let r = find_class("__builtin__", "eval", 4);
        assert_eq!(r.global, g("__builtin__", "eval"));
        assert_eq!(r.alternate, Some(g("builtins", "eval")));
        let r = find_class("commands", "getoutput", 0);
        assert_eq!(r.global, g("subprocess", "getoutput"));
    }

    #[test]
    fn classification() {
        let t = TrustSet::default();
        assert_eq!(classify(&g("os", "system"), &t), GlobalKind::Dangerous);
        assert_eq!(
            classify(&g("joblib.numpy_pickle", "NumpyArrayWrapper"), &t),
            GlobalKind::Safe
        );
        assert_eq!(classify(&g("joblib", "load"), &t), GlobalKind::Dangerous);
        assert_eq!(
            classify(&g("numpy", "load.__globals__"), &t),
            GlobalKind::Dangerous
        );
        assert_eq!(
            classify(&g("sklearn.tree._tree", "Tree"), &t),
            GlobalKind::Safe
        );
        assert_eq!(
            classify(
                &g("sklearn._loss._loss", "__pyx_unpickle_CyHalfBinomialLoss"),
                &t
            ),
            GlobalKind::Safe
        );
        assert_eq!(
            classify(&g("evil", "__pyx_unpickle_Thing"), &t),
            GlobalKind::Unknown
        );
        assert_eq!(
            classify(&g("sklearn.neighbors._kd_tree", "newObj"), &t),
            GlobalKind::Safe
        );
        assert_eq!(classify(&g("mymodule", "Thing"), &t), GlobalKind::Unknown);
    }
}
