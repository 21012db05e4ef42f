//! HTTP frontends: a request routed to a plugin's `wasi:http/incoming-handler`,
//! made as the caller the host authenticated.

use super::PluginState;
use crate::model::Identity;
use crate::runtime::CallError;
use crate::runtime::pool::{ExportLoader, InstancePool};
use std::sync::Arc;
use std::time::Instant;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Why a request could not be answered by the plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrontendError {
    /// The plugin failed in the guest.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The plugin answered with a `wasi:http` error code instead of a response.
    #[error("plugin `{plugin}` answered with an error: {code:?}")]
    ErrorCode {
        /// Plugin name.
        plugin: String,
        /// The code.
        code: ErrorCode,
    },
    /// The plugin returned without setting a response.
    #[error("plugin `{0}` returned without a response")]
    NoResponse(String),
    /// The host could not hand the request over.
    #[error("plugin `{plugin}`: {message}")]
    Host {
        /// Plugin name.
        plugin: String,
        /// Why.
        message: String,
    },
}

/// An HTTP frontend plugin mounted under a path prefix.
pub struct HttpFrontend {
    /// Path prefix.
    pub prefix: String,
    pool: Arc<FrontendPool>,
}

/// The pool of an HTTP frontend plugin.
pub type FrontendPool = InstancePool<PluginState, Proxy>;

impl HttpFrontend {
    /// Mount `pool` under `prefix`.
    pub fn new(prefix: String, pool: Arc<FrontendPool>) -> Self {
        Self { prefix, pool }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.pool.name()
    }

    /// Loads the `wasi:http/incoming-handler` export.
    pub fn loader() -> ExportLoader<PluginState, Proxy> {
        |store, instance| Proxy::new(store, instance)
    }

    /// Whether this frontend serves `path`.
    pub fn matches(&self, path: &str) -> bool {
        let p = self.prefix.trim_end_matches('/');
        p.is_empty()
            || path == p
            || path.starts_with(&format!("{p}/"))
            || path.starts_with(&format!("{p}?"))
    }

    /// Handle one request as `identity`, which came over TLS when `secure`.
    /// The response may still be streaming when this returns; the instance
    /// goes back to the pool once the guest finishes.
    pub async fn handle<B>(
        &self,
        req: hyper::Request<B>,
        identity: Identity,
        secure: bool,
    ) -> Result<hyper::Response<HyperOutgoingBody>, FrontendError>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let plugin = self.pool.name().to_string();
        let host_err = |e: wasmtime::Error| FrontendError::Host {
            plugin: plugin.clone(),
            message: format!("{e:#}"),
        };
        let mut p = self.pool.checkout().await?;
        self.pool.begin(&mut p, |s| s.bind(identity));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = p
            .store
            .data_mut()
            .http()
            .new_incoming_request(if secure { Scheme::Https } else { Scheme::Http }, req)
            .map_err(host_err)?;
        let out = p
            .store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(host_err)?;
        let pool = self.pool.clone();
        let within = self.pool.answer_within();
        let (cut_tx, cut_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let call = p
                .exports
                .wasi_http_incoming_handler()
                .call_handle(&mut p.store, req, out);
            // Cut when the head did not come in time; a streaming body
            // (logs followed for an hour) runs on once the head is out.
            let result = tokio::select! {
                result = call => result,
                // Only a sent cut: the sender dropped means the head went out.
                Ok(()) = cut_rx => return Err(pool.cut(p, "handle", within)),
            };
            pool.finish(p, started, result)
        });
        let head = match tokio::time::timeout(within, rx).await {
            Ok(head) => head,
            Err(_) => {
                let _ = cut_tx.send(());
                return Err(match task.await {
                    Ok(Err(e)) => FrontendError::Call(e),
                    _ => FrontendError::NoResponse(plugin),
                });
            }
        };
        match head {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(FrontendError::ErrorCode { plugin, code }),
            Err(_) => match task.await {
                Ok(Err(e)) => Err(FrontendError::Call(e)),
                Ok(Ok(())) => Err(FrontendError::NoResponse(plugin)),
                Err(e) => Err(FrontendError::Host {
                    plugin,
                    message: e.to_string(),
                }),
            },
        }
    }
}
