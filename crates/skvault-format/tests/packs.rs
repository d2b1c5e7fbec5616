//! Packs (format 1.2): several small arrays compressed as one blob. What the writer makes of
//! `common::packed_arrays`, how every array reads back, and one hostile manifest or corrupted
//! blob per check of FORMAT.md 3.5 and 9 (step 11a), each with the error it must give.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    container_with, header_for, open, open_err, packed_arrays, packed_file, rebuild, split, Layout,
};
use serde_json::{json, Value};
use skvault_format::codec::Filter;
use skvault_format::manifest::{Placement, FLAG_MANIFEST_ZSTD, FLAG_PACKS};
use skvault_format::{Codec, FormatError, SkvFile};

/// The packed file written with `codec`, after `edit` has rewritten its manifest (stored plain).
fn hostile(codec: Codec, edit: impl FnOnce(&mut Value)) -> FormatError {
    let (mut manifest, data) = split(&packed_file(codec));
    edit(&mut manifest);
    open_err(rebuild(&manifest, &data))
}

fn manifest_error_at(e: FormatError, at: &str) {
    match e {
        FormatError::Manifest { path, .. } if path == at => {}
        e => panic!("expected a manifest error at {at}, got {e:?}"),
    }
}

fn pack_error(e: FormatError, pack: usize, says: &str) {
    match e {
        FormatError::PackLayout { pack: p, message } if p == pack && message.contains(says) => {}
        e => panic!("expected PackLayout for pack {pack} saying {says:?}, got {e:?}"),
    }
}

/// Where each array of `packed_arrays` must be: `Some(pack)` or `None` (a blob of its own).
const PLACES: [Option<usize>; 8] = [
    Some(0),
    Some(1),
    Some(0),
    Some(1),
    Some(2),
    Some(2),
    None,
    Some(0),
];

#[test]
fn compressed_files_put_small_arrays_of_one_dtype_in_packs() {
    let arrays = packed_arrays();
    for codec in [Codec::Zstd, Codec::Lz4] {
        let file = open(packed_file(codec)).unwrap();
        let h = file.header();
        assert_eq!(h.minor, 2, "{codec:?}");
        assert_eq!(h.flags & FLAG_PACKS, FLAG_PACKS, "{codec:?}");
        let m = file.manifest();
        assert_eq!(m.packs.len(), 3, "{codec:?}");
        for (i, (entry, place)) in m.arrays.iter().zip(PLACES).enumerate() {
            match (&entry.placement, place) {
                (Placement::Packed { pack, .. }, Some(p)) => assert_eq!(*pack, p, "array {i}"),
                (Placement::Stored(_), None) => {}
                (got, want) => panic!("{codec:?} array {i}: {got:?}, expected pack {want:?}"),
            }
        }
        assert_eq!(m.packs[0].members, vec![0, 2, 7]);
        // Records are split into columns with zstd only; 12 bytes of int16 are not worth a codec.
        let fields = if codec == Codec::Zstd {
            Filter::Fields
        } else {
            Filter::None
        };
        assert_eq!(m.packs[1].blob.filter, fields, "{codec:?}");
        assert_eq!(m.packs[0].blob.codec, codec);
        assert_eq!(m.packs[2].blob.codec, Codec::None);
        for (i, a) in arrays.iter().enumerate() {
            assert_eq!(
                file.read_array(i, true).unwrap(),
                a.3,
                "{codec:?} array {i}"
            );
        }
        file.verify().unwrap();
    }
}

#[test]
fn packed_arrays_read_the_same_from_disk_and_mmap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("packed.skv");
    std::fs::write(&path, packed_file(Codec::Zstd)).unwrap();
    let arrays = packed_arrays();
    for file in [
        SkvFile::open(&path).unwrap(),
        SkvFile::open_mmap(&path).unwrap(),
    ] {
        // Members read out of order, and the last one of a pack first.
        for i in [7, 3, 0, 6, 5, 2, 1, 4] {
            assert_eq!(file.read_array(i, true).unwrap(), arrays[i].3, "array {i}");
            assert!(file.mapped_bytes(i).is_none() || PLACES[i].is_none());
        }
        assert!(
            file.blob_offset(0).is_err(),
            "a packed array has no blob of its own"
        );
        assert!(file.blob_offset(6).is_ok());
    }
}

#[test]
fn uncompressed_files_have_no_packs_and_stay_version_1_0() {
    let file = open(packed_file(Codec::None)).unwrap();
    assert_eq!((file.header().minor, file.header().flags), (0, 0));
    assert!(file.manifest().packs.is_empty());
    assert!(file.manifest().arrays.iter().all(|e| e.stored().is_some()));
}

