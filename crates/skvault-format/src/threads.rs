#![allow(unsafe_code)]
//! The thread pool that skvault's parallel work runs on: one rayon pool per process.
//!
//! rayon's global pool does not survive `fork`: a child forked after its parent used the
//! pool (Python's `multiprocessing` forks by default on Linux, and so do many servers and
//! job runners) inherits the pool's queues but none of its threads, and every parallel call
//! in it waits for ever. A load of a model with more than 1 MiB of arrays hung so in a
//! forked child. skvault therefore never uses the global pool: every parallel call goes
//! through [`install`] or [`spawn`], which use a pool made by this process, made anew (and
//! the inherited one left alone) when the process id is not the one that made it. The pool
//! has rayon's default size (`RAYON_NUM_THREADS`, else one thread per CPU).
//!
//! The pool is found without a lock (a child must not wait on a lock a thread of its parent
//! held at the fork): an atomic pointer to a pool that is never freed (one per process that
//! uses it, made once; a child's inherited one is left as it is, its threads gone).

use std::sync::atomic::{AtomicPtr, Ordering};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// A pool and the process that made it.
struct Owned {
    pid: u32,
    pool: ThreadPool,
}

static CURRENT: AtomicPtr<Owned> = AtomicPtr::new(std::ptr::null_mut());

/// This process's pool, made on first use; `None` if no thread could be started (then the
/// work runs on the calling thread alone).
fn pool() -> Option<&'static ThreadPool> {
    let pid = std::process::id();
    let current = CURRENT.load(Ordering::Acquire);
    // SAFETY: a non-null pointer in `CURRENT` comes from `Box::into_raw` below and is never
    // freed.
    if let Some(owned) = unsafe { current.as_ref() } {
        if owned.pid == pid {
            return Some(&owned.pool);
        }
    }
    let pool = ThreadPoolBuilder::new()
        .thread_name(|i| format!("skvault-{i}"))
        .build()
        .ok()?;
    let made = Box::into_raw(Box::new(Owned { pid, pool }));
    match CURRENT.compare_exchange(current, made, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `made` comes from `Box::into_raw` and, now published, is never freed.
        Ok(_) => unsafe { made.as_ref() }.map(|o| &o.pool),
        Err(other) => {
            // Another thread of this process made one first: use it, stop this one.
            // SAFETY: `made` was published nowhere: this is its only owner.
            drop(unsafe { Box::from_raw(made) });
            // SAFETY: `other` (the pointer stored meanwhile) comes from `Box::into_raw`
            // and is never freed.
            unsafe { other.as_ref() }.map(|o| &o.pool)
        }
    }
}

/// Runs `f` in this process's pool: the parallel iterators inside it use that pool. Called
/// from one of the pool's threads, `f` runs where it is.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match pool() {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Runs `f` on a thread of this process's pool, or here if there is none.
pub fn spawn(f: impl FnOnce() + Send + 'static) {
    match pool() {
        Some(pool) => pool.spawn(f),
        None => f(),
    }
}

/// The number of threads of this process's pool (1 without one).
pub fn current_num_threads() -> usize {
    pool().map_or(1, ThreadPool::current_num_threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_made_once_and_runs_parallel_work() {
        use rayon::prelude::*;
        let a = pool().map(|p| p as *const ThreadPool);
        let b = pool().map(|p| p as *const ThreadPool);
        assert!(a.is_some());
        assert_eq!(a, b);
        let sum: u64 = install(|| (0..10_000u64).into_par_iter().sum());
        assert_eq!(sum, 49_995_000);
        assert!(current_num_threads() >= 1);
    }
}
