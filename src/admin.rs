//! The admin HTTP listener: `GET /metrics` (Prometheus text format 0.0.4), `GET /healthz`, and
//! the HTTP API under `/api/v1` ([`crate::api`]).
//!
//! Anything else is 404 (a known path with another method than GET/HEAD is 405). The listener
//! runs [`Metrics::upkeep`] every [`UPKEEP_INTERVAL`], and stops when the cancellation token
//! fires: it stops accepting at once, lets requests in flight finish, and gives up on lingering
//! connections after [`DRAIN_TIMEOUT`].

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often histogram samples are drained into buckets.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// How long a cancelled listener waits for open connections before returning anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves the admin endpoints on `listener` until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    api: Router,
    cancel: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin listener up (/metrics, /healthz)");
    }

    let upkeep = {
        let metrics = metrics.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {
                        let m = metrics.clone();
                        // Takes the recorder's locks: keep it off the async workers.
                        let _ = tokio::task::spawn_blocking(move || m.upkeep()).await;
                    }
                }
            }
        })
    };

    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { render_metrics(metrics).await }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .merge(api)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") });

    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(cancel.clone().cancelled_owned());
    let drain_deadline = async {
        cancel.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        res = server => {
            if let Err(e) = res {
                tracing::warn!(error = %e, "admin listener failed");
            }
        }
        _ = drain_deadline => {
            tracing::debug!("admin listener: connections still open after the drain timeout; closing");
        }
    }
    upkeep.abort();
    tracing::info!("admin listener stopped");
}

async fn render_metrics(metrics: Metrics) -> axum::response::Response {
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(body) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "rendering metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "render failed\n").into_response()
        }
    }
}
