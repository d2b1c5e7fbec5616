//! Hostile inputs for the reader: truncations, bit flips, and manifests that lie.
//!
//! Every case asserts the specific `FormatError` variant, never only `is_err`: a reader that
//! reports a tampered blob as "truncated" misleads its user as surely as one that panics.

// Helpers of a test binary are test code too: clippy.toml's allow-*-in-tests only covers
// `#[test]` functions themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::cell::Cell;
use std::path::Path;

use common::{
    container, container_with, open, open_err, rebuild, sample_file, split, Layout, CODECS,
};
use serde_json::{json, Map, Value};
use skvault_format::manifest::{Header, FORMAT_MAJOR, FORMAT_MINOR, MAX_MANIFEST_LEN};
use skvault_format::write::digest;
use skvault_format::{Codec, FormatError, SkvFile, TrustSet};

// ------------------------------------------------------------------ allocation probe

/// Records, per thread, the largest single allocation and the total bytes requested, so a test
/// can show that a hostile size was refused before a buffer of that size was asked for, and that
/// decoding does work in proportion to the input.
struct ProbeAlloc;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for ProbeAlloc {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees for this method are passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: AllocLayout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees for this method are passed on unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: AllocLayout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: the caller's guarantees for this method are passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        // SAFETY: the caller's guarantees for this method are passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: ProbeAlloc = ProbeAlloc;

/// Runs `f` and returns its result with the largest single allocation this thread made meanwhile.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    let out = f();
    (out, PEAK.with(Cell::get))
}

/// Runs `f` and returns its result with the total bytes this thread allocated meanwhile.
fn total_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    TOTAL.with(|t| t.set(0));
    let out = f();
    (out, TOTAL.with(Cell::get))
}

// ------------------------------------------------------------------ helpers

macro_rules! assert_variant {
    ($err:expr, $($pattern:tt)+) => {{
        let err: FormatError = $err;
        assert!(
            matches!(err, $($pattern)+),
            "expected {}, got {err:?}",
            stringify!($($pattern)+)
        );
    }};
}

/// The error of `read_array(index, true)` on a file that opens.
fn read_err(f: &SkvFile, index: usize) -> FormatError {
    match f.read_array(index, true) {
        Ok(_) => panic!("array {index} read back without error"),
        Err(e) => e,
    }
}

fn verify_err(f: &SkvFile) -> FormatError {
    match f.verify() {
        Ok(()) => panic!("verify passed"),
        Err(e) => e,
    }
}

/// Opens `sample_file(codec)` after `edit` has rewritten its manifest.
fn hostile(codec: Codec, edit: impl FnOnce(&mut Value)) -> Result<SkvFile, FormatError> {
    let (mut manifest, data) = split(&sample_file(codec));
    edit(&mut manifest);
    open(rebuild(&manifest, &data))
}

fn entry(manifest: &mut Value, index: usize) -> &mut Map<String, Value> {
    manifest["arrays"][index].as_object_mut().unwrap()
}

/// Index of the first array stored with `codec`, and split into columns (the fields or the
/// columns filter) if `fields`.
fn compressed_index(file: &[u8], codec: Codec, fields: bool) -> usize {
    let f = open(file.to_vec()).unwrap();
    f.manifest()
        .arrays
        .iter()
        .position(|e| {
            e.stored().is_some_and(|b| {
                use skvault_format::codec::Filter;
                b.codec == codec && matches!(b.filter, Filter::Fields | Filter::Columns) == fields
            })
        })
        .unwrap_or_else(|| panic!("no {codec:?} array (fields filter: {fields}) in the sample"))
}

/// Replaces the first `{"array": index}` node of the tree with `with`.
fn replace_array_ref(v: &mut Value, index: u64, with: &Value) -> bool {
    if v.get("array").and_then(Value::as_u64) == Some(index)
        && v.as_object().map(Map::len) == Some(1)
    {
        *v = with.clone();
        return true;
    }
    match v {
        Value::Array(items) => items.iter_mut().any(|x| replace_array_ref(x, index, with)),
        Value::Object(m) => m.values_mut().any(|x| replace_array_ref(x, index, with)),
        _ => false,
    }
}

/// Adds `node` at the end of the root object's `blocks` list (decoded after every array ref).
fn append_node(manifest: &mut Value, node: Value) {
    manifest["root"]["attrs"]["blocks"]["list"]
        .as_array_mut()
        .unwrap()
        .push(node);
}

fn read_all_and_verify(f: &SkvFile) {
    for i in 0..f.manifest().arrays.len() {
        f.read_array(i, true).unwrap();
    }
    f.verify().unwrap();
}

// ------------------------------------------------------------------ sanity of the helpers

#[test]
fn rebuilding_an_untouched_manifest_gives_the_writers_bytes() {
    for codec in CODECS {
        let file = sample_file(codec);
        let (manifest, data) = split(&file);
        if codec == Codec::Zstd {
            // The writer compresses the manifest at the arrays' level (3, the default).
            let text = serde_json::to_vec(&manifest).unwrap();
            let packed = zstd::bulk::compress(&text, 3).unwrap();
            let again = with_compressed_manifest(&file, &packed, text.len() as u64);
            assert_eq!(again, file, "{codec:?}");
            assert_eq!(
                open(rebuild(&manifest, &data)).unwrap().manifest(),
                open(file.clone()).unwrap().manifest()
            );
        } else {
            assert_eq!(rebuild(&manifest, &data), file, "{codec:?}");
        }
        read_all_and_verify(&open(file).unwrap());
    }
}

// ------------------------------------------------------------------ truncation

/// The part of the file a read of the first `len` bytes stops in.
fn truncated_section(layout: &Layout, len: u64) -> &'static str {
    if len < 64 {
        "the header"
    } else if len < layout.manifest_end {
        "the manifest"
    } else if layout.blobs.is_empty() {
        "the data section"
    } else {
        "an array blob"
    }
}

fn assert_truncated(result: Result<SkvFile, FormatError>, layout: &Layout, len: u64) {
    match result {
        Err(FormatError::Truncated {
            what,
            needed,
            available,
        }) => {
            assert_eq!(what, truncated_section(layout, len), "cut at {len}");
            assert_eq!(available, len, "cut at {len}");
            assert!(needed > len, "cut at {len}: needed {needed}");
        }
        Err(e) => panic!("cut at {len}: expected Truncated, got {e:?}"),
        Ok(_) => panic!("cut at {len}: a truncated file was accepted"),
    }
}

#[test]
fn every_proper_prefix_is_truncated() {
    let files = CODECS
        .iter()
        .map(|c| sample_file(*c))
        .chain([common::all_kinds_file()]);
    for file in files {
        let layout = Layout::of(&file);
        for len in 0..file.len() {
            assert_truncated(open(file[..len].to_vec()), &layout, len as u64);
        }
    }
}

