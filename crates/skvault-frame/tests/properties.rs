//! Round trips of the dictionary coding and the numeric conversion.

use proptest::prelude::*;
use skvault_frame::{Column, DictBuilder, Frame, Value};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-c]{0,2}".prop_map(Value::Str),
        (-3i8..3).prop_map(|v| Value::Num(f64::from(v) / 2.0)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::None),
        Just(Value::NaN),
        Just(Value::NA),
    ]
}

/// Python's `==` between two dictionary values (what sets and dicts use).
fn python_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        _ if a.is_missing() || b.is_missing() => {
            std::mem::discriminant(a) == std::mem::discriminant(b)
        }
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

proptest! {
    #[test]
    fn every_row_decodes_to_a_value_equal_to_what_was_pushed(values in prop::collection::vec(value(), 0..40)) {
        let mut b = DictBuilder::new("c");
        for v in &values {
            b.push(v.clone()).unwrap();
        }
        let d = b.finish();
        prop_assert_eq!(d.len(), values.len());
        for (row, v) in values.iter().enumerate() {
            prop_assert!(python_eq(d.get(row), v), "row {}: {:?} vs {:?}", row, d.get(row), v);
        }
        // Distinct dictionary entries are pairwise unequal.
        for (i, a) in d.values().iter().enumerate() {
            for b in &d.values()[i + 1..] {
                prop_assert!(!python_eq(a, b));
            }
        }
    }

    #[test]
    fn the_numeric_matrix_holds_each_column_in_place(
        a in prop::collection::vec(-1e3f64..1e3, 1..20),
        pick in prop::collection::vec(0usize..2, 0..5),
    ) {
        let n = a.len();
        let b: Vec<Value> = (0..n).map(|i| if i % 3 == 0 { Value::None } else { Value::Num(i as f64) }).collect();
        let mut builder = DictBuilder::new("b");
        for v in &b {
            builder.push(v.clone()).unwrap();
        }
        let f = Frame::new(vec!["a".into(), "b".into()], vec![Column::Numeric(a.clone()), Column::Dict(builder.finish())]).unwrap();
        let m = f.numeric_matrix(&pick).unwrap();
        prop_assert_eq!(m.len(), n * pick.len());
        for row in 0..n {
            for (j, &p) in pick.iter().enumerate() {
                let want = if p == 0 { a[row] } else { b[row].as_f64().unwrap() };
                let got = m[row * pick.len() + j];
                prop_assert!(got == want || (got.is_nan() && want.is_nan()));
            }
        }
    }
}
