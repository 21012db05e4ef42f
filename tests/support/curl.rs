//! curl (OpenSSL, nghttp2): the client a user types, for HTTP/2, TLS and
//! `--resolve`d host names.

use std::process::Command;

/// What one curl run gave.
#[derive(Debug)]
pub struct Curl {
    /// Its exit code (0: a response came; 28: timed out; 60: untrusted certificate).
    pub code: i32,
    /// What it wrote to stdout (the body, or what `-w` formats).
    pub stdout: String,
    /// Its error messages.
    pub stderr: String,
}

/// `curl -sS --max-time 30` with `args`.
pub fn curl(args: &[&str]) -> Curl {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("running curl (is it installed?)");
    Curl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
