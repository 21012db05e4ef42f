//! One `mqtt-frontend` plugin on one broker connection. A single worker
//! calls the plugin, so messages, events and timers reach it in order, and
//! a received message is acknowledged only once the plugin has handled it.
//! A plugin call that fails (trap, deadline, memory) or does not answer
//! within the plugin's `answer_timeout_ms` (cut) loses its instance; the
//! worker then repeats the connection routine on the fresh one, as it does
//! when a reload swaps the plugin: the broker session is the host's and
//! outlives both. A call still running past half that budget makes `/readyz`
//! name the plugin ([`InstancePool::unresponsive`]).

use super::{EmbeddedBroker, MqttBinding, MqttError};
use crate::bindings::exports::gantry::plugin::mqtt_handler::{self as guest, Guest};
use crate::bindings::types::{Caller, Event};
use crate::capability::{MqttLink, TimerCommand, qos};
use crate::control::ControlPlane;
use crate::model::Identity;
use crate::runtime::pool::{ExportLoader, InstancePool};
use crate::secrets::Redact;
use crate::worlds::PluginState;
use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Packet, Publish};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the worker hands to the plugin next.
enum Work {
    Connected,
    Message(Publish),
    Event(Box<Event>),
    Timer(String),
    /// A reload swapped the plugin.
    Swapped,
}

/// The instances of an MQTT frontend plugin (one long-lived instance, as
/// the world's instance policy says).
pub type MqttPool = InstancePool<PluginState, Guest>;

/// Host and port of `broker`, starting the embedded broker when it is `embedded`.
fn broker_address(binding: &MqttBinding) -> Result<(String, u16), MqttError> {
    if binding.broker == "embedded" {
        let listen = binding.listen.as_deref().unwrap_or("127.0.0.1:1883");
        let broker = EmbeddedBroker::start(listen)?;
        return Ok((broker.listen.ip().to_string(), broker.listen.port()));
    }
    let rest = binding
        .broker
        .strip_prefix("tcp://")
        .or_else(|| binding.broker.strip_prefix("mqtt://"))
        .ok_or_else(|| MqttError::BrokerAddress(binding.broker.clone()))?;
    let (host, port) = rest
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?)))
        .ok_or_else(|| MqttError::BrokerAddress(binding.broker.clone()))?;
    Ok((host, port))
}

/// A running MQTT frontend.
pub struct MqttFrontend;

/// A frontend's broker connection, opened but not served yet: its link is
/// handed to the plugin's instances first, then [`MqttFrontend::serve`] runs it.
pub struct MqttConnection {
    name: String,
    client: AsyncClient,
    eventloop: EventLoop,
    timers: mpsc::UnboundedReceiver<TimerCommand>,
    /// The same timers, for the worker to cancel when the plugin is swapped.
    timer_control: mpsc::UnboundedSender<TimerCommand>,
    identity: Identity,
}

impl MqttFrontend {
    /// Loads the `mqtt-handler` export.
    pub fn loader() -> ExportLoader<PluginState, Guest> {
        |store, instance| {
            let pre = instance.instance_pre(&*store);
            guest::GuestIndices::new(&pre)?.load(store, instance)
        }
    }

    /// The connection of frontend `name` (starting the embedded broker when
    /// the binding names it), and the link its instances publish through.
    pub fn connect(
        name: &str,
        binding: &MqttBinding,
    ) -> Result<(MqttLink, MqttConnection), MqttError> {
        let (host, port) = broker_address(binding)?;
        let client_id = binding
            .client_id
            .clone()
            .unwrap_or_else(|| format!("gantry-{name}"));
        let mut options = MqttOptions::new(client_id, host, port);
        options
            .set_keep_alive(Duration::from_secs(15))
            // A persistent session: the broker keeps our subscriptions and
            // queues QoS 1 messages while we are away.
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_max_packet_size(super::MAX_PACKET, super::MAX_PACKET);
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        // Commands and their answers are small packets: without TCP_NODELAY,
        // Nagle's algorithm holds each behind the peer's delayed ACK (40 ms).
        eventloop.network_options.set_tcp_nodelay(true);
        let (timers_tx, timers) = mpsc::unbounded_channel();
        let link = MqttLink {
            client: client.clone(),
            timers: timers_tx.clone(),
        };
        let identity = Identity::Caller(Caller {
            subject: binding
                .subject
                .clone()
                .unwrap_or_else(|| format!("mqtt:{name}")),
            roles: binding.roles.clone(),
        });
        Ok((
            link,
            MqttConnection {
                name: name.to_string(),
                client,
                eventloop,
                timers,
                timer_control: timers_tx,
                identity,
            },
        ))
    }

