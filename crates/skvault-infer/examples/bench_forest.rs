//! Times `predict_proba` of a model on random rows: `cargo run --release -p skvault-infer
//! --example bench_forest -- MODEL.skv [ROWS]`. One row is timed as the median of many
//! calls (latency, the same row each time as bench/native.py does), more rows as the best
//! of five calls (throughput). `ROWS` = `1-vary`: one row a call, each call another of
//! 1,000 rows (the cache and branch predictor do not see the same path every time).

use std::time::Instant;

use skvault_infer::{MatrixView, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: bench_forest MODEL.skv [ROWS]")?;
    let vary = args.get(2).is_some_and(|s| s == "1-vary");
    let rows: usize = match args.get(2) {
        Some(_) if vary => 1000,
        Some(s) => s.parse()?,
        None => 10_000,
    };
    let model = Model::open(std::path::Path::new(path))?;
    let nf = model.n_features();
    // A deterministic pseudo-random input (xorshift), roughly standard-normal-sized values.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<f64> = (0..rows * nf)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 6.0 - 3.0
        })
        .collect();
    let x = MatrixView::new(&data, rows, nf)?;
    if rows == 1 || vary {
        let mut times = Vec::with_capacity(20_000);
        for i in 0..21_000 {
            let r = i % rows;
            let one = MatrixView::new(&data[r * nf..(r + 1) * nf], 1, nf)?;
            let t = Instant::now();
            let p = model.predict_proba(&one)?;
            let took = t.elapsed().as_secs_f64();
            std::hint::black_box(p);
            if i >= 1000 {
                times.push(took);
            }
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize] * 1e6;
        println!(
            "1 row: median {:.2} us (10%: {:.2}, 90%: {:.2})",
            at(0.5),
            at(0.1),
            at(0.9)
        );
        return Ok(());
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let p = model.predict_proba(&x)?;
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(p);
    }
    println!(
        "{rows} rows: {:.2} ms ({:.1} ns/row)",
        best * 1e3,
        best * 1e9 / rows as f64
    );
    Ok(())
}
