//! What the fuzz targets do with their input, shared with the replay test
//! (`tests/fuzz_replay.rs`) so that both always exercise the same calls.

use std::sync::Arc;

use crate::fill::OwnedArrays;
use crate::load_plan::{LoadPlan, Place, PlanOptions};
use crate::{SkvFile, TrustSet};

/// [`exercise_fill`] skips files whose arrays need more memory than this (a few kilobytes of
/// zstd can declare gigabytes): libFuzzer counts a large allocation as a crash.
const FILL_MAX_BYTES: usize = 64 << 20;

/// Opens `bytes` and, if that works, reads and verifies every array, audits the names and
/// checks the standard-library values as `load` does.
/// Returns whether the file opened. Must never panic, whatever the input.
pub fn exercise(bytes: Vec<u8>) -> bool {
    let Ok(file) = SkvFile::from_bytes(bytes) else {
        return false;
    };
    for i in 0..file.manifest().arrays.len() {
        let _ = file.read_array(i, true);
    }
    let _ = TrustSet::default().untrusted_names(&file.manifest().root);
    let _ = TrustSet::default().untrusted_in(file.manifest());
    for tree in file.manifest().trees() {
        let _ = crate::stdlib::check_tree(tree);
    }
    let _ = file.verify();
    let _ = file.describe();
    let _ = file.embedded_signature();
    true
}

/// Opens `bytes` and loads its arrays as a loader does: plans them (views of the file's
/// bytes or not, views verified or not), fills them into buffers of its own on 0 or 2
/// workers, asks for them in an order drawn from the input, and checks every array it gets
/// against `read_array`. Returns whether the file opened. Must never panic, whatever the
/// input; a differing array is a bug and panics.
#[allow(clippy::panic)] // a harness: a wrong array must fail the fuzz run
pub fn exercise_fill(bytes: Vec<u8>) -> bool {
    let seed = bytes
        .iter()
        .rev()
        .take(8)
        .fold(0u64, |acc, b| acc.rotate_left(8) ^ u64::from(*b));
    let Ok(file) = SkvFile::from_bytes(bytes) else {
        return false;
    };
    let file = Arc::new(file);
    let n = file.manifest().arrays.len();
    let mut rng = Rng::new(seed);
    for (view_in_place, verify, threads) in [(false, true, 0), (true, true, 2), (true, false, 2)] {
        let options = PlanOptions {
            view_in_place,
            verify_views: verify,
        };
        let Ok(plan) = LoadPlan::new(&file, options) else {
            continue;
        };
        let owned_bytes = plan
            .places()
            .iter()
            .fold(plan.pool_len(), |sum, p| match p {
                Place::Own { len } => sum.saturating_add(*len),
                _ => sum,
            });
        if owned_bytes > FILL_MAX_BYTES {
            continue;
        }
        let Ok(arrays) = OwnedArrays::start(file.clone(), &plan, verify, threads) else {
            continue;
        };
        let requests = (0..n).map(|_| rng.below(n)).chain(0..n);
        for i in requests {
            let Ok(got) = arrays.get(i) else {
                continue;
            };
            // An empty array is never read (so an empty member of a damaged pack loads).
            if plan.places()[i] == (Place::Own { len: 0 }) {
                assert!(got.is_empty(), "array {i}: empty, yet the fill gave bytes");
                continue;
            }
            match file.read_array(i, verify) {
                Ok(expected) if expected == got => {}
                Ok(_) => panic!("array {i}: the fill gave other bytes than read_array"),
                Err(e) => panic!("array {i}: filled, but read_array fails: {e}"),
            }
        }
        let _ = arrays.finish();
    }
    true
}

/// Recomputes the header's manifest digest, so that mutations of the manifest reach the JSON
/// parser and the schema and layout checks instead of stopping at the digest check.
pub fn rehash(mut bytes: Vec<u8>) -> Vec<u8> {
    let manifest_len = bytes
        .get(16..24)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes);
    let end = manifest_len.and_then(|n| usize::try_from(n).ok()?.checked_add(64));
    if let Some(digest) = end
        .and_then(|end| bytes.get(64..end))
        .map(crate::write::digest)
    {
        if let Some(slot) = bytes.get_mut(24..56) {
            slot.copy_from_slice(&digest);
        }
    }
    bytes
}