/// Header bytes, the ends of the manifest and padding, and the start, middle and end of each blob.
fn section_boundaries(layout: &Layout) -> Vec<u64> {
    let mut cuts: Vec<u64> = (0..=64).collect();
    let m = layout.manifest_end;
    cuts.extend([65, 64 + layout.manifest_len / 2, m - 1, m, m + 1]);
    cuts.extend(
        layout
            .padding()
            .iter()
            .flat_map(|r| [r.start, (r.start + r.end) / 2, r.end - 1]),
    );
    for &(start, len) in &layout.blobs {
        cuts.extend([
            start,
            start + 1,
            start + len / 2,
            (start + len).saturating_sub(1),
            start + len,
        ]);
    }
    cuts.extend((0..layout.file_len).step_by(97));
    cuts.retain(|c| *c < layout.file_len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

#[test]
fn truncated_files_are_refused_by_every_entry_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.skv");
    for codec in CODECS {
        let file = sample_file(codec);
        let layout = Layout::of(&file);
        for len in section_boundaries(&layout) {
            let prefix = &file[..len as usize];
            std::fs::write(&path, prefix).unwrap();
            assert_truncated(open(prefix.to_vec()), &layout, len);
            assert_truncated(SkvFile::open(&path), &layout, len);
            assert_truncated(SkvFile::open_mmap(&path), &layout, len);
        }
    }
}

#[test]
fn empty_file_is_truncated_not_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.skv");
    std::fs::write(&path, b"").unwrap();
    for result in [
        open(Vec::new()),
        SkvFile::open(&path),
        SkvFile::open_mmap(&path),
    ] {
        match result {
            Err(e) => assert_variant!(e, FormatError::Truncated { available: 0, .. }),
            Ok(_) => panic!("an empty file was accepted"),
        }
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let path = Path::new("/nonexistent/skvault/model.skv");
    for result in [SkvFile::open(path), SkvFile::open_mmap(path)] {
        match result {
            Err(e) => assert_variant!(e, FormatError::Io { .. }),
            Ok(_) => panic!("opened a file that does not exist"),
        }
    }
}

// ------------------------------------------------------------------ bit flips

fn flip(file: &[u8], byte: u64, bit: u32) -> Vec<u8> {
    let mut out = file.to_vec();
    out[byte as usize] ^= 1 << bit;
    out
}

#[test]
fn header_bit_flips_are_refused_except_minor_version_and_optional_flags() {
    for codec in CODECS {
        let file = sample_file(codec);
        let file_len = file.len() as u64;
        let compressed = open(file.clone()).unwrap().header().manifest_compressed();
        for byte in 0..64u64 {
            for bit in 0..8 {
                let bad = flip(&file, byte, bit);
                let result = open(bad.clone());
                let at = format!("{codec:?} byte {byte} bit {bit}");
                match byte {
                    0..8 => assert_variant!(result.expect_err(&at), FormatError::BadMagic { .. }),
                    8..10 => assert_variant!(
                        result.expect_err(&at),
                        FormatError::UnsupportedVersion { .. }
                    ),
                    // Minor versions are compatible by definition and the high 16 flag bits are
                    // optional features: neither is covered by a digest, and both must be accepted.
                    10..12 | 14..16 => read_all_and_verify(&result.expect(&at)),
                    // Bit 0 is MANIFEST_ZSTD (format 1.1): set on a plain manifest, the header
                    // lacks a decompressed length; cleared on a compressed one, bytes 56..64
                    // are no longer allowed to hold one.
                    12 if bit == 0 && compressed => {
                        assert_variant!(result.expect_err(&at), FormatError::UnexpectedBytes { .. })
                    }
                    12 if bit == 0 => {
                        assert_variant!(result.expect_err(&at), FormatError::ManifestCodec { .. })
                    }
                    // Bit 1 is PACKS (format 1.2): set on a file without packs, the manifest
                    // lacks the `packs` the flag promises.
                    12 if bit == 1 => {
                        assert_variant!(result.expect_err(&at), FormatError::Manifest { ref path, .. } if path == "/packs")
                    }
                    // Bit 2 is SIGNATURE (format 1.3): set on a file without a trailer, the
                    // footer the flag promises is missing.
                    12 if bit == 2 => {
                        assert_variant!(
                            result.expect_err(&at),
                            FormatError::SignatureTrailer { .. }
                        )
                    }
                    // Bit 3 is COLUMNS (format 1.4): set without a blob that has the columns
                    // filter, or cleared on a file that has one.
                    12 if bit == 3 => {
                        assert_variant!(result.expect_err(&at), FormatError::Manifest { ref path, .. } if path == "/arrays")
                    }
                    12..14 => {
                        assert_variant!(result.expect_err(&at), FormatError::UnknownFlags { .. })
                    }
                    16..24 => {
                        let len = u64::from_le_bytes(bad[16..24].try_into().unwrap());
                        let e = result.expect_err(&at);
                        if len > MAX_MANIFEST_LEN {
                            assert_variant!(e, FormatError::ManifestTooLarge { .. });
                        } else if 64 + len > file_len {
                            assert_variant!(
                                e,
                                FormatError::Truncated {
                                    what: "the manifest",
                                    ..
                                }
                            );
                        } else {
                            assert_variant!(e, FormatError::ManifestDigestMismatch);
                        }
                    }
                    24..56 => {
                        assert_variant!(result.expect_err(&at), FormatError::ManifestDigestMismatch)
                    }
                    // The decompressed length of a compressed manifest: too large, or not what
                    // the frames decode to.
                    _ if compressed => assert_variant!(
                        result.expect_err(&at),
                        FormatError::ManifestTooLarge { .. } | FormatError::ManifestCodec { .. }
                    ),
                    _ => {
                        assert_variant!(result.expect_err(&at), FormatError::UnexpectedBytes { .. })
                    }
                }
            }
        }
    }
}

#[test]
fn manifest_bit_flips_fail_the_manifest_digest() {
    for codec in CODECS {
        let file = sample_file(codec);
        let layout = Layout::of(&file);
        for byte in 64..layout.manifest_end {
            for bit in 0..8 {
                assert_variant!(
                    open_err(flip(&file, byte, bit)),
                    FormatError::ManifestDigestMismatch
                );
            }
        }
    }
}

#[test]
fn padding_bit_flips_are_unexpected_bytes() {
    for codec in CODECS {
        let file = sample_file(codec);
        let layout = Layout::of(&file);
        let padding = layout.padding();
        assert!(
            padding.len() >= 2,
            "{codec:?}: the sample should have padding to flip"
        );
        for range in padding {
            for byte in range.clone() {
                // Every bit of the first and last byte of each run, one bit of the others.
                let bits = if byte == range.start || byte == range.end - 1 {
                    0..8
                } else {
                    let b = (byte % 8) as u32;
                    b..b + 1
                };
                for bit in bits {
                    assert_variant!(
                        open_err(flip(&file, byte, bit)),
                        FormatError::UnexpectedBytes { .. }
                    );
                }
            }
        }
    }
}

/// Each blob byte flipped at one bit (all eight bits in the first 16 bytes, where codec frame
/// headers live). The file still opens; reading the array with verification and `verify()`
/// must fail, and the other arrays are unaffected.
///
/// The one exception is a flip that does not change what the blob decodes to: zstd's frame
/// header has an "unused" bit decoders must not interpret, and in these periodic arrays an lz4
/// or zstd match offset can be bent onto another identical copy of the same bytes. The digest
/// covers the raw bytes, so such a flip is harmless; it must decode to exactly the original
/// array, and it stays rare (about 1.5% of these flips, none without a codec).
#[test]
fn blob_bit_flips_fail_the_digest_or_the_codec() {
    let originals: Vec<Vec<u8>> = common::sample_arrays().into_iter().map(|a| a.3).collect();
    let (mut tried, mut ignored) = (0, 0);
    for codec in CODECS {
        let file = sample_file(codec);
        let layout = Layout::of(&file);
        let n = layout.blobs.len();
        for (index, &(start, len)) in layout.blobs.iter().enumerate() {
            for offset in 0..len {
                let bits = if offset < 16 {
                    0..8
                } else {
                    let b = (offset % 8) as u32;
                    b..b + 1
                };
                for bit in bits {
                    tried += 1;
                    let f = open(flip(&file, start + offset, bit))
                        .expect("a blob flip is found when the array is read, not at open");
                    let at = format!("{codec:?} array {index} offset {offset} bit {bit}");
                    let is_this_array = |e: &FormatError| {
                        matches!(e, FormatError::DigestMismatch { index: i }
                            | FormatError::Codec { index: i, .. } if *i == index)
                    };
                    match f.read_array(index, true) {
                        Ok(bytes) => {
                            assert_ne!(codec, Codec::None, "{at}: a raw flip went unnoticed");
                            assert_eq!(bytes, originals[index], "{at}: changed bytes passed");
                            f.verify().expect(&at);
                            ignored += 1;
                            continue;
                        }
                        Err(e) => assert!(is_this_array(&e), "{at}: {e:?}"),
                    }
                    let e = verify_err(&f);
                    assert!(is_this_array(&e), "{at}: {e:?}");
                    // Without verification only a codec failure can show; never a panic.
                    if let Err(e) = f.read_array(index, false) {
                        assert!(matches!(e, FormatError::Codec { .. }), "{at}: {e:?}");
                    }
                    for other in (0..n).filter(|j| *j != index) {
                        f.read_array(other, true).unwrap();
                    }
                }
            }
        }
    }
    assert!(tried > 1000, "only {tried} flips");
    assert!(
        ignored * 20 < tried,
        "{ignored} of {tried} flips decoded unchanged"
    );
}

#[test]
fn blob_bit_flips_are_found_through_positioned_reads_and_mmap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flipped.skv");
    for codec in CODECS {
        let file = sample_file(codec);
        let layout = Layout::of(&file);
        for (index, &(start, len)) in layout.blobs.iter().enumerate().filter(|(_, b)| b.1 > 0) {
            std::fs::write(&path, flip(&file, start + len / 2, 3)).unwrap();
            for f in [
                SkvFile::open(&path).unwrap(),
                SkvFile::open_mmap(&path).unwrap(),
            ] {
                assert_variant!(
                    read_err(&f, index),
                    FormatError::DigestMismatch { .. } | FormatError::Codec { .. }
                );
                assert_variant!(
                    verify_err(&f),
                    FormatError::DigestMismatch { .. } | FormatError::Codec { .. }
                );
            }
        }
    }
}

