//! A bounded HTTP/1.1 load generator for the benchmarks: `connections`
//! keep-alive connections, each sending one request after another until it
//! has sent its share or the time budget is spent.

use crate::bench::Samples;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What one load run measured.
#[derive(Debug, Default)]
pub struct Load {
    /// Latency of every answered request.
    pub samples: Samples,
    /// Requests that failed or answered other than 200.
    pub errors: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Load {
    /// Answered requests per second.
    pub fn per_second(&self) -> f64 {
        self.samples.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `GET path` with `Authorization: Bearer token`, `total` times over
/// `connections` connections to `addr`, for at most `budget`.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    token: &str,
    connections: usize,
    total: usize,
    budget: Duration,
) -> anyhow::Result<Load> {
    let started = Instant::now();
    let deadline = started + budget;
    let share = total.div_ceil(connections.max(1));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (path, auth) = (path.to_string(), format!("Bearer {token}"));
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut load = Load::default();
            for _ in 0..share {
                if Instant::now() >= deadline {
                    break;
                }
                let req = Request::get(&path)
                    .header("host", "127.0.0.1")
                    .header("authorization", &auth)
                    .body(Empty::<Bytes>::new())?;
                let t = Instant::now();
                match send.send_request(req).await {
                    Ok(resp) => {
                        let ok = resp.status() == 200;
                        let body = resp.into_body().collect().await;
                        if ok && body.is_ok() {
                            load.samples.push(t.elapsed());
                        } else {
                            load.errors += 1;
                        }
                    }
                    Err(_) => {
                        load.errors += 1;
                        break;
                    }
                }
            }
            anyhow::Ok(load)
        }));
    }
    let mut all = Load::default();
    for t in tasks {
        let one = t.await??;
        all.samples.extend(one.samples);
        all.errors += one.errors;
    }
    all.elapsed = started.elapsed();
    Ok(all)
}

/// The body of one unauthenticated `GET path` to `addr`, as text.
pub async fn text(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::get(path)
        .header("host", "127.0.0.1")
        .body(Empty::<Bytes>::new())?;
    let body = send.send_request(req).await?.into_body().collect().await?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// The value of the metric sample `series` (its name and labels as the
/// text exposition writes them) in `metrics`.
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}
