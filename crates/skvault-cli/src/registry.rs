//! `skvault registry ...`: the model registry from the command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use skvault_registry::{
    MetricFilter, Progress, Query, RegisterOptions, Registry, RegistryError, Selector, VersionInfo,
};

use crate::CliError;

#[derive(Args)]
pub struct RegistryArgs {
    /// The registry: a folder, file:///abs/dir or s3://bucket/prefix (S3 settings from the
    /// AWS_* environment). Default: $SKVAULT_REGISTRY, else ./skvault-registry.
    #[arg(long, global = true)]
    uri: Option<String>,
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Args)]
struct Which {
    name: String,
    /// A version number (default: the latest version that is not archived).
    #[arg(long, conflicts_with = "alias")]
    version: Option<u64>,
    /// An alias, e.g. champion.
    #[arg(long)]
    alias: Option<String>,
}

impl Which {
    fn selector(&self) -> Selector {
        match (&self.version, &self.alias) {
            (Some(n), _) => Selector::Version(*n),
            (None, Some(a)) => Selector::Alias(a.clone()),
            (None, None) => Selector::Latest,
        }
    }
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Register a .skv file as the next version of NAME; prints the version number.
    Register {
        file: PathBuf,
        name: String,
        /// A JSON object of free-form fields.
        #[arg(long)]
        metadata: Option<String>,
        /// A metric, NAME=NUMBER (repeatable).
        #[arg(long = "metric", value_name = "NAME=NUMBER")]
        metrics: Vec<String>,
        /// A tag, KEY=VALUE (repeatable).
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// A lineage reference, KEY=VALUE, e.g. run=42 or data=s3://bucket/train.parquet.
        #[arg(long = "lineage", value_name = "KEY=VALUE")]
        lineage: Vec<String>,
    },
    /// Write a version's .skv file (byte-identical to the registered one) to OUTPUT.
    Get {
        #[command(flatten)]
        which: Which,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Export a version to ONNX or portable JSON (see `skvault export`).
    Export {
        #[command(flatten)]
        which: Which,
        /// The output file.
        #[arg(short, long)]
        output: PathBuf,
        /// onnx or json (default: json for a .json output, else onnx).
        #[arg(long, value_enum)]
        format: Option<crate::export::Format>,
    },
    /// Show one version's document as JSON.
    Show {
        #[command(flatten)]
        which: Which,
    },
    /// List the models.
    Models,
    /// List the versions of a model.
    Versions {
        name: String,
        /// Include archived versions.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Find versions by tags and metrics, e.g. --tag team=fraud --metric 'roc_auc>=0.9'.
    Search {
        /// Only this model.
        #[arg(long)]
        name: Option<String>,
        /// KEY=VALUE, or KEY alone for any value (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// NAME OP NUMBER with OP in < <= = != >= > (repeatable).
        #[arg(long = "metric")]
        metrics: Vec<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// List a model's aliases.
    Aliases { name: String },
    /// Point ALIAS at VERSION (atomically; with --expect only if it points at that now).
    SetAlias {
        name: String,
        alias: String,
        version: u64,
        /// Compare-and-swap: the version the alias must point at now, or "none".
        #[arg(long)]
        expect: Option<String>,
    },
    /// Remove an alias.
    DeleteAlias { name: String, alias: String },
    /// Set (KEY=VALUE) and remove (--remove KEY) tags of a version.
    Tag {
        name: String,
        version: u64,
        set: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
    /// Hide a version from listings and from "latest" (--undo shows it again). Deletes nothing.
    Archive {
        name: String,
        version: u64,
        #[arg(long)]
        undo: bool,
    },
    /// Delete a version for good (needs --yes), then collect its unshared blobs.
    Delete {
        name: String,
        version: u64,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
        /// Keep unreferenced blobs written within this many seconds (see `skvault docs registry`).
        #[arg(long, default_value_t = skvault_registry::DEFAULT_GC_GRACE.as_secs())]
        grace_seconds: u64,
    },
    /// Delete blobs that no version uses.
    Gc {
        /// Keep unreferenced blobs written within this many seconds (see `skvault docs registry`).
        #[arg(long, default_value_t = skvault_registry::DEFAULT_GC_GRACE.as_secs())]
        grace_seconds: u64,
    },
    /// Check that every version's blobs exist (--deep: and match their digests).
    Check {
        #[arg(long)]
        deep: bool,
    },
}

/// An indicatif bar on stderr (hidden when stderr is not a terminal).
struct Bar(indicatif::ProgressBar);

impl Bar {
    fn new() -> Bar {
        Bar(indicatif::ProgressBar::hidden())
    }
}

impl Progress for Bar {
    fn begin(&self, what: &str, total: u64) {
        self.0
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        self.0.set_length(total);
        self.0.set_position(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ) {
            self.0.set_style(style.progress_chars("=> "));
        }
        self.0.set_message(what.to_string());
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn end(&self) {
        self.0.finish_and_clear();
    }
}

fn pair(text: &str, what: &str) -> Result<(String, String), RegistryError> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| RegistryError::InvalidArgument {
            message: format!("{what} {text:?} is not KEY=VALUE"),
        })
}

fn invalid(message: String) -> RegistryError {
    RegistryError::InvalidArgument { message }
}

fn summary(v: &VersionInfo) -> String {
    let metrics: Vec<String> = v
        .doc
        .metrics
        .iter()
        .map(|(k, x)| format!("{k}={x}"))
        .collect();
    let tags: Vec<String> = v.doc.tags.iter().map(|(k, x)| format!("{k}={x}")).collect();
    let mut line = format!(
        "{}  v{}  {}  {} bytes",
        v.doc.name, v.doc.version, v.doc.created_at, v.doc.file.size
    );
    for (label, items) in [
        ("aliases", v.aliases.clone()),
        ("metrics", metrics),
        ("tags", tags),
    ] {
        if !items.is_empty() {
            line.push_str(&format!("  {label}: {}", items.join(",")));
        }
    }
    if v.archived {
        line.push_str("  (archived)");
    }
    line
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Runs `skvault registry ...`; returns the exit code (0 ok, 1 check found problems).
pub fn run(args: RegistryArgs) -> Result<u8, CliError> {
    let uri = args
        .uri
        .or_else(|| std::env::var("SKVAULT_REGISTRY").ok())
        .unwrap_or_else(|| skvault_registry::DEFAULT_URI.to_string());
    let reg = Registry::open(&uri)?;
    match args.command {
        RegistryCommand::Register {
            file,
            name,
            metadata,
            metrics,
            tags,
            lineage,
        } => {
            let opts = register_options(metadata.as_deref(), &metrics, &tags, &lineage)?;
            outln!(
                "{}",
                reg.register(&file, &name, &opts, &Bar::new())?.doc.version
            );
        }
        RegistryCommand::Get { which, output } => {
            let doc = reg.download(&which.name, &which.selector(), &output, &Bar::new())?;
            errln!(
                "{} version {} -> {}",
                doc.name,
                doc.version,
                output.display()
            );
        }
        RegistryCommand::Export {
            which,
            output,
            format,
        } => return export(&reg, &which, output, format),
        RegistryCommand::Show { which } => {
            outln!("{}", to_json(&reg.version(&which.name, &which.selector())?));
        }
        RegistryCommand::Models => reg.models()?.iter().for_each(|name| outln!("{name}")),
        RegistryCommand::Versions { name, all, json } => {
            print_versions(&reg.versions(&name, all)?, json);
        }
        RegistryCommand::Search {
            name,
            tags,
            metrics,
            all,
            json,
        } => print_versions(&reg.search(&query(name, &tags, &metrics, all)?)?, json),
        RegistryCommand::Aliases { name } => {
            for (alias, version) in reg.aliases(&name)? {
                outln!("{alias}\t{version}");
            }
        }
        RegistryCommand::SetAlias {
            name,
            alias,
            version,
            expect,
        } => set_alias(&reg, &name, &alias, version, expect.as_deref())?,
        RegistryCommand::DeleteAlias { name, alias } => {
            let last = reg.delete_alias(&name, &alias, None)?;
            errln!("{name}@{alias} deleted (was {last})");
        }
        RegistryCommand::Tag {
            name,
            version,
            set,
            remove,
        } => tag(&reg, &name, version, &set, &remove)?,
        RegistryCommand::Archive {
            name,
            version,
            undo,
        } => reg.archive(&name, version, !undo)?,
        RegistryCommand::Delete {
            name,
            version,
            yes,
            grace_seconds,
        } => delete(&reg, &name, version, yes, grace_seconds)?,
        RegistryCommand::Gc { grace_seconds } => {
            outln!("{}", to_json(&reg.gc(Duration::from_secs(grace_seconds))?));
        }
        RegistryCommand::Check { deep } => return check(&reg, &uri, deep),
    }
    Ok(0)
}

/// `tag`: sets `KEY=VALUE` tags and removes `--remove KEY` ones; prints the version's tags.
fn tag(
    reg: &Registry,
    name: &str,
    version: u64,
    set: &[String],
    remove: &[String],
) -> Result<(), RegistryError> {
    let set: BTreeMap<String, String> = set
        .iter()
        .map(|t| pair(t, "tag"))
        .collect::<Result<_, _>>()?;
    outln!("{}", to_json(&reg.tag(name, version, &set, remove)?));
    Ok(())
}

/// `delete`, only with `--yes`: prints what was removed.
fn delete(
    reg: &Registry,
    name: &str,
    version: u64,
    yes: bool,
    grace_seconds: u64,
) -> Result<(), RegistryError> {
    if !yes {
        return Err(invalid(format!(
            "deleting {name} version {version} cannot be undone: add --yes (or archive it instead)"
        )));
    }
    let report = reg.delete_version(name, version, Duration::from_secs(grace_seconds))?;
    outln!("{}", to_json(&report));
    Ok(())
}

/// `check`: prints every problem and exits 1 when there is any.
fn check(reg: &Registry, uri: &str, deep: bool) -> Result<u8, CliError> {
    let problems = reg.check(deep)?;
    for p in &problems {
        outln!("{p}");
    }
    if !problems.is_empty() {
        return Ok(1);
    }
    errln!("{uri}: OK");
    Ok(0)
}

/// `register`'s options from its command-line values.
fn register_options(
    metadata: Option<&str>,
    metrics: &[String],
    tags: &[String],
    lineage: &[String],
) -> Result<RegisterOptions, RegistryError> {
    let mut opts = RegisterOptions::default();
    if let Some(text) = metadata {
        match serde_json::from_str(text) {
            Ok(Value::Object(m)) => opts.metadata = m,
            _ => return Err(invalid("--metadata must be a JSON object".into())),
        }
    }
    for m in metrics {
        let (k, v) = pair(m, "metric")?;
        let x = v
            .parse::<f64>()
            .map_err(|_| invalid(format!("metric {m:?}: {v:?} is not a number")))?;
        opts.metrics.insert(k, x);
    }
    for t in tags {
        let (k, v) = pair(t, "tag")?;
        opts.tags.insert(k, v);
    }
    for l in lineage {
        let (k, v) = pair(l, "lineage reference")?;
        opts.lineage.insert(k, Value::String(v));
    }
    Ok(opts)
}

/// Downloads the version into a temporary folder, then runs `skvault export` on it.
fn export(
    reg: &Registry,
    which: &Which,
    output: PathBuf,
    format: Option<crate::export::Format>,
) -> Result<u8, CliError> {
    let tmp = tempfile::Builder::new()
        .prefix("skvault-export-")
        .tempdir()
        .map_err(|e| CliError::io(&std::env::temp_dir(), e))?;
    let skv = tmp.path().join("model.skv");
    let doc = reg.download(&which.name, &which.selector(), &skv, &Bar::new())?;
    errln!("{} version {}", doc.name, doc.version);
    let args = crate::export::ExportArgs {
        src: skv,
        out: output,
        format,
    };
    crate::export::run_export(&args)
}

/// `search`'s query: `--tag KEY=VALUE` or `--tag KEY`, `--metric NAME OP NUMBER`.
fn query(
    name: Option<String>,
    tags: &[String],
    metrics: &[String],
    include_archived: bool,
) -> Result<Query, RegistryError> {
    Ok(Query {
        name,
        tags: tags
            .iter()
            .map(|t| match t.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (t.clone(), None),
            })
            .collect(),
        metrics: metrics
            .iter()
            .map(|m| MetricFilter::parse(m))
            .collect::<Result<_, _>>()?,
        include_archived,
    })
}

/// `set-alias`, a compare-and-swap with `--expect VERSION` or `--expect none`.
fn set_alias(
    reg: &Registry,
    name: &str,
    alias: &str,
    version: u64,
    expect: Option<&str>,
) -> Result<(), RegistryError> {
    let expected = match expect {
        None => None,
        Some("none") => Some(None),
        Some(n) => Some(Some(n.parse::<u64>().map_err(|_| {
            invalid(format!("--expect {n:?}: a version number or \"none\""))
        })?)),
    };
    let previous = reg.set_alias(name, alias, version, expected)?;
    let was = previous.map_or("unset".to_string(), |p| format!("was {p}"));
    errln!("{name}@{alias} -> {version} ({was})");
    Ok(())
}

fn print_versions(versions: &[VersionInfo], as_json: bool) {
    if as_json {
        outln!("{}", to_json(&json!(versions)));
    } else {
        for v in versions {
            outln!("{}", summary(v));
        }
    }
}
