//! The memory of a load's pool (the arrays that trees copy, see
//! [`skvault_format::load_plan::copied_by_trees`]), kept for a few seconds after the load
//! for the next one.
//!
//! A 500-tree forest's pool is 160 MB, needed only while the load runs. Fresh memory of that
//! size comes from the kernel, which maps and zeroes it a page at a time on first touch:
//! 39,000 page faults a load, a third of the load's time on the benchmark's machine, where
//! `pickle.load` of the same forest took none of them (its arrays are small allocations
//! that malloc serves again from memory the process already has). Loading models one after
//! another (a registry sweep, cross-validation, tests, a benchmark) therefore reuses the
//! last large pool: when its last array goes, its memory is kept, and a load within
//! [`KEEP_FOR`] of it whose pool fits takes it instead of asking the kernel. A thread of
//! its own frees it once that time has passed, so a process that loads once does not hold
//! the memory for long, and freeing 160 MB (unmapping it) no longer happens on the thread
//! that loads. One block is kept at most: a second pool freed meanwhile replaces it.
//!
//! A kept block holds the bytes of the load that used it. It is only ever handed to the
//! fill, which writes every pooled array's bytes before the builder can see the array
//! (see `build.rs`); the gaps between arrays are never part of an array.

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;
use skvault_format::per_process::{PerProcess, Served};

/// Pools from this size are kept; smaller ones are freed at once (their pages cost little,
/// and malloc keeps them in the process anyway).
const KEEP_FROM: usize = 32 << 20;
/// How long a kept pool waits for the next load before it is freed.
const KEEP_FOR: Duration = Duration::from_secs(10);
/// Alignment of the pool's start; arrays inside it start at multiples of the plan's own
/// alignment from there.
const ALIGN: usize = 64;

/// One allocation of `layout`, owned.
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: a `Block` is the only owner of its allocation, plain bytes with no thread affinity.
unsafe impl Send for Block {}
// SAFETY: `Block` gives no access to its bytes through `&self` (only its address).
unsafe impl Sync for Block {}

impl Block {
    fn new(len: usize) -> Option<Block> {
        let layout = Layout::from_size_align(len.max(1), ALIGN).ok()?;
        // SAFETY: the layout's size is not zero.
        let ptr = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        Some(Block { ptr, layout })
    }

    fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated by `Block::new` with this layout, freed once (here).
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// The kept block (with the time it was kept), and the thread that frees it: one per
/// process (a process forked after its parent kept a block has none of its thread and keeps
/// its own; the block its parent kept stays unused in it, pages shared with the parent's).
struct Keeper {
    slot: Mutex<Option<(Block, Instant)>>,
    wake: Condvar,
}

impl Keeper {
    /// This process's keeper, its thread started on first use; `None` if it could not be
    /// (then nothing is kept).
    fn get() -> Option<&'static Keeper> {
        static KEEPER: PerProcess<Served<Keeper>> = PerProcess::new();
        let make = || Keeper {
            slot: Mutex::new(None),
            wake: Condvar::new(),
        };
        KEEPER.serving("skvault-pool", make, |keeper| keeper.run())
    }

    fn slot(&self) -> MutexGuard<'_, Option<(Block, Instant)>> {
        // A panic while holding the lock cannot leave the slot half-written: it is one move.
        // The lock is held for a move only (a block is freed after it is let go).
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frees the kept block once it has waited [`KEEP_FOR`].
    fn run(&self) {
        let mut slot = self.slot();
        loop {
            let age = slot.as_ref().map(|(_, at)| at.elapsed());
            slot = match age {
                None => self.wake.wait(slot).unwrap_or_else(|e| e.into_inner()),
                Some(age) if age >= KEEP_FOR => {
                    let old = slot.take();
                    drop(slot);
                    drop(old);
                    self.slot()
                }
                Some(age) => {
                    let (slot, _) = self
                        .wake
                        .wait_timeout(slot, KEEP_FOR - age)
                        .unwrap_or_else(|e| e.into_inner());
                    slot
                }
            };
        }
    }
}

/// Keeps `block` for the next load, or frees it here if it is small or no thread would free
/// it later. A block kept before (two loads' pools alive at once) is freed here.
fn keep(block: Block) {
    if block.len() < KEEP_FROM {
        return;
    }
    let Some(keeper) = Keeper::get() else {
        return;
    };
    let mut slot = keeper.slot();
    let old = slot.replace((block, Instant::now()));
    drop(slot);
    keeper.wake.notify_one();
    drop(old);
}

/// The kept block if it can hold `len` bytes without wasting more than a quarter of them.
fn take(len: usize) -> Option<Block> {
    let keeper = Keeper::get()?;
    let mut slot = keeper.slot();
    let fits = |b: &Block| b.len() >= len && b.len() - len <= len / 4;
    match slot.take() {
        Some((block, _)) if fits(&block) => Some(block),
        other => {
            *slot = other;
            None
        }
    }
}

/// The pool of one load: `len` bytes, the base object of its arrays. When the last of them
/// goes, its memory is kept for the next load (see the module's comment).
#[pyclass(frozen, module = "skvault._native")]
pub struct Pool {
    block: Option<Block>,
    len: usize,
    /// Whether the memory was kept from an earlier load (its pages are in place already).
    reused: bool,
}

impl Pool {
    /// A pool of `len` bytes, uninitialized: the caller writes every byte it exposes.
    pub fn new(len: usize) -> PyResult<Pool> {
        let (block, reused) = match take(len) {
            Some(block) => (block, true),
            None => (
                Block::new(len).ok_or_else(|| {
                    PyMemoryError::new_err(format!("cannot allocate {len} bytes for the arrays"))
                })?,
                false,
            ),
        };
        Ok(Pool {
            block: Some(block),
            len,
            reused,
        })
    }

    /// Address and length of the pool's bytes, writable, for as long as the pool lives.
    pub fn region(&self) -> (*mut u8, usize) {
        match &self.block {
            Some(block) => (block.ptr.as_ptr(), self.len),
            None => (std::ptr::null_mut(), 0),
        }
    }

    pub fn reused(&self) -> bool {
        self.reused
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(block) = self.block.take() {
            keep(block);
        }
    }
}
