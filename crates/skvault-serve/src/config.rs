//! What `skvault serve` is asked to do: the command line's options, as plain data.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::source::Spec;

/// How request log lines are written (one per request, to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
    /// No request lines (start-up, reloads and errors are still written).
    Off,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub models: Vec<Spec>,
    /// The registry URI the `Spec::registry` models come from.
    pub registry: Option<String>,
    pub host: IpAddr,
    /// 0 picks a free port (the start-up line on stderr says which).
    pub port: u16,
    /// SO_REUSEPORT: several server processes listen on one port and the kernel spreads
    /// connections among them.
    pub reuse_port: bool,
    /// Bearer tokens are read from this file (mode 0600 or stricter).
    pub token_file: Option<PathBuf>,
    pub limits: Limits,
    /// Hot reload: how often sources are checked; `None` serves what was loaded at start.
    pub watch: Option<Duration>,
    pub log: LogFormat,
    /// Worker threads of the runtime (0: one per core).
    pub threads: usize,
    /// Serve the read-only registry page under `/ui` (needs `registry`).
    pub ui: bool,
    /// The trusted keys (`--trusted-key`): the registry page verifies each version's
    /// recorded signature with them.
    pub trusted: std::sync::Arc<[skvault_sign::PublicKey]>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// The most rows one request may carry (413 above it).
    pub max_rows: usize,
    /// Prediction requests handled at once; more are refused at once with 503.
    pub max_concurrency: usize,
    /// The longest a prediction request may take, reading its body included (503 after it).
    pub timeout: Duration,
    /// The longest a connection may take to send a request's headers, and the longest an
    /// idle keep-alive connection is kept (slow or silent clients hold no connection for
    /// good).
    pub header_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 << 20,
            max_rows: 1_000_000,
            max_concurrency: 256,
            timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            max_connections: 1000,
        }
    }
}
