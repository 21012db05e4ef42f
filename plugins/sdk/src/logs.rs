//! Container logs as Docker's Engine API and Podman's libpod send them,
//! split into `log-line`s, and the `driver.log-reader` over such a stream.
//!
//! The output is framed as `[stream, 0, 0, 0, size (u32 BE)]` followed by
//! `size` bytes (stream 1 stdout, 2 stderr), except a TTY's on Docker's API,
//! which is raw stdout. With `timestamps`, each line starts with an RFC 3339
//! time and a space.

use crate::backend::exports::gantry::plugin::driver::GuestLogReader;
use crate::backend::gantry::plugin::types::{Error, LogLine, LogStream};
use crate::client::BodyStream;
use std::cell::RefCell;

/// At most this many lines are handed over by one `next`.
const MAX_LINES: usize = 1000;

/// Splits one container's log output into lines.
#[derive(Debug, Default)]
pub struct Demuxer {
    framed: bool,
    timestamps: bool,
    container: String,
    raw: Vec<u8>,
    partial: [Vec<u8>; 2],
}

impl Demuxer {
    /// A demuxer for `container`'s output, `framed` or raw, its lines
    /// starting with a time when `timestamps`.
    pub fn new(container: String, framed: bool, timestamps: bool) -> Self {
        Self {
            framed,
            timestamps,
            container,
            ..Self::default()
        }
    }

    /// Feed bytes; the complete lines they finish.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<LogLine> {
        let mut out = Vec::new();
        if !self.framed {
            self.take_lines(0, bytes, &mut out);
            return out;
        }
        self.raw.extend_from_slice(bytes);
        let mut at = 0;
        while let Some(header) = self.raw.get(at..at + 8) {
            let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            let idx = usize::from(header[0] == 2);
            let Some(payload) = self.raw.get(at + 8..at + 8 + size) else {
                break;
            };
            let payload = payload.to_vec();
            self.take_lines(idx, &payload, &mut out);
            at += 8 + size;
        }
        self.raw.drain(..at);
        out
    }

    /// Lines left without a final newline, at the end of the stream.
    pub fn finish(&mut self) -> Vec<LogLine> {
        let mut out = Vec::new();
        for idx in 0..2 {
            let rest = std::mem::take(&mut self.partial[idx]);
            if !rest.is_empty() {
                out.push(self.line(idx, &rest));
            }
        }
        out
    }

    fn take_lines(&mut self, idx: usize, bytes: &[u8], out: &mut Vec<LogLine>) {
        self.partial[idx].extend_from_slice(bytes);
        while let Some(pos) = self.partial[idx].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial[idx].drain(..=pos).collect();
            let line = &line[..line.len() - 1];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            out.push(self.line(idx, line));
        }
    }

    fn line(&self, idx: usize, bytes: &[u8]) -> LogLine {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let (at, text) = match text.split_once(' ') {
            Some((t, rest)) if self.timestamps && crate::clock::timestamp(t).is_some() => {
                (crate::clock::timestamp(t), rest.to_string())
            }
            _ => (None, text),
        };
        LogLine {
            container: self.container.clone(),
            stream: if idx == 1 {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            timestamp: at,
            line: text,
        }
    }
}

/// An open log stream, as a backend's `driver.log-reader` resource hands it out.
pub struct StreamedLogs {
    body: RefCell<Option<BodyStream>>,
    demuxer: RefCell<Demuxer>,
}

impl StreamedLogs {
    /// Read the open `/logs` answer `body` through `demuxer`.
    pub fn new(body: BodyStream, demuxer: Demuxer) -> Self {
        Self {
            body: RefCell::new(Some(body)),
            demuxer: RefCell::new(demuxer),
        }
    }