/// xorshift64: a deterministic generator for the replay tests' mutation runs (no
/// dependency; good enough to pick mutations, not for anything else).
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is mapped to a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// One of `items`; panics if `items` is empty (test inputs only).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Runs `f` (which exercises `input`) for a replay test. If `f` panics or takes longer than
/// `slow`, saves `input` into `save_dir` under a name made from `label` (with extension
/// `ext`) and panics with a message naming that copy: the test then fails with the input
/// at hand. Otherwise returns what `f` returned.
#[allow(clippy::panic)] // a test harness: failing the test is its job
pub fn guarded<R>(
    input: &[u8],
    label: &str,
    save_dir: &std::path::Path,
    ext: &str,
    slow: std::time::Duration,
    f: impl FnOnce() -> R,
) -> R {
    let start = std::time::Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let elapsed = start.elapsed();
    match outcome {
        Ok(r) if elapsed <= slow => r,
        other => {
            let name: String = label
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let path = save_dir.join(format!("fuzz-replay-{name}.{ext}"));
            let saved = match std::fs::write(&path, input) {
                Ok(()) => format!("input saved to {}", path.display()),
                Err(e) => format!("could not save the input to {}: {e}", path.display()),
            };
            let what = if other.is_err() {
                "panicked"
            } else {
                "was slow"
            };
            panic!("{label} {what} ({elapsed:?}); {saved}");
        }
    }
}

/// The files in `fuzz_dir/<sub>/<target>` (`sub`: `corpus` or `artifacts`), sorted; none
/// when the folder does not exist. For the replay tests of every crate with a fuzz target.
pub fn target_files(
    fuzz_dir: &std::path::Path,
    sub: &str,
    target: &str,
) -> Vec<std::path::PathBuf> {
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(fuzz_dir.join(sub).join(target))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The number in the environment variable `name` (a replay's mutation count or seed), else
/// `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One fuzz target replayed by a test binary without nightly (the serve, sign and table
/// crates' `tests/fuzz_replay.rs`): its committed files, the guard every input runs under
/// ([`guarded`], 5 seconds), and a bounded, deterministic mutation run from its seeds.
/// Test code: a failure panics, naming the input.
#[allow(clippy::panic)]
pub struct Replay {
    target: &'static str,
    fuzz_dir: std::path::PathBuf,
    tmp: std::path::PathBuf,
    ext: &'static str,
}

#[allow(clippy::panic)]
impl Replay {
    /// `manifest_dir` and `tmp`: the test crate's `env!("CARGO_MANIFEST_DIR")` and
    /// `env!("CARGO_TARGET_TMPDIR")` (where a failing input is saved, with extension `ext`).
    pub fn new(target: &'static str, manifest_dir: &str, tmp: &str, ext: &'static str) -> Replay {
        Replay {
            target,
            fuzz_dir: std::path::Path::new(manifest_dir).join("../../fuzz"),
            tmp: tmp.into(),
            ext,
        }
    }

    /// The files of `fuzz/<sub>/<target>` (`corpus` or `artifacts`).
    pub fn files(&self, sub: &str) -> Vec<std::path::PathBuf> {
        target_files(&self.fuzz_dir, sub, self.target)
    }

    /// `run` on `input` under [`guarded`].
    pub fn check<R>(&self, input: &[u8], label: &str, run: impl FnOnce() -> R) -> R {
        let slow = std::time::Duration::from_secs(5);
        guarded(input, label, &self.tmp, self.ext, slow, run)
    }

    fn read(path: &std::path::Path) -> Vec<u8> {
        std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every committed input, the corpus then any crash artifacts, through `run`.
    pub fn replay_committed<R>(&self, run: impl Fn(&[u8]) -> R) {
        for path in self
            .files("corpus")
            .into_iter()
            .chain(self.files("artifacts"))
        {
            let bytes = Self::read(&path);
            self.check(&bytes, &path.display().to_string(), || run(&bytes));
        }
    }

    /// `n` inputs (or `SKVAULT_FUZZ_MUTATIONS`), each a seed changed one to four times by
    /// `mutate` (given another seed to splice from), from an RNG seeded with `seed` (or
    /// `SKVAULT_FUZZ_SEED`), through `run`; what `run` returned for each.
    pub fn mutated<R>(
        &self,
        seed: u64,
        n: u64,
        mut mutate: impl FnMut(&mut Rng, &mut Vec<u8>, &[u8]),
        run: impl Fn(&[u8]) -> R,
    ) -> Vec<R> {
        let seeds: Vec<Vec<u8>> = self.files("corpus").iter().map(|p| Self::read(p)).collect();
        if seeds.is_empty() {
            panic!("no seed in fuzz/corpus/{}", self.target);
        }
        let mut rng = Rng::new(env_number("SKVAULT_FUZZ_SEED", seed));
        let n = env_number("SKVAULT_FUZZ_MUTATIONS", n);
        (0..n)
            .map(|i| {
                let mut bytes = rng.pick(&seeds).clone();
                let other = rng.pick(&seeds).clone();
                for _ in 0..1 + rng.below(4) {
                    mutate(&mut rng, &mut bytes, &other);
                }
                self.check(&bytes, &format!("mutation {i}"), || run(&bytes))
            })
            .collect()
    }
}
