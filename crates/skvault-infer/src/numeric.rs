//! numpy's arithmetic, reproduced where its order is fixed (sums), approximated where it
//! is not (BLAS dot products, which differ across libraries and CPUs anyway).

/// `np.add.reduce` over a contiguous row: pairwise summation with numpy's block sizes
/// (8 partial sums, blocks of 128), starting from the identity 0.0.
pub(crate) fn np_sum(a: &[f64]) -> f64 {
    0.0 + pairwise(a)
}

fn pairwise(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for v in a {
            res += *v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &a[i..] {
            res += *v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise(&a[..n2]) + pairwise(&a[n2..])
    }
}

/// `x . w`, summed in order. BLAS may sum in another order (and with FMA): the tolerance
/// this leaves is measured by the parity tests and documented in docs/NATIVE.md.
#[inline]
pub(crate) fn dot(x: &[f64], w: &[f64]) -> f64 {
    let mut s = 0.0;
    for (a, b) in x.iter().zip(w) {
        s += a * b;
    }
    s
}

/// scipy's `expit`: `1 / (1 + exp(-x))`.
#[inline]
pub(crate) fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// scipy's `logit`: `log(x / (1 - x))`, and near 0.5 (0.3 <= x <= 0.65), where that
/// formula loses precision, `log1p(2 (x - 0.5)) - log1p(-2 (x - 0.5))`.
pub(crate) fn logit(x: f64) -> f64 {
    if (0.3..=0.65).contains(&x) {
        let s = 2.0 * (x - 0.5);
        s.ln_1p() - (-s).ln_1p()
    } else {
        (x / (1.0 - x)).ln()
    }
}

/// How numpy sums a row of a 2-d array: pairwise when the row is contiguous (C order),
/// one element after the other when it is not (F order: the reduction runs column by column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowSum {
    Pairwise,
    Sequential,
}

/// sklearn's `softmax` on one row, in place: subtract the max, exp, divide by the sum.
pub(crate) fn softmax_row(row: &mut [f64]) {
    softmax_row_with(row, RowSum::Pairwise)
}

/// `softmax_row` for a row of an array in the given memory order.
pub(crate) fn softmax_row_with(row: &mut [f64], order: RowSum) {
    let max = row.iter().copied().fold(
        f64::NEG_INFINITY,
        |m, v| {
            if v > m || v.is_nan() {
                v
            } else {
                m
            }
        },
    );
    for v in row.iter_mut() {
        *v = (*v - max).exp();
    }
    let sum = match order {
        RowSum::Pairwise => np_sum(row),
        RowSum::Sequential => row.iter().fold(0.0, |s, v| s + v),
    };
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// sklearn's one-vs-rest normalisation: divide each row by its sum; all-zero rows become uniform.
pub(crate) fn normalize_rows_ovr(data: &mut [f64], n_cols: usize) {
    for row in data.chunks_exact_mut(n_cols.max(1)) {
        let mut sum = np_sum(row);
        if sum == 0.0 {
            row.iter_mut().for_each(|v| *v = 1.0);
            sum = n_cols as f64;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_differs_from_sequential_where_numpy_does() {
        // 1e16 + 1 + 1 ... : sequential loses the ones, pairwise keeps some.
        let mut a = vec![1.0; 64];
        a[0] = 1e16;
        let seq: f64 = a.iter().fold(0.0, |s, v| s + v);
        assert_ne!(np_sum(&a), seq);
        assert_eq!(np_sum(&[1.0, 2.0, 3.0]), 6.0);
        assert_eq!(np_sum(&[]), 0.0);
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut r = [1.0, 2.0, 3.0, 1000.0];
        softmax_row(&mut r);
        assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(r[3] > 0.99);
    }
}
