//! Prints the scan report and the converted tree of a pickle or joblib file:
//! `cargo run -p skvault-pickle --example pickle_tree -- FILE`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let path = std::env::args().nth(1).expect("usage: pickle_tree FILE");
    let bytes = std::fs::read(&path).expect("reading the file");
    let report = skvault_pickle::scan(&bytes);
    println!(
        "{}",
        serde_json::to_string_pretty(&report.to_json()).unwrap()
    );
    let limits = skvault_pickle::Limits::default();
    match skvault_pickle::decompress(&bytes, &limits).and_then(|(_, s)| {
        skvault_pickle::convert(&s, &limits).map(|c| (c.root.to_json(), c.arrays.len()))
    }) {
        Ok((tree, n)) => println!("{tree}\n{n} arrays"),
        Err(e) => println!("cannot convert: {e}"),
    }
}
