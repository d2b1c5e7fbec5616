//! Hand-made attacks through numpy: dtypes whose flags or sizes disagree with their fields
//! (numpy and joblib go by the flags and read object pointers from file bytes), dtypes made or
//! changed in ways numpy's pickler never takes, numpy and other callables that touch files
//! (`numpy.memmap` + SETITEM writes any file), and item opcodes that call methods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use skvault_pickle::{convert, scan, GlobalKind, Issue, Limits, Verdict};

// ------------------------------------------------------------ a small protocol-2 writer

fn global(m: &str, n: &str) -> Vec<u8> {
    format!("c{m}\n{n}\n").into_bytes()
}

fn s(x: &str) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend((x.len() as u32).to_le_bytes());
    out.extend(x.as_bytes());
    out
}

fn b(x: &[u8]) -> Vec<u8> {
    let mut out = vec![b'B'];
    out.extend((x.len() as u32).to_le_bytes());
    out.extend(x);
    out
}

fn int(i: i32) -> Vec<u8> {
    let mut out = vec![b'J'];
    out.extend(i.to_le_bytes());
    out
}

fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![b'('];
    for i in items {
        out.extend(i);
    }
    out.push(b't');
    out
}

fn dict(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"}(".to_vec();
    for (k, v) in pairs {
        out.extend(k);
        out.extend(v);
    }
    out.push(b'u');
    out
}

const NONE: &[u8] = b"N";

/// `numpy.dtype(typestr, False, True)`, with `state` applied by BUILD when given.
fn dtype(typestr: &str, state: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = global("numpy", "dtype");
    out.extend(s(typestr));
    out.extend(b"\x89\x88\x87R");
    if let Some(st) = state {
        out.extend(st);
        out.push(b'b');
    }
    out
}

/// numpy's version-3 dtype state.
fn state(
    endian: &str,
    sub: Vec<u8>,
    names: Vec<u8>,
    fields: Vec<u8>,
    el: i32,
    al: i32,
    fl: i32,
) -> Vec<u8> {
    tuple(&[
        int(3),
        s(endian),
        sub,
        names,
        fields,
        int(el),
        int(al),
        int(fl),
    ])
}

fn scalar(typestr: &str, flags: i32) -> Vec<u8> {
    dtype(
        typestr,
        Some(state(
            "|",
            NONE.into(),
            NONE.into(),
            NONE.into(),
            -1,
            -1,
            flags,
        )),
    )
}

/// `[('a', 'O'), ('b', '<f8')]` as numpy writes it, with `flags` instead of numpy's 27.
fn object_struct(flags: i32) -> Vec<u8> {
    let fields = dict(&[
        (s("a"), tuple(&[scalar("O8", 63), int(0)])),
        (
            s("b"),
            tuple(&[
                dtype(
                    "f8",
                    Some(state("<", NONE.into(), NONE.into(), NONE.into(), -1, -1, 0)),
                ),
                int(8),
            ]),
        ),
    ]);
    dtype(
        "V16",
        Some(state(
            "|",
            NONE.into(),
            tuple(&[s("a"), s("b")]),
            fields,
            16,
            1,
            flags,
        )),
    )
}

/// `_reconstruct(ndarray, (0,), b'b')` + BUILD `(1, shape, dtype, False, data)`.
fn reconstructed(dt: Vec<u8>, n: i32, data: Vec<u8>) -> Vec<u8> {
    let mut out = b"\x80\x02".to_vec();
    out.extend(global("numpy.core.multiarray", "_reconstruct"));
    out.extend(tuple(&[
        global("numpy", "ndarray"),
        tuple(&[int(0)]),
        b(b"b"),
    ]));
    out.push(b'R');
    out.extend(tuple(&[
        int(1),
        tuple(&[int(n)]),
        dt,
        b"\x89".to_vec(),
        data,
    ]));
    out.push(b'b');
    out
}

/// A joblib `NumpyArrayWrapper` of `n` items of `dt`, up to its BUILD: joblib reads the array
/// from what follows.
fn wrapper(dt: Vec<u8>, n: i32) -> Vec<u8> {
    let mut out = b"\x80\x02".to_vec();
    out.extend(global("joblib.numpy_pickle", "NumpyArrayWrapper"));
    out.extend(b")\x81");
    out.extend(dict(&[
        (s("subclass"), global("numpy", "ndarray")),
        (s("shape"), tuple(&[int(n)])),
        (s("order"), s("C")),
        (s("dtype"), dt),
        (s("allow_mmap"), b"\x89".to_vec()),
        (s("numpy_array_alignment_bytes"), int(16)),
    ]));
    out.push(b'b');
    out
}

