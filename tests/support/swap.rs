//! A bounded load that records which build answered each request: the
//! REST frontend's `GET /v1/openapi.json` over keep-alive connections,
//! each request timed and its `info.x-gantry-build` kept, so a hot-swap
//! test and benchmark can tell what was served before, during and after.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One request of the load.
#[derive(Debug, Clone)]
pub struct Answer {
    /// When it was sent, since the load started.
    pub sent: Duration,
    /// How long it took.
    pub latency: Duration,
    /// The HTTP status; 0 when the exchange failed.
    pub status: u16,
    /// `info.x-gantry-build` of the answer, or what went wrong.
    pub build: String,
}

/// A load running on its own thread until stopped, or until its count or
/// time budget is spent.
pub struct BuildLoad {
    started: Instant,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Answer>>,
}

impl BuildLoad {
    /// `connections` keep-alive connections to `addr`, each sending at most
    /// `per_connection` requests within `budget`.
    pub fn start(
        addr: SocketAddr,
        token: &str,
        connections: usize,
        per_connection: usize,
        budget: Duration,
    ) -> BuildLoad {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, auth) = (stop.clone(), format!("Bearer {token}"));
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("load runtime");
            rt.block_on(async move {
                let mut tasks = Vec::new();
                for _ in 0..connections {
                    let (flag, auth) = (flag.clone(), auth.clone());
                    tasks.push(tokio::spawn(async move {
                        one_connection(addr, &auth, started, per_connection, budget, &flag).await
                    }));
                }
                let mut all = Vec::new();
                for t in tasks {
                    all.extend(t.await.unwrap_or_default());
                }
                all.sort_by_key(|a| a.sent);
                all
            })
        });
        BuildLoad {
            started,
            stop,
            thread,
        }
    }

    /// Time since the load started (to compare with [`Answer::sent`]).
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stop sending and collect every answer, in the order they were sent.
    pub fn stop(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Release);
        self.thread.join().expect("load thread")
    }
}

async fn one_connection(
    addr: SocketAddr,
    auth: &str,
    started: Instant,
    count: usize,
    budget: Duration,
    stop: &AtomicBool,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    let failed = |sent: Duration, t: Instant, why: String| Answer {
        sent,
        latency: t.elapsed(),
        status: 0,
        build: why,
    };
    let connect = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        anyhow::Ok(send)
    };
    let mut send = match connect.await {
        Ok(s) => s,
        Err(e) => {
            answers.push(failed(started.elapsed(), Instant::now(), e.to_string()));
            return answers;
        }
    };
    for _ in 0..count {
        if stop.load(Ordering::Acquire) || started.elapsed() >= budget {
            break;
        }
        let sent = started.elapsed();
        let t = Instant::now();
        let req = match Request::get("/v1/openapi.json")
            .header("host", "127.0.0.1")
            .header("authorization", auth)
            .body(Empty::<Bytes>::new())
        {
            Ok(r) => r,
            Err(e) => {
                answers.push(failed(sent, t, e.to_string()));
                break;
            }
        };
        let resp = match send.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                answers.push(failed(sent, t, e.to_string()));
                break;
            }
        };
        let status = resp.status().as_u16();
        let body = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                answers.push(failed(sent, t, e.to_string()));
                break;
            }
        };
        let latency = t.elapsed();
        let build = build_of(&body).unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        answers.push(Answer {
            sent,
            latency,
            status,
            build,
        });
    }
    answers
}

/// `info.x-gantry-build` of an OpenAPI document, found without parsing the
/// whole document (the load generator must stay cheaper than the host).
fn build_of(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"x-gantry-build\":\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = body[at..].iter().position(|b| *b == b'"')?;
    Some(String::from_utf8_lossy(&body[at..at + len]).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_is_read_from_the_document() {
        let doc = serde_json::json!({"openapi": "3.0.3", "info": {"title": "t", "x-gantry-build": "0.1.0+b"}});
        assert_eq!(
            super::build_of(doc.to_string().as_bytes()).as_deref(),
            Some("0.1.0+b")
        );
        assert_eq!(super::build_of(b"{}"), None);
    }
}
