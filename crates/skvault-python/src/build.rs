//! Object tree -> Python objects, for a tree whose names were all found trusted.
//!
//! The only callables invoked are: the trusted classes named in the tree
//! (`cls.__new__(cls, ...)` or `cls(...)`), their own `__setstate__`/`extend`/
//! `__setitem__`, and the loader's fixed helpers (numpy array and dtype
//! constructors, the numpy random constructors of `node::BIT_GENERATORS`).
//! Names are resolved by importing the module part and reading one attribute:
//! never by walking a dotted path.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};

use foldhash::HashMap;
use pyo3::prelude::*;
use pyo3::types::{
    PyByteArray, PyBytes, PyDict, PyFrozenSet, PyList, PySet, PyString, PyTuple, PyType,
};
use skvault_format::fill::{Destination, Fill, Job};
use skvault_format::load_plan::{LoadPlan, Place, PlanOptions, Task};
use skvault_format::node::BaseType;
use skvault_format::node::{Id, BIT_GENERATORS};
use skvault_format::{Construct, Node, Object, Order, SkvFile, TrustSet};

use crate::buffers;
use crate::dtypes;
use crate::errors::{format_error, new_err, untrusted, IntoPyResult};
use crate::mapped::MappedFile;
use crate::pool::Pool;
use skvault_infer::guard::{check_of, Check};

/// How the loader creates the instances of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Creation {
    /// `__new__` or a call, then the state (any trusted class but those below).
    Generic,
    /// Only by calling it with its data: [`Builder::masked_array`].
    MaskedArray,
    /// Only by its constructor from checked parts: [`Builder::sparse`].
    Sparse,
}

pub struct Builder<'py, 'a> {
    py: Python<'py>,
    trust: &'a TrustSet,
    arrays: &'a LoadArrays<'py>,
    /// The state checks running on another thread, when they do (see [`Gate`]).
    gate: Option<&'a Gate>,
    memo: HashMap<Id, Bound<'py, PyAny>>,
    resolved: HashMap<String, Bound<'py, PyAny>>,
    /// How each class met so far is created (see [`Creation`]) and whether its objects wait
    /// for their checks (see [`Gate`]), by class address.
    creation: HashMap<usize, (Creation, bool)>,
    /// Short texts made so far, each made once (see [`Builder::text`]).
    texts: HashMap<String, Bound<'py, PyAny>>,
    import_module: Bound<'py, PyAny>,
    np: Bound<'py, PyModule>,
}

/// Texts up to this length are made once per load and shared (see [`Builder::text`]), up to
/// [`SHARED_TEXTS`] distinct ones: attribute names, parameter values.
const SHARED_TEXT_LEN: usize = 40;
const SHARED_TEXTS: usize = 4096;

/// The numpy arrays of one load, and the fill writing into them.
pub struct LoadArrays<'py> {
    /// Declared before `arrays`, so dropped first (fields drop in declaration order): it
    /// waits for the workers that write into the arrays, which may be freed right after.
    fill: Fill,
    arrays: Vec<Bound<'py, PyAny>>,
    /// `(address, len)` of each array the fill writes (`None` for the others): what the
    /// state checks read once the fill reports the array done (see [`Filled`]), verified or
    /// not as the fill is. The checks judge the very bytes the objects are built from: with
    /// `verify=False` they once read and hashed the node arrays from the file instead, a
    /// second read of the file that a file changed meanwhile could make differ from the
    /// bytes built.
    spans: Vec<Option<(usize, usize)>>,
    /// The views of a mapped file that the state checks may read where they lie, unhashed
    /// (see [`Filled`]), by index.
    in_place: Vec<bool>,
}

/// The arrays of a load that the fill has written (and verified, unless the load was asked
/// not to), for the state checks (`skvault_infer::guard::Preread`): they read a forest's
/// node arrays there instead of reading them from the file a second time. Plain addresses
/// and the fill, so that the checks can run with the GIL released.
///
/// On a mapped file the tree node arrays are views, which the checks read in the mapping.
/// With `verify=True` the fill checks their digests in the background while the objects
/// are built, and the builder hands each one out only once the fill has checked it.
struct Filled<'a> {
    fill: &'a Fill,
    spans: &'a [Option<(usize, usize)>],
    file: &'a SkvFile,
    in_place: &'a [bool],
}

impl skvault_infer::guard::Preread for Filled<'_> {
    fn holds(&self, index: usize) -> bool {
        matches!(self.spans.get(index), Some(Some(_)))
            || self.in_place.get(index).copied().unwrap_or(false)
    }

    fn bytes(&self, index: usize) -> Option<skvault_format::Result<&[u8]>> {
        if self.in_place.get(index).copied().unwrap_or(false) {
            return self.file.mapped_bytes(index).map(Ok);
        }
        let (address, len) = (*self.spans.get(index)?)?;
        Some(self.fill.wait(index).map(|()| {
            // SAFETY: `address` is the data of the numpy array (or its range of the pool)
            // that `build_arrays` made for this array, `len` = raw_length bytes, alive in the
            // `LoadArrays` that `self` borrows. `wait` returned Ok, so by the contract of
            // `Destination::new` the fill has written (and, if it verifies, verified) these
            // bytes and will not touch them again; no Python code can reach the array before
            // the builder hands it out, which happens after the checks (checks that run
            // beside the build are given no such arrays: see `load_tree`). So nothing writes
            // them while borrowed.
            unsafe { std::slice::from_raw_parts(address as *const u8, len) }
        }))
    }
}

