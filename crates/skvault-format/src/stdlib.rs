//! Standard-library value classes on the default allow-list (`trusted/builtins.txt`), and the
//! exact shape each may have in a tree.
//!
//! These classes are created by calling them (`Construct::Call`) or through `__new__` and
//! `__setstate__` (`uuid.UUID`), which run their own code on the arguments. Being on the
//! allow-list is not enough: every object of one of these classes must look exactly like what
//! `skvault.dump` and `pickle` write for a real value (the arguments of its `__reduce__`), with
//! the data checked here first, so the call can do nothing else. `load`, `convert` and `dump`
//! run [`check_tree`]; it applies whatever the caller trusts.
//!
//! | Class | Arguments |
//! |---|---|
//! | `collections.OrderedDict` | none; items as dict items |
//! | `collections.defaultdict` | none, `None` or one of [`DEFAULTDICT_FACTORIES`]; items as dict items |
//! | `collections.Counter` | none or one dict |
//! | `datetime.date` / `datetime` / `time` | their pickled bytes (4 / 10 / 6), every field in range; a `datetime.timezone` or `None` |
//! | `datetime.timedelta` | days, seconds, microseconds, normalised as `timedelta` keeps them |
//! | `datetime.timezone` | a `timedelta` and optionally a name |
//! | `decimal.Decimal` | one string as `str(Decimal)` writes it |
//! | `fractions.Fraction` | one string `n` or `n/d`, or two integers, the denominator not 0 |
//! | `uuid.UUID` | `__new__` without arguments; state `{"int": 0 <= n < 2**128}`, optionally `"is_safe": 0 or -1` |
//! | `pathlib` paths | strings only |
//!
//! No attribute state, no list items, and no other construction are allowed on any of them.

use foldhash::HashMap;

use crate::node::{walk, Construct, Id, Node, Object, MAX_BIGINT_DIGITS};

/// The classes this module checks (all on the default allow-list).
pub const CLASSES: &[&str] = &[
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "datetime.date",
    "datetime.datetime",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    "pathlib.PurePosixPath",
    "pathlib.PosixPath",
    "pathlib.PureWindowsPath",
    "pathlib.WindowsPath",
];

/// The `default_factory` a `collections.defaultdict` may have: builtin types that, called
/// without arguments, make an empty or zero value.
pub const DEFAULTDICT_FACTORIES: &[&str] = &[
    "builtins.list",
    "builtins.dict",
    "builtins.set",
    "builtins.frozenset",
    "builtins.tuple",
    "builtins.int",
    "builtins.float",
    "builtins.complex",
    "builtins.bool",
    "builtins.str",
];

/// Longest `decimal.Decimal` / `fractions.Fraction` text accepted.
const MAX_NUMBER_TEXT: usize = 2 * MAX_BIGINT_DIGITS + 32;
/// Most parts a path may have.
const MAX_PATH_PARTS: usize = 4096;
/// `timedelta`'s bound on days.
const MAX_DAYS: i64 = 999_999_999;

/// A standard-library object whose construction is not one a real value has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct StdlibError {
    pub class: String,
    pub message: String,
}

/// Checks every object of a class in [`CLASSES`] in the tree (references followed).
pub fn check_tree(root: &Node) -> Result<(), StdlibError> {
    let mut shared: HashMap<Id, &Node> = HashMap::default();
    walk(root, &mut |n| {
        if let Node::Shared { id, node } = n {
            shared.insert(*id, node);
        }
    });
    let mut result = Ok(());
    walk(root, &mut |n| {
        if result.is_err() {
            return;
        }
        if let Node::Object(obj) = n {
            if CLASSES.contains(&obj.class.as_str()) {
                result = check(obj, &shared).map_err(|message| StdlibError {
                    class: obj.class.clone(),
                    message,
                });
            }
        }
    });
    result
}

type Shared<'a> = HashMap<Id, &'a Node>;

fn resolve<'a>(node: &'a Node, shared: &Shared<'a>) -> &'a Node {
    let mut node = node;
    // A ref points at a node declared earlier; bounded so that a malformed tree cannot loop.
    for _ in 0..8 {
        node = match node {
            Node::Shared { node, .. } => node,
            Node::Ref(id) => match shared.get(id) {
                Some(n) => n,
                None => return node,
            },
            _ => return node,
        };
    }
    node
}

