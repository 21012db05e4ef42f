//! A three-node Docker Swarm on this one machine, started on demand for the
//! swarm backend's tests.
//!
//! Each node is a private containerd + dockerd pair in a network namespace
//! of its own, joined by veth pairs to a bridge inside a fourth namespace
//! the harness creates: 10.213.0.0/16 is used only inside those namespaces
//! (the nodes' addresses and local networks in 10.213.0.0/25, the swarm's
//! overlay networks in 10.213.128.0/17),
//! with no default route, so nothing leaves the machine and the root
//! namespace holds no interface of ours. Daemons run under `nsenter --net`
//! (not `ip netns exec`, whose private mount namespace breaks them) and a
//! UTS namespace of their own (each node has its own hostname). Node 1
//! runs `swarm init` with a 1 s dispatcher heartbeat; nodes 2 and 3 join as
//! workers; the ingress network is removed (this kernel has no IPVS:
//! services use `dnsrr` endpoints); the test image is loaded on every node.
//!
//! Dropping the [`Swarm`] stops everything by PID (dockerd, the containers'
//! processes, containerd's shims, containerd), unmounts what the daemons
//! left, deletes the namespaces and cgroups and removes the directory —
//! also when a test fails. Names carry this process's id, so runs beside
//! each other do not meet.

mod shared;
mod teardown;
mod view;

pub use shared::shared;

use crate::runtimes::{TEST_IMAGE, kill_pid, spawn_logged, wait_for, wait_gone, which};
use anyhow::{Context, Result, bail};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// One node: its namespace, address and daemons.
#[derive(Debug)]
pub struct Node {
    /// 1, 2 or 3; node 1 is the manager.
    pub index: usize,
    /// Its network namespace's name (under `/run/netns`).
    pub netns: String,
    /// Its address on the swarm's private network.
    pub address: Ipv4Addr,
    /// Where its dockerd answers (a unix socket, reachable from the host).
    pub docker_sock: PathBuf,
    dir: PathBuf,
    containerd: u32,
    dockerd: Option<u32>,
}

impl Node {
    /// `unix://` URL of its dockerd.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.docker_sock.display())
    }

    /// The docker CLI on this node.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(self.docker_host());
        c
    }

    /// What the docker CLI on this node prints for `args`; `None` if it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        output(self.docker().args(args)).ok()
    }

    /// Its hostname (the name the swarm lists it by).
    pub fn hostname(&self) -> &str {
        &self.netns
    }
}

/// Three nodes in one swarm; stopped and removed when dropped.
#[derive(Debug)]
pub struct Swarm {
    /// The nodes, manager first.
    pub nodes: Vec<Node>,
    prefix: String,
    dir: PathBuf,
}

const NET: [u8; 3] = [10, 213, 0];