fn order_name(order: Order) -> &'static str {
    match order {
        Order::C => "C",
        Order::F => "F",
    }
}

/// Which digests a load checks: those of arrays viewed in place in a mapped file, and those of
/// arrays copied into memory (read, decompressed, or taken out of a pack).
#[derive(Debug, Clone, Copy)]
pub struct Verify {
    pub views: bool,
    pub copies: bool,
}

impl Verify {
    /// `verify=None` checks every copy, and views only when asked: skipping the hash is what
    /// keeps a mapped load from reading the whole file (FORMAT.md 9, step 18, allows it only
    /// for uncompressed arrays viewed through the map).
    pub fn from_option(verify: Option<bool>) -> Verify {
        Verify {
            views: verify.unwrap_or(false),
            copies: verify.unwrap_or(true),
        }
    }
}

/// Makes numpy arrays for the whole array table as the [`LoadPlan`] places them: views of the
/// mapping (mmap, uncompressed), fresh arrays, or slices of one pool for the arrays that trees
/// copy (see [`skvault_format::load_plan::copied_by_trees`]: for a forest that is thousands of
/// arrays in one allocation, given back when the load ends since the trees keep copies: see
/// [`crate::pool`]). The fresh and pooled arrays are filled (and verified) in the background
/// as the objects are built: see [`Fill`]. Small files are filled here and now, with the GIL
/// released.
pub fn build_arrays<'py>(
    py: Python<'py>,
    file: &Arc<SkvFile>,
    mapped: Option<&Bound<'py, MappedFile>>,
    verify: Verify,
) -> PyResult<LoadArrays<'py>> {
    let np = py.import("numpy")?;
    let empty = np.getattr("empty")?;
    let mut dtype_cache = dtypes::ToNumpyCache::new();
    let entries = &file.manifest().arrays;
    let options = PlanOptions {
        view_in_place: mapped.is_some(),
        verify_views: verify.views,
    };
    let plan = LoadPlan::new(file, options).py_err(py)?;
    // The tree node arrays that the state checks read: on a mapped file they stay views,
    // read by the checks where they lie. Like every view, their digests are checked only
    // with `verify=True`, then by the fill while the objects are built (see `Filled`).
    let mut in_place = vec![false; entries.len()];
    if mapped.is_some() {
        for index in skvault_infer::guard::tree_node_arrays(file) {
            if let (Some(Place::View { .. }), Some(slot)) =
                (plan.places().get(index), in_place.get_mut(index))
            {
                *slot = true;
            }
        }
    }
    let pool = match plan.pool_len() {
        0 => None,
        len => {
            let pool = Bound::new(py, Pool::new(len)?)?;
            let (base, len) = pool.get().region();
            if !pool.get().reused() {
                buffers::prefer_small_pages(base as usize, len);
            }
            Some((pool.into_any(), base as usize, len))
        }
    };
    let map = mapped.map(|m| (m.as_any(), m.get().region()));
    let mut out: Vec<Bound<'py, PyAny>> = Vec::with_capacity(entries.len());
    // Data address of each array that a task fills.
    let mut address = vec![0usize; entries.len()];
    for (i, (e, place)) in entries.iter().zip(plan.places()).enumerate() {
        let dtype = dtype_cache.get(py, &e.dtype)?;
        let fortran = e.order == Order::F;
        // A view of exactly the blob or pool range (raw_length = product(shape) x itemsize,
        // checked by the reader), its bounds checked again by `array_over`.
        let arr = match (*place, &map, &pool) {
            (Place::View { offset }, Some((map, (region, writable))), _) => {
                let offset = usize::try_from(offset)
                    .map_err(|_| format_error(py, "array offset out of range".into()))?;
                // SAFETY: the region is the whole mapping, owned by the `MappedFile` (`map`,
                // the array's base); it is writable only for a copy-on-write mapping, as
                // `region` says.
                unsafe {
                    buffers::array_over(map, *region, offset, &dtype, &e.shape, fortran, *writable)?
                }
            }
            (Place::Pool { start, .. }, _, Some((pool, base, len))) => {
                address[i] = base + start;
                // SAFETY: `len` bytes at `base` are the pool's memory (the `Pool` made above,
                // the array's base), writable, which it owns until its last view goes.
                unsafe {
                    buffers::array_over(
                        pool,
                        (*base as *mut u8, *len),
                        start,
                        &dtype,
                        &e.shape,
                        fortran,
                        true,
                    )?
                }
            }
            (Place::Own { len }, _, _) => {
                let shape = PyTuple::new(py, &e.shape)?;
                let order = order_name(e.order);
                let arr = empty.call1((shape, &dtype, order))?;
                if len > 0 {
                    address[i] = buffers::data_address(&arr, true)?;
                }
                arr
            }
            _ => return Err(format_error(py, "array table and load plan differ".into())),
        };
        out.push(arr);
    }
    let jobs: Vec<Job> = plan
        .tasks()
        .iter()
        .map(|task| match *task {
            Task::Verify { index } => Job::Verify { index },
            Task::Fill { index, len } => {
                // SAFETY: `address[index]` is the data of the numpy array made above for this
                // array (one of its own, or its range of the pool: the plan's pool ranges are
                // disjoint), exactly `len` = raw_length bytes, writable and contiguous. It
                // lives in `out`, which goes into `LoadArrays` behind the fill (dropped first,
                // see there). Until the fill reports the array done no Python code can reach
                // it: the builder hands an array out only after `Fill::wait`, `out` is not
                // shared, and the pool is referenced only by its slices (through `.base`,
                // which the trusted `Tree.__setstate__` that receives them never follows).
                let dst = unsafe { Destination::new(address[index] as *mut u8, len) };
                Job::Fill { index, dst }
            }
        })
        .collect();
    let spans = plan
        .places()
        .iter()
        .zip(&address)
        .map(|(place, &at)| match *place {
            Place::Pool { len, .. } | Place::Own { len } if len > 0 => Some((at, len)),
            _ => None,
        })
        .collect();
    let threads = plan.threads();
    let fill = py
        .detach(|| Fill::start(file.clone(), verify.copies, jobs, threads))
        .py_err(py)?;
    Ok(LoadArrays {
        fill,
        arrays: out,
        spans,
        in_place,
    })
}

