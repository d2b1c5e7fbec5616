//! One hostile or unsupported input per error variant: each is an error, none panics, and a
//! scan of it is `Unsafe`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;

use common::joblib_wrapper;
use skvault_pickle::{convert, decompress, scan, Limits, PickleError, Verdict};

fn err(bytes: &[u8]) -> PickleError {
    err_with(bytes, &Limits::default())
}

fn err_with(bytes: &[u8], limits: &Limits) -> PickleError {
    let e = match convert(bytes, limits) {
        Ok(_) => panic!("{bytes:?} converted"),
        Err(e) => e,
    };
    let report = skvault_pickle::scan_with(
        bytes,
        &skvault_pickle::ScanOptions {
            limits: limits.clone(),
            ..Default::default()
        },
    );
    // Conversion refusals of valid streams are not scan errors; everything else is.
    if !matches!(
        e,
        PickleError::Convert { .. } | PickleError::NotAClass { .. }
    ) {
        assert_eq!(
            report.verdict,
            Verdict::Unsafe,
            "{e}: {:?}",
            report.to_json()
        );
        assert!(report.error.is_some());
    }
    e
}

#[test]
fn empty_and_foreign_inputs() {
    assert!(matches!(err(b""), PickleError::Empty));
    assert!(matches!(
        err(b"SKVAULT\0rest"),
        PickleError::NotAPickle { .. }
    ));
    assert!(matches!(
        err(b"PK\x03\x04zip"),
        PickleError::NotAPickle { .. }
    ));
    assert!(matches!(err(b"\x00\x01"), PickleError::NotAPickle { .. }));
    assert!(matches!(
        err(b"ZF0x10 old joblib"),
        PickleError::NotAPickle { .. }
    ));
    // Compressed data must be decompressed before `convert`.
    assert!(matches!(
        err(b"x\x9c\x03\x00\x00\x00\x00\x01"),
        PickleError::NotAPickle { .. }
    ));
}

