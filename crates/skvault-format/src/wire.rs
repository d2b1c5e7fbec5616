//! The manifest's text read in one pass, with the array table taken apart as it is read.
//!
//! A forest's array table is most of its manifest (58% of the bytes of a 500-tree forest's)
//! and mostly repeats itself: every tree's node array carries the same structured dtype.
//! Reading the whole manifest into a [`Json`] document built that dtype's objects and lists
//! once per entry, then parsed each into a [`DType`]. Here each entry's `dtype` is kept as
//! its raw text, and [`Dtypes`] parses each distinct text once; the entry's other members
//! are read as usual. Everything else of the manifest is read into [`Json`] as before.
//!
//! The first pass over the text ([`Top::parse`]) only checks the array table's JSON and keeps
//! each entry's text; [`entries`] reads them afterwards. So a large table is read on a thread
//! of its own from the moment the first pass has gone past it, while that pass goes on and the
//! tree is decoded (`Manifest::from_bytes`). An error [`entries`] reports is placed in the
//! whole text, at the line and column a one-pass read gives.
//!
//! Nothing is validated here beyond JSON itself and repeated member names, refused at any
//! depth as [`Json`] refuses them (inside a dtype's text, when [`Dtypes`] parses it: a text
//! equal to one already parsed has passed): the manifest's rules are checked afterwards, on
//! the whole document, so that the first error reported does not depend on the order of
//! the members in the text.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::dtype::DType;
use crate::error::{FormatError, Result};
use crate::pointer::Pointer;
use crate::strict_json::{duplicate, Json, JsonVisitor, Obj, Text};

/// The manifest's top level: its members but `arrays`, and the array table apart.
pub(crate) enum Top<'a, R> {
    Object {
        members: Obj<'a>,
        /// `None` when the manifest has no `arrays` member.
        arrays: Option<Table<R>>,
    },
    /// Any JSON value but an object.
    Other,
}

/// The `arrays` member.
pub(crate) enum Table<R> {
    /// What [`Top::parse`]'s `on_table` made of the text of each element, JSON checked but
    /// not yet read (see [`entries`]).
    List(R),
    /// Any JSON value but a list.
    Other,
}

/// One element of the array table.
pub(crate) enum Entry<'a> {
    Object {
        /// Its members but `dtype`, in document order.
        members: Obj<'a>,
        /// The text of its `dtype` member, if it has one.
        dtype: Option<&'a RawValue>,
    },
    /// Any JSON value but an object.
    Other,
}

impl<'a, R> Top<'a, R> {
    /// Parses `bytes` (UTF-8 JSON, checked here) in one pass. `on_table` is given the texts
    /// of the array table's elements as soon as the pass has gone past them (if `arrays` is a
    /// list), and may start reading them while the pass goes on.
    pub(crate) fn parse(
        bytes: &'a [u8],
        on_table: impl FnOnce(Vec<&'a RawValue>) -> R,
    ) -> serde_json::Result<Top<'a, R>> {
        let text = crate::strict_json::utf8(bytes)?;
        let mut de = serde_json::Deserializer::from_str(text);
        let top = TopSeed(on_table).deserialize(&mut de)?;
        de.end()?;
        Ok(top)
    }
}

/// The members of an object, read into [`Json`] but for the one named `apart`, which `read`
/// takes from the map as it likes. Repeated names are refused, as [`Json`] refuses them.
fn members<'de, A: MapAccess<'de>, T>(
    mut map: A,
    apart: &str,
    mut read: impl FnMut(&mut A) -> std::result::Result<T, A::Error>,
) -> std::result::Result<(Obj<'de>, Option<T>), A::Error> {
    // An array entry has up to 9 members besides its dtype.
    let mut out = Obj::with_capacity(9);
    let mut kept = None;
    while let Some(Text(key)) = map.next_key()? {
        if key == apart {
            if kept.is_some() {
                return Err(duplicate(&key));
            }
            kept = Some(read(&mut map)?);
        } else {
            let value: Json = map.next_value()?;
            out.push_unique(key, value).map_err(|k| duplicate(&k))?;
        }
    }
    out.check_unique().map_err(|k| duplicate(&k))?;
    Ok((out, kept))
}

/// Implements the visitor methods of the JSON scalars, each answering `$other` (a finite
/// number, as [`Json`] demands).
macro_rules! scalars {
    ($other:expr) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
            JsonVisitor::new().visit_f64::<E>(v).map(|_| $other)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
        fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok($other)
        }
    };
}

/// The manifest's top level, whose array table goes to `F` (see [`Top::parse`]).
struct TopSeed<F>(F);