impl<'py, 'a> Builder<'py, 'a> {
    pub fn new(
        py: Python<'py>,
        trust: &'a TrustSet,
        arrays: &'a LoadArrays<'py>,
        gate: Option<&'a Gate>,
    ) -> PyResult<Self> {
        Ok(Builder {
            py,
            trust,
            arrays,
            gate,
            memo: HashMap::default(),
            resolved: HashMap::default(),
            creation: HashMap::default(),
            texts: HashMap::default(),
            import_module: py.import("importlib")?.getattr("import_module")?,
            np: py.import("numpy")?,
        })
    }

    fn invalid(&self, message: String) -> PyErr {
        format_error(self.py, format!("invalid object tree: {message}"))
    }

    /// A set item or dict key that Python cannot hash is a malformed tree, not a TypeError.
    fn unhashable(&self, e: PyErr) -> PyErr {
        if e.is_instance_of::<pyo3::exceptions::PyTypeError>(self.py) {
            let err = self.invalid(format!(
                "a set item or dict key is not hashable ({})",
                e.value(self.py)
                    .str()
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            ));
            err.set_cause(self.py, Some(e));
            return err;
        }
        e
    }

    /// Imports `module` and reads `name` from it, for a name the trust set allows.
    fn resolve(&mut self, qualified: &str) -> PyResult<Bound<'py, PyAny>> {
        if let Some(found) = self.resolved.get(qualified) {
            return Ok(found.clone());
        }
        if !self.trust.check(qualified) {
            return Err(untrusted(self.py, vec![qualified.to_string()]));
        }
        let (module, name) = qualified
            .rsplit_once('.')
            .ok_or_else(|| self.invalid(format!("{qualified:?} has no module")))?;
        let found = self
            .import_module
            .call1((module,))
            .and_then(|m| m.getattr(name))
            .map_err(|e| {
                new_err(
                    self.py,
                    "LoadError",
                    format!(
                        "cannot find {qualified} in this environment ({}); is the right version of its \
                         package installed?",
                        e.value(self.py).str().map(|s| s.to_string()).unwrap_or_default()
                    ),
                )
            })?;
        self.resolved.insert(qualified.to_string(), found.clone());
        Ok(found)
    }

    /// The Python text `s`. A forest repeats its trees' attribute names and parameter values
    /// hundreds of times: each short one is made once and shared, as pickle's memo shares the
    /// strings it has read (text is immutable: sharing one is not visible but to `is`).
    fn text(&mut self, s: &str) -> Bound<'py, PyAny> {
        if s.len() > SHARED_TEXT_LEN {
            return PyString::new(self.py, s).into_any();
        }
        if let Some(made) = self.texts.get(s) {
            return made.clone();
        }
        let made = PyString::new(self.py, s).into_any();
        if self.texts.len() < SHARED_TEXTS {
            self.texts.insert(s.to_owned(), made.clone());
        }
        made
    }

    fn remember(&mut self, id: Option<Id>, obj: &Bound<'py, PyAny>) {
        if let Some(id) = id {
            self.memo.insert(id, obj.clone());
        }
    }

    pub fn build(&mut self, node: &Node, id: Option<Id>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let obj = match node {
            Node::None => py.None().into_bound(py),
            Node::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            Node::Int(i) => i.into_pyobject(py)?.into_any(),
            Node::BigInt(s) => py.get_type::<pyo3::types::PyInt>().call1((s.as_str(),))?,
            Node::Float(x) => x.into_pyobject(py)?.into_any(),
            Node::Complex(re, im) => pyo3::types::PyComplex::from_doubles(py, *re, *im).into_any(),
            Node::Str(s) => self.text(s),
            Node::StrSurrogates(b) => PyBytes::new(py, b).call_method1("decode", ("utf-8", "surrogatepass"))?,
            Node::Bytes(b) => PyBytes::new(py, b).into_any(),
            Node::ByteArray(b) => PyByteArray::new(py, b).into_any(),
            Node::Ellipsis => py.Ellipsis().into_bound(py),
            Node::Slice(parts) => {
                let [a, b, c] = parts.as_ref();
                let items = (self.build(a, None)?, self.build(b, None)?, self.build(c, None)?);
                py.get_type::<pyo3::types::PySlice>().call1(items)?
            }
            Node::List(items) => {
                let list = PyList::empty(py);
                self.remember(id, list.as_any());
                for item in items {
                    list.append(self.build(item, None)?)?;
                }
                return Ok(list.into_any());
            }
            Node::Tuple(items) => {
                let built = self.build_all(items)?;
                PyTuple::new(py, built)?.into_any()
            }
            Node::Set(items) => {
                let set = PySet::empty(py)?;
                self.remember(id, set.as_any());
                for item in items {
                    let item = self.build(item, None)?;
                    set.add(item).map_err(|e| self.unhashable(e))?;
                }
                return Ok(set.into_any());
            }
            Node::FrozenSet(items) => {
                let built = self.build_all(items)?;
                PyFrozenSet::new(py, &built)
                    .map_err(|e| self.unhashable(e))?
                    .into_any()
            }
            Node::Dict(items) => {
                let dict = PyDict::new(py);
                self.remember(id, dict.as_any());
                for (k, v) in items {
                    let k = self.build(k, None)?;
                    let v = self.build(v, None)?;
                    dict.set_item(k, v).map_err(|e| self.unhashable(e))?;
                }
                return Ok(dict.into_any());
            }
            Node::Array(index) => {
                let fill = &self.arrays.fill;
                if !fill.is_done(*index) {
                    py.detach(|| fill.wait(*index)).py_err(py)?;
                }
                self.arrays
                    .arrays
                    .get(*index)
                    .cloned()
                    .ok_or_else(|| self.invalid(format!("no array {index}")))?
            }
            Node::ObjArray { shape, items } => {
                let kwargs = PyDict::new(py);
                kwargs.set_item("dtype", py.get_type::<pyo3::types::PyAny>())?;
                let arr = self
                    .np
                    .getattr("empty")?
                    .call((PyTuple::new(py, shape)?,), Some(&kwargs))?;
                self.remember(id, &arr);
                let flat = arr.call_method1("reshape", (-1,))?;
                for (i, item) in items.iter().enumerate() {
                    let value = self.build(item, None)?;
                    flat.set_item(i, value)?;
                }
                return Ok(arr);
            }
            Node::Scalar { dtype, data } => {
                let dt = dtypes::to_numpy(py, dtype)?;
                if data.is_empty() {
                    // frombuffer refuses zero-width items (numpy.str_('') is <U0).
                    let empty = self.np.getattr("zeros")?.call1((PyTuple::empty(py), dt))?;
                    empty.get_item(PyTuple::empty(py))?
                } else {
                    let frombuffer = self.np.getattr(pyo3::intern!(py, "frombuffer"))?;
                    let arr = frombuffer.call1((PyBytes::new(py, data), dt))?;
                    arr.get_item(0)?
                }
            }
            Node::DType(dt) => dtypes::to_numpy(py, dt)?,
            Node::Global(name) => self.resolve(name)?,
            Node::Ref(target) => {
                return self.memo.get(target).cloned().ok_or_else(|| {
                    self.invalid(format!(
                        "ref {target} points to an object still under construction (a recursive tuple or \
                         constructor argument)"
                    ))
                })
            }
            Node::Shared { id: own, node } => return self.build(node, Some(*own)),
            Node::Object(obj) => return self.instance(obj, id),
            Node::RandomState(state) => {
                let state = self.build(state, None)?;
                self.random_state(state).map_err(|e| self.load_error("numpy RandomState", e))?
            }
            Node::Generator(bg) => {
                let bg = self.build(bg, None)?;
                let generator = self.np.getattr("random")?.getattr("Generator")?;
                generator
                    .call1((bg,))
                    .map_err(|e| self.load_error("numpy Generator", e))?
            }
            Node::BitGenerator { kind, state } => {
                let bg = self.new_bit_generator(kind)?;
                self.remember(id, &bg);
                let state = self.build(state, None)?;
                bg.setattr("state", state)
                    .map_err(|e| self.load_error("numpy bit generator", e))?;
                return Ok(bg);
            }
        };
        self.remember(id, &obj);
        Ok(obj)
    }

    /// `LoadError("rebuilding <what> failed: ...")` with the original exception as its cause.
    fn load_error(&self, what: &str, e: PyErr) -> PyErr {
        let py = self.py;
        let message = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
        let err = new_err(
            py,
            "LoadError",
            format!("rebuilding {what} failed: {message}"),
        );
        err.set_cause(py, Some(e));
        err
    }

    /// `RandomState(<bit generator named in the state>)` with `set_state(state)`.
    fn random_state(&self, state: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let kind: String = state.get_item("bit_generator")?.extract()?;
        let bg = self.new_bit_generator(&kind)?;
        let rs = self
            .np
            .getattr("random")?
            .getattr("RandomState")?
            .call1((bg,))?;
        rs.call_method1("set_state", (state,))?;
        Ok(rs)
    }

    fn build_all(&mut self, items: &[Node]) -> PyResult<Vec<Bound<'py, PyAny>>> {
        items.iter().map(|n| self.build(n, None)).collect()
    }

    fn new_bit_generator(&self, kind: &str) -> PyResult<Bound<'py, PyAny>> {
        if !BIT_GENERATORS.contains(&kind) {
            return Err(self.invalid(format!("unknown bit generator {kind:?}")));
        }
        self.np.getattr("random")?.getattr(kind)?.call0()
    }

    fn instance(&mut self, obj: &Object, id: Option<Id>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let cls = self.resolve(&obj.class)?;
        let cls = cls
            .cast::<PyType>()
            .map_err(|_| self.invalid(format!("{} is not a class", obj.class)))?
            .clone();
        let (creation, gated) = self.creation(&cls, &obj.class)?;
        if let (true, Some(gate)) = (gated, self.gate) {
            // Nothing of a guarded class exists before its own checks passed: not even its
            // constructor arguments reach it.
            if !gate.is_passed(obj) && !self.py.detach(|| gate.wait(obj)) {
                return Err(format_error(self.py, "refused before loading".into()));
            }
        }
        match creation {
            Creation::MaskedArray => return self.masked_array(&cls, obj, id),
            Creation::Sparse => return self.sparse(&cls, obj, id),
            Creation::Generic => {}
        }
        let fail = |e: PyErr, what: &str| -> PyErr {
            let err = new_err(
                py,
                "LoadError",
                format!(
                    "{what} {} failed: {}",
                    obj.class,
                    e.value(py).str().map(|s| s.to_string()).unwrap_or_default()
                ),
            );
            err.set_cause(py, Some(e));
            err
        };
        let instance = match &obj.construct {
            Construct::New { args, kwargs } => {
                let mut all = vec![cls.clone().into_any()];
                all.extend(self.build_all(args)?);
                let kw = PyDict::new(py);
                for (k, v) in kwargs {
                    let (k, v) = (self.build(k, None)?, self.build(v, None)?);
                    kw.set_item(k, v).map_err(|e| self.unhashable(e))?;
                }
                let new = cls.getattr(pyo3::intern!(py, "__new__"))?;
                new.call(PyTuple::new(py, all)?, Some(&kw))
                    .map_err(|e| fail(e, "creating"))?
            }
            Construct::Call { args } => {
                let args = self.build_all(args)?;
                cls.call1(PyTuple::new(py, args)?)
                    .map_err(|e| fail(e, "creating"))?
            }
            Construct::Base { base, value } => {
                // copyreg._reconstructor: base.__new__(cls, value); base.__init__(obj, value),
                // for the builtin container bases only.
                let base_type = match base {
                    BaseType::Dict => py.get_type::<PyDict>(),
                    BaseType::List => py.get_type::<PyList>(),
                    BaseType::Set => py.get_type::<PySet>(),
                };
                if !cls.is_subclass(&base_type)? {
                    return Err(self.invalid(format!(
                        "{} does not derive from {}",
                        obj.class,
                        base.name()
                    )));
                }
                let value = self.build(value, None)?;
                let inst = base_type
                    .call_method1("__new__", (&cls, &value))
                    .map_err(|e| fail(e, "creating"))?;
                base_type
                    .call_method1("__init__", (&inst, &value))
                    .map_err(|e| fail(e, "creating"))?;
                inst
            }
        };
        self.remember(id, &instance);
        // Values are built in document order (state, then items), so every id is bound before
        // a ref to it; they are applied in pickle's order (APPENDS/SETITEMS, then BUILD).
        let state = obj
            .state
            .as_ref()
            .map(|s| self.build(s, None))
            .transpose()?;
        if !obj.list_items.is_empty() {
            let items = self.build_all(&obj.list_items)?;
            instance
                .call_method1("extend", (PyList::new(py, items)?,))
                .map_err(|e| fail(e, "extending"))?;
        }
        for (k, v) in &obj.dict_items {
            let k = self.build(k, None)?;
            let v = self.build(v, None)?;
            instance.set_item(k, v).map_err(|e| fail(e, "filling"))?;
        }
        if let Some(state) = state {
            self.apply_state(&instance, state)
                .map_err(|e| fail(e, "restoring the state of"))?;
        }
        Ok(instance)
    }

    /// Classes that reinterpret raw bytes are never created by an object node, even when
    /// their name is trusted: numpy arrays and every ndarray subclass (an object dtype over
    /// file bytes would turn them into PyObject pointers), numpy scalars (`void` takes raw
    /// bytes; scalars come only from scalar nodes) and dtypes (`dtype.__setstate__` sets
    /// fields, itemsize and flags: dtypes come only from the manifest's validated dtype
    /// descriptions). `MaskedArray` is built only by [`Self::masked_array`], scipy's sparse
    /// matrices only by [`Self::sparse`].
    ///
    /// Also whether the objects of `name` wait for their own checks when the checks run
    /// beside the build: every guarded class but estimators holding trees. Those are Python
    /// classes; their check (trees as wide as the features they validate `X` for) guards
    /// their predictions, which nothing makes before the load returns, and the load returns
    /// only once every check passed. Their trees wait, one by one.
    fn creation(&mut self, cls: &Bound<'py, PyType>, name: &str) -> PyResult<(Creation, bool)> {
        // Classes are few and objects many (a forest: 2 classes, 1000 objects).
        let key = cls.as_ptr() as usize;
        if let Some(known) = self.creation.get(&key) {
            return Ok(*known);
        }
        let check = check_of(name);
        let gated = !matches!(check, None | Some(Check::TreeHolder));
        let creation = if cls.is(&self.np.getattr("ma")?.getattr("MaskedArray")?) {
            Creation::MaskedArray
        } else if check == Some(Check::Sparse) {
            Creation::Sparse
        } else {
            self.check_constructible(cls, name)?;
            Creation::Generic
        };
        // The class stays alive in `resolved` for the whole load, so its address is not reused.
        self.creation.insert(key, (creation, gated));
        Ok((creation, gated))
    }

    fn check_constructible(&self, cls: &Bound<'py, PyType>, name: &str) -> PyResult<()> {
        for (base, what) in [
            ("ndarray", "arrays come only from array nodes"),
            ("generic", "numpy scalars come only from scalar nodes"),
            ("dtype", "dtypes come only from dtype nodes"),
        ] {
            if cls.is_subclass(&self.np.getattr(base)?)? {
                return Err(self.invalid(format!(
                    "{name} cannot be created by an object node: {what}"
                )));
            }
        }
        Ok(())
    }

    /// `MaskedArray(data, mask, dtype, copy, subok, ndmin, fill_value, keep_mask, hard_mask)`,
    /// the one form the writer uses: a plain call, no state, no items. MaskedArray converts
    /// what it is given with `numpy.array`; its `__setstate__` would reinterpret raw bytes.
    fn masked_array(
        &mut self,
        cls: &Bound<'py, PyType>,
        obj: &Object,
        id: Option<Id>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Construct::Call { args } = &obj.construct else {
            return Err(self.invalid("a MaskedArray is only built by calling it".into()));
        };
        if obj.state.is_some() || !obj.list_items.is_empty() || !obj.dict_items.is_empty() {
            return Err(self.invalid("a MaskedArray has no state".into()));
        }
        let args = self.build_all(args)?;
        let made = cls
            .call1(PyTuple::new(self.py, args)?)
            .map_err(|e| self.load_error("numpy.ma.MaskedArray", e))?;
        self.remember(id, &made);
        Ok(made)
    }

    /// A scipy sparse matrix or array, from the parts `skvault_infer::guard` checked:
    /// `cls((data, indices, indptr), shape=...)` or `cls((data, coords), shape=...)`. No
    /// attribute of the file is set on it, so no property setter ever runs on file data.
    fn sparse(
        &mut self,
        cls: &Bound<'py, PyType>,
        obj: &Object,
        id: Option<Id>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let state = match &obj.state {
            Some(s) => self.build(s, None)?,
            None => return Err(self.invalid(format!("{} without state", obj.class))),
        };
        let state = state
            .cast::<PyDict>()
            .map_err(|_| self.invalid("sparse state must be a dict".into()))?
            .clone();
        let get = |k: &str| -> PyResult<Bound<'py, PyAny>> {
            state
                .get_item(k)?
                .ok_or_else(|| self.invalid(format!("sparse state without {k}")))
        };
        let data = get("data")?;
        let parts = if let Ok(indptr) = get("indptr") {
            PyTuple::new(py, [data, get("indices")?, indptr])?
        } else if let Ok(coords) = get("coords") {
            PyTuple::new(py, [data, coords])?
        } else {
            let coords = PyTuple::new(py, [get("row")?, get("col")?])?.into_any();
            PyTuple::new(py, [data, coords])?
        };
        let kwargs = PyDict::new(py);
        kwargs.set_item("shape", get("_shape")?)?;
        let made = cls
            .call((parts,), Some(&kwargs))
            .map_err(|e| self.load_error(&obj.class, e))?;
        if let Some(maxprint) = state.get_item("maxprint")? {
            if maxprint.is_exact_instance_of::<pyo3::types::PyInt>() {
                made.getattr("__dict__")?.set_item("maxprint", maxprint)?;
            }
        }
        self.remember(id, &made);
        Ok(made)
    }

    /// pickle's BUILD: `__setstate__` if the class has one, else `(dict, slots)` or a dict merged
    /// into `__dict__`.
    fn apply_state(&self, instance: &Bound<'py, PyAny>, state: Bound<'py, PyAny>) -> PyResult<()> {
        // Interned names: a forest's load asks this of a thousand objects.
        let setstate = pyo3::intern!(self.py, "__setstate__");
        if instance.get_type().hasattr(setstate)? {
            instance.call_method1(setstate, (state,))?;
            return Ok(());
        }
        let (dict_state, slot_state) = match state.cast::<PyTuple>() {
            Ok(t) if t.len() == 2 => (t.get_item(0)?, Some(t.get_item(1)?)),
            _ => (state, None),
        };
        if !dict_state.is_none() {
            let d = dict_state
                .cast::<PyDict>()
                .map_err(|_| self.invalid("object state must be a dict".into()))?;
            let inst_dict = instance.getattr("__dict__")?;
            for (k, v) in d.iter() {
                inst_dict.set_item(k, v)?;
            }
        }
        if let Some(slots) = slot_state.filter(|s| !s.is_none()) {
            let d = slots
                .cast::<PyDict>()
                .map_err(|_| self.invalid("slot state must be a dict".into()))?;
            let member = self.py.import("types")?.getattr("MemberDescriptorType")?;
            let cls = instance.get_type();
            for (k, v) in d.iter() {
                let name: String = k
                    .extract()
                    .map_err(|_| self.invalid("slot names must be strings".into()))?;
                // Only a slot's own descriptor: setattr on anything else would run a property
                // setter (scipy's `shape` reshapes) or a class's __setattr__ on file data.
                let is_slot = cls
                    .getattr(name.as_str())
                    .ok()
                    .map(|d| d.is_instance(&member))
                    .transpose()?
                    .unwrap_or(false);
                if !is_slot {
                    return Err(self.invalid(format!(
                        "slot state names {name:?}, which is not a slot of {}",
                        cls.name()?
                    )));
                }
                instance.setattr(name.as_str(), v)?;
            }
        }
        Ok(())
    }
}

