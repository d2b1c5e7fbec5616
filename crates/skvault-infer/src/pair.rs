//! One row through a large forest on two threads: the calling thread and one persistent
//! helper that waits for rows by spinning a little while, as onnxruntime's threads do.
//!
//! Waking one of rayon's parked threads costs more than a one-row walk of a 500-tree forest
//! gains from it (the wake-up is a system call, and the woken thread starts tens of
//! microseconds later on a virtual machine). The helper instead spins for [`SPIN`] after
//! each row, checking for the next one, and only then parks: rows that come back to back
//! (a request loop, a benchmark) find it awake; an idle process does not burn a core.
//!
//! The trees' groups are cut into pieces of [`PIECE_GROUPS`] groups. The helper claims
//! pieces from the front, the caller from the back, each piece claimed once for a row (an
//! atomic maximum of the row's number), so the two meet wherever the helper's start and
//! speed put them; a helper that is parked, descheduled or busy with another caller's row
//! leaves every piece to the caller.
//!
//! The leaves' values are summed in tree order, as scikit-learn's forest sums them on one
//! thread. Where the layout holds the values (one or two a leaf, see `crate::across`), the
//! helper adds them up from zero as it walks its pieces, which come first in that order:
//! its sum after a piece is the first part of the whole sum, bit for bit, and the caller
//! goes on from it with its own pieces. Only that sum crosses between the cores (moving the
//! helper's leaves or values took longer than the additions it saves). Otherwise the helper
//! hands over its leaves' ordinals and the caller sums everything.
//!
//! A piece the helper claimed but has not finished after [`WAIT`] is walked by the caller
//! itself (the caller then starts from the sum after the helper's last finished piece): the
//! walk is a pure function of the trees and the row, so whichever thread walked a piece,
//! the sum is the same. Results never depend on the helper.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use skvault_format::per_process::{PerProcess, Served};

use crate::across::{Across, ACROSS, INLINE_WIDTH};
use crate::tree::{Rows, Tree};

/// Groups of trees in one piece: the unit the two threads claim. On bench/native.py's
/// 500-tree forest, quiet machine, one row: 9.8 µs with 1 group a piece, 8.0 with 2, 7.6
/// with 4, 9.2 with 8 (`examples/bench_forest`, 2 threads, ordinals handed over); with the
/// helper's sums (another machine), 9.0 with 2, 8.8 with 4, 8.7 with 8.
const PIECE_GROUPS: usize = 4;
/// Trees in one piece.
const PIECE: usize = PIECE_GROUPS * ACROSS;
/// How long the helper spins for the next row before it parks.
const SPIN: Duration = Duration::from_micros(60);
/// How long the caller waits for a piece the helper is walking before it walks it itself.
/// Zero in unit tests: the caller then finds the helper anywhere in its pieces.
#[cfg(not(test))]
const WAIT: Duration = Duration::from_micros(4);
#[cfg(test)]
const WAIT: Duration = Duration::ZERO;
/// Steps (see [`Across::work`]) from which a row is shared with the helper: below, handing
/// it over (a few cache lines between cores) costs more than half the walk.
pub(crate) const PAIR_STEPS: u64 = 4096;

/// Most words a walk gives for one piece's trees ([`Across::words`] each).
const PIECE_WORDS: usize = PIECE * INLINE_WIDTH;

/// One piece: the last row that claimed it, the last row whose walk of it the helper has
/// written, and that: the leaves' ordinals, or (a layout with values) the running sum of
/// the values of every tree up to the piece's last. A cache line (or more) of its own, so
/// that claims of different pieces do not contend.
///
/// Pieces are kept from row to row (see [`Spare`]), stamped with the number of the row
/// instead of being made anew for each: a piece's line is then written only by the thread
/// that claims it, and the helper's pieces, the same from one row to the next, stay in its
/// core's cache (made for each row, every one was first written by the caller, and each of
/// the helper's claims fetched its line from the caller's core).
#[repr(align(64))]
struct Piece {
    claimed: AtomicU64,
    done: AtomicU64,
    prefix: [AtomicU64; INLINE_WIDTH],
    ordinals: [AtomicU32; PIECE],
}

