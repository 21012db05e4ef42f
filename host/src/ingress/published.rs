//! Published ports: a port mapping with a host port, on a workload in its
//! own loopback-only namespace (`isolated`), is a TCP listener of the host's
//! that forwards each connection to the container port inside the
//! workload's namespace. No runtime can publish from such a namespace (it
//! has no bridge and no route), so the host does, alike on every backend.
//!
//! Listeners follow the control plane's events: bound when a workload with
//! such a mapping appears (or the host starts), kept while it exists, so a
//! stopped workload keeps its ports (a connection is closed at once), and
//! dropped when it is removed or its spec no longer maps the port. A port
//! the host cannot bind (taken by another program or workload) is logged
//! and left unbound; the workload runs without it.

use super::netns::Dialer;
use super::route::running_pid;
use crate::bindings::types::{
    EventKind, NetworkMode, PortProtocol, Workload, WorkloadPhase, WorkloadSpec,
};
use crate::control::ControlPlane;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// `[ports]`: published ports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PortsConfig {
    /// Whether the host publishes ports at all.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Where a mapping without a host address (or with `0.0.0.0`/`::`,
    /// "every interface") listens: loopback unless the operator opens it
    /// wider.
    #[serde(default = "loopback")]
    pub default_address: IpAddr,
    /// Other addresses a mapping may name; one naming any other address is
    /// not published (and logged).
    #[serde(default)]
    pub allowed_addresses: Vec<IpAddr>,
}

impl Default for PortsConfig {
    fn default() -> Self {
        PortsConfig {
            enabled: true,
            default_address: loopback(),
            allowed_addresses: Vec::new(),
        }
    }
}

fn enabled() -> bool {
    true
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// One published port: where the host listens, and the container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Mapping {
    host: SocketAddr,
    container_port: u16,
}

