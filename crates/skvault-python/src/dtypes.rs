//! numpy dtype objects <-> `skvault_format::DType`.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use skvault_format::dtype::Field;
use skvault_format::DType;

/// Converts a numpy dtype. `Err` carries a message for the user (object or datetime dtypes, titles, ...).
pub fn from_numpy(dt: &Bound<'_, PyAny>, allow_subarray: bool) -> PyResult<Result<DType, String>> {
    let names = dt.getattr("names")?;
    if names.is_none() {
        let sub = dt.getattr("subdtype")?;
        if !sub.is_none() {
            if !allow_subarray {
                return Ok(Err("a sub-array dtype outside a structured dtype".into()));
            }
            let (base, shape): (Bound<'_, PyAny>, Vec<u64>) = sub.extract()?;
            return Ok(from_numpy(&base, false)?.map(|base| DType::SubArray {
                base: Box::new(base),
                shape,
            }));
        }
        let s: String = dt.getattr("str")?.extract()?;
        return Ok(
            DType::parse_scalar(&s, "dtype").map_err(|_| format!("dtype {s} is not supported"))
        );
    }
    let fields_map = dt.getattr("fields")?;
    let mut fields = Vec::new();
    for name in names.cast::<PyTuple>()?.iter() {
        let entry = fields_map.get_item(&name)?;
        let entry = entry.cast::<PyTuple>()?;
        if entry.len() != 2 {
            return Ok(Err(
                "structured dtypes with field titles are not supported".into()
            ));
        }
        let field_dt = entry.get_item(0)?;
        let offset: u64 = entry.get_item(1)?.extract()?;
        let dtype = match from_numpy(&field_dt, true)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        fields.push(Field {
            name: name.extract()?,
            dtype,
            offset,
        });
    }
    Ok(Ok(DType::Structured {
        fields,
        itemsize: dt.getattr("itemsize")?.extract()?,
        aligned: dt.getattr("isalignedstruct")?.extract()?,
    }))
}

/// Builds the numpy dtype for a validated `DType`.
pub fn to_numpy<'py>(py: Python<'py>, dt: &DType) -> PyResult<Bound<'py, PyAny>> {
    let np_dtype = py.import("numpy")?.getattr("dtype")?;
    match dt {
        DType::Scalar { .. } => np_dtype.call1((dt.scalar_str().unwrap_or_default(),)),
        DType::SubArray { base, shape } => {
            let base = to_numpy(py, base)?;
            np_dtype.call1(((base, PyTuple::new(py, shape)?),))
        }
        DType::Structured {
            fields,
            itemsize,
            aligned,
        } => {
            let spec = PyDict::new(py);
            let names = PyList::empty(py);
            let formats = PyList::empty(py);
            let offsets = PyList::empty(py);
            for f in fields {
                names.append(&f.name)?;
                formats.append(to_numpy(py, &f.dtype)?)?;
                offsets.append(f.offset)?;
            }
            spec.set_item("names", names)?;
            spec.set_item("formats", formats)?;
            spec.set_item("offsets", offsets)?;
            spec.set_item("itemsize", itemsize)?;
            np_dtype.call1((spec, *aligned))
        }
    }
}

/// numpy dtypes already built for a load: a model holds many arrays of few distinct dtypes
/// (a 500-tree forest: 1000 arrays, 3 dtypes), and building a structured dtype costs far more
/// than comparing two `DType`s.
pub struct ToNumpyCache<'py> {
    built: Vec<(DType, Bound<'py, PyAny>)>,
}

impl<'py> ToNumpyCache<'py> {
    pub fn new() -> Self {
        ToNumpyCache { built: Vec::new() }
    }

    pub fn get(&mut self, py: Python<'py>, dt: &DType) -> PyResult<Bound<'py, PyAny>> {
        if let Some((_, found)) = self.built.iter().find(|(d, _)| d == dt) {
            return Ok(found.clone());
        }
        let made = to_numpy(py, dt)?;
        // Bounded: past a few dozen distinct dtypes, a linear search would cost more than it saves.
        if self.built.len() < 64 {
            self.built.push((dt.clone(), made.clone()));
        }
        Ok(made)
    }
}

/// `from_numpy` for the dtype objects of one dump, remembered by identity (scikit-learn's
/// tree arrays share one node dtype object). The dtype objects are kept alive with their
/// result, so an address is never reused for another dtype meanwhile.
pub struct FromNumpyCache<'py> {
    seen: foldhash::HashMap<usize, (Bound<'py, PyAny>, DType)>,
}

impl<'py> FromNumpyCache<'py> {
    pub fn new() -> Self {
        FromNumpyCache {
            seen: foldhash::HashMap::default(),
        }
    }

    pub fn get(&mut self, dt: &Bound<'py, PyAny>) -> PyResult<Result<DType, String>> {
        let key = dt.as_ptr() as usize;
        if let Some((_, d)) = self.seen.get(&key) {
            return Ok(Ok(d.clone()));
        }
        let result = from_numpy(dt, false)?;
        if let Ok(d) = &result {
            self.seen.insert(key, (dt.clone(), d.clone()));
        }
        Ok(result)
    }
}
