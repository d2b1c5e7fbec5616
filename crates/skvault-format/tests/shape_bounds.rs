//! FORMAT.md 3.1/3.2 bounds that numpy and every consumer rely on: shapes whose dimensions
//! overflow numpy's size limit even with a zero among them, arrays that hold no bytes but
//! declare huge extents (zero dimensions, `|V0`, `|S0`, `<U0`), object arrays likewise,
//! aligned structs with misaligned fields, and sub-arrays numpy refuses. One hostile
//! manifest per rule, with the nearest valid one beside it so each test can fail.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::container;
use serde_json::{json, Value};
use skvault_format::manifest::{hex, MAX_EMPTY_EXTENT};
use skvault_format::write::digest;
use skvault_format::{FormatError, SkvFile};

/// A file whose only array has `dtype` and `shape` and no bytes.
fn empty_array(dtype: Value, shape: Value) -> Result<SkvFile, FormatError> {
    let manifest = json!({
        "writer": "test",
        "arrays": [{
            "dtype": dtype, "shape": shape, "order": "C", "offset": 0, "length": 0,
            "codec": "none", "raw_length": 0, "digest": hex(&digest(&[])),
        }],
        "root": {"array": 0},
    });
    SkvFile::from_bytes(container(manifest.to_string().as_bytes(), &[]))
}

fn root(node: Value) -> Result<SkvFile, FormatError> {
    let manifest = json!({"writer": "test", "arrays": [], "root": node});
    SkvFile::from_bytes(container(manifest.to_string().as_bytes(), &[]))
}

fn layout_error(r: Result<SkvFile, FormatError>, needle: &str) {
    match r {
        Err(FormatError::ArrayLayout { index: 0, message }) => {
            assert!(message.contains(needle), "{message}")
        }
        Err(other) => panic!("expected ArrayLayout, got {other}"),
        Ok(_) => panic!("accepted"),
    }
}

