//! JSON parsing for the manifest: duplicate member names refused, strings borrowed.
//!
//! serde_json keeps the last of two equal keys; the format forbids duplicates (two readers
//! could otherwise see different manifests in the same bytes). [`Json`] is what the reader
//! decodes the manifest from: like `serde_json::Value`, but objects are vectors of pairs in
//! document order and strings borrow from the input when they hold no escapes. A manifest is
//! mostly small objects (array entries, nodes), so this avoids a hash map and an allocation
//! per key: a 500-tree forest's manifest parses several times faster than into `Value`.
//! serde_json's own recursion limit (128 levels) still bounds the nesting.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A parsed JSON value that may borrow from the text it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    /// A negative integer (serde_json reports non-negative ones as `UInt`).
    Int(i64),
    UInt(u64),
    /// A number written with a fraction or an exponent.
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Obj<'a>),
}

/// A JSON object: its members in document order, names unique.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

/// Objects up to this size are checked for repeated names by a scan as they are read; larger
/// ones by sorting their names once (a scan would be quadratic). A scikit-learn estimator's
/// attributes are 20 to 30 names: a scan of them, names told apart by length and end bytes
/// before their text is compared, costs less than the sort.
const SCAN_LIMIT: usize = 32;

/// `a == b`, most unequal names told apart without a call to compare their bytes.
fn same_name(a: &str, b: &str) -> bool {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    x.len() == y.len() && x.first() == y.first() && x.last() == y.last() && x == y
}

/// `bytes` as text. One UTF-8 check of the whole text is cheaper than serde_json's check
/// of each string.
pub(crate) fn utf8(bytes: &[u8]) -> serde_json::Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        serde_json::Error::custom(format!(
            "invalid UTF-8 at byte {} of the JSON text",
            e.valid_up_to()
        ))
    })
}

impl<'a> Json<'a> {
    /// Parses `bytes` as one JSON value, refusing repeated member names.
    pub fn parse(bytes: &'a [u8]) -> serde_json::Result<Json<'a>> {
        serde_json::from_str(utf8(bytes)?)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Json::UInt(u) => Some(u),
            Json::Int(i) => u64::try_from(i).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Json::Int(i) => Some(i),
            Json::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// Any JSON number as a float (integers rounded to the nearest).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Json::Int(i) => Some(i as f64),
            Json::UInt(u) => Some(u as f64),
            Json::Float(x) => Some(x),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (owned).
    pub fn into_value(self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Int(i) => Value::Number(i.into()),
            Json::UInt(u) => Value::Number(u.into()),
            // Only finite floats are ever parsed (see `visit_f64`).
            Json::Float(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.into_owned()),
            Json::Array(a) => Value::Array(a.into_iter().map(Json::into_value).collect()),
            Json::Object(o) => Value::Object(o.into_map()),
        }
    }
}

impl<'a> From<&'a Value> for Json<'a> {
    /// A view of a `serde_json::Value` (strings borrowed), for callers that hold one.
    fn from(v: &'a Value) -> Json<'a> {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Json::UInt(u),
                (None, Some(i), _) => Json::Int(i),
                (None, None, x) => Json::Float(x.unwrap_or(f64::NAN)),
            },
            Value::String(s) => Json::Str(Cow::Borrowed(s)),
            Value::Array(a) => Json::Array(a.iter().map(Json::from).collect()),
            Value::Object(m) => Json::Object(Obj(m
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::from(v)))
                .collect())),
        }
    }
}

impl<'a> Obj<'a> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Obj(Vec::with_capacity(n))
    }

    /// Appends a member read from a document, refusing a name already among the first
    /// [`SCAN_LIMIT`] (the name is the error); past those, [`Obj::check_unique`] checks once
    /// the object is complete.
    pub(crate) fn push_unique(
        &mut self,
        key: Cow<'a, str>,
        value: Json<'a>,
    ) -> Result<(), Cow<'a, str>> {
        if self.0.len() < SCAN_LIMIT && self.0.iter().any(|(k, _)| same_name(k, &key)) {
            return Err(key);
        }
        self.0.push((key, value));
        Ok(())
    }

    /// Refuses a repeated name (the error) in an object built by [`Obj::push_unique`].
    pub(crate) fn check_unique(&self) -> Result<(), String> {
        if self.0.len() > SCAN_LIMIT {
            let mut names: Vec<&str> = self.keys().collect();
            names.sort_unstable();
            if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(w[0].to_owned());
            }
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0
            .iter()
            .find(|(k, _)| same_name(k, key))
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| same_name(k, key))
    }

    /// Takes the member `key` out, keeping the others in order.
    pub fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        let at = self.0.iter().position(|(k, _)| same_name(k, key))?;
        Some(self.0.remove(at).1)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_value()))
            .collect()
    }
}

impl<'a> IntoIterator for Obj<'a> {
    type Item = (Cow<'a, str>, Json<'a>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Json<'a>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor(PhantomData))
    }
}

