//! A loopback HTTP/1.1 file server for tests that make gantry download
//! something (Kanto's SoftwareUpdatable artifacts): fixed files, fixed
//! redirects, 404 for anything else. It serves on its own thread until
//! dropped, one request per connection.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a path answers.
#[derive(Debug, Clone)]
pub enum Served {
    /// 200 with this body.
    File(Vec<u8>),
    /// 302 to this location.
    Redirect(String),
}

/// A running file server on `127.0.0.1:<port>`.
pub struct FileServer {
    /// Its port.
    pub port: u16,
    /// Paths requested so far, in order.
    pub requested: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serve `routes` (path → answer).
    pub fn start(routes: HashMap<String, Served>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the file server");
        let port = listener.local_addr().expect("address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requested = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (stop.clone(), requested.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    answer(conn, &routes, &r);
                }
            }
        });
        FileServer {
            port,
            requested,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn answer(conn: TcpStream, routes: &HashMap<String, Served>, requested: &Mutex<Vec<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Headers are read and ignored.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    requested
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.clone());
    let mut out = &conn;
    let _ = match routes.get(&path) {
        Some(Served::File(body)) => out
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|()| out.write_all(body)),
        Some(Served::Redirect(to)) => out.write_all(
            format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        ),
        None => out.write_all(
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot found",
        ),
    };
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
