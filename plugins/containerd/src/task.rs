//! Tasks (a container's running process) and the calls on them: create with
//! the log driver's IO, start, signal, wait, delete.

use crate::api::containerd::services::snapshots::v1::{MountsRequest, MountsResponse};
use crate::api::containerd::services::tasks::v1::{
    CreateTaskRequest, CreateTaskResponse, DeleteResponse, DeleteTaskRequest, GetRequest,
    GetResponse, KillRequest, ListTasksRequest, ListTasksResponse, PauseTaskRequest,
    ResumeTaskRequest, StartRequest, StartResponse, WaitRequest, WaitResponse,
};
use crate::api::containerd::v1::types::Process;
use crate::grpc::{Call, GrpcResult, Status, unary};
use crate::image::SNAPSHOTTER;
use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::types::{LogConfig, LogDriver};

/// containerd's task status numbers.
pub mod status {
    /// The task exists but was not started.
    pub const CREATED: i32 = 1;
    /// Running.
    pub const RUNNING: i32 = 2;
    /// Exited.
    pub const STOPPED: i32 = 3;
    /// Frozen.
    pub const PAUSED: i32 = 4;
    /// Being frozen.
    pub const PAUSING: i32 = 5;
}

/// The task of a container; `None` when it has none.
pub fn get(id: &str) -> GrpcResult<Option<Process>> {
    match unary::<_, GetResponse>(
        "/containerd.services.tasks.v1.Tasks/Get",
        &GetRequest {
            container_id: id.into(),
            exec_id: String::new(),
        },
    ) {
        Ok(r) => Ok(r.process),
        Err(s) if s.is_not_found() => Ok(None),
        Err(s) => Err(s),
    }
}

/// Every task of the namespace.
pub fn list() -> GrpcResult<Vec<Process>> {
    let r: ListTasksResponse = unary(
        "/containerd.services.tasks.v1.Tasks/List",
        &ListTasksRequest::default(),
    )?;
    // Tasks.List names each task by `id` (a task's id is its container's)
    // and leaves `container_id` empty: fill it, so callers read one field.
    Ok(r.tasks
        .into_iter()
        .map(|mut p| {
            if p.container_id.is_empty() {
                p.container_id = p.id.clone();
            }
            p
        })
        .collect())
}

/// Where the container's output goes: the gantry logger (`binary://`, config
/// keys `logger` and `log_dir`) writing Docker's json-file format, or nowhere.
pub fn output_uri(log: Option<&LogConfig>) -> String {
    if log.is_some_and(|l| l.driver == LogDriver::None) {
        return String::new();
    }
    let (Some(logger), Some(dir)) = (config::get("logger"), config::get("log_dir")) else {
        return String::new();
    };
    let mut uri = format!("binary://{logger}?dir={dir}");
    if let Some(l) = log {
        if let Some(n) = l.max_files {
            uri.push_str(&format!("&max-files={n}"));
        }
        if let Some(s) = l.max_size_bytes {
            uri.push_str(&format!("&max-size={s}"));
        }
    }
    uri
}

/// Create the task of container `id` on its snapshot; returns its pid.
pub fn create(id: &str, output: &str) -> GrpcResult<u32> {
    let mounts: MountsResponse = unary(
        "/containerd.services.snapshots.v1.Snapshots/Mounts",
        &MountsRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: id.into(),
        },
    )?;
    let r: CreateTaskResponse = unary(
        "/containerd.services.tasks.v1.Tasks/Create",
        &CreateTaskRequest {
            container_id: id.into(),
            rootfs: mounts.mounts,
            stdout: output.into(),
            stderr: output.into(),
            ..Default::default()
        },
    )?;
    Ok(r.pid)
}

/// Start a created task.
pub fn start(id: &str) -> GrpcResult<u32> {
    let r: StartResponse = unary(
        "/containerd.services.tasks.v1.Tasks/Start",
        &StartRequest {
            container_id: id.into(),
            exec_id: String::new(),
        },
    )?;
    Ok(r.pid)
}