// ------------------------------------------------------------------ header lies

fn sample_header(file: &[u8]) -> Header {
    open(file.to_vec()).unwrap().header().clone()
}

fn with_header(file: &[u8], header: &Header) -> Vec<u8> {
    let mut out = file.to_vec();
    out[..64].copy_from_slice(&header.to_bytes());
    out
}

#[test]
fn bad_magic_is_refused() {
    let file = sample_file(Codec::None);
    let lookalikes: [&[u8]; 6] = [
        b"\x80\x04\x95\x00\x00\x00\x00\x00",    // pickle protocol 4
        b"PK\x03\x04\x14\x00\x00\x00",          // zip (.npz, skops)
        b"\x93NUMPY\x01\x00",                   // .npy
        b"skvault\0",                           // wrong case
        b"SKVAULT\x01",                         // wrong terminator
        &(file.len() as u64 - 8).to_le_bytes(), // safetensors-style length prefix
    ];
    for magic in lookalikes {
        let mut bad = file.clone();
        bad[..8].copy_from_slice(magic);
        assert_variant!(open_err(bad), FormatError::BadMagic { .. });
    }
    assert_variant!(open_err(b"GIF89a".to_vec()), FormatError::BadMagic { .. });
}

#[test]
fn unknown_major_version_is_refused() {
    let file = sample_file(Codec::None);
    for major in [0, FORMAT_MAJOR + 1, u16::MAX] {
        let mut h = sample_header(&file);
        h.major = major;
        assert_variant!(
            open_err(with_header(&file, &h)),
            FormatError::UnsupportedVersion { major: m, supported: FORMAT_MAJOR, .. } if m == major
        );
    }
}

#[test]
fn newer_minor_version_is_accepted() {
    let file = sample_file(Codec::Zstd);
    let mut h = sample_header(&file);
    h.minor = FORMAT_MINOR + 7;
    read_all_and_verify(&open(with_header(&file, &h)).unwrap());
}

#[test]
fn unknown_required_flags_are_refused() {
    let file = sample_file(Codec::None);
    for flags in [0x10, 0x8000, 0xffff_ffff] {
        let mut h = sample_header(&file);
        h.flags = flags;
        assert_variant!(
            open_err(with_header(&file, &h)),
            FormatError::UnknownFlags { flags: f } if f == flags
        );
    }
}

#[test]
fn unknown_optional_flags_are_ignored() {
    let file = sample_file(Codec::Lz4);
    let mut h = sample_header(&file);
    h.flags = 0xffff_0000;
    read_all_and_verify(&open(with_header(&file, &h)).unwrap());
}

#[test]
fn non_zero_reserved_header_bytes_are_refused() {
    let mut file = sample_file(Codec::None);
    file[63] = 1;
    assert_variant!(open_err(file), FormatError::UnexpectedBytes { .. });
}

#[test]
fn manifest_len_of_u64_max_is_refused() {
    let file = sample_file(Codec::None);
    for len in [u64::MAX, MAX_MANIFEST_LEN + 1] {
        let mut h = sample_header(&file);
        h.manifest_len = len;
        let (result, peak) = peak_allocation(|| open(with_header(&file, &h)));
        assert_variant!(
            result.expect_err("accepted"),
            FormatError::ManifestTooLarge { declared: d, max: MAX_MANIFEST_LEN } if d == len
        );
        assert!(
            peak < 1 << 20,
            "allocated {peak} bytes for a refused manifest"
        );
    }
}

#[test]
fn manifest_len_past_the_end_of_the_file_is_truncated() {
    let file = sample_file(Codec::None);
    let mut h = sample_header(&file);
    h.manifest_len = MAX_MANIFEST_LEN;
    let (result, peak) = peak_allocation(|| open(with_header(&file, &h)));
    assert_variant!(
        result.expect_err("accepted"),
        FormatError::Truncated {
            what: "the manifest",
            ..
        }
    );
    assert!(
        peak < 1 << 20,
        "allocated {peak} bytes before checking the file size"
    );
}

#[test]
fn manifest_len_shorter_than_the_json_is_a_json_error() {
    let file = sample_file(Codec::None);
    let (manifest, data) = split(&file);
    let text = serde_json::to_vec(&manifest).unwrap();
    let cut = &text[..text.len() - 10];
    assert_variant!(
        open_err(container(cut, &data)),
        FormatError::ManifestJson { .. }
    );
}

#[test]
fn manifest_with_trailing_nul_bytes_is_a_json_error() {
    let (manifest, data) = split(&sample_file(Codec::None));
    let mut text = serde_json::to_vec(&manifest).unwrap();
    text.extend_from_slice(&[0, 0, 0]);
    assert_variant!(
        open_err(container(&text, &data)),
        FormatError::ManifestJson { .. }
    );
}

#[test]
fn non_utf8_manifest_is_a_json_error() {
    let (manifest, data) = split(&sample_file(Codec::None));
    let text = serde_json::to_string(&manifest).unwrap();
    let bad = text.replacen("é", "\u{0}", 1).into_bytes();
    let mut bad = bad;
    let at = bad.iter().position(|b| *b == 0).unwrap();
    bad[at] = 0xff;
    assert_variant!(
        open_err(container(&bad, &data)),
        FormatError::ManifestJson { .. }
    );
}

#[test]
fn byte_order_mark_before_the_manifest_is_a_json_error() {
    let (manifest, data) = split(&sample_file(Codec::None));
    let mut text = b"\xef\xbb\xbf".to_vec();
    text.extend(serde_json::to_vec(&manifest).unwrap());
    assert_variant!(
        open_err(container(&text, &data)),
        FormatError::ManifestJson { .. }
    );
}