/// A bound listener; dropping it stops accepting.
struct Bound {
    mapping: Mapping,
    task: JoinHandle<()>,
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A workload's listeners and the process its namespace is reached through
/// (none while it does not run).
struct Published {
    listeners: Vec<Bound>,
    target: watch::Sender<Option<u32>>,
}

/// Keeps the host's listeners in step with the workloads' port mappings.
pub struct Publisher {
    dialer: Arc<Dialer>,
    addresses: Addresses,
    by_workload: HashMap<String, Published>,
}

impl Publisher {
    /// Publish the ports of `control`'s workloads until the host stops.
    pub fn spawn(
        config: &PortsConfig,
        control: Arc<ControlPlane>,
        dialer: Arc<Dialer>,
    ) -> JoinHandle<()> {
        let mut publisher = Publisher {
            dialer,
            addresses: Addresses {
                default: config.default_address,
                allowed: config.allowed_addresses.clone(),
            },
            by_workload: HashMap::new(),
        };
        // Subscribed before the first read: nothing falls between.
        let mut events = control.subscribe();
        tokio::spawn(async move {
            publisher.resync(&control).await;
            loop {
                match events.recv().await {
                    Ok(e) if e.kind == EventKind::Removed => {
                        publisher.by_workload.remove(&e.workload_id);
                    }
                    Ok(e) => {
                        if let Some(w) = &e.workload {
                            publisher.follow(w).await;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "published ports missed events; reading every workload again"
                        );
                        publisher.resync(&control).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }

    async fn resync(&mut self, control: &ControlPlane) {
        match control.every_workload().await {
            Ok(all) => {
                self.by_workload
                    .retain(|id, _| all.iter().any(|w| &w.id == id));
                for w in &all {
                    self.follow(w).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "published ports: reading workloads"),
        }
    }

    /// Bring `w`'s listeners and target up to date.
    async fn follow(&mut self, w: &Workload) {
        let wanted = if w.phase == WorkloadPhase::Deleting {
            Vec::new()
        } else {
            mappings(&w.id, &w.spec, &self.addresses)
        };
        if wanted.is_empty() {
            self.by_workload.remove(&w.id);
            return;
        }
        let target = running_pid(w);
        let entry = self
            .by_workload
            .entry(w.id.clone())
            .or_insert_with(|| Published {
                listeners: Vec::new(),
                target: watch::channel(None).0,
            });
        entry.target.send_replace(target);
        entry.listeners.retain(|b| wanted.contains(&b.mapping));
        for m in wanted {
            if entry.listeners.iter().any(|b| b.mapping == m) {
                continue;
            }
            match bind(m.host).await {
                Ok(listener) => {
                    tracing::info!(workload = %w.id, host = %m.host, container_port = m.container_port, "publishing a port");
                    let task = tokio::spawn(accept(
                        listener,
                        m.container_port,
                        entry.target.subscribe(),
                        self.dialer.clone(),
                    ));
                    entry.listeners.push(Bound { mapping: m, task });
                }
                Err(e) => tracing::error!(
                    workload = %w.id, host = %m.host, error = %e,
                    "cannot publish a port: the workload runs without it"
                ),
            }
        }
    }
}

/// Where the host may listen: the default address, and others the
/// operator allows.
struct Addresses {
    default: IpAddr,
    allowed: Vec<IpAddr>,
}

impl Addresses {
    /// Where a mapping naming `asked` listens, if it may.
    fn resolve(&self, asked: Option<&str>) -> Result<IpAddr, String> {
        let ip: IpAddr = match asked {
            None => return Ok(self.default),
            Some(text) => text
                .parse()
                .map_err(|_| format!("`{text}` is not an IP address"))?,
        };
        if ip.is_unspecified() {
            return Ok(self.default);
        }
        if ip == self.default || self.allowed.contains(&ip) {
            Ok(ip)
        } else {
            Err(format!("{ip} is not an address [ports] allows"))
        }
    }
}

/// The TCP mappings with a host port of a spec in its own namespace.
fn mappings(workload: &str, spec: &WorkloadSpec, addresses: &Addresses) -> Vec<Mapping> {
    if spec.network != NetworkMode::Isolated {
        return Vec::new();
    }
    spec.containers
        .iter()
        .flat_map(|c| &c.ports)
        .filter(|p| p.protocol == PortProtocol::Tcp)
        .filter_map(|p| {
            let port = p.host_port?;
            match addresses.resolve(p.host_ip.as_deref()) {
                Ok(ip) => Some(Mapping {
                    host: SocketAddr::new(ip, port),
                    container_port: p.container_port,
                }),
                Err(why) => {
                    tracing::error!(%workload, port, %why, "not publishing a port");
                    None
                }
            }
        })
        .collect()
}

/// Bind `addr`, a few times over a short while: a listener just released
/// (its task aborted) closes its socket a moment later.
async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 10 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

async fn accept(
    listener: TcpListener,
    container_port: u16,
    target: watch::Receiver<Option<u32>>,
    dialer: Arc<Dialer>,
) {
    loop {
        let (down, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(error = %e, "accepting on a published port");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // Closed at once while the workload does not run.
        let Some(pid) = *target.borrow() else {
            continue;
        };
        let dialer = dialer.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(down, pid, container_port, &dialer).await {
                tracing::debug!(%peer, container_port, error = %e, "a published-port connection ended");
            }
        });
    }
}

async fn relay(
    mut down: TcpStream,
    pid: u32,
    container_port: u16,
    dialer: &Dialer,
) -> std::io::Result<()> {
    down.set_nodelay(true)?;
    let inside = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), container_port);
    let mut up = dialer.connect(pid, inside).await?;
    tokio::io::copy_bidirectional(&mut down, &mut up).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{ContainerSpec, PortMapping};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn port(container_port: u16, host_port: Option<u16>, protocol: PortProtocol) -> PortMapping {
        PortMapping {
            container_port,
            protocol,
            host_port,
            host_port_end: None,
            host_ip: None,
        }
    }

    #[test]
    fn only_tcp_host_ports_of_own_namespaces_are_published() {
        let mut spec = WorkloadSpec::new(vec![ContainerSpec {
            ports: vec![
                port(80, Some(8080), PortProtocol::Tcp),
                port(81, None, PortProtocol::Tcp),
                port(53, Some(5353), PortProtocol::Udp),
            ],
            ..ContainerSpec::new("app", "busybox:1")
        }]);
        spec.containers[0].ports[0].host_ip = Some("::1".into());
        spec.network = NetworkMode::Isolated;
        let addresses = Addresses {
            default: loopback(),
            allowed: vec!["::1".parse().expect("ip")],
        };
        let found = mappings("w", &spec, &addresses);
        assert_eq!(
            found,
            vec![Mapping {
                host: "[::1]:8080".parse().expect("addr"),
                container_port: 80
            }]
        );
        spec.network = NetworkMode::Bridge;
        assert!(
            mappings("w", &spec, &addresses).is_empty(),
            "the runtime publishes on a bridge"
        );
    }

    #[test]
    fn every_interface_means_the_default_and_others_need_allowing() {
        let addresses = Addresses {
            default: loopback(),
            allowed: Vec::new(),
        };
        assert_eq!(addresses.resolve(None), Ok(loopback()));
        assert_eq!(addresses.resolve(Some("0.0.0.0")), Ok(loopback()));
        assert_eq!(addresses.resolve(Some("::")), Ok(loopback()));
        assert_eq!(addresses.resolve(Some("127.0.0.1")), Ok(loopback()));
        assert!(addresses.resolve(Some("192.0.2.1")).is_err());
        assert!(addresses.resolve(Some("not-an-ip")).is_err());
    }

    /// A published port reaches a listener in the target's namespace: here
    /// this process's own, which the namespace thread can always enter.
    #[tokio::test]
    async fn a_published_port_forwards_into_the_namespace() {
        let inside = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let container_port = inside.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = inside.accept().await {
                let _ = s.write_all(b"from inside").await;
            }
        });
        let published = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = published.local_addr().expect("addr");
        let (target, watching) = watch::channel(None);
        let dialer = Arc::new(Dialer::spawn().expect("dialer"));
        let inside_addr = SocketAddr::new(loopback(), container_port);
        match dialer.connect(std::process::id(), inside_addr).await {
            Ok(_) => {}
            // Without CAP_SYS_ADMIN, setns is refused even for our own namespace.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return,
            Err(e) => panic!("connect: {e}"),
        }
        tokio::spawn(accept(published, container_port, watching, dialer));
        // Not running: closed at once.
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("closed");
        assert!(got.is_empty());
        target.send_replace(Some(std::process::id()));
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"from inside");
    }
}
