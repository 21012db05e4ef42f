//! The exported `driver`: placement on create, inspect and remove; every
//! other call passes through to the downstream.

use crate::driver;
use gantry_sdk::relay::{DownstreamLogs, convert, downstream_ref};
use gantry_sdk::scheduler::exports::gantry::plugin::driver as exported;
use gantry_sdk::scheduler::gantry::plugin::driver as downstream;
use gantry_sdk::scheduler::gantry::plugin::types::{
    ContainerState, ContainerStats, Error, LogOptions, Resources, RestartPolicy, Timestamp,
};

struct GpuScheduler;

impl exported::Guest for GpuScheduler {
    type LogReader = DownstreamLogs;

    fn capabilities() -> Result<exported::BackendCapabilities, Error> {
        driver::capabilities()
    }
    fn create(d: exported::Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
        driver::create(d, start)
    }
    fn start(i: exported::InstanceRef, c: Option<String>) -> Result<(), Error> {
        downstream::start(&downstream_ref(&i), c.as_deref())
    }
    fn stop(
        i: exported::InstanceRef,
        c: Option<String>,
        signal: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error> {
        downstream::stop(
            &downstream_ref(&i),
            c.as_deref(),
            signal.as_deref(),
            timeout,
        )
    }
    fn kill(
        i: exported::InstanceRef,
        c: Option<String>,
        signal: Option<String>,
    ) -> Result<(), Error> {
        downstream::kill(&downstream_ref(&i), c.as_deref(), signal.as_deref())
    }
    fn restart(
        i: exported::InstanceRef,
        c: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error> {
        downstream::restart(&downstream_ref(&i), c.as_deref(), timeout)
    }
    fn pause(i: exported::InstanceRef, c: Option<String>) -> Result<(), Error> {
        downstream::pause(&downstream_ref(&i), c.as_deref())
    }
    fn resume(i: exported::InstanceRef, c: Option<String>) -> Result<(), Error> {
        downstream::resume(&downstream_ref(&i), c.as_deref())
    }
    fn remove(i: exported::InstanceRef, force: bool) -> Result<(), Error> {
        driver::remove(i, force)
    }
    fn inspect(i: exported::InstanceRef) -> Result<Vec<ContainerState>, Error> {
        driver::inspect(i)
    }
    fn list(selector: Vec<(String, String)>) -> Result<Vec<exported::InstanceSummary>, Error> {
        convert(downstream::list(&selector)?)
    }
    fn stats(i: exported::InstanceRef, c: Option<String>) -> Result<ContainerStats, Error> {
        downstream::stats(&downstream_ref(&i), c.as_deref())
    }
    fn update(
        i: exported::InstanceRef,
        c: Option<String>,
        resources: Option<Resources>,
        restart: Option<RestartPolicy>,
    ) -> Result<(), Error> {
        downstream::update(&downstream_ref(&i), c.as_deref(), resources, restart)
    }
    fn rename(i: exported::InstanceRef, name: String) -> Result<(), Error> {
        downstream::rename(&downstream_ref(&i), &name)
    }
    fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<exported::RuntimeEvent>, Error> {
        convert(downstream::watch(since, wait_ms)?)
    }
    fn logs(i: exported::InstanceRef, options: LogOptions) -> Result<exported::LogReader, Error> {
        let reader = downstream::logs(&downstream_ref(&i), &options)?;
        Ok(exported::LogReader::new(DownstreamLogs(reader)))
    }
}

gantry_sdk::scheduler::export_scheduler!(GpuScheduler);
