//! The MQTT runtime of `mqtt-frontend` plugins: the host owns the broker
//! connection (QoS 1, persistent session, reconnect with backoff,
//! resubscribe on every connection, manual acknowledgement after the plugin
//! handled a message), timers, and delivery of control-plane events. An
//! embedded broker serves when the config names none.

mod broker;
mod frontend;
mod relay;

pub use broker::EmbeddedBroker;
pub use frontend::{MqttConnection, MqttFrontend, MqttPool};

use serde::Deserialize;

/// The largest MQTT packet gantry sends or takes, on its connections and
/// on the embedded broker (the capability refuses bigger publishes).
pub use crate::capability::MAX_PACKET;

/// How an MQTT frontend connects (its config table's `mqtt = { ... }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttBinding {
    /// "embedded" or "tcp://host:port".
    #[serde(default = "default_broker")]
    pub broker: String,
    /// Listen address of the embedded broker.
    pub listen: Option<String>,
    /// MQTT client id.
    pub client_id: Option<String>,
    /// The identity messages act as.
    pub subject: Option<String>,
    /// Roles of that identity.
    #[serde(default)]
    pub roles: Vec<String>,
}

fn default_broker() -> String {
    "embedded".into()
}

/// Why an MQTT frontend could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    /// The broker address is not `embedded` nor `tcp://host:port` / `mqtt://host:port`.
    #[error("broker `{0}`: expected `embedded`, `tcp://host:port` or `mqtt://host:port`")]
    BrokerAddress(String),
    /// The embedded broker could not listen.
    #[error("embedded MQTT broker on {listen}: {message}")]
    Embedded {
        /// Listen address.
        listen: String,
        /// Why.
        message: String,
    },
}
