//! Which qualified names a file may use, decided in one place.
//!
//! `untrusted_names` is the only function that decides whether a tree may be
//! loaded: `get_untrusted_types` reports its result and `load` refuses any file
//! for which it is not empty, so the audit and the loader cannot look at
//! different things (the root of skops' CVE-2025-54412/54413). The loader then
//! resolves each name through `TrustSet::check`, again against the same set.

use std::collections::{BTreeSet, HashSet};
use std::sync::OnceLock;

use crate::node::{walk, Node};

/// The default allow-list, one qualified name per line (`#` comments), by package.
const DEFAULT_LISTS: &[&str] = &[
    include_str!("../trusted/builtins.txt"),
    include_str!("../trusted/numpy.txt"),
    include_str!("../trusted/scipy.txt"),
    include_str!("../trusted/sklearn.txt"),
];

/// Callables known to execute code or touch the system. They can never be trusted, not even on request.
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "shutil",
    "socket",
    "pty",
    "runpy",
    "importlib",
    "pickle",
    "_pickle",
    "marshal",
    "ctypes",
    "code",
    "codeop",
    "webbrowser",
    "multiprocessing",
    "asyncio",
    "threading",
    "signal",
    "pathlib",
    "tempfile",
    "io",
    "_io",
    "urllib",
    "http",
    "ftplib",
    "smtplib",
    "telnetlib",
    "requests",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "timeit",
    "pdb",
    "bdb",
    "trace",
    "profile",
    "cProfile",
    "platform",
    "gzip",
    "bz2",
    "lzma",
    "zipfile",
    "tarfile",
    "mmap",
    "sqlite3",
    "dbm",
    "datasets",
];
const DANGEROUS_NAMES: &[&str] = &[
    "builtins.eval",
    "builtins.exec",
    "builtins.compile",
    "builtins.open",
    "builtins.__import__",
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "builtins.breakpoint",
    "builtins.input",
    "builtins.help",
    "builtins.exit",
    "builtins.quit",
    "operator.attrgetter",
    "operator.methodcaller",
    "operator.itemgetter",
    "functools.reduce",
    "codecs.open",
    "codecs.decode",
    "numpy.load",
    "numpy.loadtxt",
    "numpy.fromfile",
    "numpy.save",
    // Creating a memmap creates or truncates a file; tofile/savez/genfromtxt touch files.
    "numpy.memmap",
    "numpy._core.memmap.memmap",
    "numpy.core.memmap.memmap",
    "numpy.savez",
    "numpy.savez_compressed",
    "numpy.savetxt",
    "numpy.genfromtxt",
    "numpy.fromregex",
    "numpy.lib.format.open_memmap",
    "numpy.lib.format.read_array",
    "numpy.lib.format.write_array",
    "numpy.ndarray.tofile",
    "numpy.ndarray.dump",
    "scipy.sparse.load_npz",
    "scipy.sparse.save_npz",
    "scipy.sparse._matrix_io.load_npz",
    "scipy.sparse._matrix_io.save_npz",
    "numpy.testing._private.utils.runstring",
    "numpy.f2py.compile",
];

/// The path classes of `pathlib` (a dangerous module): plain data, created from strings that
/// `stdlib::check_tree` checks, never used to open anything by the loader.
const PATH_CLASSES: &[&str] = &[
    "pathlib.PurePosixPath",
    "pathlib.PosixPath",
    "pathlib.PureWindowsPath",
    "pathlib.WindowsPath",
];

/// True for names that must never be trusted: whole modules known to run code or reach the
/// system, and individual builtins or helpers that do.
pub fn is_dangerous(name: &str) -> bool {
    if DANGEROUS_NAMES.contains(&name) {
        return true;
    }
    if PATH_CLASSES.contains(&name) {
        return false;
    }
    // Any module component counts, so `sklearn.base.os.system` (an attribute path through an
    // imported module) is caught as well as `os.system`.
    let module = name.rsplit_once('.').map_or(name, |(m, _)| m);
    module
        .split('.')
        .any(|part| DANGEROUS_MODULES.contains(&part))
}

/// The scikit-learn version the default allow-list was generated from (its header comment).
pub fn sklearn_list_version() -> Option<&'static str> {
    let header = include_str!("../trusted/sklearn.txt")
        .lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.split_once("(scikit-learn ").map(|(_, rest)| rest))?;
    header.split_once(')').map(|(v, _)| v)
}

