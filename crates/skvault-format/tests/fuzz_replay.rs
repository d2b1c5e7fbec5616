//! The fuzz targets' calls without nightly: the committed corpus and any crash artifacts are
//! replayed, then a bounded, deterministic mutation run starts from the seeds. Every input must
//! give `Ok` or `Err`, never a panic, and none may take long.
//!
//! Both targets of the reader run: `read` (and `read_rehashed`) through `exercise`, `fill`
//! through `exercise_fill`.
//!
//! `cargo test -p skvault-format --test fuzz_replay -- --ignored write_seed_corpus` rewrites
//! the seed files in `fuzz/corpus/read/` and `fuzz/corpus/fill/`. `SKVAULT_FUZZ_MUTATIONS=1000000` and
//! `SKVAULT_FUZZ_SEED=<n>` make longer or different runs (best with `--release`).

// Helpers of a test binary are test code too: clippy.toml's allow-*-in-tests only covers
// `#[test]` functions themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use skvault_format::manifest::{Header, FLAG_PACKS, FORMAT_MAJOR, FORMAT_MINOR};
use skvault_format::write::digest;
use skvault_format::SkvFile;

/// Mutated inputs of the deterministic run, unless `SKVAULT_FUZZ_MUTATIONS` asks for more.
const MUTATIONS: usize = 20_000;
/// RNG seed of the run, unless `SKVAULT_FUZZ_SEED` gives another.
const SEED: u64 = 0x5eed_5eed_cafe_f00d;
/// Any single input slower than this (debug build) is reported as a hang.
const SLOW: Duration = Duration::from_secs(5);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

use skvault_format::fuzzing::{exercise, exercise_fill, guarded, rehash, Rng};
use skvault_format::testing::{object, TreeSpec};
use skvault_format::{Codec, Node, Order};

/// Runs `exercise` under the replay guard (a panic or a slow input fails the test, naming
/// a saved copy of the input). True if the file opened.
fn check(bytes: Vec<u8>, label: &str) -> bool {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let copy = bytes.clone();
    guarded(&copy, label, tmp, "skv", SLOW, || exercise(bytes))
}

/// Runs `exercise_fill` on `bytes` rehashed, as the `fill` target does, under the same guard.
fn check_fill(bytes: Vec<u8>, label: &str) -> bool {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let copy = bytes.clone();
    guarded(&copy, label, tmp, "skv", SLOW, || {
        exercise_fill(rehash(bytes))
    })
}

/// Seeds of the `fill` target: trees whose arrays the loader pools, with every codec (packs
/// with a codec), and arrays outside trees; each under 4 KiB.
fn fill_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let forest = |codec: Codec| {
        let f8 = common::dtype(serde_json::json!("<f8"));
        let arrays: Vec<_> = (0..7usize)
            .map(|i| {
                let n = [5, 5, 0, 40, 40, 3, 33][i];
                let data: Vec<u8> = (0..n)
                    .flat_map(|k| ((k % 4) as f64).to_le_bytes())
                    .collect();
                (f8.clone(), vec![n as u64], Order::C, data)
            })
            .collect();
        let tree = |a: usize, b: usize| {
            object(
                "sklearn.tree._tree.Tree",
                vec![("nodes", Node::Array(a)), ("values", Node::Array(b))],
            )
        };
        let root = Node::List(vec![tree(0, 1), Node::Array(2), tree(3, 4), tree(5, 6)]);
        common::write(root, &arrays, codec)
    };
    vec![
        ("seed-tree.skv", TreeSpec::regressor().bytes().unwrap()),
        ("seed-forest-none.skv", forest(Codec::None)),
        ("seed-forest-zstd.skv", forest(Codec::Zstd)),
        ("seed-forest-lz4.skv", forest(Codec::Lz4)),
        // Tree node records in a pack with the columns filter (format 1.4).
        ("seed-tree-nodes-zstd.skv", common::tree_nodes_file()),
    ]
}

/// Files of `fuzz/corpus/<target>` and `fuzz/artifacts/<target>` for the reader's targets.
fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["corpus", "artifacts"] {
        for target in ["read", "read_rehashed", "fill"] {
            let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
                continue;
            };
            files.extend(
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file()),
            );
        }
    }
    files.sort();
    files
}

