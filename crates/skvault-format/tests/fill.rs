//! The background fill of a load (`skvault_format::fill`): arrays come out exactly as
//! `read_array` gives them, whatever the thread count and the order they are asked for in,
//! errors of a worker reach whoever waits, and no worker outlives its `Fill`.
//!
//! Small enough to run under Miri (`make miri`); the zstd codec (C code) and the property
//! test are left out there.

// Helpers of a test binary are test code too: clippy.toml's allow-*-in-tests only covers
// `#[test]` functions themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{write, CODECS};
use skvault_format::fill::{Destination, Fill, Job, OwnedArrays};
use skvault_format::load_plan::{LoadPlan, Place, PlanOptions, Task};
use skvault_format::testing::object;
use skvault_format::{Codec, DType, FormatError, Node, Order, SkvFile};

type Arrays = Vec<(DType, Vec<u64>, Order, Vec<u8>)>;

fn codecs() -> Vec<Codec> {
    CODECS
        .into_iter()
        .filter(|c| !cfg!(miri) || *c != Codec::Zstd)
        .collect()
}

fn f64_dtype() -> DType {
    common::dtype(serde_json::json!("<f8"))
}

/// `n` arrays of `<f8`, array `i` of `len(i)` values; every other pair of them is the
/// `nodes`/`values` of a `Tree`, so the plan pools them, the rest get buffers of their own.
fn forest(n: usize, len: impl Fn(usize) -> usize) -> (Node, Arrays) {
    let arrays: Arrays = (0..n)
        .map(|i| {
            let data: Vec<u8> = (0..len(i))
                .flat_map(|k| ((i * 1000 + k) as f64).to_le_bytes())
                .collect();
            (f64_dtype(), vec![len(i) as u64], Order::C, data)
        })
        .collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < n {
        if i + 1 < n && i % 4 == 0 {
            items.push(object(
                "sklearn.tree._tree.Tree",
                vec![("nodes", Node::Array(i)), ("values", Node::Array(i + 1))],
            ));
            i += 2;
        } else {
            items.push(Node::Array(i));
            i += 1;
        }
    }
    (Node::List(items), arrays)
}

fn open(root: Node, arrays: &Arrays, codec: Codec) -> Arc<SkvFile> {
    Arc::new(SkvFile::from_bytes(write(root, arrays, codec)).unwrap())
}

fn plan(file: &SkvFile, view_in_place: bool) -> LoadPlan {
    let options = PlanOptions {
        view_in_place,
        verify_views: true,
    };
    LoadPlan::new(file, options).unwrap()
}

#[test]
fn filled_arrays_equal_read_array_for_every_codec_place_and_thread_count() {
    let (root, arrays) = forest(10, |i| [0, 1, 7, 40][i % 4]);
    for codec in codecs() {
        let file = open(root.clone(), &arrays, codec);
        for view_in_place in [false, true] {
            let plan = plan(&file, view_in_place);
            let pooled = plan
                .places()
                .iter()
                .any(|p| matches!(p, Place::Pool { .. }));
            // Uncompressed arrays are all viewed when they can be, compressed ones never.
            assert_eq!(pooled, !view_in_place || codec != Codec::None);
            for threads in [0, 1, 3] {
                let owned = OwnedArrays::start(file.clone(), &plan, true, threads).unwrap();
                // Asked for backwards: the last array is the last job of the fill.
                for (i, (_, _, _, data)) in arrays.iter().enumerate().rev() {
                    assert_eq!(owned.get(i).unwrap(), &data[..], "{codec:?} {threads} {i}");
                }
                owned.finish().unwrap();
            }
        }
    }
}

#[test]
fn several_threads_wait_for_arrays_at_once() {
    let (root, arrays) = forest(24, |i| 16 + i);
    let file = open(root, &arrays, Codec::None);
    let owned = OwnedArrays::start(file.clone(), &plan(&file, false), true, 2).unwrap();
    std::thread::scope(|s| {
        for t in 0..3 {
            let (owned, arrays) = (&owned, &arrays);
            s.spawn(move || {
                for i in (0..arrays.len()).filter(|i| i % 3 == t).rev() {
                    assert_eq!(owned.get(i).unwrap(), &arrays[i].3[..]);
                }
            });
        }
    });
    assert!((0..arrays.len()).all(|i| owned.is_done(i)));
    owned.finish().unwrap();
}

