//! `skvault serve --ui`: a read-only registry page, server-rendered with skvault-card's
//! templates (no script: every page works without JavaScript).
//!
//! Pages: the models (`/ui`), one model's versions with metrics, tags, aliases and their
//! history and a metric over versions (`/ui/models/NAME`), a version's card
//! (`/ui/models/NAME/versions/N`), and what differs between two versions
//! (`/ui/models/NAME/diff?a=N&b=M`). With `--token-file`, a browser signs in once at
//! `/ui/login` (see `auth`). Every page is sent with a Content-Security-Policy that allows no
//! script and no fetch: even a value that escaped escaping could not run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use minijinja::{context, Value};
use serde::Deserialize;
use skvault_format::SkvFile;
use skvault_registry::{NoProgress, Registry, RegistryError, Selector, VersionInfo};

use crate::state::AppState;

type Shared = Arc<AppState>;

/// What the browser may do with a page: show it and its inline styles, post the login form
/// back; nothing else (no script, no fetch, no frame).
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/ui", get(models))
        .route("/ui/", get(models))
        .route("/ui/models/{name}", get(model))
        .route("/ui/models/{name}/versions/{version}", get(version))
        .route("/ui/models/{name}/diff", get(diff))
        .route(
            "/ui/login",
            get(crate::auth::login_form).post(crate::auth::login),
        )
}

/// An HTML page with the UI's headers.
pub fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A template rendered into a page; a template failure is a 500 page naming it.
pub fn render(status: StatusCode, name: &str, ctx: Value) -> Response {
    match skvault_card::render(name, ctx) {
        Ok(html) => page(status, html),
        Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    let html = skvault_card::render(
        "ui/error.html",
        context! { status => status.as_u16(), message => message },
    )
    .unwrap_or_else(|_| {
        format!(
            "{} {}",
            status.as_u16(),
            skvault_card::charts::escape(message)
        )
    });
    page(status, html)
}

/// Why a page could not be made: its status and message, shown as an error page.
pub struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        error_page(self.status, &self.message)
    }
}

fn registry_error(e: &RegistryError) -> Failure {
    let status = if e.is_not_found() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_GATEWAY
    };
    Failure::new(status, e.to_string())
}

/// Runs blocking registry calls off the async workers (the registry drives its own runtime).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn registry(state: &AppState) -> Result<Arc<Registry>, Failure> {
    state
        .ui
        .clone()
        .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, "this server has no registry page"))
}

fn metric_text(v: f64) -> String {
    skvault_card::charts::num(v)
}

async fn models(State(state): State<Shared>) -> Response {
    let reg = match registry(&state) {
        Ok(r) => r,
        Err(f) => return f.into_response(),
    };
    let uri = reg.uri().to_string();
    let rows = blocking(move || {
        let names = reg.models().map_err(|e| registry_error(&e))?;
        let mut rows = Vec::new();
        for name in names {
            let versions = reg.versions(&name, true).map_err(|e| registry_error(&e))?;
            let aliases = reg.aliases(&name).map_err(|e| registry_error(&e))?;
            let latest = versions.iter().map(|v| v.doc.version).max();
            let created = versions
                .iter()
                .max_by_key(|v| v.doc.version)
                .map(|v| v.doc.created_at.clone());
            rows.push(context! {
                name => name,
                versions => versions.len(),
                latest => latest,
                created => created,
                aliases => aliases.iter().map(|(a, v)| format!("{a} → v{v}")).collect::<Vec<_>>(),
            });
        }
        Ok(rows)
    })
    .await;
    match rows {
        Ok(rows) => render(
            StatusCode::OK,
            "ui/models.html",
            context! { models => rows, uri => uri },
        ),
        Err(f) => f.into_response(),
    }
}

#[derive(Deserialize)]
struct ModelQuery {
    metric: Option<String>,
}