#[test]
fn seed_corpus_is_committed_small_and_valid() {
    let dir = fuzz_dir().join("corpus/read");
    for (name, bytes) in common::seeds() {
        let committed = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (run the ignored write_seed_corpus test)"));
        assert!(committed.len() < 4096, "{name}: {} bytes", committed.len());
        let file = SkvFile::from_bytes(committed).unwrap_or_else(|e| panic!("{name}: {e}"));
        file.verify().unwrap();
        assert!(
            bytes.len() < 4096,
            "{name}: the generated seed grew to {} bytes",
            bytes.len()
        );
    }
}

#[test]
fn fill_seed_corpus_is_committed_small_and_valid() {
    let dir = fuzz_dir().join("corpus/fill");
    for (name, bytes) in fill_seeds() {
        let committed = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (run the ignored write_seed_corpus test)"));
        assert!(committed.len() < 4096, "{name}: {} bytes", committed.len());
        SkvFile::from_bytes(committed).unwrap().verify().unwrap();
        assert!(
            bytes.len() < 4096,
            "{name}: the seed grew to {} bytes",
            bytes.len()
        );
    }
}

#[test]
fn corpus_and_artifacts_replay_without_panics() {
    let files = corpus_files();
    assert!(
        files.len() >= common::seeds().len(),
        "corpus missing: {files:?}"
    );
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let label = path.display().to_string();
        check(bytes.clone(), &label);
        check_fill(bytes.clone(), &format!("{label} (fill)"));
        check(rehash(bytes), &format!("{label} (rehashed)"));
    }
}

// ------------------------------------------------------------------ mutations

const INTERESTING_BYTES: [u8; 12] = [
    0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'[', b'0', b'9', b'-', b',',
];
const INTERESTING_U64: [u64; 9] = [
    0,
    1,
    63,
    64,
    u64::MAX,
    1 << 63,
    1 << 32,
    256 << 20,
    (256 << 20) + 1,
];
const NUMBERS: [&str; 14] = [
    "0",
    "-1",
    "1",
    "64",
    "255",
    "4294967296",
    "1099511627776",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1e309",
    "0.5",
];
const STRINGS: [&str; 16] = [
    "\"|O\"",
    "\"<f8\"",
    "\">i4\"",
    "\"|V0\"",
    "\"<U99999999999\"",
    "\"zstd\"",
    "\"lz4\"",
    "\"none\"",
    "\"fields\"",
    "\"C\"",
    "\"F\"",
    "\"os.system\"",
    "\"nan:7ff0000000000001\"",
    "\"-inf\"",
    "\"\"",
    "\"\\ud800\"",
];
const SNIPPETS: [&str; 16] = [
    r#"{"array":0}"#,
    r#"{"array":4}"#,
    r#"{"ref":1}"#,
    r#""id":1,"#,
    r#"{"list":["#,
    "]}",
    ",",
    "null",
    r#"{"object":"a.B","attrs":{}}"#,
    r#"{"objarray":[],"shape":[0]}"#,
    r#"{"scalar":"<f8","data":"AAAAAAAA8D8="}"#,
    r#"{"dtype":{"fields":[["a","<i8",0]],"itemsize":8}}"#,
    r#""filter":"fields","#,
    r#"{"int":"-0"}"#,
    r#"{"bit_generator":"PCG64","state":null}"#,
    r#"{"slice":[null,null]}"#,
];

/// One mutation of the raw file bytes.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>, other: &[u8]) {
    let len = bytes.len();
    match rng.below(8) {
        0 if len > 0 => {
            let i = rng.below(len);
            bytes[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            bytes[i] = *rng.pick(&INTERESTING_BYTES);
        }
        2 => bytes.truncate(rng.below(len + 1)),
        3 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let insert: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            bytes.splice(at..at, insert);
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(64)).min(len);
            bytes.drain(at..end);
        }
        5 if len >= 8 => {
            // Header fields and manifest numbers are little-endian u64s or decimal text.
            let at = if rng.below(2) == 0 {
                16
            } else {
                rng.below(len - 7)
            };
            let v = rng.pick(&INTERESTING_U64).to_le_bytes();
            if at + 8 <= len {
                bytes[at..at + 8].copy_from_slice(&v);
            }
        }
        6 => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            bytes.truncate(cut);
            bytes.extend_from_slice(&other[from..]);
        }
        _ if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(32)).min(len);
            let chunk = bytes[at..end].to_vec();
            let to = rng.below(len + 1);
            bytes.splice(to..to, chunk);
        }
        _ => bytes.push(rng.next_u64() as u8),
    }
}