/// Signal the task (every process of it with `all`). Not running is fine.
pub fn kill(id: &str, signal: u32, all: bool) -> GrpcResult<()> {
    match unary::<_, ()>(
        "/containerd.services.tasks.v1.Tasks/Kill",
        &KillRequest {
            container_id: id.into(),
            exec_id: String::new(),
            signal,
            all,
        },
    ) {
        Err(s) if s.is_not_found() || s.code == crate::grpc::Code::FailedPrecondition => Ok(()),
        r => r,
    }
}

/// Wait at most `wait_ns` for the task to exit: its exit status, or `None` if it still runs.
pub fn wait(id: &str, wait_ns: u64) -> GrpcResult<Option<u32>> {
    let req = WaitRequest {
        container_id: id.into(),
        exec_id: String::new(),
    };
    // containerd answers Wait only when the process exits: its headers come with the answer.
    let Some(mut call) = Call::open(
        "/containerd.services.tasks.v1.Tasks/Wait",
        &req,
        Some(wait_ns),
    )?
    else {
        return Ok(None);
    };
    match call.next::<WaitResponse>(wait_ns) {
        Ok(Some(r)) => Ok(Some(r.exit_status)),
        Ok(None) => Ok(None),
        Err(s) if s.is_not_found() => Ok(Some(0)),
        Err(s) => Err(s),
    }
}

/// Delete the task (once stopped); a missing one is fine.
pub fn delete(id: &str) -> GrpcResult<()> {
    match unary::<_, DeleteResponse>(
        "/containerd.services.tasks.v1.Tasks/Delete",
        &DeleteTaskRequest {
            container_id: id.into(),
        },
    ) {
        Err(s) if !s.is_not_found() => Err(s),
        _ => Ok(()),
    }
}

/// Freeze the task (`Tasks.Pause`); one already paused is fine.
pub fn pause(id: &str) -> GrpcResult<()> {
    let r = unary::<_, ()>(
        "/containerd.services.tasks.v1.Tasks/Pause",
        &PauseTaskRequest {
            container_id: id.into(),
        },
    );
    settled(id, r, status::PAUSED)
}

/// Thaw the task (`Tasks.Resume`); one already running is fine.
pub fn resume(id: &str) -> GrpcResult<()> {
    let r = unary::<_, ()>(
        "/containerd.services.tasks.v1.Tasks/Resume",
        &ResumeTaskRequest {
            container_id: id.into(),
        },
    );
    settled(id, r, status::RUNNING)
}

/// Thaw a task about to be signalled or killed, whatever state it is in:
/// one that is not frozen refuses, which is fine here.
pub fn thaw(id: &str) {
    let _ = resume(id);
}

/// A refused pause or resume is fine when the task is already where it was sent.
fn settled(id: &str, r: GrpcResult<()>, wanted: i32) -> GrpcResult<()> {
    match r {
        Err(_) if get(id)?.is_some_and(|p| p.status == wanted) => Ok(()),
        r => r,
    }
}

/// Stop the task: `signal`, wait up to `timeout_s`, then SIGKILL to every process.
pub fn stop(id: &str, signal: u32, timeout_s: u32) -> GrpcResult<()> {
    match get(id)? {
        Some(p)
            if p.status == status::RUNNING
                || p.status == status::PAUSED
                || p.status == status::PAUSING =>
        {
            if p.status != status::RUNNING {
                // A frozen task cannot handle its signal; thaw it first.
                thaw(id);
            }
        }
        _ => return Ok(()),
    }
    kill(id, signal, false)?;
    if wait(id, u64::from(timeout_s) * 1_000_000_000)?.is_none() {
        kill(id, 9, true)?;
        if wait(id, 10_000_000_000)?.is_none() {
            return Err(Status {
                code: crate::grpc::Code::Other(4),
                message: format!("task {id} did not exit after SIGKILL"),
            });
        }
    }
    Ok(())
}

/// A signal by name (`SIGTERM`, `TERM`) or number.
pub fn signal_number(name: &str) -> Option<u32> {
    let n = name.trim().to_ascii_uppercase();
    if let Ok(v) = n.parse::<u32>() {
        return (1..=64).contains(&v).then_some(v);
    }
    let n = n.strip_prefix("SIG").unwrap_or(&n);
    Some(match n {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("kill"), Some(9));
        assert_eq!(signal_number("10"), Some(10));
        assert_eq!(signal_number("SIGNOPE"), None);
        assert_eq!(signal_number("0"), None);
    }
}
