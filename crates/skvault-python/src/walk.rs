//! Python object graph -> object tree + arrays.
//!
//! Follows the pickle protocol (`__reduce_ex__(4)`), but only ever records a
//! class and the data to rebuild it: a `__reduce__` that names any other
//! callable is refused here, at dump time, with a message naming it. Objects
//! that appear twice (or in a cycle) are written once and referenced by id.

use foldhash::{HashMap, HashSet};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet,
    PySlice, PyString, PyTuple, PyType,
};
use skvault_format::dtype::Kind;
use skvault_format::node::{sorted_if_plain, BaseType, Id, BIT_GENERATORS};
use skvault_format::{Construct, DType, Node, Object, Order};

use crate::dtypes;
use crate::errors::unsupported;

/// Deepest nesting of Python containers accepted; the manifest's JSON depth limit comes first in practice.
const MAX_DEPTH: usize = 120;

/// An array to store: a C- or F-contiguous numpy array kept alive, and its layout.
pub struct ArrayOut<'py> {
    /// Keeps the bytes at `ptr` alive.
    pub _owner: Bound<'py, PyAny>,
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub order: Order,
    pub ptr: usize,
    pub nbytes: usize,
}

/// Type objects the walker dispatches on, looked up once per dump.
struct Types<'py> {
    ndarray: Bound<'py, PyAny>,
    memmap: Bound<'py, PyAny>,
    generic: Bound<'py, PyAny>,
    dtype: Bound<'py, PyAny>,
    ufunc: Bound<'py, PyAny>,
    /// The type of numpy functions such as `numpy.mean` (`numpy._ArrayFunctionDispatcher`).
    array_function: Bound<'py, PyAny>,
    masked_array: Bound<'py, PyAny>,
    random_state: Bound<'py, PyAny>,
    generator: Bound<'py, PyAny>,
    bit_generator: Bound<'py, PyAny>,
    function: Bound<'py, PyAny>,
    builtin_function: Bound<'py, PyAny>,
    ellipsis: Bound<'py, PyAny>,
    zeros: Bound<'py, PyAny>,
    copyto: Bound<'py, PyAny>,
    import_module: Bound<'py, PyAny>,
    newobj: Bound<'py, PyAny>,
    newobj_ex: Bound<'py, PyAny>,
    reconstructor: Bound<'py, PyAny>,
    object: Bound<'py, PyAny>,
}

impl<'py> Types<'py> {
    fn new(py: Python<'py>) -> PyResult<Self> {
        let np = py.import("numpy")?;
        let random = py.import("numpy.random")?;
        let types = py.import("types")?;
        let copyreg = py.import("copyreg")?;
        let builtins = py.import("builtins")?;
        Ok(Types {
            ndarray: np.getattr("ndarray")?,
            memmap: np.getattr("memmap")?,
            generic: np.getattr("generic")?,
            dtype: np.getattr("dtype")?,
            ufunc: np.getattr("ufunc")?,
            array_function: np.getattr("mean")?.get_type().into_any(),
            masked_array: py.import("numpy.ma")?.getattr("MaskedArray")?,
            random_state: random.getattr("RandomState")?,
            generator: random.getattr("Generator")?,
            bit_generator: random.getattr("BitGenerator")?,
            function: types.getattr("FunctionType")?,
            builtin_function: types.getattr("BuiltinFunctionType")?,
            ellipsis: builtins.getattr("Ellipsis")?,
            zeros: np.getattr("zeros")?,
            copyto: np.getattr("copyto")?,
            import_module: py.import("importlib")?.getattr("import_module")?,
            newobj: copyreg.getattr("__newobj__")?,
            newobj_ex: copyreg.getattr("__newobj_ex__")?,
            reconstructor: copyreg.getattr("_reconstructor")?,
            object: builtins.getattr("object")?,
        })
    }
}