fn check(obj: &Object, shared: &Shared<'_>) -> Result<(), String> {
    if !obj.list_items.is_empty() {
        return Err("list items are not allowed".into());
    }
    let class = obj.class.as_str();
    let dict_like = matches!(
        class,
        "collections.OrderedDict" | "collections.defaultdict" | "collections.Counter"
    );
    if !dict_like && !obj.dict_items.is_empty() {
        return Err("dict items are not allowed".into());
    }
    if class == "uuid.UUID" {
        return check_uuid(obj, shared);
    }
    let no_state = match obj.state.as_ref().map(|s| resolve(s, shared)) {
        None | Some(Node::None) => true,
        Some(Node::Dict(items)) => items.is_empty(),
        Some(_) => false,
    };
    if !no_state {
        return Err("attribute state is not allowed".into());
    }
    let Construct::Call { args } = &obj.construct else {
        return Err("must be created by calling the class with its pickled arguments".into());
    };
    let args: Vec<&Node> = args.iter().map(|a| resolve(a, shared)).collect();
    match class {
        "collections.OrderedDict" => expect_no_args(&args),
        "collections.defaultdict" => match args.as_slice() {
            [] | [Node::None] => Ok(()),
            [Node::Global(name)] if DEFAULTDICT_FACTORIES.contains(&name.as_str()) => Ok(()),
            [other] => Err(format!(
                "default_factory must be None or one of {}, not {}",
                DEFAULTDICT_FACTORIES.join(", "),
                describe(other)
            )),
            _ => Err("takes at most one argument, the default_factory".into()),
        },
        "collections.Counter" => match args.as_slice() {
            [] | [Node::Dict(_)] => Ok(()),
            _ => Err("takes nothing or one dict".into()),
        },
        "datetime.date" => match args.as_slice() {
            [Node::Bytes(b)] => check_date(b),
            _ => Err("takes its pickled bytes (4)".into()),
        },
        "datetime.datetime" => match args.as_slice() {
            [Node::Bytes(b)] => check_datetime(b),
            [Node::Bytes(b), tz] => {
                check_datetime(b)?;
                check_tzinfo(tz, shared)
            }
            _ => Err("takes its pickled bytes (10) and a tzinfo".into()),
        },
        "datetime.time" => match args.as_slice() {
            [Node::Bytes(b)] => check_time(b),
            [Node::Bytes(b), tz] => {
                check_time(b)?;
                check_tzinfo(tz, shared)
            }
            _ => Err("takes its pickled bytes (6) and a tzinfo".into()),
        },
        "datetime.timedelta" => match args.as_slice() {
            [Node::Int(days), Node::Int(seconds), Node::Int(us)]
                if days.abs() <= MAX_DAYS
                    && (0..86_400).contains(seconds)
                    && (0..1_000_000).contains(us) =>
            {
                Ok(())
            }
            _ => Err("takes days, seconds (0 to 86399) and microseconds (0 to 999999)".into()),
        },
        "datetime.timezone" => {
            let offset = match args.as_slice() {
                [offset] | [offset, Node::Str(_)] => offset,
                _ => return Err("takes an offset (a timedelta) and optionally a name".into()),
            };
            check_timedelta_object(offset, shared)
        }
        "decimal.Decimal" => match args.as_slice() {
            [Node::Str(s)] if is_decimal_text(s) => Ok(()),
            _ => Err("takes one string as str(Decimal) writes it".into()),
        },
        "fractions.Fraction" => match args.as_slice() {
            [Node::Str(s)] if is_fraction_text(s) => Ok(()),
            [n, d] if is_integer(n) && is_integer(d) && !is_zero(d) => Ok(()),
            _ => {
                Err("takes a string 'n' or 'n/d', or a numerator and a non-zero denominator".into())
            }
        },
        _ => {
            // pathlib paths.
            if args.len() > MAX_PATH_PARTS || !args.iter().all(|a| matches!(a, Node::Str(_))) {
                return Err(format!("takes at most {MAX_PATH_PARTS} strings"));
            }
            Ok(())
        }
    }
}

fn expect_no_args(args: &[&Node]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err("takes no arguments (its items are dict items)".into())
    }
}

fn describe(node: &Node) -> String {
    match node {
        Node::Global(name) => name.clone(),
        Node::Object(obj) => format!("an instance of {}", obj.class),
        _ => "a value that is no builtin type".into(),
    }
}

fn check_uuid(obj: &Object, shared: &Shared<'_>) -> Result<(), String> {
    match &obj.construct {
        Construct::New { args, kwargs } if args.is_empty() && kwargs.is_empty() => {}
        _ => return Err("must be created by __new__ without arguments".into()),
    }
    let Some(Node::Dict(items)) = obj.state.as_ref().map(|s| resolve(s, shared)) else {
        return Err("its state must be a dict {'int': ...}".into());
    };
    let mut has_int = false;
    for (k, v) in items {
        match (resolve(k, shared), resolve(v, shared)) {
            (Node::Str(k), v) if k == "int" && is_u128(v) => has_int = true,
            (Node::Str(k), Node::Int(0 | -1)) if k == "is_safe" => {}
            _ => {
                return Err(
                    "its state may only hold 'int' (0 <= int < 2**128) and 'is_safe' (0 or -1)"
                        .into(),
                )
            }
        }
    }
    if !has_int {
        return Err("its state has no 'int'".into());
    }
    Ok(())
}

