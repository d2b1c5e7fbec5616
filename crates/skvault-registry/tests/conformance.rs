//! The conformance suite: every test runs against a folder and against a real S3-compatible
//! server (s3s-fs on loopback, `make s3-server`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{floats, skv_bytes, write_skv, Backend};
use skvault_format::Codec;
use skvault_registry::{
    MetricFilter, NoProgress, Query, RegisterOptions, Registry, RegistryError, Selector,
};

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod folder {
            $( #[test] fn $test() { super::$test(&super::Backend::folder()); } )*
        }
        mod s3 {
            $( #[test] fn $test() { super::$test(&super::Backend::s3()); } )*
        }
    };
}

conformance!(
    register_then_load_is_byte_identical,
    second_registration_stores_no_new_blob_bytes,
    shared_arrays_are_stored_once,
    versions_latest_and_archive,
    aliases_compare_and_swap,
    unknown_names_versions_and_aliases,
    invalid_names_are_refused,
    tampered_blob_is_detected_on_load,
    missing_blob_is_reported,
    oversized_documents_and_blobs_are_refused,
    a_version_document_that_is_not_json_is_a_document_json_error,
    delete_needs_no_alias_never_reuses_numbers_and_gc_frees_blobs,
    gc_keeps_recent_unreferenced_blobs,
    tags_metrics_search_and_lineage,
    concurrent_writers_get_distinct_versions,
    alias_cas_race_has_one_winner,
    download_writes_the_file,
    download_refuses_a_destination_that_is_not_a_regular_file,
    models_are_listed,
    open_existing_finds_a_registry_only_where_one_is,
    foreign_entries_are_reported_and_never_collected,
);

fn reg_file(
    b: &Backend,
    name: &str,
    arrays: &[Vec<u8>],
    codec: Codec,
) -> (std::path::PathBuf, Vec<u8>) {
    let bytes = skv_bytes(arrays, codec, name);
    (
        write_skv(b.scratch(), &format!("{name}.skv"), &bytes),
        bytes,
    )
}

fn register(r: &Registry, path: &std::path::Path, name: &str) -> u64 {
    r.register(path, name, &RegisterOptions::default(), &NoProgress)
        .unwrap()
        .doc
        .version
}

fn register_then_load_is_byte_identical(b: &Backend) {
    let r = b.open();
    for (i, codec) in [Codec::None, Codec::Zstd, Codec::Lz4]
        .into_iter()
        .enumerate()
    {
        let (path, bytes) = reg_file(
            b,
            &format!("m{i}"),
            &[floats(0.0, 1000), floats(5.0, 3), vec![]],
            codec,
        );
        assert_eq!(register(&r, &path, "model"), i as u64 + 1);
        let (doc, got) = r
            .fetch("model", &Selector::Version(i as u64 + 1), &NoProgress)
            .unwrap();
        assert_eq!(got, bytes, "{codec:?}");
        assert_eq!(doc.file.size, bytes.len() as u64);
        skvault_format::SkvFile::from_bytes(got)
            .unwrap()
            .verify()
            .unwrap();
    }
    // An empty array table (no blobs but the head) too.
    let (path, bytes) = reg_file(b, "empty", &[], Codec::None);
    let v = register(&r, &path, "empty");
    assert_eq!(
        r.fetch("empty", &Selector::Version(v), &NoProgress)
            .unwrap()
            .1,
        bytes
    );
}

fn second_registration_stores_no_new_blob_bytes(b: &Backend) {
    let r = b.open();
    let (path, bytes) = reg_file(
        b,
        "forest",
        &[floats(0.0, 20_000), floats(1.0, 7)],
        Codec::Zstd,
    );
    // The file's blobs: the two arrays, on their own or packed together (format 1.2).
    let file_blobs = skvault_format::SkvFile::from_bytes(bytes)
        .unwrap()
        .manifest()
        .blobs()
        .count() as u64;
    assert!(file_blobs >= 1);
    assert_eq!(register(&r, &path, "forest"), 1);
    let before = r.usage().unwrap();
    assert_eq!(before.blobs, 1 + file_blobs, "head + the file's blobs");
    assert_eq!(register(&r, &path, "forest"), 2);
    assert_eq!(register(&r, &path, "forest-copy"), 1);
    assert_eq!(r.usage().unwrap(), before);
}

