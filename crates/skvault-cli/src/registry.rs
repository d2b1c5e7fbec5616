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
    /// Print the result as one JSON document on stdout (every subcommand).
    #[arg(long, global = true)]
    json: bool,
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
        /// Sign the file with this private key; the signature is kept with the version.
        #[arg(long, value_name = "KEY")]
        sign_with: Option<PathBuf>,
        /// The signer's name recorded in that signature.
        #[arg(long, value_name = "NAME", requires = "sign_with")]
        identity: Option<String>,
    },
    /// Show, set (--require-signature PUB, repeatable) or remove (--clear) the registry's
    /// signature policy: every version registered, fetched or aliased must be signed by one
    /// of the keys (`skvault docs signing`).
    Policy {
        /// A public key (or folder of *.pub files) versions must be signed by.
        #[arg(
            long = "require-signature",
            value_name = "PUB",
            conflicts_with = "clear"
        )]
        require_signature: Vec<PathBuf>,
        /// Remove the requirement.
        #[arg(long)]
        clear: bool,
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
    /// Show one version's document as JSON (the blob digest of every array only with --arrays).
    Show {
        #[command(flatten)]
        which: Which,
        /// Also list the digests of the version's arrays (`file.blobs`).
        #[arg(long)]
        arrays: bool,
    },
    /// List the models.
    Models,
    /// List the versions of a model.
    Versions {
        name: String,
        /// Include archived versions.
        #[arg(long)]
        all: bool,
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
        /// Include archived versions.
        #[arg(long)]
        all: bool,
    },
    /// List a model's aliases.
    Aliases { name: String },
    /// Point ALIAS at version N (atomically; with --expect only if it points at that now).
    SetAlias {
        name: String,
        alias: String,
        #[command(flatten)]
        version: VersionNumber,
        /// Compare-and-swap: the version the alias must point at now, or "none".
        #[arg(long)]
        expect: Option<String>,
    },
    /// Remove an alias.
    DeleteAlias { name: String, alias: String },
    /// Set (KEY=VALUE) and remove (--remove KEY) tags of version N.
    Tag {
        name: String,
        /// The version number.
        #[arg(long = "version", value_name = "N")]
        version: Option<u64>,
        /// Tags to set. (Deprecated: a version number before them, instead of --version N.)
        #[arg(value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// A tag to remove (repeatable).
        #[arg(long, value_name = "KEY")]
        remove: Vec<String>,
    },
    /// Hide version N from listings and from "latest" (--undo shows it again). Deletes nothing.
    Archive {
        name: String,
        #[command(flatten)]
        version: VersionNumber,
        /// Show the version again.
        #[arg(long)]
        undo: bool,
    },
    /// Delete version N for good (needs --yes), then collect its unshared blobs.
    Delete {
        name: String,
        #[command(flatten)]
        version: VersionNumber,
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
        /// Also read every blob and check its digest.
        #[arg(long)]
        deep: bool,
    },
}

/// The version a command changes: `--version N`. The positional `VERSION` of earlier
/// releases is still read (hidden from the help, with a warning on stderr) so that
/// existing scripts keep working; see docs/CLI.md.
#[derive(Args)]
struct VersionNumber {
    /// The version number.
    #[arg(long = "version", value_name = "N")]
    version: Option<u64>,
    #[arg(value_name = "VERSION", hide = true)]
    positional: Option<u64>,
}

impl VersionNumber {
    fn get(&self) -> Result<u64, RegistryError> {
        pick_version(self.version, self.positional)
    }
}

/// `--version N`, or the deprecated positional form (with a warning); exactly one of them.
fn pick_version(flag: Option<u64>, positional: Option<u64>) -> Result<u64, RegistryError> {
    match (flag, positional) {
        (Some(n), None) => Ok(n),
        (None, Some(n)) => {
            errln!(
                "skvault: warning: a positional version number is deprecated: use --version {n}"
            );
            Ok(n)
        }
        (Some(_), Some(_)) => Err(invalid(
            "the version is given twice: use --version N alone".into(),
        )),
        (None, None) => Err(invalid("which version? add --version N".into())),
    }
}

