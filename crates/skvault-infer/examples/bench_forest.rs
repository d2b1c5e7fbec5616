//! Times `predict_proba` of a model on random rows: `cargo run --release -p skvault-infer
//! --example bench_forest -- MODEL.skv [ROWS]`.

use std::time::Instant;

use skvault_infer::{MatrixView, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: bench_forest MODEL.skv [ROWS]")?;
    let rows: usize = args.get(2).map_or(Ok(10_000), |s| s.parse())?;
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