/// Why the state checks of a load failed: they refused the file, or an array they read
/// unhashed turned out damaged.
enum Checked {
    Refused(skvault_infer::InferError),
    Damaged(skvault_format::FormatError),
}

impl From<skvault_format::FormatError> for Checked {
    fn from(e: skvault_format::FormatError) -> Self {
        Checked::Damaged(e)
    }
}

/// Everything `load` does after the file is validated: trust check first (over every tree of
/// the file), then arrays, then the state checks and objects. `padding`, when given, is the
/// file's padding check still to run (a mapped file's: see `SkvFile::open_mmap_deferred`),
/// run here before the state checks, or after them on their own thread. With
/// `with_validation`, returns `(obj, validation)`.
#[allow(clippy::too_many_arguments)]
pub fn load_tree<'py>(
    py: Python<'py>,
    file: Arc<SkvFile>,
    padding: Option<skvault_format::PaddingCheck>,
    trust: &TrustSet,
    mapped: Option<&Bound<'py, MappedFile>>,
    verify: Verify,
    with_validation: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let names = trust.untrusted_in(file.manifest());
    if !names.is_empty() {
        return Err(untrusted(py, names));
    }
    // The state that trusted compiled code would read unchecked is checked here, in Rust,
    // before any object of a class with compiled code receives it (SECURITY.md, "Trusted
    // classes with compiled code").
    for tree in file.manifest().trees() {
        skvault_format::stdlib::check_tree(tree)
            .map_err(|e| format_error(py, format!("refused before loading: {e}")))?;
    }
    // The arrays are made and their fill started first (numpy buffers only: nothing of the
    // file's classes exists yet), so that the checks read the arrays the fill has read and
    // verified, and the fill of the others goes on meanwhile.
    let arrays = build_arrays(py, &file, mapped, verify)?;
    // A file mapped read-only whose trees' node arrays are large is checked beside the
    // build, on a thread of its own (see `Gate`). Those checks read only what no Python
    // code can write: node arrays where they lie in the read-only mapping, and the other
    // arrays from the file itself, not from the buffers the builder hands out.
    let in_place: usize = (arrays.in_place.iter().enumerate())
        .filter(|(_, v)| **v)
        .filter_map(|(i, _)| file.mapped_bytes(i))
        .map(<[u8]>::len)
        .sum();
    // Read-only maps only: a copy-on-write map (`mmap="c"`) gives Python writable views.
    let read_only = matches!(file.mapped_whole(), Some((_, false)));
    let beside = read_only && skvault_format::write::worth_threads(in_place);
    let unshared = vec![None; arrays.spans.len()];
    let filled = Filled {
        fill: &arrays.fill,
        spans: if beside { &unshared } else { &arrays.spans },
        file: &file,
        in_place: &arrays.in_place,
    };
    let (fill, unhashed) = (&arrays.fill, arrays.in_place.contains(&true));
    let check = |progress: Option<&dyn skvault_infer::guard::Progress>| {
        let checked = skvault_infer::guard::check_reporting(&file, Some(&filled), progress);
        if checked.is_err() && unhashed {
            // The checks read a mapped file's node arrays before the fill hashed them: with
            // `verify=True`, a damaged one they refuse is the IntegrityError it is (as in a
            // load that hashes them first), so the digests are checked before the refusal
            // is reported (without it the fill has nothing to check: a refusal).
            fill.finish()?;
        }
        checked.map_err(Checked::Refused)
    };
    let refusal = |e: Checked| match e {
        // A damaged array the check had to read is the same IntegrityError a load gives.
        Checked::Refused(skvault_infer::InferError::Format(e)) | Checked::Damaged(e) => {
            crate::errors::from_format(py, e)
        }
        Checked::Refused(e) => format_error(py, format!("refused before loading: {e}")),
    };
    let built = if beside {
        let gate = Gate::new(Arc::clone(&file));
        let (built, checked) = std::thread::scope(|s| {
            let checker = s.spawn(|| {
                let mut ending = Ending {
                    gate: &gate,
                    ok: false,
                };
                // The padding last: the checks' reports are what the builder waits for.
                let checked = check(Some(&gate)).and_then(|()| {
                    padding
                        .as_ref()
                        .map_or(Ok(()), |p| p.run(&file))
                        .map_err(Checked::Damaged)
                });
                ending.ok = checked.is_ok();
                checked
            });
            let built = build_objects(py, trust, &file, &arrays, Some(&gate), with_validation);
            let checked = py.detach(|| checker.join());
            (built, checked)
        });
        // A refusal comes first: what was built before it is dropped here.
        match checked {
            Ok(checked) => checked.map_err(refusal)?,
            Err(_) => {
                return Err(format_error(
                    py,
                    "the state checks stopped unexpectedly".into(),
                ))
            }
        }
        built?
    } else {
        if let Some(padding) = &padding {
            py.detach(|| padding.run(&file)).py_err(py)?;
        }
        py.detach(|| check(None)).map_err(refusal)?;
        build_objects(py, trust, &file, &arrays, None, with_validation)?
    };
    // Every array is filled and verified before anything is returned, including those of
    // the validation tree when it is not built.
    py.detach(|| fill.finish()).py_err(py)?;
    let (root, validation) = built;
    if !with_validation {
        return Ok(root);
    }
    Ok(PyTuple::new(py, [root, validation])?.into_any())
}