/// A file of `n` uncompressed arrays (each a blob of its own) with one byte of array `bad`
/// flipped: the manifest is intact, the digest of `bad` no longer matches.
fn with_bad_blob(n: usize, bad: usize) -> (Arc<SkvFile>, Arrays) {
    with_bad_blob_of(n, bad, |_| 8)
}

/// [`with_bad_blob`] with array `i` of `len(i)` values.
fn with_bad_blob_of(n: usize, bad: usize, len: impl Fn(usize) -> usize) -> (Arc<SkvFile>, Arrays) {
    let (root, arrays) = forest(n, len);
    let mut bytes = write(root, &arrays, Codec::None);
    let offset = SkvFile::from_bytes(bytes.clone())
        .unwrap()
        .blob_offset(bad)
        .unwrap();
    bytes[offset as usize + 3] ^= 0x10;
    (Arc::new(SkvFile::from_bytes(bytes).unwrap()), arrays)
}

#[test]
fn a_digest_mismatch_in_a_worker_reaches_the_waiter_and_finish() {
    let (file, arrays) = with_bad_blob(12, 5);
    let owned = OwnedArrays::start(file.clone(), &plan(&file, false), true, 2).unwrap();
    // Arrays before the bad one may be done; the bad one, and whatever was not filled before
    // the failure stopped the fill, report it.
    let mut errors = Vec::new();
    for (i, (_, _, _, data)) in arrays.iter().enumerate() {
        match owned.get(i) {
            Ok(bytes) => assert_eq!(bytes, &data[..], "{i}"),
            Err(e) => errors.push((i, e)),
        }
    }
    let (first, error) = errors.first().unwrap();
    assert!(*first <= 5, "array 5 cannot be read, {first} failed first");
    assert!(
        matches!(error, FormatError::DigestMismatch { index: 5 }),
        "{error}"
    );
    // Once handed out, the error is recalled by the array that caused it, as the digest
    // mismatch it is (whichever thread asked first, a damaged array is reported as such).
    for (_, e) in &errors[1..] {
        assert!(matches!(e, FormatError::DigestMismatch { index: 5 }), "{e}");
    }
    assert!(matches!(
        owned.finish(),
        Err(FormatError::DigestMismatch { index: 5 })
    ));
    assert!(!owned.is_done(5));
}

#[test]
fn finish_reports_the_error_of_a_job_another_thread_is_running() {
    // `finish` on one thread while another runs a job it took in `wait` (here: the last
    // array, damaged and longer than the rest, so that it ends last): `finish` returns once
    // that job has ended, with its error, never `Ok` while it still runs. Whichever of the
    // three takers (the worker, the waiter, `finish` itself) takes the damaged array, the
    // outcome is the same; before `finish` waited for every running job, it returned `Ok`
    // whenever the waiter had taken it.
    let (n, long, rounds) = if cfg!(miri) {
        (4, 64, 3)
    } else {
        (16, 1 << 17, 200)
    };
    let (file, _) = with_bad_blob_of(n, n - 1, |i| if i == n - 1 { long } else { 8 });
    for round in 0..rounds {
        let owned = OwnedArrays::start(file.clone(), &plan(&file, false), true, 1).unwrap();
        let (waited, finished) = std::thread::scope(|s| {
            let waiter = s.spawn(|| owned.get(n - 1).map(|_| ()));
            let finished = owned.finish();
            (waiter.join().unwrap(), finished)
        });
        let last = n - 1;
        assert!(
            matches!(finished, Err(FormatError::DigestMismatch { index }) if index == last),
            "round {round}: finish gave {finished:?}"
        );
        assert!(
            matches!(waited, Err(FormatError::DigestMismatch { index }) if index == last),
            "round {round}: the waiter got {waited:?}"
        );
    }
}

