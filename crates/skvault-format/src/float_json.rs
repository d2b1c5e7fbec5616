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

/// A string that is not one of the float encodings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FloatTextError {
    #[error(
        "{text:?} is not a float encoding (nan, inf, -inf or nan:<{digits} lowercase hex digits>)"
    )]
    NotAFloat { text: String, digits: usize },
    #[error("nan:<bits> must encode a NaN")]
    NotANan,
}

/// The bits a `"nan:<hex>"` text gives, `digits` lowercase hex digits exactly, or the named
/// values; the inverse of the string forms the `*_to_json` functions write.
fn from_text(text: &str, digits: usize) -> Result<TextValue, FloatTextError> {
    match text {
        "nan" => return Ok(TextValue::CanonicalNan),
        "inf" => return Ok(TextValue::Inf(false)),
        "-inf" => return Ok(TextValue::Inf(true)),
        _ => {}
    }
    let not_a_float = || FloatTextError::NotAFloat {
        text: text.to_string(),
        digits,
    };
    let hex = text
        .strip_prefix("nan:")
        .filter(|h| h.len() == digits && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(not_a_float)?;
    u64::from_str_radix(hex, 16)
        .map(TextValue::Bits)
        .map_err(|_| not_a_float())
}

enum TextValue {
    CanonicalNan,
    Inf(bool),
    Bits(u64),
}

/// The float64 a string form stands for, bit-exact (`"nan:"` takes 16 hex digits).
pub fn f64_from_text(text: &str) -> Result<f64, FloatTextError> {
    Ok(match from_text(text, 16)? {
        TextValue::CanonicalNan => f64::from_bits(CANONICAL_NAN_F64),
        TextValue::Inf(negative) => {
            if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        TextValue::Bits(bits) => {
            let x = f64::from_bits(bits);
            if !x.is_nan() {
                return Err(FloatTextError::NotANan);
            }
            x
        }
    })
}

/// The float32 a string form stands for, bit-exact (`"nan:"` takes 8 hex digits).
pub fn f32_from_text(text: &str) -> Result<f32, FloatTextError> {
    Ok(match from_text(text, 8)? {
        TextValue::CanonicalNan => f32::from_bits(CANONICAL_NAN_F32),
        TextValue::Inf(negative) => {
            if negative {
                f32::NEG_INFINITY
            } else {
                f32::INFINITY
            }
        }
        TextValue::Bits(bits) => {
            // 8 hex digits always fit.
            let x = f32::from_bits(u32::try_from(bits).map_err(|_| FloatTextError::NotANan)?);
            if !x.is_nan() {
                return Err(FloatTextError::NotANan);
            }
            x
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_read_back_bit_exact_and_strictly() {
        for x in [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::from_bits(0x7ff0_0000_0000_0001),
        ] {
            let Value::String(text) = f64_to_json(x) else {
                panic!("{x}")
            };
            assert_eq!(f64_from_text(&text).unwrap().to_bits(), x.to_bits());
        }
        assert_eq!(f64_from_text("nan").unwrap().to_bits(), CANONICAL_NAN_F64);
        assert_eq!(f32_from_text("nan").unwrap().to_bits(), CANONICAL_NAN_F32);
        assert_eq!(
            f32_from_text("nan:7fc00001").unwrap().to_bits(),
            0x7fc0_0001
        );
        // Upper-case hex, the wrong digit count and non-NaN bits are refused.
        assert!(matches!(
            f64_from_text("nan:7FF0000000000001"),
            Err(FloatTextError::NotAFloat { .. })
        ));
        assert!(matches!(
            f32_from_text("nan:7ff0000000000001"),
            Err(FloatTextError::NotAFloat { .. })
        ));
        assert_eq!(
            f64_from_text("nan:3ff0000000000000"),
            Err(FloatTextError::NotANan)
        );
        assert!(f64_from_text("1.5").is_err());
    }

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