/// The model's objects and (with `with_validation`) the validation tree's.
fn build_objects<'py>(
    py: Python<'py>,
    trust: &TrustSet,
    file: &SkvFile,
    arrays: &LoadArrays<'py>,
    gate: Option<&Gate>,
    with_validation: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let mut builder = Builder::new(py, trust, arrays, gate)?;
    let root = builder.build(&file.manifest().root, None)?;
    let validation = match &file.manifest().validation {
        Some(tree) if with_validation => builder.build(tree, None)?,
        _ => py.None().into_bound(py),
    };
    Ok((root, validation))
}

/// The state checks of a load run beside the build, on a thread of their own: for a large
/// mapped file they are most of the load's time besides the classes' own `__setstate__`.
/// They report each guarded object whose own state passed; the builder creates an object of
/// a guarded class only once it was reported (or every check passed), and stops as soon as
/// a check failed. The load returns nothing unless every check passed: a refusal drops
/// whatever was built and raises the checks' error (SECURITY.md).
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    file: Arc<SkvFile>,
}

#[derive(Default)]
struct GateState {
    /// Objects (by address in the manifest) whose own checks passed.
    passed: HashSet<usize>,
    /// `Some(every check passed)` once the checks ended.
    ended: Option<bool>,
    /// Whether the builder waits (else a report wakes nobody).
    waiting: bool,
    /// Guarded objects the builder has created so far.
    taken: usize,
}

