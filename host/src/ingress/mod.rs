//! Container URLs: a request whose `Host` is `<name>.<ingress-domain>` goes
//! to a port of the workload that name stands for (`gantry_sdk::ingress`),
//! reached inside the workload's network namespace, so nothing is
//! published on the host and `--bridge=none` runtimes work alike.
//!
//! - [`route`]: from a host name to a process's namespace and a port, or
//!   why not (404 unknown or nothing exposed, 503 not running);
//! - [`netns`]: sockets made inside another network namespace;
//! - [`forward`]: the proxying (streaming, upgrades, `X-Forwarded-*`);
//! - [`published`]: host ports forwarded into workloads' namespaces, the
//!   same way.
//!
//! Container URLs are public, like the service address they stand for: the
//! host asks for no token, and passes the client's `Authorization` on.

pub mod forward;
pub mod netns;
pub mod published;
pub mod route;

use crate::control::ControlPlane;
use crate::metrics::Metrics;
use crate::tls::Secure;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{StatusCode, header};
use serde::Deserialize;
use std::sync::Arc;

/// `[ingress]`: container URLs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    /// The domain container URLs are under (`<name>.<domain>`); HTTP
    /// frontends get it as their `ingress-domain` setting.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// Whether the host answers container URLs at all.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            domain: default_domain(),
            enabled: true,
        }
    }
}

fn default_domain() -> String {
    gantry_sdk::ingress::DEFAULT_DOMAIN.into()
}

fn enabled() -> bool {
    true
}

/// Routes container URLs to workloads.
pub struct Ingress {
    /// `.<domain>`, lower-case.
    suffix: String,
    routes: route::Routes,
    upstream: forward::Upstream,
    metrics: Metrics,
}

impl Ingress {
    /// Container URLs under `config`'s domain over `control`'s workloads,
    /// reaching them through `dialer`.
    pub fn new(
        config: &IngressConfig,
        control: Arc<ControlPlane>,
        metrics: Metrics,
        dialer: Arc<netns::Dialer>,
    ) -> Ingress {
        Ingress {
            suffix: format!(".{}", config.domain.trim_matches('.').to_ascii_lowercase()),
            routes: route::Routes::new(control),
            upstream: forward::upstream(dialer),
            metrics,
        }
    }

    /// The container URL `req` is for, if it is for one.
    fn named(&self, req: &Request) -> Option<route::Named> {
        // HTTP/2 (and absolute-form HTTP/1.1) carry the authority in the URI.
        let host = match req.uri().authority() {
            Some(a) => a.as_str(),
            None => req.headers().get(header::HOST)?.to_str().ok()?,
        };
        route::named(host, &self.suffix)
    }

    async fn serve(&self, named: route::Named, req: Request) -> Response {
        let target = match self.routes.resolve(&named).await {
            Ok(t) => t,
            Err(r) => {
                tracing::debug!(host = %named.host, status = %r.status, detail = %r.detail, "container URL refused");
                return refusal(r.status);
            }
        };
        let traffic = self.metrics.workload_traffic(&target.workload);
        let origin = forward::Origin {
            host: named.host,
            secure: req.extensions().get::<Secure>().is_some(),
        };
        let name = named.name;
        let answer = forward::forward(&self.upstream, &target, origin, req, traffic.clone())
            .await
            .unwrap_or_else(|(status, detail)| {
                tracing::info!(workload = %target.workload, %status, %detail, "container URL request failed");
                // Perhaps the workload moved on (a new process): read it again next time.
                self.routes.forget(&name);
                refusal(status)
            });
        traffic.answered(answer.status().as_u16());
        answer
    }
}

/// Middleware in front of every route: container URLs go to their
/// workload, everything else on to the API.
pub async fn intercept(State(ingress): State<Arc<Ingress>>, req: Request, next: Next) -> Response {
    match ingress.named(&req) {
        Some(named) => ingress.serve(named, req).await,
        None => next.run(req).await,
    }
}

/// A short plain-text answer saying that no workload answered, naming
/// nothing ([`route::public_reason`]).
fn refusal(status: StatusCode) -> Response {
    let reason = route::public_reason(status);
    let mut r = Response::new(Body::from(format!("gantry: {reason}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