/// Swarms this process started, for unique names.
static SWARMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Swarm {
    /// Bring three nodes up under `dir` and form the swarm.
    pub fn start(dir: &Path) -> Result<Swarm> {
        for bin in [
            "ip",
            "nsenter",
            "unshare",
            "dockerd",
            "containerd",
            "docker",
        ] {
            which(bin).with_context(|| format!("{bin} is not installed"))?;
        }
        std::fs::create_dir_all(dir)?;
        let mut swarm = Swarm {
            nodes: Vec::new(),
            // Unique per swarm: a process may hold the shared one and its own.
            prefix: format!(
                "gs{}x{}",
                std::process::id(),
                SWARMS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            dir: dir.to_path_buf(),
        };
        // From here on, a failure tears down whatever was made.
        swarm.network()?;
        for i in 1..=3 {
            swarm.start_node(i)?;
        }
        for n in &swarm.nodes {
            wait_for(
                &format!("dockerd of node {}", n.index),
                Duration::from_secs(60),
                || quiet(n.docker().arg("version")),
            )
            .with_context(|| log_of(&n.dir, "dockerd"))?;
        }
        swarm.form()?;
        swarm.load_image()?;
        Ok(swarm)
    }

    /// The manager, node 1.
    pub fn manager(&self) -> &Node {
        &self.nodes[0]
    }

    /// Make nodes 2 and 3 managers too (three managers keep a quorum when one dies).
    pub fn promote_workers(&self) -> Result<()> {
        for n in &self.nodes[1..] {
            run(self
                .manager()
                .docker()
                .args(["node", "promote", n.hostname()]))?;
        }
        wait_for("three reachable managers", Duration::from_secs(60), || {
            output(
                self.manager()
                    .docker()
                    .args(["node", "ls", "--format", "{{.ManagerStatus}}"]),
            )
            .is_ok_and(|s| {
                s.lines()
                    .filter(|l| *l == "Reachable" || *l == "Leader")
                    .count()
                    == 3
            })
        })
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    fn network(&self) -> Result<()> {
        let br = self.bridge_ns();
        run(Command::new("ip").args(["netns", "add", &br]))?;
        run(Command::new("ip").args(["-n", &br, "link", "set", "lo", "up"]))?;
        run(Command::new("ip").args(["-n", &br, "link", "add", "br0", "type", "bridge"]))?;
        run(Command::new("ip").args(["-n", &br, "link", "set", "br0", "up"]))?;
        for i in 1..=3usize {
            let ns = format!("{}-n{i}", self.prefix);
            let peer = format!("vn{i}");
            run(Command::new("ip").args(["netns", "add", &ns]))?;
            // Made inside the node's namespace, its peer placed straight in
            // the bridge's: the root namespace never holds either end.
            run(Command::new("ip").args([
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &peer, "netns",
                &br,
            ]))?;
            run(Command::new("ip").args(["-n", &br, "link", "set", &peer, "master", "br0"]))?;
            run(Command::new("ip").args(["-n", &br, "link", "set", &peer, "up"]))?;
            run(Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]))?;
            // A /26: dockerd's docker_gwbridge takes a /27 higher up the /24.
            let cidr = format!("{}/26", address(i));
            run(Command::new("ip").args(["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]))?;
            run(Command::new("ip").args(["-n", &ns, "link", "set", "eth0", "up"]))?;
        }
        Ok(())
    }

    /// Start node `i`'s daemons; the node is kept (for tearing down) as
    /// soon as a process of it runs.
    fn start_node(&mut self, i: usize) -> Result<()> {
        let dir = self.dir.join(format!("n{i}"));
        std::fs::create_dir_all(&dir)?;
        let netns = format!("{}-n{i}", self.prefix);
        let sock = dir.join("containerd.sock");
        std::fs::write(
            dir.join("containerd.toml"),
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{sock}\"\n",
                root = dir.join("containerd/root").display(),
                state = dir.join("containerd/state").display(),
                sock = sock.display()
            ),
        )?;
        // nsenter and unshare exec what they run: the PIDs are the daemons'.
        let containerd = spawn_logged(
            &dir,
            "containerd",
            Command::new("nsenter")
                .arg(format!("--net=/run/netns/{netns}"))
                .arg("containerd")
                .arg("--config")
                .arg(dir.join("containerd.toml")),
        )?;
        self.nodes.push(Node {
            index: i,
            netns,
            address: address(i),
            docker_sock: dir.join("docker.sock"),
            dir: dir.clone(),
            containerd,
            dockerd: None,
        });
        wait_for("containerd", Duration::from_secs(30), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        })
        .with_context(|| log_of(&dir, "containerd"))?;
        let hostname = format!("{}-n{i}", self.prefix);
        if let Some(node) = self.nodes.last_mut() {
            node.dockerd = Some(spawn_dockerd(node, &hostname)?);
        }
        Ok(())
    }

    fn form(&self) -> Result<()> {
        let manager = self.manager();
        let listen = format!("{}:2377", manager.address);
        run(manager.docker().args([
            "swarm",
            "init",
            "--advertise-addr",
            &manager.address.to_string(),
            "--listen-addr",
            &listen,
            "--dispatcher-heartbeat",
            "1s",
            // Overlay networks: 128 /24s, for workloads created side by side.
            "--default-addr-pool",
            "10.213.128.0/17",
            "--default-addr-pool-mask-length",
            "24",
        ]))?;
        // The routing mesh needs IPVS, which this kernel lacks.
        run(manager.docker().args(["network", "rm", "ingress"]))?;
        let token = output(
            manager
                .docker()
                .args(["swarm", "join-token", "-q", "worker"]),
        )?;
        for n in &self.nodes[1..] {
            run(n.docker().args([
                "swarm",
                "join",
                "--token",
                token.trim(),
                "--advertise-addr",
                &n.address.to_string(),
                "--listen-addr",
                &format!("{}:2377", n.address),
                &listen,
            ]))?;
        }
        wait_for("three ready nodes", Duration::from_secs(60), || {
            output(
                manager
                    .docker()
                    .args(["node", "ls", "--format", "{{.Status}}"]),
            )
            .is_ok_and(|s| s.lines().filter(|l| *l == "Ready").count() == 3)
        })
    }

    /// The test image, made on the harness's own dockerd, saved once and
    /// loaded into every node.
    fn load_image(&self) -> Result<()> {
        let tar = self.dir.join("image.tar");
        run(Command::new("docker")
            .arg("-H")
            .arg(crate::runtimes::runtimes().docker_host())
            .args(["save", "-o"])
            .arg(&tar)
            .arg(TEST_IMAGE))?;
        for n in &self.nodes {
            run(n.docker().args(["load", "-q", "-i"]).arg(&tar))?;
        }
        Ok(())
    }

    /// Kill node `i`'s dockerd with SIGKILL, as a node dying would (its
    /// containerd and containers stay, cut off from the swarm).
    pub fn kill_dockerd(&mut self, i: usize) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.index == i)
            && let Some(pid) = n.dockerd.take()
        {
            kill_pid(pid, libc::SIGKILL);
            wait_gone(pid);
        }
    }
}

/// dockerd of node `n`, in its network namespace and a UTS namespace named
/// `hostname`.
fn spawn_dockerd(n: &Node, hostname: &str) -> Result<u32> {
    spawn_logged(
        &n.dir,
        "dockerd",
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", n.netns))
            .args([
                "unshare",
                "--uts",
                "sh",
                "-c",
                "hostname \"$0\" && exec \"$@\"",
            ])
            .arg(hostname)
            .arg("dockerd")
            .arg("--data-root")
            .arg(n.dir.join("docker"))
            .arg("--exec-root")
            .arg(n.dir.join("docker-exec"))
            .arg("--pidfile")
            .arg(n.dir.join("docker.pid"))
            .arg("-H")
            .arg(n.docker_host())
            .arg("--containerd")
            .arg(n.dir.join("containerd.sock"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--default-address-pool",
                "base=10.213.0.64/26,size=27",
            ])
            .arg("--cgroup-parent")
            .arg(format!("/{hostname}"))
            .arg("--swarm-default-advertise-addr")
            .arg(n.address.to_string())
            .arg("--label")
            .arg(format!("gantry.test.node=n{}", n.index))
            // Read by dockerd: tasks use the local image, no registry.
            .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1"),
    )
}

fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(NET[0], NET[1], NET[2], 10 + u8::try_from(i).unwrap_or(0))
}

fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

fn run(cmd: &mut Command) -> Result<()> {
    output(cmd).map(|_| ())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