fn shared_arrays_are_stored_once(b: &Backend) {
    let r = b.open();
    let big = floats(0.0, 10_000);
    let (p1, _) = reg_file(b, "a", &[big.clone(), floats(1.0, 10)], Codec::None);
    let (p2, _) = reg_file(b, "b", &[big.clone(), floats(2.0, 10)], Codec::None);
    register(&r, &p1, "m");
    let after_first = r.usage().unwrap();
    register(&r, &p2, "m");
    let after_second = r.usage().unwrap();
    // The new head and the new small array, not the big one.
    assert_eq!(after_second.blobs, after_first.blobs + 2);
    assert!(after_second.blob_bytes - after_first.blob_bytes < big.len() as u64);
}

fn versions_latest_and_archive(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "x", &[floats(0.0, 10)], Codec::None);
    for n in 1..=3 {
        assert_eq!(register(&r, &p, "m"), n);
    }
    assert_eq!(r.resolve("m", &Selector::Latest).unwrap(), 3);
    r.archive("m", 3, true).unwrap();
    assert_eq!(r.resolve("m", &Selector::Latest).unwrap(), 2);
    let listed: Vec<u64> = r
        .versions("m", false)
        .unwrap()
        .iter()
        .map(|v| v.doc.version)
        .collect();
    assert_eq!(listed, [1, 2]);
    let all = r.versions("m", true).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[2].archived);
    // Archived versions stay loadable by number; nothing was deleted.
    r.fetch("m", &Selector::Version(3), &NoProgress).unwrap();
    r.archive("m", 1, true).unwrap();
    r.archive("m", 2, true).unwrap();
    assert!(matches!(
        r.resolve("m", &Selector::Latest),
        Err(RegistryError::NoActiveVersion { .. })
    ));
    r.archive("m", 3, false).unwrap();
    assert_eq!(r.resolve("m", &Selector::Latest).unwrap(), 3);
}

fn aliases_compare_and_swap(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "x", &[floats(0.0, 10)], Codec::None);
    for _ in 0..3 {
        register(&r, &p, "m");
    }
    assert_eq!(r.set_alias("m", "champion", 1, Some(None)).unwrap(), None);
    assert_eq!(
        r.resolve("m", &Selector::Alias("champion".into())).unwrap(),
        1
    );
    // Wrong expectation: refused, alias unchanged.
    let err = r.set_alias("m", "champion", 2, Some(Some(3))).unwrap_err();
    assert!(matches!(err, RegistryError::Conflict { .. }), "{err}");
    assert!(matches!(
        r.set_alias("m", "champion", 2, Some(None)),
        Err(RegistryError::Conflict { .. })
    ));
    assert_eq!(
        r.set_alias("m", "champion", 2, Some(Some(1))).unwrap(),
        Some(1)
    );
    assert_eq!(r.set_alias("m", "champion", 3, None).unwrap(), Some(2));
    r.set_alias("m", "staging", 1, None).unwrap();
    let aliases = r.aliases("m").unwrap();
    assert_eq!(
        aliases,
        BTreeMap::from([("champion".into(), 3), ("staging".into(), 1)])
    );
    let v3 = r.version("m", &Selector::Version(3)).unwrap();
    assert_eq!(v3.aliases, ["champion"]);
    // Aliases only point at versions that exist.
    assert!(matches!(
        r.set_alias("m", "champion", 9, None),
        Err(RegistryError::VersionNotFound { version: 9, .. })
    ));
    assert_eq!(r.delete_alias("m", "staging", None).unwrap(), 1);
    assert!(matches!(
        r.resolve("m", &Selector::Alias("staging".into())),
        Err(RegistryError::AliasNotFound { .. })
    ));
    assert!(matches!(
        r.delete_alias("m", "staging", None),
        Err(RegistryError::AliasNotFound { .. })
    ));
    // A deleted alias can be created again.
    r.set_alias("m", "staging", 2, Some(None)).unwrap();
    assert_eq!(
        r.resolve("m", &Selector::Alias("staging".into())).unwrap(),
        2
    );
    // The logs keep every move, the deletion included, oldest first.
    let history = r.alias_history("m").unwrap();
    let versions =
        |alias: &str| -> Vec<Option<u64>> { history[alias].iter().map(|e| e.version).collect() };
    assert_eq!(versions("champion"), [Some(1), Some(2), Some(3)]);
    assert_eq!(versions("staging"), [Some(1), None, Some(2)]);
    assert!(history["champion"]
        .windows(2)
        .all(|w| w[0].updated_at <= w[1].updated_at));
    assert!(matches!(
        r.alias_history("nope"),
        Err(RegistryError::ModelNotFound { .. })
    ));
}

