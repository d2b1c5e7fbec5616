//! What the benchmarks' fixtures share: their random generator, and the file of a model.

use serde_json::Map;
use skvault_format::{prepare, ArrayInput, DType, Node, Order, WriteOptions};

/// The `.skv` bytes of `root` over `blobs` (bytes, shape, dtype; C order), as `dump` writes.
pub fn file(root: Node, blobs: &[(Vec<u8>, Vec<u64>, DType)]) -> Vec<u8> {
    let arrays: Vec<ArrayInput> = blobs
        .iter()
        .map(|(data, shape, dtype)| ArrayInput {
            dtype: dtype.clone(),
            shape: shape.clone(),
            order: Order::C,
            data,
        })
        .collect();
    prepare(root, &arrays, Map::new(), WriteOptions::default())
        .unwrap()
        .to_vec()
        .unwrap()
}

/// A small deterministic generator (xorshift64*): the fixture is the same on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[allow(dead_code)] // not every benchmark picks indices
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal (a sum of uniforms), as make_classification's features are.
    pub fn normal(&mut self) -> f64 {
        (0..4).map(|_| self.unit()).sum::<f64>() * 1.7 - 3.4
    }
}