fn dtype_error(r: Result<SkvFile, FormatError>, needle: &str) {
    match r {
        Err(FormatError::DType { message, .. }) => assert!(message.contains(needle), "{message}"),
        Err(other) => panic!("expected DType, got {other}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn a_zero_dimension_does_not_excuse_an_overflowing_shape() {
    // numpy: "Maximum allowed dimension exceeded" / "array is too big".
    layout_error(
        empty_array(json!("<f8"), json!([0u64, u64::MAX])),
        "holds no bytes",
    );
    layout_error(
        empty_array(json!("|u1"), json!([0u64, i64::MAX as u64])),
        "holds no bytes",
    );
    layout_error(
        empty_array(json!("<f8"), json!([1u64 << 40, 0, 1u64 << 40])),
        "holds no bytes",
    );
    assert!(empty_array(json!("<f8"), json!([0, 3])).is_ok());
}

#[test]
fn empty_arrays_declare_at_most_the_empty_extent() {
    assert!(empty_array(json!("<f8"), json!([0, MAX_EMPTY_EXTENT])).is_ok());
    assert!(empty_array(json!("<f8"), json!([MAX_EMPTY_EXTENT, 0])).is_ok());
    layout_error(
        empty_array(json!("<f8"), json!([0, MAX_EMPTY_EXTENT + 1])),
        "holds no bytes",
    );
    layout_error(
        empty_array(json!("<f8"), json!([1024, 0, 1025])),
        "holds no bytes",
    );
}

#[test]
fn zero_width_dtypes_count_their_elements() {
    for dt in ["|V0", "|S0", "<U0"] {
        assert!(
            empty_array(json!(dt), json!([MAX_EMPTY_EXTENT])).is_ok(),
            "{dt}"
        );
        layout_error(
            empty_array(json!(dt), json!([MAX_EMPTY_EXTENT + 1])),
            "holds no bytes",
        );
        layout_error(
            empty_array(json!(dt), json!([1u64 << 62])),
            "holds no bytes",
        );
    }
    // A record of zero-width fields is zero-width too.
    let record = json!({"fields": [["a", "|V0", 0]], "itemsize": 0});
    layout_error(empty_array(record, json!([1u64 << 40])), "holds no bytes");
}

#[test]
fn shapes_past_numpys_size_are_refused_even_with_bytes_declared() {
    // 2^61 float64 elements: 2^64 bytes overflow; 2^60: 2^63 bytes, one past numpy's limit.
    layout_error(empty_array(json!("<f8"), json!([1u64 << 61])), "exceeds");
    layout_error(empty_array(json!("<f8"), json!([1u64 << 60])), "exceeds");
}

#[test]
fn object_arrays_with_absurd_empty_shapes_are_refused() {
    let err = root(json!({"objarray": [], "shape": [0u64, u64::MAX]})).unwrap_err();
    assert!(matches!(err, FormatError::Manifest { .. }), "{err}");
    assert!(err.to_string().contains("holds no bytes"), "{err}");
    let err = root(json!({"objarray": [], "shape": [0, MAX_EMPTY_EXTENT + 1]})).unwrap_err();
    assert!(err.to_string().contains("holds no bytes"), "{err}");
    assert!(root(json!({"objarray": [], "shape": [0, 5]})).is_ok());
    assert!(root(json!({"objarray": [1, 2], "shape": [2]})).is_ok());
}

#[test]
fn aligned_structs_need_aligned_offsets_and_itemsize() {
    let st = |f: &str, off: u64, size: u64, aligned: bool| json!({"fields": [["a", f, off]], "itemsize": size, "aligned": aligned});
    // numpy: "offset 1 ... is not divisible by the field alignment 8 with align=True".
    dtype_error(
        empty_array(st("<f8", 1, 16, true), json!([0])),
        "alignment 8",
    );
    dtype_error(
        empty_array(st(">f8", 4, 16, true), json!([0])),
        "alignment 8",
    );
    dtype_error(
        empty_array(st("<U3", 2, 16, true), json!([0])),
        "alignment 4",
    );
    dtype_error(
        empty_array(st("<f2", 1, 4, true), json!([0])),
        "alignment 2",
    );
    // "requires alignment of 8 bytes, which is not divisible into the specified itemsize 9".
    dtype_error(empty_array(st("<f8", 0, 9, true), json!([0])), "itemsize 9");
    // What numpy accepts stays accepted.
    assert!(empty_array(st("<f8", 1, 16, false), json!([0])).is_ok());
    assert!(empty_array(st("<c8", 4, 12, true), json!([0])).is_ok());
    assert!(empty_array(st("|S3", 1, 4, true), json!([0])).is_ok());
    assert!(empty_array(st("|V0", 3, 3, true), json!([0])).is_ok());
    // A nested unaligned struct aligns to 1, an aligned one to its largest field.
    let inner =
        |aligned: bool| json!({"fields": [["x", "<f8", 0]], "itemsize": 8, "aligned": aligned});
    let outer = |aligned_inner: bool| json!({"fields": [["a", inner(aligned_inner), 4]], "itemsize": 16, "aligned": true});
    assert!(empty_array(outer(false), json!([0])).is_ok());
    dtype_error(empty_array(outer(true), json!([0])), "alignment 8");
    let sub = json!({"fields": [["a", {"subarray": "<f8", "shape": [2]}, 4]], "itemsize": 24, "aligned": true});
    dtype_error(empty_array(sub, json!([0])), "alignment 8");
}

#[test]
fn sub_arrays_numpy_refuses_are_refused() {
    let field = |sub: Value| json!({"fields": [["a", sub, 0]], "itemsize": 0});
    // "invalid itemsize in generic type tuple".
    for dt in ["|V0", "|S0", "<U0"] {
        dtype_error(
            empty_array(field(json!({"subarray": dt, "shape": [2]})), json!([0])),
            "zero-width",
        );
    }
    // "dimension does not fit into a C int", even next to a 0.
    dtype_error(
        empty_array(
            field(json!({"subarray": "<f8", "shape": [0u64, u64::MAX]})),
            json!([0]),
        ),
        "too large",
    );
    dtype_error(
        empty_array(
            field(json!({"subarray": "<f8", "shape": [1u64 << 31, 0]})),
            json!([0]),
        ),
        "too large",
    );
    assert!(empty_array(
        field(json!({"subarray": "|u1", "shape": [1000, 0]})),
        json!([0])
    )
    .is_ok());
}