/// Reads any JSON value into [`Json`]; other readers of the manifest hand it the values they
/// do not take apart themselves.
pub(crate) struct JsonVisitor<'a>(PhantomData<&'a ()>);

impl JsonVisitor<'_> {
    pub(crate) fn new() -> Self {
        JsonVisitor(PhantomData)
    }
}

/// A string borrowed from the input when it has no escapes.
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(JsonVisitor(PhantomData))
            .and_then(|v| match v {
                Json::Str(s) => Ok(Text(s)),
                _ => Err(D::Error::custom("expected a string")),
            })
    }
}

impl<'de: 'a, 'a> Visitor<'de> for JsonVisitor<'a> {
    type Value = Json<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'a>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'a>, E> {
        Ok(match u64::try_from(v) {
            Ok(u) => Json::UInt(u),
            Err(_) => Json::Int(v),
        })
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'a>, E> {
        Ok(Json::UInt(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Json<'a>, E> {
        if v.is_finite() {
            Ok(Json::Float(v))
        } else {
            Err(E::custom("non-finite number"))
        }
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'a>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'a>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'a>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Json<'a>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'a>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'a>, A::Error> {
        let mut out = Obj::default();
        while let Some(Text(key)) = map.next_key()? {
            let value = map.next_value()?;
            out.push_unique(key, value).map_err(|k| duplicate(&k))?;
        }
        out.check_unique().map_err(|k| duplicate(&k))?;
        Ok(Json::Object(out))
    }
}

/// The error for a member name met twice in one object.
pub(crate) fn duplicate<E: serde::de::Error>(key: &str) -> E {
    let shown: String = key.chars().take(64).collect();
    E::custom(format!("duplicate key {shown:?}"))
}

/// Parses `bytes` as JSON into a `serde_json::Value`, refusing duplicate keys.
pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    Json::parse(bytes).map(Json::into_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth_and_size() {
        assert!(from_slice(br#"{"a": 1, "a": 2}"#).is_err());
        assert!(from_slice(br#"{"x": [{"int": "1", "int": "2"}]}"#).is_err());
        // Past the scan limit the check sorts the names: first, middle and last repeated.
        let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
        let ok = format!("{{{}}}", many.join(","));
        assert!(from_slice(ok.as_bytes()).is_ok());
        for dup in ["k0", "k20", "k39"] {
            let bad = format!("{{{}, \"{dup}\": 1}}", many.join(","));
            let err = from_slice(bad.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(&format!("duplicate key \"{dup}\"")), "{err}");
        }
        // An escaped name is the same name.
        assert!(from_slice(br#"{"ab": 1, "a\u0062": 2}"#).is_err());
    }

    #[test]
    fn values_match_serde_json() {
        let text =
            br#"{"a": [1, -2, 2.5, "s", null, true, 18446744073709551615, -9223372036854775808],
                        "b": {"c": {}, "d": "e\"scaped"}, "z": 1e300}"#;
        let ours = from_slice(text).unwrap();
        let theirs: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(ours, theirs);
        // Member order is the document's, not sorted.
        let keys: Vec<String> = from_slice(br#"{"z": 1, "a": 2, "m": 3}"#)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let Json::Object(o) = Json::parse(br#"{"plain": "text", "esc": "a\nb"}"#).unwrap() else {
            panic!("not an object");
        };
        assert!(matches!(
            o.get("plain"),
            Some(Json::Str(Cow::Borrowed("text")))
        ));
        assert!(matches!(o.get("esc"), Some(Json::Str(Cow::Owned(s))) if s == "a\nb"));
    }

    #[test]
    fn accessors_and_removal_keep_order() {
        let Json::Object(mut o) =
            Json::parse(br#"{"n": -3, "u": 7, "f": 0.5, "s": "x", "l": [1]}"#).unwrap()
        else {
            panic!("not an object");
        };
        assert_eq!(o.get("n").and_then(Json::as_i64), Some(-3));
        assert_eq!(o.get("n").and_then(Json::as_u64), None);
        assert_eq!(o.get("u").and_then(Json::as_u64), Some(7));
        assert_eq!(o.get("f").and_then(Json::as_f64), Some(0.5));
        assert_eq!(o.get("f").and_then(Json::as_u64), None);
        assert_eq!(o.get("l").and_then(Json::as_array).map(<[_]>::len), Some(1));
        assert_eq!(o.remove("f"), Some(Json::Float(0.5)));
        assert_eq!(o.remove("f"), None);
        assert_eq!(o.keys().collect::<Vec<_>>(), ["n", "u", "s", "l"]);
        let v = serde_json::json!({"a": [1, -1, 1.5, "t", null, {"b": false}]});
        assert_eq!(Json::from(&v).into_value(), v);
    }

    #[test]
    fn nesting_is_still_bounded() {
        let deep = "[".repeat(100_000);
        assert!(from_slice(deep.as_bytes()).is_err());
    }
}