/// Byte ranges of the tokens of `text` that look like numbers or strings.
fn tokens(text: &[u8], number: bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if number && (c.is_ascii_digit() || c == b'-') {
            let start = i;
            while i < text.len() && (text[i].is_ascii_digit() || b"-+.eE".contains(&text[i])) {
                i += 1;
            }
            out.push((start, i));
        } else if !number && c == b'"' {
            let start = i;
            i += 1;
            while i < text.len() && text[i] != b'"' {
                i += if text[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(text.len());
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

/// Every JSON value of a tree, by a path of child indices, in document order.
fn value_paths(v: &Value, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(path.clone());
    let children: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => m.values().collect(),
        _ => return,
    };
    for (i, c) in children.into_iter().enumerate() {
        path.push(i);
        value_paths(c, path, out);
        path.pop();
    }
}

fn value_at<'a>(v: &'a mut Value, path: &[usize]) -> &'a mut Value {
    match path.split_first() {
        None => v,
        Some((i, rest)) => match v {
            Value::Array(a) => value_at(&mut a[*i], rest),
            Value::Object(m) => value_at(m.values_mut().nth(*i).unwrap(), rest),
            _ => unreachable!("paths come from value_paths"),
        },
    }
}

/// A structural edit of the manifest: the JSON stays valid, so the schema and layout checks
/// are what has to hold.
fn mutate_value(rng: &mut Rng, manifest: &mut Value) {
    let mut paths = Vec::new();
    value_paths(manifest, &mut Vec::new(), &mut paths);
    let path = rng.pick(&paths).clone();
    let target = value_at(manifest, &path);
    match rng.below(6) {
        0 => {
            if let Some(n) = target.as_u64() {
                let delta = *rng.pick(&[1u64, 8, 63, 64, 1 << 20]);
                let n = if rng.below(2) == 0 {
                    n.wrapping_add(delta)
                } else {
                    n.wrapping_sub(delta)
                };
                *target = Value::from(n);
            } else {
                *target = Value::from(*rng.pick(&INTERESTING_U64));
            }
        }
        1 | 2 => {
            let list = if rng.below(2) == 0 {
                &STRINGS[..]
            } else {
                &SNIPPETS[..]
            };
            let text = *rng.pick::<&str>(list);
            *target = serde_json::from_str(text).unwrap_or(Value::Null);
        }
        3 => match target {
            Value::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                if rng.below(2) == 0 {
                    a.remove(i);
                } else {
                    let dup = a[i].clone();
                    a.insert(rng.below(a.len() + 1), dup);
                }
            }
            Value::Object(m) if !m.is_empty() => {
                let key = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                m.remove(&key);
            }
            _ => *target = Value::Null,
        },
        4 => match target {
            Value::Array(a) if a.len() > 1 => {
                let (i, j) = (rng.below(a.len()), rng.below(a.len()));
                a.swap(i, j);
            }
            Value::Object(m) => {
                let key = *rng.pick(&["id", "shape", "filter", "codec", "attrs", "new", "extra"]);
                m.insert(key.into(), Value::from(1));
            }
            _ => *target = Value::Bool(true),
        },
        _ => {
            let from = rng.pick(&paths).clone();
            let copy = value_at(manifest, &from).clone();
            *value_at(manifest, &path) = copy;
        }
    }
}

