//! The scanner: which globals a pickle or joblib file would import, and whether that is safe.
//!
//! It runs the same interpreter as `convert` (so the two cannot parse differently), joblib's
//! reading rules included, and reads every pickle in the file. A file that holds joblib arrays
//! is read a second time as plain `pickle.load` would read it, up to the first error, and the
//! globals of both readings are reported: what joblib skips as array bytes cannot hide code
//! from `pickle.load`. Any error makes the verdict `Unsafe`: a stream that cannot be read to
//! its end is never "nothing found".

use serde_json::{json, Value};
use skvault_format::TrustSet;

use crate::container::{decompress, detect, Format};
use crate::error::PickleError;
use crate::input::Input;
use crate::limits::Limits;
use crate::names::{classify, GlobalKind};
use crate::value::{Arena, Global};
use crate::vm::{Issue, Log, Machine};

/// The scanner's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Every global is allowed and nothing else is suspicious.
    Safe,
    /// Nothing known to be dangerous, but some globals are not on the allow-list.
    Unknown,
    /// A dangerous global, a suspicious construct, or a stream that cannot be read.
    Unsafe,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Safe => "safe",
            Verdict::Unknown => "unknown",
            Verdict::Unsafe => "unsafe",
        }
    }
}

/// One global the file names, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalFinding {
    pub module: String,
    pub name: String,
    pub kind: GlobalKind,
    /// Opcodes naming it (GLOBAL, STACK_GLOBAL, INST).
    pub count: usize,
    /// Stream offset of the first of them.
    pub first_offset: u64,
}

impl GlobalFinding {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }

    /// The global as JSON, an entry of the report's `globals`.
    pub fn to_json(&self) -> Value {
        json!({
            "module": self.module,
            "name": self.name,
            "kind": self.kind.as_str(),
            "count": self.count,
            "offset": self.first_offset,
        })
    }
}

/// What the scanner found in one file.
#[derive(Debug)]
pub struct ScanReport {
    pub verdict: Verdict,
    /// The file's kind by its magic bytes.
    pub format: Format,
    /// The highest pickle protocol declared.
    pub protocol: Option<u8>,
    /// Pickles read to their STOP (a file may hold several).
    pub pickles: usize,
    /// joblib arrays whose bytes were skipped.
    pub joblib_arrays: usize,
    /// Every global, in order of first appearance.
    pub globals: Vec<GlobalFinding>,
    /// Suspicious constructs that do not depend on the globals.
    pub issues: Vec<Issue>,
    /// Why the file could not be read to its end.
    pub error: Option<PickleError>,
}

impl ScanReport {
    pub fn is_safe(&self) -> bool {
        self.verdict == Verdict::Safe
    }

    /// The report as JSON (`skvault scan --json`).
    pub fn to_json(&self) -> Value {
        json!({
            "verdict": self.verdict.as_str(),
            "format": self.format.name(),
            "protocol": self.protocol,
            "pickles": self.pickles,
            "joblib_arrays": self.joblib_arrays,
            "globals": self.globals.iter().map(GlobalFinding::to_json).collect::<Vec<_>>(),
            "issues": self.issues.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "error": self.error.as_ref().map(ToString::to_string),
        })
    }
}

/// What to scan with.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Names rated safe besides the pickle helpers (the default allow-list plus any the user
    /// trusts; dangerous names are never trusted).
    pub trust: TrustSet,
    pub limits: Limits,
}

/// Scans a file (pickle, joblib, compressed joblib) with the default allow-list.
pub fn scan(bytes: &[u8]) -> ScanReport {
    scan_with(bytes, &ScanOptions::default())
}

/// Reads pickles one after the other until the stream ends or an error.
fn read_all(
    stream: &[u8],
    limits: &Limits,
    joblib: bool,
    log: &mut Log,
) -> (usize, Option<PickleError>) {
    let mut arena = Arena::new(limits.max_alloc);
    let mut input = Input::new(stream);
    let mut pickles = 0;
    loop {
        let mut m = Machine::new(&mut arena, log, limits, joblib);
        if let Err(e) = m.run(&mut input) {
            return (pickles, Some(e));
        }
        pickles += 1;
        if input.remaining() == 0 || !joblib {
            return (pickles, None);
        }
    }
}

pub fn scan_with(bytes: &[u8], options: &ScanOptions) -> ScanReport {
    if detect(bytes) == Format::Skv {
        return match skvault_format::SkvFile::from_bytes(bytes.to_vec()) {
            Ok(file) => crate::file::scan_skv(&file, &options.trust),
            Err(e) => crate::file::skv_failure(e),
        };
    }
    match decompress(bytes, &options.limits) {
        Err(e) => report_from(detect(bytes), 0, Log::default(), Some(e), &options.trust),
        Ok((format, stream)) => scan_stream(format, &stream, options),
    }
}

/// Scans a pickle stream already taken out of its container (`decompress`): what `convert`
/// runs on, so a file is decompressed once for both.
pub fn scan_stream(format: Format, stream: &[u8], options: &ScanOptions) -> ScanReport {
    let limits = &options.limits;
    let mut log = Log::default();
    let (pickles, error) = read_all(stream, limits, true, &mut log);
    if log.joblib_reads > 0 && format == Format::Pickle {
        let mut plain = Log::default();
        let _ = read_all(stream, limits, false, &mut plain);
        // Only what the plain reading adds: the counts stay those of joblib's reading.
        let seen: std::collections::HashSet<Global> =
            log.globals.iter().map(|u| u.global.clone()).collect();
        log.globals.extend(
            plain
                .globals
                .into_iter()
                .filter(|u| !seen.contains(&u.global)),
        );
        for issue in plain.issues {
            if !log.issues.contains(&issue) {
                log.issues.push(issue);
            }
        }
    }
    report_from(format, pickles, log, error, &options.trust)
}

fn report_from(
    format: Format,
    pickles: usize,
    log: Log,
    error: Option<PickleError>,
    trust: &TrustSet,
) -> ScanReport {
    let globals = aggregate(&log, trust);
    let verdict = verdict_of(&globals, &log.issues, error.is_some());
    ScanReport {
        verdict,
        format,
        protocol: log.protocol,
        pickles,
        joblib_arrays: log.joblib_reads,
        globals,
        issues: log.issues,
        error,
    }
}

/// Unsafe on any error, dangerous global or unsafe issue; unknown on any unknown global or
/// other issue; safe otherwise.
pub(crate) fn verdict_of(globals: &[GlobalFinding], issues: &[Issue], failed: bool) -> Verdict {
    let dangerous = globals.iter().any(|g| g.kind == GlobalKind::Dangerous);
    let unknown = globals.iter().any(|g| g.kind == GlobalKind::Unknown);
    if failed || dangerous || issues.iter().any(Issue::is_unsafe) {
        Verdict::Unsafe
    } else if unknown || !issues.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Safe
    }
}

fn aggregate(log: &Log, trust: &TrustSet) -> Vec<GlobalFinding> {
    let mut out: Vec<GlobalFinding> = Vec::new();
    let mut index: std::collections::HashMap<&Global, usize> = std::collections::HashMap::new();
    for u in &log.globals {
        match index.get(&u.global) {
            Some(&i) => out[i].count += 1,
            None => {
                index.insert(&u.global, out.len());
                out.push(GlobalFinding {
                    module: u.global.module.clone(),
                    name: u.global.name.clone(),
                    kind: classify(&u.global, trust),
                    count: 1,
                    first_offset: u.offset,
                });
            }
        }
    }
    out
}
