//! Outgoing `wasi:http` for plugins, routed to the endpoints their config grants.
//!
//! A plugin addresses an endpoint by name (`http://engine/v1.41/info`); the
//! host resolves the name to a unix socket or TCP address and speaks HTTP/1.1
//! or HTTP/2 with prior knowledge (for gRPC). Any other authority is refused
//! with `wasi:http`'s `HTTP-request-denied`, before a connection is attempted.
//!
//! This capability owns the `endpoints` table of a plugin's config, the
//! router that is its grant and part of its per-instance state
//! (`wasi:http`'s hooks), and its linker step.

use super::{HostCapability, Part, Services, Store};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
};

/// An endpoint grant in config: a URL string, or a table with a protocol choice.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EndpointSpec {
    /// `unix:///path`, `tcp://host:port`; HTTP/1.1.
    Url(String),
    /// A URL plus options.
    Detailed(EndpointDetail),
}

/// Detailed endpoint grant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointDetail {
    /// `unix:///path` or `tcp://host:port`.
    pub url: String,
    /// Speak HTTP/2 with prior knowledge (gRPC).
    #[serde(default)]
    pub http2: bool,
}

/// A plugin's `endpoints` table, by grant name.
pub type EndpointGrants = BTreeMap<String, EndpointSpec>;

/// The capability.
pub struct OutgoingHttp;

impl HostCapability for OutgoingHttp {
    const NAME: &'static str = "outgoing-http";
    // `wasi:http/types` is also what an HTTP frontend's export needs.
    const PROVIDES: &'static [(&'static str, &'static str)] = &[
        ("wasi:http/outgoing-handler", "0.2."),
        ("wasi:http/types", "0.2."),
    ];
    const KEYS: &'static [&'static str] = &["endpoints"];
    const LIVE: bool = true;
    type Grant = EndpointRouter;
    fn grant(table: &toml::Table) -> Result<EndpointRouter, String> {
        EndpointRouter::from_grants(&super::read_key(table, "endpoints")?)
    }
    type State = HttpState;
    fn state(grant: &EndpointRouter, _: &Services) -> HttpState {
        HttpState {
            ctx: WasiHttpCtx::new(),
            router: grant.clone(),
        }
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)
    }
}

/// Per-instance state: `wasi:http`'s context and the plugin's grants.
pub struct HttpState {
    ctx: WasiHttpCtx,
    router: EndpointRouter,
}

/// The view `wasi:http`'s own linking reads a store through.
pub fn view<'a>(part: Part<'a, OutgoingHttp>) -> WasiHttpCtxView<'a> {
    WasiHttpCtxView {
        ctx: &mut part.state.ctx,
        table: part.table,
        hooks: &mut part.state.router,
    }
}

/// Where a granted endpoint leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A unix domain socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

/// A granted endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Where to connect.
    pub address: Address,
    /// HTTP/2 with prior knowledge instead of HTTP/1.1.
    pub http2: bool,
}

impl Endpoint {
    /// Parse a config grant, expanding `${VAR}` and `${VAR:-default}`.
    pub fn parse(spec: &EndpointSpec) -> Result<Endpoint, String> {
        let (url, http2) = match spec {
            EndpointSpec::Url(u) => (u.as_str(), false),
            EndpointSpec::Detailed(d) => (d.url.as_str(), d.http2),
        };
        let url = expand_env(url)?;
        let address = if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "`{url}`: a unix socket path must be absolute (unix:///path)"
                ));
            }
            Address::Unix(PathBuf::from(path))
        } else if let Some(hostport) = url
            .strip_prefix("tcp://")
            .or_else(|| url.strip_prefix("http://"))
        {
            let hostport = hostport.trim_end_matches('/');
            if hostport
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                return Err(format!("`{url}`: expected tcp://host:port"));
            }
            Address::Tcp(hostport.to_string())
        } else {
            return Err(format!("`{url}`: expected unix:///path or tcp://host:port"));
        };
        Ok(Endpoint { address, http2 })
    }
}