async fn model(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<ModelQuery>,
) -> Response {
    let reg = match registry(&state) {
        Ok(r) => r,
        Err(f) => return f.into_response(),
    };
    let shown = name.clone();
    let loaded = blocking(move || {
        let versions = reg.versions(&name, true).map_err(|e| registry_error(&e))?;
        let history = reg.alias_history(&name).map_err(|e| registry_error(&e))?;
        Ok((versions, history))
    })
    .await;
    let (mut versions, history) = match loaded {
        Ok(v) => v,
        Err(f) => return f.into_response(),
    };
    versions.sort_by_key(|v| v.doc.version);
    let metric_names: BTreeSet<String> = versions
        .iter()
        .flat_map(|v| v.doc.metrics.keys().cloned())
        .collect();
    let metric = q
        .metric
        .filter(|m| metric_names.contains(m))
        .or_else(|| metric_names.iter().next().cloned());
    let chart = metric.as_ref().map(|m| {
        let points: Vec<(String, f64)> = versions
            .iter()
            .filter_map(|v| Some((format!("v{}", v.doc.version), *v.doc.metrics.get(m)?)))
            .collect();
        Value::from_safe_string(skvault_card::charts::line(
            &format!("{m} over versions"),
            &points,
        ))
    });
    let rows: Vec<Value> = versions.iter().rev().map(version_row).collect();
    let history: Vec<Value> = history
        .iter()
        .map(|(alias, entries)| {
            context! {
                alias => alias,
                current => entries.last().and_then(|e| e.version),
                entries => entries.iter().rev().map(|e| context! {
                    version => e.version,
                    updated_at => e.updated_at,
                }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let numbers: Vec<u64> = versions.iter().map(|v| v.doc.version).collect();
    render(
        StatusCode::OK,
        "ui/model.html",
        context! {
            name => shown,
            versions => rows,
            history => history,
            metric => metric,
            metric_names => metric_names,
            chart => chart,
            numbers => numbers,
            diff_a => numbers.len().checked_sub(2).and_then(|i| numbers.get(i)),
            diff_b => numbers.last(),
        },
    )
}

fn version_row(v: &VersionInfo) -> Value {
    context! {
        version => v.doc.version,
        created_at => v.doc.created_at,
        metrics => v.doc.metrics.iter().map(|(k, x)| (k.clone(), metric_text(*x))).collect::<Vec<_>>(),
        tags => v.doc.tags.iter().map(|(k, x)| format!("{k}={x}")).collect::<Vec<_>>(),
        aliases => v.aliases,
        archived => v.archived,
        blake3 => v.doc.file.blake3,
    }
}

/// A version's file, fetched and checked (every digest), opened from memory.
fn fetch(
    reg: &Registry,
    name: &str,
    version: u64,
) -> Result<(skvault_registry::VersionDoc, SkvFile), Failure> {
    let (doc, bytes) = reg
        .fetch(name, &Selector::Version(version), &NoProgress)
        .map_err(|e| registry_error(&e))?;
    let file = SkvFile::from_bytes(bytes)
        .map_err(|e| Failure::new(StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok((doc, file))
}

fn parse_version(text: &str) -> Result<u64, Failure> {
    text.strip_prefix('v').unwrap_or(text).parse().map_err(|_| {
        Failure::new(
            StatusCode::NOT_FOUND,
            format!("no version {text:?}: versions are numbers"),
        )
    })
}

async fn version(
    State(state): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let reg = match registry(&state) {
        Ok(r) => r,
        Err(f) => return f.into_response(),
    };
    let n = match parse_version(&version) {
        Ok(n) => n,
        Err(f) => return f.into_response(),
    };
    let shown = name.clone();
    let pubkeys = state.trusted.to_vec();
    let built = blocking(move || {
        let (doc, file) = fetch(&reg, &name, n)?;
        let cx = skvault_card::Context {
            name: format!("{name} v{n}"),
            lineage: serde_json::to_value(&doc.lineage).ok(),
            registry_version: true,
            registry_signature: doc.signature.clone(),
            pubkeys,
            ..skvault_card::Context::default()
        };
        let summary = skvault_card::summarize(&file, &cx);
        let sections = skvault_card::user_sections(&summary, None);
        let title = skvault_card::summary::card_title(&file).unwrap_or_else(|| cx.name.clone());
        Ok((summary, sections, title, doc))
    })
    .await;
    match built {
        Ok((summary, sections, title, doc)) => {
            let mut ctx = skvault_card::card_context(&summary, &title, &sections);
            ctx = merge(
                ctx,
                context! {
                    model => shown,
                    version => n,
                    tags => doc.tags,
                    registry_metrics => doc.metrics.iter().map(|(k, x)| (k.clone(), metric_text(*x))).collect::<Vec<_>>(),
                    created_at => doc.created_at,
                },
            );
            render(StatusCode::OK, "ui/version.html", ctx)
        }
        Err(f) => f.into_response(),
    }
}

fn merge(a: Value, b: Value) -> Value {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    for v in [a, b] {
        if let Ok(keys) = v.try_iter() {
            for k in keys {
                if let Ok(x) = v.get_item(&k) {
                    map.insert(k.to_string(), x);
                }
            }
        }
    }
    Value::from(map)
}

#[derive(Deserialize)]
struct DiffQuery {
    a: Option<String>,
    b: Option<String>,
}

async fn diff(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Response {
    let reg = match registry(&state) {
        Ok(r) => r,
        Err(f) => return f.into_response(),
    };
    let (Some(a), Some(b)) = (q.a, q.b) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "a diff needs two versions: ?a=N&b=M",
        );
    };
    let (a, b) = match (parse_version(&a), parse_version(&b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(f), _) | (_, Err(f)) => return f.into_response(),
    };
    let shown = name.clone();
    let sections = blocking(move || {
        let (_, fa) = fetch(&reg, &name, a)?;
        let (_, fb) = fetch(&reg, &name, b)?;
        Ok(skvault_card::diff::sections(&fa, &fb)
            .into_iter()
            .map(|(key, title, changes)| {
                let show = |x: &Option<serde_json::Value>| match x {
                    None => "(absent)".to_string(),
                    Some(v) if key == "arrays" => skvault_card::diff::array_text(v),
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                };
                context! {
                    key => key,
                    title => title,
                    changes => changes.iter().map(|c| context! {
                        key => c.key, a => show(&c.a), b => show(&c.b),
                    }).collect::<Vec<_>>(),
                }
            })
            .collect::<Vec<_>>())
    })
    .await;
    match sections {
        Ok(sections) => {
            let same = sections
                .iter()
                .all(|s| s.get_attr("changes").map_or(0, |c| c.len().unwrap_or(0)) == 0);
            render(
                StatusCode::OK,
                "ui/diff.html",
                context! { name => shown, a => a, b => b, sections => sections, same => same },
            )
        }
        Err(f) => f.into_response(),
    }
}