/// The walker's maps are keyed by `id()`s and ids of its own: foldhash, several times
/// cheaper than SipHash on them (a forest's walk hashed tens of thousands of keys).
pub struct Walker<'py> {
    py: Python<'py>,
    t: Types<'py>,
    memo: HashMap<usize, Id>,
    used: HashSet<Id>,
    /// Ids of objects a loader can only create after their children (tuples, frozensets,
    /// constructor arguments): a ref to one of them from inside is a cycle no loader can build.
    unbound: HashSet<Id>,
    /// Everything memoized stays alive until the dump ends, so no id() is reused by a temporary.
    keep: Vec<Bound<'py, PyAny>>,
    pub arrays: Vec<ArrayOut<'py>>,
    dtypes: dtypes::FromNumpyCache<'py>,
    /// Classes and functions already named and checked (by `id()`, each held so that its
    /// id is not reused during the walk): a forest's 500 trees import their two classes'
    /// modules once instead of 1000 times.
    globals: HashMap<usize, (Bound<'py, PyAny>, String)>,
    /// numpy's number scalar types seen (`numpy.float64`, ...), by `id()` and held, with the
    /// dtype every instance of each has: their next instances are read through the buffer
    /// protocol instead of `.dtype` and `.tobytes()` (which makes a 0-d array).
    number_types: HashMap<usize, (Bound<'py, PyAny>, DType)>,
    next_id: Id,
    depth: usize,
}

/// A bool, integer, float or complex dtype of at most 16 bytes: every instance of a numpy
/// scalar type of such a dtype has it (numpy scalars are in native byte order), and its
/// buffer holds exactly its value (`longdouble`'s 16 bytes hold 6 of padding: not taken).
fn is_fixed_number(dtype: &DType) -> bool {
    match dtype {
        DType::Scalar { kind, count, .. } => match kind {
            Kind::Bool | Kind::Int | Kind::UInt => *count <= 8,
            Kind::Float => *count <= 8,
            Kind::Complex => *count <= 16,
            _ => false,
        },
        _ => false,
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "<unknown type>".into())
}

impl<'py> Walker<'py> {
    pub fn new(py: Python<'py>) -> PyResult<Self> {
        Ok(Walker {
            py,
            t: Types::new(py)?,
            memo: HashMap::default(),
            used: HashSet::default(),
            unbound: HashSet::default(),
            keep: Vec::new(),
            arrays: Vec::new(),
            dtypes: dtypes::FromNumpyCache::new(),
            globals: HashMap::default(),
            number_types: HashMap::default(),
            next_id: 0,
            depth: 0,
        })
    }

    /// Walks one graph. Several graphs walked by the same walker share ids and arrays.
    pub fn run(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Node> {
        self.walk(obj)
    }

    /// Drops the ids nothing refers to, once every graph has been walked.
    pub fn finish(&self, tree: Node) -> Node {
        skvault_format::ids::strip_unused(tree, &self.used)
    }

    fn err(&self, message: String) -> PyErr {
        unsupported(self.py, message)
    }

    fn walk(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Node> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!(
                "the object graph nests deeper than {MAX_DEPTH} levels"
            )));
        }
        self.depth += 1;
        let result = self.walk_inner(obj);
        self.depth -= 1;
        result
    }

    fn walk_inner(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Node> {
        // Exact types first: subclasses (numpy scalars subclass float and str) must not lose their type.
        if obj.is_none() {
            return Ok(Node::None);
        }
        if obj.is_exact_instance_of::<PyBool>() {
            return Ok(Node::Bool(obj.extract()?));
        }
        if obj.is_exact_instance_of::<PyInt>() {
            return Ok(match obj.extract::<i64>() {
                Ok(i) => Node::Int(i),
                Err(_) => {
                    let text = obj.str().map(|t| t.to_string()).unwrap_or_default();
                    let digits = text.trim_start_matches('-').len();
                    if text.is_empty() || digits > skvault_format::node::MAX_BIGINT_DIGITS {
                        return Err(self.err(format!(
                            "cannot save an integer of more than {} digits",
                            skvault_format::node::MAX_BIGINT_DIGITS
                        )));
                    }
                    Node::BigInt(text)
                }
            });
        }
        if obj.is_exact_instance_of::<PyFloat>() {
            return Ok(Node::Float(obj.extract()?));
        }
        if obj.is_exact_instance_of::<PyString>() {
            let s = obj.cast::<PyString>()?;
            return Ok(match s.to_str() {
                Ok(s) => Node::Str(s.to_string()),
                Err(_) => {
                    let b = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
                    Node::StrSurrogates(b.extract()?)
                }
            });
        }
        if obj.is_exact_instance_of::<PyBytes>() {
            return Ok(Node::Bytes(obj.extract()?));
        }
        if obj.is_exact_instance_of::<PyComplex>() {
            let c = obj.cast::<PyComplex>()?;
            return Ok(Node::Complex(c.real(), c.imag()));
        }
        if obj.is(&self.t.ellipsis) {
            return Ok(Node::Ellipsis);
        }
        // Dicts, lists, tuples and arrays, most of a model's objects, are none of these three
        // kinds: skipping their seven isinstance checks gives the same answers, cheaper.
        let plain = obj.is_exact_instance_of::<PyDict>()
            || obj.is_exact_instance_of::<PyTuple>()
            || obj.is_exact_instance_of::<PyList>()
            || obj.get_type().is(&self.t.ndarray);
        if !plain {
            if obj.is_instance(&self.t.generic)? {
                return self.scalar(obj);
            }
            if obj.is_instance(&self.t.dtype)? {
                return self.dtype_value(obj);
            }
            if self.is_global(obj)? {
                return Ok(Node::Global(self.global_name(obj)?));
            }
        }

        let key = obj.as_ptr() as usize;
        if let Some(id) = self.memo.get(&key) {
            if self.unbound.contains(id) {
                return Err(self.err(format!(
                    "cannot save a {} that contains itself through a tuple, a frozenset or its own \
                     constructor arguments: no loader can rebuild that cycle",
                    type_name(obj)
                )));
            }
            self.used.insert(*id);
            return Ok(Node::Ref(*id));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.memo.insert(key, id);
        self.keep.push(obj.clone());
        let node = self.walk_shared(obj, id)?;
        Ok(Node::Shared {
            id,
            node: Box::new(node),
        })
    }

    /// Objects with identity: containers, arrays, instances.
    fn walk_shared(&mut self, obj: &Bound<'py, PyAny>, id: Id) -> PyResult<Node> {
        if obj.is_exact_instance_of::<PyList>() {
            let items: Vec<Bound<'py, PyAny>> = obj.cast::<PyList>()?.iter().collect();
            return Ok(Node::List(self.walk_all(&items)?));
        }
        if obj.is_exact_instance_of::<PyTuple>() {
            let items: Vec<Bound<'py, PyAny>> = obj.cast::<PyTuple>()?.iter().collect();
            return Ok(Node::Tuple(self.unbound_while(id, |w| w.walk_all(&items))?));
        }
        if obj.is_exact_instance_of::<PyDict>() {
            let pairs: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> =
                obj.cast::<PyDict>()?.iter().collect();
            return Ok(Node::Dict(self.walk_pairs(&pairs)?));
        }
        if obj.is_exact_instance_of::<PySet>() {
            let items: Vec<Bound<'py, PyAny>> = obj.cast::<PySet>()?.iter().collect();
            return Ok(Node::Set(sorted_if_plain(self.walk_all(&items)?)));
        }
        if obj.is_exact_instance_of::<PyFrozenSet>() {
            let items: Vec<Bound<'py, PyAny>> = obj.cast::<PyFrozenSet>()?.iter().collect();
            let items = self.unbound_while(id, |w| w.walk_all(&items))?;
            return Ok(Node::FrozenSet(sorted_if_plain(items)));
        }
        if obj.is_exact_instance_of::<PyByteArray>() {
            return Ok(Node::ByteArray(obj.cast::<PyByteArray>()?.to_vec()));
        }
        if obj.is_exact_instance_of::<PySlice>() {
            let parts = [
                obj.getattr("start")?,
                obj.getattr("stop")?,
                obj.getattr("step")?,
            ];
            let nodes = self.walk_all(&parts)?;
            let parts: [Node; 3] = nodes.try_into().map_err(|_| self.err("slice".into()))?;
            return Ok(Node::Slice(Box::new(parts)));
        }
        let ty = obj.get_type();
        if ty.is(&self.t.ndarray) || ty.is(&self.t.memmap) {
            return self.array(obj);
        }
        if ty.is(&self.t.random_state) {
            let state = obj.call_method1("get_state", (false,))?;
            let state = self.unbound_while(id, |w| w.walk(&state))?;
            return Ok(Node::RandomState(Box::new(state)));
        }
        if ty.is(&self.t.generator) {
            let bg = obj.getattr("bit_generator")?;
            let bg = self.unbound_while(id, |w| w.walk(&bg))?;
            return Ok(Node::Generator(Box::new(bg)));
        }
        if obj.is_instance(&self.t.bit_generator)? {
            return self.bit_generator(obj);
        }
        if ty.is(&self.t.masked_array) {
            return self.unbound_while(id, |w| w.masked_array(obj));
        }
        if obj.is_instance(&self.t.ndarray)? {
            return Err(self.err(format!(
                "cannot save a numpy array subclass ({}): convert it with numpy.asarray first",
                type_name(obj)
            )));
        }
        self.instance(obj, id)
    }

    /// Walks with `id` marked unbound: see `unbound`.
    fn unbound_while<T>(
        &mut self,
        id: Id,
        f: impl FnOnce(&mut Self) -> PyResult<T>,
    ) -> PyResult<T> {
        self.unbound.insert(id);
        let result = f(self);
        self.unbound.remove(&id);
        result
    }

    fn walk_all(&mut self, items: &[Bound<'py, PyAny>]) -> PyResult<Vec<Node>> {
        items.iter().map(|x| self.walk(x)).collect()
    }

    fn walk_pairs(
        &mut self,
        pairs: &[(Bound<'py, PyAny>, Bound<'py, PyAny>)],
    ) -> PyResult<Vec<(Node, Node)>> {
        pairs
            .iter()
            .map(|(k, v)| Ok((self.walk(k)?, self.walk(v)?)))
            .collect()
    }

    fn scalar(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Node> {
        let ty = obj.get_type();
        if let Some((_, dtype)) = self.number_types.get(&(ty.as_ptr() as usize)) {
            let dtype = dtype.clone();
            let data = crate::buffers::scalar_bytes(obj, dtype.itemsize())?;
            return Ok(Node::Scalar { dtype, data });
        }
        let dt = obj.getattr("dtype")?;
        let dtype = match self.dtypes.get(&dt)? {
            Ok(d) => d,
            Err(e) => {
                return Err(self.err(format!(
                    "cannot save numpy scalar of {}: {e}",
                    type_name(obj)
                )))
            }
        };
        let mut data: Vec<u8> = obj.call_method0("tobytes")?.extract()?;
        // numpy.str_('') has itemsize 0 but tobytes() gives one (empty) character's bytes.
        data.truncate(usize::try_from(dtype.itemsize()).unwrap_or(usize::MAX));
        // numpy's own types only: a subclass could export other bytes than its tobytes().
        // Asked last: text and bytes scalars, never kept, come here every time.
        let numpy_own = || {
            ty.getattr("__module__")
                .is_ok_and(|m| m.extract::<String>().is_ok_and(|m| m == "numpy"))
        };
        if is_fixed_number(&dtype) && data.len() as u64 == dtype.itemsize() && numpy_own() {
            self.number_types
                .insert(ty.as_ptr() as usize, (ty.into_any(), dtype.clone()));
        }
        Ok(Node::Scalar { dtype, data })
    }

    fn dtype_value(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Node> {
        if obj.getattr("kind")?.extract::<String>()? == "O" && obj.getattr("names")?.is_none() {
            return Ok(Node::DType(DType::object()));
        }
        match dtypes::from_numpy(obj, false)? {
            Ok(d) => Ok(Node::DType(d)),
            Err(e) => Err(self.err(format!("cannot save dtype {}: {e}", obj.repr()?))),
        }
    }

    fn is_global(&self, obj: &Bound<'py, PyAny>) -> PyResult<bool> {
        Ok(obj.is_instance_of::<PyType>()
            || obj.is_instance(&self.t.function)?
            || obj.is_instance(&self.t.builtin_function)?
            || obj.is_instance(&self.t.ufunc)?
            || obj.is_instance(&self.t.array_function)?)
    }

    /// `module.name` of a class or function, checked to resolve back to the very same object
    /// by importing the module and reading one attribute (how the loader will find it); once
    /// per object and walk.
    fn global_name(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<String> {
        let key = obj.as_ptr() as usize;
        if let Some((_, name)) = self.globals.get(&key) {
            return Ok(name.clone());
        }
        let name = self.resolve_global(obj)?;
        self.globals.insert(key, (obj.clone(), name.clone()));
        Ok(name)
    }

    fn resolve_global(&self, obj: &Bound<'py, PyAny>) -> PyResult<String> {
        let module: String = obj
            .getattr("__module__")
            .ok()
            .filter(|m| !m.is_none())
            .map(|m| m.extract())
            .transpose()?
            .unwrap_or_else(|| "builtins".into());
        let name: String = match obj.getattr("__qualname__") {
            Ok(q) => q.extract()?,
            Err(_) => obj.getattr("__name__")?.extract()?,
        };
        let full = format!("{module}.{name}");
        if module == "__main__" {
            return Err(self.err(format!(
                "cannot save a reference to {full}: it is defined in __main__ (the script being \
                 run or a notebook cell), which another process cannot import, so the file \
                 could not be loaded anywhere else. Move {name} into a module (a .py file) and \
                 import it from there"
            )));
        }
        if name.contains('.') || name.contains('<') {
            return Err(self.err(format!(
                "cannot save a reference to {full}: only module-level classes and functions can be \
                 referenced by name (not lambdas, local or nested definitions)"
            )));
        }
        if let Err(why) = skvault_format::node::check_qualified_name(&full) {
            return Err(self.err(format!("cannot save a reference to {full}: {why}")));
        }
        let resolved = self
            .t
            .import_module
            .call1((module.as_str(),))
            .and_then(|m| m.getattr(name.as_str()));
        match resolved {
            Ok(found) if found.is(obj) => Ok(full),
            _ => Err(self.err(format!(
                "cannot save a reference to {full}: importing {module} and reading {name} does not give \
                 back the same object"
            ))),
        }
    }

    /// `numpy.ma.MaskedArray(data, mask, None, False, True, 0, fill_value, True, hard_mask)`:
    /// the class called with its own constructor arguments (GridSearchCV's `cv_results_`).
    fn masked_array(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Node> {
        let ma = self.py.import("numpy.ma")?;
        let args = [
            obj.getattr("data")?,
            ma.getattr("getmaskarray")?.call1((obj,))?,
            self.py.None().into_bound(self.py),
            false.into_pyobject(self.py)?.to_owned().into_any(),
            true.into_pyobject(self.py)?.to_owned().into_any(),
            0i64.into_pyobject(self.py)?.into_any(),
            obj.getattr("fill_value")?,
            true.into_pyobject(self.py)?.to_owned().into_any(),
            obj.getattr("hardmask")?,
        ];
        let masked_array = self.t.masked_array.clone();
        let class = self.global_name(&masked_array)?;
        Ok(Node::Object(Box::new(Object {
            class,
            construct: Construct::Call {
                args: self.walk_all(&args)?,
            },
            state: None,
            list_items: vec![],
            dict_items: vec![],
        })))
    }

    fn bit_generator(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Node> {
        let kind: String = obj.get_type().name()?.to_string();
        let canonical = self.py.import("numpy.random")?.getattr(kind.as_str()).ok();
        if !BIT_GENERATORS.contains(&kind.as_str())
            || !canonical.is_some_and(|c| obj.get_type().is(&c))
        {
            return Err(self.err(format!("cannot save bit generator {}", type_name(obj))));
        }
        let state = obj.getattr("state")?;
        Ok(Node::BitGenerator {
            kind,
            state: Box::new(self.walk(&state)?),
        })
    }

    /// A `numpy.ndarray` or `numpy.memmap` (the caller checked the exact type), read through
    /// numpy's C struct: six attribute lookups per array (one of them building a flags object)
    /// were a good part of a forest's walk.
    fn array(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Node> {
        let arr = obj.cast::<PyUntypedArray>()?;
        let dt = arr.dtype();
        let shape: Vec<u64> = arr.shape().iter().map(|&n| n as u64).collect();
        if dt.has_object() {
            if dt.names().is_some() {
                return Err(self.err("cannot save a structured array with object fields".into()));
            }
            let flat = obj.call_method1("ravel", ("C",))?.call_method0("tolist")?;
            let items: Vec<Bound<'py, PyAny>> = flat.cast::<PyList>()?.iter().collect();
            return Ok(Node::ObjArray {
                shape,
                items: self.walk_all(&items)?,
            });
        }
        let dtype = match self.dtypes.get(dt.as_any())? {
            Ok(d) => d,
            Err(e) => return Err(self.err(format!("cannot save array: {e}"))),
        };
        let (array, order) = if arr.is_c_contiguous() {
            (obj.clone(), Order::C)
        } else if arr.is_fortran_contiguous() {
            (obj.clone(), Order::F)
        } else {
            // Copied to C order, as pickle does (see tests/test_roundtrip_estimators.py), into
            // zeroed memory: ascontiguousarray leaves the padding of structured records
            // uninitialised, which would write stale memory into the file.
            let copy = self.t.zeros.call1((obj.getattr("shape")?, &dt))?;
            self.t.copyto.call1((&copy, obj))?;
            (copy, Order::C)
        };
        let ptr = crate::buffers::data_address(&array, false)?;
        let nbytes = arr
            .len()
            .checked_mul(dt.itemsize())
            .ok_or_else(|| self.err("cannot save array: its size overflows".into()))?;
        self.arrays.push(ArrayOut {
            _owner: array,
            dtype,
            shape,
            order,
            ptr,
            nbytes,
        });
        Ok(Node::Array(self.arrays.len() - 1))
    }

    /// Any other object, through `__reduce_ex__(4)`.
    fn instance(&mut self, obj: &Bound<'py, PyAny>, id: Id) -> PyResult<Node> {
        let rv = obj.call_method1("__reduce_ex__", (4,)).map_err(|e| {
            self.err(format!(
                "cannot save {}: {}",
                type_name(obj),
                e.value(self.py)
                    .str()
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            ))
        })?;
        if rv.is_instance_of::<PyString>() {
            return Err(self.err(format!(
                "cannot save {}: it reduces to a global name",
                type_name(obj)
            )));
        }
        let rv = rv.cast::<PyTuple>().map_err(|_| {
            self.err(format!(
                "cannot save {}: __reduce_ex__ returned a non-tuple",
                type_name(obj)
            ))
        })?;
        // Checked against the length first: an IndexError made and dropped for each missing
        // part cost more than the rest of this function.
        let part = |i: usize| -> Option<Bound<'py, PyAny>> {
            (i < rv.len())
                .then(|| rv.get_item(i).ok())
                .flatten()
                .filter(|x| !x.is_none())
        };
        if rv.len() < 2 || rv.len() > 6 {
            return Err(self.err(format!(
                "cannot save {}: malformed __reduce_ex__ result",
                type_name(obj)
            )));
        }
        if part(5).is_some() {
            return Err(self.err(format!(
                "cannot save {}: a state setter is not supported",
                type_name(obj)
            )));
        }
        let func = rv.get_item(0)?;
        let args = rv.get_item(1)?;
        let args = args.cast::<PyTuple>().map_err(|_| {
            self.err(format!(
                "cannot save {}: reduce arguments are not a tuple",
                type_name(obj)
            ))
        })?;
        let mut state = part(2);
        let (class, construct) =
            self.unbound_while(id, |w| w.construction(obj, &func, args, &mut state))?;
        let class_name = self.global_name(&class)?;
        let state = state.map(|s| self.walk(&s)).transpose()?;
        let list_items = match part(3) {
            Some(it) => {
                let items: Vec<Bound<'py, PyAny>> = it.try_iter()?.collect::<PyResult<_>>()?;
                self.walk_all(&items)?
            }
            None => Vec::new(),
        };
        let dict_items = match part(4) {
            Some(it) => {
                let mut pairs = Vec::new();
                for item in it.try_iter()? {
                    let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item?.extract()?;
                    pairs.push((k, v));
                }
                self.walk_pairs(&pairs)?
            }
            None => Vec::new(),
        };
        Ok(Node::Object(Box::new(Object {
            class: class_name,
            construct,
            state,
            list_items,
            dict_items,
        })))
    }

    /// Turns the reduce callable into "create an instance of this class": the class itself, or
    /// the standard helpers that only call `cls.__new__`. Anything else is refused.
    fn construction(
        &mut self,
        obj: &Bound<'py, PyAny>,
        func: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        state: &mut Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Construct)> {
        let class_arg = || -> PyResult<Bound<'py, PyAny>> {
            let cls = args.get_item(0)?;
            if !cls.is_instance_of::<PyType>() {
                return Err(self.err(format!(
                    "cannot save {}: reduce did not name a class",
                    type_name(obj)
                )));
            }
            Ok(cls)
        };
        if func.is(&self.t.newobj) {
            let cls = class_arg()?;
            let rest: Vec<Bound<'py, PyAny>> = args.iter().skip(1).collect();
            let args = self.walk_all(&rest)?;
            return Ok((
                cls,
                Construct::New {
                    args,
                    kwargs: vec![],
                },
            ));
        }
        if func.is(&self.t.newobj_ex) {
            let cls = class_arg()?;
            let pos: Vec<Bound<'py, PyAny>> =
                args.get_item(1)?.try_iter()?.collect::<PyResult<_>>()?;
            let kw: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> =
                args.get_item(2)?.cast::<PyDict>()?.iter().collect();
            let args = self.walk_all(&pos)?;
            let kwargs = self.walk_pairs(&kw)?;
            return Ok((cls, Construct::New { args, kwargs }));
        }
        if func.is(&self.t.reconstructor) {
            // copyreg._reconstructor(cls, base, basestate): object.__new__ when base is object,
            // else base.__new__ + base.__init__ with basestate, for the builtin containers.
            let cls = class_arg()?;
            let base = args.get_item(1)?;
            let basestate = args.get_item(2)?;
            if base.is(&self.t.object) && basestate.is_none() {
                return Ok((
                    cls,
                    Construct::New {
                        args: vec![],
                        kwargs: vec![],
                    },
                ));
            }
            let py = self.py;
            let base = if base.is(py.get_type::<PyDict>()) {
                BaseType::Dict
            } else if base.is(py.get_type::<PyList>()) {
                BaseType::List
            } else if base.is(py.get_type::<PySet>()) {
                BaseType::Set
            } else {
                return Err(self.err(format!(
                    "cannot save {}: it derives from the builtin type {}",
                    type_name(obj),
                    base.repr()?
                )));
            };
            let value = Box::new(self.walk(&basestate)?);
            return Ok((cls, Construct::Base { base, value }));
        }
        if func.is_instance_of::<PyType>() {
            let items: Vec<Bound<'py, PyAny>> = args.iter().collect();
            let args = self.walk_all(&items)?;
            return Ok((func.clone(), Construct::Call { args }));
        }
        let fname: String = func
            .getattr("__name__")
            .and_then(|n| n.extract())
            .unwrap_or_default();
        // Cython's automatic pickling: __pyx_unpickle_X(cls, checksum, state) creates cls.__new__(cls)
        // and applies state exactly as the class's own __setstate__ does.
        if fname.starts_with("__pyx_unpickle_") && args.len() == 3 {
            let cls = class_arg()?;
            if let Ok(inner) = args.get_item(2) {
                if !inner.is_none() {
                    *state = Some(inner);
                }
            }
            return Ok((
                cls,
                Construct::New {
                    args: vec![],
                    kwargs: vec![],
                },
            ));
        }
        // scikit-learn's neighbors trees reduce to newObj(cls), which is cls.__new__(cls).
        if fname == "newObj" && args.len() == 1 {
            let cls = class_arg()?;
            return Ok((
                cls,
                Construct::New {
                    args: vec![],
                    kwargs: vec![],
                },
            ));
        }
        let fq = func
            .getattr("__module__")
            .and_then(|m| m.extract::<String>())
            .map(|m| format!("{m}.{fname}"))
            .unwrap_or(fname);
        Err(self.err(format!(
            "cannot save {}: its __reduce__ rebuilds it by calling {fq}, and skvault only ever creates \
             objects through their own class",
            type_name(obj)
        )))
    }
}
