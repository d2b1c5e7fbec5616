//! One array element read from its bytes by its scalar dtype, and numbers written back.
//!
//! The one place that knows how a scalar dtype lays a value out: width, byte order and
//! sign. The JSON export, native inference's state reader and its `classes_` all read
//! elements through [`decode`]; the JSON import writes numbers through [`encode`].
//! Decoding borrows the bytes and never allocates, so it can run once per element.

use crate::dtype::{ByteOrder, DType, Kind};

/// One element of a scalar dtype. float16 has no variant: nothing reads it yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Element<'a> {
    Bool(bool),
    /// Any signed integer width, sign-extended.
    Int(i64),
    /// Any unsigned integer width.
    UInt(u64),
    F32(f32),
    F64(f64),
    /// `<c8`: real and imaginary float32 parts.
    Complex64(f32, f32),
    /// `<c16`: real and imaginary float64 parts.
    Complex128(f64, f64),
    /// `S`: the fixed-width bytes, numpy's trailing NUL padding included.
    Bytes(&'a [u8]),
    /// `U`: the fixed-width UCS-4 text, NUL padding included.
    Unicode(Ucs4<'a>),
    /// `V`: raw bytes.
    Void(&'a [u8]),
}

impl Element<'_> {
    /// Booleans and real numbers as f64 (integers rounded as `as f64` does); `None` for
    /// complex numbers, text and bytes.
    #[inline]
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Element::Bool(b) => Some(f64::from(u8::from(b))),
            Element::Int(i) => Some(i as f64),
            Element::UInt(u) => Some(u as f64),
            Element::F32(x) => Some(f64::from(x)),
            Element::F64(x) => Some(x),
            _ => None,
        }
    }

    /// Booleans and integers that fit in an i64; `None` for anything else, floats included.
    #[inline]
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Element::Bool(b) => Some(i64::from(b)),
            Element::Int(i) => Some(i),
            Element::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }
}

/// A `U` element: code units of 4 bytes in the dtype's byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ucs4<'a> {
    bytes: &'a [u8],
    big: bool,
}

impl<'a> Ucs4<'a> {
    /// The code units in order, padding NULs included. They are not checked: a unit may
    /// be a surrogate or above U+10FFFF (`char::from_u32` tells).
    pub fn code_units(self) -> impl Iterator<Item = u32> + 'a {
        let big = self.big;
        self.bytes.chunks_exact(4).map(move |c| {
            let unit = [c[0], c[1], c[2], c[3]];
            if big {
                u32::from_be_bytes(unit)
            } else {
                u32::from_le_bytes(unit)
            }
        })
    }
}

/// The first `N` bytes of `b` in little-endian order.
fn le<const N: usize>(b: &[u8], order: ByteOrder) -> Option<[u8; N]> {
    let mut out: [u8; N] = b.get(..N)?.try_into().ok()?;
    if order == ByteOrder::Big {
        out.reverse();
    }
    Some(out)
}