#[test]
fn packs_and_compressed_manifest_set_both_flags() {
    let file = open(packed_file(Codec::Zstd)).unwrap();
    assert_eq!(file.header().flags, FLAG_MANIFEST_ZSTD | FLAG_PACKS);
    // lz4 leaves the manifest plain: rebuilding it gives the writer's bytes exactly.
    let bytes = packed_file(Codec::Lz4);
    let (manifest, data) = split(&bytes);
    assert_eq!(rebuild(&manifest, &data), bytes);
    assert!(
        manifest["packs"][0].get("digest").is_none(),
        "members carry the digests"
    );
    assert_eq!(manifest["arrays"][0]["pack"], json!(0));
}

#[test]
fn a_packed_entry_must_name_an_existing_pack() {
    let e = hostile(Codec::Lz4, |m| m["arrays"][0]["pack"] = json!(3));
    manifest_error_at(e, "/arrays/0/pack");
    // Checked once the packs are known (the table may be read before them): the first
    // entry naming a missing pack, with the number the file has.
    let e = hostile(Codec::Lz4, |m| {
        m["arrays"][7]["pack"] = json!(5);
        m["arrays"][2]["pack"] = json!(4);
    });
    match e {
        FormatError::Manifest { path, message } => {
            assert_eq!(path, "/arrays/2/pack");
            assert!(message.contains("the file has 3"), "{message}");
        }
        e => panic!("expected a manifest error, got {e:?}"),
    }
    let e = hostile(Codec::Lz4, |m| m["arrays"][0]["pack"] = json!(-1));
    manifest_error_at(e, "/arrays/0/pack");
}

#[test]
fn a_packed_entry_has_no_blob_members_and_a_pack_no_digest() {
    for key in ["offset", "length", "codec", "filter"] {
        let e = hostile(Codec::Lz4, |m| m["arrays"][2][key] = json!(0));
        manifest_error_at(e, &format!("/arrays/2/{key}"));
    }
    let e = hostile(Codec::Lz4, |m| {
        m["packs"][1]["digest"] = m["arrays"][1]["digest"].clone();
    });
    manifest_error_at(e, "/packs/1/digest");
    let e = hostile(Codec::Lz4, |m| {
        m["packs"][1].as_object_mut().unwrap().remove("raw_length");
    });
    manifest_error_at(e, "/packs/1/raw_length");
}

#[test]
fn packs_and_the_flag_go_together() {
    let (manifest, data) = split(&packed_file(Codec::Lz4));
    let text = serde_json::to_vec(&manifest).unwrap();
    let mut header = header_for(&text);
    header.flags = 0;
    manifest_error_at(open_err(container_with(&header, &text, &data)), "/packs");
    let e = hostile(Codec::Lz4, |m| m["packs"] = json!([]));
    manifest_error_at(e, "/packs");
    let e = hostile(Codec::Lz4, |m| m["packs"] = json!({}));
    manifest_error_at(e, "/packs");
}

#[test]
fn every_pack_needs_members_that_fill_it_exactly() {
    let e = hostile(Codec::Lz4, |m| {
        let extra = m["packs"][2].clone();
        m["packs"].as_array_mut().unwrap().push(extra);
    });
    pack_error(e, 3, "no array entry");
    let e = hostile(Codec::Lz4, |m| {
        let raw = m["packs"][0]["raw_length"].as_u64().unwrap();
        m["packs"][0]["raw_length"] = json!(raw + 8);
    });
    pack_error(e, 0, "members hold");
    // Array 2 moved from pack 0 to pack 1: both sums are now wrong; pack 0 is checked first.
    let e = hostile(Codec::Lz4, |m| m["arrays"][2]["pack"] = json!(1));
    pack_error(e, 0, "members hold");
}

#[test]
fn a_pack_cannot_declare_more_than_its_codec_can_produce() {
    let e = hostile(Codec::Lz4, |m| {
        let stored = m["packs"][0]["length"].as_u64().unwrap();
        m["packs"][0]["raw_length"] = json!(stored * 256 + 65);
    });
    pack_error(e, 0, "cannot come from");
    let e = hostile(Codec::Lz4, |m| {
        let raw = m["packs"][2]["raw_length"].as_u64().unwrap();
        m["packs"][2]["length"] = json!(raw + 1);
    });
    pack_error(e, 2, "uncompressed but length differs");
}