/// The default allow-list.
pub fn default_names() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        DEFAULT_LISTS
            .iter()
            .flat_map(|list| list.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Every qualified name a tree needs: object classes and global references.
pub fn required_names(root: &Node) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    walk(root, &mut |n| match n {
        Node::Global(name) => {
            names.insert(name.clone());
        }
        Node::Object(obj) => {
            names.insert(obj.class.clone());
        }
        _ => {}
    });
    names
}

/// Errors from building a trust set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error("refusing to trust {name:?}: it is a known code-execution or system-access callable")]
    Dangerous { name: String },
    #[error("cannot trust {name:?}: {message}")]
    BadName { name: String, message: String },
}

/// The default allow-list plus the names a caller added.
#[derive(Debug, Clone, Default)]
pub struct TrustSet {
    extra: HashSet<String>,
}

impl TrustSet {
    /// Adds user-trusted names. Each must be a qualified name and not a dangerous one.
    pub fn new<I, S>(extra: I) -> Result<TrustSet, TrustError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = HashSet::new();
        for name in extra {
            let name = name.into();
            crate::node::check_qualified_name(&name).map_err(|message| TrustError::BadName {
                name: name.clone(),
                message,
            })?;
            if is_dangerous(&name) {
                return Err(TrustError::Dangerous { name });
            }
            set.insert(name);
        }
        Ok(TrustSet { extra: set })
    }

    /// Whether `name` may be resolved. The loader calls this for every name it imports.
    pub fn check(&self, name: &str) -> bool {
        !is_dangerous(name) && (default_names().contains(name) || self.extra.contains(name))
    }

    /// The names of `root` that this set does not allow, sorted. Empty means the tree may be loaded.
    pub fn untrusted_names(&self, root: &Node) -> Vec<String> {
        required_names(root)
            .into_iter()
            .filter(|n| !self.check(n))
            .collect()
    }

    /// The names of every tree of a manifest (model and validation) that this set does not
    /// allow, sorted: the one check `load`, `get_untrusted_types` and `inspect` share.
    pub fn untrusted_in(&self, manifest: &crate::Manifest) -> Vec<String> {
        let mut names = BTreeSet::new();
        for tree in manifest.trees() {
            names.extend(required_names(tree));
        }
        names.into_iter().filter(|n| !self.check(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Construct, Object};

    fn obj(class: &str, state: Node) -> Node {
        Node::Object(Box::new(Object {
            class: class.into(),
            construct: Construct::New {
                args: vec![],
                kwargs: vec![],
            },
            state: Some(state),
            list_items: vec![],
            dict_items: vec![],
        }))
    }

    #[test]
    fn default_list_is_clean() {
        let names = default_names();
        assert!(names.contains("numpy.float64"));
        for name in names {
            assert!(crate::node::check_qualified_name(name).is_ok(), "{name}");
            assert!(
                !is_dangerous(name),
                "{name} is in the default list and dangerous"
            );
        }
    }

    #[test]
    fn finds_every_name_nested() {
        let tree = obj(
            "evil.Dict",
            Node::Dict(vec![(
                Node::Str("f".into()),
                Node::List(vec![
                    Node::Global("os.system".into()),
                    obj("evil.Thing", Node::None),
                ]),
            )]),
        );
        let trust = TrustSet::default();
        assert_eq!(
            trust.untrusted_names(&tree),
            vec!["evil.Dict", "evil.Thing", "os.system"]
        );
        let trust = TrustSet::new(["evil.Thing", "evil.Dict"]).unwrap();
        assert_eq!(trust.untrusted_names(&tree), vec!["os.system"]);
    }

    #[test]
    fn dangerous_names_cannot_be_trusted() {
        for name in [
            "os.system",
            "builtins.eval",
            "subprocess.Popen",
            "posix.system",
            "sklearn.base.os.system",
        ] {
            assert!(is_dangerous(name), "{name}");
            assert!(
                matches!(TrustSet::new([name]), Err(TrustError::Dangerous { .. })),
                "{name}"
            );
            assert!(!TrustSet::default().check(name), "{name}");
        }
        assert!(!is_dangerous(
            "sklearn.linear_model._logistic.LogisticRegression"
        ));
        assert!(matches!(
            TrustSet::new(["not a name"]),
            Err(TrustError::BadName { .. })
        ));
    }
}