fn unknown_names_versions_and_aliases(b: &Backend) {
    let r = b.open();
    assert!(matches!(
        r.fetch("nope", &Selector::Latest, &NoProgress),
        Err(RegistryError::ModelNotFound { .. })
    ));
    assert!(matches!(
        r.versions("nope", false),
        Err(RegistryError::ModelNotFound { .. })
    ));
    assert!(matches!(
        r.fetch("nope", &Selector::Version(1), &NoProgress),
        Err(RegistryError::ModelNotFound { .. })
    ));
    let (p, _) = reg_file(b, "x", &[floats(0.0, 10)], Codec::None);
    register(&r, &p, "m");
    let e = r
        .fetch("m", &Selector::Version(7), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(e, RegistryError::VersionNotFound { version: 7, .. }),
        "{e}"
    );
    assert!(e.is_not_found());
    assert!(matches!(
        r.fetch("m", &Selector::Alias("prod".into()), &NoProgress),
        Err(RegistryError::AliasNotFound { .. })
    ));
    assert!(matches!(
        r.archive("m", 5, true),
        Err(RegistryError::VersionNotFound { .. })
    ));
}

fn invalid_names_are_refused(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "x", &[floats(0.0, 10)], Codec::None);
    for bad in ["../x", "..", "a/b", "", ".hidden", "a b", "x\n"] {
        let e = r
            .register(&p, bad, &RegisterOptions::default(), &NoProgress)
            .unwrap_err();
        assert!(
            matches!(e, RegistryError::InvalidName { .. }),
            "{bad:?}: {e}"
        );
        assert!(matches!(
            r.fetch(bad, &Selector::Latest, &NoProgress),
            Err(RegistryError::InvalidName { .. })
        ));
    }
    register(&r, &p, "m");
    for bad in ["1", "../a", "a/b"] {
        assert!(matches!(
            r.set_alias("m", bad, 1, None),
            Err(RegistryError::InvalidName { .. })
        ));
    }
    // Nothing was written outside the registry.
    assert!(!b.file_of("../x").exists());
    // Not a .skv file: refused before anything is stored.
    let junk = write_skv(b.scratch(), "junk.skv", b"not a model");
    assert!(matches!(
        r.register(&junk, "junk", &RegisterOptions::default(), &NoProgress),
        Err(RegistryError::Format { .. })
    ));
    let mut opts = RegisterOptions::default();
    opts.metrics.insert("acc".into(), f64::NAN);
    assert!(matches!(
        r.register(&p, "m", &opts, &NoProgress),
        Err(RegistryError::InvalidArgument { .. })
    ));
}

fn tampered_blob_is_detected_on_load(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "x", &[floats(0.0, 1000), floats(3.0, 1000)], Codec::None);
    register(&r, &p, "m");
    let doc = r.version("m", &Selector::Latest).unwrap().doc;
    let victim = b.file_of(&format!("blobs/{}", doc.file.blobs[1]));
    let mut data = std::fs::read(&victim).unwrap();
    data[100] ^= 1;
    std::fs::write(&victim, data).unwrap();
    let e = r.fetch("m", &Selector::Latest, &NoProgress).unwrap_err();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&doc.file.blobs[1]));
    let problems = r.check(true).unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        r.check(false).unwrap().is_empty(),
        "a shallow check sees only presence"
    );
}

