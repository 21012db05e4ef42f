//! The host functions plugins import: `control` (as the bound caller),
//! `logging`, `config`, `progress`, `devices` and `mqtt-client`.

use super::state::{Identity, PluginState};
use crate::bindings::gantry::plugin::{config, control, devices, logging, mqtt_client, progress};
use crate::bindings::types::{
    Caller, ContainerStats, Error, GpuDevice, GpuModel, LogLine, LogOptions, Timestamp, Workload,
};
use crate::control::ControlPlane;
use crate::driver::LogSource;
use crate::secrets::Redact;
use std::sync::Arc;
use wasmtime::component::Resource;

/// Longest a plugin may block in one `log-reader.next`.
const MAX_LOG_WAIT_MS: u32 = 30_000;

/// A `control.log-reader` resource: an open log stream.
pub struct LogReaderHandle {
    source: Box<dyn LogSource>,
}

impl PluginState {
    /// The control plane and the caller bound to this call, or the reason there is none.
    fn acting(&self) -> Result<(Arc<ControlPlane>, Caller), Error> {
        let control = self
            .services
            .control()
            .cloned()
            .ok_or_else(|| Error::Unavailable("the control plane is not running".into()))?;
        match &self.identity {
            Identity::Caller(c) => Ok((control, c.clone())),
            Identity::Unauthenticated(reason) => Err(Error::Unauthenticated(reason.clone())),
            Identity::None => Err(Error::Unauthenticated(
                "this call is not made on behalf of a caller".into(),
            )),
        }
    }
}

