//! HistGradientBoosting: the Cython predictor reads `nodes[left]`, `nodes[right]`,
//! `X[row, feature_idx]`, `raw_left_cat_bitsets[bitset_idx]` and, for categorical splits,
//! `known_cat_bitsets[f_idx_map[feature_idx]]` without bounds checks, and
//! `make_known_categories_bitsets` sets bit `category` of a 256-bit row for every known
//! category of `_bin_mapper.bin_thresholds_`. So the predictors' nodes are checked exactly
//! as native inference reads them (`crate::hist::predictor`), against the estimator's own
//! feature count and categorical columns, and known categories must be integers in [0, 255].

use skvault_format::Node;

use super::Checked;
use crate::error::{malformed, Result};
use crate::state::{seq_items, Obj};

const BIN_MAPPER: &str = "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper";

pub(super) fn check(o: &Obj<'_, '_>, checked: &mut Checked) -> Result<()> {
    let Some(nf) = o.attr("n_features_in_") else {
        // Unfitted: predict refuses before reaching compiled code, and there are no predictors.
        if o.attr("_predictors").is_some() {
            return Err(malformed(&o.path, "predictors without n_features_in_"));
        }
        return Ok(());
    };
    let n_features = crate::state::node_int(nf)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| malformed(&o.sub("n_features_in_"), "expected a count"))?;
    let mapper_path = o.sub("_bin_mapper");
    let mapper = o
        .ctx
        .object(o.req("_bin_mapper")?)
        .filter(|m| m.class == BIN_MAPPER)
        .ok_or_else(|| malformed(&mapper_path, "expected a _BinMapper"))?;
    let mapper_obj = Obj::new(o.ctx, mapper, mapper_path.clone());
    let categorical: Vec<bool> = match mapper_obj.attr("is_categorical_") {
        None | Some(Node::None) => vec![false; n_features],
        Some(node) => {
            let (shape, v) = o.ctx.i64_array(node, &mapper_obj.sub("is_categorical_"))?;
            if shape != [n_features] {
                return Err(malformed(
                    &mapper_obj.sub("is_categorical_"),
                    "one flag per feature",
                ));
            }
            v.into_iter().map(|b| b != 0).collect()
        }
    };
    let thresholds = seq_items(o.ctx, mapper_obj.req("bin_thresholds_")?)
        .filter(|t| t.len() == n_features)
        .ok_or_else(|| malformed(&mapper_obj.sub("bin_thresholds_"), "one entry per feature"))?;
    for (f, is_cat) in categorical.iter().enumerate() {
        if !is_cat {
            continue;
        }
        let p = format!("{}/bin_thresholds_[{f}]", mapper_path);
        let cats = o.ctx.f64_array(thresholds[f], &p)?.data;
        if cats
            .iter()
            .any(|c| !(c.fract() == 0.0 && (0.0..=255.0).contains(c)))
        {
            return Err(malformed(
                &p,
                "known categories must be integers in [0, 255]",
            ));
        }
    }
    checked.insert(mapper, n_features);
    let Some(iterations) = o.attr("_predictors") else {
        return Ok(());
    };
    let iterations = seq_items(o.ctx, iterations)
        .ok_or_else(|| malformed(&o.sub("_predictors"), "expected a list of lists"))?;
    for (i, iteration) in iterations.into_iter().enumerate() {
        let trees = seq_items(o.ctx, iteration)
            .ok_or_else(|| malformed(&o.sub("_predictors"), "expected a list of lists"))?;
        for (k, tree) in trees.into_iter().enumerate() {
            let path = format!("{}/_predictors[{i}][{k}]", o.path);
            let t = o
                .ctx
                .object(tree)
                .ok_or_else(|| malformed(&path, "expected a TreePredictor"))?;
            match checked.n_features(t) {
                Some(nf) if nf == n_features => {}
                Some(_) => return Err(malformed(&path, "shared by estimators of other widths")),
                None => {
                    crate::hist::predictor(&Obj::new(o.ctx, t, path), n_features, &categorical)?;
                    checked.insert(t, n_features);
                }
            }
        }
    }
    Ok(())
}
