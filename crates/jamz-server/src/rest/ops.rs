//! Routes for whoever runs the server: `/healthz` (the process answers), `/readyz` (and its
//! database does: a load balancer sends no one to a process whose database is gone) and
//! `/metrics` (Prometheus text).
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::metrics::Gauges;
use crate::state::AppState;

/// How long the database has to answer a readiness probe.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(READY_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the database is too slow"),
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (db_connections, db_idle) = state.db.pool_figures();
    let text = state.metrics.render(Gauges {
        live_sessions: state.live.len(),
        db_connections,
        db_idle,
    });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