/// Expand `${VAR}` and `${VAR:-default}` from the environment.
fn expand_env(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`{s}`: unclosed ${{"))?;
        let expr = &after[..end];
        let (var, default) = match expr.split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (expr, None),
        };
        match std::env::var(var).ok().filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(&v),
            None => match default {
                Some(d) => out.push_str(d),
                None => return Err(format!("`{s}`: environment variable {var} is not set")),
            },
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `wasi:http` hooks of one plugin: its grants, and nothing else.
#[derive(Debug, Clone, Default)]
pub struct EndpointRouter {
    grants: HashMap<String, Endpoint>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl EndpointRouter {
    /// A router for these grants (name → endpoint).
    pub fn new(grants: HashMap<String, Endpoint>) -> Self {
        Self { grants }
    }

    /// A router for a config table of grants.
    pub fn from_grants(grants: &EndpointGrants) -> Result<Self, String> {
        let mut parsed = HashMap::new();
        for (name, spec) in grants {
            let e = Endpoint::parse(spec).map_err(|e| format!("endpoint `{name}`: {e}"))?;
            parsed.insert(name.clone(), e);
        }
        Ok(Self::new(parsed))
    }

    /// The endpoint a request's authority names, if granted.
    pub fn resolve(&self, authority: &str) -> Option<&Endpoint> {
        let host = authority.rsplit_once(':').map_or(authority, |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                authority
            }
        });
        self.grants.get(host)
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendResult = Result<(http::Response<WasiBody>, IoFuture), HttpError>;

impl WasiHttpHooks for EndpointRouter {
    fn default_scheme(&mut self) -> Option<http::uri::Scheme> {
        Some(http::uri::Scheme::HTTP)
    }

    fn is_supported_scheme(&mut self, scheme: &http::uri::Scheme) -> bool {
        *scheme == http::uri::Scheme::HTTP
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let authority = request.uri().authority().map(|a| a.as_str().to_string());
        let endpoint = authority.as_deref().and_then(|a| self.resolve(a)).cloned();
        Box::new(async move {
            let Some(endpoint) = endpoint else {
                tracing::warn!(authority = ?authority, "outgoing request to an endpoint that was not granted");
                return Err(HttpError::HttpRequestDenied);
            };
            send(endpoint, request, options).await
        })
    }
}

async fn send(
    endpoint: Endpoint,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> SendResult {
    let connect_timeout = options
        .as_ref()
        .and_then(|o| o.connect_timeout)
        .unwrap_or(CONNECT_TIMEOUT);
    let first_byte_timeout = options.as_ref().and_then(|o| o.first_byte_timeout);
    let stream: Box<dyn Io> = match &endpoint.address {
        Address::Unix(path) => {
            let s = tokio::time::timeout(connect_timeout, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| HttpError::ConnectionTimeout)?
                .map_err(HttpError::Connect)?;
            Box::new(s)
        }
        Address::Tcp(addr) => {
            let s = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| HttpError::ConnectionTimeout)?
                .map_err(HttpError::Connect)?;
            Box::new(s)
        }
    };
    let io = TokioIo::new(stream);
    let response = if endpoint.http2 {
        // HTTP/2 needs the absolute URI for its :scheme and :authority pseudo-headers.
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await?;
        let driver = tokio::spawn(conn);
        let res = with_timeout(first_byte_timeout, sender.send_request(request)).await?;
        (res, driver)
    } else {
        // HTTP/1.1 to an origin server sends only the path.
        let path = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await?;
        let driver = tokio::spawn(conn);
        let res = with_timeout(first_byte_timeout, sender.send_request(request)).await?;
        (res, driver)
    };
    let (res, driver) = response;
    use http_body_util::BodyExt;
    let res = res.map(|b| b.map_err(HttpError::from).boxed_unsync());
    let io: IoFuture = Box::new(async move {
        match driver.await {
            Ok(r) => r.map_err(HttpError::from),
            Err(e) => Err(HttpError::InternalError(Some(e.to_string()))),
        }
    });
    Ok((res, io))
}

async fn with_timeout<F, T>(limit: Option<Duration>, f: F) -> Result<T, HttpError>
where
    F: Future<Output = Result<T, hyper::Error>>,
{
    match limit {
        Some(d) => tokio::time::timeout(d, f)
            .await
            .map_err(|_| HttpError::ConnectionReadTimeout)?
            .map_err(HttpError::from),
        None => f.await.map_err(HttpError::from),
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp() {
        let e = Endpoint::parse(&EndpointSpec::Url("unix:///run/x.sock".into())).expect("unix");
        assert_eq!(e.address, Address::Unix("/run/x.sock".into()));
        let e = Endpoint::parse(&EndpointSpec::Detailed(EndpointDetail {
            url: "tcp://127.0.0.1:2375".into(),
            http2: true,
        }))
        .expect("tcp");
        assert_eq!(e.address, Address::Tcp("127.0.0.1:2375".into()));
        assert!(e.http2);
        assert!(Endpoint::parse(&EndpointSpec::Url("ftp://x".into())).is_err());
        assert!(Endpoint::parse(&EndpointSpec::Url("unix://relative".into())).is_err());
    }

    #[test]
    fn expands_environment_defaults() {
        let e = Endpoint::parse(&EndpointSpec::Url(
            "${GANTRY_TEST_SURELY_UNSET:-unix:///var/run/docker.sock}".into(),
        ))
        .expect("default applies");
        assert_eq!(e.address, Address::Unix("/var/run/docker.sock".into()));
        assert!(Endpoint::parse(&EndpointSpec::Url("${GANTRY_TEST_SURELY_UNSET}".into())).is_err());
    }

    #[test]
    fn resolves_only_granted_names() {
        let mut g = HashMap::new();
        g.insert(
            "engine".to_string(),
            Endpoint {
                address: Address::Tcp("127.0.0.1:1".into()),
                http2: false,
            },
        );
        let r = EndpointRouter::new(g);
        assert!(r.resolve("engine").is_some());
        assert!(r.resolve("engine:80").is_some());
        assert!(r.resolve("example.com").is_none());
        assert!(r.resolve("127.0.0.1:1").is_none());
    }
}
