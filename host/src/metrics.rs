//! Prometheus metrics: per-plugin calls, failures by kind, and latency;
//! the health of each GPU.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    plugin: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabel {
    workload: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadCodeLabel {
    workload: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadDirectionLabel {
    workload: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GpuLabel {
    index: u32,
    uuid: String,
    model: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The host's metric registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    calls: Family<PluginLabel, Counter>,
    instances: Family<PluginLabel, Counter>,
    failures: Family<FailureLabel, Counter>,
    replacements: Family<FailureLabel, Counter>,
    latency: Family<PluginLabel, Histogram, fn() -> Histogram>,
    gpu_healthy: Family<GpuLabel, Gauge>,
    url_requests: Family<WorkloadCodeLabel, Counter>,
    url_bytes: Family<WorkloadDirectionLabel, Counter>,
    url_upstream: Family<WorkloadLabel, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with gantry's metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gantry");
        let calls = Family::<PluginLabel, Counter>::default();
        let instances = Family::<PluginLabel, Counter>::default();
        let failures = Family::<FailureLabel, Counter>::default();
        let replacements = Family::<FailureLabel, Counter>::default();
        let latency = Family::<PluginLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register("plugin_calls", "Calls into each plugin", calls.clone());
        registry.register(
            "plugin_instances",
            "Instances started for each plugin (warm ones are reused)",
            instances.clone(),
        );
        registry.register(
            "plugin_failures",
            "Plugin calls that failed in the guest, by kind (trap, deadline, unanswered, memory, instantiate)",
            failures.clone(),
        );
        registry.register(
            "plugin_replacements",
            "Long-lived plugin instances (MQTT frontends) replaced after a failed call, by kind",
            replacements.clone(),
        );
        registry.register(
            "plugin_call_seconds",
            "Latency of plugin calls",
            latency.clone(),
        );
        let gpu_healthy = Family::<GpuLabel, Gauge>::default();
        registry.register(
            "gpu_healthy",
            "Whether each GPU of the inventory takes new placements (1) or not (0)",
            gpu_healthy.clone(),
        );
        let url_requests = Family::<WorkloadCodeLabel, Counter>::default();
        registry.register(
            "url_requests",
            "Requests to each workload's container URL, by answer status",
            url_requests.clone(),
        );
        let url_bytes = Family::<WorkloadDirectionLabel, Counter>::default();
        registry.register(
            "url_bytes",
            "Body bytes through each workload's container URL (in: to the workload)",
            url_bytes.clone(),
        );
        let url_upstream =
            Family::<WorkloadLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "url_upstream_seconds",
            "Time from forwarding a request to a workload to its answer's head",
            url_upstream.clone(),
        );
        Self {
            url_requests,
            url_bytes,
            url_upstream,
            registry: Arc::new(Mutex::new(registry)),
            calls,
            replacements,
            instances,
            failures,
            latency,
            gpu_healthy,
        }
    }

    /// Record whether a GPU takes new placements.
    pub fn gpu_health(&self, index: u32, uuid: &str, model: &str, healthy: bool) {
        let label = GpuLabel {
            index,
            uuid: uuid.to_string(),
            model: model.to_string(),
        };
        self.gpu_healthy
            .get_or_create(&label)
            .set(i64::from(healthy));
    }

    /// The handle of one workload's container-URL traffic.
    pub fn workload_traffic(&self, workload: &str) -> WorkloadTraffic {
        let bytes = |direction| {
            self.url_bytes
                .get_or_create(&WorkloadDirectionLabel {
                    workload: workload.to_string(),
                    direction,
                })
                .clone()
        };
        WorkloadTraffic {
            workload: workload.to_string(),
            inbound: bytes("in"),
            outbound: bytes("out"),
            upstream: self
                .url_upstream
                .get_or_create(&WorkloadLabel {
                    workload: workload.to_string(),
                })
                .clone(),
            requests: self.url_requests.clone(),
        }
    }

    /// The handle of one plugin's metrics.
    pub fn plugin(&self, name: &str) -> PluginMetrics {
        let label = PluginLabel {
            plugin: name.to_string(),
        };
        // Handles share their series with the registry: a call counts
        // without looking its series up again.
        PluginMetrics {
            name: name.to_string(),
            calls: self.calls.get_or_create(&label).clone(),
            instances: self.instances.get_or_create(&label).clone(),
            latency: self.latency.get_or_create(&label).clone(),
            metrics: self.clone(),
        }
    }

    /// Text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Traffic through one workload's container URL.
#[derive(Clone)]
pub struct WorkloadTraffic {
    workload: String,
    inbound: Counter,
    outbound: Counter,
    upstream: Histogram,
    requests: Family<WorkloadCodeLabel, Counter>,
}

impl WorkloadTraffic {
    /// Body bytes sent to the workload.
    pub fn bytes_in(&self, n: usize) {
        self.inbound.inc_by(n as u64);
    }

    /// Body bytes the workload answered.
    pub fn bytes_out(&self, n: usize) {
        self.outbound.inc_by(n as u64);
    }

    /// How long the workload took to answer a request's head.
    pub fn upstream(&self, elapsed: Duration) {
        self.upstream.observe(elapsed.as_secs_f64());
    }

    /// A request answered with `code`.
    pub fn answered(&self, code: u16) {
        self.requests
            .get_or_create(&WorkloadCodeLabel {
                workload: self.workload.clone(),
                code,
            })
            .inc();
    }
}

/// Metrics of one plugin.
#[derive(Clone)]
pub struct PluginMetrics {
    name: String,
    calls: Counter,
    instances: Counter,
    latency: Histogram,
    metrics: Metrics,
}

impl PluginMetrics {
    /// A call finished after `elapsed`.
    pub fn observe(&self, elapsed: Duration) {
        self.calls.inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// An instance was started.
    pub fn instantiated(&self) {
        self.instances.inc();
    }

    /// A long-lived instance was dropped after a call that failed with
    /// `kind`; the next call gets a fresh one.
    pub fn replaced(&self, kind: &str) {
        self.metrics
            .replacements
            .get_or_create(&FailureLabel {
                plugin: self.name.clone(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// A call failed in the guest.
    pub fn failed(&self, kind: &str) {
        self.metrics
            .failures
            .get_or_create(&FailureLabel {
                plugin: self.name.clone(),
                kind: kind.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_per_plugin_series() {
        let m = Metrics::new();
        let p = m.plugin("rest");
        p.observe(Duration::from_millis(3));
        p.instantiated();
        p.failed("trap");
        let text = m.render();
        assert!(
            text.contains("gantry_plugin_calls_total{plugin=\"rest\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gantry_plugin_failures_total{plugin=\"rest\",kind=\"trap\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gantry_plugin_instances_total{plugin=\"rest\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gantry_plugin_call_seconds_count{plugin=\"rest\"} 1"),
            "{text}"
        );
    }
}