fn forged(report: &skvault_pickle::ScanReport) -> bool {
    report
        .issues
        .iter()
        .any(|i| matches!(i, Issue::ForgedDtype { .. }))
}

fn converts(p: &[u8]) -> bool {
    convert(p, &Limits::default()).is_ok()
}

// ------------------------------------------------------------ dtypes

#[test]
fn canonical_dtypes_are_not_forged() {
    // The controls of the tests below: numpy's own states stay safe and convert.
    for p in [
        reconstructed(scalar("b1", 0), 2, b(&[1, 0])),
        reconstructed(object_struct(27), 1, b"]q\x00(Nh\x00e".to_vec()),
    ] {
        let mut p = p;
        p.push(b'.');
        let report = scan(&p);
        assert!(!forged(&report), "{}", report.to_json());
    }
    let mut p = reconstructed(scalar("b1", 0), 2, b(&[1, 0]));
    p.push(b'.');
    assert_eq!(scan(&p).verdict, Verdict::Safe, "{}", scan(&p).to_json());
    assert!(converts(&p));
}

#[test]
fn joblib_reads_raw_bytes_when_the_flags_say_no_objects() {
    // An object field with flags 0: joblib reads 16 raw bytes (pointers numpy will follow)
    // and goes on after them. The scanner reads the file the same way (no nested pickle in
    // the 0xff bytes) and calls the dtype forged.
    let mut p = wrapper(object_struct(0), 1);
    p.push(0); // padding length
    p.extend([0xff; 16]);
    p.push(b'.');
    let report = scan(&p);
    assert!(report.error.is_none(), "{}", report.to_json());
    assert_eq!(report.joblib_arrays, 1);
    assert!(forged(&report), "{}", report.to_json());
    assert_eq!(report.verdict, Verdict::Unsafe);
    // The same file with numpy's flags is an object array: a nested pickle follows.
    let mut p = wrapper(object_struct(27), 1);
    p.extend(b"\x80\x02]NN\x86a.");
    p.push(b'.');
    let report = scan(&p);
    assert!(
        report.error.is_none() && !forged(&report),
        "{}",
        report.to_json()
    );
}

