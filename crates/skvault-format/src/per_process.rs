#![allow(unsafe_code)]
//! One value per process, made on first use and made anew in a process forked after it.
//!
//! A process forked by `fork` (Python's `multiprocessing` on Linux, many servers and job
//! runners) inherits its parent's memory but only the thread that forked: a value that
//! holds threads (a thread pool, a helper thread, the thread that frees kept memory) is
//! useless in the child, and a lock one of those threads held at the fork stays held for
//! ever there. [`PerProcess::get`] therefore gives each process a value of its own, found
//! without a lock: an atomic pointer to the value and the process id that made it. A child
//! finds its parent's id there and makes its own value, leaving the inherited one alone.
//!
//! Values are never freed (one per process that uses it). Two threads of one process that
//! ask for the first time at once may both make one: one is kept, the other dropped. So
//! `make` only builds the value; anything with effects that must happen once (starting a
//! thread: [`PerProcess::serving`]) belongs inside the value, behind a `OnceLock` of its
//! own: such a lock is never one inherited held, since the value it is in was made by this
//! process.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

/// A value and the process that made it.
struct Owned<T> {
    pid: u32,
    value: T,
}

/// One `T` per process (see the module's documentation); for `static`s.
pub struct PerProcess<T: 'static> {
    current: AtomicPtr<Owned<T>>,
}

impl<T: Send + Sync + 'static> PerProcess<T> {
    /// Nothing made yet.
    pub const fn new() -> PerProcess<T> {
        PerProcess {
            current: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// This process's value, made by `make` if it has none yet.
    pub fn get(&self, make: impl FnOnce() -> T) -> &'static T {
        let pid = std::process::id();
        let mut current = self.current.load(Ordering::Acquire);
        if let Some(value) = mine(current, pid) {
            return value;
        }
        let made = Box::into_raw(Box::new(Owned { pid, value: make() }));
        loop {
            match (self.current).compare_exchange(
                current,
                made,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // SAFETY: `made` comes from `Box::into_raw` and, now published, is never
                // freed.
                Ok(_) => return &unsafe { &*made }.value,
                Err(other) => {
                    if let Some(value) = mine(other, pid) {
                        // Another thread of this process made one first.
                        // SAFETY: `made` was published nowhere: this is its only owner.
                        drop(unsafe { Box::from_raw(made) });
                        return value;
                    }
                    current = other;
                }
            }
        }
    }
}

/// The value `owned` points to if process `pid` made it.
fn mine<T>(owned: *mut Owned<T>, pid: u32) -> Option<&'static T> {
    // SAFETY: a non-null pointer in a `PerProcess` comes from `Box::into_raw` in `get` and
    // is never freed.
    let owned: &'static Owned<T> = unsafe { owned.as_ref() }?;
    (owned.pid == pid).then_some(&owned.value)
}

/// A value served by a thread of its own (a helper, a cleaner), for a [`PerProcess`]: see
/// [`PerProcess::serving`].
pub struct Served<T> {
    value: T,
    /// Whether the thread was started (by the first caller, in the process that made the
    /// value).
    started: OnceLock<bool>,
}

impl<T: Send + Sync + 'static> PerProcess<Served<T>> {
    /// This process's value, made by `make` if it has none yet, with a thread named `name`
    /// running `serve` on it, started once; `None` if that thread could not be started.
    pub fn serving(
        &self,
        name: &str,
        make: impl FnOnce() -> T,
        serve: fn(&'static T),
    ) -> Option<&'static T> {
        let served = self.get(|| Served {
            value: make(),
            started: OnceLock::new(),
        });
        let value = &served.value;
        let started = served.started.get_or_init(|| {
            let thread = std::thread::Builder::new().name(name.into());
            thread.spawn(move || serve(value)).is_ok()
        });
        started.then_some(value)
    }
}

impl<T: Send + Sync + 'static> Default for PerProcess<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::{PerProcess, Served};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_process_makes_its_value_once_and_keeps_it() {
        static VALUE: PerProcess<AtomicUsize> = PerProcess::new();
        let made = AtomicUsize::new(0);
        let first = VALUE.get(|| {
            made.fetch_add(1, Ordering::Relaxed);
            AtomicUsize::new(7)
        });
        let again = VALUE.get(|| {
            made.fetch_add(1, Ordering::Relaxed);
            AtomicUsize::new(8)
        });
        assert!(std::ptr::eq(first, again));
        assert_eq!(again.load(Ordering::Relaxed), 7);
        assert_eq!(made.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_served_value_has_its_thread_started_once() {
        static SERVED: PerProcess<Served<AtomicUsize>> = PerProcess::new();
        let serve: fn(&'static AtomicUsize) = |runs| {
            runs.fetch_add(1, Ordering::SeqCst);
        };
        let first = SERVED.serving("test-serve", || AtomicUsize::new(0), serve);
        let again = SERVED.serving("test-serve", || AtomicUsize::new(0), serve);
        let (Some(first), Some(again)) = (first, again) else {
            panic!("the thread could not be started");
        };
        assert!(std::ptr::eq(first, again));
        let start = std::time::Instant::now();
        while first.load(Ordering::SeqCst) == 0 {
            assert!(start.elapsed() < std::time::Duration::from_secs(10));
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(first.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn threads_asking_at_once_all_get_the_same_value() {
        static VALUE: PerProcess<AtomicUsize> = PerProcess::new();
        let seen: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| s.spawn(move || VALUE.get(|| AtomicUsize::new(i)) as *const _ as usize))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        assert_eq!(seen.len(), 8);
        assert!(seen.iter().all(|p| *p == seen[0]));
    }
}