fn a_version_document_that_is_not_json_is_a_document_json_error(b: &Backend) {
    use std::error::Error as _;
    let r = b.open();
    let (p, _) = reg_file(b, "x", &[floats(0.0, 10)], Codec::None);
    let version = register(&r, &p, "m");
    std::fs::write(
        b.file_of(&format!("models/m/versions/{version}.json")),
        b"{not json",
    )
    .unwrap();
    let e = r.version("m", &Selector::Version(version)).unwrap_err();
    match &e {
        RegistryError::DocumentJson { path, .. } => {
            assert!(
                path.ends_with(&format!("versions/{version}.json")),
                "{path}"
            )
        }
        e => panic!("{e:?}"),
    }
    assert!(e.to_string().contains("malformed registry document"), "{e}");
    assert!(e.source().is_some_and(|s| s.is::<serde_json::Error>()));
}

fn oversized_documents_and_blobs_are_refused(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "x", &[floats(0.0, 1000), floats(3.0, 1000)], Codec::None);
    let version = register(&r, &p, "m");
    let doc = r.version("m", &Selector::Latest).unwrap().doc;
    // A blob larger than the whole file its version records.
    let victim = b.file_of(&format!("blobs/{}", doc.file.blobs[1]));
    let size = usize::try_from(doc.file.size).unwrap();
    std::fs::write(&victim, vec![0u8; size + 1]).unwrap();
    match r.fetch("m", &Selector::Latest, &NoProgress).unwrap_err() {
        RegistryError::TooLarge { path, limit, .. } => {
            assert!(path.ends_with(&doc.file.blobs[1]), "{path}");
            assert_eq!(limit, doc.file.size);
        }
        e => panic!("{e:?}"),
    }
    // A version document over the limit (valid JSON: the document padded with spaces).
    let key = b.file_of(&format!("models/m/versions/{version}.json"));
    let mut padded = std::fs::read(&key).unwrap();
    padded.resize(
        usize::try_from(skvault_registry::MAX_DOCUMENT_BYTES).unwrap() + 1,
        b' ',
    );
    std::fs::write(&key, padded).unwrap();
    let e = r.version("m", &Selector::Version(version)).unwrap_err();
    assert!(
        matches!(&e, RegistryError::TooLarge { what, .. } if what.contains("document")),
        "{e:?}"
    );
    assert!(e.to_string().contains("over the limit"), "{e}");
}

fn missing_blob_is_reported(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "x", &[floats(0.0, 100)], Codec::None);
    register(&r, &p, "m");
    let doc = r.version("m", &Selector::Latest).unwrap().doc;
    std::fs::remove_file(b.file_of(&format!("blobs/{}", doc.file.blobs[0]))).unwrap();
    assert!(matches!(
        r.fetch("m", &Selector::Latest, &NoProgress),
        Err(RegistryError::MissingBlob { .. })
    ));
    let problems = r.check(false).unwrap();
    assert!(
        problems.len() == 1 && problems[0].contains("missing blob"),
        "{problems:?}"
    );
}

fn delete_needs_no_alias_never_reuses_numbers_and_gc_frees_blobs(b: &Backend) {
    let r = b.open();
    let shared = floats(0.0, 1000);
    let (p1, _) = reg_file(b, "a", &[shared.clone(), floats(10.0, 500)], Codec::None);
    let (p2, _) = reg_file(b, "b", &[shared.clone(), floats(20.0, 500)], Codec::None);
    register(&r, &p1, "m");
    register(&r, &p2, "m");
    let before = r.usage().unwrap();
    r.set_alias("m", "prod", 2, None).unwrap();
    assert!(matches!(
        r.delete_version("m", 2, Duration::ZERO),
        Err(RegistryError::VersionInUse { .. })
    ));
    r.delete_alias("m", "prod", None).unwrap();
    let report = r.delete_version("m", 2, Duration::ZERO).unwrap();
    // Its head and its own array go; the shared array stays for version 1.
    assert_eq!(report.deleted, 2, "{report:?}");
    assert_eq!(r.usage().unwrap().blobs, before.blobs - 2);
    assert!(matches!(
        r.fetch("m", &Selector::Version(2), &NoProgress),
        Err(RegistryError::VersionNotFound { .. })
    ));
    r.fetch("m", &Selector::Version(1), &NoProgress).unwrap();
    assert_eq!(register(&r, &p2, "m"), 3, "deleted numbers are not reused");
    assert!(r.check(true).unwrap().is_empty());
}