macro_rules! as_caller {
    ($self:ident, |$cp:ident, $c:ident| $body:expr) => {{
        let ($cp, $c) = match $self.acting() {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        Ok($body.await.map(Redact::redact))
    }};
}

impl control::Host for PluginState {
    async fn whoami(&mut self) -> wasmtime::Result<Result<Caller, Error>> {
        Ok(self.acting().map(|(_, c)| c))
    }
    async fn create(
        &mut self,
        request: control::CreateRequest,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.create(&c, request))
    }
    async fn get(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.get(&c, &id))
    }
    async fn list(
        &mut self,
        filter: control::WorkloadFilter,
        page: control::PageRequest,
    ) -> wasmtime::Result<Result<control::WorkloadPage, Error>> {
        as_caller!(self, |cp, c| cp.list(&c, filter, page))
    }
    async fn update(
        &mut self,
        id: String,
        spec: crate::bindings::types::WorkloadSpec,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.update(&c, &id, spec))
    }
    async fn reconfigure(
        &mut self,
        id: String,
        request: control::ReconfigureRequest,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.reconfigure(&c, &id, request))
    }
    async fn set_annotations(
        &mut self,
        id: String,
        annotations: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.set_annotations(&c, &id, annotations))
    }
    async fn delete(&mut self, id: String, force: bool) -> wasmtime::Result<Result<(), Error>> {
        as_caller!(self, |cp, c| cp.delete(&c, &id, force))
    }
    async fn start(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.start(&c, &id))
    }
    async fn stop(
        &mut self,
        id: String,
        options: control::StopOptions,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.stop(&c, &id, options))
    }
    async fn restart(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.restart(&c, &id))
    }
    async fn pause(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.pause(&c, &id))
    }
    async fn resume(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.resume(&c, &id))
    }
    async fn rename(
        &mut self,
        id: String,
        name: String,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.rename(&c, &id, name))
    }
    async fn revisions(
        &mut self,
        id: String,
        page: control::PageRequest,
    ) -> wasmtime::Result<Result<control::RevisionPage, Error>> {
        as_caller!(self, |cp, c| cp.revisions(&c, &id, page))
    }
    async fn stats(
        &mut self,
        id: String,
        container: Option<String>,
    ) -> wasmtime::Result<Result<ContainerStats, Error>> {
        as_caller!(self, |cp, c| cp.stats(&c, &id, container))
    }
    async fn gpu_models(&mut self) -> wasmtime::Result<Vec<GpuModel>> {
        Ok(self
            .services
            .control()
            .map(|c| c.gpu_models())
            .unwrap_or_default())
    }
    async fn now(&mut self) -> wasmtime::Result<Timestamp> {
        Ok(crate::model::now())
    }
    async fn logs(
        &mut self,
        id: String,
        options: LogOptions,
    ) -> wasmtime::Result<Result<Resource<LogReaderHandle>, Error>> {
        let (cp, c) = match self.acting() {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        match cp.logs(&c, &id, options).await {
            Ok(source) => Ok(Ok(self.table().push(LogReaderHandle { source })?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl control::HostLogReader for PluginState {
    async fn next(
        &mut self,
        reader: Resource<LogReaderHandle>,
        wait_ms: u32,
    ) -> wasmtime::Result<Result<Option<Vec<LogLine>>, Error>> {
        let handle = self.table().get_mut(&reader)?;
        Ok(handle.source.next(wait_ms.min(MAX_LOG_WAIT_MS)).await)
    }
    async fn drop(&mut self, reader: Resource<LogReaderHandle>) -> wasmtime::Result<()> {
        self.table().delete(reader)?;
        Ok(())
    }
}

impl logging::Host for PluginState {
    async fn log(&mut self, level: logging::Level, message: String) -> wasmtime::Result<()> {
        let plugin = self.info.name.as_str();
        match level {
            logging::Level::Trace => tracing::trace!(plugin, "{message}"),
            logging::Level::Debug => tracing::debug!(plugin, "{message}"),
            logging::Level::Info => tracing::info!(plugin, "{message}"),
            logging::Level::Warn => tracing::warn!(plugin, "{message}"),
            logging::Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

impl config::Host for PluginState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .info
            .config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone()))
    }
    async fn all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.info.config.clone())
    }
}

impl progress::Host for PluginState {
    async fn report(
        &mut self,
        workload_id: String,
        detail: String,
        percent: Option<u8>,
    ) -> wasmtime::Result<()> {
        tracing::info!(plugin = %self.info.name, workload = %workload_id, percent, "{detail}");
        Ok(())
    }
}

impl devices::Host for PluginState {
    async fn gpus(&mut self) -> wasmtime::Result<Vec<GpuDevice>> {
        Ok(self.services.devices.clone())
    }
}

impl mqtt_client::Host for PluginState {
    async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        qos: mqtt_client::Qos,
        retain: bool,
    ) -> wasmtime::Result<Result<(), Error>> {
        let Some(link) = self.info.mqtt.get() else {
            return Ok(Err(Error::Unavailable(format!(
                "cannot publish to `{topic}`: this plugin has no MQTT connection"
            ))));
        };
        // Queued for the connection, which delivers it once (re)connected;
        // a full queue is refused rather than blocking the plugin.
        Ok(link
            .client
            .try_publish(topic, crate::mqtt::qos(qos), retain, payload)
            .map_err(|e| Error::Unavailable(format!("MQTT publish: {e}"))))
    }
    async fn set_timer(
        &mut self,
        id: String,
        interval_ms: u32,
        repeat: bool,
    ) -> wasmtime::Result<()> {
        match self.info.mqtt.get() {
            Some(link) => {
                let _ = link.timers.send(crate::mqtt::TimerCommand::Set {
                    id,
                    interval_ms,
                    repeat,
                });
            }
            None => {
                tracing::warn!(plugin = %self.info.name, timer = %id, "timers need an MQTT frontend connection");
            }
        }
        Ok(())
    }
    async fn cancel_timer(&mut self, id: String) -> wasmtime::Result<()> {
        if let Some(link) = self.info.mqtt.get() {
            let _ = link.timers.send(crate::mqtt::TimerCommand::Cancel(id));
        }
        Ok(())
    }
}

impl crate::bindings::gantry::plugin::types::Host for PluginState {}