#[test]
fn a_failing_fill_without_threads_fails_to_start() {
    let (file, _) = with_bad_blob(4, 2);
    let error = OwnedArrays::start(file.clone(), &plan(&file, false), true, 0)
        .err()
        .unwrap();
    assert!(matches!(error, FormatError::DigestMismatch { index: 2 }));
    // Unverified, the damaged bytes are read as they are.
    assert!(OwnedArrays::start(file.clone(), &plan(&file, false), false, 0).is_ok());
}

#[test]
fn an_error_reaches_every_thread_waiting_for_the_array() {
    let (file, _) = with_bad_blob(16, 1);
    let owned = OwnedArrays::start(file.clone(), &plan(&file, false), true, 2).unwrap();
    let errors: Vec<FormatError> = std::thread::scope(|s| {
        let waiters: Vec<_> = (0..3)
            .map(|_| s.spawn(|| owned.get(1).map(<[u8]>::to_vec).unwrap_err()))
            .collect();
        waiters.into_iter().map(|w| w.join().unwrap()).collect()
    });
    // The error itself goes to one of them, a reminder of the same kind to the others.
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, FormatError::DigestMismatch { index: 1 })),
        "{errors:?}"
    );
}

#[test]
fn a_corrupt_compressed_pack_reaches_the_waiter() {
    // Small lz4 arrays of one dtype share a pack: damaging it fails every member.
    let (root, arrays) = forest(6, |_| 64);
    let mut bytes = write(root, &arrays, Codec::Lz4);
    let file = SkvFile::from_bytes(bytes.clone()).unwrap();
    let pack = &file.manifest().packs[0].blob;
    assert_eq!(pack.codec, Codec::Lz4);
    let start = (file.header().data_start() + pack.offset) as usize;
    for b in &mut bytes[start..start + pack.length as usize] {
        *b = !*b;
    }
    let file = Arc::new(SkvFile::from_bytes(bytes).unwrap());
    for threads in [0, 2] {
        let result = OwnedArrays::start(file.clone(), &plan(&file, false), true, threads)
            .and_then(|owned| owned.get(5).map(|_| ()));
        let e = result.unwrap_err();
        assert!(
            matches!(
                e,
                FormatError::Codec { .. }
                    | FormatError::DigestMismatch { .. }
                    | FormatError::ArrayLayout { .. }
            ),
            "{e}"
        );
    }
}

#[test]
fn views_are_verified_in_place_only_when_the_plan_asks() {
    let (file, arrays) = with_bad_blob(3, 1);
    let checked = plan(&file, true);
    assert_eq!(checked.tasks()[1], Task::Verify { index: 1 });
    let owned = OwnedArrays::start(file.clone(), &checked, true, 0);
    assert!(matches!(
        owned.err().unwrap(),
        FormatError::DigestMismatch { index: 1 }
    ));
    let unchecked = LoadPlan::new(
        &file,
        PlanOptions {
            view_in_place: true,
            verify_views: false,
        },
    )
    .unwrap();
    assert!(unchecked.tasks().is_empty());
    let owned = OwnedArrays::start(file.clone(), &unchecked, true, 0).unwrap();
    assert_ne!(owned.get(1).unwrap(), &arrays[1].3[..]);
    assert_eq!(owned.get(2).unwrap(), &arrays[2].3[..]);
}

#[test]
fn zero_length_arrays_need_no_job_and_accept_an_empty_destination() {
    let (root, arrays) = forest(5, |i| if i % 2 == 0 { 0 } else { 3 });
    let file = open(root, &arrays, Codec::None);
    let plan = plan(&file, false);
    for i in [0, 2, 4] {
        assert_eq!(plan.places()[i], Place::Own { len: 0 });
        assert!(plan.tasks().iter().all(|t| t.index() != i));
    }
    let owned = OwnedArrays::start(file.clone(), &plan, true, 2).unwrap();
    assert!(owned.is_done(0));
    assert_eq!(owned.get(0).unwrap(), &[] as &[u8]);
    assert_eq!(owned.get(3).unwrap(), &arrays[3].3[..]);
    // A zero-length destination needs no memory at all; its digest is still checked.
    // SAFETY: a zero length asks for no memory.
    let dst = unsafe { Destination::new(std::ptr::null_mut(), 0) };
    assert!(dst.is_empty());
    let fill = Fill::start(file.clone(), true, vec![Job::Fill { index: 2, dst }], 0).unwrap();
    assert!(fill.is_done(2));
}

