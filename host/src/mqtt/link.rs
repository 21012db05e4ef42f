//! What a plugin instance reaches of its frontend's MQTT connection: the
//! client to publish through and the timer service.

use tokio::sync::mpsc::UnboundedSender;

/// A change to a plugin's timers.
#[derive(Debug)]
pub enum TimerCommand {
    /// Fire `id` after `interval_ms`, and every `interval_ms` after if `repeat`.
    Set {
        /// Timer id, chosen by the plugin.
        id: String,
        /// Interval in milliseconds.
        interval_ms: u32,
        /// Fire repeatedly.
        repeat: bool,
    },
    /// Cancel `id`.
    Cancel(String),
}

/// The MQTT side of one frontend plugin, shared by its instances.
#[derive(Clone)]
pub struct MqttLink {
    /// The connection's client.
    pub client: rumqttc::AsyncClient,
    /// The frontend's timer service.
    pub timers: UnboundedSender<TimerCommand>,
}