#[test]
fn escaped_lone_surrogate_is_a_json_error() {
    let text = manifest_with_root(r#""\ud800""#);
    assert_variant!(
        open_err(container(&text, &[])),
        FormatError::ManifestJson { .. }
    );
}

#[test]
fn number_outside_binary64_range_is_a_json_error() {
    let text = manifest_with_root(r#"{"float": 1e400}"#);
    assert_variant!(
        open_err(container(&text, &[])),
        FormatError::ManifestJson { .. }
    );
}

// ------------------------------------------------------------------ layout lies

#[test]
fn trailing_bytes_after_the_last_blob_are_refused() {
    for codec in CODECS {
        for extra in [&[0u8][..], &[0; 64], b"#!/bin/sh\n"] {
            let mut file = sample_file(codec);
            file.extend_from_slice(extra);
            assert_variant!(open_err(file), FormatError::UnexpectedBytes { .. });
        }
    }
}

#[test]
fn trailing_bytes_after_a_file_without_arrays_are_refused() {
    let mut file = common::all_kinds_file();
    file.push(0);
    assert_variant!(open_err(file), FormatError::UnexpectedBytes { .. });
}

#[test]
fn non_zero_padding_after_the_manifest_is_refused() {
    let file = sample_file(Codec::Zstd);
    let layout = Layout::of(&file);
    assert!(
        layout.manifest_end < layout.data_start,
        "the sample manifest should need padding"
    );
    let mut bad = file.clone();
    bad[layout.data_start as usize - 1] = 0x20;
    assert_variant!(open_err(bad), FormatError::UnexpectedBytes { .. });
}

#[test]
fn non_zero_padding_between_blobs_is_refused() {
    let file = sample_file(Codec::Lz4);
    let layout = Layout::of(&file);
    let (start, len) = layout.blobs[0];
    let end = start + len;
    assert!(
        end % 64 != 0,
        "the first blob should be followed by padding"
    );
    let mut bad = file.clone();
    bad[end as usize] = 1;
    assert_variant!(open_err(bad), FormatError::UnexpectedBytes { .. });
}

#[test]
fn offset_beyond_the_file_is_refused() {
    for offset in [1 << 40, u64::MAX] {
        let e = hostile(Codec::None, |m| {
            entry(m, 4).insert("offset".into(), json!(offset));
        });
        assert_variant!(
            e.expect_err("accepted"),
            FormatError::ArrayLayout { index: 4, .. }
        );
    }
}

#[test]
fn blob_extending_past_the_end_of_the_file_is_truncated() {
    let e = hostile(Codec::None, |m| {
        let e = entry(m, 4);
        e.insert("shape".into(), json!([5000]));
        e.insert("raw_length".into(), json!(5000));
        e.insert("length".into(), json!(5000));
    });
    assert_variant!(
        e.expect_err("accepted"),
        FormatError::Truncated {
            what: "an array blob",
            ..
        }
    );
}

#[test]
fn offset_plus_length_overflowing_u64_is_refused() {
    let e = hostile(Codec::None, |m| {
        let e = entry(m, 4);
        e.insert("shape".into(), json!([u64::MAX]));
        e.insert("raw_length".into(), json!(u64::MAX));
        e.insert("length".into(), json!(u64::MAX));
    });
    assert_variant!(
        e.expect_err("accepted"),
        FormatError::ArrayLayout { index: 4, .. }
    );
}

#[test]
fn length_differing_from_raw_length_without_codec_is_refused() {
    for length in [100, 511, 513, 1 << 20] {
        let e = hostile(Codec::None, |m| {
            entry(m, 0).insert("length".into(), json!(length));
        });
        assert_variant!(
            e.expect_err("accepted"),
            FormatError::ArrayLayout { index: 0, .. }
        );
    }
}

#[test]
fn raw_length_differing_from_the_shape_is_refused() {
    for raw_length in [0, 511, 520] {
        let e = hostile(Codec::None, |m| {
            entry(m, 0).insert("raw_length".into(), json!(raw_length));
        });
        assert_variant!(
            e.expect_err("accepted"),
            FormatError::ArrayLayout { index: 0, .. }
        );
    }
}

#[test]
fn shape_whose_product_overflows_u64_is_refused() {
    let shapes = [
        json!([1u64 << 32, 1u64 << 32, 2]),
        json!([u64::MAX, 2]),
        json!([1u64 << 61]),
    ];
    for shape in shapes {
        // Array 0 is `<f8`: the last shape overflows only once multiplied by the itemsize.
        let e = hostile(Codec::None, |m| {
            entry(m, 0).insert("shape".into(), shape.clone());
        });
        assert_variant!(
            e.expect_err("accepted"),
            FormatError::ArrayLayout { index: 0, .. }
        );
    }
}

#[test]
fn shape_with_more_than_64_dimensions_is_refused() {
    let e = hostile(Codec::None, |m| {
        entry(m, 3).insert("shape".into(), json!(vec![0; 65]));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn huge_raw_length_behind_a_tiny_compressed_blob_is_refused_before_allocating() {
    // zstd: 8 TiB claimed from a blob of a few dozen bytes; lz4: 8 MiB, beyond its 255:1 bound.
    for (codec, count) in [(Codec::Zstd, 1u64 << 40), (Codec::Lz4, 1u64 << 20)] {
        let file = sample_file(codec);
        let index = compressed_index(&file, codec, false);
        let (mut manifest, data) = split(&file);
        let e = entry(&mut manifest, index);
        e.insert("shape".into(), json!([count]));
        e.insert("raw_length".into(), json!(count * 8));
        let bytes = rebuild(&manifest, &data);
        let (result, peak) = peak_allocation(|| open(bytes));
        assert_variant!(
            result.expect_err("accepted"),
            FormatError::ArrayLayout { index: i, .. } if i == index
        );
        assert!(
            peak < 1 << 20,
            "{codec:?}: allocated {peak} bytes for a refused array"
        );
    }
}

#[test]
fn raw_length_the_compressed_blob_does_not_produce_is_a_codec_error() {
    for codec in [Codec::Zstd, Codec::Lz4] {
        let file = sample_file(codec);
        let index = compressed_index(&file, codec, false);
        let (mut manifest, data) = split(&file);
        // Array 0 is 8x8 `<f8`; both sizes stay within the codec's maximum ratio.
        for (shape, raw) in [([16, 8], 1024), ([4, 8], 256)] {
            let e = entry(&mut manifest, index);
            e.insert("shape".into(), json!(shape));
            e.insert("raw_length".into(), json!(raw));
            let f = open(rebuild(&manifest, &data)).expect("the ratio allows this size");
            assert_variant!(read_err(&f, index), FormatError::Codec { .. });
            assert_variant!(verify_err(&f), FormatError::Codec { .. });
            let e = f
                .read_array(index, false)
                .expect_err("decoded to the wrong size");
            assert_variant!(e, FormatError::Codec { .. });
        }
    }
}

#[test]
fn wrong_codec_for_the_blob_is_a_codec_error() {
    let file = sample_file(Codec::Zstd);
    let index = compressed_index(&file, Codec::Zstd, false);
    let f = hostile(Codec::Zstd, |m| {
        entry(m, index).insert("codec".into(), json!("lz4"));
    })
    .expect("lz4 allows a higher ratio than zstd for these lengths");
    assert_variant!(
        read_err(&f, index),
        FormatError::Codec { .. } | FormatError::DigestMismatch { .. }
    );
}

#[test]
fn compressed_blob_declared_uncompressed_is_refused() {
    let file = sample_file(Codec::Zstd);
    let index = compressed_index(&file, Codec::Zstd, false);
    let e = hostile(Codec::Zstd, |m| {
        entry(m, index).insert("codec".into(), json!("none"));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::ArrayLayout { .. });
}

#[test]
fn fields_filter_left_out_is_a_digest_mismatch() {
    let (mut m, data) = split(&common::float_records_file());
    assert_eq!(m["arrays"][0]["filter"], "fields");
    entry(&mut m, 0).remove("filter");
    let f = open(rebuild(&m, &data)).unwrap();
    assert_variant!(read_err(&f, 0), FormatError::DigestMismatch { index: 0 });
}

/// The tree-nodes file (its pack has the columns filter) after `edit` of that pack's JSON.
fn hostile_columns(edit: impl FnOnce(&mut Map<String, Value>)) -> FormatError {
    let (mut m, data) = split(&common::tree_nodes_file());
    edit(m["packs"][0].as_object_mut().unwrap());
    open_err(rebuild(&m, &data))
}

#[test]
fn column_transforms_that_break_a_rule_are_refused_naming_it() {
    let pack_error = |e: FormatError, says: &str| match e {
        FormatError::PackLayout { pack: 0, message } if message.contains(says) => {}
        e => panic!("expected PackLayout saying {says:?}, got {e:?}"),
    };
    let set = |cols: Value| {
        move |p: &mut Map<String, Value>| {
            p.insert("columns".into(), cols);
        }
    };
    pack_error(
        hostile_columns(set(json!([{"field": "threshold", "width": 4}]))),
        "not a little-endian integer",
    );
    pack_error(
        hostile_columns(set(json!([{"field": "nope", "delta": true}]))),
        "no such field",
    );
    pack_error(
        hostile_columns(set(
            json!([{"field": "right_child", "delta": true}, {"field": "left_child", "delta": true}]),
        )),
        "increasing field offset order",
    );
    let manifest_error = |e: FormatError, at: &str| match e {
        FormatError::Manifest { path, .. } if path == at => {}
        e => panic!("expected a manifest error at {at}, got {e:?}"),
    };
    manifest_error(
        hostile_columns(|p| {
            p.remove("columns");
        }),
        "/packs/0/columns",
    );
    manifest_error(hostile_columns(set(json!([]))), "/packs/0/columns");
    manifest_error(
        hostile_columns(set(json!([{"field": "left_child", "width": 3}]))),
        "/packs/0/columns/0/width",
    );
    manifest_error(
        hostile_columns(|p| {
            p.insert("filter".into(), json!("fields"));
        }),
        "/packs/0/columns",
    );
}

/// A delta-coded value that no writer produces (the other coding of -1) is a codec error
/// naming the array, not a panic and not a silently different array.
#[test]
fn a_non_canonical_delta_value_is_a_codec_error() {
    let (m, data) = split(&common::tree_nodes_file());
    let pack = &m["packs"][0];
    assert_eq!(
        pack["columns"][0],
        json!({"field": "left_child", "delta": true, "width": 1})
    );
    // Decode the pack, recode element 1's left child (row 1, a leaf or child) as -2, which
    // decodes to -1 although only 0 may code -1, and compress it back.
    let (offset, length) = (
        pack["offset"].as_u64().unwrap() as usize,
        pack["length"].as_u64().unwrap() as usize,
    );
    let stored = &data[offset..offset + length];
    let mut frames = zstd::stream::decode_all(stored).unwrap();
    frames[1] = 0xfe; // -2 as one byte: row 1 + (-2) = -1
    let mut hostile = data[..offset].to_vec();
    let packed = zstd::bulk::compress(&frames, 3).unwrap();
    hostile.extend_from_slice(&packed);
    let mut m = m.clone();
    m["packs"][0]["length"] = json!(packed.len());
    let f = open(rebuild(&m, &hostile)).unwrap();
    match read_err(&f, 0) {
        FormatError::Codec {
            index: 0, source, ..
        } => {
            assert!(
                source
                    .to_string()
                    .contains("element 1 of a delta-coded column"),
                "{source}"
            )
        }
        e => panic!("expected a codec error, got {e:?}"),
    }
}

#[test]
fn columns_filter_left_out_is_a_codec_error() {
    let (mut m, data) = split(&common::tree_nodes_file());
    let pack = m["packs"][0].as_object_mut().unwrap();
    assert_eq!(pack.remove("filter"), Some(json!("columns")));
    pack.remove("columns");
    let f = open(rebuild(&m, &data)).unwrap();
    // The narrowed columns decode to fewer bytes than the records'.
    assert_variant!(read_err(&f, 1), FormatError::Codec { index: 1, .. });
}

#[test]
fn fields_filter_on_an_uncompressed_array_is_refused() {
    let e = hostile(Codec::None, |m| {
        entry(m, 2).insert("filter".into(), json!("fields"));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn fields_filter_on_a_scalar_dtype_is_refused() {
    let file = sample_file(Codec::Zstd);
    let index = compressed_index(&file, Codec::Zstd, false);
    let e = hostile(Codec::Zstd, |m| {
        entry(m, index).insert("filter".into(), json!("fields"));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn wrong_digest_is_a_digest_mismatch_on_read_and_verify() {
    for codec in CODECS {
        let f = hostile(codec, |m| {
            entry(m, 0).insert("digest".into(), json!("00".repeat(32)));
        })
        .unwrap();
        assert_variant!(read_err(&f, 0), FormatError::DigestMismatch { index: 0 });
        assert_variant!(verify_err(&f), FormatError::DigestMismatch { index: 0 });
        f.read_array(0, false)
            .expect("the bytes themselves are intact");
    }
}

#[test]
fn malformed_digest_is_refused() {
    for digest in [
        json!("AB".repeat(32)),
        json!("ab"),
        json!(7),
        json!("zz".repeat(32)),
    ] {
        let e = hostile(Codec::None, |m| {
            entry(m, 1).insert("digest".into(), digest.clone());
        });
        assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
    }
}

#[test]
fn overlapping_blobs_are_refused() {
    let e = hostile(Codec::None, |m| {
        entry(m, 1).insert("offset".into(), json!(0));
    });
    assert_variant!(
        e.expect_err("accepted"),
        FormatError::ArrayLayout { index: 1, .. }
    );
}

#[test]
fn out_of_order_offsets_are_refused() {
    // Swap the first two entries of the table (and their refs): each offset still points at
    // its own blob, but the blobs are no longer in table order.
    let e = hostile(Codec::None, |m| {
        m["arrays"].as_array_mut().unwrap().swap(0, 1);
        assert!(replace_array_ref(
            &mut m["root"],
            0,
            &json!({"array": "tmp"})
        ));
        assert!(replace_array_ref(&mut m["root"], 1, &json!({"array": 0})));
        let root = m["root"]
            .to_string()
            .replace(r#"{"array":"tmp"}"#, r#"{"array":1}"#);
        m["root"] = serde_json::from_str(&root).unwrap();
    });
    assert_variant!(
        e.expect_err("accepted"),
        FormatError::ArrayLayout { index: 0, .. }
    );
}

#[test]
fn hole_between_blobs_is_refused() {
    let e = hostile(Codec::None, |m| {
        let next = entry(m, 1)["offset"].as_u64().unwrap() + 64;
        entry(m, 1).insert("offset".into(), json!(next));
    });
    assert_variant!(
        e.expect_err("accepted"),
        FormatError::ArrayLayout { index: 1, .. }
    );
}

#[test]
fn unreferenced_array_is_refused() {
    let e = hostile(Codec::None, |m| {
        assert!(replace_array_ref(&mut m["root"], 4, &Value::Null));
    });
    assert_variant!(
        e.expect_err("accepted"),
        FormatError::ArrayLayout { index: 4, .. }
    );
}

#[test]
fn array_referenced_twice_is_refused() {
    let e = hostile(Codec::None, |m| append_node(m, json!({"array": 0})));
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn array_index_past_the_table_is_refused() {
    for index in [json!(5), json!(u64::MAX), json!(-1), json!("0")] {
        let e = hostile(Codec::None, |m| append_node(m, json!({ "array": index })));
        assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
    }
}

#[test]
fn non_integer_offsets_and_lengths_are_refused() {
    for (key, value) in [
        ("offset", json!(-1)),
        ("offset", json!(0.0)),
        ("length", json!("512")),
        ("raw_length", json!(null)),
    ] {
        let e = hostile(Codec::None, |m| {
            entry(m, 0).insert(key.into(), value.clone());
        });
        assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
    }
}

#[test]
fn unknown_codec_is_refused() {
    let e = hostile(Codec::None, |m| {
        entry(m, 0).insert("codec".into(), json!("gzip"));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn unknown_order_is_refused() {
    let e = hostile(Codec::None, |m| {
        entry(m, 0).insert("order".into(), json!("A"));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

// ------------------------------------------------------------------ dtype lies

#[test]
fn object_dtype_in_an_array_entry_is_refused() {
    for dtype in [
        json!("|O"),
        json!("|O8"),
        json!({"fields": [["o", "|O", 0]], "itemsize": 8}),
    ] {
        let e = hostile(Codec::None, |m| {
            entry(m, 0).insert("dtype".into(), dtype.clone());
        });
        assert_variant!(e.expect_err("accepted"), FormatError::DType { .. });
    }
}

#[test]
fn unknown_dtype_kinds_and_sizes_are_refused() {
    let bad = [
        json!("<x8"),
        json!("<f3"),
        json!("f8"),
        json!("<S99999999999999"),
        json!(8),
        json!({"subarray": "<f8", "shape": [8]}),
    ];
    for dtype in bad {
        let e = hostile(Codec::None, |m| {
            entry(m, 0).insert("dtype".into(), dtype.clone());
        });
        assert_variant!(e.expect_err("accepted"), FormatError::DType { .. });
    }
}

#[test]
fn structured_dtype_with_overflowing_field_is_refused() {
    let e = hostile(Codec::None, |m| {
        entry(m, 2).insert(
            "dtype".into(),
            json!({"fields": [["x", "<i8", u64::MAX - 4], ["y", "<f4", 8]], "itemsize": 16}),
        );
    });
    assert_variant!(e.expect_err("accepted"), FormatError::DType { .. });
}

// ------------------------------------------------------------------ tree lies

#[test]
fn unknown_node_kind_is_refused() {
    for node in [
        json!({"lambda": "x"}),
        json!({"reduce": ["os.system", ["ls"]]}),
        json!({}),
    ] {
        let e = hostile(Codec::None, |m| append_node(m, node.clone()));
        assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
    }
}

#[test]
fn unknown_key_in_a_node_is_refused() {
    for node in [
        json!({"list": [], "extra": 1}),
        json!({"object": "a.B", "reduce": "os.system"}),
        json!({"list": [], "tuple": []}),
    ] {
        let e = hostile(Codec::None, |m| append_node(m, node.clone()));
        assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
    }
}

#[test]
fn unknown_key_in_an_array_entry_is_refused() {
    let e = hostile(Codec::None, |m| {
        entry(m, 0).insert("mmap_hint".into(), json!(true));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn unknown_top_level_key_is_ignored() {
    let f = hostile(Codec::None, |m| {
        m.as_object_mut()
            .unwrap()
            .insert("signature".into(), json!({"alg": "none"}));
    })
    .expect("minor versions may add informational sections");
    read_all_and_verify(&f);
}

#[test]
fn manifest_that_is_not_an_object_is_refused() {
    for text in [&b"[]"[..], b"null", b"\"SKVAULT\"", b"1"] {
        assert_variant!(open_err(container(text, &[])), FormatError::Manifest { .. });
    }
}

#[test]
fn missing_or_mistyped_top_level_fields_are_refused() {
    let edits: [fn(&mut Map<String, Value>); 5] = [
        |m| drop(m.remove("root")),
        |m| drop(m.remove("arrays")),
        |m| drop(m.remove("writer")),
        |m| drop(m.insert("metadata".into(), json!([]))),
        |m| drop(m.insert("arrays".into(), json!({}))),
    ];
    for edit in edits {
        let e = hostile(Codec::None, |m| edit(m.as_object_mut().unwrap()));
        assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
    }
}

#[test]
fn ref_to_an_undeclared_id_is_refused() {
    for id in [2, 99, u64::MAX] {
        let e = hostile(Codec::None, |m| append_node(m, json!({ "ref": id })));
        assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
    }
}

#[test]
fn ref_before_its_declaration_is_refused() {
    let manifest = json!({
        "writer": "test",
        "arrays": [],
        "root": {"list": [{"ref": 5}, {"list": [], "id": 5}]}
    });
    assert_variant!(
        open_err(rebuild(&manifest, &[])),
        FormatError::Manifest { .. }
    );
}

#[test]
fn duplicate_id_is_refused() {
    let e = hostile(Codec::None, |m| {
        append_node(m, json!({"list": [], "id": 1}))
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn bare_json_floats_and_lists_are_not_nodes() {
    for node in [
        json!(1.5),
        json!([1, 2]),
        json!({"float": "1.5"}),
        json!({"int": "007"}),
    ] {
        let e = hostile(Codec::None, |m| append_node(m, node.clone()));
        assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
    }
}

#[test]
fn scalar_with_wrong_data_length_is_refused() {
    let e = hostile(Codec::None, |m| {
        append_node(m, json!({"scalar": "<f8", "data": "AAAA"}))
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn object_array_with_wrong_item_count_is_refused() {
    let e = hostile(Codec::None, |m| {
        append_node(
            m,
            json!({"objarray": [1, 2], "shape": [4294967296u64, 4294967296u64]}),
        )
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn object_dtype_in_a_scalar_node_is_refused() {
    let e = hostile(Codec::None, |m| {
        append_node(m, json!({"scalar": "|O", "data": "AAAAAAAAAAA="}))
    });
    assert_variant!(e.expect_err("accepted"), FormatError::DType { .. });
}

#[test]
fn dangerous_names_open_but_are_reported_untrusted() {
    let f = hostile(Codec::None, |m| {
        append_node(
            m,
            json!({"object": "builtins.eval", "call": [{"global": "os.system"}]}),
        )
    })
    .expect("names are judged by the trust set, not the parser");
    let untrusted = TrustSet::default().untrusted_names(&f.manifest().root);
    assert_eq!(untrusted, vec!["builtins.eval", "os.system"]);
}

/// Regression: the error path of every node below an attribute used to contain the whole
/// attribute name, so a 1 MiB name over 10,000 nodes copied 10 GB. Now only a prefix is kept.
#[test]
fn long_attribute_names_do_not_make_decoding_quadratic() {
    let name = "n".repeat(1 << 20);
    let items = vec!["0"; 10_000].join(",");
    let manifest = format!(
        r#"{{"writer":"test","arrays":[],"root":{{"object":"a.B","attrs":{{"{name}":{{"list":[{items}]}}}}}}}}"#
    );
    let bytes = container(manifest.as_bytes(), &[]);
    let (result, total) = total_allocation(|| open(bytes));
    result.expect("a valid file");
    assert!(
        total < 16 * manifest.len(),
        "decoding a {} byte manifest allocated {total} bytes",
        manifest.len()
    );
}

// ------------------------------------------------------------------ validation tree

/// `common::validation_file` with its manifest rewritten by `edit`.
fn hostile_validation(edit: impl FnOnce(&mut Value)) -> Result<SkvFile, FormatError> {
    let (mut manifest, data) = split(&common::validation_file());
    edit(&mut manifest);
    open(rebuild(&manifest, &data))
}

#[test]
fn validation_tree_may_refer_to_ids_of_the_root() {
    let f = open(common::validation_file()).unwrap();
    assert!(f.manifest().validation.is_some());
    read_all_and_verify(&f);
}

#[test]
fn root_cannot_refer_to_ids_of_the_validation_tree() {
    let e = hostile_validation(|m| {
        m["validation"]["id"] = json!(9);
        m["root"]["attrs"]["later"] = json!({"ref": 9});
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn array_referenced_from_both_trees_is_refused() {
    let e = hostile_validation(|m| {
        m["validation"]["dict"]
            .as_array_mut()
            .unwrap()
            .push(json!(["again", {"array": 0}]));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn array_unreferenced_once_the_validation_tree_is_gone_is_refused() {
    let e = hostile_validation(|m| {
        m.as_object_mut().unwrap().remove("validation");
    });
    assert_variant!(
        e.expect_err("accepted"),
        FormatError::ArrayLayout { index: 1, .. }
    );
}

#[test]
fn unknown_node_kind_in_the_validation_tree_is_refused() {
    let e = hostile_validation(|m| {
        m["validation"]["dict"]
            .as_array_mut()
            .unwrap()
            .push(json!(["f", {"reduce": ["os.system", ["id"]]}]));
    });
    assert_variant!(e.expect_err("accepted"), FormatError::Manifest { .. });
}

#[test]
fn untrusted_names_of_the_validation_tree_are_reported() {
    let f = hostile_validation(|m| {
        m["validation"]["dict"]
            .as_array_mut()
            .unwrap()
            .push(json!(["f", {"global": "os.system"}]));
    })
    .expect("names are judged by the trust set, not the parser");
    assert!(TrustSet::default()
        .untrusted_names(&f.manifest().root)
        .is_empty());
    assert_eq!(
        TrustSet::default().untrusted_in(f.manifest()),
        vec!["os.system"]
    );
}

// ------------------------------------------------------------------ nesting

fn manifest_with_root(root: &str) -> Vec<u8> {
    format!(r#"{{"writer":"test","arrays":[],"root":{root}}}"#).into_bytes()
}

fn nested_list_nodes(depth: usize) -> String {
    format!("{}null{}", r#"{"list":["#.repeat(depth), "]}".repeat(depth))
}

/// The manifest object counts as one level; free-form metadata nests like anything else.
#[test]
fn json_nesting_of_127_levels_is_accepted_and_128_refused() {
    let with_depth = |depth: usize| {
        let lists = depth - 2;
        let text = format!(
            r#"{{"writer":"t","arrays":[],"root":null,"metadata":{{"x":{}{}}}}}"#,
            "[".repeat(lists),
            "]".repeat(lists)
        );
        open(container(text.as_bytes(), &[]))
    };
    with_depth(127).expect("127 levels are allowed");
    assert_variant!(
        with_depth(128).expect_err("128 levels"),
        FormatError::ManifestJson { .. }
    );
}

#[test]
fn ten_thousand_nested_json_lists_are_a_json_error() {
    let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_variant!(
        open_err(container(text.as_bytes(), &[])),
        FormatError::ManifestJson { .. }
    );
}

#[test]
fn ten_thousand_nested_list_nodes_are_a_json_error() {
    let text = manifest_with_root(&nested_list_nodes(10_000));
    assert_variant!(
        open_err(container(&text, &[])),
        FormatError::ManifestJson { .. }
    );
}

/// The deepest tree the JSON parser lets through is decoded, walked, described and dropped
/// without overflowing the stack of a test thread (2 MiB); one level deeper is a JSON error.
#[test]
fn deepest_accepted_nesting_is_decoded_without_stack_overflow() {
    let mut deepest = None;
    for depth in 1..200 {
        match open(container(
            &manifest_with_root(&nested_list_nodes(depth)),
            &[],
        )) {
            Ok(f) => deepest = Some((depth, f)),
            Err(e) => {
                assert_variant!(e, FormatError::ManifestJson { .. });
                break;
            }
        }
    }
    let (depth, f) = deepest.expect("shallow trees open");
    assert!(
        (50..100).contains(&depth),
        "deepest accepted tree: {depth} nodes"
    );
    assert!(TrustSet::default()
        .untrusted_names(&f.manifest().root)
        .is_empty());
    let described = f.describe();
    assert!(described.get("root").is_some());
    f.verify().unwrap();
}

// ------------------------------------------------------------------ compressed manifest (1.1)

/// A file whose manifest is `stored` (flag MANIFEST_ZSTD, `raw_len` declared) around the
/// data section of `file`, with a matching digest.
fn with_compressed_manifest(file: &[u8], stored: &[u8], raw_len: u64) -> Vec<u8> {
    let layout = Layout::of(file);
    let (minor, flags) = common::version_for(&split(file).0);
    let header = Header {
        major: FORMAT_MAJOR,
        minor: minor.max(1),
        flags: skvault_format::manifest::FLAG_MANIFEST_ZSTD | flags,
        manifest_len: stored.len() as u64,
        manifest_digest: digest(stored),
        manifest_raw_len: raw_len,
    };
    container_with(&header, stored, &file[layout.data_start as usize..])
}

#[test]
fn zstd_files_compress_the_manifest_and_others_stay_version_1_0() {
    for codec in CODECS {
        let f = open(sample_file(codec)).unwrap();
        let h = f.header();
        let zstd = codec == Codec::Zstd;
        assert_eq!(h.manifest_compressed(), zstd, "{codec:?}");
        assert_eq!((h.minor, h.flags), if zstd { (1, 1) } else { (0, 0) });
        assert!(!zstd || h.manifest_raw_len > h.manifest_len);
        read_all_and_verify(&f);
    }
}

#[test]
fn a_compressed_manifest_reads_the_same_as_the_plain_one() {
    let file = sample_file(Codec::Zstd);
    let (manifest, data) = split(&file);
    let text = serde_json::to_vec(&manifest).unwrap();
    let plain = open(container(&text, &data)).unwrap();
    let packed = open(with_compressed_manifest(
        &file,
        &zstd::bulk::compress(&text, 19).unwrap(),
        text.len() as u64,
    ))
    .unwrap();
    assert_eq!(plain.manifest(), packed.manifest());
    read_all_and_verify(&packed);
}

#[test]
fn a_corrupt_compressed_manifest_is_refused() {
    let file = sample_file(Codec::Zstd);
    let (manifest, _) = split(&file);
    let text = serde_json::to_vec(&manifest).unwrap();
    let good = zstd::bulk::compress(&text, 3).unwrap();
    let n = text.len() as u64;
    // Not zstd at all; the JSON itself, uncompressed, behind the flag.
    assert_variant!(
        open_err(with_compressed_manifest(&file, b"not zstd", n)),
        FormatError::ManifestCodec { .. }
    );
    assert_variant!(
        open_err(with_compressed_manifest(&file, &text, n)),
        FormatError::ManifestCodec { .. }
    );
    // Declared one byte longer or shorter than the frames decode to.
    for raw in [n - 1, n + 1] {
        assert_variant!(
            open_err(with_compressed_manifest(&file, &good, raw)),
            FormatError::ManifestCodec { .. }
        );
    }
    // Truncated frames, and a valid frame followed by trailing bytes.
    assert_variant!(
        open_err(with_compressed_manifest(&file, &good[..good.len() - 3], n)),
        FormatError::ManifestCodec { .. }
    );
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"xyz");
    assert_variant!(
        open_err(with_compressed_manifest(&file, &trailing, n)),
        FormatError::ManifestCodec { .. }
    );
    // A skippable frame (bytes no digest of the JSON would see) before the data frame.
    let mut skippable = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
    skippable.extend_from_slice(&good);
    assert_variant!(
        open_err(with_compressed_manifest(&file, &skippable, n)),
        FormatError::ManifestCodec { .. }
    );
}

#[test]
fn absurd_decompressed_manifest_lengths_are_refused_before_allocating() {
    let file = sample_file(Codec::Zstd);
    let (manifest, _) = split(&file);
    let good = zstd::bulk::compress(&serde_json::to_vec(&manifest).unwrap(), 3).unwrap();
    assert_variant!(
        open_err(with_compressed_manifest(&file, &good, MAX_MANIFEST_LEN + 1)),
        FormatError::ManifestTooLarge { .. }
    );
    assert_variant!(
        open_err(with_compressed_manifest(&file, &good, u64::MAX)),
        FormatError::ManifestTooLarge { .. }
    );
    assert_variant!(
        open_err(with_compressed_manifest(
            &file,
            &good[..8],
            8 * 32768 + 1025
        )),
        FormatError::ManifestCodec { .. }
    );
    assert_variant!(
        open_err(with_compressed_manifest(&file, &good, 0)),
        FormatError::ManifestCodec { .. }
    );
}

#[test]
fn compressed_manifest_errors_say_why_in_their_source() {
    use skvault_format::DecodeError;
    let file = sample_file(Codec::Zstd);
    let (manifest, _) = split(&file);
    let good = zstd::bulk::compress(&serde_json::to_vec(&manifest).unwrap(), 3).unwrap();
    let why = |stored: &[u8], raw: u64| match open_err(with_compressed_manifest(&file, stored, raw))
    {
        FormatError::ManifestCodec { source } => source,
        e => panic!("{e:?}"),
    };
    assert!(matches!(why(&good, 0), DecodeError::ManifestEmpty));
    assert!(matches!(
        why(&good[..8], 8 * 32768 + 1025),
        DecodeError::ManifestExpansion {
            raw: 263169,
            stored: 8
        }
    ));
    assert!(matches!(why(b"not zstd", 100), DecodeError::NotZstdFrame));
}

/// A mapped file opened with its padding check deferred is refused by that check, and by a
/// plain mapped open, whichever gap holds the non-zero byte; an intact file passes it.
#[test]
fn a_deferred_padding_check_refuses_what_open_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample_file(Codec::Lz4);
    let layout = Layout::of(&file);
    let path = dir.path().join("m.skv");
    std::fs::write(&path, &file).unwrap();
    let (opened, padding) = SkvFile::open_mmap_deferred(&path).unwrap();
    padding.run(&opened).unwrap();
    for range in layout.padding() {
        for byte in [range.start, range.end - 1] {
            let mut bad = file.clone();
            bad[byte as usize] = 0x01;
            std::fs::write(&path, &bad).unwrap();
            assert_variant!(
                SkvFile::open_mmap(&path).unwrap_err(),
                FormatError::UnexpectedBytes { .. }
            );
            let (opened, padding) = SkvFile::open_mmap_deferred(&path).unwrap();
            assert_variant!(
                padding.run(&opened).unwrap_err(),
                FormatError::UnexpectedBytes { .. }
            );
        }
    }
}

// ------------------------------------------------------------------ the array table's text

/// The sample file with its manifest text (as serde_json writes it, compact) edited by `edit`.
fn edited_text(edit: impl FnOnce(String) -> String) -> Vec<u8> {
    let (manifest, data) = split(&sample_file(Codec::None));
    let text = serde_json::to_string(&manifest).unwrap();
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    container(edited.as_bytes(), &data)
}

fn assert_duplicate(bytes: Vec<u8>, name: &str) {
    match open_err(bytes) {
        FormatError::ManifestJson { source } => {
            let message = source.to_string();
            assert!(
                message.contains(&format!("duplicate key \"{name}\"")),
                "{message}"
            );
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

/// The array table is read member by member with its dtypes kept as text; repeated names
/// must still be refused there as everywhere else in the manifest.
#[test]
fn repeated_member_names_in_and_around_the_array_table_are_refused() {
    // A member of an entry, the dtype itself, a name inside a structured dtype's text, and
    // the table at the top level.
    assert_duplicate(
        edited_text(|t| t.replacen(r#""order":"C","#, r#""order":"C","order":"C","#, 1)),
        "order",
    );
    assert_duplicate(
        edited_text(|t| t.replacen(r#""dtype":"<f8","#, r#""dtype":"<f8","dtype":"<f8","#, 1)),
        "dtype",
    );
    assert_duplicate(
        edited_text(|t| t.replacen(r#""itemsize":16"#, r#""itemsize":16,"itemsize":16"#, 1)),
        "itemsize",
    );
    assert_duplicate(
        edited_text(|t| t.replacen(r#""arrays":["#, r#""arrays":[],"arrays":["#, 1)),
        "arrays",
    );
}

#[test]
fn array_entries_that_are_not_objects_are_refused_at_their_index() {
    for other in ["1", "-2.5", "\"x\"", "null", "true", "[]", r#"[{"a":1}]"#] {
        let bytes =
            edited_text(|t| t.replacen(r#""arrays":["#, &format!(r#""arrays":[{other},"#), 1));
        match open_err(bytes) {
            FormatError::Manifest { path, .. } => assert_eq!(path, "/arrays/0", "{other}"),
            e => panic!("{other}: expected a manifest error, got {e:?}"),
        }
    }
    // Values that are not entries are still JSON and are checked as such.
    assert_duplicate(
        edited_text(|t| t.replacen(r#""arrays":["#, r#""arrays":[[{"a":1,"a":2}],"#, 1)),
        "a",
    );
}

#[test]
fn an_array_table_that_is_not_a_list_is_refused() {
    for other in ["1", "\"arrays\"", "null", "{}", r#"{"dtype":"<f8"}"#] {
        let bytes = edited_text(|t| {
            let (manifest, _) = split(&sample_file(Codec::None));
            let table = serde_json::to_string(&manifest["arrays"]).unwrap();
            t.replacen(&table, other, 1)
        });
        match open_err(bytes) {
            FormatError::Manifest { path, .. } => assert_eq!(path, "/arrays", "{other}"),
            e => panic!("{other}: expected a manifest error, got {e:?}"),
        }
    }
}

/// Entries whose dtype texts are equal share one parse of it; each must still get exactly the
/// dtype its own text says, and a text that differs by a byte is parsed again.
#[test]
fn dtypes_are_parsed_per_distinct_text_and_checked_for_each_entry() {
    let dtypes_of = |f: &SkvFile| -> Vec<_> {
        f.manifest()
            .arrays
            .iter()
            .map(|e| e.dtype.clone())
            .collect()
    };
    let dtypes = dtypes_of(&open(sample_file(Codec::None)).unwrap());
    // The same structured dtype written with and without spaces: the second is new text.
    let spaced =
        r#"{"fields": [["x", "<i8", 0], ["y", "<f4", 8]], "itemsize": 16, "aligned": true}"#;
    let compact = r#"{"fields":[["x","<i8",0],["y","<f4",8]],"itemsize":16,"aligned":true}"#;
    let f = open(edited_text(|t| t.replacen(compact, spaced, 1))).unwrap();
    assert_eq!(dtypes_of(&f), dtypes);
    read_all_and_verify(&f);
    // A dtype text that breaks a rule (field y ends past the itemsize) is refused, although
    // entries before it had good ones.
    let bad = edited_text(|t| {
        t.replacen(
            compact,
            r#"{"fields":[["x","<i8",0],["y","<f4",8]],"itemsize":10,"aligned":true}"#,
            1,
        )
    });
    match open_err(bad) {
        FormatError::DType { path, message } => {
            assert_eq!(path, "/arrays/2/dtype/fields/1");
            assert!(message.contains("does not fit in itemsize 10"), "{message}");
        }
        e => panic!("expected a dtype error, got {e:?}"),
    }
}

#[test]
fn ten_thousand_nested_lists_in_a_dtype_are_a_json_error() {
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let bytes = edited_text(|t| t.replacen(r#""dtype":"<f8""#, &format!(r#""dtype":{deep}"#), 1));
    assert_variant!(open_err(bytes), FormatError::ManifestJson { .. });
}

// ------------------------------------------------- a large array table, read on its own thread

/// A list of `n` small arrays: over 128 kB of array table from about 800, so that the table
/// is read on a thread of its own while the tree is decoded.
fn many_arrays_file(n: usize) -> Vec<u8> {
    use skvault_format::manifest::Order;
    use skvault_format::node::Node;
    let arrays: Vec<_> = (0..n)
        .map(|i| {
            let data = [i as f64, -(i as f64)];
            let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
            (common::dtype(json!("<f8")), vec![2], Order::C, bytes)
        })
        .collect();
    common::write(
        Node::List((0..n).map(Node::Array).collect()),
        &arrays,
        Codec::None,
    )
}

const MANY: usize = 1200;

/// The manifest text of `many_arrays_file(MANY)` edited, in a container whose digest matches.
fn many_edited(pretty: bool, edit: impl FnOnce(String) -> String) -> (Vec<u8>, String) {
    let (manifest, data) = split(&many_arrays_file(MANY));
    let text = if pretty {
        serde_json::to_string_pretty(&manifest).unwrap()
    } else {
        serde_json::to_string(&manifest).unwrap()
    };
    let table = serde_json::to_string(&manifest["arrays"]).unwrap();
    assert!(table.len() > 128 << 10, "table of {} bytes", table.len());
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    (container(edited.as_bytes(), &data), edited)
}

#[test]
fn a_large_array_table_read_beside_the_tree_gives_every_entry_in_order() {
    use skvault_format::node::Node;
    let f = open(many_arrays_file(MANY)).unwrap();
    let arrays = &f.manifest().arrays;
    assert_eq!(arrays.len(), MANY);
    for (i, e) in arrays.iter().enumerate() {
        assert_eq!(e.shape, [2]);
        assert_eq!(
            e.stored().map(|b| b.offset),
            Some(64 * i as u64),
            "entry {i}"
        );
    }
    let Node::List(items) = &f.manifest().root else {
        panic!("root: {:?}", f.manifest().root)
    };
    let indices: Vec<usize> = items
        .iter()
        .map(|n| match n {
            Node::Array(i) => *i,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(indices, (0..MANY).collect::<Vec<_>>());
    read_all_and_verify(&f);
    let last = f.read_array(MANY - 1, true).unwrap();
    assert_eq!(&last[..8], &((MANY - 1) as f64).to_le_bytes());
}

/// A JSON error inside an entry, found once the table is read apart from the rest of the
/// text, is reported as a read of the whole text in one pass reports it: the same message,
/// at the same line and column (on one line, and on a pretty-printed manifest's many).
#[test]
fn json_errors_in_a_large_array_table_are_placed_in_the_whole_text() {
    let last_order = |t: String| {
        let at = t.rfind(r#""order""#).unwrap();
        format!("{}\"order\": \"C\", {}", &t[..at], &t[at..])
    };
    let first_length = |t: String| t.replacen(r#""length":16"#, r#""length":16,"length":16"#, 1);
    for pretty in [false, true] {
        for (what, edit) in [
            ("the last entry", &last_order as &dyn Fn(String) -> String),
            ("the first entry", &first_length),
        ] {
            if pretty && what == "the first entry" {
                continue; // the compact edit does not apply to a pretty-printed text
            }
            let (bytes, text) = many_edited(pretty, edit);
            let one_pass = skvault_format::strict_json::from_slice(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(one_pass.contains("duplicate key"), "{one_pass}");
            match open_err(bytes) {
                FormatError::ManifestJson { source } => {
                    assert_eq!(source.to_string(), one_pass, "{what}, pretty: {pretty}")
                }
                other => panic!("{what}: expected a JSON error, got {other:?}"),
            }
        }
    }
    // The same for a repeated name inside a structured dtype's text (parsed apart too).
    let bytes =
        edited_text(|t| t.replacen(r#""itemsize":16"#, r#""itemsize":16,"itemsize":16"#, 1));
    let (manifest, _) = split(&sample_file(Codec::None));
    let text = serde_json::to_string(&manifest).unwrap().replacen(
        r#""itemsize":16"#,
        r#""itemsize":16,"itemsize":16"#,
        1,
    );
    let one_pass = skvault_format::strict_json::from_slice(text.as_bytes())
        .unwrap_err()
        .to_string();
    match open_err(bytes) {
        FormatError::ManifestJson { source } => assert_eq!(source.to_string(), one_pass),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

/// Read on two threads, the table's errors still come before the tree's, and the tree is
/// checked against the table's length.
#[test]
fn a_large_array_table_and_the_tree_report_errors_in_the_order_of_one_read() {
    // A bad last entry and a bad tree: the entry's error.
    let (bytes, _) = many_edited(false, |t| {
        let at = t.rfind(r#""order":"C""#).unwrap();
        let t = format!("{}\"order\":\"Z\"{}", &t[..at], &t[at + 11..]);
        t.replacen(r#"{"array":0}"#, r#"{"ref":99}"#, 1)
    });
    match open_err(bytes) {
        FormatError::Manifest { path, .. } => {
            assert_eq!(path, format!("/arrays/{}/order", MANY - 1))
        }
        other => panic!("expected the entry's error, got {other:?}"),
    }
    // The tree alone bad: its error.
    let (bytes, _) = many_edited(false, |t| t.replacen(r#"{"array":0}"#, r#"{"ref":99}"#, 1));
    match open_err(bytes) {
        FormatError::Manifest { path, message } => {
            assert_eq!(path, "/root/list/0/ref");
            assert!(message.contains("not declared"), "{message}");
        }
        other => panic!("expected the tree's error, got {other:?}"),
    }
    // An array index one past the table.
    let (bytes, _) = many_edited(false, |t| {
        t.replacen(r#"{"array":0}"#, &format!(r#"{{"array":{MANY}}}"#), 1)
    });
    match open_err(bytes) {
        FormatError::Manifest { path, message } => {
            assert_eq!(path, "/root/list/0/array");
            assert!(message.contains(&format!("below {MANY}")), "{message}");
        }
        other => panic!("expected an index error, got {other:?}"),
    }
}
