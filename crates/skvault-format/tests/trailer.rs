//! Embedded signatures (format 1.3, FORMAT.md 2.5): the trailer is found, the data section
//! ends where it begins, the signed file is recovered exactly, and each malformed trailer is
//! a `SignatureTrailer` error naming the problem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use skvault_format::manifest::{Header, FLAG_SIGNATURE};
use skvault_format::trailer::{Trailer, FOOTER_LEN, MAX_SIGNATURE_LEN};
use skvault_format::{Codec, FormatError, SkvFile};

fn signed() -> Vec<u8> {
    common::sample_file(Codec::Zstd)
}

fn trailer_error(bytes: Vec<u8>) -> String {
    match SkvFile::from_bytes(bytes) {
        Err(FormatError::SignatureTrailer { message }) => message,
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn an_embedded_file_reads_like_the_signed_one_and_gives_it_back() {
    let plain = signed();
    let bytes = common::embedded(&plain, b"{\"sig\": 1}");
    let file = SkvFile::from_bytes(bytes.clone()).unwrap();
    file.verify().unwrap();
    let t = *file.trailer().unwrap();
    assert_eq!(file.content_len(), plain.len() as u64);
    assert_eq!(file.file_len(), bytes.len() as u64);
    assert_eq!(file.embedded_signature().unwrap().unwrap(), b"{\"sig\": 1}");
    assert_eq!(file.header().minor, 3);
    assert_ne!(file.header().flags & FLAG_SIGNATURE, 0);
    let mut back = t.signed_header(file.header()).to_bytes().to_vec();
    back.extend_from_slice(&bytes[64..t.bundle_offset as usize]);
    assert_eq!(back, plain);
    let original = SkvFile::from_bytes(plain).unwrap();
    assert!(original.trailer().is_none());
    assert_eq!(original.embedded_signature().unwrap(), None);
    for i in 0..original.manifest().arrays.len() {
        assert_eq!(
            file.read_array(i, true).unwrap(),
            original.read_array(i, true).unwrap()
        );
    }
}

/// A signed 1.4 file (column transforms) keeps its minor version when a signature is
/// embedded, and gets it back when the signature is taken off.
#[test]
fn an_embedded_1_4_file_keeps_its_minor_version() {
    let plain = common::tree_nodes_file();
    assert_eq!(
        SkvFile::from_bytes(plain.clone()).unwrap().header().minor,
        4
    );
    let bytes = common::embedded(&plain, b"{}");
    let file = SkvFile::from_bytes(bytes.clone()).unwrap();
    file.verify().unwrap();
    assert_eq!(file.header().minor, 4);
    let t = *file.trailer().unwrap();
    assert_eq!(t.signed_minor, 4);
    let mut back = t.signed_header(file.header()).to_bytes().to_vec();
    back.extend_from_slice(&bytes[64..t.bundle_offset as usize]);
    assert_eq!(back, plain);
}

#[test]
fn a_damaged_footer_is_refused_naming_the_problem() {
    let good = common::embedded(&signed(), b"{}");
    let n = good.len();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            {
                let mut b = good.clone();
                b[n - 2] = b'X';
                b
            },
            "footer magic",
        ),
        (
            {
                let mut b = good.clone();
                b[n - 12] = 1;
                b
            },
            "reserved footer bytes",
        ),
        (
            {
                let mut b = good.clone();
                b[n - 24..n - 16].copy_from_slice(&(MAX_SIGNATURE_LEN + 1).to_le_bytes());
                b
            },
            "declared length",
        ),
        (
            {
                let mut b = good.clone();
                b[n - 24..n - 16].copy_from_slice(&0u64.to_le_bytes());
                b
            },
            "declared length",
        ),
        (
            {
                let mut b = good.clone();
                b[n - 24..n - 16].copy_from_slice(&(n as u64 - FOOTER_LEN - 70).to_le_bytes());
                b
            },
            "does not fit",
        ),
        (
            {
                let mut b = good.clone();
                b[n - 16..n - 14].copy_from_slice(&3u16.to_le_bytes());
                b
            },
            "minor version",
        ),
        (
            {
                let mut b = good.clone();
                b[10..12].copy_from_slice(&2u16.to_le_bytes());
                b
            },
            "minor version",
        ),
        // A 1.4 signed file keeps minor 4 when embedded: 3 would hide its COLUMNS version.
        (
            {
                let mut b = common::embedded(&common::tree_nodes_file(), b"{}");
                b[10..12].copy_from_slice(&3u16.to_le_bytes());
                b
            },
            "minor version",
        ),
        // The flag without a trailer: a signed file that merely claims one.
        (
            {
                let mut b = signed();
                let flags = u32::from_le_bytes(b[12..16].try_into().unwrap()) | FLAG_SIGNATURE;
                b[12..16].copy_from_slice(&flags.to_le_bytes());
                b[10..12].copy_from_slice(&3u16.to_le_bytes());
                b
            },
            "footer magic",
        ),
        (good[..20].to_vec(), "too short"),
    ];
    for (bytes, expected) in cases {
        if bytes.len() < 64 {
            // Shorter than a header: refused as truncated before the trailer is looked at.
            assert!(matches!(
                SkvFile::from_bytes(bytes),
                Err(FormatError::Truncated { .. })
            ));
            continue;
        }
        let message = trailer_error(bytes);
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
    }
}

#[test]
fn a_trailer_cannot_hide_bytes_after_the_last_blob() {
    // Bytes between the data section and the signature are still trailing bytes.
    let mut plain = signed();
    plain.extend_from_slice(&[0u8; 8]);
    let bytes = common::embedded(&plain, b"{}");
    assert!(matches!(
        SkvFile::from_bytes(bytes),
        Err(FormatError::UnexpectedBytes { .. })
    ));
}

#[test]
fn footer_round_trips() {
    let header = Header::parse(&signed()[..64], signed().len() as u64).unwrap();
    let footer = Trailer::footer(42, header.minor);
    let len = 10_000u64;
    let t = Trailer::parse(&footer, len, &Trailer::embedded_header(&header)).unwrap();
    assert_eq!(t.bundle_len, 42);
    assert_eq!(t.bundle_offset, len - FOOTER_LEN - 42);
    assert_eq!(t.signed_header(&Trailer::embedded_header(&header)), header);
}
