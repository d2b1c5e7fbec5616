//! Start-up (load every model, bind), the router with its limits, and a draining shutdown
//! on SIGTERM or Ctrl-C.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use skvault_registry::Registry;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;

use crate::config::ServeConfig;
use crate::error::{ApiError, ServeError};
use crate::metrics::Metrics;
use crate::observe::event;
use crate::state::{AppState, Slot};
use crate::{auth, observe, routes, source};

/// Refusals of the limit layers, as JSON errors.
async fn refused(err: tower::BoxError) -> Response {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took longer than the server's --timeout",
        )
        .into_response()
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        let mut r = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is answering as many requests as --max-concurrency allows: retry",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("unexpected error: {err}"),
        )
        .into_response()
    }
}

/// The whole API over `state`.
pub fn app(state: Arc<AppState>) -> Router {
    let limits = state.limits;
    let predictions = Router::new()
        .route("/invocations", post(routes::invocations))
        .route("/v1/models/{name}/predict", post(routes::predict_named))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(refused))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrency))
                .timeout(limits.timeout),
        )
        .layer(DefaultBodyLimit::max(limits.max_body_bytes));
    let ui = if state.ui.is_some() {
        crate::ui::router()
    } else {
        Router::new()
    };
    Router::new()
        .merge(predictions)
        .merge(ui)
        .route("/v1/models", get(routes::models))
        .route("/v1/models/{name}", get(routes::model))
        .route("/health", get(routes::health))
        .route("/ready", get(routes::ready))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            observe::observe,
        ))
        .with_state(state)
}

/// Loads every model (each fully checked) before anything listens.
fn load_all(
    config: &ServeConfig,
    registry: Option<&Registry>,
) -> Result<BTreeMap<String, Slot>, ServeError> {
    let mut slots = BTreeMap::new();
    for spec in &config.models {
        if slots.contains_key(&spec.name) {
            return Err(ServeError::DuplicateName {
                name: spec.name.clone(),
            });
        }
        let loaded = source::load(spec, registry)?;
        slots.insert(spec.name.clone(), Slot::new(spec.clone(), loaded));
    }
    Ok(slots)
}

fn bind(config: &ServeConfig) -> Result<tokio::net::TcpListener, ServeError> {
    let addr = SocketAddr::new(config.host, config.port);
    let failed = |source| ServeError::Bind {
        addr: addr.to_string(),
        source,
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(failed)?;
    socket.set_reuseaddr(true).map_err(failed)?;
    if config.reuse_port {
        socket.set_reuseport(true).map_err(failed)?;
    }
    socket.set_nodelay(true).map_err(failed)?;
    socket.bind(addr).map_err(failed)?;
    socket.listen(1024).map_err(failed)
}

/// SIGTERM or Ctrl-C.
async fn shutdown_requested() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

/// Runs the server until SIGTERM or Ctrl-C, then lets requests in flight finish (for at
/// most the request timeout) and returns.
pub fn run(config: ServeConfig) -> Result<(), ServeError> {
    let registry = match &config.registry {
        Some(uri) => Some(Arc::new(Registry::open_existing(uri)?.ok_or_else(
            || ServeError::BadSpec {
                arg: uri.clone(),
                reason: "no registry there".into(),
            },
        )?)),
        None => None,
    };
    let tokens = match &config.token_file {
        Some(path) => auth::read_tokens(path)?,
        None => Vec::new(),
    };
    let slots = load_all(&config, registry.as_deref())?;
    let state = Arc::new(AppState {
        slots,
        metrics: Metrics::new(),
        tokens,
        limits: config.limits,
        log: config.log,
        accepting: AtomicBool::new(true),
        ui: if config.ui { registry.clone() } else { None },
        trusted: config.trusted.clone(),
    });
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("skvault-serve");
    if config.threads > 0 {
        builder.worker_threads(config.threads);
    }
    let runtime = builder.build()?;
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    let watcher = match config.watch {
        Some(interval) => Some(crate::reload::spawn(
            Arc::clone(&state),
            registry.clone(),
            interval,
            stop_rx,
        )?),
        None => None,
    };
    let result = runtime.block_on(serve(&config, Arc::clone(&state)));
    drop(stop_tx);
    if let Some(w) = watcher {
        let _ = w.join();
    }
    // A blocking prediction still running past the drain deadline is not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

async fn serve(config: &ServeConfig, state: Arc<AppState>) -> Result<(), ServeError> {
    let listener = bind(config)?;
    let local = listener.local_addr()?;
    let names: Vec<&String> = state.slots.keys().collect();
    // The first line on stderr, always in this form: scripts and tests read the port here.
    eprintln!(
        "skvault serve: listening on http://{local} (models: {})",
        names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let log = state.log;
    let limits = state.limits;
    let router = app(Arc::clone(&state));
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let shutdown = shutdown_requested();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        event(log, "accept failed", json!({"error": e.to_string()}));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                    // Above --max-connections: closed at once rather than queued.
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    // A client that went away or sent garbage: nothing to report.
                    let _ = conn.await;
                    drop(permit);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    state.accepting.store(false, Ordering::SeqCst);
    event(log, "shutting down, draining requests in flight", json!({}));
    let deadline = limits.timeout + Duration::from_secs(1);
    tokio::select! {
        _ = graceful.shutdown() => {},
        _ = tokio::time::sleep(deadline) => event(log, "drain deadline passed, exiting", json!({})),
    }
    event(log, "stopped", json!({}));
    Ok(())
}
