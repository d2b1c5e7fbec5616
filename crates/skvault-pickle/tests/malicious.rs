//! Hand-made attacks on the scanner: routes a pickler never takes by itself, and streams
//! built to make a scanner read something other than what `pickle.load` or `joblib.load`
//! would execute.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::joblib_wrapper;
use skvault_pickle::{scan, GlobalKind, Issue, Verdict};

fn kinds(bytes: &[u8]) -> Vec<(String, GlobalKind)> {
    scan(bytes)
        .globals
        .iter()
        .map(|g| (g.qualified(), g.kind))
        .collect()
}

#[test]
fn joblib_array_bytes_cannot_hide_opcodes_from_pickle_load() {
    // Benign: 16 bytes of padding length and padding, then 2 float64.
    let mut ok = joblib_wrapper(2);
    ok.push(3);
    ok.extend([0xff; 3]);
    ok.extend([0u8; 16]);
    ok.push(b'.');
    let report = scan(&ok);
    assert_eq!(report.verdict, Verdict::Safe, "{}", report.to_json());
    assert_eq!(report.joblib_arrays, 1);
    // The padding length is 'c' (99): joblib skips 99 bytes, but `pickle.load` of the same
    // file reads GLOBAL os.system from them.
    let payload = b"os\nsystem\n(S'echo pwned'\ntR.";
    let mut evil = joblib_wrapper(2);
    evil.push(b'c');
    evil.extend(payload);
    evil.extend(vec![b' '; 99 - payload.len()]);
    evil.extend([0u8; 16]);
    evil.push(b'.');
    let report = scan(&evil);
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    assert!(report.globals.iter().any(|g| g.qualified() == "os.system"));
}

#[test]
fn joblib_reads_array_bytes_after_the_frame_not_inside_it() {
    // The wrapper's BUILD is in a frame that goes on with os.system: joblib reads the array
    // from the file after the frame, then runs the rest of the frame.
    let wrapper = joblib_wrapper(2);
    let wrapper = &wrapper[2..]; // without PROTO
    let evil = b"0cos\nsystem\n(S'echo pwned'\ntR.";
    let mut p = b"\x80\x04\x95".to_vec();
    p.extend(((wrapper.len() + evil.len()) as u64).to_le_bytes());
    p.extend(wrapper);
    p.extend(evil);
    p.push(0); // padding length
    p.extend([0u8; 16]);
    let report = scan(&p);
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    assert!(report.globals.iter().any(|g| g.qualified() == "os.system"));
}

#[test]
fn joblib_object_arrays_are_nested_pickles() {
    // dtype('O'): joblib unpickles a whole nested pickle from the file.
    let mut p = joblib_wrapper(1);
    let o = p.windows(2).position(|w| w == b"f8").unwrap();
    p[o] = b'O';
    p.extend(b"\x80\x04cposix\nsystem\nX\x04\x00\x00\x00echo\x85R.");
    p.push(b'.');
    let report = scan(&p);
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    assert!(report
        .globals
        .iter()
        .any(|g| g.qualified() == "posix.system"));
}

#[test]
fn build_on_a_global_is_monkeypatching() {
    // setattr(Pipeline, 'predict', int): every name is allowed, the BUILD is not.
    let p = b"\x80\x04\x8c\x10sklearn.pipeline\x8c\x08Pipeline\x93N}\x8c\x07predict\x8c\x08builtins\x8c\x03int\x93s\x86b.";
    let report = scan(p);
    assert_eq!(report.verdict, Verdict::Unsafe);
    assert!(matches!(report.issues[..], [Issue::BuildOnGlobal { .. }]));
    assert!(report.globals.iter().all(|g| g.kind == GlobalKind::Safe));
}

#[test]
fn calling_a_computed_object_is_unsafe() {
    // partial(int)("1"): allowed names, but REDUCE calls the result of another call.
    let p = b"\x80\x04\x8c\tfunctools\x8c\x07partial\x93\x8c\x08builtins\x8c\x03int\x93\x85R\x8c\x011\x85R.";
    let report = scan(p);
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    assert!(matches!(
        report.issues[..],
        [Issue::ComputedCallable { .. }]
    ));
}

#[test]
fn attribute_paths_and_python_2_names() {
    let p = b"\x80\x04\x8c\x08builtins\x8c\x1cstr.__class__.__subclasses__\x93.";
    assert_eq!(
        kinds(p),
        vec![(
            "builtins.str.__class__.__subclasses__".into(),
            GlobalKind::Dangerous
        )]
    );
    let p = b"\x80\x04\x8c\x0csklearn.base\x8c\tos.system\x93.";
    assert_eq!(kinds(p)[0].1, GlobalKind::Dangerous);
    // At protocol 4 `__builtin__` is not renamed, but joblib's nested pickles resolve names
    // with the outer stream's protocol: the renamed reading is reported too.
    let p = b"\x80\x04c__builtin__\neval\n.";
    let k = kinds(p);
    assert!(
        k.contains(&("builtins.eval".into(), GlobalKind::Dangerous)),
        "{k:?}"
    );
    assert_eq!(scan(p).verdict, Verdict::Unsafe);
    let p = b"ccommands\ngetoutput\n.";
    assert_eq!(
        kinds(p),
        vec![("subprocess.getoutput".into(), GlobalKind::Dangerous)]
    );
}

#[test]
fn every_route_to_os_system() {
    for p in [
        &b"cos\nsystem\n(S'x'\ntR."[..],
        b"(S'x'\nios\nsystem\n.",
        b"(cos\nsystem\nS'x'\no.",
        b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x940h\x02\x8c\x01x\x85R.",
        b"\x80\x02cos\nsystem\nq\x00)\x81.",
        b"\x80\x04\x8c\x02os\x8c\x06system\x93)}\x92.",
        b"\x80\x02cnt\nsystem\n.",
        b"\x80\x02cposix\nsystem\n.",
        // A trusted class whose state holds the dangerous callable.
        b"\x80\x02csklearn.preprocessing._function_transformer\nFunctionTransformer\n)\x81}X\x04\x00\x00\x00funccos\nsystem\nsb.",
        // Truncated after the global: still reported, and the error makes it unsafe anyway.
        b"\x80\x02cos\nsystem\n",
    ] {
        let report = scan(p);
        assert_eq!(report.verdict, Verdict::Unsafe, "{p:?}");
        assert!(
            report.globals.iter().any(|g| g.kind == GlobalKind::Dangerous),
            "{p:?}: {}",
            report.to_json()
        );
    }
}

#[test]
fn calls_of_allowed_functions_and_allocations() {
    // numpy.log1p is allowed as a value, but calling it is not what a model pickle does.
    let report = scan(b"cnumpy\nlog1p\n(F1.0\ntR.");
    assert_eq!(report.verdict, Verdict::Unknown, "{}", report.to_json());
    assert!(matches!(report.issues[..], [Issue::CallsFunction { .. }]));
    // bytearray(2**30): memory exhaustion with an allowed helper.
    let report = scan(b"c__builtin__\nbytearray\n(J\x00\x00\x00\x40tR.");
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    assert!(matches!(report.issues[..], [Issue::LargeAllocation { .. }]));
    let report = scan(
        b"\x80\x02c__builtin__\nbytes\nq\x00\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01\x85\x81.",
    );
    assert_eq!(report.verdict, Verdict::Unsafe, "{}", report.to_json());
    // The protocol 0-2 spellings of bytes stay safe.
    let report = scan(b"c__builtin__\nbytes\n(tR.");
    assert_eq!(report.verdict, Verdict::Safe, "{}", report.to_json());
}
