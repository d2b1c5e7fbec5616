//! Protocol-0 text arguments and integer encodings, decoded the way CPython's unpickler does.

use skvault_format::node::MAX_BIGINT_DIGITS;

/// A decoded Python str: plain UTF-8, or UTF-8 with lone surrogates (`surrogatepass`).
#[derive(Debug, PartialEq, Eq)]
pub enum PyStr {
    Utf8(String),
    Surrogates(Vec<u8>),
}

/// An integer literal: small, or a canonical decimal string.
#[derive(Debug, PartialEq, Eq)]
pub enum PyInt {
    Small(i64),
    Big(String),
}

fn push_code_point(out: &mut Vec<u8>, cp: u32, surrogates: &mut bool) {
    if (0xD800..=0xDFFF).contains(&cp) {
        // What UTF-8 with `surrogatepass` writes for a lone surrogate.
        *surrogates = true;
        out.push(0xE0 | (cp >> 12) as u8);
        out.push(0x80 | ((cp >> 6) & 0x3F) as u8);
        out.push(0x80 | (cp & 0x3F) as u8);
    } else if let Some(c) = char::from_u32(cp) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

fn finish(out: Vec<u8>, surrogates: bool) -> PyStr {
    if surrogates {
        return PyStr::Surrogates(out);
    }
    match String::from_utf8(out) {
        Ok(s) => PyStr::Utf8(s),
        Err(e) => PyStr::Surrogates(e.into_bytes()),
    }
}

/// Python's `raw-unicode-escape` decoding (the UNICODE opcode): bytes are Latin-1 code points,
/// except `\uXXXX` and `\UXXXXXXXX` after an odd number of backslashes.
pub fn raw_unicode_escape(b: &[u8]) -> Result<PyStr, String> {
    let mut out = Vec::with_capacity(b.len());
    let mut surrogates = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c != b'\\' {
            push_code_point(&mut out, u32::from(c), &mut surrogates);
            i += 1;
            continue;
        }
        let run = b[i..].iter().take_while(|&&x| x == b'\\').count();
        let next = i + run;
        let digits = match b.get(next) {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => {
                out.extend(std::iter::repeat_n(b'\\', run));
                i = next;
                continue;
            }
        };
        out.extend(std::iter::repeat_n(b'\\', run - 1));
        let hex = b
            .get(next + 1..next + 1 + digits)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|x| x.is_ascii_hexdigit()))
            .ok_or_else(|| format!("truncated \\{} escape", if digits == 4 { 'u' } else { 'U' }))?;
        let cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
        if cp > 0x10FFFF {
            return Err("\\Uxxxxxxxx out of range".into());
        }
        push_code_point(&mut out, cp, &mut surrogates);
        i = next + 1 + digits;
    }
    Ok(finish(out, surrogates))
}

/// UTF-8 with `surrogatepass` (BINUNICODE and friends): valid UTF-8, plus encoded lone
/// surrogates. `None` if the bytes are neither.
pub fn utf8_surrogatepass(b: &[u8]) -> Option<PyStr> {
    if let Ok(s) = std::str::from_utf8(b) {
        return Some(PyStr::Utf8(s.to_string()));
    }
    let mut pos = 0;
    while pos < b.len() {
        match std::str::from_utf8(&b[pos..]) {
            Ok(_) => break,
            Err(e) => {
                let bad = pos + e.valid_up_to();
                match b.get(bad..bad + 3) {
                    Some([0xED, 0xA0..=0xBF, 0x80..=0xBF]) => pos = bad + 3,
                    _ => return None,
                }
            }
        }
    }
    Some(PyStr::Surrogates(b.to_vec()))
}