impl Piece {
    fn new() -> Piece {
        Piece {
            claimed: AtomicU64::new(0),
            done: AtomicU64::new(0),
            prefix: std::array::from_fn(|_| AtomicU64::new(0)),
            ordinals: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// Claims the piece for row `number`: `true` if nobody had. A helper still walking an
    /// earlier row fails to claim a piece a later row has claimed.
    fn claim(&self, number: u64) -> bool {
        self.claimed.fetch_max(number, Ordering::AcqRel) < number
    }

    /// Whether the helper has written its walk of the piece for row `number`. Only the
    /// helper writes a piece's results, one row after the other: once it has marked row
    /// `number` done, no earlier row's results come after.
    fn is_done(&self, number: u64) -> bool {
        self.done.load(Ordering::Acquire) == number
    }
}

/// One row to walk: the forest, a copy of the row, its number and the pieces (the first
/// `trees.div_ceil(PIECE)` of them).
struct Job {
    across: Arc<Across>,
    row: Rows<f32>,
    trees: usize,
    number: u64,
    pieces: Arc<[Piece]>,
}

/// What the caller that has the helper keeps between rows: the pieces and the last row's
/// number.
struct Spare {
    pieces: Arc<[Piece]>,
    rows: u64,
}

impl Job {
    /// The words of piece `i`'s trees in a walk's output.
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let words = self.across.words();
        let start = (i * PIECE).min(self.trees);
        start * words..(start + PIECE).min(self.trees) * words
    }

    /// Walks piece `i` on this thread into `found` (the whole row's words).
    fn walk(&self, i: usize, found: &mut [u64]) {
        if let Some(out) = found.get_mut(self.range(i)) {
            self.across.walk_groups(i * PIECE_GROUPS, &self.row, out);
        }
    }

    /// The helper's part: pieces from the front, in order, until one is already claimed.
    /// With values in the layout it adds them up as it goes, from zero in tree order: the
    /// sum after its last piece is the first part of the caller's sum, bit for bit, and
    /// only that sum crosses to the caller's core.
    fn help(&self) {
        let mut buf = [0u64; PIECE_WORDS];
        let mut sum = [0.0f64; INLINE_WIDTH];
        for (i, piece) in self.pieces().iter().enumerate() {
            if !piece.claim(self.number) {
                return;
            }
            let Some(out) = buf.get_mut(..self.range(i).len()) else {
                return;
            };
            self.across.walk_groups(i * PIECE_GROUPS, &self.row, out);
            if self.across.has_values() {
                self.across.add_values(out, &mut sum);
                for (a, v) in piece.prefix.iter().zip(sum) {
                    a.store(v.to_bits(), Ordering::Relaxed);
                }
            } else {
                for (a, v) in piece.ordinals.iter().zip(out.iter()) {
                    a.store(*v as u32, Ordering::Relaxed);
                }
            }
            piece.done.store(self.number, Ordering::Release);
        }
    }

    /// The row's pieces.
    fn pieces(&self) -> &[Piece] {
        let n = self.trees.div_ceil(PIECE);
        self.pieces.get(..n).unwrap_or_default()
    }
}

/// What the caller and the helper share. The fields each thread writes for every row are
/// on cache lines of their own: the helper spins reading `epoch`, and every write to its
/// line (a caller's claim of the helper, the lock) would take the line from the helper's
/// core and hand it back, on the caller's way to its walk.
struct Shared {
    /// The latest row, put there under the lock (with `epoch` bumped) and taken by the
    /// helper.
    job: CachePadded<Mutex<Option<Arc<Job>>>>,
    /// Bumped for every new row (under `job`'s lock); the helper spins on it.
    epoch: CachePadded<AtomicU64>,
    /// The helper is waiting on `wake` (set and cleared under `job`'s lock).
    parked: AtomicBool,
    wake: Condvar,
    /// A caller is using the helper (one caller at a time; others walk alone).
    busy: CachePadded<AtomicBool>,
    /// Kept by the caller that has the helper (locked by it alone).
    spare: CachePadded<Mutex<Spare>>,
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
            // Taken, not cloned: once the helper is done with the row, nothing holds it (nor
            // the forest's layout) on its behalf, and the caller has no lock to take again.
            let job = {
                let mut slot = self.lock();
                seen = self.epoch.load(Ordering::SeqCst);
                slot.take()
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

/// This process's helper, started on first use; `None` if its thread could not be
/// started. A process forked after its parent started a helper has none of its thread and
/// starts its own (see `skvault_format::per_process`).
fn helper() -> Option<&'static Shared> {
    static HELPER: PerProcess<Served<Shared>> = PerProcess::new();
    let make = || Shared {
        job: CachePadded::new(Mutex::new(None)),
        epoch: CachePadded::new(AtomicU64::new(0)),
        parked: AtomicBool::new(false),
        wake: Condvar::new(),
        busy: CachePadded::new(AtomicBool::new(false)),
        spare: CachePadded::new(Mutex::new(Spare {
            pieces: Arc::new([]),
            rows: 0,
        })),
    };
    HELPER.serving("skvault-row", make, |shared| shared.serve())
}

/// Whether one row of `across` is worth sharing with the helper: enough steps, and more
/// than one thread allowed (the process's pool's thread count, which `RAYON_NUM_THREADS`
/// sets).
pub(crate) fn worth_it(across: &Across) -> bool {
    across.work() >= PAIR_STEPS && skvault_format::threads::current_num_threads() > 1
}

/// Adds the leaf values that `row` reaches in `trees` (the trees `across` was made of)
/// into `acc`, zeros when called (a row's output), in tree order, the calling thread and
/// the helper sharing the trees: the same sum as [`Across::add_row`] on one thread, bit for
/// bit. `found` holds a walk's words for every tree ([`Across::words`] each), as scratch.
/// `row` is moved into the shared job.
pub(crate) fn add_row(
    across: &Arc<Across>,
    trees: &[Tree<f32>],
    row: Rows<f32>,
    found: &mut [u64],
    acc: &mut [f64],
) {
    let Some(shared) = helper() else {
        return across.add_row(trees, &row, found, acc);
    };
    if shared.busy.swap(true, Ordering::Acquire) {
        // Another caller has the helper: this row is walked here alone.
        return across.add_row(trees, &row, found, acc);
    }
    let _busy = Busy(&shared.busy);
    let (pieces, number) = {
        let mut spare = shared.spare.lock().unwrap_or_else(PoisonError::into_inner);
        let n = trees.len().div_ceil(PIECE);
        if spare.pieces.len() < n {
            spare.pieces = (0..n).map(|_| Piece::new()).collect();
        }
        spare.rows += 1;
        (Arc::clone(&spare.pieces), spare.rows)
    };
    let job = Arc::new(Job {
        across: Arc::clone(across),
        row,
        trees: trees.len(),
        number,
        pieces,
    });
    if !shared.publish(Arc::clone(&job)) {
        return across.add_row(trees, &job.row, found, acc);
    }
    // The back, until the helper's part is reached: pieces `mine..` are walked here.
    let pieces = job.pieces();
    let mut mine = pieces.len();
    for (i, piece) in pieces.iter().enumerate().rev() {
        if !piece.claim(number) {
            break;
        }
        job.walk(i, found);
        mine = i;
    }
    if across.has_values() {
        // The helper's sum after its last piece (waited for up to `WAIT`), else after the
        // last it has finished, the pieces after that walked here; then the rest added on.
        let mut from = 0;
        let mut sum = [0.0f64; INLINE_WIDTH];
        if let Some(last) = mine.checked_sub(1) {
            let ready = match pieces.get(last) {
                Some(p) if wait_done(p, number) => Some(last),
                _ => {
                    (pieces.get(..last).unwrap_or_default().iter()).rposition(|p| p.is_done(number))
                }
            };
            if let Some(piece) = ready.and_then(|k| pieces.get(k)) {
                for (s, a) in sum.iter_mut().zip(&piece.prefix) {
                    *s = f64::from_bits(a.load(Ordering::Relaxed));
                }
            }
            from = ready.map_or(0, |k| k + 1);
            for i in from..mine {
                job.walk(i, found);
            }
        }
        let rest = found.get(job.range(from).start..).unwrap_or_default();
        across.add_values(rest, &mut sum);
        for (a, s) in acc.iter_mut().zip(sum) {
            *a += s;
        }
    } else {
        // The helper's ordinals once written, else (after `WAIT`, once) walked here.
        let mut patient = true;
        for (i, piece) in pieces.iter().enumerate().take(mine) {
            let done = if patient {
                wait_done(piece, number)
            } else {
                piece.is_done(number)
            };
            patient &= done;
            match found.get_mut(job.range(i)) {
                Some(out) if done => {
                    for (o, a) in out.iter_mut().zip(&piece.ordinals) {
                        *o = u64::from(a.load(Ordering::Relaxed));
                    }
                }
                _ => job.walk(i, found),
            }
        }
        across.add_leaves(trees, found, acc);
    }
    // The helper takes the job from the slot (woken if parked) and drops it after its part,
    // letting go of the forest's layout: a model dropped after its last row does not stay
    // in memory through the helper.
}

/// Spins until the helper has written `piece` for row `number` (`true`) or [`WAIT`] has
/// passed (`false`).
fn wait_done(piece: &Piece, number: u64) -> bool {
    if piece.is_done(number) {
        return true;
    }
    let start = Instant::now();
    loop {
        for _ in 0..32 {
            if piece.is_done(number) {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= WAIT {
            return piece.is_done(number);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{add_row, PIECE};
    use crate::across::tests::forest;
    use crate::across::Across;
    use crate::across::INLINE_WIDTH;
    use crate::tree::Rows;
    use skvault_format::fuzzing::Rng;

    /// The sums made by the caller and the helper together are the one-thread walk's, bit
    /// for bit, whichever of them walks which piece (the caller does not wait for the helper
    /// in tests, so it meets every share of the work): forests of one piece, several and a
    /// part one, whose leaves hold one or two values (summed by the helper) or three
    /// (ordinals handed over), rows back to back (the helper awake) and from several callers
    /// at once (one of them has the helper, the others walk alone).
    #[test]
    fn shared_sums_are_the_walks() {
        let mut rng = Rng::new(0xface);
        for (n_trees, width) in [(1, 2), (PIECE, 1), (3 * PIECE + 7, 2), (3 * PIECE + 7, 3)] {
            let nf = 6;
            let trees: Vec<_> = forest(&mut rng, n_trees, nf)
                .into_iter()
                .map(|t| if width > 1 { t.widened(width) } else { t })
                .collect();
            let across = Arc::new(Across::new(&trees).unwrap());
            assert_eq!(across.has_values(), width <= INLINE_WIDTH);
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
                        let mut found = vec![0; n_trees * across.words()];
                        for x in &rows {
                            let mut row = Rows::default();
                            row.fill_one(x, nf, |v| v);
                            let mut want = vec![0.0; width];
                            across.add_row(&trees, &row, &mut found, &mut want);
                            found.fill(u64::MAX);
                            let mut got = vec![0.0; width];
                            add_row(&across, &trees, row, &mut found, &mut got);
                            let bits =
                                |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                            assert_eq!(bits(&got), bits(&want), "{n_trees} trees, row {x:?}");
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
        let trees = forest(&mut rng, 3 * PIECE, nf);
        let across = Arc::new(Across::new(&trees).unwrap());
        let mut row = Rows::default();
        row.fill_one(&[0.5, -1.0, 2.0, 0.0], nf, |v| v);
        let mut found = vec![0; 3 * PIECE * across.words()];
        add_row(&across, &trees, row, &mut found, &mut [0.0]);
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