/// Decodes the element at the start of `bytes`, which holds at least the dtype's itemsize.
///
/// `None` for structured and sub-array dtypes (their fields are elements of their own),
/// float16, the object dtype, and bytes shorter than the itemsize.
#[inline]
pub fn decode<'a>(dtype: &DType, bytes: &'a [u8]) -> Option<Element<'a>> {
    let DType::Scalar { order, kind, count } = dtype else {
        return None;
    };
    let o = *order;
    Some(match (kind, count) {
        (Kind::Bool, 1) => Element::Bool(*bytes.first()? != 0),
        (Kind::Int, 1) => Element::Int(i64::from(i8::from_le_bytes(le(bytes, o)?))),
        (Kind::Int, 2) => Element::Int(i64::from(i16::from_le_bytes(le(bytes, o)?))),
        (Kind::Int, 4) => Element::Int(i64::from(i32::from_le_bytes(le(bytes, o)?))),
        (Kind::Int, 8) => Element::Int(i64::from_le_bytes(le(bytes, o)?)),
        (Kind::UInt, 1) => Element::UInt(u64::from(*bytes.first()?)),
        (Kind::UInt, 2) => Element::UInt(u64::from(u16::from_le_bytes(le(bytes, o)?))),
        (Kind::UInt, 4) => Element::UInt(u64::from(u32::from_le_bytes(le(bytes, o)?))),
        (Kind::UInt, 8) => Element::UInt(u64::from_le_bytes(le(bytes, o)?)),
        (Kind::Float, 4) => Element::F32(f32::from_le_bytes(le(bytes, o)?)),
        (Kind::Float, 8) => Element::F64(f64::from_le_bytes(le(bytes, o)?)),
        (Kind::Complex, 8) => Element::Complex64(
            f32::from_le_bytes(le(bytes, o)?),
            f32::from_le_bytes(le(bytes.get(4..)?, o)?),
        ),
        (Kind::Complex, 16) => Element::Complex128(
            f64::from_le_bytes(le(bytes, o)?),
            f64::from_le_bytes(le(bytes.get(8..)?, o)?),
        ),
        (Kind::Bytes | Kind::Void | Kind::Unicode, _) => {
            let size = usize::try_from(dtype.itemsize()).ok()?;
            let bytes = bytes.get(..size)?;
            match kind {
                Kind::Bytes => Element::Bytes(bytes),
                Kind::Void => Element::Void(bytes),
                _ => Element::Unicode(Ucs4 {
                    bytes,
                    big: o == ByteOrder::Big,
                }),
            }
        }
        _ => return None,
    })
}

/// [`encode`] was given a value that its dtype cannot hold: another kind, an integer out
/// of the width's range, or an output that is not one element wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unfit;

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the value does not fit the dtype")
    }
}

impl std::error::Error for Unfit {}

/// Writes `bytes` (little-endian) into `out` in `order`; `out` must be as wide.
fn put(bytes: &[u8], order: ByteOrder, out: &mut [u8]) -> Result<(), Unfit> {
    if out.len() != bytes.len() {
        return Err(Unfit);
    }
    out.copy_from_slice(bytes);
    if order == ByteOrder::Big {
        out.reverse();
    }
    Ok(())
}

