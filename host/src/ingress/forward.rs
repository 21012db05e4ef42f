//! Forwarding one request to a workload's port: HTTP/1.1 upstream over a
//! pooled connection made in the workload's namespace, bodies streamed both
//! ways as they come (SSE, chunked), upgrades (WebSocket) tunnelled, and
//! the `X-Forwarded-*` headers a service behind a proxy expects.

use super::netns::Dialer;
use super::route::Target;
use crate::metrics::WorkloadTraffic;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The upstream HTTP client: connections pooled per target (the URI's
/// authority names the namespace's process and the port).
pub type Upstream = Client<NamespaceConnector, Body>;

/// An upstream client whose connections are made by `dialer`.
pub fn upstream(dialer: Arc<Dialer>) -> Upstream {
    Client::builder(TokioExecutor::new())
        // The Host upstream is the one the client sent, set below.
        .set_host(false)
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build(NamespaceConnector { dialer })
}

/// Connects to `http://<workload label>-<pid>:<port>` inside the network
/// namespace of `pid`, at the loopback address there.
#[derive(Clone)]
pub struct NamespaceConnector {
    dialer: Arc<Dialer>,
}

impl tower::Service<Uri> for NamespaceConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = std::io::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let dialer = self.dialer.clone();
        Box::pin(async move {
            let bad = || std::io::Error::other(format!("not a namespace target: {uri}"));
            let host = uri.host().ok_or_else(bad)?;
            let pid = host
                .rsplit_once('-')
                .and_then(|(_, pid)| pid.parse().ok())
                .ok_or_else(bad)?;
            let port = uri.port_u16().ok_or_else(bad)?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            Ok(TokioIo::new(dialer.connect(pid, addr).await?))
        })
    }
}

/// The upstream URI of `target`: its authority keys the connection pool, so
/// a workload's new process (a restart) gets new connections.
fn upstream_uri(target: &Target, path: Option<&str>) -> Result<Uri, http::Error> {
    let label = gantry_sdk::ingress::label(&target.workload);
    Uri::builder()
        .scheme("http")
        .authority(format!("{label}-{}:{}", target.pid, target.port))
        .path_and_query(path.unwrap_or("/"))
        .build()
}

/// Headers that concern one connection, never forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Drop hop-by-hop headers, and those `Connection` names; `Upgrade` stays
/// (with `Connection: upgrade`) when the exchange is an upgrade.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrading: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in HOP_BY_HOP.iter().chain(&named) {
        if upgrading && n == header::UPGRADE {
            continue;
        }
        headers.remove(n);
    }
    if upgrading {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Whether `req` asks to switch protocols (HTTP/1.1 `Upgrade`).
fn wants_upgrade(req: &Request) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

/// What the host knows of the client, for the `X-Forwarded-*` headers.
pub struct Origin {
    /// The host name the client asked for.
    pub host: String,
    /// Whether it came over TLS.
    pub secure: bool,
}

/// Send `req` to `target` and stream its answer back.
pub async fn forward(
    upstream: &Upstream,
    target: &Target,
    client: Origin,
    mut req: Request,
    traffic: WorkloadTraffic,
) -> Result<Response, (StatusCode, String)> {
    let upgrading = wants_upgrade(&req);
    let downstream_upgrade = upgrading.then(|| hyper::upgrade::on(&mut req));
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, upgrading);
    let forwarded_for = match (parts.headers.get("x-forwarded-for"), peer) {
        (Some(before), Some(ip)) => {
            HeaderValue::from_str(&format!("{}, {ip}", before.to_str().unwrap_or_default())).ok()
        }
        (None, Some(ip)) => HeaderValue::from_str(&ip.to_string()).ok(),
        (before, None) => before.cloned(),
    };
    if let Some(v) = forwarded_for {
        parts.headers.insert("x-forwarded-for", v);
    }
    let proto = if client.secure { "https" } else { "http" };
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Ok(host) = HeaderValue::from_str(&client.host) {
        parts.headers.insert("x-forwarded-host", host.clone());
        // HTTP/2 carries the host as `:authority`; HTTP/1.1 needs `Host`.
        parts.headers.insert(header::HOST, host);
    }
    parts.uri = upstream_uri(target, parts.uri.path_and_query().map(|p| p.as_str()))
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    parts.version = Version::HTTP_11;
    let inbound = traffic.clone();
    let body = Body::new(body.map_frame(move |f| {
        if let Some(d) = f.data_ref() {
            inbound.bytes_in(d.len());
        }
        f
    }));
    let started = Instant::now();
    let mut answer = upstream
        .request(Request::from_parts(parts, body))
        .await
        .map_err(|e| {
            (
                StatusCode::BAD_GATEWAY,
                format!(
                    "port {} of the workload does not answer: {}",
                    target.port,
                    cause(&e)
                ),
            )
        })?;
    traffic.upstream(started.elapsed());
    if answer.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(downstream) = downstream_upgrade
    {
        let upstream_io = hyper::upgrade::on(&mut answer);
        let tunnel = traffic.clone();
        tokio::spawn(async move {
            match tokio::try_join!(downstream, upstream_io) {
                Ok((down, up)) => {
                    let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
                    match tokio::io::copy_bidirectional(&mut down, &mut up).await {
                        Ok((sent, received)) => {
                            tunnel.bytes_in(sent as usize);
                            tunnel.bytes_out(received as usize);
                        }
                        Err(e) => tracing::debug!(error = %e, "upgraded connection ended"),
                    }
                }
                Err(e) => tracing::debug!(error = %e, "upgrade failed"),
            }
        });
        let (parts, _) = answer.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = answer.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let outbound = traffic;
    let body = Body::new(body.map_frame(move |f| {
        if let Some(d) = f.data_ref() {
            outbound.bytes_out(d.len());
        }
        f
    }));
    Ok(Response::from_parts(parts, body))
}

/// The innermost cause of a client error (the connector's I/O error says
/// more than "client error (Connect)").
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let mut upgrade = h.clone();
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::ACCEPT));
        strip_hop_by_hop(&mut upgrade, true);
        assert_eq!(upgrade[header::UPGRADE], "websocket");
        assert_eq!(upgrade[header::CONNECTION], "upgrade");
        assert!(!upgrade.contains_key("x-private"));
    }

    #[test]
    fn the_upstream_uri_names_process_and_port() {
        let t = Target {
            workload: "fa71f25f-f982-4bde-bc14-1d250776325d".into(),
            pid: 4242,
            port: 8080,
        };
        let uri = upstream_uri(&t, Some("/a?b=c")).expect("uri");
        assert_eq!(uri.port_u16(), Some(8080));
        assert!(uri.host().is_some_and(|h| h.ends_with("-4242")), "{uri}");
        assert_eq!(uri.path_and_query().map(|p| p.as_str()), Some("/a?b=c"));
    }
}
