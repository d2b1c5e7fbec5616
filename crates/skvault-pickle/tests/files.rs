//! File-level `scan_path`, `scan_paths` and `convert_file`: atomic output, refusals, folder
//! walking rules.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use skvault_format::{Node, SkvFile};
use skvault_pickle::{
    convert_file, convert_file_checked, scan_path, scan_paths, ConvertOptions, FileError,
    ScanOptions, Step, Verdict,
};

/// `pickle.dumps([1, 2], protocol=2)`.
const LIST: &[u8] = b"\x80\x02]q\x00(K\x01K\x02e.";
/// `os.system('echo hi')` in protocol 0.
const EVIL: &[u8] = b"cos\nsystem\n(S'echo hi'\ntR.";

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn converts_a_pickle_into_a_skv_file_recording_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "list.pkl", LIST);
    let dst = dir.path().join("list.skv");
    let mut steps = 0;
    let done = convert_file(&src, &dst, &ConvertOptions::default(), &mut |_| steps += 1).unwrap();
    assert_eq!(done.report.verdict, Verdict::Safe);
    assert!(steps >= 3);
    let file = SkvFile::open(&dst).unwrap();
    assert_eq!(
        file.manifest().root,
        Node::List(vec![Node::Int(1), Node::Int(2)])
    );
    let origin = &file.manifest().metadata["converted_from"];
    assert_eq!(origin["file"], "list.pkl");
    assert_eq!(origin["format"], "pickle");
    assert_eq!(origin["blake3"], blake3::hash(LIST).to_hex().as_str());
    assert_eq!(file.manifest().metadata["object"], "builtins.list");
}

/// The bar of `skvault convert` showed "173 GiB / 612 MiB": each report of the bytes written
/// so far was added up as if it were an increment.
#[test]
fn writing_reports_the_bytes_written_so_far_up_to_the_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "list.pkl", LIST);
    let dst = dir.path().join("list.skv");
    let mut writes = Vec::new();
    convert_file(&src, &dst, &ConvertOptions::default(), &mut |step| {
        if let Step::Writing { done, total } = step {
            writes.push((done, total));
        }
    })
    .unwrap();
    let size = std::fs::metadata(&dst).unwrap().len();
    assert!(writes.len() >= 2, "{writes:?}");
    assert!(
        writes
            .iter()
            .all(|&(done, total)| total == size && done <= total),
        "{writes:?}"
    );
    assert!(writes.windows(2).all(|w| w[0].0 <= w[1].0), "{writes:?}");
    assert_eq!(writes.last(), Some(&(size, size)));
}

/// Ctrl-C in `skvault convert`: the callback's error stops the conversion while writing, and
/// neither the output nor its temporary file is left.
#[test]
fn a_stop_from_the_callback_leaves_no_output_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "list.pkl", LIST);
    let dst = dir.path().join("list.skv");
    let stop = || std::io::Error::new(std::io::ErrorKind::Interrupted, "stop");
    let err = convert_file_checked(
        &src,
        &dst,
        &ConvertOptions::default(),
        &mut |step| match step {
            Step::Writing { .. } => Err(stop()),
            _ => Ok(()),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("stop"), "{err}");
    assert!(!dst.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Between steps too, before anything is written.
    let err = convert_file_checked(
        &src,
        &dst,
        &ConvertOptions::default(),
        &mut |step| match step {
            Step::Scanning => Err(stop()),
            _ => Ok(()),
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, FileError::Io { path, .. } if path == &dst),
        "{err:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn refuses_dangerous_files_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "evil.pkl", EVIL);
    let dst = dir.path().join("evil.skv");
    let err = convert_file(&src, &dst, &ConvertOptions::default(), &mut |_| {}).unwrap_err();
    match &err {
        FileError::Unsafe { report, .. } => {
            assert_eq!(report.verdict, Verdict::Unsafe);
            assert_eq!(report.globals[0].qualified(), "os.system");
        }
        other => panic!("expected Unsafe, got {other:?}"),
    }
    assert!(err.to_string().contains("os.system"), "{err}");
    assert!(!dst.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn truncated_streams_are_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "cut.pkl", &LIST[..LIST.len() - 2]);
    let err = convert_file(
        &src,
        &dir.path().join("x.skv"),
        &ConvertOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, FileError::Unsafe { .. }), "{err:?}");
    assert!(
        err.to_string().contains("cannot be read to its end"),
        "{err}"
    );
}

#[test]
fn skv_sources_and_missing_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "list.pkl", LIST);
    let skv = dir.path().join("list.skv");
    convert_file(&src, &skv, &ConvertOptions::default(), &mut |_| {}).unwrap();
    let again = convert_file(
        &skv,
        &dir.path().join("y.skv"),
        &ConvertOptions::default(),
        &mut |_| {},
    );
    assert!(matches!(again, Err(FileError::AlreadySkv { .. })));
    let missing = scan_path(&dir.path().join("nope.pkl"), &ScanOptions::default());
    assert!(matches!(missing, Err(FileError::Io { .. })));
    // A .skv file is scanned by the names its trees need.
    let report = scan_path(&skv, &ScanOptions::default()).unwrap();
    assert_eq!(report.verdict, Verdict::Safe);
    assert_eq!(report.format.name(), "skv");
}