impl Gate {
    fn new(file: Arc<SkvFile>) -> Gate {
        Gate {
            state: Mutex::default(),
            changed: Condvar::new(),
            file,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        // Nothing panics while holding the lock; a poisoned one holds consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `obj` may be created now, without waiting (counted as taken if so).
    fn is_passed(&self, obj: &Object) -> bool {
        let mut state = self.lock();
        let passed = state.ended == Some(true) || state.passed.contains(&address(obj));
        state.taken += usize::from(passed);
        passed
    }

    /// Waits until `obj`'s own checks passed (`true`) or a check failed (`false`).
    fn wait(&self, obj: &Object) -> bool {
        let mut state = self.lock();
        loop {
            match state.ended {
                Some(false) => return false,
                Some(true) => break,
                None if state.passed.contains(&address(obj)) => break,
                None => {}
            }
            state.waiting = true;
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.taken += 1;
        true
    }

    fn end(&self, ok: bool) {
        let mut state = self.lock();
        state.ended = Some(ok);
        self.changed.notify_all();
    }
}

impl skvault_infer::guard::Progress for Gate {
    fn passed(&self, obj: &Object) {
        let mut state = self.lock();
        state.passed.insert(address(obj));
        let ahead = state.passed.len().saturating_sub(state.taken);
        if std::mem::take(&mut state.waiting) {
            self.changed.notify_all();
        }
        drop(state);
        if ahead >= AHEAD && check_of(&obj.class) != Some(Check::TreeHolder) {
            // The builder will copy this object's arrays out of the map (a tree: its nodes,
            // which the checks have just read, and its values, which they did not). With the
            // builder well behind, their pages are mapped now, on this thread, rather than on
            // the builder's: the load's two threads share its work.
            let parts = obj.state.iter().chain(match &obj.construct {
                Construct::Call { args } => args.as_slice(),
                _ => &[],
            });
            for part in parts {
                skvault_format::node::walk(part, &mut |n| {
                    if let Node::Array(index) = n {
                        self.file.prefault(*index);
                    }
                });
            }
        }
    }
}

/// Reported objects not yet taken by the builder from which the checks' thread also maps the
/// pages of the objects it reports (see `Gate::passed`).
const AHEAD: usize = 4;

fn address(obj: &Object) -> usize {
    obj as *const Object as usize
}

/// Ends the checks' side of a [`Gate`] however the checks end, a panic included: the
/// builder never waits for a report that cannot come.
struct Ending<'g> {
    gate: &'g Gate,
    ok: bool,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        self.gate.end(self.ok);
    }
}
