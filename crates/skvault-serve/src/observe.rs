//! One log line per request (text or JSON, on stderr) and the request metrics, both from
//! the [`Note`] a prediction handler leaves on its response.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use crate::config::LogFormat;
use crate::routes::Note;
use crate::state::AppState;

/// Whether a path is a prediction request (counted in the metrics even when refused before
/// a handler ran: overload, timeout, authentication).
fn is_prediction(path: &str) -> bool {
    path == "/invocations" || (path.starts_with("/v1/models/") && path.ends_with("/predict"))
}

pub async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let in_flight = is_prediction(&path).then(|| state.metrics.begin());
    let response = next.run(request).await;
    drop(in_flight);
    let seconds = start.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    let note = response.extensions().get::<Note>();
    if let Some(n) = note {
        state
            .metrics
            .request(&n.model, n.method, status, seconds, n.rows);
    } else if is_prediction(&path) {
        state.metrics.request("", "", status, seconds, 0);
    }
    if state.log != LogFormat::Off {
        log_request(state.log, &method, &path, status, seconds, note);
    }
    response
}

fn log_request(
    format: LogFormat,
    method: &axum::http::Method,
    path: &str,
    status: u16,
    seconds: f64,
    note: Option<&Note>,
) {
    let ts = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    let ms = seconds * 1e3;
    let line = match format {
        LogFormat::Json => {
            let mut v = json!({
                "ts": ts.to_string(),
                "http_method": method.as_str(),
                "path": path,
                "status": status,
                "duration_ms": (ms * 1000.0).round() / 1000.0,
            });
            if let (Some(n), serde_json::Value::Object(m)) = (note, &mut v) {
                m.insert("model".into(), json!(n.model));
                m.insert("version".into(), json!(n.version));
                m.insert("method".into(), json!(n.method));
                m.insert("rows".into(), json!(n.rows));
                m.insert("error".into(), json!(n.error));
            }
            v.to_string()
        }
        _ => {
            let mut s = format!("{ts} {method} {path} {status} {ms:.3}ms");
            if let Some(n) = note {
                s.push_str(&format!(
                    " model={} method={} rows={}",
                    n.model, n.method, n.rows
                ));
                if let Some(e) = n.error {
                    s.push_str(&format!(" error={e}"));
                }
            }
            s
        }
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// A line about the server itself (start, reload, shutdown), in the log format chosen.
pub fn event(format: LogFormat, event: &str, fields: serde_json::Value) {
    let ts = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    let line = match format {
        LogFormat::Json => {
            let mut v = json!({"ts": ts.to_string(), "event": event});
            if let (serde_json::Value::Object(m), serde_json::Value::Object(f)) = (&mut v, fields) {
                m.extend(f);
            }
            v.to_string()
        }
        _ => {
            let mut s = format!("{ts} skvault serve: {event}");
            if let serde_json::Value::Object(f) = fields {
                for (k, v) in f {
                    match v {
                        serde_json::Value::String(t) => s.push_str(&format!(" {k}={t}")),
                        other => s.push_str(&format!(" {k}={other}")),
                    }
                }
            }
            s
        }
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}
