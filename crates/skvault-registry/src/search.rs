//! `search`: versions by tags and metric thresholds.

use std::collections::BTreeMap;

use crate::docs::VersionInfo;
use crate::error::{RegistryError, Result};
use crate::names::check_model_name;
use crate::registry::Registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

/// A condition on a metric, such as `roc_auc>=0.9`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricFilter {
    pub metric: String,
    pub op: Op,
    pub value: f64,
}

impl MetricFilter {
    /// Parses `name OP number` with OP one of `<`, `<=`, `=`, `==`, `!=`, `>=`, `>`.
    pub fn parse(text: &str) -> Result<MetricFilter> {
        let bad = || {
            RegistryError::invalid(format!(
                "metric filter {text:?} is not NAME OP NUMBER (OP: < <= = == != >= >)"
            ))
        };
        let at = text.find(['<', '>', '=', '!']).ok_or_else(bad)?;
        let (metric, rest) = text.split_at(at);
        let (op, number) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
            ("=", Op::Eq),
        ]
        .into_iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|n| (op, n)))
        .ok_or_else(bad)?;
        let metric = metric.trim();
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        if metric.is_empty() || !value.is_finite() {
            return Err(bad());
        }
        Ok(MetricFilter {
            metric: metric.to_string(),
            op,
            value,
        })
    }

    pub fn matches(&self, metrics: &BTreeMap<String, f64>) -> bool {
        let Some(&x) = metrics.get(&self.metric) else {
            return false;
        };
        match self.op {
            Op::Lt => x < self.value,
            Op::Le => x <= self.value,
            Op::Eq => x == self.value,
            Op::Ne => x != self.value,
            Op::Ge => x >= self.value,
            Op::Gt => x > self.value,
        }
    }
}

/// What `search` looks for; every condition must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only this model (all models if `None`).
    pub name: Option<String>,
    /// Tags that must be present with these values (`None`: any value).
    pub tags: BTreeMap<String, Option<String>>,
    pub metrics: Vec<MetricFilter>,
    pub include_archived: bool,
}

impl Registry {
    /// Versions matching `query`, by model name then version.
    pub fn search(&self, query: &Query) -> Result<Vec<VersionInfo>> {
        let names = match &query.name {
            Some(n) => {
                check_model_name(n)?;
                vec![n.clone()]
            }
            None => self.models()?,
        };
        let mut out = Vec::new();
        for name in names {
            let versions = match self.block_on(self.versions_async(&name, query.include_archived)) {
                Err(RegistryError::ModelNotFound { .. }) if query.name.is_none() => continue,
                other => other?,
            };
            out.extend(versions.into_iter().filter(|v| {
                query
                    .tags
                    .iter()
                    .all(|(k, want)| match (v.doc.tags.get(k), want) {
                        (Some(have), Some(want)) => have == want,
                        (Some(_), None) => true,
                        (None, _) => false,
                    })
                    && query.metrics.iter().all(|f| f.matches(&v.doc.metrics))
            }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metric_filters() {
        let f = MetricFilter::parse("roc_auc >= 0.9").ok();
        assert_eq!(
            f,
            Some(MetricFilter {
                metric: "roc_auc".into(),
                op: Op::Ge,
                value: 0.9
            })
        );
        assert_eq!(
            MetricFilter::parse("loss<1e-3").map(|f| f.op).ok(),
            Some(Op::Lt)
        );
        assert_eq!(
            MetricFilter::parse("acc=1").map(|f| f.op).ok(),
            Some(Op::Eq)
        );
        assert_eq!(
            MetricFilter::parse("acc!=1").map(|f| f.op).ok(),
            Some(Op::Ne)
        );
        for bad in [
            "acc", ">=1", "acc>=", "acc>=x", "acc=>1", "acc>=nan", "acc>=inf",
        ] {
            assert!(MetricFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_match() {
        let m: BTreeMap<String, f64> = [("acc".to_string(), 0.9)].into();
        let check = |s: &str| MetricFilter::parse(s).map(|f| f.matches(&m)).ok();
        assert_eq!(check("acc>0.8"), Some(true));
        assert_eq!(check("acc>0.9"), Some(false));
        assert_eq!(check("acc>=0.9"), Some(true));
        assert_eq!(check("loss<1"), Some(false));
    }
}
