//! Floats in JSON, bit-exact (docs/FORMAT.md, "Numbers"): the shortest decimal that reads
//! back to the same bits, `"inf"` / `"-inf"`, `"nan"` for the canonical quiet NaN and
//! `"nan:<hex bits>"` for any other NaN. The object tree's floats and the JSON export's
//! array elements are written here.

use serde_json::{Number, Value};

/// The bits `"nan"` stands for: the quiet NaN numpy and Python produce.
pub const CANONICAL_NAN_F64: u64 = 0x7ff8_0000_0000_0000;
/// The float32 bits `"nan"` stands for.
pub const CANONICAL_NAN_F32: u32 = 0x7fc0_0000;

/// A finite float as a JSON number, the rest as its string form.
fn number_or(x: f64, nan: impl FnOnce() -> String) -> Value {
    if x.is_nan() {
        Value::String(nan())
    } else if x.is_infinite() {
        Value::String(if x > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// A float64 in JSON: NaN payloads as 16 hex digits.
pub fn f64_to_json(x: f64) -> Value {
    number_or(x, || {
        let bits = x.to_bits();
        if bits == CANONICAL_NAN_F64 {
            "nan".into()
        } else {
            format!("nan:{bits:016x}")
        }
    })
}

/// A float32 in JSON: the shortest decimal that reads back as this float32, NaN payloads as
/// 8 hex digits.
pub fn f32_to_json(x: f32) -> Value {
    if x.is_finite() {
        // Read as a double and rounded to float32, the shortest float32 decimal gives the
        // same bits (double rounding is exact from 53 to 24 bits).
        let text = format!("{x:e}");
        let wide: f64 = text.parse().unwrap_or(f64::from(x));
        return number_or(wide, String::new);
    }
    number_or(f64::from(x), || {
        let bits = x.to_bits();
        if bits == CANONICAL_NAN_F32 {
            "nan".into()
        } else {
            format!("nan:{bits:08x}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_values_have_string_forms() {
        assert_eq!(f64_to_json(f64::INFINITY), Value::from("inf"));
        assert_eq!(f64_to_json(f64::NEG_INFINITY), Value::from("-inf"));
        assert_eq!(f64_to_json(f64::from_bits(CANONICAL_NAN_F64)), "nan");
        assert_eq!(
            f64_to_json(f64::from_bits(0xfff8_0000_0000_0001)),
            "nan:fff8000000000001"
        );
        assert_eq!(f32_to_json(f32::from_bits(CANONICAL_NAN_F32)), "nan");
        assert_eq!(f32_to_json(f32::from_bits(0xffc0_0001)), "nan:ffc00001");
        assert_eq!(f32_to_json(f32::NEG_INFINITY), "-inf");
    }

    #[test]
    fn float32_is_its_shortest_decimal() {
        assert_eq!(f32_to_json(0.1).to_string(), "0.1");
        assert_eq!(
            f64_to_json(f64::from(0.1f32)).to_string(),
            "0.10000000149011612"
        );
        assert_eq!(f64_to_json(-0.0).to_string(), "-0.0");
    }
}
