//! TCP connections made inside another process's network namespace.
//!
//! A socket belongs to the namespace of the thread that created it, for its
//! whole life: one dedicated thread enters the workload's namespace
//! (`setns(2)` on `/proc/<pid>/ns/net`), creates the socket, and goes back
//! to the host's namespace before doing anything else; the connect runs on
//! the async runtime like any other. No async worker ever changes namespace.

use socket2::{Domain, Protocol, Socket, Type};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Job {
    pid: u32,
    domain: Domain,
    reply: oneshot::Sender<io::Result<Vec<Socket>>>,
}

/// Sockets made per trip into a namespace: the trip (a thread hop and two
/// `setns`) costs more than making a socket.
const BATCH: usize = 8;

/// Longest a spare socket is kept: a process id can be reused, and a
/// socket made long ago may be in a namespace no workload has now.
const SPARE_FOR: Duration = Duration::from_millis(500);

/// Sockets of one batch not used yet, and when they were made.
type Spare = (Instant, Vec<Socket>);

/// Makes sockets inside the network namespace of a given process.
pub struct Dialer {
    jobs: mpsc::Sender<Job>,
    /// Sockets made in a batch and not used yet, by process and family.
    spare: Mutex<HashMap<(u32, bool), Spare>>,
}

impl Dialer {
    /// Start the namespace thread. Fails when the host's own namespace
    /// cannot be opened (no `/proc`).
    pub fn spawn() -> io::Result<Dialer> {
        let home = File::open("/proc/thread-self/ns/net")?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gantry-netns".into())
            .spawn(move || {
                for job in queue {
                    match socket_in(job.pid, job.domain, &home) {
                        Ok(made) => {
                            let _ = job.reply.send(made);
                        }
                        Err(e) => {
                            // Every socket this thread made from now on
                            // would be in the wrong namespace: stop.
                            tracing::error!(error = %e, "the netns thread cannot return to the host's namespace");
                            let _ = job.reply.send(Err(e));
                            return;
                        }
                    }
                }
            })?;
        Ok(Dialer {
            jobs,
            spare: Mutex::new(HashMap::new()),
        })
    }

    /// A TCP connection to `addr` inside the network namespace of `pid`.
    pub async fn connect(&self, pid: u32, addr: SocketAddr) -> io::Result<TcpStream> {
        let socket = match self.take_spare(pid, addr.is_ipv6()) {
            Some(s) => s,
            None => self.make(pid, addr).await?,
        };
        let stream = tokio::net::TcpSocket::from_std_stream(socket.into())
            .connect(addr)
            .await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn take_spare(&self, pid: u32, v6: bool) -> Option<Socket> {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let (made, sockets) = spare.get_mut(&(pid, v6))?;
        if made.elapsed() > SPARE_FOR {
            spare.remove(&(pid, v6));
            return None;
        }
        sockets.pop()
    }

    async fn make(&self, pid: u32, addr: SocketAddr) -> io::Result<Socket> {
        let (reply, made) = oneshot::channel();
        let domain = Domain::for_address(addr);
        self.jobs
            .send(Job { pid, domain, reply })
            .map_err(|_| io::Error::other("the netns thread has stopped"))?;
        let mut sockets = made
            .await
            .map_err(|_| io::Error::other("the netns thread has stopped"))??;
        let first = sockets
            .pop()
            .ok_or_else(|| io::Error::other("no socket made"))?;
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        // Old spares of gone processes go with them.
        spare.retain(|_, (made, _)| made.elapsed() <= SPARE_FOR);
        spare.insert((pid, addr.is_ipv6()), (Instant::now(), sockets));
        Ok(first)
    }
}

/// Sockets made in the namespace of `pid` (or why not); the outer error
/// says the thread could not go back to the host's namespace.
fn socket_in(pid: u32, domain: Domain, home: &File) -> io::Result<io::Result<Vec<Socket>>> {
    let ns = match File::open(format!("/proc/{pid}/ns/net")) {
        Ok(ns) => ns,
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = enter(&ns) {
        return Ok(Err(e));
    }
    let made = (0..BATCH)
        .map(|_| Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP)))
        .collect::<io::Result<Vec<_>>>();
    // Home first, whatever the socket call gave.
    enter(home)?;
    Ok(made)
}

fn enter(ns: &File) -> io::Result<()> {
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own namespace is one we can always enter: a socket made there
    /// reaches a listener of this process.
    #[tokio::test]
    async fn a_socket_made_in_our_own_namespace_connects() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let dialer = Dialer::spawn().expect("dialer");
        match dialer.connect(std::process::id(), addr).await {
            Ok(_) => {}
            // Without CAP_SYS_ADMIN, setns is refused even for our own namespace.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => panic!("connect: {e}"),
        }
    }

    #[tokio::test]
    async fn a_process_that_is_gone_is_not_found() {
        let dialer = Dialer::spawn().expect("dialer");
        let e = dialer
            .connect(u32::MAX - 1, "127.0.0.1:1".parse().expect("addr"))
            .await
            .expect_err("no such process");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
