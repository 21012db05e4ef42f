//! `bench ingress`: a busybox httpd deployed through the REST API, asked
//! `GET /` at its container URL through gantry's ingress, against the same
//! httpd reached directly from inside its network namespace (client
//! threads that entered it), same run, same client: four concurrent
//! clients, one connection per request (busybox httpd closes each),
//! bounded in count and time. Reports latency quantiles and
//! requests per second of both, and their ratio (goal: ≥ 0.8 of direct).
//! Run by `cargo xtask bench`.

use anyhow::{Context, Result, bail};
use gantry_tests::api::Api;
use gantry_tests::backends::Backend;
use gantry_tests::bench::{Row, Samples, count, report_with, smoke};
use gantry_tests::rpc::Rpc;
use gantry_tests::runtimes::TEST_IMAGE;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Concurrent clients.
const CLIENTS: usize = 4;
const PAGE: &str = "hello-from-the-bench\n";

/// How a client reaches the server.
#[derive(Clone)]
enum Path {
    /// The ingress, with this Host.
    Ingress(SocketAddr, String),
    /// Port 80 from inside the network namespace of this process.
    Direct(u32),
}

/// Move this thread into the network namespace of `pid`, for good.
fn enter_namespace(pid: u32) -> Result<()> {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    // SAFETY: setns(2) on a descriptor we own; it changes only this
    // thread's namespace, and no memory is involved.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        bail!("setns: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// One `GET /` on a new connection: its latency.
fn get(addr: SocketAddr, host: &str) -> Result<Duration> {
    let t = Instant::now();
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_nodelay(true)?;
    tcp.write_all(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer)?;
    let text = String::from_utf8_lossy(&answer);
    if !text.starts_with("HTTP/1.1 200") || !text.ends_with(PAGE) {
        bail!("unexpected answer: {text}");
    }
    Ok(t.elapsed())
}

/// `CLIENTS` client threads asking until `total` answers or `budget` is
/// spent: the latencies and the requests per second.
fn run(path: &Path, total: usize, budget: Duration) -> Result<(Samples, f64)> {
    let started = Instant::now();
    let deadline = started + budget;
    let results: Vec<Result<Samples>> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(move || {
                    let (addr, host) = match path {
                        Path::Ingress(addr, host) => (*addr, host.as_str()),
                        Path::Direct(pid) => {
                            enter_namespace(*pid)?;
                            ("127.0.0.1:80".parse()?, "localhost")
                        }
                    };
                    let mut samples = Samples::default();
                    while samples.len() < total / CLIENTS && Instant::now() < deadline {
                        samples.push(get(addr, host)?);
                    }
                    Ok(samples)
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| {
                c.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client panicked")))
            })
            .collect()
    });
    let mut all = Samples::default();
    for r in results {
        all.extend(r?);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((all, rate))
}

pub fn main() -> Result<()> {
    let api = Api::start_with(&Backend::Docker.config(30));
    let token = api.token("bench", "USER");
    let script = format!(
        "mkdir -p /www && printf '{}' > /www/index.html && exec httpd -f -p 80 -h /www",
        PAGE.replace('\n', "\\n")
    );
    let (s, c) = api.send(
        "POST",
        "/v1/containers",
        Some(&token),
        Some(
            json!({"name": "bench-web", "image": TEST_IMAGE, "cpu": 1, "ram": "64Mi",
                    "gpu": 0, "port": "80", "command": ["sh", "-c", script]}),
        ),
    );
    if s != 201 {
        bail!("create: {s} {c}");
    }
    let id = c["id"].as_str().context("id")?.to_string();
    let rpc = Rpc::new(&api.g, "bench", &["USER"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (pid, url) = loop {
        let (_, c) = api.send("GET", &format!("/v1/containers/{id}"), Some(&token), None);
        let w = rpc.get(&id).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if let (Some(url), Some(pid)) = (
            c["urls"][0].as_str(),
            w.containers.iter().find_map(|c| c.pid),
        ) {
            break (pid, url.to_string());
        }
        if Instant::now() > deadline {
            bail!("never deployed: {c}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };

    let direct = Path::Direct(pid);
    let ingress = Path::Ingress(format!("127.0.0.1:{}", api.g.port).parse()?, url);
    let total = count(20_000, 200);
    let budget = Duration::from_secs(if smoke() { 2 } else { 10 });
    // The server is up once it answers directly; then warm both paths.
    let up = Instant::now() + Duration::from_secs(20);
    while run(&direct, CLIENTS, budget).is_err() {
        if Instant::now() > up {
            bail!("httpd never answered");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    run(&direct, 100, budget)?;
    run(&ingress, 100, budget)?;
    let (base, base_rate) = run(&direct, total, budget)?;
    let (through, rate) = run(&ingress, total, budget)?;
    let _ = api.send(
        "DELETE",
        &format!("/v1/containers/{id}"),
        Some(&token),
        None,
    );
    report_with(
        "bench-ingress",
        "the same httpd reached directly inside its network namespace",
        &[Row::new("GET / at the container URL", &through, &base)],
        &[
            ("direct requests/s".into(), base_rate),
            ("ingress requests/s".into(), rate),
            ("ingress/direct throughput".into(), rate / base_rate),
        ],
    )
}
