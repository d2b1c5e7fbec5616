//! Filling a load's arrays in the background while the loader builds its objects.
//!
//! Reading and hashing the arrays of a large model takes as long as building its objects (a
//! forest's trees copy their nodes in `Tree.__setstate__`), and the two need not wait for
//! each other: the builder only needs array `i` when it reaches the node that uses it. So
//! [`Fill`] runs the jobs of a [`LoadPlan`](crate::load_plan::LoadPlan) on rayon workers in
//! table order, which is the order the writer met the arrays in, and the builder
//! [`Fill::wait`]s for each array before handing it out. While it waits it runs jobs itself,
//! so no thread idles.
//!
//! The buffers belong to the caller (numpy arrays, for the Python binding), so the fill
//! writes through addresses: a [`Destination`], made only by the `unsafe`
//! [`Destination::new`], whose contract is the one thing a caller must uphold. The rest is
//! safe: each job runs once, an array counts as filled only once it is written and verified,
//! and a `Fill` waits for its workers when it is dropped. [`OwnedArrays`] is the same with
//! buffers it owns, for Rust callers (the fuzz target, the tests).
//!
//! Its tests (`tests/fill.rs`: concurrent waits, errors of a worker reaching the waiters, a
//! `Fill` dropped midway, empty arrays) run under Miri too (`make miri`, with Tree Borrows:
//! rayon's crossbeam-epoch fails the stricter Stacked Borrows), which checks the raw writes,
//! the synchronisation and that no worker touches a buffer after its `Fill` is gone.

// The crate denies unsafe code; this module is where its one contract lives (every block
// carries a SAFETY note).
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{FormatError, Result};
use crate::load_plan::{LoadPlan, Place, Task};
use crate::SkvFile;