#[test]
fn truncations_and_lengths() {
    assert!(matches!(err(b"\x80\x04K"), PickleError::Truncated { .. }));
    assert!(matches!(err(b"K\x01"), PickleError::Truncated { .. }));
    assert!(matches!(err(b"cos\nsys"), PickleError::Truncated { .. }));
    let huge = b"\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.";
    assert!(matches!(err(huge), PickleError::LengthTooLarge { .. }));
    assert!(matches!(
        err(b"X\xff\xff\xff\xffab."),
        PickleError::LengthTooLarge { .. }
    ));
    assert!(matches!(
        err(b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff"),
        PickleError::LengthTooLarge { .. }
    ));
}

#[test]
fn opcode_misuse() {
    assert!(matches!(
        err(b"N\xff"),
        PickleError::UnknownOpcode { opcode: 0xff, .. }
    ));
    assert!(matches!(
        err(b"\x80\x05\x99"),
        PickleError::UnknownOpcode { .. }
    ));
    assert!(matches!(err(b"R."), PickleError::StackUnderflow { .. }));
    assert!(matches!(err(b"."), PickleError::StackUnderflow { .. }));
    assert!(matches!(err(b"NN(R."), PickleError::StackUnderflow { .. }));
    assert!(matches!(err(b"K\x01t."), PickleError::NoMark { .. }));
    assert!(matches!(err(b"1."), PickleError::NoMark { .. }));
    assert!(matches!(
        err(b"h\x05."),
        PickleError::MemoMissing { index: 5, .. }
    ));
    assert!(matches!(err(b"g-1\n."), PickleError::Malformed { .. }));
    assert!(matches!(err(b"q\x00."), PickleError::StackUnderflow { .. }));
    assert!(matches!(err(b"S'abc\n."), PickleError::Malformed { .. }));
    assert!(matches!(err(b"S'\\x4'\n."), PickleError::Malformed { .. }));
    assert!(matches!(
        err(b"T\xff\xff\xff\xff."),
        PickleError::Malformed { .. }
    ));
    assert!(matches!(err(b"U\x01\xff."), PickleError::Malformed { .. }));
    assert!(matches!(
        err(b"X\x01\x00\x00\x00\xff."),
        PickleError::Malformed { .. }
    ));
    assert!(matches!(
        err(b"\x8b\xff\xff\xff\xff."),
        PickleError::Malformed { .. }
    ));
    assert!(matches!(err(b"I1.5\n."), PickleError::Malformed { .. }));
    assert!(matches!(err(b"Fabc\n."), PickleError::Malformed { .. }));
    assert!(matches!(err(b"\x80\x06N."), PickleError::Malformed { .. }));
    assert!(matches!(err(b"}(K\x01u."), PickleError::Malformed { .. }));
    assert!(matches!(err(b"(K\x01d."), PickleError::Malformed { .. }));
    assert!(matches!(
        err(b"K\x01K\x02a."),
        PickleError::Malformed { .. }
    ));
    assert!(matches!(
        err(b"]K\x01K\x02s."),
        PickleError::Malformed { .. }
    ));
    assert!(matches!(
        err(b"](K\x01\x90."),
        PickleError::Malformed { .. }
    ));
    assert!(matches!(err(b"]Nb."), PickleError::Malformed { .. }));
    // STACK_GLOBAL only takes str constants, not values built by other opcodes.
    assert!(matches!(
        err(b"\x80\x04K\x01K\x02\x93."),
        PickleError::Malformed { .. }
    ));
    // A new frame while the current one still has bytes.
    assert!(matches!(
        err(b"\x80\x04\x95\x0a\x00\x00\x00\x00\x00\x00\x00\x95\x01\x00\x00\x00\x00\x00\x00\x00N."),
        PickleError::Malformed { .. }
    ));
}

#[test]
fn unsupported_opcodes() {
    for p in [
        &b"Pid\n."[..],
        b"NQ.",
        b"\x80\x02\x82\x01.",
        b"\x80\x02\x83\x01\x00.",
        b"\x80\x02\x84\x01\x00\x00\x00.",
        b"\x80\x05\x97.",
        b"\x80\x05C\x01a\x98.",
    ] {
        assert!(matches!(err(p), PickleError::Unsupported { .. }), "{p:?}");
    }
}

#[test]
fn limits() {
    let small = Limits {
        max_marks: 10,
        max_stack: 10,
        max_memo: 2,
        max_depth: 5,
        max_name_len: 8,
        max_alloc: 10_000,
        ..Limits::default()
    };
    let marks = [b'('; 20];
    assert!(matches!(
        err_with(&marks, &small),
        PickleError::LimitExceeded { .. }
    ));
    let stack = [b'N'; 20];
    assert!(matches!(
        err_with(&stack, &small),
        PickleError::LimitExceeded { .. }
    ));
    assert!(matches!(
        err_with(b"N\x94\x94\x94.", &small),
        PickleError::LimitExceeded { .. }
    ));
    assert!(matches!(
        err_with(b"cmodule_name_too_long\nx\n.", &small),
        PickleError::LimitExceeded { .. }
    ));
    let mut lists = b"]".repeat(400);
    lists.push(b'.');
    assert!(matches!(
        err_with(&lists, &small),
        PickleError::LimitExceeded { .. }
    ));
    // Nesting deeper than max_depth when converting.
    let mut nested = b"]".repeat(8);
    nested.extend(b"a".repeat(7));
    nested.push(b'.');
    let limits = Limits {
        max_depth: 5,
        ..Limits::default()
    };
    assert!(matches!(
        convert(&nested, &limits),
        Err(PickleError::Convert { .. })
    ));
}

#[test]
fn trailing_data_is_refused_by_convert_and_scanned() {
    assert!(matches!(
        err(b"N.garbage"),
        PickleError::TrailingData { .. }
    ));
    // Two pickles: both scanned.
    let report = scan(b"N.cos\nsystem\n.");
    assert_eq!(report.pickles, 2);
    assert_eq!(report.verdict, Verdict::Unsafe);
}

#[test]
fn decompression_errors() {
    let limits = Limits::default();
    assert!(matches!(
        decompress(b"x\x9cnot zlib at all", &limits),
        Err(PickleError::Decompress { .. })
    ));
    assert!(matches!(
        decompress(b"\x1f\x8b\x08\x00broken", &limits),
        Err(PickleError::Decompress { .. })
    ));
    assert!(matches!(
        decompress(b"BZh9broken", &limits),
        Err(PickleError::Decompress { .. })
    ));
    assert!(matches!(
        decompress(b"\xfd7zXZ\x00broken", &limits),
        Err(PickleError::Decompress { .. })
    ));
    assert!(matches!(
        decompress(b"\x5d\x00\x00\x80\x00broken", &limits),
        Err(PickleError::Decompress { .. })
    ));
    assert!(matches!(
        decompress(b"\x04\x22\x4d\x18broken", &limits),
        Err(PickleError::Decompress { .. })
    ));
    // A zip bomb stops at the limit.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 10 << 20]).unwrap();
    let bomb = z.finish().unwrap();
    let small = Limits {
        max_decompressed: 1 << 20,
        ..Limits::default()
    };
    assert!(matches!(
        decompress(&bomb, &small),
        Err(PickleError::DecompressedTooLarge { .. })
    ));
    let report = skvault_pickle::scan_with(
        &bomb,
        &skvault_pickle::ScanOptions {
            limits: small,
            ..Default::default()
        },
    );
    assert_eq!(report.verdict, Verdict::Unsafe);
}

#[test]
fn conversion_refusals() {
    match convert(b"cos\nsystem\n(S'echo'\ntR.", &Limits::default()) {
        Err(PickleError::NotAClass { callable, .. }) => assert_eq!(callable, "os.system"),
        other => panic!("{other:?}"),
    }
    // Two BUILDs on one object.
    let p = b"\x80\x02cbuiltins\nobject\n)\x81}b}b.";
    assert!(matches!(err(p), PickleError::Convert { .. }));
    // A tuple that contains itself through a list: no loader can rebuild it.
    let p = b"\x80\x02]q\x00h\x00\x85q\x01a0h\x01.";
    assert!(matches!(err(p), PickleError::Convert { .. }));
    // A REDUCE of a computed callable.
    let p = b"\x80\x02cbuiltins\ngetattr\ncbuiltins\ndict\nX\x03\x00\x00\x00get\x86R)R.";
    assert!(matches!(err(p), PickleError::Convert { .. }));
}

#[test]
fn joblib_array_errors() {
    // A NumpyArrayWrapper whose data runs past the end.
    let mut p = joblib_wrapper(4);
    p.extend(b"\x00abc");
    assert!(matches!(err(&p), PickleError::Joblib { .. }));
}
