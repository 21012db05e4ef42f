//! `gantry reload`: asks a running host to reload, over its own listener
//! (`POST /-/reload` with an ADMIN bearer token), and hands back its report.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why the host could not be asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The listen address in the config is not `host:port`.
    #[error("cannot read the listen address `{0}` as host:port")]
    Address(String),
    /// The host took longer than [`REPLY`] to answer.
    #[error("the host at {0} did not answer within {REPLY:?}")]
    Timeout(String),
    /// Nothing answered there, or the exchange broke off.
    #[error("cannot reach the host at {address}: {message}")]
    Unreachable {
        /// Where it was asked.
        address: String,
        /// Why.
        message: String,
    },
}

/// Where to reach a host listening on `listen` (an address, or a name
/// such as `localhost:8080`): its own address, or loopback when it listens
/// on every address.
pub async fn address_of(listen: &str) -> Result<SocketAddr, ClientError> {
    let mut addr = match listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => tokio::net::lookup_host(listen)
            .await
            .ok()
            .and_then(|mut found| found.next())
            .ok_or_else(|| ClientError::Address(listen.to_string()))?,
    };
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    Ok(addr)
}

/// Longest a reload may take to answer (compiling a large component on a
/// slow machine takes a while).
pub const REPLY: std::time::Duration = std::time::Duration::from_secs(300);

/// Ask the host at `address` to reload, as the bearer of `token`: the HTTP
/// status and the body it answered. The address is the one in the config
/// being reloaded: a changed `server.listen` (not applied until a restart)
/// is not where the running host listens.
pub async fn request_reload(
    address: SocketAddr,
    token: &str,
) -> Result<(u16, String), ClientError> {
    tokio::time::timeout(REPLY, ask(address, token))
        .await
        .map_err(|_| ClientError::Timeout(address.to_string()))?
}

async fn ask(address: SocketAddr, token: &str) -> Result<(u16, String), ClientError> {
    let unreachable = |e: &dyn std::fmt::Display| ClientError::Unreachable {
        address: address.to_string(),
        message: e.to_string(),
    };
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(connection);
    let request = hyper::Request::post("/-/reload")
        .header(hyper::header::HOST, address.to_string())
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| unreachable(&e))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(&e))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_address_is_asked_on_loopback() {
        let at = |a: &'static str| address_of(a);
        assert_eq!(at("0.0.0.0:8080").await.ok(), "127.0.0.1:8080".parse().ok());
        assert_eq!(at("[::]:9000").await.ok(), "[::1]:9000".parse().ok());
        assert_eq!(at("127.0.0.2:81").await.ok(), "127.0.0.2:81".parse().ok());
        assert!(at("localhost:80").await.is_ok_and(|a| a.ip().is_loopback()));
        assert!(matches!(at("no port").await, Err(ClientError::Address(_))));
    }
}