    /// Lines that arrive within `wait_ms` (waiting for the first bytes only,
    /// then taking what is there); `None` once the stream ended and every
    /// line was delivered.
    pub fn lines(&self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error> {
        let mut body = self.body.borrow_mut();
        let Some(stream) = body.as_mut() else {
            return Ok(None);
        };
        let mut demuxer = self.demuxer.borrow_mut();
        let mut lines = Vec::new();
        let mut wait = u64::from(wait_ms) * 1_000_000;
        loop {
            match stream.read(wait)? {
                Some(bytes) if !bytes.is_empty() => {
                    lines.extend(demuxer.push(&bytes));
                    wait = 0;
                    if lines.len() > MAX_LINES {
                        return Ok(Some(lines));
                    }
                }
                Some(_) => return Ok(Some(lines)),
                None => {
                    lines.extend(demuxer.finish());
                    *body = None;
                    return Ok((!lines.is_empty()).then_some(lines));
                }
            }
        }
    }
}

/// A backend exports it as its `log-reader` (`type LogReader = StreamedLogs`).
impl GuestLogReader for StreamedLogs {
    fn next(&self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error> {
        self.lines(wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(0).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_split_anywhere_tell_the_streams_apart() {
        let mut all = frame(1, b"hello\nwor");
        all.extend(frame(2, b"oops\r\n"));
        all.extend(frame(1, b"ld\n"));
        let mut d = Demuxer::new("c".into(), true, false);
        let mut lines = Vec::new();
        for chunk in all.chunks(3) {
            lines.extend(d.push(chunk));
        }
        let got: Vec<(bool, &str)> = lines
            .iter()
            .map(|l| (l.stream == LogStream::Stderr, l.line.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(false, "hello"), (true, "oops"), (false, "world")]
        );
    }

    #[test]
    fn raw_output_is_stdout_and_timestamps_are_split_off() {
        let mut d = Demuxer::new("c".into(), false, true);
        let lines = d.push(b"2023-09-22T15:36:06.000000001Z hi there\r\npartial");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].line, "hi there");
        assert_eq!(lines[0].stream, LogStream::Stdout);
        assert_eq!(lines[0].timestamp.map(|t| t.nanoseconds), Some(1));
        let rest = d.finish();
        assert_eq!(rest[0].line, "partial");
    }

    /// The lines of `bytes` fed to a fresh demuxer in pieces cut at `cuts`
    /// (the end of the stream included), as (stderr?, text).
    fn lines_of(framed: bool, bytes: &[u8], cuts: &[usize]) -> Vec<(bool, String)> {
        let mut d = Demuxer::new("c".into(), framed, false);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut lines = Vec::new();
        let mut from = 0;
        for to in points.into_iter().chain([bytes.len()]) {
            lines.extend(d.push(&bytes[from..to]));
            from = to;
        }
        lines.extend(d.finish());
        lines
            .into_iter()
            .map(|l| (l.stream == LogStream::Stderr, l.line))
            .collect()
    }

    proptest::proptest! {
        /// However the runtime's stream is cut into reads, the same lines
        /// come out, each on its own stream.
        #[test]
        fn framing_does_not_depend_on_how_reads_cut_the_stream(
            frames in proptest::collection::vec((1u8..=2, proptest::collection::vec(proptest::num::u8::ANY, 0..200)), 0..20),
            cuts in proptest::collection::vec(0usize..10_000, 0..12),
        ) {
            let all: Vec<u8> = frames.iter().flat_map(|(k, p)| frame(*k, p)).collect();
            proptest::prop_assert_eq!(lines_of(true, &all, &cuts), lines_of(true, &all, &[]));
        }

        /// Bytes that are not frames at all (a broken or hostile stream)
        /// never panic the demuxer, framed or raw.
        #[test]
        fn any_bytes_in_any_pieces_are_taken_without_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2_000),
            cuts in proptest::collection::vec(0usize..10_000, 0..12),
        ) {
            let _ = lines_of(true, &bytes, &cuts);
            proptest::prop_assert_eq!(lines_of(false, &bytes, &cuts), lines_of(false, &bytes, &[]));
        }
    }

    #[test]
    fn framed_lines_with_times() {
        let mut d = Demuxer::new("c".into(), true, true);
        let lines = d.push(&frame(1, b"2026-11-24T04:49:12Z out-1\n"));
        assert_eq!(lines[0].line, "out-1");
        assert_eq!(lines[0].timestamp.map(|t| t.seconds), Some(1_795_495_752));
    }
}
