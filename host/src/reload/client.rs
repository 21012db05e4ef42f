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
    /// Nothing answered there, or the exchange broke off.
    #[error("cannot reach the host at {address}: {message}")]
    Unreachable {
        /// Where it was asked.
        address: String,
        /// Why.
        message: String,
    },
}

/// Where to reach a host listening on `listen`: its own address, or
/// loopback when it listens on every address.
pub fn address_of(listen: &str) -> Result<SocketAddr, ClientError> {
    let mut addr: SocketAddr = listen
        .parse()
        .map_err(|_| ClientError::Address(listen.to_string()))?;
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    Ok(addr)
}

/// Ask the host at `address` to reload, as the bearer of `token`: the HTTP
/// status and the body it answered.
pub async fn request_reload(
    address: SocketAddr,
    token: &str,
) -> Result<(u16, String), ClientError> {
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

    #[test]
    fn every_address_is_asked_on_loopback() {
        assert_eq!(
            address_of("0.0.0.0:8080").ok(),
            "127.0.0.1:8080".parse().ok()
        );
        assert_eq!(address_of("[::]:9000").ok(), "[::1]:9000".parse().ok());
        assert_eq!(address_of("127.0.0.2:81").ok(), "127.0.0.2:81".parse().ok());
        assert!(matches!(
            address_of("localhost:80"),
            Err(ClientError::Address(_))
        ));
    }
}