#[test]
fn a_destination_of_the_wrong_size_is_an_error() {
    let (root, arrays) = forest(2, |_| 4);
    let file = open(root, &arrays, Codec::None);
    let mut buf = vec![0u8; 31];
    // SAFETY: `buf` is 31 writable bytes that are not touched until `fill` is dropped.
    let dst = unsafe { Destination::new(buf.as_mut_ptr(), buf.len()) };
    let error = Fill::start(file, true, vec![Job::Fill { index: 1, dst }], 0)
        .err()
        .unwrap();
    assert!(matches!(error, FormatError::ArrayLayout { index: 1, .. }));
    assert_eq!(buf, [0; 31]);
}

#[test]
fn arrays_without_a_job_are_done_at_once() {
    let (root, arrays) = forest(3, |_| 2);
    let file = open(root, &arrays, Codec::None);
    let fill = Fill::start(file, true, vec![Job::Verify { index: 0 }], 2).unwrap();
    for i in [1, 2, 99] {
        assert!(fill.is_done(i));
        fill.wait(i).unwrap();
    }
    fill.wait(0).unwrap();
    fill.finish().unwrap();
}

#[test]
fn dropping_a_fill_midway_stops_its_workers_before_returning() {
    let (root, arrays) = forest(40, |_| 64);
    let file = open(root, &arrays, Codec::None);
    let mut buffers: Vec<Vec<u8>> = vec![vec![0u8; 64 * 8]; arrays.len()];
    let jobs = buffers
        .iter_mut()
        .enumerate()
        .map(|(index, b)| Job::Fill {
            index,
            // SAFETY: each buffer is its own allocation of the array's size, not touched
            // again until `fill` is dropped below.
            dst: unsafe { Destination::new(b.as_mut_ptr(), b.len()) },
        })
        .collect();
    let fill = Fill::start(file, true, jobs, 3).unwrap();
    fill.wait(0).unwrap();
    drop(fill);
    // The buffers are ours again: no worker may write them any more (Miri checks the race;
    // natively, a late write would show as a changed byte).
    for b in &mut buffers {
        b.fill(0xaa);
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(buffers.iter().all(|b| b.iter().all(|x| *x == 0xaa)));
}

#[test]
fn dropping_owned_arrays_midway_is_safe() {
    let (root, arrays) = forest(40, |_| 64);
    for codec in codecs() {
        let file = open(root.clone(), &arrays, codec);
        let owned = OwnedArrays::start(file.clone(), &plan(&file, false), true, 3).unwrap();
        drop(owned);
    }
}

// Not under Miri: far too slow there, and proptest's failure files need the file system.
#[cfg(not(miri))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            ..ProptestConfig::default()
        })]

        /// Any sizes, codec, thread count and order of requests give the arrays `read_array`
        /// gives.
        #[test]
        fn any_request_order_gives_the_written_arrays(
            lens in prop::collection::vec(0usize..300, 1..24),
            codec in prop::sample::select(CODECS.to_vec()),
            threads in 0usize..4,
            view_in_place in any::<bool>(),
            requests in prop::collection::vec(any::<prop::sample::Index>(), 0..32),
        ) {
            let (root, arrays) = forest(lens.len(), |i| lens[i]);
            let file = open(root, &arrays, codec);
            let plan = plan(&file, view_in_place);
            let owned = OwnedArrays::start(file.clone(), &plan, true, threads).unwrap();
            for i in requests.iter().map(|r| r.index(arrays.len())) {
                prop_assert_eq!(owned.get(i).unwrap(), &arrays[i].3[..]);
            }
            owned.finish().unwrap();
            for (i, (_, _, _, data)) in arrays.iter().enumerate() {
                prop_assert_eq!(owned.get(i).unwrap(), &data[..]);
            }
        }
    }
}