/// Python's `codecs.escape_decode` (the STRING opcode's quoted argument).
pub fn escape_decode(b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = b.get(i) else {
            return Err("trailing \\ in string".into());
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b't' => out.push(9),
            b'n' => out.push(10),
            b'r' => out.push(13),
            b'v' => out.push(11),
            b'a' => out.push(7),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match b.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xFF) as u8);
            }
            b'x' => {
                let hex = b
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .filter(|h| h.bytes().all(|x| x.is_ascii_hexdigit()))
                    .ok_or_else(|| format!("invalid \\x escape at position {}", i - 2))?;
                out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                i += 2;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// A decimal integer literal (protocol-0 INT and LONG): optional sign and surrounding
/// whitespace. Python's other forms (`0x..`, `1_000`) are never written by a pickler, and
/// `010` even means different numbers to the C and Python unpicklers: all refused.
pub fn parse_decimal(text: &[u8]) -> Result<PyInt, String> {
    let t = std::str::from_utf8(text)
        .map_err(|_| "integer literal is not ASCII".to_string())?
        .trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    if digits.is_empty() || !digits.bytes().all(|d| d.is_ascii_digit()) || leading_zero {
        return Err(format!("{t:?} is not a decimal integer"));
    }
    if let Ok(v) = t.trim_start_matches('+').parse::<i64>() {
        return Ok(PyInt::Small(v));
    }
    if digits.len() > MAX_BIGINT_DIGITS {
        return Err(format!("integer has more than {MAX_BIGINT_DIGITS} digits"));
    }
    Ok(PyInt::Big(if negative {
        format!("-{digits}")
    } else {
        digits.to_string()
    }))
}

/// A protocol-0 FLOAT argument.
pub fn parse_float(text: &[u8]) -> Result<f64, String> {
    let t = std::str::from_utf8(text)
        .map_err(|_| "float literal is not ASCII".to_string())?
        .trim_matches(|c: char| c.is_ascii_whitespace());
    if t.contains('_') {
        return Err(format!("{t:?} is not a float"));
    }
    t.parse::<f64>()
        .map_err(|_| format!("{t:?} is not a float"))
}

/// The value of little-endian two's complement bytes (LONG1 / LONG4), if it fits in i64.
pub fn le_to_i64(b: &[u8]) -> Option<i64> {
    let negative = b.last().is_some_and(|&x| x & 0x80 != 0);
    let fill = if negative { 0xFF } else { 0x00 };
    if b.len() > 8 {
        let (low, high) = b.split_at(8);
        if !high.iter().all(|&x| x == fill) || (low[7] & 0x80 != 0) != negative {
            return None;
        }
    }
    let mut buf = [fill; 8];
    for (dst, src) in buf.iter_mut().zip(b) {
        *dst = *src;
    }
    Some(i64::from_le_bytes(buf))
}

/// The canonical decimal form of little-endian two's complement bytes, or an error past
/// `MAX_BIGINT_DIGITS` digits (CPython's own limit for int <-> str).
pub fn le_to_decimal(b: &[u8]) -> Result<String, String> {
    let negative = b.last().is_some_and(|&x| x & 0x80 != 0);
    // Magnitude, little-endian.
    let mut mag: Vec<u8> = b.to_vec();
    if negative {
        let mut carry = true;
        for byte in &mut mag {
            *byte = !*byte;
            if carry {
                let (v, overflow) = byte.overflowing_add(1);
                *byte = v;
                carry = overflow;
            }
        }
    }
    while mag.last() == Some(&0) {
        mag.pop();
    }
    // 4300 decimal digits need at most 1786 bytes.
    if mag.len() > 1800 {
        return Err(format!("integer has more than {MAX_BIGINT_DIGITS} digits"));
    }
    let mut limbs: Vec<u32> = mag
        .chunks(4)
        .map(|c| {
            c.iter()
                .rev()
                .fold(0u32, |acc, &x| (acc << 8) | u32::from(x))
        })
        .collect();
    let mut chunks = Vec::new();
    while !limbs.is_empty() {
        let mut rem = 0u64;
        for limb in limbs.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        chunks.push(rem as u32);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    match chunks.split_last() {
        None => return Ok("0".into()),
        Some((top, rest)) => {
            s.push_str(&top.to_string());
            for c in rest.iter().rev() {
                s.push_str(&format!("{c:09}"));
            }
        }
    }
    if s.trim_start_matches('-').len() > MAX_BIGINT_DIGITS {
        return Err(format!("integer has more than {MAX_BIGINT_DIGITS} digits"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_unicode_escape_matches_python() {
        let s = |b: &[u8]| match raw_unicode_escape(b).unwrap() {
            PyStr::Utf8(s) => s,
            PyStr::Surrogates(_) => panic!("surrogates"),
        };
        assert_eq!(s(b"\\u0041"), "A");
        assert_eq!(s(b"\\\\u0041"), "\\\\u0041");
        assert_eq!(s(b"\\\\\\u0041"), "\\\\A");
        assert_eq!(s(b"a\\x"), "a\\x");
        assert_eq!(s(b"\\"), "\\");
        assert_eq!(s(b"\\U0001F600"), "\u{1F600}");
        assert_eq!(s(b"\xe9"), "\u{e9}");
        assert!(raw_unicode_escape(b"\\U00110000").is_err());
        assert!(raw_unicode_escape(b"\\u00").is_err());
        assert_eq!(
            raw_unicode_escape(b"\\ud800").unwrap(),
            PyStr::Surrogates(vec![0xED, 0xA0, 0x80])
        );
    }

    #[test]
    fn escape_decode_matches_python() {
        assert_eq!(
            escape_decode(b"\\x41\\101\\q\\'\\\n\\777\\8").unwrap(),
            b"AA\\q'\xff\\8".to_vec()
        );
        assert!(escape_decode(b"\\").is_err());
        assert!(escape_decode(b"\\x4").is_err());
    }

    #[test]
    fn surrogatepass_utf8() {
        assert_eq!(utf8_surrogatepass(b"abc"), Some(PyStr::Utf8("abc".into())));
        assert!(matches!(
            utf8_surrogatepass(b"a\xed\xa0\x80b"),
            Some(PyStr::Surrogates(_))
        ));
        assert_eq!(utf8_surrogatepass(b"\xff"), None);
        assert_eq!(utf8_surrogatepass(b"\xed\xa0"), None);
    }

    #[test]
    fn integers() {
        assert_eq!(parse_decimal(b" -12 "), Ok(PyInt::Small(-12)));
        assert_eq!(parse_decimal(b"+5"), Ok(PyInt::Small(5)));
        assert_eq!(
            parse_decimal(b"99999999999999999999"),
            Ok(PyInt::Big("99999999999999999999".into()))
        );
        for bad in [&b"010"[..], b"0x10", b"1_0", b"", b"-", b"1.5"] {
            assert!(parse_decimal(bad).is_err(), "{bad:?}");
        }
        assert_eq!(le_to_i64(&[]), Some(0));
        assert_eq!(le_to_i64(&[0xff]), Some(-1));
        assert_eq!(le_to_i64(&[0x80, 0x00]), Some(128));
        assert_eq!(le_to_i64(&[0; 9]), Some(0));
        assert_eq!(le_to_i64(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0]), None);
        assert_eq!(le_to_decimal(&[0xff]).unwrap(), "-1");
        assert_eq!(le_to_decimal(&[]).unwrap(), "0");
        // 2**64 and -(2**64)
        assert_eq!(
            le_to_decimal(&[0, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap(),
            "18446744073709551616"
        );
        assert_eq!(
            le_to_decimal(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff]).unwrap(),
            "-18446744073709551616"
        );
        assert!(le_to_decimal(&[1; 2000]).is_err());
        assert_eq!(parse_float(b"1e3"), Ok(1000.0));
        assert!(parse_float(b"nan").unwrap().is_nan());
        assert!(parse_float(b"1_0").is_err());
    }
}
