//! Filling a load's arrays in the background while its objects are built.
//!
//! Reading and hashing the arrays of a large model takes as long as building its Python
//! objects (a forest's trees copy their nodes in `Tree.__setstate__`), and the two need not
//! wait for each other: the builder only needs array `i` when it reaches the node that uses
//! it. So the arrays are filled by rayon workers in table order, which is the order the
//! writer met them in, and the builder waits for each array before handing it out. While it
//! waits it fills arrays itself, so no thread idles.
//!
//! Safety rests on two rules: an array is handed to Python only once it is filled and
//! verified, and the workers are finished before any array can be freed: [`Fill`] waits for
//! them when it is dropped, and the builder declares it before the arrays it fills.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use skvault_format::{FormatError, SkvFile};

/// What to do for one array.
#[derive(Clone, Copy)]
pub enum Job {
    /// Read (decompress, optionally verify) array `index` into `len` bytes at address `dst`.
    Fill {
        index: usize,
        dst: usize,
        len: usize,
    },
    /// Check the digest of a mapped array in place.
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
    next: AtomicUsize,
    failed: AtomicBool,
    /// The first error, workers still running; guarded together with the condition variable.
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    error: Option<FormatError>,
    /// The array whose job failed first (its error may already have been handed out).
    failed_at: Option<usize>,
    workers: usize,
}

impl State {
    /// The first error, or a reminder of it once it has been taken.
    fn take_error(&mut self) -> Option<FormatError> {
        self.error.take().or_else(|| {
            self.failed_at.map(|index| FormatError::ArrayLayout {
                index,
                message: "could not be read".into(),
            })
        })
    }
}

/// The arrays of one load, filled in the background; see the module documentation.
pub struct Fill(Arc<Shared>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock; recover the data regardless.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, job: Job) -> Result<(), FormatError> {
        match job {
            Job::Fill { index, dst, len } => {
                // SAFETY: `dst` is the data of a numpy array (or a distinct range of the pool)
                // of exactly `len` bytes, written by no one else: each job is taken once (the
                // `next` counter), and `Fill` outlives every job (it waits for the workers on
                // drop, before the builder's arrays are dropped). Python cannot read it before
                // `done` is set, since the builder hands arrays out only after `wait`.
                let dst = unsafe { std::slice::from_raw_parts_mut(dst as *mut u8, len) };
                self.file.read_array_into(index, dst, self.verify)
            }
            Job::Verify { index } => self.file.verify_array(index),
        }
    }

    /// Takes and runs the next job; `false` when none is left (or a job failed).
    fn run_next(&self) -> bool {
        if self.failed.load(Ordering::Acquire) {
            return false;
        }
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let Some(&job) = self.jobs.get(k) else {
            return false;
        };
        let result = self.run(job);
        let mut state = self.lock();
        match result {
            Ok(()) => self.done[k].store(true, Ordering::Release),
            Err(e) => {
                self.failed.store(true, Ordering::Release);
                if state.failed_at.is_none() {
                    state.failed_at = Some(job.index());
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
}

impl Fill {
    /// Runs `jobs` (in the order given) on up to `threads` rayon workers, or here and now when
    /// `threads` is 0.
    pub fn start(
        file: Arc<SkvFile>,
        verify: bool,
        jobs: Vec<Job>,
        threads: usize,
    ) -> Result<Fill, FormatError> {
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
            next: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            state: Mutex::new(State {
                error: None,
                failed_at: None,
                workers: threads,
            }),
            changed: Condvar::new(),
        });
        let fill = Fill(shared);
        if threads == 0 {
            fill.finish()?;
        }
        for _ in 0..threads {
            let shared = fill.0.clone();
            rayon::spawn(move || shared.work());
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

    /// Returns once array `index` is filled (helping with the remaining jobs meanwhile), or with
    /// the first error of any job.
    pub fn wait(&self, index: usize) -> Result<(), FormatError> {
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
            while !s.done[k].load(Ordering::Acquire) && state.failed_at.is_none() {
                state = s
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
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

    /// Runs what is left, waits for the workers and returns the first error, if any.
    pub fn finish(&self) -> Result<(), FormatError> {
        let s = &self.0;
        while s.run_next() {}
        let mut state = s.lock();
        while state.workers > 0 {
            state = s
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.take_error().map_or(Ok(()), Err)
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        // Stop taking jobs and wait for the running ones: their destinations may be freed
        // right after this.
        self.0.failed.store(true, Ordering::Release);
        let mut state = self.0.lock();
        while state.workers > 0 {
            state = self
                .0
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}
