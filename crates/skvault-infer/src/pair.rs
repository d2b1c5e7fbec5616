//! One row through a large forest on two threads: the calling thread and one persistent
//! helper that waits for rows by spinning a little while, as onnxruntime's threads do.
//!
//! Waking one of rayon's parked threads costs more than a one-row walk of a 500-tree forest
//! gains from it (the wake-up is a system call, and the woken thread starts tens of
//! microseconds later on a virtual machine). The helper instead spins for [`SPIN`] after
//! each row, checking for the next one, and only then parks: rows that come back to back
//! (a request loop, a benchmark) find it awake; an idle process does not burn a core.
//!
//! The trees' groups are cut into pieces of [`PIECE_GROUPS`] groups. The caller claims
//! pieces from the front, the helper from the back, each piece claimed once (an atomic
//! swap), so the two meet wherever the helper's start and speed put them; a helper that is
//! parked, descheduled or busy with another caller's row leaves every piece to the caller.
//! A piece the helper claimed but has not finished after [`WAIT`] is walked by the caller
//! itself: the walk is a pure function of the trees and the row, so whichever thread's
//! leaves are used, they are the same, and the caller sums them in tree order afterwards.
//! Results never depend on the helper.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use crate::across::{Across, ACROSS};
use crate::tree::Rows;

/// Groups of trees in one piece: the unit the two threads claim. On bench/native.py's
/// 500-tree forest, quiet machine, one row: 9.8 µs with 1 group a piece, 8.0 with 2, 7.6
/// with 4, 9.2 with 8 (`examples/bench_forest`, 2 threads).
const PIECE_GROUPS: usize = 4;
/// Trees in one piece.
const PIECE: usize = PIECE_GROUPS * ACROSS;
/// How long the helper spins for the next row before it parks.
const SPIN: Duration = Duration::from_micros(60);
/// How long the caller waits for a piece the helper is walking before it walks it itself.
const WAIT: Duration = Duration::from_micros(4);
/// Steps (see [`Across::work`]) from which a row is shared with the helper: below, handing
/// it over (a few cache lines between cores) costs more than half the walk.
pub(crate) const PAIR_STEPS: u64 = 4096;

/// One piece: who claimed it, whether its leaves are written, and the leaves. A cache line
/// (or more) of its own, so that claims of different pieces do not contend.
#[repr(align(64))]
struct Piece {
    claimed: AtomicBool,
    done: AtomicBool,
    leaves: [AtomicU32; PIECE],
}

impl Piece {
    fn new() -> Piece {
        Piece {
            claimed: AtomicBool::new(false),
            done: AtomicBool::new(false),
            leaves: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Claims the piece: `true` if nobody had.
    fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }
}

/// One row to walk: the forest, a copy of the row and the pieces.
struct Job {
    across: Arc<Across>,
    row: Rows<f32>,
    trees: usize,
    pieces: Box<[Piece]>,
}

impl Job {
    /// The trees of piece `i`.
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = (i * PIECE).min(self.trees);
        start..(start + PIECE).min(self.trees)
    }

    /// The helper's part: pieces from the back until one is already claimed.
    fn help(&self) {
        let mut buf = [0u32; PIECE];
        for (i, piece) in self.pieces.iter().enumerate().rev() {
            if !piece.claim() {
                return;
            }
            let n = self.range(i).len();
            let out = &mut buf[..n];
            self.across.walk_groups(i * PIECE_GROUPS, &self.row, out);
            for (a, v) in piece.leaves.iter().zip(out.iter()) {
                a.store(*v, Ordering::Relaxed);
            }
            piece.done.store(true, Ordering::Release);
        }
    }
}