#[test]
fn the_fields_filter_needs_members_of_one_structured_dtype() {
    let e = hostile(Codec::Zstd, |m| {
        m["arrays"][3]["dtype"] =
            json!({"fields": [["c", "<i4", 0], ["b", "<f8", 8]], "itemsize": 16});
    });
    pack_error(e, 1, "one structured dtype");
    let e = hostile(Codec::Lz4, |m| m["packs"][0]["filter"] = json!("fields"));
    pack_error(e, 0, "one structured dtype");
    let e = hostile(Codec::Lz4, |m| m["packs"][2]["filter"] = json!("fields"));
    manifest_error_at(e, "/packs/2/filter");
}

#[test]
fn packs_follow_the_stored_arrays_at_their_offsets() {
    let e = hostile(Codec::Lz4, |m| {
        let offset = m["packs"][0]["offset"].as_u64().unwrap();
        m["packs"][0]["offset"] = json!(offset + 64);
    });
    pack_error(e, 0, "should be");
    // The stored array must stay first: swapping it behind the packs breaks its offset.
    let e = hostile(Codec::Lz4, |m| m["arrays"][6]["offset"] = json!(64));
    assert!(
        matches!(e, FormatError::ArrayLayout { index: 6, .. }),
        "{e:?}"
    );
}

#[test]
fn corrupt_pack_bytes_fail_every_member_and_only_them() {
    for codec in [Codec::Zstd, Codec::Lz4] {
        let bytes = packed_file(codec);
        let file = open(bytes.clone()).unwrap();
        let data_start = file.header().data_start();
        let pack = &file.manifest().packs[0].blob;
        let mut bad = bytes.clone();
        let at = usize::try_from(data_start + pack.offset + pack.length / 2).unwrap();
        bad[at] ^= 0x5a;
        let bad = open(bad).unwrap();
        for (i, place) in PLACES.iter().enumerate() {
            let result = bad.read_array(i, true);
            match (place, result) {
                (
                    Some(0),
                    Err(FormatError::Codec { index, .. } | FormatError::DigestMismatch { index }),
                ) => {
                    assert_eq!(index, i);
                }
                (Some(0), other) => panic!("{codec:?} array {i}: {other:?}"),
                (_, other) => assert_eq!(other.unwrap(), packed_arrays()[i].3),
            }
        }
        assert!(bad.verify().is_err());
    }
}

#[test]
fn a_changed_byte_in_an_uncompressed_pack_is_its_members_digest_mismatch() {
    let bytes = packed_file(Codec::Zstd);
    let file = open(bytes.clone()).unwrap();
    let pack = &file.manifest().packs[2].blob;
    assert_eq!(pack.codec, Codec::None);
    let mut bad = bytes;
    bad[usize::try_from(file.header().data_start() + pack.offset + 3).unwrap()] ^= 1;
    let bad = open(bad).unwrap();
    assert!(matches!(
        bad.read_array(4, true),
        Err(FormatError::DigestMismatch { index: 4 })
    ));
    assert_eq!(
        bad.read_array(4, false).unwrap().len(),
        12,
        "unverified reads still work"
    );
    assert!(bad.read_array(5, true).unwrap().is_empty());
}

#[test]
fn every_cut_inside_the_data_section_is_truncated() {
    for codec in [Codec::Zstd, Codec::Lz4] {
        let bytes = packed_file(codec);
        let layout = Layout::of(&bytes);
        for len in layout.data_start..bytes.len() as u64 {
            match open(bytes[..len as usize].to_vec()) {
                Err(FormatError::Truncated { available, .. }) => assert_eq!(available, len),
                other => panic!("{codec:?} cut at {len}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_corrupt_pack_is_a_codec_error_naming_the_pack_with_the_decoder_error_as_source() {
    use skvault_format::DecodeError;
    use std::error::Error as _;
    let bytes = packed_file(Codec::Lz4);
    let file = open(bytes.clone()).unwrap();
    let pack = &file.manifest().packs[0].blob;
    let mut bad = bytes;
    // An lz4 block that ends after its first token: the decoder's own error.
    let start = usize::try_from(file.header().data_start() + pack.offset).unwrap();
    bad[start] = 0xf0;
    bad[start + 1] = 0xff;
    let bad = open(bad).unwrap();
    let e = bad.read_array(0, true).unwrap_err();
    let FormatError::Codec {
        index: 0,
        codec: "lz4",
        source: DecodeError::InPack { pack: 0, source },
    } = &e
    else {
        panic!("{e:?}");
    };
    assert!(
        e.to_string()
            .starts_with("array 0: lz4 data is corrupt: in pack 0: "),
        "{e}"
    );
    // The chain: Codec -> InPack -> the decoder's error.
    let inner = e
        .source()
        .and_then(|s| s.source())
        .expect("a chained source");
    assert_eq!(inner.to_string(), source.to_string());
}
