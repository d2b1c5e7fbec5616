//! `skvault serve MODEL...`: the HTTP model server (crates/skvault-serve, docs/SERVE.md).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use skvault_serve::{Limits, LogFormat, ServeConfig, ServeError, Spec};

use crate::CliError;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The models: .skv files (PATH, served under the file's stem, or NAME=PATH); with
    /// --registry, NAME, NAME@ALIAS or NAME@VERSION (SERVED=NAME@... renames), and .skv
    /// files still by path. None are needed with --ui.
    #[arg(required_unless_present = "ui", value_name = "MODEL")]
    pub models: Vec<String>,
    /// The registry of NAME@... models: a folder, file:///abs/dir or s3://bucket/prefix
    /// (S3 settings from the AWS_* environment).
    #[arg(long, value_name = "URI")]
    pub registry: Option<String>,
    /// The address to listen on (127.0.0.1: this machine only; 0.0.0.0 opens the server
    /// to the network, with --token-file).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The port (0 picks a free one; the first line on stderr names it).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Let several server processes listen on the same port (SO_REUSEPORT); the kernel
    /// spreads connections among them.
    #[arg(long)]
    pub reuse_port: bool,
    /// Require `Authorization: Bearer TOKEN`; the file holds one token per line (several
    /// during a rotation) and must not be readable by others (chmod 600).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Serve only models signed by this public key (or a folder of *.pub files; repeatable),
    /// checked at start and at every reload; the registry page (--ui) verifies each version's
    /// signature with them. Default: the keys named by SKVAULT_TRUSTED_KEYS, if set.
    #[arg(long = "trusted-key", value_name = "PUB")]
    pub trusted_keys: Vec<PathBuf>,
    /// Reload a model whose file was replaced or whose alias moved, checking sources this
    /// often (e.g. 2s, 500ms; default 2s when given without a value).
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2s",
          value_parser = humantime::parse_duration)]
    pub watch: Option<Duration>,
    /// The largest request body in bytes (413 above it).
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// The most rows in one request (413 above it).
    #[arg(long, default_value_t = Limits::default().max_rows)]
    pub max_rows: usize,
    /// Prediction requests handled at once; more get 503 at once instead of waiting.
    #[arg(long, default_value_t = Limits::default().max_concurrency)]
    pub max_concurrency: usize,
    /// The longest a prediction request may take (503 after it), e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// The longest a client may take to send a request's headers, and to keep an idle
    /// connection open, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Request log lines on stderr: text, json (one JSON object per line) or off.
    #[arg(long, value_enum, default_value_t = LogArg::Text)]
    pub log_format: LogArg,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Also serve a read-only web page of the --registry under /ui: models, versions,
    /// aliases and their history, metric charts, each version's card, diffs (see `skvault
    /// docs card`). With --token-file, browsers sign in once at /ui/login.
    #[arg(long, requires = "registry")]
    pub ui: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogArg {
    Text,
    Json,
    Off,
}

/// With --registry, `PATH.skv` and `NAME=PATH.skv` are still files.
fn is_file_arg(arg: &str) -> bool {
    let path = arg.split_once('=').map_or(arg, |(_, p)| p);
    path.ends_with(".skv") || path.contains('/')
}

/// The keys served models must be signed by: `--trusted-key`, else SKVAULT_TRUSTED_KEYS.
fn trusted_keys(args: &ServeArgs) -> Result<Vec<skvault_sign::PublicKey>, ServeError> {
    let keys = if args.trusted_keys.is_empty() {
        skvault_sign::trusted_keys_from_env().map(Option::unwrap_or_default)
    } else {
        skvault_sign::read_trusted_keys(&args.trusted_keys)
    };
    keys.map_err(|e| ServeError::BadSpec {
        arg: "--trusted-key / SKVAULT_TRUSTED_KEYS".into(),
        reason: e.to_string(),
    })
}

pub fn config(args: &ServeArgs) -> Result<ServeConfig, ServeError> {
    let trusted: std::sync::Arc<[skvault_sign::PublicKey]> = trusted_keys(args)?.into();
    let models = args
        .models
        .iter()
        .map(|m| {
            if args.registry.is_some() && !is_file_arg(m) {
                Spec::registry(m)
            } else {
                Spec::file(m)
            }
            .map(|spec| Spec {
                trusted: trusted.clone(),
                ..spec
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ServeConfig {
        trusted,
        models,
        registry: args.registry.clone(),
        host: args.host,
        port: args.port,
        reuse_port: args.reuse_port,
        token_file: args.token_file.clone(),
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_rows: args.max_rows,
            max_concurrency: args.max_concurrency.max(1),
            timeout: args.timeout,
            header_timeout: args.header_timeout,
            max_connections: args.max_connections.max(1),
        },
        watch: args.watch,
        log: match args.log_format {
            LogArg::Text => LogFormat::Text,
            LogArg::Json => LogFormat::Json,
            LogArg::Off => LogFormat::Off,
        },
        threads: args.threads,
        ui: args.ui,
    })
}

/// Runs the server until SIGTERM or Ctrl-C (exit 0); start-up errors exit 2.
pub fn run(args: &ServeArgs) -> Result<u8, CliError> {
    skvault_serve::run(config(args)?)?;
    Ok(0)
}