#[test]
fn joblib_reads_a_nested_pickle_when_the_flags_say_objects() {
    // float64 with the object flags: joblib unpickles a nested pickle where the fields say
    // raw bytes. Reading 8 raw bytes instead would skip the call.
    let mut p = wrapper(scalar("f8", 63), 1);
    p.extend(b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00echo\x85R.");
    p.push(b'.');
    let report = scan(&p);
    assert!(forged(&report), "{}", report.to_json());
    assert!(
        report
            .globals
            .iter()
            .any(|g| g.qualified() == "posix.system"),
        "{}",
        report.to_json()
    );
    assert_eq!(report.verdict, Verdict::Unsafe);
}

#[test]
fn object_dtype_with_flags_zero_in_reconstruct_is_unsafe() {
    // `ndarray.__setstate__` reads raw bytes without NPY_LIST_PICKLE: id(None) as a pointer.
    let mut p = reconstructed(
        scalar("O8", 0),
        1,
        b(&0x4141_4141_4141_4141u64.to_le_bytes()),
    );
    p.push(b'.');
    let report = scan(&p);
    assert!(forged(&report), "{}", report.to_json());
    assert_eq!(report.verdict, Verdict::Unsafe);
    assert!(!converts(&p));
}

#[test]
fn forged_dtype_in_a_masked_array_is_unsafe() {
    let mut p = b"\x80\x02".to_vec();
    p.extend(global("numpy.ma.core", "_mareconstruct"));
    p.extend(tuple(&[
        global("numpy.ma.core", "MaskedArray"),
        global("numpy", "ndarray"),
        tuple(&[int(0)]),
        b(b"b"),
    ]));
    p.push(b'R');
    p.extend(tuple(&[
        int(1),
        tuple(&[int(1)]),
        object_struct(0x10),
        b"\x89".to_vec(),
        b(&[0x41; 16]),
        b(&[0]),
        NONE.to_vec(),
    ]));
    p.extend(b"b.");
    let report = scan(&p);
    assert!(forged(&report), "{}", report.to_json());
    assert_eq!(report.verdict, Verdict::Unsafe);
    assert!(!converts(&p));
}

#[test]
fn dtype_state_that_sets_the_item_size_is_unsafe() {
    for (typestr, elsize) in [("V8", 4096), ("S3", 2), ("U2", 4), ("V8", -1)] {
        let dt = dtype(
            typestr,
            Some(state(
                "|",
                NONE.into(),
                NONE.into(),
                NONE.into(),
                elsize,
                1,
                0,
            )),
        );
        let mut p = reconstructed(dt, 0, b(b""));
        p.push(b'.');
        let report = scan(&p);
        assert!(forged(&report), "{typestr} {elsize}: {}", report.to_json());
        assert_eq!(report.verdict, Verdict::Unsafe);
    }
    // A field that ends beyond the item: numpy reads past each element.
    let fields = dict(&[(s("a"), tuple(&[scalar("O8", 63), int(8)]))]);
    let dt = dtype(
        "V8",
        Some(state("|", NONE.into(), tuple(&[s("a")]), fields, 8, 1, 27)),
    );
    let mut p = reconstructed(dt, 0, b"]".to_vec());
    p.push(b'.');
    assert!(forged(&scan(&p)), "{}", scan(&p).to_json());
}

#[test]
fn overlapping_object_fields_are_unsafe() {
    // numpy refuses to build this dtype (writing `b` forges `a`'s pointer); its state passes.
    let fields = dict(&[
        (s("a"), tuple(&[scalar("O8", 63), int(0)])),
        (s("b"), tuple(&[scalar("i8", 0), int(0)])),
    ]);
    let dt = dtype(
        "V8",
        Some(state(
            "|",
            NONE.into(),
            tuple(&[s("a"), s("b")]),
            fields,
            8,
            1,
            27,
        )),
    );
    let mut p = reconstructed(dt, 0, b"]".to_vec());
    p.push(b'.');
    let report = scan(&p);
    assert!(forged(&report), "{}", report.to_json());
    assert_eq!(report.verdict, Verdict::Unsafe);
}

#[test]
fn hidden_fields_are_unsafe() {
    // numpy frees objects by walking the fields dict, reads items by the names.
    let fields = dict(&[
        (s("a"), tuple(&[scalar("i8", 0), int(0)])),
        (s("hidden"), tuple(&[scalar("O8", 63), int(0)])),
    ]);
    let dt = dtype(
        "V8",
        Some(state(
            "|",
            NONE.into(),
            tuple(&[s("a")]),
            fields,
            8,
            1,
            0x10,
        )),
    );
    let mut p = reconstructed(dt, 0, b(b""));
    p.push(b'.');
    assert!(forged(&scan(&p)), "{}", scan(&p).to_json());
}

#[test]
fn dtypes_made_otherwise_than_numpy_pickles_them_are_unsafe() {
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // copy=False: numpy's shared dtype('O'), which the BUILD would change for the process.
    let mut p = b"\x80\x02".to_vec();
    p.extend(global("numpy", "dtype"));
    p.extend(s("O8"));
    p.extend(b"\x89\x89\x87R.");
    cases.push(p);
    // A type string numpy's pickler never writes.
    let mut p = b"\x80\x02".to_vec();
    p.extend(dtype("object", None));
    p.push(b'.');
    cases.push(p);
    // NEWOBJ of numpy.dtype, and the numpy 2 DType classes.
    let mut p = b"\x80\x02".to_vec();
    p.extend(global("numpy", "dtype"));
    p.extend(tuple(&[s("O8")]));
    p.extend(b"\x81.");
    cases.push(p);
    let mut p = b"\x80\x02".to_vec();
    p.extend(global("numpy.dtypes", "ObjectDType"));
    p.extend(b")\x81");
    p.extend(state("|", NONE.into(), NONE.into(), NONE.into(), -1, -1, 0));
    p.extend(b"b.");
    cases.push(p);
    // A state set twice.
    let mut p = b"\x80\x02".to_vec();
    p.extend(scalar("O8", 63));
    p.extend(state("|", NONE.into(), NONE.into(), NONE.into(), -1, -1, 0));
    p.extend(b"b.");
    cases.push(p);
    for p in cases {
        let report = scan(&p);
        assert!(forged(&report), "{p:?}: {}", report.to_json());
        assert_eq!(report.verdict, Verdict::Unsafe);
    }
}

#[test]
fn a_field_dtype_changed_after_its_parent_is_unsafe() {
    // `f` is an unstructured V8 when the parent takes it as a field (flags 0x10 agree), then
    // becomes an object dtype: the parent's flags still say no objects.
    let mut p = b"\x80\x02".to_vec();
    p.extend(dtype("V8", None));
    p.extend(b"q\x01"); // memo 1: the field dtype
    p.extend(b"0");
    let fields = dict(&[(s("a"), tuple(&[b"h\x01".to_vec(), int(0)]))]);
    p.extend(dtype(
        "V8",
        Some(state(
            "|",
            NONE.into(),
            tuple(&[s("a")]),
            fields,
            8,
            1,
            0x10,
        )),
    ));
    p.extend(b"0h\x01");
    let inner = dict(&[(s("x"), tuple(&[scalar("O8", 63), int(0)]))]);
    p.extend(state("|", NONE.into(), tuple(&[s("x")]), inner, 8, 1, 27));
    p.extend(b"b.");
    let report = scan(&p);
    assert!(forged(&report), "{}", report.to_json());
    assert_eq!(report.verdict, Verdict::Unsafe);
}

// ------------------------------------------------------------ files and item calls

#[test]
fn memmap_and_other_file_access_are_dangerous() {
    // numpy.memmap('/x/evil.pth', 'uint8', 'w+', 0, (16,)) then `m[:] = payload`.
    let mut p = b"\x80\x02".to_vec();
    p.extend(global("numpy", "memmap"));
    p.extend(tuple(&[
        s("/x/evil.pth"),
        s("uint8"),
        s("w+"),
        int(0),
        tuple(&[int(16)]),
    ]));
    p.push(b'R');
    p.extend(global("builtins", "slice"));
    p.extend(tuple(&[NONE.to_vec(), NONE.to_vec(), NONE.to_vec()]));
    p.push(b'R');
    p.extend(b(b"import os;os.system('x')\n"));
    p.extend(b"s.");
    let report = scan(&p);
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    assert!(report
        .globals
        .iter()
        .any(|g| g.qualified() == "numpy.memmap" && g.kind == GlobalKind::Dangerous));
    assert!(report
        .issues
        .iter()
        .any(|i| matches!(i, Issue::ItemsCall { .. })));
    assert!(!converts(&p));
    for (m, n) in [
        ("numpy._core.memmap", "memmap"),
        ("numpy.core.memmap", "memmap"),
        ("numpy", "fromfile"),
        ("numpy", "ndarray.tofile"),
        ("numpy.lib.format", "open_memmap"),
        ("numpy.lib._npyio_impl", "savetxt"),
        ("numpy", "savez"),
        ("numpy.ma", "dump"),
        ("numpy.ctypeslib", "load_library"),
        ("scipy.io", "savemat"),
        ("scipy.sparse", "save_npz"),
        ("pandas", "read_pickle"),
        ("pandas", "DataFrame.to_csv"),
        ("sklearn.datasets", "fetch_openml"),
        ("gzip", "open"),
        ("torch", "load"),
    ] {
        let mut p = b"\x80\x02".to_vec();
        p.extend(global(m, n));
        p.push(b'.');
        let report = scan(&p);
        assert_eq!(
            report.globals[0].kind,
            GlobalKind::Dangerous,
            "{m}.{n}: {}",
            report.to_json()
        );
        assert_eq!(report.verdict, Verdict::Unsafe);
    }
}

#[test]
fn item_opcodes_on_objects_are_calls() {
    // SETITEM on an array from `_reconstruct`: ndarray.__setitem__, not a dict.
    let mut p = reconstructed(scalar("b1", 0), 2, b(&[1, 0]));
    p.extend(int(0));
    p.extend(b"\x88s.");
    let report = scan(&p);
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    assert!(report
        .issues
        .iter()
        .any(|i| matches!(i, Issue::ItemsCall { .. })));
    // SETITEMS on what a function returned.
    let mut p = global("numpy", "log1p");
    p.extend(tuple(&[b"F1.0\n".to_vec()]));
    p.extend(b"R(K\x01K\x02u.");
    let report = scan(&p);
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    // A trusted dict subclass (scikit-learn's Bunch) and a plain dict take items as always.
    let mut p = b"\x80\x02".to_vec();
    p.extend(global("sklearn.utils._bunch", "Bunch"));
    p.extend(b")\x81");
    p.extend(s("k"));
    p.extend(int(1));
    p.extend(b"s}");
    p.extend(s("k"));
    p.extend(int(1));
    p.extend(b"s\x86.");
    let report = scan(&p);
    assert_eq!(report.verdict, Verdict::Safe, "{}", report.to_json());
}

#[test]
fn build_on_what_a_function_returned_is_unsafe() {
    // numpy.result_type('O') is a dtype; its BUILD could set any flags.
    let mut p = global("numpy", "result_type");
    p.extend(tuple(&[s("O")]));
    p.push(b'R');
    p.extend(state("|", NONE.into(), NONE.into(), NONE.into(), -1, -1, 0));
    p.extend(b"b.");
    let report = scan(&p);
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    assert!(report
        .issues
        .iter()
        .any(|i| matches!(i, Issue::StateOfCallResult { .. })));
}
