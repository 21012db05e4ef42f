//! Container output: follow, tail, stdout and stderr.

use super::start;
use gantry::bindings::types::RestartKind;
use gantry_tests::backends::Backend;
use gantry_tests::rpc::{Rpc, busybox, workload};
use std::io::BufRead;
use std::time::{Duration, Instant};

/// `follow` delivers a line printed after the call started.
pub fn logs_follow_sees_a_line_printed_after_the_call_started(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "carol", &["USER"]);
    let w = rpc
        .create(
            "chatty",
            workload(
                vec![busybox(
                    "main",
                    "echo early; sleep 3; echo late-line; exec sleep 3600",
                )],
                RestartKind::No,
            ),
        )
        .expect("create");
    let opened = Instant::now();
    let resp = rpc.logs(&w.id, "follow=1&timestamps=1&wait=1000&reads=8");
    let mut reader = std::io::BufReader::new(resp);
    let mut seen = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json line");
        assert!(v["timestamp"].is_object(), "timestamps were asked for: {v}");
        seen.push((
            v["line"].as_str().unwrap_or("").to_string(),
            opened.elapsed(),
        ));
        if v["line"] == "late-line" {
            break;
        }
        line.clear();
    }
    let late = seen
        .iter()
        .find(|(l, _)| l == "late-line")
        .unwrap_or_else(|| panic!("late-line never arrived: {seen:?}"));
    assert!(seen.iter().any(|(l, _)| l == "early"), "{seen:?}");
    assert!(
        late.1 > Duration::from_millis(500),
        "late-line arrived while following, not in the initial read: {seen:?}"
    );
    rpc.delete(&w.id).expect("delete");
}

/// stdout and stderr are told apart; `tail` gives the last lines.
pub fn logs_tell_stdout_from_stderr_and_tail(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "carl", &["USER"]);
    let w = rpc
        .create(
            "streams",
            workload(
                vec![busybox(
                    "main",
                    "for i in 1 2 3 4 5; do echo out-$i; done; echo err-line >&2; exec sleep 3600",
                )],
                RestartKind::No,
            ),
        )
        .expect("create");
    let read = |query: &str| -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let lines: Vec<serde_json::Value> = rpc
                .logs(&w.id, query)
                .text()
                .expect("logs")
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if lines.iter().any(|l| l["line"] == "err-line") || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let all = read("");
    let err = all
        .iter()
        .find(|l| l["line"] == "err-line")
        .unwrap_or_else(|| panic!("{all:?}"));
    let stream = |l: &serde_json::Value| l["stream"].as_str().unwrap_or("").to_ascii_lowercase();
    assert_eq!(stream(err), "stderr", "{err}");
    let out = all
        .iter()
        .find(|l| l["line"] == "out-1")
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(stream(out), "stdout", "{out}");
    let tail: Vec<String> = read("tail=2")
        .iter()
        .map(|l| l["line"].as_str().unwrap_or("").to_string())
        .collect();
    // stdout and stderr are separate pipes: the order between them is the runtime's.
    assert_eq!(tail.len(), 2, "{tail:?}");
    assert!(
        tail.iter()
            .all(|l| ["out-4", "out-5", "err-line"].contains(&l.as_str())),
        "the last lines: {tail:?}"
    );
    rpc.delete(&w.id).expect("delete");
}
