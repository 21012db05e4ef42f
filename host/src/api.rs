//! The HTTP API the listeners serve: container URLs first (by `Host`, see
//! [`crate::ingress`]); then health, readiness and metrics, the admin's
//! reload (`POST /-/reload`, as Prometheus names it), and everything else
//! routed by path prefix to the HTTP frontends, with the caller
//! authenticated here. The nodes view of cluster backends is [`crate::nodes`].

use crate::auth::Verifier;
use crate::control::BackendHealth;
use crate::ingress::{self, Ingress};
use crate::metrics::Metrics;
use crate::model::Identity;
use crate::reload::{Outcome, Reloader};
use crate::runtime::busy::Responsive;
use crate::worlds::http_frontend::{FrontendError, HttpFrontend};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gantry_sdk::CALLER_HEADER;
use http_body_util::BodyExt;
use std::sync::Arc;

/// What the API serves.
pub struct Api {
    /// Frontends, longest prefix first.
    pub frontends: Vec<HttpFrontend>,
    /// Token verification.
    pub verifier: Verifier,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Problems that make the host not ready (plugins missing or failed to load).
    pub problems: Vec<String>,
    /// Which backends answer; one that does not keeps the host not ready.
    pub health: Arc<BackendHealth>,
    /// Long-lived plugins (MQTT frontends); one that stops answering keeps
    /// the host not ready.
    pub long_lived: Vec<Arc<dyn Responsive>>,
    /// Swaps plugins, for `POST /-/reload`.
    pub reloader: Arc<Reloader>,
    /// Container URLs, answered before any route; none when disabled.
    pub ingress: Option<Arc<Ingress>>,
    /// The nodes view (`/-/backends/...`, `/-/workloads/.../tasks`).
    pub nodes: Option<crate::nodes::NodesApi>,
}

/// The axum router.
pub fn router(mut api: Api) -> Router {
    api.frontends
        .sort_by_key(|f| std::cmp::Reverse(f.prefix.trim_end_matches('/').len()));
    let container_urls = api.ingress.take();
    let nodes = api.nodes.take();
    let state = Arc::new(api);
    let routes = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/-/reload", post(reload))
        .merge(nodes.map(crate::nodes::router).unwrap_or_default())
        .fallback(route)
        .with_state(state);
    match container_urls {
        // The layer wraps the fallback too: a container URL never reaches the API.
        Some(g) => routes.layer(axum::middleware::from_fn_with_state(g, ingress::intercept)),
        None => routes,
    }
}

async fn readyz(State(s): State<Arc<Api>>) -> Response {
    let mut problems = s.problems.clone();
    problems.extend(s.health.problems());
    problems.extend(s.long_lived.iter().filter_map(|p| p.unresponsive()));
    if problems.is_empty() {
        Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not ready", "problems": problems})),
        )
            .into_response()
    }
}

async fn metrics(State(s): State<Arc<Api>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// `POST /-/reload`, for callers with the ADMIN role: the reload's report,
/// 200 when applied or unchanged, 422 when refused (nothing was swapped).
async fn reload(State(s): State<Arc<Api>>, req: Request) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match s.verifier.verify_header(auth) {
        Err(reason) => return error(StatusCode::UNAUTHORIZED, reason),
        Ok(c) if !c.is_admin() => {
            return error(
                StatusCode::FORBIDDEN,
                format!("{} may not reload: the ADMIN role is required", c.subject),
            );
        }
        Ok(c) => tracing::info!(caller = %c.subject, "reload requested"),
    }
    let report = s.reloader.reload().await;
    let status = match report.outcome {
        Outcome::Refused => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    (status, Json(report)).into_response()
}

/// The `gantry-caller` header naming the caller the host verified:
/// `{"subject": ..., "roles": [...]}`, or `{"unauthenticated": reason}`.
fn caller_header(identity: &Identity) -> Option<axum::http::HeaderValue> {
    let value = match identity {
        Identity::Caller(c) => serde_json::json!({"subject": c.subject, "roles": c.roles}),
        Identity::Unauthenticated(reason) => serde_json::json!({"unauthenticated": reason}),
        Identity::None => return None,
    };
    // JSON escapes every control character but DEL, the one other byte a
    // header value may not hold: escape it too, so the value always fits.
    let text = value.to_string().replace('\u{7f}', "\\u007f");
    axum::http::HeaderValue::from_bytes(text.as_bytes()).ok()
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

async fn route(State(s): State<Arc<Api>>, mut req: Request) -> Response {
    let path = req.uri().path().to_string();
    let Some(frontend) = s.frontends.iter().find(|f| f.matches(&path)) else {
        return error(StatusCode::NOT_FOUND, format!("no frontend serves {path}"));
    };
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let identity = match s.verifier.verify_header(auth) {
        Ok(c) => Identity::Caller(c),
        Err(reason) => Identity::Unauthenticated(reason),
    };
    // The plugin acts as the verified identity; it never sees the credential,
    // and learns who the caller is from the host's own header, not a host call.
    req.headers_mut().remove(header::AUTHORIZATION);
    // The SDK names the header, for the plugins that read it.
    req.headers_mut().remove(CALLER_HEADER);
    if let Some(v) = caller_header(&identity) {
        req.headers_mut().insert(CALLER_HEADER, v);
    }
    let req =
        req.map(|b| b.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string()))));
    let secure = req.extensions().get::<crate::tls::Secure>().is_some();
    match frontend.handle(req, identity, secure).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => {
            tracing::error!(frontend = frontend.name(), error = %e, "frontend failed");
            let status = match &e {
                FrontendError::Call(crate::runtime::CallError::Deadline { .. }) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                FrontendError::Call(crate::runtime::CallError::Unanswered { .. }) => {
                    StatusCode::GATEWAY_TIMEOUT
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::Caller;

    #[test]
    fn the_caller_header_always_fits_in_a_header() {
        let odd = Identity::Caller(Caller {
            subject: "al\u{7f}ice\n\u{1}é".into(),
            roles: vec!["ADMIN".into()],
        });
        let v = caller_header(&odd).expect("a header value");
        let back: serde_json::Value = serde_json::from_slice(v.as_bytes()).expect("JSON as sent");
        assert_eq!(back["subject"], "al\u{7f}ice\n\u{1}é");
        let anon = caller_header(&Identity::Unauthenticated("missing bearer token".into()))
            .expect("a header value");
        assert_eq!(
            anon.to_str().ok(),
            Some(r#"{"unauthenticated":"missing bearer token"}"#)
        );
        assert!(caller_header(&Identity::None).is_none());
    }
}
