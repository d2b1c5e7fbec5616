//! `skvault registry ...`: `--json` on every subcommand, `--version N` everywhere (and the
//! deprecated positional form), `show --arrays`, and no silent registry creation, on a
//! folder and on a real S3 server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{model, s, skvault, skvault_env, Run};
use serde_json::json;
use skvault_format::SkvFile;
use skvault_registry::testing::S3Server;
use skvault_registry::{Registry, Selector};

/// `skvault registry --uri URI ARGS...`
fn reg(dir: &Path, uri: &str, args: &[&str]) -> Run {
    let mut all = vec!["registry", "--uri", uri];
    all.extend_from_slice(args);
    skvault(dir, &all)
}

#[test]
fn every_registry_report_has_json_matching_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let file = model(dir.path(), "m.skv");
    let uri = dir.path().join("reg");
    let uri = s(&uri);
    let r = reg(
        dir.path(),
        uri,
        &["register", s(&file), "m", "--json", "--metric", "acc=0.5"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let doc = r.json();
    let registry = Registry::open(uri).unwrap();
    let stored = registry.version("m", &Selector::Latest).unwrap();
    assert_eq!(doc["version"], json!(stored.doc.version));
    assert_eq!(
        doc["file"]["size"],
        json!(std::fs::metadata(&file).unwrap().len())
    );
    assert_eq!(doc["file"]["blake3"], json!(stored.doc.file.blake3));
    assert_eq!(doc["metrics"], json!({"acc": 0.5}));
    assert!(doc["file"].get("blobs").is_none(), "{doc}");
    // The text form is unchanged: the version number alone.
    assert_eq!(
        reg(dir.path(), uri, &["register", s(&file), "m"]).out,
        "2\n"
    );

    assert_eq!(
        reg(dir.path(), uri, &["models", "--json"]).json(),
        json!(registry.models().unwrap())
    );
    assert_eq!(reg(dir.path(), uri, &["models"]).out, "m\n");

    let r = reg(
        dir.path(),
        uri,
        &["set-alias", "m", "champion", "--version", "1", "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.json(),
        json!({"name": "m", "alias": "champion", "version": 1, "previous": null})
    );
    assert_eq!(
        reg(dir.path(), uri, &["aliases", "m", "--json"]).json(),
        json!(registry.aliases("m").unwrap())
    );
    assert_eq!(reg(dir.path(), uri, &["aliases", "m"]).out, "champion\t1\n");

    let out = dir.path().join("got.skv");
    let r = reg(
        dir.path(),
        uri,
        &["get", "m", "--alias", "champion", "-o", s(&out), "--json"],
    );
    assert_eq!(
        r.json(),
        json!({"name": "m", "version": 1, "output": s(&out)})
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());

    let r = reg(
        dir.path(),
        uri,
        &["archive", "m", "--version", "2", "--json"],
    );
    assert_eq!(
        r.json(),
        json!({"name": "m", "version": 2, "archived": true})
    );
    assert!(registry.versions("m", true).unwrap()[1].archived);

    let r = reg(dir.path(), uri, &["check", "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.json(),
        json!({"uri": uri, "deep": false, "ok": true, "problems": []})
    );

    // A problem: a verdict, exit 1, listed in the JSON as `Registry::check` lists it.
    let foreign = dir.path().join("reg").join("blobs").join("stray.txt");
    std::fs::write(&foreign, "not a blob").unwrap();
    let r = reg(dir.path(), uri, &["check", "--json"]);
    assert_eq!(r.code, 1, "{}", r.err);
    let problems = registry.check(false).unwrap();
    assert!(!problems.is_empty());
    assert_eq!(
        r.json(),
        json!({"uri": uri, "deep": false, "ok": false, "problems": problems})
    );
    std::fs::remove_file(&foreign).unwrap();

    let r = reg(
        dir.path(),
        uri,
        &["delete-alias", "m", "champion", "--json"],
    );
    assert_eq!(
        r.json(),
        json!({"name": "m", "alias": "champion", "previous": 1})
    );

    // Reports that are JSON documents anyway take --json too, and print the same.
    for args in [["gc", "--json"], ["gc", "--grace-seconds=0"]] {
        let r = reg(dir.path(), uri, &args);
        assert_eq!(
            r.json()["referenced"],
            json!(registry.usage().unwrap().blobs)
        );
    }
}

#[test]
fn show_lists_the_array_digests_only_with_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let file = model(dir.path(), "m.skv");
    let uri = dir.path().join("reg");
    let uri = s(&uri);
    assert_eq!(reg(dir.path(), uri, &["register", s(&file), "m"]).code, 0);
    let info = Registry::open(uri)
        .unwrap()
        .version("m", &Selector::Latest)
        .unwrap();
    let arrays = SkvFile::open(&file).unwrap().manifest().arrays.len();
    assert_eq!(info.doc.file.blobs.len(), arrays);

    let short = reg(dir.path(), uri, &["show", "m"]).json();
    assert!(short["file"].get("blobs").is_none(), "{short}");
    assert_eq!(short["file"]["head"], json!(info.doc.file.head));
    let long = reg(dir.path(), uri, &["show", "m", "--arrays"]).json();
    assert_eq!(long, serde_json::to_value(&info).unwrap());
    assert_eq!(reg(dir.path(), uri, &["show", "m", "--json"]).json(), short);
}

#[test]
fn version_is_taken_with_version_n_and_the_old_positional_form_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let file = model(dir.path(), "m.skv");
    let uri = dir.path().join("reg");
    let uri = s(&uri);
    for _ in 0..3 {
        assert_eq!(reg(dir.path(), uri, &["register", s(&file), "m"]).code, 0);
    }
    let registry = Registry::open(uri).unwrap();
    let deprecated = "positional version number is deprecated";

    let r = reg(dir.path(), uri, &["set-alias", "m", "a", "--version", "2"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!r.err.contains(deprecated));
    let r = reg(dir.path(), uri, &["set-alias", "m", "b", "3"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains(deprecated), "{}", r.err);
    let aliases = registry.aliases("m").unwrap();
    assert_eq!((aliases["a"], aliases["b"]), (2, 3));

    let r = reg(
        dir.path(),
        uri,
        &["tag", "m", "--version", "1", "team=x", "stage=dev"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.json(), json!({"stage": "dev", "team": "x"}));
    let r = reg(dir.path(), uri, &["tag", "m", "2", "team=y"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains(deprecated), "{}", r.err);
    let tags = |n: u64| {
        registry
            .version("m", &Selector::Version(n))
            .unwrap()
            .doc
            .tags
    };
    assert_eq!(tags(1).get("team").map(String::as_str), Some("x"));
    assert_eq!(tags(2).get("team").map(String::as_str), Some("y"));
    let r = reg(
        dir.path(),
        uri,
        &["tag", "m", "--version", "1", "--remove", "stage"],
    );
    assert_eq!(r.json(), json!({"team": "x"}));

    assert_eq!(
        reg(dir.path(), uri, &["archive", "m", "--version", "1"]).code,
        0
    );
    let r = reg(dir.path(), uri, &["archive", "m", "1", "--undo"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains(deprecated));
    assert!(!registry.versions("m", true).unwrap()[0].archived);

    let r = reg(dir.path(), uri, &["delete", "m", "--version", "1", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let r = reg(dir.path(), uri, &["set-alias", "m", "b", "--version", "2"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let r = reg(dir.path(), uri, &["delete", "m", "3", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains(deprecated));
    let left: Vec<u64> = registry
        .versions("m", true)
        .unwrap()
        .iter()
        .map(|v| v.doc.version)
        .collect();
    assert_eq!(left, [2]);

    // Neither form, or both: a usage error, exit 2, the registry untouched.
    for args in [
        vec!["set-alias", "m", "c"],
        vec!["set-alias", "m", "c", "2", "--version", "2"],
        vec!["tag", "m", "team=z"],
        vec!["archive", "m"],
        vec!["delete", "m", "--yes"],
    ] {
        let r = reg(dir.path(), uri, &args);
        assert_eq!((r.code, r.out.as_str()), (2, ""), "{args:?}");
        assert!(r.err.contains("--version N"), "{args:?}: {}", r.err);
    }
    assert!(!registry.aliases("m").unwrap().contains_key("c"));
}

/// Every command but `register` on URIs with no registry: a clear error, exit 2, nothing
/// created. Then `register` creates it and says where.
fn no_registry_then_create(dir: &Path, uri: &str, env: &[(String, String)], file: &Path) {
    let run = |args: &[&str]| {
        let mut all = vec!["registry", "--uri", uri];
        all.extend_from_slice(args);
        skvault_env(dir, &all, env)
    };
    let out = dir.join("x.skv");
    for args in [
        vec!["models"],
        vec!["models", "--json"],
        vec!["versions", "m"],
        vec!["search", "--tag", "team"],
        vec!["aliases", "m"],
        vec!["show", "m"],
        vec!["get", "m", "-o", s(&out)],
        vec!["check"],
        vec!["gc"],
        vec!["set-alias", "m", "a", "--version", "1"],
        vec!["tag", "m", "--version", "1", "k=v"],
        vec!["archive", "m", "--version", "1"],
        vec!["delete", "m", "--version", "1", "--yes"],
    ] {
        let r = run(&args);
        assert_eq!((r.code, r.out.as_str()), (2, ""), "{args:?}: {}", r.err);
        assert!(
            r.err.contains(&format!("no registry at {uri}")) && r.err.contains("register"),
            "{args:?}: {}",
            r.err
        );
    }
    // A register that cannot succeed (bad name, missing file) creates nothing either.
    for args in [
        vec!["register", s(file), "../m"],
        vec!["register", "missing.skv", "m"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(!r.err.contains("creating"), "{args:?}: {}", r.err);
    }
    assert!(run(&["models"]).err.contains("no registry at"));
    let r = run(&["register", s(file), "m"]);
    assert_eq!((r.code, r.out.as_str()), (0, "1\n"), "{}", r.err);
    assert!(r.err.contains("creating a new registry at"), "{}", r.err);
    let r = run(&["models"]);
    assert_eq!((r.code, r.out.as_str()), (0, "m\n"), "{}", r.err);
    let r = run(&["register", s(file), "m"]);
    assert!(!r.err.contains("creating"), "{}", r.err);
}

#[test]
fn a_folder_without_a_registry_is_reported_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = model(dir.path(), "m.skv");
    let missing = dir.path().join("typo");
    no_registry_then_create(dir.path(), s(&missing), &[], &file);
    assert!(missing.join("models").is_dir());

    // An existing folder that holds something else is not a registry either.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "hello").unwrap();
    let r = reg(dir.path(), s(&other), &["models"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("no registry at"), "{}", r.err);

    // The default ./skvault-registry, in the working directory.
    let r = skvault(dir.path(), &["registry", "models"]);
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("no registry at ./skvault-registry"),
        "{}",
        r.err
    );
    assert!(!dir.path().join("skvault-registry").exists());
}

#[test]
fn an_s3_prefix_without_a_registry_is_reported_not_created() {
    let server = S3Server::start().unwrap_or_else(|e| panic!("the S3 backend is required: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let file = model(dir.path(), "m.skv");
    let uri = server.uri("team/models");
    no_registry_then_create(dir.path(), &uri, &server.env(), &file);
    // A sibling prefix stays empty: the bucket holding a registry does not make one.
    let r = skvault_env(
        dir.path(),
        &["registry", "--uri", &server.uri("team/other"), "models"],
        &server.env(),
    );
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("no registry at"), "{}", r.err);
}