    /// Serve `pool`'s plugin on its connection until the process ends.
    pub fn serve(conn: MqttConnection, pool: Arc<MqttPool>, control: &ControlPlane) {
        let MqttConnection {
            name,
            client,
            mut eventloop,
            timers: timers_rx,
            timer_control,
            identity,
        } = conn;
        let (work_tx, work_rx) = mpsc::unbounded_channel();

        let work = work_tx.clone();
        let plugin = name.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match eventloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(ack))) => {
                        tracing::info!(plugin = %plugin, session_present = ack.session_present, "MQTT connected");
                        backoff = Duration::from_millis(100);
                        let _ = work.send(Work::Connected);
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let _ = work.send(Work::Message(p));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(plugin = %plugin, error = %e, retry_in_ms = backoff.as_millis() as u64, "MQTT connection lost");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        });

        let work = work_tx.clone();
        let mut events = control.subscribe();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => {
                        if work.send(Work::Event(Box::new(e))).is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "MQTT frontend fell behind on control-plane events"
                        );
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });

        let work = work_tx.clone();
        let mut swaps = pool.swaps();
        tokio::spawn(async move {
            while swaps.changed().await.is_ok() {
                if work.send(Work::Swapped).is_err() {
                    return;
                }
            }
        });

        tokio::spawn(run_timers(timers_rx, work_tx));
        tokio::spawn(
            Worker {
                name,
                pool,
                client,
                identity,
                timers: timer_control,
                greeted: 0,
                subscribed: Vec::new(),
            }
            .run(work_rx),
        );
    }
}

async fn run_timers(
    mut commands: mpsc::UnboundedReceiver<TimerCommand>,
    work: mpsc::UnboundedSender<Work>,
) {
    let mut timers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    while let Some(cmd) = commands.recv().await {
        match cmd {
            TimerCommand::Set {
                id,
                interval_ms,
                repeat,
            } => {
                let every = Duration::from_millis(u64::from(interval_ms.max(10)));
                let work = work.clone();
                let fired = id.clone();
                let task = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        if work.send(Work::Timer(fired.clone())).is_err() || !repeat {
                            return;
                        }
                    }
                });
                if let Some(old) = timers.insert(id, task) {
                    old.abort();
                }
            }
            TimerCommand::Cancel(id) => {
                if let Some(old) = timers.remove(&id) {
                    old.abort();
                }
            }
            TimerCommand::CancelAll => {
                for (_, t) in timers.drain() {
                    t.abort();
                }
            }
        }
        timers.retain(|_, t| !t.is_finished());
    }
}

struct Worker {
    name: String,
    pool: Arc<MqttPool>,
    client: AsyncClient,
    identity: Identity,
    timers: mpsc::UnboundedSender<TimerCommand>,
    /// The pool generation the last connection routine ran on.
    greeted: u64,
    /// The filters subscribed for the plugin.
    subscribed: Vec<String>,
}