/// What the caller and the helper share.
struct Shared {
    /// The latest row, replaced under the lock (with `epoch` bumped).
    job: Mutex<Option<Arc<Job>>>,
    /// Bumped for every new row (under `job`'s lock); the helper spins on it.
    epoch: AtomicU64,
    /// The helper is waiting on `wake` (set and cleared under `job`'s lock).
    parked: AtomicBool,
    wake: Condvar,
    /// A caller is using the helper (one caller at a time; others walk alone).
    busy: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<Job>>> {
        // Nothing that holds the lock can panic; if something did, the slot is still valid.
        self.job.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The helper's loop: wait for a row (spinning, then parked), walk its part, repeat.
    fn serve(&self) {
        let mut seen = 0u64;
        loop {
            if !self.spin(seen) {
                let mut slot = self.lock();
                self.parked.store(true, Ordering::SeqCst);
                while self.epoch.load(Ordering::SeqCst) == seen {
                    slot = self.wake.wait(slot).unwrap_or_else(PoisonError::into_inner);
                }
                self.parked.store(false, Ordering::SeqCst);
                drop(slot);
            }
            let job = {
                let slot = self.lock();
                seen = self.epoch.load(Ordering::SeqCst);
                slot.clone()
            };
            if let Some(job) = job {
                job.help();
            }
        }
    }

    /// Spins up to [`SPIN`] for `epoch` to move past `seen`: `true` if it did.
    fn spin(&self, seen: u64) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if self.epoch.load(Ordering::Acquire) != seen {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN {
                return false;
            }
            // Lets a thread waiting for this core run (the caller itself, on a machine
            // with more threads than cores); returns at once when none waits.
            std::thread::yield_now();
        }
    }

    /// Hands `job` to the helper; `false` if the lock was held (by the helper, which may
    /// have been descheduled holding it: the caller never waits on it).
    fn publish(&self, job: Arc<Job>) -> bool {
        {
            let mut slot = match self.job.try_lock() {
                Ok(slot) => slot,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return false,
            };
            *slot = Some(job);
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        // The helper sets `parked` under the lock before it waits and checks the epoch
        // under it: either it saw the new epoch, or it is waiting and this wakes it.
        if self.parked.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
        true
    }
}

/// Releases [`Shared::busy`] when dropped.
struct Busy<'a>(&'a AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The helper, started on first use; `None` if its thread could not be started.
fn helper() -> Option<&'static Shared> {
    static HELPER: OnceLock<Option<Arc<Shared>>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let shared = Arc::new(Shared {
                job: Mutex::new(None),
                epoch: AtomicU64::new(0),
                parked: AtomicBool::new(false),
                wake: Condvar::new(),
                busy: AtomicBool::new(false),
            });
            let theirs = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("skvault-row".into())
                .spawn(move || theirs.serve())
                .ok()
                .map(|_| shared)
        })
        .as_deref()
}

/// Whether one row of `across` is worth sharing with the helper: enough steps, and more
/// than one thread allowed (rayon's thread count, which `RAYON_NUM_THREADS` sets).
pub(crate) fn worth_it(across: &Across) -> bool {
    across.work() >= PAIR_STEPS && rayon::current_num_threads() > 1
}

