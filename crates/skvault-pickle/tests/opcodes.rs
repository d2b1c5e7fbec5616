//! Every opcode of protocols 0 to 5, hand-assembled, through `convert`: what each one pushes or
//! does, and the identity the memo gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use skvault_pickle::{convert, Limits};

fn tree(bytes: &[u8]) -> Value {
    match convert(bytes, &Limits::default()) {
        Ok(c) => c.root.to_json(),
        Err(e) => panic!("{e} in {bytes:?}"),
    }
}

#[test]
fn protocol_0_text_opcodes() {
    // MARK, INT (incl. bools), LONG, FLOAT, STRING, UNICODE, NONE, LIST.
    let p = b"(I7\nI00\nI01\nL-123456789012345678901234567890L\nF1.5\nS'a\\n\\x41'\nVu\\u00e9\\\\\nNI-3\nl.";
    assert_eq!(
        tree(p),
        json!({"list": [7, false, true, {"int": "-123456789012345678901234567890"},
            {"float": 1.5}, "a\nA", "u\u{e9}\\\\", null, -3]})
    );
    // DICT, TUPLE, APPEND, SETITEM, PUT / GET (shared list).
    let p = b"((lp0\nI1\nag0\n(dp1\nS'k'\ng0\nsS'j'\nI2\nstp2\n.";
    assert_eq!(
        tree(p),
        json!({"tuple": [{"list": [1], "id": 0}, {"ref": 0}, {"dict": [["k", {"ref": 0}], ["j", 2]]}]})
    );
}

#[test]
fn protocol_1_binary_opcodes() {
    let mut p = b"]q\x00(K\x01M\x00\x01J\xff\xff\xff\xffG?\xf8\x00\x00\x00\x00\x00\x00".to_vec();
    p.extend(b"U\x02abT\x03\x00\x00\x00cdeX\x02\x00\x00\x00\xc3\xa9Ne");
    p.extend(b"h\x00a"); // BINGET 0: the list itself, a cycle through a list
    p.extend(b"}r\x05\x00\x00\x000j\x05\x00\x00\x00a.");
    let v = tree(&p);
    assert_eq!(
        v,
        json!({"list": [1, 256, -1, {"float": 1.5}, "ab", "cde", "\u{e9}", null, {"ref": 0}, {"dict": []}], "id": 0})
    );
    // EMPTY_TUPLE, POP, POP_MARK, DUP, TUPLE with MARK, OBJ.
    let p = b"(K\x05(K\x01K\x020K\x0312t.";
    assert_eq!(tree(p), json!({"tuple": [5, 5]}));
    let p = b"(K\x01(K\x09K\x081K\x022t.";
    assert_eq!(tree(p), json!({"tuple": [1, 2, 2]}));
}

#[test]
fn protocol_2_opcodes() {
    // PROTO, NEWTRUE/NEWFALSE, TUPLE1-3, LONG1, LONG4, NEWOBJ.
    let mut p = b"\x80\x02\x88\x89\x86K\x01\x85K\x01K\x02K\x03\x87".to_vec();
    p.extend(b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01"); // 2**64
    p.extend(b"\x8b\x02\x00\x00\x00\xff\x7f"); // 32767
    p.extend(b"\x8a\x00"); // 0
    p.extend(b"\x87\x87\x86.");
    assert_eq!(
        tree(&p),
        json!({"tuple": [{"tuple": [true, false]}, {"tuple": [{"tuple": [1]}, {"tuple": [1, 2, 3]},
            {"tuple": [{"int": "18446744073709551616"}, 32767, 0]}]}]})
    );
    let p = b"\x80\x02csklearn.linear_model._logistic\nLogisticRegression\n)\x81}X\x01\x00\x00\x00CG?\xf0\x00\x00\x00\x00\x00\x00sb.";
    assert_eq!(
        tree(p),
        json!({"object": "sklearn.linear_model._logistic.LogisticRegression", "attrs": {"C": {"float": 1.0}}})
    );
}

#[test]
fn protocol_3_to_5_opcodes() {
    // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8, BINUNICODE8, SHORT_BINUNICODE,
    // EMPTY_SET + ADDITEMS, FROZENSET, MEMOIZE + BINGET, LONG_BINPUT / LONG_BINGET, FRAME.
    let mut body = b"(B\x01\x00\x00\x00aC\x01b\x8e\x01\x00\x00\x00\x00\x00\x00\x00c".to_vec();
    body.extend(b"\x96\x01\x00\x00\x00\x00\x00\x00\x00d\x8d\x01\x00\x00\x00\x00\x00\x00\x00e");
    body.extend(b"\x8c\x01f\x8f(K\x02K\x01\x90(K\x03\x91");
    body.extend(b"]\x94h\x00r\x07\x00\x00\x000j\x07\x00\x00\x00t.");
    let mut p = b"\x80\x05\x95".to_vec();
    p.extend((body.len() as u64).to_le_bytes());
    p.extend(&body);
    assert_eq!(
        tree(&p),
        json!({"tuple": [{"bytes": "YQ=="}, {"bytes": "Yg=="}, {"bytes": "Yw=="}, {"bytearray": "ZA=="},
            "e", "f", {"set": [1, 2]}, {"frozenset": [3]}, {"list": [], "id": 0}, {"ref": 0}]})
    );
    // STACK_GLOBAL, NEWOBJ_EX, the empty tuple singleton shared by two fields.
    let p = b"\x80\x04\x8c\x08builtins\x8c\x06object\x93)}\x92}(\x8c\x01a)\x8c\x01b)ub.";
    assert_eq!(
        tree(p),
        json!({"object": "builtins.object", "attrs": {"a": {"tuple": [], "id": 0}, "b": {"ref": 0}}})
    );
}

#[test]
fn inst_and_obj_create_objects() {
    // INST without arguments: cls.__new__(cls); with arguments: cls(*args).
    let p = b"(isklearn.preprocessing._data\nStandardScaler\n(dS'copy'\nI01\nsb.";
    assert_eq!(
        tree(p),
        json!({"object": "sklearn.preprocessing._data.StandardScaler", "attrs": {"copy": true}})
    );
    let p = b"(cfunctools\npartial\ncnumpy\nlog1p\no.";
    assert_eq!(
        tree(p),
        json!({"object": "functools.partial", "call": [{"global": "numpy.log1p"}]})
    );
}

#[test]
fn python_2_names_are_mapped_below_protocol_3() {
    let p = b"c__builtin__\nset\n((lI1\natR.";
    assert_eq!(tree(p), json!({"set": [1]}));
    let p = b"c__builtin__\nEllipsis\n.";
    assert_eq!(tree(p), json!({"const": "Ellipsis"}));
    // From protocol 3 on, the name is taken as written.
    let p = b"\x80\x03c__builtin__\nlong\n.";
    assert_eq!(tree(p), json!({"global": "__builtin__.long"}));
    let p = b"\x80\x02c__builtin__\nlong\n.";
    assert_eq!(tree(p), json!({"global": "builtins.int"}));
}

#[test]
fn surrogates_and_escapes() {
    let p = b"X\x03\x00\x00\x00\xed\xa0\x80.";
    assert_eq!(tree(p), json!({"str_surrogatepass": "7aCA"}));
    let p = b"V\\ud800\n.";
    assert_eq!(tree(p), json!({"str_surrogatepass": "7aCA"}));
}
