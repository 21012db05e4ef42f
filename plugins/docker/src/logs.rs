//! Container logs: the Engine's multiplexed stream demuxed into lines.
//!
//! Without a TTY the Engine frames output as `[stream, 0, 0, 0, size(u32 BE)]`
//! followed by `size` bytes; with a TTY it is raw stdout.

use crate::engine::BodyStream;
use crate::mapping::timestamp;
use gantry_sdk::backend::gantry::plugin::types::{Error, LogLine, LogStream};

/// Splits Engine log output into lines.
#[derive(Debug, Default)]
pub struct Demuxer {
    tty: bool,
    timestamps: bool,
    container: String,
    raw: Vec<u8>,
    partial: [Vec<u8>; 2],
}

impl Demuxer {
    /// A demuxer for one container's stream.
    pub fn new(container: String, tty: bool, timestamps: bool) -> Self {
        Self {
            tty,
            timestamps,
            container,
            ..Default::default()
        }
    }

    /// Feed bytes; returns the complete lines they finish.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<LogLine> {
        let mut out = Vec::new();
        if self.tty {
            self.take_lines(0, bytes, &mut out);
            return out;
        }
        self.raw.extend_from_slice(bytes);
        let mut at = 0;
        while self.raw.len() >= at + 8 {
            let kind = self.raw[at];
            let size = u32::from_be_bytes([
                self.raw[at + 4],
                self.raw[at + 5],
                self.raw[at + 6],
                self.raw[at + 7],
            ]) as usize;
            if self.raw.len() < at + 8 + size {
                break;
            }
            let payload = self.raw[at + 8..at + 8 + size].to_vec();
            self.take_lines(usize::from(kind == 2), &payload, &mut out);
            at += 8 + size;
        }
        self.raw.drain(..at);
        out
    }

    /// Lines left without a final newline, at the end of the stream.
    pub fn finish(&mut self) -> Vec<LogLine> {
        let mut out = Vec::new();
        for i in 0..2 {
            if !self.partial[i].is_empty() {
                let rest = std::mem::take(&mut self.partial[i]);
                out.push(self.line(i, &rest));
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
        let (ts, text) = if self.timestamps {
            match text.split_once(' ') {
                Some((t, rest)) if timestamp(Some(t)).is_some() => {
                    (timestamp(Some(t)), rest.to_string())
                }
                _ => (None, text),
            }
        } else {
            (None, text)
        };
        LogLine {
            container: self.container.clone(),
            stream: if idx == 1 {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            timestamp: ts,
            line: text,
        }
    }
}

/// An open log stream: the `driver.log-reader` resource.
pub struct LogReader {
    body: std::cell::RefCell<Option<BodyStream>>,
    demux: std::cell::RefCell<Demuxer>,
}

impl LogReader {
    /// Wrap an open `/logs` response.
    pub fn new(body: BodyStream, demux: Demuxer) -> Self {
        Self {
            body: std::cell::RefCell::new(Some(body)),
            demux: std::cell::RefCell::new(demux),
        }
    }

    /// Lines available within `wait_ms`; `None` once the stream ended and everything was delivered.
    pub fn next(&self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error> {
        let mut body = self.body.borrow_mut();
        let Some(stream) = body.as_mut() else {
            return Ok(None);
        };
        let deadline_ns = u64::from(wait_ms) * 1_000_000;
        let mut lines = Vec::new();
        let mut waited = false;
        loop {
            // Wait for the first bytes only; then drain what is already there.
            let wait = if waited { 0 } else { deadline_ns };
            match stream.read(wait)? {
                Some(bytes) if !bytes.is_empty() => {
                    lines.extend(self.demux.borrow_mut().push(&bytes));
                    waited = true;
                }
                Some(_) => {
                    if waited || !lines.is_empty() {
                        return Ok(Some(lines));
                    }
                    return Ok(Some(Vec::new()));
                }
                None => {
                    lines.extend(self.demux.borrow_mut().finish());
                    *body = None;
                    return Ok(if lines.is_empty() { None } else { Some(lines) });
                }
            }
            if waited && !lines.is_empty() && lines.len() > 1000 {
                return Ok(Some(lines));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind, 0, 0, 0];
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn demuxes_frames_split_anywhere() {
        let mut all = frame(1, b"hello\nwor");
        all.extend(frame(2, b"oops\n"));
        all.extend(frame(1, b"ld\n"));
        let mut d = Demuxer::new("c".into(), false, false);
        let mut lines = Vec::new();
        for chunk in all.chunks(3) {
            lines.extend(d.push(chunk));
        }
        let got: Vec<(bool, String)> = lines
            .iter()
            .map(|l| (l.stream == LogStream::Stderr, l.line.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (false, "hello".into()),
                (true, "oops".into()),
                (false, "world".into())
            ]
        );
    }

    #[test]
    fn tty_output_is_raw_and_timestamps_are_split_off() {
        let mut d = Demuxer::new("c".into(), true, true);
        let lines = d.push(b"2023-09-22T15:36:06.000000001Z hi there\r\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].line, "hi there");
        assert_eq!(lines[0].timestamp.map(|t| t.nanoseconds), Some(1));
    }
}