/// Memory that one fill job writes an array into: an address and a length, nothing more.
#[derive(Debug)]
pub struct Destination {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Destination` is an address that the contract of `Destination::new` hands over to
// the one `Fill` that receives it: the memory is written only through `Shared::run`, by
// whichever thread took the job (once, see `Shared::run_next`), so neither moving a
// destination to another thread nor sharing the job list between threads lets two threads
// write the same bytes.
unsafe impl Send for Destination {}
// SAFETY: as for `Send`: `&Destination` gives no access to the memory.
unsafe impl Sync for Destination {}

impl Destination {
    /// The `len` bytes at `ptr`, for one [`Job::Fill`]. A zero `len` needs no memory (`ptr`
    /// may then be null or dangling).
    ///
    /// # Safety
    ///
    /// When `len > 0`, the caller guarantees that:
    ///
    /// * `ptr` is valid for writes of `len` bytes, within one allocation (so `len` is at most
    ///   `isize::MAX`);
    /// * those bytes stay valid, and nothing else reads or writes them, from now until the
    ///   [`Fill`] given this destination reports the array done ([`Fill::is_done`] true or
    ///   [`Fill::wait`] `Ok` for its index), has returned from [`Fill::finish`], or has been
    ///   dropped (if it is never dropped, for ever). No other destination overlaps them
    ///   meanwhile.
    ///
    /// After that the bytes are the caller's again: filled with the array (and verified when
    /// the fill verifies) once it is reported done, unspecified after an error.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> Destination {
        let ptr = match NonNull::new(ptr) {
            Some(p) if len > 0 => p,
            _ => NonNull::dangling(),
        };
        Destination { ptr, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What to do for one array.
#[derive(Debug)]
pub enum Job {
    /// Read (decompress, maybe verify) array `index` into `dst`, which must be exactly its
    /// raw length.
    Fill { index: usize, dst: Destination },
    /// Check the digest of array `index` (where it lies when the file is in memory).
    Verify { index: usize },
}

impl Job {
    pub fn index(&self) -> usize {
        match *self {
            Job::Fill { index, .. } | Job::Verify { index } => index,
        }
    }
}

struct Shared {
    file: Arc<SkvFile>,
    verify: bool,
    jobs: Vec<Job>,
    /// Position in `jobs` of each array's job, `usize::MAX` for an array with none.
    job_of: Vec<usize>,
    done: Vec<AtomicBool>,
    /// Which job is next, the first error, workers and jobs still running; guarded
    /// together with the condition variable.
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    error: Option<FormatError>,
    /// The job that failed first (its error may already have been handed out).
    failed: Option<Failure>,
    workers: usize,
    /// The next job to take: each value goes to one thread, so each job runs at most once.
    next: usize,
    /// No job is taken any more: one failed, or the `Fill` is being dropped.
    stopped: bool,
    /// Jobs taken and not yet ended, by any thread: the workers', and those a caller runs
    /// in `wait` or `finish`.
    running: usize,
}

/// What the first failed job was, for a reminder of its error once it has been handed out.
struct Failure {
    /// Its array.
    index: usize,
    /// Whether the error was a digest mismatch: a damaged array is an `IntegrityError`
    /// whichever thread asks first.
    digest: bool,
    message: String,
}

impl State {
    /// The first error, or a reminder of it once it has been taken: of the same kind when
    /// it was a digest mismatch, a layout error naming it otherwise.
    fn take_error(&mut self) -> Option<FormatError> {
        if let Some(e) = self.error.take() {
            return Some(e);
        }
        let failure = self.failed.as_ref()?;
        let index = failure.index;
        Some(if failure.digest {
            FormatError::DigestMismatch { index }
        } else {
            FormatError::layout(index, format!("could not be read: {}", failure.message))
        })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock; recover the data regardless.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_on<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, job: &Job) -> Result<()> {
        match job {
            Job::Fill { index, dst } => {
                // SAFETY: by the contract of `Destination::new`, `dst` is `len` writable bytes
                // of one allocation that nothing else touches until this `Fill` reports the
                // array done, finishes or is dropped; none of those can happen while the job
                // runs (`done` is set after it returns, `finish` and `drop` wait for the
                // workers, and the caller's thread runs its jobs inside `wait`/`finish`).
                // `run_next` hands each job to one thread only, so this is the only reference.
                let dst = unsafe { std::slice::from_raw_parts_mut(dst.ptr.as_ptr(), dst.len) };
                self.file.read_array_into(*index, dst, self.verify)
            }
            Job::Verify { index } => self.file.verify_array(*index),
        }
    }

    /// Takes and runs the next job; `false` when none is left (or a job failed).
    fn run_next(&self) -> bool {
        // Taken under the lock, so that `join` sees every job some thread has taken.
        let (k, job) = {
            let mut state = self.lock();
            if state.stopped {
                return false;
            }
            let k = state.next;
            let Some(job) = self.jobs.get(k) else {
                return false;
            };
            state.next += 1;
            state.running += 1;
            (k, job)
        };
        let result = self.run(job);
        let mut state = self.lock();
        state.running -= 1;
        match result {
            Ok(()) => self.done[k].store(true, Ordering::Release),
            Err(e) => {
                state.stopped = true;
                if state.failed.is_none() {
                    state.failed = Some(Failure {
                        index: job.index(),
                        digest: matches!(e, FormatError::DigestMismatch { .. }),
                        message: e.to_string(),
                    });
                    state.error = Some(e);
                }
            }
        }
        drop(state);
        self.changed.notify_all();
        true
    }

    fn work(&self) {
        while self.run_next() {}
        let mut state = self.lock();
        state.workers -= 1;
        drop(state);
        self.changed.notify_all();
    }

    /// Blocks until every worker has stopped and no job runs on any thread: a job that a
    /// caller's thread took in `wait` ends (and records its error) before `finish` on
    /// another thread reports the fill's outcome.
    fn join(&self) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        while state.workers > 0 || state.running > 0 {
            state = self.wait_on(state);
        }
        state
    }
}

/// The arrays of one load, filled in the background; see the module documentation.
pub struct Fill(Arc<Shared>);

impl Fill {
    /// Runs `jobs` (in the order given, one per array at most) on `threads` rayon workers, or
    /// here and now when `threads` is 0. `verify` checks the digest of every filled array.
    pub fn start(file: Arc<SkvFile>, verify: bool, jobs: Vec<Job>, threads: usize) -> Result<Fill> {
        let n_arrays = file.manifest().arrays.len();
        let mut job_of = vec![usize::MAX; n_arrays];
        for (k, job) in jobs.iter().enumerate() {
            if let Some(slot) = job_of.get_mut(job.index()) {
                *slot = k;
            }
        }
        let shared = Arc::new(Shared {
            file,
            verify,
            done: jobs.iter().map(|_| AtomicBool::new(false)).collect(),
            jobs,
            job_of,
            state: Mutex::new(State {
                error: None,
                failed: None,
                workers: threads,
                next: 0,
                stopped: false,
                running: 0,
            }),
            changed: Condvar::new(),
        });
        let fill = Fill(shared);
        if threads == 0 {
            fill.finish()?;
        }
        for _ in 0..threads {
            let shared = fill.0.clone();
            crate::threads::spawn(move || shared.work());
        }
        Ok(fill)
    }

    /// Whether array `index` is ready (filled, or needing nothing).
    pub fn is_done(&self, index: usize) -> bool {
        let s = &self.0;
        s.job_of
            .get(index)
            .is_none_or(|&k| k == usize::MAX || s.done[k].load(Ordering::Acquire))
    }

    /// Returns once array `index` is filled (running the remaining jobs meanwhile), or with
    /// the first error of any job.
    pub fn wait(&self, index: usize) -> Result<()> {
        let s = &self.0;
        let Some(&k) = s.job_of.get(index).filter(|k| **k != usize::MAX) else {
            return Ok(());
        };
        while !s.done[k].load(Ordering::Acquire) {
            if s.run_next() {
                continue;
            }
            // Every job is taken: wait for the one filling this array (or for an error).
            let mut state = s.lock();
            while !s.done[k].load(Ordering::Acquire) && state.failed.is_none() {
                state = s.wait_on(state);
            }
            if s.done[k].load(Ordering::Acquire) {
                break;
            }
            if let Some(e) = state.take_error() {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Runs what is left, waits for every job still running (the workers' and those other
    /// threads took in [`Fill::wait`]) and returns the first error, if any.
    pub fn finish(&self) -> Result<()> {
        let s = &self.0;
        while s.run_next() {}
        s.join().take_error().map_or(Ok(()), Err)
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        // Stop taking jobs and wait for the running ones: their destinations may be freed
        // right after this.
        self.0.lock().stopped = true;
        drop(self.0.join());
    }
}

/// The arrays of a [`LoadPlan`] in buffers this value owns (views stay in the file), filled
/// in the background by a [`Fill`]: the safe way to load arrays from Rust.
pub struct OwnedArrays {
    /// Declared first, so dropped first: its workers stop before the buffers are freed.
    fill: Fill,
    file: Arc<SkvFile>,
    places: Vec<Place>,
    /// The buffer of each array with `Place::Own`, empty for the others.
    own: Vec<Vec<u8>>,
    pool: Vec<u8>,
}

impl OwnedArrays {
    /// Allocates the buffers of `plan` (made for `file`) and starts filling them on
    /// `threads` workers (none: filled before this returns). `verify` checks the digests of
    /// the filled arrays; the plan decides whether views are verified.
    pub fn start(
        file: Arc<SkvFile>,
        plan: &LoadPlan,
        verify: bool,
        threads: usize,
    ) -> Result<OwnedArrays> {
        let places = plan.places().to_vec();
        if places.len() != file.manifest().arrays.len() {
            return Err(FormatError::layout(
                places.len(),
                "the plan is not of this file",
            ));
        }
        let mut own: Vec<Vec<u8>> = places
            .iter()
            .map(|p| match *p {
                Place::Own { len } => vec![0u8; len],
                _ => Vec::new(),
            })
            .collect();
        let mut pool = vec![0u8; plan.pool_len()];
        // Raw pointers taken once, before any job runs: `as_mut_ptr` makes no reference, and
        // the buffers are not touched again until their arrays are reported done.
        let own_ptrs: Vec<*mut u8> = own.iter_mut().map(Vec::as_mut_ptr).collect();
        let pool_ptr = pool.as_mut_ptr();
        let mut jobs = Vec::with_capacity(plan.tasks().len());
        for task in plan.tasks() {
            jobs.push(match *task {
                Task::Verify { index } => Job::Verify { index },
                Task::Fill { index, len } => {
                    let ptr = match places.get(index) {
                        Some(Place::Own { len: own_len }) if *own_len == len => own_ptrs[index],
                        Some(&Place::Pool {
                            start,
                            len: pool_len,
                        }) if pool_len == len
                            && start.checked_add(len).is_some_and(|end| end <= pool.len()) =>
                        {
                            // SAFETY: `start + len <= pool.len()`: in bounds of the pool.
                            unsafe { pool_ptr.add(start) }
                        }
                        _ => return Err(FormatError::layout(index, "the plan is not consistent")),
                    };
                    // SAFETY: `ptr` is `len` bytes of `own[index]` or of the pool (checked just
                    // above), which `self` owns and never moves (moving a Vec leaves its heap
                    // buffer in place). The pool ranges of a plan are disjoint, and each array
                    // has one task, so no two destinations overlap. The buffers are read only
                    // by `get`, after `wait` reports the array done, and freed only after
                    // `fill` is dropped (field order); if `self` is leaked, so are they.
                    let dst = unsafe { Destination::new(ptr, len) };
                    Job::Fill { index, dst }
                }
            });
        }
        let fill = Fill::start(file.clone(), verify, jobs, threads)?;
        Ok(OwnedArrays {
            fill,
            file,
            places,
            own,
            pool,
        })
    }

    /// Whether array `index` is ready.
    pub fn is_done(&self, index: usize) -> bool {
        self.fill.is_done(index)
    }

    /// The bytes of array `index`, once filled (or the first error of any job).
    pub fn get(&self, index: usize) -> Result<&[u8]> {
        let place = *self
            .places
            .get(index)
            .ok_or_else(|| FormatError::layout(index, "no such array"))?;
        self.fill.wait(index)?;
        match place {
            Place::View { .. } => self
                .file
                .mapped_bytes(index)
                .ok_or_else(|| FormatError::layout(index, "not in memory")),
            Place::Own { .. } => Ok(self.own[index].as_slice()),
            Place::Pool { start, len } => {
                // Only this array's range is looked at: other jobs may be writing the rest of
                // the pool, so no reference to the whole pool is made while they run.
                let base = self.pool.as_ptr();
                // SAFETY: `start + len <= pool.len()` was checked in `start`, and the range
                // is filled (`wait` returned `Ok`): no job writes it any more.
                Ok(unsafe { std::slice::from_raw_parts(base.add(start), len) })
            }
        }
    }

    /// Fills what is left; the first error of any job, if any.
    pub fn finish(&self) -> Result<()> {
        self.fill.finish()
    }
}