fn gc_keeps_recent_unreferenced_blobs(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "a", &[floats(0.0, 100)], Codec::None);
    register(&r, &p, "m");
    // An orphan, as a writer killed before its version document would leave.
    std::fs::write(b.file_of(&format!("blobs/{}", "ab".repeat(32))), b"orphan").unwrap();
    let report = r.gc(skvault_registry::DEFAULT_GC_GRACE).unwrap();
    assert_eq!(
        (report.deleted, report.kept_recent, report.referenced),
        (0, 1, 2)
    );
    let report = r.gc(Duration::ZERO).unwrap();
    assert_eq!((report.deleted, report.deleted_bytes), (1, 6));
    assert!(r.check(true).unwrap().is_empty());
}

fn tags_metrics_search_and_lineage(b: &Backend) {
    let r = b.open();
    let (p, bytes) = reg_file(b, "a", &[floats(0.0, 100)], Codec::None);
    let mut opts = RegisterOptions::default();
    opts.metrics.insert("roc_auc".into(), 0.91);
    opts.tags.insert("team".into(), "fraud".into());
    opts.lineage.insert("run".into(), "run-42".into());
    opts.metadata.insert("owner".into(), "ana".into());
    let v1 = r.register(&p, "fraud", &opts, &NoProgress).unwrap();
    assert_eq!(
        v1.doc.metrics.get("acc"),
        Some(&0.5),
        "metrics of the file are kept"
    );
    assert_eq!(
        v1.doc.lineage.source_blake3,
        blake3::hash(&bytes).to_hex().as_str()
    );
    assert_eq!(
        v1.doc.lineage.refs.get("run"),
        Some(&serde_json::json!("run-42"))
    );
    assert_eq!(v1.doc.lineage.object.as_deref(), Some("builtins.dict"));
    assert_eq!(v1.doc.lineage.environment["scikit-learn"], "1.9.1");
    opts.metrics.insert("roc_auc".into(), 0.85);
    r.register(&p, "fraud", &opts, &NoProgress).unwrap();
    opts.tags.clear();
    r.register(&p, "other", &opts, &NoProgress).unwrap();

    let q = |tags: &[(&str, Option<&str>)], metrics: &[&str]| Query {
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect(),
        metrics: metrics
            .iter()
            .map(|m| MetricFilter::parse(m).unwrap())
            .collect(),
        ..Query::default()
    };
    let found = |query: Query| -> Vec<(String, u64)> {
        r.search(&query)
            .unwrap()
            .into_iter()
            .map(|v| (v.doc.name, v.doc.version))
            .collect()
    };
    assert_eq!(
        found(q(&[("team", Some("fraud"))], &[])),
        [("fraud".into(), 1), ("fraud".into(), 2)]
    );
    assert_eq!(
        found(q(&[("team", None)], &["roc_auc>0.9"])),
        [("fraud".into(), 1)]
    );
    assert_eq!(
        found(q(&[], &["roc_auc<0.9"])),
        [("fraud".into(), 2), ("other".into(), 1)]
    );
    // Tags change after registration; the version document itself stays as it was.
    let tags = r
        .tag(
            "fraud",
            2,
            &BTreeMap::from([("stage".into(), "canary".into())]),
            &["team".into()],
        )
        .unwrap();
    assert_eq!(tags, BTreeMap::from([("stage".into(), "canary".into())]));
    assert_eq!(
        found(q(&[("team", Some("fraud"))], &[])),
        [("fraud".into(), 1)]
    );
    assert_eq!(found(q(&[("stage", None)], &[])), [("fraud".into(), 2)]);
    r.archive("fraud", 1, true).unwrap();
    assert!(found(q(&[("team", Some("fraud"))], &[])).is_empty());
    let mut with_archived = q(&[("team", Some("fraud"))], &[]);
    with_archived.include_archived = true;
    assert_eq!(found(with_archived), [("fraud".into(), 1)]);
}

