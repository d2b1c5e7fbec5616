//! Where in the manifest a value is, for error messages: a JSON-pointer-like path
//! (`/root/object/attrs/estimators_/list/3`) that is only written out when an error needs it.
//!
//! Decoding passes a `Pointer` down by reference; building the string eagerly at every node
//! cost about as much as parsing the JSON.

use std::fmt;

/// Member names longer than this are cut in messages.
const SHOWN_KEY_CHARS: usize = 64;

#[derive(Clone, Copy)]
pub enum Pointer<'p> {
    /// A path written out already (`""` is the document itself).
    Root(&'p str),
    Key(&'p Pointer<'p>, &'p str),
    Index(&'p Pointer<'p>, usize),
}

impl<'p> Pointer<'p> {
    pub fn key(&'p self, key: &'p str) -> Pointer<'p> {
        Pointer::Key(self, key)
    }

    pub fn index(&'p self, index: usize) -> Pointer<'p> {
        Pointer::Index(self, index)
    }
}

impl fmt::Display for Pointer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pointer::Root(s) => f.write_str(s),
            Pointer::Key(parent, key) => {
                write!(f, "{parent}/")?;
                match key.char_indices().nth(SHOWN_KEY_CHARS) {
                    Some((cut, _)) => write!(f, "{}...", &key[..cut]),
                    None => f.write_str(key),
                }
            }
            Pointer::Index(parent, i) => write!(f, "{parent}/{i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_a_json_pointer_and_cuts_long_names() {
        let root = Pointer::Root("/root");
        let attrs = root.key("attrs");
        let item = attrs.index(3);
        assert_eq!(item.key("x").to_string(), "/root/attrs/3/x");
        let long = "n".repeat(100);
        assert_eq!(
            attrs.key(&long).to_string(),
            format!("/root/attrs/{}...", "n".repeat(64))
        );
        assert_eq!(Pointer::Root("").index(0).to_string(), "/0");
    }
}
