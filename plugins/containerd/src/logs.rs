//! Container output as gantry's logger writes it (`gantry-containerd-logger`,
//! started by the runc shim through containerd's `binary://` log URI):
//! Docker's json-file lines `{"log","stream","time"}` in
//! `<log_dir>/<namespace>/<container id>.log`. Reading needs `log_dir` granted
//! read-only to this plugin; follow polls the file, as Wasm has no inotify.

use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::types::{
    Error, LogConfig, LogDriver, LogLine, LogOptions, LogStream, Timestamp,
};
use gantry_sdk::wasip2::clocks::monotonic_clock;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::io::{Read, Seek, SeekFrom};

/// The container label keeping its log settings for tasks created later.
pub const LOG_CONFIG_LABEL: &str = "io.gantry.log-config";

/// Most bytes one `next` delivers.
const MAX_READ: u64 = 1 << 20;

/// How often follow looks at the file while waiting.
const POLL_NS: u64 = 100_000_000;

/// A container's log settings, as kept in its label.
#[derive(Serialize, Deserialize)]
pub struct StoredLogConfig {
    none: bool,
    max_files: Option<u32>,
    max_size_bytes: Option<u64>,
}

impl StoredLogConfig {
    /// From the spec's settings.
    pub fn from_wit(c: &LogConfig) -> Self {
        Self {
            none: c.driver == LogDriver::None,
            max_files: c.max_files,
            max_size_bytes: c.max_size_bytes,
        }
    }

    /// Back to the spec's settings.
    pub fn into_wit(self) -> LogConfig {
        LogConfig {
            driver: if self.none {
                LogDriver::None
            } else {
                LogDriver::JsonFile
            },
            max_files: self.max_files,
            max_size_bytes: self.max_size_bytes,
            non_blocking_buffer_bytes: None,
        }
    }
}

/// Whether output is kept and readable (the logger and its directory are configured).
pub fn available() -> bool {
    config::get("logger").is_some() && config::get("log_dir").is_some()
}

/// The log file of container `id`.
fn path(id: &str) -> Option<String> {
    let dir = config::get("log_dir")?;
    Some(format!(
        "{}/{}/{id}.log",
        dir.trim_end_matches('/'),
        crate::grpc::namespace()
    ))
}

#[derive(Deserialize)]
struct Entry {
    log: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    time: String,
}

/// An open log: the `driver.log-reader` resource.
pub struct LogReader {
    id: String,
    container: String,
    path: String,
    follow: bool,
    timestamps: bool,
    since: Option<Timestamp>,
    offset: Cell<u64>,
    pending: RefCell<Vec<u8>>,
    /// The file's length when opened: what is delivered before following.
    backlog_end: Cell<u64>,
    ended: Cell<bool>,
}

fn unreadable(path: &str, e: std::io::Error) -> Error {
    Error::Backend(format!(
        "log file {path}: {e} (is the log directory granted to this plugin as a read-only dir?)"
    ))
}

