//! Times `scan` and `convert` on files: `cargo run --release -p skvault-pickle --example
//! scan_speed -- FILE...`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).expect("reading the file");
        let t = Instant::now();
        let report = skvault_pickle::scan(&bytes);
        let scan = t.elapsed();
        let limits = skvault_pickle::Limits::default();
        let t = Instant::now();
        let converted = skvault_pickle::decompress(&bytes, &limits)
            .and_then(|(_, s)| skvault_pickle::convert(&s, &limits).map(|c| c.arrays.len()));
        let convert = t.elapsed();
        let mb = bytes.len() as f64 / 1e6;
        println!(
            "{path}: {mb:.1} MB, {} ({} globals), scan {scan:?} ({:.0} MB/s), convert {convert:?} -> {converted:?} arrays",
            report.verdict.as_str(),
            report.globals.len(),
            mb / scan.as_secs_f64()
        );
    }
}
