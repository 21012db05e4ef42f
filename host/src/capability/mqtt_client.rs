//! `mqtt-client`: publishing through the frontend's broker connection, and
//! timers. The connection itself is the MQTT runtime's ([`crate::mqtt`]);
//! this capability holds what an instance reaches of it.

use super::{HostCapability, MAX_PACKET, MqttLink, Services, Store, TimerCommand, qos};
use crate::bindings::gantry::plugin::mqtt_client::{self, Qos};
use crate::bindings::types::Error;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// Why a PUBLISH of `payload` bytes to `topic` cannot go out: its packet
/// (fixed header of at most 5 bytes, topic with its length, packet id)
/// would pass [`MAX_PACKET`].
fn oversized(topic: &str, payload: usize) -> Option<Error> {
    let packet = 5 + 2 + topic.len() + 2 + payload;
    (packet > MAX_PACKET).then(|| {
        Error::Invalid(crate::bindings::types::InvalidInput {
            message: format!(
                "a publish of {payload} bytes to `{topic}` passes the connection's {} byte packet limit",
                MAX_PACKET
            ),
            fields: Vec::new(),
        })
    })
}

/// Per-instance state: the plugin's connection, when it has one.
#[derive(Clone)]
pub struct MqttClientCtx {
    plugin: Arc<str>,
    link: Option<MqttLink>,
}

impl MqttClientCtx {
    /// What `plugin` reaches: `link`, or nothing for plugins without a connection.
    pub fn new(plugin: Arc<str>, link: Option<MqttLink>) -> Self {
        Self { plugin, link }
    }
}

impl mqtt_client::Host for MqttClientCtx {
    async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
        retain: bool,
    ) -> wasmtime::Result<Result<(), Error>> {
        let Some(link) = &self.link else {
            return Ok(Err(Error::Unavailable(format!(
                "cannot publish to `{topic}`: this plugin has no MQTT connection"
            ))));
        };
        // Too big for the connection: refused here. Left to the connection,
        // it would fail the write and drop the connection, and the plugin's
        // next publish of it after reconnecting would drop it again.
        if let Some(e) = oversized(&topic, payload.len()) {
            return Ok(Err(e));
        }
        // Queued for the connection, which delivers it once (re)connected;
        // a full queue is refused rather than blocking the plugin.
        Ok(link
            .client
            .try_publish(topic, self::qos(qos), retain, payload)
            .map_err(|e| Error::Unavailable(format!("MQTT publish: {e}"))))
    }

    async fn set_timer(
        &mut self,
        id: String,
        interval_ms: u32,
        repeat: bool,
    ) -> wasmtime::Result<()> {
        match &self.link {
            Some(link) => {
                let _ = link.timers.send(TimerCommand::Set {
                    id,
                    interval_ms,
                    repeat,
                });
            }
            None => {
                tracing::warn!(plugin = %self.plugin, timer = %id, "timers need an MQTT frontend connection");
            }
        }
        Ok(())
    }

    async fn cancel_timer(&mut self, id: String) -> wasmtime::Result<()> {
        if let Some(link) = &self.link {
            let _ = link.timers.send(TimerCommand::Cancel(id));
        }
        Ok(())
    }
}

/// The capability.
pub struct MqttClient;

impl HostCapability for MqttClient {
    const NAME: &'static str = "mqtt-client";
    const PROVIDES: &'static [(&'static str, &'static str)] =
        &[("gantry:plugin/mqtt-client", "0.1.")];
    type Grant = ();
    type State = MqttClientCtx;
    fn state(_: &(), services: &Services) -> MqttClientCtx {
        MqttClientCtx::new(services.plugin.clone(), services.mqtt.clone())
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        mqtt_client::add_to_linker::<T, HasSelf<MqttClientCtx>>(l, |t| t.part().state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_past_the_packet_limit_are_refused_before_the_connection() {
        assert!(oversized("e/t/x", 1000).is_none());
        assert!(oversized("e/t/x", MAX_PACKET - 100).is_none());
        assert!(matches!(
            oversized("e/t/x", MAX_PACKET),
            Some(Error::Invalid(_))
        ));
    }
}
