//! The extension's allocator: mimalloc (v2, local-dynamic TLS; `docs/ARCHITECTURE.md`,
//! "Allocator"), for every Rust allocation of the extension (Python's and numpy's own are
//! not affected). A save's walk, a manifest's document and a load's checks make many small
//! allocations: with it, a 500-tree forest's save runs a tenth fewer instructions before
//! its write (callgrind), and its mapped load came to 1.01x the rebuild floor where it took
//! 1.07x (three runs of each build, alternated).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `arena_eager_commit` option (its place in mimalloc v2's `mi_option_e`, which
/// the Cargo feature `v2` pins).
#[cfg(target_os = "linux")]
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Arenas committed as they are used, not whole when reserved (mimalloc's default on Linux).
/// Memory in an eagerly committed arena is purged with `MADV_FREE`, which leaves freed pages
/// counted in the process's resident memory until the kernel needs them; committed on
/// demand, purged memory is decommitted (`MADV_DONTNEED`) and leaves it. With the default,
/// `skvault predict` streaming Parquet from S3 peaked 4 MB above its bound (tests/
/// test_predict_stream.py); the save and load benchmarks showed no difference.
///
/// Run by the loader when the extension is loaded (`.init_array`), before any Rust code of
/// the extension runs and so before mimalloc reserves its first arena, which this option
/// decides for.
#[cfg(target_os = "linux")]
extern "C" fn configure() {
    // SAFETY: sets one integer of mimalloc's option table. mimalloc documents the call as not
    // thread-safe: it runs while the extension is being loaded, before any of its code can
    // run on any thread.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) }
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static CONFIGURE: extern "C" fn() = configure;

/// mimalloc's `arena_eager_commit` as set (0 once `configure` ran; `None` where the option
/// is left to mimalloc), for the tests.
pub fn arena_eager_commit() -> Option<i64> {
    #[cfg(target_os = "linux")]
    #[allow(clippy::useless_conversion)] // `c_long` is 32 bits on 32-bit Linux
    {
        // SAFETY: reads one integer of mimalloc's option table, set once, at load.
        Some(i64::from(unsafe {
            libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT)
        }))
    }
    #[cfg(not(target_os = "linux"))]
    None
}