fn concurrent_writers_get_distinct_versions(b: &Backend) {
    const WRITERS: usize = 8;
    let uri = b.uri();
    let options = match b {
        Backend::S3(s) => s.options(),
        Backend::Folder(_) => Vec::new(),
    };
    let files: Vec<_> = (0..WRITERS)
        .map(|i| {
            reg_file(
                b,
                &format!("w{i}"),
                &[floats(i as f64, 50), floats(0.0, 500)],
                Codec::None,
            )
            .0
        })
        .collect();
    for round in 0..2 {
        let barrier = Arc::new(Barrier::new(WRITERS));
        let handles: Vec<_> = files
            .iter()
            .cloned()
            .map(|path| {
                let (uri, options, barrier) = (uri.clone(), options.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let r = Registry::open_with_options(&uri, &options).unwrap();
                    barrier.wait();
                    let mut opts = RegisterOptions::default();
                    opts.lineage
                        .insert("file".into(), path.display().to_string().into());
                    r.register(&path, "race", &opts, &NoProgress)
                        .unwrap()
                        .doc
                        .version
                })
            })
            .collect();
        let mut got: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        got.sort_unstable();
        let base = (round * WRITERS) as u64;
        assert_eq!(got, (base + 1..=base + WRITERS as u64).collect::<Vec<_>>());
    }
    // Every writer's document survived, none overwritten by another.
    let r = b.open();
    let versions = r.versions("race", false).unwrap();
    assert_eq!(versions.len(), 2 * WRITERS);
    for v in &versions {
        let own = v.doc.lineage.refs["file"].as_str().unwrap();
        assert_eq!(v.doc.lineage.source_path.as_deref(), Some(own));
    }
    assert!(r.check(true).unwrap().is_empty());
}