/// The leaf of `row` in each tree of `across` (as [`Across::leaves`]), into `leaf`, the
/// calling thread and the helper sharing the trees. `row` is moved into the shared job.
pub(crate) fn leaves(across: &Arc<Across>, row: Rows<f32>, leaf: &mut [u32]) {
    let Some(shared) = helper() else {
        across.walk_groups(0, &row, leaf);
        return;
    };
    if shared.busy.swap(true, Ordering::Acquire) {
        // Another caller has the helper: this row is walked here alone.
        across.walk_groups(0, &row, leaf);
        return;
    }
    let _busy = Busy(&shared.busy);
    let trees = leaf.len();
    let pieces: Box<[Piece]> = (0..trees.div_ceil(PIECE)).map(|_| Piece::new()).collect();
    let job = Arc::new(Job {
        across: Arc::clone(across),
        row,
        trees,
        pieces,
    });
    if !shared.publish(Arc::clone(&job)) {
        across.walk_groups(0, &job.row, leaf);
        return;
    }
    // The front, until the helper's part is reached.
    let mut met = job.pieces.len();
    for (i, piece) in job.pieces.iter().enumerate() {
        if !piece.claim() {
            met = i;
            break;
        }
        if let Some(out) = leaf.get_mut(job.range(i)) {
            across.walk_groups(i * PIECE_GROUPS, &job.row, out);
        }
    }
    // The helper's part: its leaves once written, else (after `WAIT`, once) walked here.
    let mut patient = true;
    for (i, piece) in job.pieces.iter().enumerate().skip(met) {
        let Some(out) = leaf.get_mut(job.range(i)) else {
            continue;
        };
        let done = if patient {
            wait_done(&piece.done)
        } else {
            piece.done.load(Ordering::Acquire)
        };
        patient &= done;
        if done {
            for (o, a) in out.iter_mut().zip(piece.leaves.iter()) {
                *o = a.load(Ordering::Relaxed);
            }
        } else {
            across.walk_groups(i * PIECE_GROUPS, &job.row, out);
        }
    }
    // The slot lets go of the job, and of the forest's layout with it: a model dropped after
    // its last row must not stay in memory through the helper.
    let mut slot = shared.lock();
    if slot.as_ref().is_some_and(|j| Arc::ptr_eq(j, &job)) {
        *slot = None;
    }
}

/// Spins until `done` is set (`true`) or [`WAIT`] has passed (`false`).
fn wait_done(done: &AtomicBool) -> bool {
    if done.load(Ordering::Acquire) {
        return true;
    }
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if done.load(Ordering::Acquire) {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= WAIT {
            return done.load(Ordering::Acquire);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{leaves, PIECE};
    use crate::across::tests::forest;
    use crate::across::Across;
    use crate::tree::Rows;
    use skvault_format::fuzzing::Rng;

    /// The leaves found by the caller and the helper together are the walk's on one thread,
    /// whichever of them walks which piece: forests of one piece, several and a part one,
    /// rows back to back (the helper awake) and from several callers at once (one of them
    /// has the helper, the others walk alone).
    #[test]
    fn shared_leaves_are_the_walks() {
        let mut rng = Rng::new(0xface);
        for n_trees in [1, PIECE, 3 * PIECE + 7] {
            let nf = 6;
            let across = Arc::new(Across::new(&forest(&mut rng, n_trees, nf)).unwrap());
            let rows: Vec<Vec<f32>> = (0..60)
                .map(|r| {
                    (0..nf)
                        .map(|_| match rng.below(9) {
                            0 if r % 3 == 0 => f32::NAN,
                            v => v as f32 - 4.0,
                        })
                        .collect()
                })
                .collect();
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        for x in &rows {
                            let mut row = Rows::default();
                            row.fill_one(x, nf, |v| v);
                            let mut want = vec![0; n_trees];
                            across.walk_groups(0, &row, &mut want);
                            let mut got = vec![u32::MAX; n_trees];
                            leaves(&across, row, &mut got);
                            assert_eq!(got, want, "{n_trees} trees, row {x:?}");
                        }
                    });
                }
            });
        }
    }

    #[test]
    fn the_helper_lets_go_of_a_forest_after_its_row() {
        let mut rng = Rng::new(0xdead);
        let nf = 4;
        let across = Arc::new(Across::new(&forest(&mut rng, 3 * PIECE, nf)).unwrap());
        let mut row = Rows::default();
        row.fill_one(&[0.5, -1.0, 2.0, 0.0], nf, |v| v);
        let mut got = vec![0; 3 * PIECE];
        leaves(&across, row, &mut got);
        // The helper may still be finishing a piece it claimed; then it drops its copy.
        let start = std::time::Instant::now();
        while Arc::strong_count(&across) > 1 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "the helper still holds the forest"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