impl Worker {
    async fn run(mut self, mut work: mpsc::UnboundedReceiver<Work>) {
        let mut connected = false;
        while let Some(item) = work.recv().await {
            // A reload swapped the plugin: greet its new instance before it
            // gets anything else, whatever was queued before the swap.
            if connected && self.pool.generation() != self.greeted {
                tracing::info!(plugin = %self.name, "plugin swapped; greeting its new instance");
                // Timers belong to the instance that set them.
                let _ = self.timers.send(TimerCommand::CancelAll);
                if !self.connected().await {
                    tracing::error!(plugin = %self.name, "the swapped-in plugin failed its connection routine");
                }
            }
            let ok = match item {
                Work::Connected => {
                    connected = true;
                    self.connected().await
                }
                // Greeted above (or, before the broker answered, on connection).
                Work::Swapped => true,
                Work::Message(p) => {
                    let message = guest::Message {
                        topic: p.topic.clone(),
                        payload: p.payload.to_vec(),
                        retain: p.retain,
                    };
                    let result = self
                        .pool
                        .call("on-message", self.bind(), move |s, g| {
                            Box::pin(async move { g.call_on_message(s, &message).await })
                        })
                        .await;
                    // Acknowledged once handled, or once it failed the plugin:
                    // a message that traps must not come back forever.
                    if let Err(e) = self.client.ack(&p).await {
                        tracing::warn!(plugin = %self.name, error = %e, "acknowledging a message");
                    }
                    match result {
                        Ok(Ok(())) => true,
                        Ok(Err(reason)) => {
                            tracing::info!(plugin = %self.name, topic = %p.topic, %reason, "message not handled");
                            true
                        }
                        Err(_) => false,
                    }
                }
                Work::Event(e) if !self.may_see(&e) => true,
                Work::Event(e) => {
                    let mut e = *e;
                    e.workload = e.workload.map(Redact::redact);
                    self.pool
                        .call("on-event", self.bind(), move |s, g| {
                            Box::pin(async move { g.call_on_event(s, &e).await })
                        })
                        .await
                        .is_ok()
                }
                Work::Timer(id) => self
                    .pool
                    .call("on-timer", self.bind(), move |s, g| {
                        Box::pin(async move { g.call_on_timer(s, &id).await })
                    })
                    .await
                    .is_ok(),
            };
            // The failed instance is gone (trapped, or cut for not answering,
            // the message acknowledged either way); its replacement starts as
            // after a connection, without the timers the old one set.
            if !ok && connected {
                let _ = self.timers.send(TimerCommand::CancelAll);
                if !self.connected().await {
                    tracing::error!(plugin = %self.name, "plugin failed again while recovering");
                }
            }
        }
    }

    /// Binds the frontend's identity to the instance for one call.
    fn bind(&self) -> impl FnOnce(&mut PluginState) + Send + 'static {
        let identity = self.identity.clone();
        move |s| s.bind(identity)
    }

    /// Whether the plugin's identity may see the workload an event is about:
    /// its own, or any for ADMIN (as `control.get` would allow).
    fn may_see(&self, e: &Event) -> bool {
        match (&self.identity, &e.workload) {
            (Identity::Caller(c), Some(w)) => c.is_admin() || w.owner == c.subject,
            _ => true,
        }
    }

    /// Subscribe to what the plugin asks for (and drop what it no longer
    /// asks for), then tell it it is connected.
    async fn connected(&mut self) -> bool {
        self.greeted = self.pool.generation();
        let subscriptions = match self
            .pool
            .call("subscriptions", self.bind(), |s, g| {
                Box::pin(async move { g.call_subscriptions(s).await })
            })
            .await
        {
            Ok(s) => s,
            Err(_) => return false,
        };
        let wanted: Vec<String> = subscriptions.iter().map(|s| s.filter.clone()).collect();
        for gone in self.subscribed.iter().filter(|f| !wanted.contains(f)) {
            if let Err(e) = self.client.unsubscribe(gone.clone()).await {
                tracing::warn!(plugin = %self.name, filter = %gone, error = %e, "unsubscribing");
            }
        }
        self.subscribed = wanted;
        for sub in subscriptions {
            if let Err(e) = self
                .client
                .subscribe(sub.filter.clone(), qos(sub.qos))
                .await
            {
                tracing::warn!(plugin = %self.name, filter = %sub.filter, error = %e, "subscribing");
            }
        }
        self.pool
            .call("on-connect", self.bind(), |s, g| {
                Box::pin(async move { g.call_on_connect(s).await })
            })
            .await
            .is_ok()
    }
}
