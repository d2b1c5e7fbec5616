//! `GET /metrics`: counters and latency histograms in the OpenMetrics text format (which
//! Prometheus scrapes), by the Prometheus project's client.
//!
//! Labels take only values the server chose (served model names, method names, status
//! codes), never raw text of a request: a client cannot grow the label sets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The model label of a request for a name that is not served.
pub const UNKNOWN_MODEL: &str = "";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub model: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub model: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub model: String,
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<CallLabels, Histogram>,
    rows: Family<CallLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    in_flight: Gauge,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 3.3 s, doubling.
    Histogram::new(exponential_buckets(50e-6, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("skvault");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<CallLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let rows = Family::<CallLabels, Counter>::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        let in_flight = Gauge::default();
        registry.register(
            "requests",
            "Prediction requests answered, by model, method and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request to response of prediction requests, by model and method",
            latency.clone(),
        );
        registry.register(
            "rows_predicted",
            "Rows predicted, by model and method",
            rows.clone(),
        );
        registry.register(
            "reloads",
            "Hot reloads of a model, by outcome (ok: serving the new one; failed: kept the old)",
            reloads.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Prediction requests received and not yet answered",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            rows,
            reloads,
            in_flight,
        }
    }

    /// A prediction request came in; the guard counts it out when dropped (answered, or
    /// its connection closed).
    pub fn begin(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// One answered prediction request.
    pub fn request(&self, model: &str, method: &str, status: u16, seconds: f64, rows: u64) {
        self.requests
            .get_or_create(&RequestLabels {
                model: model.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        let call = CallLabels {
            model: model.to_string(),
            method: method.to_string(),
        };
        self.latency.get_or_create(&call).observe(seconds);
        if rows > 0 {
            self.rows.get_or_create(&call).inc_by(rows);
        }
    }

    pub fn reload(&self, model: &str, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                model: model.to_string(),
                outcome: if ok { "ok" } else { "failed" }.to_string(),
            })
            .inc();
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// One prediction request being answered (see [`Metrics::begin`]).
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
