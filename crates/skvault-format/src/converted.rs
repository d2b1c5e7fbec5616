//! The `metadata.converted_from` record that `skvault convert` writes: the identifiers of
//! its migrations, shared by the writer (skvault-pickle) and the readers that depend on
//! them (native inference), so that both spell them the same way.

use serde_json::{Map, Value};

/// Tree node records widened with `missing_go_to_left = 0` (scikit-learn < 1.3).
pub const TREE_NODES: &str = "tree-nodes-missing-go-to-left";
/// Classifier tree values turned from class counts into fractions (scikit-learn < 1.4).
/// `skvault convert` normalises every such tree of a file or refuses the file, so a file
/// that records this migration has fractions in all its classifier trees.
pub const TREE_VALUES_FRACTIONS: &str = "tree-values-fractions";
/// HistGradientBoosting `_preprocessor = None` added (scikit-learn < 1.4).
pub const HGB_PREPROCESSOR: &str = "hgb-preprocessor-none";
/// The bare `_loss` Cython module name of scikit-learn 1.5 builds restored.
pub const LOSS_MODULE: &str = "loss-module-name";

/// Whether the file's metadata records the migration `id` in `converted_from.migrations`.
pub fn has_migration(metadata: &Map<String, Value>, id: &str) -> bool {
    metadata
        .get("converted_from")
        .and_then(|c| c.get("migrations"))
        .and_then(Value::as_array)
        .is_some_and(|ms| {
            ms.iter()
                .any(|m| m.get("id").and_then(Value::as_str) == Some(id))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn finds_recorded_migration_by_id() {
        let m = meta(json!({"converted_from": {"migrations": [
            {"id": TREE_NODES, "what": "x", "count": 1},
            {"id": TREE_VALUES_FRACTIONS, "what": "y", "count": 3},
        ]}}));
        assert!(has_migration(&m, TREE_VALUES_FRACTIONS));
        assert!(!has_migration(&m, HGB_PREPROCESSOR));
    }

    #[test]
    fn absent_or_malformed_record_has_no_migration() {
        for v in [
            json!({}),
            json!({"converted_from": null}),
            json!({"converted_from": {"migrations": "tree-values-fractions"}}),
            json!({"converted_from": {"migrations": [{"what": TREE_VALUES_FRACTIONS}]}}),
        ] {
            assert!(!has_migration(&meta(v), TREE_VALUES_FRACTIONS));
        }
    }
}