/// The bar of an upload or download (see `progress`): made when the registry says what it
/// transfers, styled before it is first drawn (none for --json); also where a transfer
/// checks for Ctrl-C.
struct Bar {
    bar: std::sync::Mutex<indicatif::ProgressBar>,
    shown: bool,
}

impl Bar {
    fn new(json: bool) -> Bar {
        Bar {
            bar: std::sync::Mutex::new(indicatif::ProgressBar::hidden()),
            shown: !json,
        }
    }

    fn bar(&self) -> indicatif::ProgressBar {
        match self.bar.lock() {
            Ok(bar) => bar.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// After the registry call: clears a bar that an error left unfinished.
    fn close(&self) {
        let bar = self.bar();
        if !bar.is_finished() {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn begin(&self, what: &str, total: u64) {
        if !self.shown {
            return;
        }
        let bar = crate::progress::bytes_bar(total, what.to_string());
        match self.bar.lock() {
            Ok(mut slot) => *slot = bar,
            Err(poisoned) => *poisoned.into_inner() = bar,
        }
    }
    fn advance(&self, bytes: u64) {
        self.bar().inc(bytes);
    }
    fn end(&self) {
        let bar = self.bar();
        crate::progress::end(&bar, Some(bar.position()) == bar.length());
    }
    fn check(&self) -> std::io::Result<()> {
        crate::interrupt::check()
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

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, CliError> {
    Ok(serde_json::to_value(v)?)
}

/// A version as `show` (and `register --json`) print it: the document, without the
/// per-array blob digests unless `arrays` (a forest has thousands of them).
fn version_json(info: &VersionInfo, arrays: bool) -> Result<Value, CliError> {
    let mut value = to_json(info)?;
    if !arrays {
        if let Some(file) = value.get_mut("file").and_then(Value::as_object_mut) {
            file.remove("blobs");
        }
    }
    Ok(value)
}

/// The registry's URI: `--uri`, else `$SKVAULT_REGISTRY`, else `./skvault-registry`.
fn registry_uri(arg: Option<String>) -> String {
    arg.or_else(|| std::env::var("SKVAULT_REGISTRY").ok())
        .unwrap_or_else(|| skvault_registry::DEFAULT_URI.to_string())
}

/// Opens the registry for a command that reads or changes what is there: a path with no
/// registry is an error, never a new empty registry.
fn open_existing(uri: &str) -> Result<Registry, CliError> {
    Registry::open_existing(uri)?.ok_or_else(|| CliError::NoRegistry {
        uri: uri.to_string(),
    })
}

/// Opens the registry for `register`, creating it (and saying where, on stderr) if needed.
fn open_or_create(uri: &str) -> Result<Registry, CliError> {
    if let Some(reg) = Registry::open_existing(uri)? {
        return Ok(reg);
    }
    let reg = Registry::open(uri)?;
    let place = match skvault_registry::Location::parse(uri)? {
        skvault_registry::Location::Folder(dir) => std::fs::canonicalize(&dir)
            .map_or_else(|_| dir.display().to_string(), |p| p.display().to_string()),
        skvault_registry::Location::S3 { .. } => uri.to_string(),
    };
    errln!("skvault: creating a new registry at {place}");
    Ok(reg)
}

/// Runs `skvault registry ...`; returns the exit code (0 ok, 1 check found problems).
pub fn run(args: RegistryArgs) -> Result<u8, CliError> {
    let uri = registry_uri(args.uri);
    let json = args.json;
    if let RegistryCommand::Register {
        file,
        name,
        metadata,
        metrics,
        tags,
        lineage,
        sign_with,
        identity,
    } = args.command
    {
        let mut opts = register_options(metadata.as_deref(), &metrics, &tags, &lineage)?;
        if let Some(key) = &sign_with {
            opts.sign_with = Some(std::sync::Arc::new(skvault_sign::read_private_key(key)?));
            opts.identity = identity.unwrap_or_default();
        }
        // What can be checked before a new registry is created, so that a typo creates none.
        skvault_registry::names::check_model_name(&name)?;
        std::fs::metadata(&file).map_err(|e| CliError::io(&file, e))?;
        let reg = open_or_create(&uri)?;
        let bar = Bar::new(json);
        let registered = reg.register(&file, &name, &opts, &bar);
        bar.close();
        let info = registered?;
        if json {
            crate::output::print_json(&version_json(&info, false)?)?;
        } else {
            outln!("{}", info.doc.version);
        }
        return Ok(0);
    }
    let reg = open_existing(&uri)?;
    let report = match args.command {
        RegistryCommand::Register { .. } => Report::Done,
        RegistryCommand::Policy {
            require_signature,
            clear,
        } => {
            if clear {
                reg.set_signature_policy(&[])?;
            } else if !require_signature.is_empty() {
                let keys = skvault_sign::read_trusted_keys(&require_signature)?;
                reg.set_signature_policy(&keys)?;
            }
            let ids: Option<Vec<String>> = reg
                .signature_policy()?
                .map(|k| k.iter().map(|k| k.key_id().to_owned()).collect());
            if !json {
                match &ids {
                    None => outln!("no signature required"),
                    Some(ids) => ids
                        .iter()
                        .for_each(|id| outln!("signature required: key {id}")),
                }
            }
            Report::Quiet(json!({"require_signature": ids}))
        }
        RegistryCommand::Get { which, output } => {
            let bar = Bar::new(json);
            let downloaded = reg.download(&which.name, &which.selector(), &output, &bar);
            bar.close();
            let doc = downloaded?;
            errln!(
                "{} version {} -> {}",
                doc.name,
                doc.version,
                output.display()
            );
            Report::Quiet(json!({
                "name": doc.name,
                "version": doc.version,
                "output": output.display().to_string(),
            }))
        }
        RegistryCommand::Export {
            which,
            output,
            format,
        } => return export(&reg, &which, output, format, json),
        RegistryCommand::Show { which, arrays } => Report::Document(version_json(
            &reg.version(&which.name, &which.selector())?,
            arrays,
        )?),
        RegistryCommand::Models => {
            let names = reg.models()?;
            if !json {
                names.iter().for_each(|name| outln!("{name}"));
            }
            Report::Quiet(json!(names))
        }
        RegistryCommand::Versions { name, all } => {
            print_versions(&reg.versions(&name, all)?, json)?;
            Report::Done
        }
        RegistryCommand::Search {
            name,
            tags,
            metrics,
            all,
        } => {
            print_versions(&reg.search(&query(name, &tags, &metrics, all)?)?, json)?;
            Report::Done
        }
        RegistryCommand::Aliases { name } => {
            let aliases = reg.aliases(&name)?;
            if !json {
                for (alias, version) in &aliases {
                    outln!("{alias}\t{version}");
                }
            }
            Report::Quiet(json!(aliases))
        }
        RegistryCommand::SetAlias {
            name,
            alias,
            version,
            expect,
        } => Report::Quiet(set_alias(
            &reg,
            &name,
            &alias,
            version.get()?,
            expect.as_deref(),
        )?),
        RegistryCommand::DeleteAlias { name, alias } => {
            let last = reg.delete_alias(&name, &alias, None)?;
            errln!("{name}@{alias} deleted (was {last})");
            Report::Quiet(json!({"name": name, "alias": alias, "previous": last}))
        }
        RegistryCommand::Tag {
            name,
            version,
            set,
            remove,
        } => Report::Document(tag(&reg, &name, version, set, &remove)?),
        RegistryCommand::Archive {
            name,
            version,
            undo,
        } => {
            let version = version.get()?;
            reg.archive(&name, version, !undo)?;
            errln!(
                "{name} version {version} {}",
                if undo { "restored" } else { "archived" }
            );
            Report::Quiet(json!({"name": name, "version": version, "archived": !undo}))
        }
        RegistryCommand::Delete {
            name,
            version,
            yes,
            grace_seconds,
        } => Report::Document(delete(&reg, &name, version.get()?, yes, grace_seconds)?),
        RegistryCommand::Gc { grace_seconds } => {
            Report::Document(to_json(&reg.gc(Duration::from_secs(grace_seconds))?)?)
        }
        RegistryCommand::Check { deep } => return check(&reg, &uri, deep, json),
    };
    print_report(report, json)?;
    Ok(0)
}

/// What a subcommand has to print on stdout once it is done.
enum Report {
    /// Nothing more: a list already printed (as JSON with `--json`).
    Done,
    /// A JSON document, printed with or without `--json` (`show`, `tag`, `delete`, `gc`).
    Document(Value),
    /// Printed only with `--json`: the text form was a line on stderr, or a list already
    /// printed as text.
    Quiet(Value),
}

fn print_report(report: Report, json: bool) -> Result<(), CliError> {
    match report {
        Report::Document(v) => crate::output::print_json(&v)?,
        Report::Quiet(v) if json => crate::output::print_json(&v)?,
        Report::Quiet(_) | Report::Done => {}
    }
    Ok(())
}

/// `tag`: sets `KEY=VALUE` tags and removes `--remove KEY` ones; returns the version's
/// tags. Without `--version`, a number before the tags is the deprecated positional form.
fn tag(
    reg: &Registry,
    name: &str,
    version: Option<u64>,
    mut set: Vec<String>,
    remove: &[String],
) -> Result<Value, CliError> {
    let positional = match (version, set.first().map(|s| s.parse::<u64>())) {
        (None, Some(Ok(n))) => {
            set.remove(0);
            Some(n)
        }
        _ => None,
    };
    let version = pick_version(version, positional)?;
    let set: BTreeMap<String, String> = set
        .iter()
        .map(|t| pair(t, "tag"))
        .collect::<Result<_, _>>()?;
    to_json(&reg.tag(name, version, &set, remove)?)
}

/// `delete`, only with `--yes`: returns what was removed.
fn delete(
    reg: &Registry,
    name: &str,
    version: u64,
    yes: bool,
    grace_seconds: u64,
) -> Result<Value, CliError> {
    if !yes {
        return Err(invalid(format!(
            "deleting {name} version {version} cannot be undone: add --yes (or archive it instead)"
        ))
        .into());
    }
    let report = reg.delete_version(name, version, Duration::from_secs(grace_seconds))?;
    to_json(&report)
}

/// `check`: prints every problem and exits 1 when there is any.
fn check(reg: &Registry, uri: &str, deep: bool, json: bool) -> Result<u8, CliError> {
    let problems = reg.check(deep)?;
    if json {
        crate::output::print_json(&json!({
            "uri": uri,
            "deep": deep,
            "ok": problems.is_empty(),
            "problems": problems,
        }))?;
    } else {
        for p in &problems {
            outln!("{p}");
        }
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
    json: bool,
) -> Result<u8, CliError> {
    let tmp = tempfile::Builder::new()
        .prefix("skvault-export-")
        .tempdir()
        .map_err(|e| CliError::io(&std::env::temp_dir(), e))?;
    let skv = tmp.path().join("model.skv");
    let bar = Bar::new(json);
    let downloaded = reg.download(&which.name, &which.selector(), &skv, &bar);
    bar.close();
    let doc = downloaded?;
    errln!("{} version {}", doc.name, doc.version);
    let args = crate::export::ExportArgs {
        src: skv,
        out: output,
        format,
        json,
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
) -> Result<Value, RegistryError> {
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
    Ok(json!({"name": name, "alias": alias, "version": version, "previous": previous}))
}

fn print_versions(versions: &[VersionInfo], as_json: bool) -> Result<(), CliError> {
    if as_json {
        crate::output::print_json(&to_json(&versions)?)?;
    } else {
        for v in versions {
            outln!("{}", summary(v));
        }
    }
    Ok(())
}
