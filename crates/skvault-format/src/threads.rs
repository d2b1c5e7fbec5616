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
//! The pool is one [`PerProcess`] value: found without a lock, made anew in a child.

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::per_process::PerProcess;

/// This process's pool, made on first use; `None` if no thread could be started (then the
/// work runs on the calling thread alone).
fn pool() -> Option<&'static ThreadPool> {
    static POOL: PerProcess<Option<ThreadPool>> = PerProcess::new();
    // Two threads asking first at once may both build a pool: the one not kept is dropped,
    // and its threads end.
    let build = || {
        ThreadPoolBuilder::new()
            .thread_name(|i| format!("skvault-{i}"))
            .build()
    };
    POOL.get(|| build().ok()).as_ref()
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
