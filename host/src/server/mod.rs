//! Wiring a configuration into a running host, and serving it.
//!
//! - `plugins`: every plugin loaded, its world read from the component and
//!   checked against the table it is listed in;
//! - `build`: the host built in named steps, each needing the one before:
//!   the domain (inventory, state, GPU ledger), backends in stacking order,
//!   the control plane, frontends, listeners, the router;
//! - this module: the host serving its listeners until it is stopped.

mod build;
mod plugins;

pub use build::build;
pub use plugins::{LoadedPlugins, PluginReport, load_plugins};

use crate::control::ControlPlane;
use crate::ingress::netns::Dialer;
use crate::ingress::published::{PortsConfig, Publisher};
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::tls::Tls;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A host ready to serve.
pub struct Host {
    /// The control plane.
    pub control: Arc<ControlPlane>,
    router: axum::Router,
    listen: String,
    resync: Duration,
    gpu_health: Duration,
    metrics: Metrics,
    reloader: Arc<Reloader>,
    tls: Option<(String, Tls)>,
    /// Published ports' config and the namespace thread they dial through.
    ports: Option<(PortsConfig, Arc<Dialer>)>,
}

impl Host {
    /// The host's HTTP routes, to serve inside another server (the
    /// benchmarks put native baselines beside them).
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Swaps this host's plugins (`gantry reload`, SIGHUP).
    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// Serve until the process is stopped; SIGHUP reloads.
    pub async fn serve(self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .with_context(|| format!("binding {}", self.listen))?;
        tracing::info!(listen = %listener.local_addr()?, "gantry serving");
        // A frontend streams its body in chunks: without TCP_NODELAY the
        // second chunk waits for the client's delayed ACK (40 ms) whenever
        // a response spans more than one write.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        self.control.reconciler().spawn(self.resync);
        if let Some((config, dialer)) = &self.ports {
            Publisher::spawn(config, self.control.clone(), dialer.clone());
        }
        tokio::spawn(
            self.control
                .ledger()
                .clone()
                .watch_health(self.gpu_health, self.metrics.clone()),
        );
        tokio::spawn(reload_on_hangup(self.reloader.clone()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut https = None;
        if let Some((listen, tls)) = self.tls {
            let secure = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen} (HTTPS)"))?;
            tracing::info!(
                listen = %secure.local_addr()?,
                authority = ?tls.authority,
                "gantry serving HTTPS (HTTP/2 and HTTP/1.1)"
            );
            let router = self.router.clone();
            https = Some(tokio::spawn(crate::tls::serve(
                secure, tls, router, stopped,
            )));
        }
        // The peer's address, for the X-Forwarded-For of container URLs.
        let service = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                shutdown().await;
                let _ = stop.send(true);
            })
            .await?;
        // HTTPS requests in flight finish too.
        if let Some(https) = https {
            let _ = https.await;
        }
        Ok(())
    }
}

/// SIGHUP reloads, as daemons do; the report goes to the log.
async fn reload_on_hangup(reloader: Arc<Reloader>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; reload with `gantry reload`");
        return;
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading");
        reloader.reload().await;
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// Whether `p` looks like one of our build outputs (for `check`'s hint).
pub fn build_hint(p: &Path) -> Option<String> {
    let s = p.to_string_lossy();
    s.contains("wasm32-wasip2")
        .then(|| "build the plugins with `cargo xtask build`".to_string())
}