#[test]
fn folders_skip_text_files_but_never_a_pickle_with_another_name() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir, "notes.py", b"import numpy as np\nprint(np.pi)\n");
    write(&dir, "README", b"# models\n");
    write(&dir, "innocent.txt", EVIL);
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write(&dir, "sub/model.pkl", LIST);
    let mut seen = Vec::new();
    let skipped = scan_paths(
        &[dir.path().to_path_buf()],
        &ScanOptions::default(),
        &mut |s| {
            let name = s.path.file_name().unwrap().to_string_lossy().into_owned();
            seen.push((name, s.result.map(|r| r.verdict).ok()));
        },
    );
    assert_eq!(skipped, 2);
    assert_eq!(
        seen,
        vec![
            ("innocent.txt".to_string(), Some(Verdict::Unsafe)),
            ("model.pkl".to_string(), Some(Verdict::Safe)),
        ]
    );
    // Named explicitly, a text file is judged as the (broken) pickle it is read as.
    let named = scan_path(&dir.path().join("notes.py"), &ScanOptions::default()).unwrap();
    assert_eq!(named.verdict, Verdict::Unsafe);
}

#[test]
fn files_that_are_not_pickles_are_errors_not_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 4] = [
        ("empty.pkl", b""),
        ("notes.txt", b"hello, this is text\n"),
        ("noise.bin", &[0x00, 0xff, 0x13, 0x37, 0x42]),
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    ];
    for (name, bytes) in cases {
        let src = write(&dir, name, bytes);
        let scanned = scan_path(&src, &ScanOptions::default());
        assert!(
            matches!(&scanned, Err(FileError::NotAPickle { path, .. }) if path == &src),
            "{name}: {scanned:?}"
        );
        assert!(scanned.unwrap_err().to_string().contains("not a pickle"));
        let dst = dir.path().join("out.skv");
        let converted = convert_file(&src, &dst, &ConvertOptions::default(), &mut |_| {});
        assert!(
            matches!(converted, Err(FileError::NotAPickle { .. })),
            "{name}"
        );
        assert!(!dst.exists());
    }
    // A stream that starts like a pickle and breaks stays a verdict: unsafe.
    for (name, bytes) in [
        ("truncated.pkl", &LIST[..LIST.len() - 3]),
        ("broken.pkl", &b"\x80\x04\x95garbage"[..]),
        ("evil.txt", &EVIL[..EVIL.len() - 1]),
    ] {
        let src = write(&dir, name, bytes);
        let report = scan_path(&src, &ScanOptions::default()).unwrap();
        assert_eq!(report.verdict, Verdict::Unsafe, "{name}");
    }
}
