//! gantry's Docker Swarm backend (world `cluster-backend`): workloads spread
//! over a swarm's nodes, through the managers' Engine API (1.41), reached
//! through the endpoints the host grants (config `managers`, failover in
//! order; see [`manager`]).
//!
//! A workload revision is one replicated Swarm service per container
//! ([`service`]), labelled with the workload id, revision, container name
//! and index; containers of one workload share an overlay network of their
//! own and reach each other by container name (`dnsrr` endpoints: there is
//! no routing mesh). Replicas come from the container label
//! `io.gantry.replicas`, placement from `io.gantry.placement.constraints` and
//! `io.gantry.placement.spread`. Restart policies are the swarm's: it
//! replaces failed tasks itself, on whatever node suits. A new revision is a
//! rolling update of the previous revision's services, rolled back by the
//! swarm when it fails ([`deploy`]).
//!
//! Container state is the swarm's task state rolled up per service
//! ([`tasks`]); events come from task state changes ([`events`]); logs
//! merge every replica's through the service's log stream (with config
//! `log-details = true`, each line starts with the swarm's node, service
//! and task ids). Stats are absent: a manager offers none for services.
//! Pause, kill with a signal, rename and GPUs are refused as unsupported.

mod deploy;
mod events;
mod manager;
mod model;
mod nodes;
mod service;
mod services;
mod stall;
mod tasks;

use gantry_sdk::backend::exports::gantry::plugin::cluster::{
    Guest as ClusterGuest, Node, NodeAvailability, Task,
};
use gantry_sdk::backend::exports::gantry::plugin::driver::{
    BackendCapabilities, Deployment, Guest, InstanceRef, InstanceSummary, LogReader, RuntimeEvent,
};
use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerState, ContainerStats, Error, LogOptions, Resources, RestartPolicy, Timestamp,
};
use gantry_sdk::listing::Summaries;
use gantry_sdk::logs::{Demuxer, StreamedLogs};
use gantry_sdk::wasip2::http::types::Method;
use manager::{enc, get};
use model::labels;
use serde_json::Value;

struct Swarm;

fn unsupported(what: &str) -> Error {
    Error::Unsupported(format!("{what} is not available on a Docker Swarm backend"))
}

impl Guest for Swarm {
    type LogReader = StreamedLogs;

    fn capabilities() -> Result<BackendCapabilities, Error> {
        let v: Value = get("/version", "reading the version")?;
        let info: Value = get("/info", "reading the swarm")?;
        let nodes = info
            .pointer("/Swarm/Nodes")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if info
            .pointer("/Swarm/ControlAvailable")
            .and_then(Value::as_bool)
            != Some(true)
        {
            return Err(Error::Unavailable(
                "the configured endpoint is not a swarm manager".into(),
            ));
        }
        Ok(BackendCapabilities {
            runtime: format!(
                "docker swarm {} (API {}), {nodes} nodes",
                v.get("Version").and_then(Value::as_str).unwrap_or("?"),
                v.get("ApiVersion").and_then(Value::as_str).unwrap_or("?"),
            ),
            multi_container: true,
            pause: false,
            gpu: false,
            ephemeral_storage_enforced: false,
            logs_follow: true,
            stats: false,
            events: true,
            update_in_place: true,
            rename: false,
        })
    }

    fn create(deployment: Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
        deploy::create(&deployment, start)
    }

    fn start(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        services::scale_all(&services::targets(&r, container.as_deref())?, true, false)
    }

    fn stop(
        r: InstanceRef,
        container: Option<String>,
        _signal: Option<String>,
        _timeout: Option<u32>,
    ) -> Result<(), Error> {
        // Tasks stop with the service's stop grace period (config `stop-grace-ms`).
        services::scale_all(&services::targets(&r, container.as_deref())?, false, false)
    }

    fn kill(
        _r: InstanceRef,
        _container: Option<String>,
        _signal: Option<String>,
    ) -> Result<(), Error> {
        Err(unsupported("signalling a service's tasks"))
    }

    fn restart(
        r: InstanceRef,
        container: Option<String>,
        _timeout: Option<u32>,
    ) -> Result<(), Error> {
        services::scale_all(&services::targets(&r, container.as_deref())?, true, true)
    }

