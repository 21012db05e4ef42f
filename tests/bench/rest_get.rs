//! `bench rest-get`: `GET /v1/containers/{id}` and the list page
//! `GET /v1/containers?rows=10` through the Wasm REST frontend, against
//! native axum handlers in the same process doing the same work: the same
//! bearer-token check, the same control-plane call, the record as JSON.
//! One host built in-process, one listener, one runtime; 1 and 32
//! keep-alive connections. Run by `cargo xtask bench` (built in release).

use anyhow::{Context, Result, bail};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gantry::auth::Verifier;
use gantry::bindings::gantry::plugin::control::{CreateRequest, PageRequest, WorkloadFilter};
use gantry::bindings::types::{Caller, Error, RestartKind};
use gantry::control::ControlPlane;
use gantry_tests::bench::{Row, count, report_with};
use gantry_tests::load::{self, Load};
use gantry_tests::rpc::{busybox, frontends, workload};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Workloads of the bench's owner (the list page counts them all).
const WORKLOADS: usize = 50;
/// Longest a load run may take.
const BUDGET: Duration = Duration::from_secs(20);

/// What the native handlers share with the host: its control plane and
/// its token verification.
struct Native {
    control: Arc<ControlPlane>,
    verifier: Verifier,
}

impl Native {
    fn caller(&self, headers: &HeaderMap) -> Result<Caller, String> {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.verifier.verify_header(auth)
    }
}

fn unauthorized(reason: String) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"error": reason})),
    )
        .into_response()
}

fn failed(e: Error) -> Response {
    let status = match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(serde_json::json!({"error": e.describe()}))).into_response()
}

async fn native_get(
    State(n): State<Arc<Native>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let caller = match n.caller(&headers) {
        Ok(c) => c,
        Err(reason) => return unauthorized(reason),
    };
    match n.control.get(&caller, &id).await {
        Ok(w) => Json(w).into_response(),
        Err(e) => failed(e),
    }
}

async fn native_list(State(n): State<Arc<Native>>, headers: HeaderMap) -> Response {
    let caller = match n.caller(&headers) {
        Ok(c) => c,
        Err(reason) => return unauthorized(reason),
    };
    let filter = WorkloadFilter {
        namespace: None,
        namespace_prefix: None,
        name: None,
        annotations: Vec::new(),
        all_owners: false,
    };
    match n
        .control
        .list(&caller, filter, PageRequest { page: 1, rows: 10 })
        .await
    {
        Ok(page) => Json(page).into_response(),
        Err(e) => failed(e),
    }
}

/// The host (REST frontend, Docker backend) and the native routes on one listener.
async fn serve(dir: &std::path::Path) -> Result<(SocketAddr, Arc<Native>)> {
    let text = frontends("bench-rest-get", 3600, 10_000)
        .docker_backend()
        .build()
        .replace("{port}", "0")
        .replace("{dir}", &dir.display().to_string());
    let config = gantry::config::Config::parse(&text, "bench", dir.to_path_buf())?;
    let host = gantry::server::build(&config, true)?;
    let native = Arc::new(Native {
        control: host.control.clone(),
        verifier: Verifier::from_config(&config.auth)?,
    });
    let app = host.router().merge(
        axum::Router::new()
            .route("/native/containers", get(native_list))
            .route("/native/containers/{id}", get(native_get))
            .with_state(native.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, native))
}

async fn run() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (addr, native) = serve(dir.path()).await?;
    let (control, verifier) = (&native.control, &native.verifier);
    let owner = "bench-owner";
    let token = verifier.mint(owner, &["USER".to_string()], None, 3600, "")?;
    let caller = verifier.verify(&token).map_err(anyhow::Error::msg)?;
    let mut first = None;
    for i in 0..count(WORKLOADS, 3) {
        let w = control
            .create(
                &caller,
                CreateRequest {
                    name: format!("get-{i}"),
                    namespace: String::new(),
                    spec: workload(vec![busybox("main", "sleep 3600")], RestartKind::No),
                    annotations: Vec::new(),
                    start: false,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("create: {}", e.describe()))?;
        first.get_or_insert(w.id);
    }
    let id = first.context("a workload")?;
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    let cases = [
        (
            "GET one",
            format!("/v1/containers/{id}"),
            format!("/native/containers/{id}"),
        ),
        (
            "list page",
            "/v1/containers?rows=10".to_string(),
            "/native/containers".to_string(),
        ),
    ];
    for (what, wasm, native) in &cases {
        // Warm both paths (instances, caches) before measuring.
        load::get(addr, wasm, &token, 4, 200, BUDGET).await?;
        load::get(addr, native, &token, 4, 200, BUDGET).await?;
        for conns in [1usize, 32] {
            let n = count(if conns == 1 { 2_000 } else { 20_000 }, 50);
            let w: Load = load::get(addr, wasm, &token, conns, n, BUDGET).await?;
            let b: Load = load::get(addr, native, &token, conns, n, BUDGET).await?;
            if w.errors + b.errors > 0 {
                bail!(
                    "{what} c{conns}: {} Wasm and {} native requests failed",
                    w.errors,
                    b.errors
                );
            }
            rows.push(Row::new(
                &format!("{what} c{conns}: Wasm vs native"),
                &w.samples,
                &b.samples,
            ));
            figures.push((format!("{what} c{conns} Wasm req/s"), w.per_second()));
            figures.push((format!("{what} c{conns} native req/s"), b.per_second()));
            figures.push((
                format!("{what} c{conns} Wasm / native throughput"),
                w.per_second() / b.per_second(),
            ));
        }
    }
    let metrics = load::text(addr, "/metrics").await?;
    let series = |name: &str| format!("gantry_plugin_{name}_total{{plugin=\"rest\"}}");
    let calls = load::metric(&metrics, &series("calls")).context("REST calls metric")?;
    let started = load::metric(&metrics, &series("instances")).context("REST instances metric")?;
    figures.push((
        "REST calls per instance started".into(),
        calls / started.max(1.0),
    ));
    report_with(
        "rest_get",
        "a native axum handler in the same host: same token check, control-plane call and JSON",
        &rows,
        &figures,
    )
}

pub fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
