//! What the host hands capabilities, besides a plugin's grants: its name,
//! the host's services its world uses, and the broker connection of an
//! MQTT frontend (the MQTT runtime's, [`crate::mqtt`], reached through the
//! `mqtt-client` capability).

use crate::bindings::gantry::plugin::mqtt_client::Qos;
use crate::control::ControlPlane;
use crate::control::gpus::GpuLedger;
use crate::driver::Driver;
use crate::gpu::Inventory;
use rumqttc::QoS;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// What the host hands the capabilities of one plugin, besides its grants:
/// its name and the host's services its world may use.
#[derive(Clone)]
pub struct Services {
    /// The plugin's configured name.
    pub plugin: Arc<str>,
    /// The control plane, for frontends.
    pub control: Option<Arc<ControlPlane>>,
    /// The GPU inventory, for backends and schedulers.
    pub devices: Option<Arc<Inventory>>,
    /// The GPU ledger, for schedulers.
    pub ledger: Option<Arc<GpuLedger>>,
    /// The backend a scheduler drives.
    pub downstream: Option<Arc<dyn Driver>>,
    /// The broker connection of an MQTT frontend.
    pub mqtt: Option<MqttLink>,
}

impl Services {
    /// Nothing but the plugin's name.
    pub fn of(plugin: &str) -> Self {
        Self {
            plugin: plugin.into(),
            control: None,
            devices: None,
            ledger: None,
            downstream: None,
            mqtt: None,
        }
    }
}

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
    /// Cancel every timer (the instance that set them was replaced).
    CancelAll,
}

/// The MQTT side of one frontend plugin, shared by its instances.
#[derive(Clone)]
pub struct MqttLink {
    /// The connection's client.
    pub client: rumqttc::AsyncClient,
    /// The frontend's timer service.
    pub timers: UnboundedSender<TimerCommand>,
}

/// The largest MQTT packet a plugin may publish: the limit of the
/// connections the MQTT runtime makes, and of its embedded broker. A command
/// carrying a workload's whole spec (up to `[bounds]`: a MiB of environment,
/// another of command line) and its answer must fit.
pub const MAX_PACKET: usize = 4 << 20;

/// The MQTT QoS of a WIT `qos`.
pub fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}