fn is_u128(node: &Node) -> bool {
    match node {
        Node::Int(i) => *i >= 0,
        Node::BigInt(s) => s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u128>().is_ok(),
        _ => false,
    }
}

fn is_integer(node: &Node) -> bool {
    matches!(node, Node::Int(_) | Node::BigInt(_))
}

fn is_zero(node: &Node) -> bool {
    matches!(node, Node::Int(0))
}

fn check_tzinfo(tz: &Node, shared: &Shared<'_>) -> Result<(), String> {
    match resolve(tz, shared) {
        Node::None => Ok(()),
        Node::Object(obj) if obj.class == "datetime.timezone" => Ok(()),
        _ => Err("its tzinfo must be None or a datetime.timezone".into()),
    }
}

fn check_timedelta_object(node: &Node, shared: &Shared<'_>) -> Result<(), String> {
    match resolve(node, shared) {
        Node::Object(obj) if obj.class == "datetime.timedelta" => Ok(()),
        _ => Err("its offset must be a datetime.timedelta".into()),
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Year (2 bytes, big-endian), month, day, as CPython's `date` pickles itself.
fn check_ymd(year_hi: u8, year_lo: u8, month: u8, day: u8) -> Result<(), String> {
    let year = u16::from_be_bytes([year_hi, year_lo]);
    if !(1..=9999).contains(&year) || !(1..=12).contains(&month) {
        return Err("its pickled bytes hold a year or month out of range".into());
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("its pickled bytes hold a day out of range".into());
    }
    Ok(())
}

/// Hour, minute, second, microsecond (3 bytes, big-endian).
fn check_hms(h: u8, m: u8, s: u8, us: &[u8]) -> Result<(), String> {
    let micro = us.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    if h > 23 || m > 59 || s > 59 || micro > 999_999 {
        return Err("its pickled bytes hold a time out of range".into());
    }
    Ok(())
}

fn check_date(b: &[u8]) -> Result<(), String> {
    match b {
        [y1, y2, mo, d] => check_ymd(*y1, *y2, *mo, *d),
        _ => Err("its pickled bytes must be 4 long".into()),
    }
}

fn check_datetime(b: &[u8]) -> Result<(), String> {
    match b {
        // The month byte's high bit is `fold`.
        [y1, y2, mo, d, h, mi, s, us @ ..] if us.len() == 3 => {
            check_ymd(*y1, *y2, mo & 0x7f, *d)?;
            check_hms(*h, *mi, *s, us)
        }
        _ => Err("its pickled bytes must be 10 long".into()),
    }
}

fn check_time(b: &[u8]) -> Result<(), String> {
    match b {
        // The hour byte's high bit is `fold`.
        [h, mi, s, us @ ..] if us.len() == 3 => check_hms(h & 0x7f, *mi, *s, us),
        _ => Err("its pickled bytes must be 6 long".into()),
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// What `str(Decimal)` writes: `-`? then `Infinity`, `NaN`/`sNaN` with optional digits (the
/// payload), or digits with an optional fraction and an optional exponent `E+n` / `E-n`.
fn is_decimal_text(s: &str) -> bool {
    if s.len() > MAX_NUMBER_TEXT {
        return false;
    }
    let s = s.strip_prefix('-').unwrap_or(s);
    if s == "Infinity" {
        return true;
    }
    if let Some(payload) = s.strip_prefix("NaN").or_else(|| s.strip_prefix("sNaN")) {
        return payload.is_empty() || digits(payload);
    }
    let (mantissa, exponent) = match s.split_once('E') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(mantissa),
    };
    let exponent_ok = match exponent {
        None => true,
        Some(e) => match e.strip_prefix('+').or_else(|| e.strip_prefix('-')) {
            Some(e) => digits(e) && e.len() <= 19,
            None => false,
        },
    };
    mantissa_ok && exponent_ok
}

/// What `str(Fraction)` writes: `-`?digits, optionally `/`digits with a non-zero denominator.
fn is_fraction_text(s: &str) -> bool {
    if s.len() > MAX_NUMBER_TEXT {
        return false;
    }
    let s = s.strip_prefix('-').unwrap_or(s);
    match s.split_once('/') {
        Some((n, d)) => digits(n) && digits(d) && d.bytes().any(|b| b != b'0'),
        None => digits(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(class: &str, args: Vec<Node>) -> Node {
        Node::Object(Box::new(Object {
            class: class.into(),
            construct: Construct::Call { args },
            state: None,
            list_items: vec![],
            dict_items: vec![],
        }))
    }

    fn ok(node: &Node) -> bool {
        check_tree(node).is_ok()
    }

    #[test]
    fn real_values_pass() {
        let tz = call(
            "datetime.timezone",
            vec![call(
                "datetime.timedelta",
                vec![Node::Int(0), Node::Int(3600), Node::Int(0)],
            )],
        );
        for node in [
            call("collections.OrderedDict", vec![]),
            call(
                "collections.defaultdict",
                vec![Node::Global("builtins.list".into())],
            ),
            call("collections.defaultdict", vec![Node::None]),
            call("collections.Counter", vec![Node::Dict(vec![])]),
            call("datetime.date", vec![Node::Bytes(vec![0x07, 0xe8, 2, 29])]),
            call(
                "datetime.datetime",
                vec![
                    Node::Bytes(vec![0x07, 0xe8, 12, 31, 23, 59, 59, 0x0f, 0x42, 0x3f]),
                    tz.clone(),
                ],
            ),
            call(
                "datetime.time",
                vec![Node::Bytes(vec![0x80 | 23, 0, 0, 0, 0, 0])],
            ),
            tz,
            call("decimal.Decimal", vec![Node::Str("-1.50E+7".into())]),
            call("decimal.Decimal", vec![Node::Str("sNaN12".into())]),
            call("fractions.Fraction", vec![Node::Str("-3/4".into())]),
            call(
                "fractions.Fraction",
                vec![
                    Node::Int(3),
                    Node::BigInt("123456789012345678901234567890".into()),
                ],
            ),
            call(
                "pathlib.PosixPath",
                vec![Node::Str("/".into()), Node::Str("a".into())],
            ),
        ] {
            assert!(ok(&node), "{:?}: {:?}", node, check_tree(&node));
        }
    }

    #[test]
    fn hostile_values_are_refused() {
        for node in [
            call(
                "collections.defaultdict",
                vec![Node::Global("os.system".into())],
            ),
            call(
                "collections.defaultdict",
                vec![Node::Global("numpy.mean".into())],
            ),
            call("collections.OrderedDict", vec![Node::List(vec![])]),
            call("datetime.date", vec![Node::Bytes(vec![0x07, 0xe7, 2, 29])]),
            call("datetime.date", vec![Node::Bytes(vec![0, 0, 1, 1])]),
            call(
                "datetime.datetime",
                vec![Node::Bytes(vec![0x07, 0xe8, 1, 1, 24, 0, 0, 0, 0, 0])],
            ),
            call(
                "datetime.datetime",
                vec![Node::Bytes(vec![0x07, 0xe8, 1, 1])],
            ),
            call(
                "datetime.time",
                vec![Node::Bytes(vec![0, 0, 0, 0x0f, 0x42, 0x40])],
            ),
            call(
                "datetime.timedelta",
                vec![Node::Int(0), Node::Int(86_400), Node::Int(0)],
            ),
            call("datetime.timezone", vec![Node::Int(3600)]),
            call("decimal.Decimal", vec![Node::Str("1_000".into())]),
            call("decimal.Decimal", vec![Node::Str(" 1".into())]),
            call("decimal.Decimal", vec![Node::Str("junk".into())]),
            call("decimal.Decimal", vec![Node::Int(1)]),
            call("fractions.Fraction", vec![Node::Str("1/0".into())]),
            call("fractions.Fraction", vec![Node::Int(1), Node::Int(0)]),
            call("fractions.Fraction", vec![Node::Str("1.5".into())]),
            call("pathlib.PosixPath", vec![Node::Global("os.getcwd".into())]),
        ] {
            assert!(!ok(&node), "{node:?}");
        }
        let uuid = |state: Node| {
            Node::Object(Box::new(Object {
                class: "uuid.UUID".into(),
                construct: Construct::New {
                    args: vec![],
                    kwargs: vec![],
                },
                state: Some(state),
                list_items: vec![],
                dict_items: vec![],
            }))
        };
        let int = |v: Node| Node::Dict(vec![(Node::Str("int".into()), v)]);
        assert!(ok(&uuid(int(Node::BigInt(u128::MAX.to_string())))));
        assert!(!ok(&uuid(int(Node::BigInt(
            "340282366920938463463374607431768211456".into()
        )))));
        assert!(!ok(&uuid(int(Node::Int(-1)))));
        assert!(!ok(&uuid(Node::Dict(vec![]))));
        // Attribute state on a class that takes none.
        let mut od = Object {
            class: "collections.OrderedDict".into(),
            construct: Construct::Call { args: vec![] },
            state: Some(Node::Dict(vec![(Node::Str("x".into()), Node::Int(1))])),
            list_items: vec![],
            dict_items: vec![],
        };
        assert!(!ok(&Node::Object(Box::new(od.clone()))));
        od.state = None;
        od.construct = Construct::New {
            args: vec![],
            kwargs: vec![],
        };
        assert!(!ok(&Node::Object(Box::new(od))));
    }
}
