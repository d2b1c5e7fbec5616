//! `skvault predict ... -o -`: the result alone on stdout, CSV unless `--format npy`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{model, rows_csv, s, skvault};

#[test]
fn dash_writes_the_same_bytes_as_a_file_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path(), "m.skv");
    let rows = rows_csv(dir.path());
    for (file, format) in [
        ("y.csv", None),
        ("y.npy", Some("npy")),
        ("y2.csv", Some("csv")),
    ] {
        let path = dir.path().join(file);
        let to_file = skvault(dir.path(), &["predict", s(&m), s(&rows), "-o", s(&path)]);
        assert_eq!(
            (to_file.code, to_file.out.as_str()),
            (0, ""),
            "{}",
            to_file.err
        );
        let mut args = vec!["predict", s(&m), s(&rows), "-o", "-"];
        if let Some(f) = format {
            args.extend(["--format", f]);
        }
        let to_stdout = skvault(dir.path(), &args);
        assert_eq!(to_stdout.code, 0, "{}", to_stdout.err);
        assert_eq!(to_stdout.stdout, std::fs::read(&path).unwrap(), "{file}");
        assert!(!dir.path().join("-").exists());
    }
    // --format overrides the extension of a file too.
    let odd = dir.path().join("y.out");
    let r = skvault(
        dir.path(),
        &["predict", s(&m), s(&rows), "-o", s(&odd), "--format", "csv"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        std::fs::read(&odd).unwrap(),
        std::fs::read(dir.path().join("y.csv")).unwrap()
    );

    // Errors stay on stderr, stdout stays empty.
    let r = skvault(dir.path(), &["predict", s(&m), "missing.csv", "-o", "-"]);
    assert_eq!((r.code, r.out.as_str()), (2, ""));
    assert!(r.err.contains("missing.csv"), "{}", r.err);
}
