//! Snapshots of what the `skvault` binary prints: every subcommand's `--help`, a summary of
//! each command's output and its errors, so that a change of wording is a reviewed change
//! (`cargo insta review`, or `INSTA_UPDATE=always cargo test -p skvault-cli` and read the
//! diff). The snapshots live in `tests/snapshots/`; CI runs with `INSTA_UPDATE=no`, so a
//! changed or missing snapshot fails instead of being written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::{model, rows_csv, skvault, small_pickle, tree_model, Run};
use serde_json::json;

/// Commands run in a temporary folder with relative paths, so that outputs name files as
/// typed; what still differs between runs (the folder itself, times, writer ids) is
/// replaced by a placeholder.
fn settings(dir: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let canonical = std::fs::canonicalize(dir).unwrap();
    for p in [canonical.as_path(), dir] {
        let escaped: String = p
            .display()
            .to_string()
            .chars()
            .flat_map(|c| {
                let meta = !c.is_alphanumeric() && c != '/' && c != '_' && c != '-';
                meta.then_some('\\').into_iter().chain([c])
            })
            .collect();
        settings.add_filter(&escaped, "[TMP]");
    }
    settings.add_filter(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
        "[TIME]",
    );
    settings.add_filter(r#""writer_id": "[^"]*""#, r#""writer_id": "[WRITER]""#);
    // Files record the writer's version, so their digests change with each release.
    settings.add_filter(r"skvault \d+\.\d+\.\d+\S*", "skvault [VERSION]");
    settings.add_filter(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{16}\b", "[DIGEST]");
    settings
}

/// Runs each command and writes `$ skvault ARGS`, the exit code, stdout and stderr.
fn transcript(dir: &Path, commands: &[&[&str]]) -> String {
    let mut text = String::new();
    for args in commands {
        let Run { code, out, err, .. } = skvault(dir, args);
        let _ = writeln!(text, "$ skvault {}\n[exit {code}]", args.join(" "));
        if !out.is_empty() {
            let _ = write!(text, "[stdout]\n{out}");
        }
        if !err.is_empty() {
            let _ = write!(text, "[stderr]\n{err}");
        }
        text.push('\n');
    }
    text
}

/// The subcommands listed in the "Commands:" section of a help text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A name is indented by two spaces; deeper lines continue a wrapped description.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_of_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let _guard = settings(dir.path()).bind_to_scope();
    // Walks the command tree from the top, so that a new subcommand gets a snapshot too.
    let mut pending: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let run = skvault(dir.path(), &args);
        assert_eq!((run.code, run.err.as_str()), (0, ""), "{args:?}");
        for sub in subcommands(&run.out) {
            let mut next = path.clone();
            next.push(sub);
            pending.push(next);
        }
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", path.join("_"))
        };
        insta::assert_snapshot!(name, run.out);
        seen += 1;
    }
    assert!(seen > 20, "only {seen} help texts found");
}

#[test]
fn summaries_of_the_file_commands() {
    let dir = tempfile::tempdir().unwrap();
    let _guard = settings(dir.path()).bind_to_scope();
    model(dir.path(), "m.skv");
    tree_model(
        &dir.path().join("m2.skv"),
        [1.0, 2.0, 4.0],
        json!({"max_depth": 3, "random_state": 0}),
    );
    small_pickle(&dir.path().join("d.pkl"));
    rows_csv(dir.path());
    let text = transcript(
        dir.path(),
        &[
            &["inspect", "m.skv"],
            &["inspect", "--params", "m.skv"],
            &["verify", "m.skv"],
            &["verify", "--json", "m.skv"],
            &["diff", "m.skv", "m2.skv"],
            &["diff", "m.skv", "m.skv"],
            &["scan", "d.pkl"],
            &["convert", "d.pkl", "d.skv"],
            &["export", "m.skv", "m.json"],
            &["import", "m.json", "back.skv"],
            &["predict", "m.skv", "rows.csv", "-o", "-"],
            &["predict", "m.skv", "rows.csv", "-o", "y.npy"],
        ],
    );
    insta::assert_snapshot!("summaries_files", text);
}

#[test]
fn summaries_of_the_registry_commands() {
    let dir = tempfile::tempdir().unwrap();
    let _guard = settings(dir.path()).bind_to_scope();
    model(dir.path(), "m.skv");
    let r = |args: &[&'static str]| -> Vec<&'static str> {
        let mut all = vec!["registry", "--uri", "reg"];
        all.extend_from_slice(args);
        all
    };
    let commands = [
        r(&[
            "register",
            "m.skv",
            "fraud",
            "--metric",
            "auc=0.9",
            "--tag",
            "team=risk",
        ]),
        r(&["register", "m.skv", "fraud", "--json"]),
        r(&["models"]),
        r(&["versions", "fraud"]),
        r(&["set-alias", "fraud", "champion", "--version", "1"]),
        r(&["aliases", "fraud"]),
        r(&["show", "fraud", "--alias", "champion"]),
        r(&["search", "--metric", "auc>=0.5"]),
        r(&["tag", "fraud", "--version", "2", "stage=dev"]),
        r(&["get", "fraud", "--alias", "champion", "-o", "got.skv"]),
        r(&["archive", "fraud", "--version", "2"]),
        r(&["archive", "fraud", "2", "--undo"]),
        r(&["delete-alias", "fraud", "champion"]),
        r(&[
            "delete",
            "fraud",
            "--version",
            "2",
            "--yes",
            "--grace-seconds",
            "0",
        ]),
        r(&["check"]),
    ];
    let commands: Vec<&[&str]> = commands.iter().map(Vec::as_slice).collect();
    insta::assert_snapshot!("summaries_registry", transcript(dir.path(), &commands));
}

#[test]
fn errors() {
    let dir = tempfile::tempdir().unwrap();
    let _guard = settings(dir.path()).bind_to_scope();
    model(dir.path(), "m.skv");
    rows_csv(dir.path());
    std::fs::write(dir.path().join("text.txt"), "not a model\n").unwrap();
    let text = transcript(
        dir.path(),
        &[
            &["inspect", "missing.skv"],
            &["inspect", "text.txt"],
            &["verify", "missing.skv"],
            &["diff", "m.skv", "missing.skv"],
            &["scan", "text.txt"],
            &["convert", "text.txt", "out.skv"],
            &["convert", "m.skv", "m.skv"],
            &["export", "m.skv", "m.onnx", "--format", "xml"],
            &["predict", "m.skv", "rows.csv", "-o", "y.txt"],
            &[
                "predict",
                "m.skv",
                "rows.csv",
                "-o",
                "-",
                "--method",
                "transform",
            ],
            &["registry", "--uri", "nowhere", "models"],
            &["registry", "--uri", "nowhere", "show", "fraud"],
            &["registry", "--uri", "reg", "register", "m.skv", "../bad"],
            &[
                "registry",
                "--uri",
                "reg",
                "register",
                "missing.skv",
                "fraud",
            ],
            &["registry", "--uri", "reg", "register", "m.skv", "fraud"],
            &[
                "registry",
                "--uri",
                "reg",
                "delete",
                "fraud",
                "--version",
                "1",
            ],
            &["registry", "--uri", "reg", "archive", "fraud"],
            &[
                "registry",
                "--uri",
                "reg",
                "show",
                "fraud",
                "--version",
                "7",
            ],
            &["registry", "--uri", "s3://", "models"],
            &["frobnicate"],
        ],
    );
    insta::assert_snapshot!("errors", text);
}