impl<'de, R, F: FnOnce(Vec<&'de RawValue>) -> R> DeserializeSeed<'de> for TopSeed<F> {
    type Value = Top<'de, R>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Top<'de, R>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, R, F: FnOnce(Vec<&'de RawValue>) -> R> Visitor<'de> for TopSeed<F> {
    type Value = Top<'de, R>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the manifest")
    }

    scalars!(Top::Other);

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> std::result::Result<Top<'de, R>, S::Error> {
        JsonVisitor::new().visit_seq(seq).map(|_| Top::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Top<'de, R>, A::Error> {
        // `members` reads `arrays` once at most: a second one is refused before it is read.
        let mut on_table = Some(self.0);
        let (members, arrays) = members(map, "arrays", |m| {
            m.next_value_seed(TableSeed(&mut on_table))
        })?;
        Ok(Top::Object { members, arrays })
    }
}

/// The `arrays` member: a list's element texts go to the `on_table` of [`Top::parse`].
struct TableSeed<'f, F>(&'f mut Option<F>);

impl<'de, R, F: FnOnce(Vec<&'de RawValue>) -> R> DeserializeSeed<'de> for TableSeed<'_, F> {
    type Value = Table<R>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Table<R>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, R, F: FnOnce(Vec<&'de RawValue>) -> R> Visitor<'de> for TableSeed<'_, F> {
    type Value = Table<R>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the array table")
    }

    scalars!(Table::Other);

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Table<R>, A::Error> {
        JsonVisitor::new().visit_map(map).map(|_| Table::Other)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> std::result::Result<Table<R>, S::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = seq.next_element::<&RawValue>()? {
            out.push(entry);
        }
        let on_table = self.0.take().ok_or_else(|| duplicate("arrays"))?;
        Ok(Table::List(on_table(out)))
    }
}

/// One element of the array table.
struct EntrySeed;

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = Entry<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Entry<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = Entry<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array entry")
    }

    scalars!(Entry::Other);

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> std::result::Result<Entry<'de>, S::Error> {
        JsonVisitor::new().visit_seq(seq).map(|_| Entry::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Entry<'de>, A::Error> {
        let (members, dtype) = members(map, "dtype", |m| m.next_value::<&RawValue>())?;
        Ok(Entry::Object { members, dtype })
    }
}

/// Reads the entries of a [`Table::List`] taken from `whole`, the manifest's text. An error
/// is the one a read of the whole text in one pass gives, at the same line and column.
pub(crate) fn entries<'a>(
    table: &[&'a RawValue],
    whole: &[u8],
) -> serde_json::Result<Vec<Entry<'a>>> {
    table
        .iter()
        .map(|raw| {
            let text = raw.get();
            let mut de = serde_json::Deserializer::from_str(text);
            EntrySeed
                .deserialize(&mut de)
                .and_then(|entry| de.end().map(|()| entry))
                .map_err(|e| relocate(e, whole, text))
        })
        .collect()
}

/// `e`, from a read of `part` (a slice of `whole`), at its line and column in `whole`. As
/// serde_json counts them: lines from 1, the column the number of bytes before the error on
/// its line.
fn relocate(e: serde_json::Error, whole: &[u8], part: &str) -> serde_json::Error {
    let offset = (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .filter(|o| {
            o.checked_add(part.len())
                .is_some_and(|end| end <= whole.len())
        });
    let (Some(offset), 1..) = (offset, e.line()) else {
        return e;
    };
    let before = whole.get(..offset).unwrap_or_default();
    let line = e.line() + before.iter().filter(|&&b| b == b'\n').count();
    let column = match e.line() {
        1 => {
            e.column() + offset
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |at| at + 1)
        }
        _ => e.column(),
    };
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&position).unwrap_or(&text);
    serde_json::Error::custom(format!("{message} at line {line} column {column}"))
}

/// Each distinct dtype text of the array table parsed once. The parse is a function of the
/// text alone, so entries whose texts are equal byte for byte share its result; only
/// successes are kept (the first error ends the read).
pub(crate) struct Dtypes<'a> {
    known: HashMap<&'a str, DType>,
    /// The manifest's text, in which a JSON error is placed.
    whole: &'a [u8],
}

impl<'a> Dtypes<'a> {
    pub(crate) fn new(whole: &'a [u8]) -> Dtypes<'a> {
        Dtypes {
            known: HashMap::new(),
            whole,
        }
    }

    /// The dtype written as `raw` (`None`: the member is missing) at `path`.
    pub(crate) fn get(&mut self, raw: Option<&'a RawValue>, path: &Pointer) -> Result<DType> {
        let Some(raw) = raw else {
            return DType::from_json_at(&Json::Null, path);
        };
        let text = raw.get();
        if let Some(known) = self.known.get(text) {
            return Ok(known.clone());
        }
        let value = Json::parse(text.as_bytes()).map_err(|e| FormatError::ManifestJson {
            source: relocate(e, self.whole, text),
        })?;
        let dtype = DType::from_json_at(&value, path)?;
        self.known.insert(text, dtype.clone());
        Ok(dtype)
    }
}
