//! `gantry-test-runtimes start|stop DIR`: the test harness's runtimes, for a whole test run.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("start"), Some(dir)) => {
            let rt = gantry_test_runtimes::start(&PathBuf::from(dir))?;
            println!(
                "dockerd pid {} at {}, containerd pid {} at {}",
                rt.dockerd_pid,
                rt.docker_host(),
                rt.containerd_pid,
                rt.containerd_sock.display()
            );
            Ok(())
        }
        (Some("stop"), Some(dir)) => gantry_test_runtimes::stop(&PathBuf::from(dir)),
        _ => anyhow::bail!("usage: gantry-test-runtimes start|stop DIR"),
    }
}