/// Writes a number (booleans, integers, real and complex floats) as one element of
/// `dtype` into `out`, which is exactly its itemsize: the inverse of [`decode`] for them.
///
/// Integers must fit the width (`Int` for signed kinds, `UInt` for unsigned ones) and
/// floats must match the width (`F32` for `f4`, ...): no rounding happens here.
pub fn encode(dtype: &DType, value: Element<'_>, out: &mut [u8]) -> Result<(), Unfit> {
    let DType::Scalar { order, kind, count } = dtype else {
        return Err(Unfit);
    };
    let o = *order;
    match (kind, *count, value) {
        (Kind::Bool, 1, Element::Bool(b)) => put(&[u8::from(b)], o, out),
        (Kind::Int, n @ (1 | 2 | 4 | 8), Element::Int(x)) => {
            let shift = 64 - 8 * n as u32;
            if (x << shift) >> shift != x {
                return Err(Unfit);
            }
            put(&x.to_le_bytes()[..n as usize], o, out)
        }
        (Kind::UInt, n @ (1 | 2 | 4 | 8), Element::UInt(x)) => {
            if n < 8 && x >> (8 * n) != 0 {
                return Err(Unfit);
            }
            put(&x.to_le_bytes()[..n as usize], o, out)
        }
        (Kind::Float, 4, Element::F32(x)) => put(&x.to_le_bytes(), o, out),
        (Kind::Float, 8, Element::F64(x)) => put(&x.to_le_bytes(), o, out),
        (Kind::Complex, 8, Element::Complex64(re, im)) if out.len() == 8 => {
            let (a, b) = out.split_at_mut(4);
            put(&re.to_le_bytes(), o, a)?;
            put(&im.to_le_bytes(), o, b)
        }
        (Kind::Complex, 16, Element::Complex128(re, im)) if out.len() == 16 => {
            let (a, b) = out.split_at_mut(8);
            put(&re.to_le_bytes(), o, a)?;
            put(&im.to_le_bytes(), o, b)
        }
        _ => Err(Unfit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dt(s: &str) -> DType {
        DType::parse_scalar(s, "/").unwrap()
    }

    /// Encodes then decodes `value` as one element of `dtype`.
    fn round_trip<'a>(dtype: &DType, value: Element<'_>, buf: &'a mut Vec<u8>) -> Element<'a> {
        buf.resize(usize::try_from(dtype.itemsize()).unwrap(), 0xAA);
        encode(dtype, value, buf).unwrap();
        decode(dtype, buf).unwrap()
    }

    #[test]
    fn byte_order_and_sign_follow_the_dtype() {
        assert_eq!(decode(&dt(">i2"), &[0xff, 0xfe]), Some(Element::Int(-2)));
        assert_eq!(decode(&dt("<i2"), &[0xfe, 0xff]), Some(Element::Int(-2)));
        assert_eq!(decode(&dt(">u2"), &[0x01, 0x00]), Some(Element::UInt(256)));
        assert_eq!(decode(&dt("|i1"), &[0x80]), Some(Element::Int(-128)));
        assert_eq!(decode(&dt("|b1"), &[2]), Some(Element::Bool(true)));
        let big = 1.5f64.to_be_bytes();
        assert_eq!(decode(&dt(">f8"), &big), Some(Element::F64(1.5)));
        let mut c = Vec::from(2f32.to_be_bytes());
        c.extend((-3f32).to_be_bytes());
        assert_eq!(decode(&dt(">c8"), &c), Some(Element::Complex64(2.0, -3.0)));
    }

    #[test]
    fn text_and_bytes_borrow_one_element() {
        let text = [b'h', 0, 0, 0, 0, 0, 0, 0, b'x', 0, 0, 0];
        let Some(Element::Unicode(u)) = decode(&dt("<U2"), &text) else {
            panic!("not text")
        };
        assert_eq!(u.code_units().collect::<Vec<_>>(), vec![u32::from(b'h'), 0]);
        let big = [0, 0, 0, b'h'];
        let Some(Element::Unicode(u)) = decode(&dt(">U1"), &big) else {
            panic!("not text")
        };
        assert_eq!(u.code_units().collect::<Vec<_>>(), vec![u32::from(b'h')]);
        assert_eq!(
            decode(&dt("|S3"), b"ab\0rest"),
            Some(Element::Bytes(b"ab\0"))
        );
        assert_eq!(decode(&dt("|V0"), b""), Some(Element::Void(b"")));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert_eq!(decode(&dt("<f2"), &[0, 0]), None);
        assert_eq!(decode(&dt("<f8"), &[0; 7]), None);
        assert_eq!(decode(&dt("<c16"), &[0; 12]), None);
        assert_eq!(decode(&dt("|S4"), b"abc"), None);
        assert_eq!(decode(&DType::object(), &[0; 8]), None);
        let record = DType::from_json(
            &serde_json::json!({"fields": [["a", "<i8", 0]], "itemsize": 8}),
            "/",
        )
        .unwrap();
        assert_eq!(decode(&record, &[0; 8]), None);
    }

    #[test]
    fn encode_refuses_values_out_of_range_or_kind() {
        let mut out = [0u8; 1];
        assert_eq!(encode(&dt("|i1"), Element::Int(128), &mut out), Err(Unfit));
        assert_eq!(encode(&dt("|u1"), Element::UInt(256), &mut out), Err(Unfit));
        assert_eq!(encode(&dt("|u1"), Element::Int(1), &mut out), Err(Unfit));
        let mut out = [0u8; 8];
        assert_eq!(encode(&dt("<f8"), Element::F32(1.0), &mut out), Err(Unfit));
        assert_eq!(encode(&dt("<f4"), Element::F32(1.0), &mut out), Err(Unfit));
        assert_eq!(encode(&dt("<f8"), Element::F64(0.5), &mut out), Ok(()));
    }

    #[test]
    fn conversions_to_numbers() {
        assert_eq!(Element::UInt(u64::MAX).as_i64(), None);
        assert_eq!(Element::F64(1.0).as_i64(), None);
        assert_eq!(Element::Bool(true).as_f64(), Some(1.0));
        assert_eq!(Element::Complex128(1.0, 0.0).as_f64(), None);
    }

    fn order() -> impl Strategy<Value = char> {
        prop_oneof![Just('<'), Just('>')]
    }

    proptest! {
        #[test]
        fn signed_integers_round_trip(x in any::<i64>(), o in order(), width in prop_oneof![Just(1u32), Just(2), Just(4), Just(8)]) {
            let dtype = dt(&format!("{}i{width}", if width == 1 { '|' } else { o }));
            let shift = 64 - 8 * width;
            let x = (x << shift) >> shift;
            let mut buf = Vec::new();
            prop_assert_eq!(round_trip(&dtype, Element::Int(x), &mut buf), Element::Int(x));
        }

        #[test]
        fn unsigned_integers_round_trip(x in any::<u64>(), o in order(), width in prop_oneof![Just(1u32), Just(2), Just(4), Just(8)]) {
            let dtype = dt(&format!("{}u{width}", if width == 1 { '|' } else { o }));
            let x = if width == 8 { x } else { x & ((1u64 << (8 * width)) - 1) };
            let mut buf = Vec::new();
            prop_assert_eq!(round_trip(&dtype, Element::UInt(x), &mut buf), Element::UInt(x));
        }

        #[test]
        fn floats_round_trip_bit_exact(bits in any::<u64>(), o in order()) {
            let mut buf = Vec::new();
            let x = f64::from_bits(bits);
            let Element::F64(y) = round_trip(&dt(&format!("{o}f8")), Element::F64(x), &mut buf) else {
                return Err(TestCaseError::fail("not an f64"));
            };
            prop_assert_eq!(y.to_bits(), bits);
            let x = f32::from_bits(bits as u32);
            let Element::F32(y) = round_trip(&dt(&format!("{o}f4")), Element::F32(x), &mut buf) else {
                return Err(TestCaseError::fail("not an f32"));
            };
            prop_assert_eq!(y.to_bits(), bits as u32);
        }

        #[test]
        fn complex_round_trip_bit_exact(re in any::<u64>(), im in any::<u64>(), o in order()) {
            let mut buf = Vec::new();
            let (a, b) = (f64::from_bits(re), f64::from_bits(im));
            let Element::Complex128(x, y) = round_trip(&dt(&format!("{o}c16")), Element::Complex128(a, b), &mut buf) else {
                return Err(TestCaseError::fail("not a complex128"));
            };
            prop_assert_eq!((x.to_bits(), y.to_bits()), (re, im));
            let (a, b) = (f32::from_bits(re as u32), f32::from_bits(im as u32));
            let Element::Complex64(x, y) = round_trip(&dt(&format!("{o}c8")), Element::Complex64(a, b), &mut buf) else {
                return Err(TestCaseError::fail("not a complex64"));
            };
            prop_assert_eq!((x.to_bits(), y.to_bits()), (re as u32, im as u32));
        }

        #[test]
        fn text_code_units_follow_the_byte_order(units in proptest::collection::vec(any::<u32>(), 0..8), o in order()) {
            let bytes: Vec<u8> = units
                .iter()
                .flat_map(|u| if o == '>' { u.to_be_bytes() } else { u.to_le_bytes() })
                .collect();
            let Some(Element::Unicode(text)) = decode(&dt(&format!("{o}U{}", units.len())), &bytes) else {
                return Err(TestCaseError::fail("not text"));
            };
            prop_assert_eq!(text.code_units().collect::<Vec<_>>(), units);
        }
    }
}
