//! `gantry-containerd-logger`: the log driver containerd's runc shim starts
//! for a container whose output URI is
//! `binary:///path/to/gantry-containerd-logger?dir=D[&max-size=N][&max-files=K]`.
//!
//! The shim's contract (containerd `runtime/v2/logging`): the container's
//! stdout is fd 3, its stderr fd 4, and fd 5 is signalled once the logger is
//! ready; `CONTAINER_ID` and `CONTAINER_NAMESPACE` name the container. The
//! query arrives as `key value` argument pairs, in any order.
//!
//! Output is Docker's json-file format, one `{"log","stream","time"}` object
//! per line in `D/<namespace>/<id>.log`, rotated at `max-size` bytes keeping
//! `max-files` files, so the containerd backend plugin reads it the way it
//! reads any json-file log. The logger outlives the host: a gantry restart
//! loses no output.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Docker splits lines longer than this into several entries.
const MAX_LINE: usize = 16 * 1024;

struct Settings {
    dir: PathBuf,
    max_size: Option<u64>,
    max_files: u32,
}

fn settings(args: &[String]) -> Result<Settings, String> {
    let mut dir = None;
    let mut max_size = None;
    let mut max_files = 1;
    let mut it = args.iter();
    while let Some(key) = it.next() {
        let value = it.next().ok_or_else(|| format!("`{key}` has no value"))?;
        match key.as_str() {
            "dir" => dir = Some(PathBuf::from(value)),
            "max-size" => {
                max_size = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad max-size `{value}`"))?,
                )
            }
            "max-files" => {
                max_files = value
                    .parse()
                    .map_err(|_| format!("bad max-files `{value}`"))?
            }
            other => return Err(format!("unknown setting `{other}`")),
        }
    }
    Ok(Settings {
        dir: dir.ok_or("no `dir` given")?,
        max_size: max_size.filter(|s| *s > 0),
        max_files: max_files.max(1),
    })
}

/// The log file and its rotation.
struct Sink {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
}

impl Sink {
    fn open(path: PathBuf, max_size: Option<u64>, max_files: u32) -> std::io::Result<Sink> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(Sink {
            path,
            file,
            size,
            max_size,
            max_files,
        })
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_files > 1 {
            for n in (1..self.max_files - 1).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        } else {
            self.file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }

    fn write(&mut self, stream: &str, text: &[u8]) -> std::io::Result<()> {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(text),
            "stream": stream,
            "time": time,
        });
        let mut line = entry.to_string().into_bytes();
        line.push(b'\n');
        if let Some(max) = self.max_size
            && self.size > 0
            && self.size + line.len() as u64 > max
        {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }
}

/// Copy one stream into the sink line by line until it closes.
fn pump(fd: OwnedFd, stream: &'static str, sink: Arc<Mutex<Sink>>) {
    let mut reader = BufReader::new(File::from(fd));
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Ok(mut s) = sink.lock() else { return };
        if let Err(e) = s.write(stream, &line) {
            eprintln!("gantry-containerd-logger: {}: {e}", s.path.display());
        }
    }
}

fn log_path(dir: &Path, namespace: &str, id: &str) -> Result<PathBuf, String> {
    let safe = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
    if !safe(namespace) || !safe(id) {
        return Err(format!(
            "refusing container `{id}` in namespace `{namespace}`"
        ));
    }
    Ok(dir.join(namespace).join(format!("{id}.log")))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run = || -> Result<(), String> {
        let s = settings(&args)?;
        let id = std::env::var("CONTAINER_ID").map_err(|_| "CONTAINER_ID is not set")?;
        let ns =
            std::env::var("CONTAINER_NAMESPACE").map_err(|_| "CONTAINER_NAMESPACE is not set")?;
        let path = log_path(&s.dir, &ns, &id)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let sink = Sink::open(path.clone(), s.max_size, s.max_files)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let sink = Arc::new(Mutex::new(sink));
        // SAFETY: the shim hands these descriptors to its log driver by
        // contract (stdout pipe, stderr pipe, readiness pipe); nothing else
        // in this process owns them.
        #[allow(unsafe_code)]
        let (out, err, ready) = unsafe {
            (
                OwnedFd::from_raw_fd(3),
                OwnedFd::from_raw_fd(4),
                OwnedFd::from_raw_fd(5),
            )
        };
        // Ready: closing the pipe tells the shim to start the container.
        drop(ready);
        let a = {
            let sink = sink.clone();
            std::thread::spawn(move || pump(out, "stdout", sink))
        };
        pump(err, "stderr", sink);
        let _ = a.join();
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("gantry-containerd-logger: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_in_any_order() {
        let a: Vec<String> = ["max-files", "3", "dir", "/d", "max-size", "100"]
            .map(String::from)
            .to_vec();
        let s = settings(&a).expect("settings");
        assert_eq!(
            (s.dir, s.max_size, s.max_files),
            (PathBuf::from("/d"), Some(100), 3)
        );
        assert!(settings(&["dir".to_string()]).is_err());
        assert!(log_path(Path::new("/d"), "..", "x").is_err());
    }

    #[test]
    fn lines_are_json_and_rotate() {
        let dir = std::env::temp_dir().join(format!("gantry-logger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.log");
        let mut sink = Sink::open(path.clone(), Some(200), 2).expect("open");
        for i in 0..5 {
            sink.write("stderr", format!("line {i}\n").as_bytes())
                .expect("write");
        }
        let current = std::fs::read_to_string(&path).expect("read");
        let last: serde_json::Value =
            serde_json::from_str(current.lines().last().expect("a line")).expect("json");
        assert_eq!(last["log"], "line 4\n");
        assert_eq!(last["stream"], "stderr");
        assert!(sink.rotated(1).exists(), "rotated at 200 bytes");
        assert!(!sink.rotated(2).exists(), "keeps max-files files");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