    fn pause(_r: InstanceRef, _container: Option<String>) -> Result<(), Error> {
        Err(unsupported("pausing"))
    }

    fn resume(_r: InstanceRef, _container: Option<String>) -> Result<(), Error> {
        Err(unsupported("pausing"))
    }

    fn remove(r: InstanceRef, _force: bool) -> Result<(), Error> {
        deploy::remove(&r)
    }

    fn inspect(r: InstanceRef) -> Result<Vec<ContainerState>, Error> {
        deploy::inspect(&r)
    }

    fn list(selector: Vec<(String, String)>) -> Result<Vec<InstanceSummary>, Error> {
        let mut wanted = vec![labels::WORKLOAD.to_string()];
        wanted.extend(selector.iter().map(|(k, v)| format!("{k}={v}")));
        let mut svcs = services::labelled(&wanted)?;
        svcs.sort_by_key(model::Service::index);
        let ids: Vec<String> = svcs.iter().map(|s| s.id.clone()).collect();
        let ts = if ids.is_empty() {
            Vec::new()
        } else {
            services::tasks(&ids)?
        };
        let mut out = Summaries::default();
        for s in &svcs {
            let (Some(w), Some(rev)) = (s.label(labels::WORKLOAD), s.revision()) else {
                continue;
            };
            let mine: Vec<_> = ts.iter().filter(|t| t.service_id == s.id).collect();
            out.push(w, rev, tasks::state(s, &mine));
        }
        Ok(out.finish())
    }

    fn stats(_r: InstanceRef, _container: Option<String>) -> Result<ContainerStats, Error> {
        Err(unsupported("resource statistics of a service"))
    }

    fn update(
        r: InstanceRef,
        container: Option<String>,
        resources: Option<Resources>,
        restart: Option<RestartPolicy>,
    ) -> Result<(), Error> {
        let svcs = services::targets(&r, container.as_deref())?;
        deploy::reconfigure(&svcs, resources.as_ref(), restart.as_ref())
    }

    fn rename(_r: InstanceRef, _name: String) -> Result<(), Error> {
        Err(unsupported("renaming a service"))
    }

    fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<RuntimeEvent>, Error> {
        events::watch(since, wait_ms)
    }

    fn logs(r: InstanceRef, options: LogOptions) -> Result<LogReader, Error> {
        let svcs = services::targets(&r, options.container.as_deref())?;
        let svc = svcs
            .first()
            .ok_or_else(|| Error::NotFound("no container".into()))?;
        let tty = svc
            .spec
            .pointer("/TaskTemplate/ContainerSpec/TTY")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let details = config::get("log-details").is_some_and(|v| v.trim() == "true");
        let mut q = format!(
            "stdout=1&stderr=1&follow={}&timestamps={}&details={}",
            u8::from(options.follow),
            u8::from(options.timestamps),
            u8::from(details),
        );
        if let Some(n) = options.tail {
            q.push_str(&format!("&tail={n}"));
        }
        if let Some(s) = options.since {
            q.push_str(&format!(
                "&since={}",
                enc(&format!("{}.{:09}", s.seconds, s.nanoseconds))
            ));
        }
        let stream = manager::open(Method::Get, &format!("/services/{}/logs?{q}", svc.id))?;
        if stream.status != 200 {
            let resp = stream.read_all()?;
            return Err(manager::error(&resp, "logs"));
        }
        let demuxer = Demuxer::new(svc.container().to_string(), !tty, options.timestamps);
        Ok(LogReader::new(StreamedLogs::new(stream, demuxer)))
    }
}

impl ClusterGuest for Swarm {
    fn nodes() -> Result<Vec<Node>, Error> {
        nodes::nodes()
    }

    fn set_availability(node: String, availability: NodeAvailability) -> Result<Node, Error> {
        nodes::set_availability(&node, availability)
    }

    fn tasks(workload_id: String, revision: u32) -> Result<Vec<Task>, Error> {
        nodes::tasks(&InstanceRef {
            workload_id,
            revision,
        })
    }
}

gantry_sdk::backend::export_backend!(Swarm);