/// A mutation of the manifest text (or, with `value`, of its JSON structure), rewrapped in a
/// header whose length and digest match, with the data section kept.
fn mutate_manifest(rng: &mut Rng, bytes: &[u8], other: &[u8]) -> Option<Vec<u8>> {
    let len = usize::try_from(u64::from_le_bytes(bytes.get(16..24)?.try_into().ok()?)).ok()?;
    let end = 64usize.checked_add(len)?;
    let mut text = bytes.get(64..end)?.to_vec();
    let data = bytes
        .get(end.next_multiple_of(64)..)
        .unwrap_or(&[])
        .to_vec();
    match rng.below(6) {
        0 | 1 => {
            let toks = tokens(&text, rng.below(2) == 0);
            if !toks.is_empty() {
                let (s, e) = *rng.pick(&toks);
                let with = if text[s] == b'"' {
                    rng.pick(&STRINGS)
                } else {
                    rng.pick(&NUMBERS)
                };
                text.splice(s..e, with.bytes());
            }
        }
        2 => {
            let at = rng.below(text.len() + 1);
            text.splice(at..at, rng.pick(&SNIPPETS).bytes());
        }
        3 if !text.is_empty() => {
            // Splice a piece of another seed's manifest in place of a piece of this one.
            let s = rng.below(text.len());
            let e = (s + rng.below(80)).min(text.len());
            let piece_start = rng.below(other.len().max(1));
            let piece_end = (piece_start + rng.below(120)).min(other.len());
            text.splice(
                s..e,
                other
                    .get(piece_start..piece_end)
                    .unwrap_or(&[])
                    .iter()
                    .copied(),
            );
        }
        _ => {
            let mut v: Value = serde_json::from_slice(&text).ok()?;
            for _ in 0..1 + rng.below(3) {
                mutate_value(rng, &mut v);
            }
            text = serde_json::to_vec(&v).ok()?;
        }
    }
    // The seed's PACKS flag stays, so that mutations of a packed manifest reach past the
    // check that `packs` and the flag agree.
    let flags = u32::from_le_bytes(bytes.get(12..16)?.try_into().ok()?) & FLAG_PACKS;
    let header = Header {
        major: FORMAT_MAJOR,
        minor: FORMAT_MINOR,
        flags,
        manifest_len: text.len() as u64,
        manifest_digest: digest(&text),
        manifest_raw_len: 0,
    };
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&text);
    out.resize(out.len().next_multiple_of(64), 0);
    out.extend_from_slice(&data);
    Some(out)
}

fn manifest_text(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .get(16..24)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes);
    let end = usize::try_from(len).map_or(0, |l| l.saturating_add(64));
    bytes.get(64..end).unwrap_or(&[])
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.parse().ok()
}

#[test]
fn seeded_mutations_never_panic() {
    let mut seeds: Vec<Vec<u8>> = common::seeds().into_iter().map(|(_, b)| b).collect();
    seeds.extend(fill_seeds().into_iter().map(|(_, b)| b));
    seeds.extend(corpus_files().iter().filter_map(|p| std::fs::read(p).ok()));
    let total = env_number("SKVAULT_FUZZ_MUTATIONS").unwrap_or(MUTATIONS);
    let mut rng = Rng::new(env_number("SKVAULT_FUZZ_SEED").unwrap_or(SEED));
    let (mut opened, started) = (0usize, Instant::now());
    for case in 0..total {
        let mut bytes = rng.pick(&seeds).clone();
        let other = rng.pick(&seeds).clone();
        if rng.below(2) == 0 {
            if let Some(m) = mutate_manifest(&mut rng, &bytes, manifest_text(&other)) {
                bytes = m;
            }
            // Sometimes the blobs or the header are damaged as well.
            if rng.below(4) == 0 {
                mutate_bytes(&mut rng, &mut bytes, &other);
            }
        } else {
            for _ in 0..1 + rng.below(3) {
                mutate_bytes(&mut rng, &mut bytes, &other);
            }
            if rng.below(2) == 0 {
                bytes = rehash(bytes);
            }
        }
        // One in four also goes through the fill (slower: it plans and fills three times).
        if case % 4 == 0 {
            check_fill(bytes.clone(), &format!("mutation {case} (fill)"));
        }
        opened += usize::from(check(bytes, &format!("mutation {case}")));
    }
    // The run is only useful if mutated files get past the checks some of the time.
    assert!(
        opened > total / 50,
        "only {opened} of {total} mutated files opened"
    );
    eprintln!(
        "{total} mutations, {opened} opened, {:?}",
        started.elapsed()
    );
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus/read and fuzz/corpus/fill"]
fn write_seed_corpus() {
    for (target, seeds) in [("read", common::seeds()), ("fill", fill_seeds())] {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