/// Where the last `n` lines of `file` begin.
fn tail_start(file: &mut std::fs::File, len: u64, n: u32) -> std::io::Result<u64> {
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0u32;
    let mut buf = vec![0u8; 64 * 1024];
    while pos > 0 {
        let step = pos.min(buf.len() as u64);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let chunk = &mut buf[..usize::try_from(step).unwrap_or(0)];
        file.read_exact(chunk)?;
        for (i, b) in chunk.iter().enumerate().rev() {
            if *b == b'\n' {
                // The file's final newline ends the last line; it does not start one.
                if pos + i as u64 + 1 == len {
                    continue;
                }
                newlines += 1;
                if newlines == n {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

impl LogReader {
    /// Open the log of container `id` (named `container` in its workload).
    pub fn open(id: &str, container: &str, options: &LogOptions) -> Result<LogReader, Error> {
        let Some(path) = path(id).filter(|_| available()) else {
            return Err(Error::Unsupported(
                "this containerd backend keeps no logs: set its `logger` and `log_dir` config and grant `log_dir` read-only".into(),
            ));
        };
        let reader = LogReader {
            id: id.into(),
            container: container.into(),
            path,
            follow: options.follow,
            timestamps: options.timestamps,
            since: options.since,
            offset: Cell::new(0),
            pending: RefCell::new(Vec::new()),
            backlog_end: Cell::new(0),
            ended: Cell::new(false),
        };
        match std::fs::File::open(&reader.path) {
            Ok(mut f) => {
                let len = f.metadata().map_err(|e| unreadable(&reader.path, e))?.len();
                let start = match options.tail {
                    Some(n) => {
                        tail_start(&mut f, len, n).map_err(|e| unreadable(&reader.path, e))?
                    }
                    None => 0,
                };
                reader.offset.set(start);
                reader.backlog_end.set(len);
            }
            // No output yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(unreadable(&reader.path, e)),
        }
        Ok(reader)
    }

    /// Lines written since the last read.
    fn read_new(&self) -> Result<Vec<LogLine>, Error> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(unreadable(&self.path, e)),
        };
        let len = f.metadata().map_err(|e| unreadable(&self.path, e))?.len();
        if len < self.offset.get() {
            // Rotated: the current file is a new one.
            self.offset.set(0);
            self.pending.borrow_mut().clear();
        }
        let want = (len - self.offset.get()).min(MAX_READ);
        if want == 0 {
            return Ok(Vec::new());
        }
        f.seek(SeekFrom::Start(self.offset.get()))
            .map_err(|e| unreadable(&self.path, e))?;
        let mut buf = vec![0u8; usize::try_from(want).unwrap_or(0)];
        f.read_exact(&mut buf)
            .map_err(|e| unreadable(&self.path, e))?;
        self.offset.set(self.offset.get() + want);
        let mut pending = self.pending.borrow_mut();
        pending.extend(buf);
        let mut out = Vec::new();
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=pos).collect();
            if let Some(line) = self.line(&raw) {
                out.push(line);
            }
        }
        Ok(out)
    }

    fn line(&self, raw: &[u8]) -> Option<LogLine> {
        let e: Entry = serde_json::from_slice(raw).ok()?;
        let at =
            time::OffsetDateTime::parse(&e.time, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|d| Timestamp {
                    seconds: d.unix_timestamp(),
                    nanoseconds: d.nanosecond(),
                });
        if let (Some(since), Some(t)) = (self.since, at)
            && (t.seconds, t.nanoseconds) < (since.seconds, since.nanoseconds)
        {
            return None;
        }
        Some(LogLine {
            container: self.container.clone(),
            stream: if e.stream == "stderr" {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            timestamp: if self.timestamps { at } else { None },
            line: e.log.strip_suffix('\n').unwrap_or(&e.log).to_string(),
        })
    }

    /// Whether the container still runs (so more output may come).
    fn live(&self) -> Result<bool, Error> {
        Ok(crate::task::get(&self.id)?.is_some_and(|p| {
            matches!(
                p.status,
                crate::task::status::RUNNING
                    | crate::task::status::PAUSED
                    | crate::task::status::PAUSING
                    | crate::task::status::CREATED
            )
        }))
    }

    /// Lines available within `wait_ms`; `None` once the log ended and
    /// everything was delivered. What the file held when opened comes first,
    /// at most [`MAX_READ`] bytes a call, so a long log never sits whole in memory.
    pub fn next(&self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error> {
        if self.ended.get() {
            return Ok(None);
        }
        while self.offset.get() < self.backlog_end.get() {
            let before = self.offset.get();
            let lines = self.read_new()?;
            if !lines.is_empty() {
                return Ok(Some(lines));
            }
            if self.offset.get() == before {
                // Truncated or rotated since: nothing more of the backlog.
                break;
            }
        }
        self.backlog_end.set(0);
        if !self.follow {
            self.ended.set(true);
            return Ok(None);
        }
        let deadline = monotonic_clock::now().saturating_add(u64::from(wait_ms) * 1_000_000);
        loop {
            let lines = self.read_new()?;
            if !lines.is_empty() {
                return Ok(Some(lines));
            }
            let now = monotonic_clock::now();
            if now >= deadline {
                if !self.live()? {
                    // One last look: the logger may have flushed after the exit.
                    let rest = self.read_new()?;
                    self.ended.set(true);
                    return Ok(if rest.is_empty() { None } else { Some(rest) });
                }
                return Ok(Some(Vec::new()));
            }
            monotonic_clock::subscribe_duration((deadline - now).min(POLL_NS)).block();
        }
    }
}