fn alias_cas_race_has_one_winner(b: &Backend) {
    const RACERS: u64 = 8;
    let r = b.open();
    let (p, _) = reg_file(b, "x", &[floats(0.0, 10)], Codec::None);
    for _ in 0..=RACERS {
        register(&r, &p, "m");
    }
    r.set_alias("m", "champion", 1, None).unwrap();
    let options = match b {
        Backend::S3(s) => s.options(),
        Backend::Folder(_) => Vec::new(),
    };
    for round in 0..3 {
        let current = r.resolve("m", &Selector::Alias("champion".into())).unwrap();
        // Every racer moves the alias away from `current`, so one success excludes the others.
        let targets: Vec<u64> = (1..=RACERS + 1).filter(|v| *v != current).collect();
        let barrier = Arc::new(Barrier::new(RACERS as usize));
        let handles: Vec<_> = targets
            .into_iter()
            .map(|target| {
                let (uri, options, barrier) = (b.uri(), options.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let r = Registry::open_with_options(&uri, &options).unwrap();
                    barrier.wait();
                    match r.set_alias("m", "champion", target, Some(Some(current))) {
                        Ok(_) => Some(target),
                        Err(RegistryError::Conflict { .. }) => None,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        let winners: Vec<u64> = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(
            r.resolve("m", &Selector::Alias("champion".into())).unwrap(),
            winners[0]
        );
    }
}

fn download_writes_the_file(b: &Backend) {
    let r = b.open();
    let (p, bytes) = reg_file(b, "a", &[floats(0.0, 100)], Codec::Zstd);
    register(&r, &p, "m");
    let dest = b.scratch().join("out.skv");
    r.download("m", &Selector::Latest, &dest, &NoProgress)
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
}

fn models_are_listed(b: &Backend) {
    let r = b.open();
    assert!(r.models().unwrap().is_empty());
    let (p, _) = reg_file(b, "a", &[floats(0.0, 10)], Codec::None);
    for name in ["zeta", "alpha", "m-1"] {
        register(&r, &p, name);
    }
    assert_eq!(r.models().unwrap(), ["alpha", "m-1", "zeta"]);
    // A model whose only version is deleted is no longer listed.
    r.delete_version("alpha", 1, Duration::ZERO).unwrap();
    assert_eq!(r.models().unwrap(), ["m-1", "zeta"]);
}

fn open_existing_finds_a_registry_only_where_one_is(b: &Backend) {
    let options = match b {
        Backend::S3(s) => s.options(),
        Backend::Folder(_) => Vec::new(),
    };
    let existing = || Registry::open_existing_with_options(&b.uri(), &options).unwrap();
    assert!(existing().is_none());
    if let Backend::Folder(_) = b {
        assert!(
            !std::path::Path::new(&b.uri()).exists(),
            "nothing is created"
        );
    }
    // Opening for writing alone (an empty folder on disk) does not make a registry.
    let r = b.open();
    assert!(existing().is_none());
    let (p, _) = reg_file(b, "a", &[floats(0.0, 10)], Codec::None);
    register(&r, &p, "m");
    let found = existing().expect("a registry after one registration");
    assert_eq!(found.models().unwrap(), ["m"]);
    // Deleting every version keeps the tombstones: still a registry.
    r.delete_version("m", 1, Duration::ZERO).unwrap();
    r.gc(Duration::ZERO).unwrap();
    assert!(existing().is_some());
}

fn download_refuses_a_destination_that_is_not_a_regular_file(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "a", &[floats(0.0, 10)], Codec::None);
    register(&r, &p, "m");
    let dir = b.scratch().join("a-folder");
    std::fs::create_dir(&dir).unwrap();
    match r.download("m", &Selector::Latest, &dir, &NoProgress) {
        Err(RegistryError::Io { path, source }) => {
            assert_eq!(path, dir.display().to_string());
            let refused = skvault_format::atomic::RefusedDestination::of(&source);
            assert_eq!(
                refused.map(|r| r.kind),
                Some(skvault_format::atomic::DestinationKind::Directory)
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(dir.is_dir());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// Files the registry never writes (wrong names under blobs/, strays in the layout) are
/// listed by `check` and left alone by `gc`, on every backend.
fn foreign_entries_are_reported_and_never_collected(b: &Backend) {
    let r = b.open();
    let (p, _) = reg_file(b, "a", &[floats(0.0, 10)], Codec::None);
    register(&r, &p, "m");
    assert!(r.check(false).unwrap().is_empty());
    let strays = ["blobs/not-a-digest", "stray.txt", "models/m/notes.txt"];
    for key in strays {
        std::fs::write(b.file_of(key), b"not the registry's").unwrap();
    }
    let report = r.gc(Duration::ZERO).unwrap();
    assert_eq!((report.deleted, report.foreign), (0, 1), "{report:?}");
    assert_eq!(r.usage().unwrap().blobs, 2, "strays are not blobs");
    let problems = r.check(true).unwrap();
    for key in strays {
        assert!(b.file_of(key).is_file(), "{key} was deleted");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("{key}: foreign entry"))),
            "{key} not reported: {problems:?}"
        );
    }
    assert_eq!(problems.len(), strays.len(), "{problems:?}");
}

/// Links only exist in folders: these run on the folder backend alone.
mod folder_links {
    use super::*;

    /// A folder outside the registry with files gc must never touch.
    fn victim(b: &Backend) -> std::path::PathBuf {
        let dir = b.scratch().join("victim");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("precious.txt"), b"keep me").unwrap();
        std::fs::write(dir.join("cd".repeat(32)), b"keep me too").unwrap();
        dir
    }

    fn assert_untouched(dir: &std::path::Path) {
        assert_eq!(std::fs::read(dir.join("precious.txt")).unwrap(), b"keep me");
        assert_eq!(
            std::fs::read(dir.join("cd".repeat(32))).unwrap(),
            b"keep me too"
        );
    }

    fn is_link(path: &std::path::Path) -> bool {
        std::fs::symlink_metadata(path)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
    }

    #[test]
    fn gc_never_follows_links_planted_under_blobs() {
        let b = Backend::folder();
        let r = b.open();
        let (p, _) = reg_file(&b, "a", &[floats(0.0, 10)], Codec::None);
        register(&r, &p, "m");
        let victim = victim(&b);
        let into_dir = b.file_of("blobs/evil");
        let as_blob = b.file_of(&format!("blobs/{}", "ef".repeat(32)));
        std::os::unix::fs::symlink(&victim, &into_dir).unwrap();
        std::os::unix::fs::symlink(victim.join("precious.txt"), &as_blob).unwrap();

        let report = r.gc(Duration::ZERO).unwrap();
        assert_eq!((report.deleted, report.foreign), (0, 2), "{report:?}");
        assert_untouched(&victim);
        assert!(is_link(&into_dir) && is_link(&as_blob));

        let problems = r.check(false).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems
            .iter()
            .all(|p| p.contains("foreign entry: a symbolic link")));
        // The registry itself still works.
        r.fetch("m", &Selector::Latest, &NoProgress).unwrap();
    }

    #[test]
    fn gc_never_deletes_through_a_linked_blobs_folder() {
        let b = Backend::folder();
        let r = b.open();
        let victim = victim(&b);
        std::os::unix::fs::symlink(&victim, b.file_of("blobs")).unwrap();
        let report = r.gc(Duration::ZERO).unwrap();
        assert_eq!((report.deleted, report.foreign), (0, 2), "{report:?}");
        assert_untouched(&victim);
        let problems = r.check(false).unwrap();
        assert!(
            problems.len() == 1 && problems[0].starts_with("blobs: foreign entry: a symbolic link"),
            "{problems:?}"
        );
    }

    #[test]
    fn deleting_a_version_never_follows_a_linked_state_log() {
        let b = Backend::folder();
        let r = b.open();
        let (p, _) = reg_file(&b, "a", &[floats(0.0, 10)], Codec::None);
        register(&r, &p, "m");
        register(&r, &p, "m");
        let victim = victim(&b);
        std::fs::write(victim.join("00000000000000000000.json"), b"{}").unwrap();
        std::fs::create_dir_all(b.file_of("models/m/state")).unwrap();
        std::os::unix::fs::symlink(&victim, b.file_of("models/m/state/1")).unwrap();
        r.delete_version("m", 1, Duration::ZERO).unwrap();
        assert_untouched(&victim);
        assert!(victim.join("00000000000000000000.json").is_file());
        let problems = r.check(false).unwrap();
        assert!(
            problems.len() == 1 && problems[0].starts_with("models/m/state/1: foreign entry"),
            "{problems:?}"
        );
    }

    /// object_store stages `<key>#<n>` files, and a killed writer leaves them behind. `check`
    /// tolerates them and `gc` leaves them, above all the blob whose name they start with.
    #[test]
    fn a_staged_upload_never_makes_gc_delete_its_blob() {
        let b = Backend::folder();
        let r = b.open();
        let (p, _) = reg_file(&b, "a", &[floats(0.0, 10)], Codec::None);
        register(&r, &p, "m");
        let doc = r.version("m", &Selector::Latest).unwrap().doc;
        let blob = b.file_of(&format!("blobs/{}", doc.file.blobs[0]));
        let staged = b.file_of(&format!("blobs/{}#1", doc.file.blobs[0]));
        std::fs::write(&staged, b"partial").unwrap();
        assert!(r.check(false).unwrap().is_empty());
        let report = r.gc(Duration::ZERO).unwrap();
        assert_eq!((report.deleted, report.foreign), (0, 0), "{report:?}");
        assert!(blob.is_file() && staged.is_file());
        assert_eq!(r.usage().unwrap().blobs, 2);
        r.fetch("m", &Selector::Latest, &NoProgress).unwrap();
    }

    #[test]
    fn a_file_or_device_is_not_a_registry_folder() {
        let b = Backend::folder();
        let file = b.scratch().join("not-a-folder");
        std::fs::write(&file, b"x").unwrap();
        for path in [file.as_path(), std::path::Path::new("/dev/null")] {
            match Registry::open(&path.display().to_string()) {
                Err(e @ RegistryError::InvalidUri { .. }) => {
                    assert!(e.to_string().contains("not a registry folder"), "{e}");
                }
                Err(other) => panic!("{}: unexpected error {other:?}", path.display()),
                Ok(_) => panic!("{}: opened as a registry", path.display()),
            }
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }
}
