//! What the swarm says of what runs on it, read with the docker CLI: the
//! services and containers carrying a label, and, for a failing test's
//! message, their tasks, the nodes and the daemons' last words.

use super::{Swarm, log_of};

impl Swarm {
    /// Ids of the services carrying `label` (`key` or `key=value`), as the
    /// manager lists them.
    pub fn services(&self, label: &str) -> Vec<String> {
        let filter = format!("label={label}");
        self.manager()
            .cli(&["service", "ls", "-q", "--filter", &filter])
            .expect("the manager lists services")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Full ids of the containers carrying `label`, on any node, stopped ones included.
    pub fn containers(&self, label: &str) -> Vec<String> {
        let filter = format!("label={label}");
        self.nodes
            .iter()
            .flat_map(|n| {
                n.cli(&["ps", "-aq", "--no-trunc", "--filter", &filter])
                    .expect("every node lists its containers")
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// What the swarm says of the services carrying `label` (their tasks,
    /// with node, desired and current state and error), its nodes, and the
    /// last lines of each node's dockerd log: for a failing test's message.
    pub fn explain(&self, label: &str) -> String {
        let m = self.manager();
        let mut out = String::from("nodes:\n");
        out += &m.cli(&["node", "ls"]).unwrap_or_default();
        for id in self.services(label) {
            let tasks = m.cli(&[
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.ID}} {{.Name}} node={{.Node}} desired={{.DesiredState}} \
                 current={{.CurrentState}} error={{.Error}}",
                &id,
            ]);
            out += &format!("tasks of service {id}:\n{}", tasks.unwrap_or_default());
        }
        for n in &self.nodes {
            let log = log_of(&n.dir, "dockerd");
            // Without what every node logs at start in these namespaces.
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| !l.contains("kernel parameter") && !l.contains("default vlan"))
                .collect();
            let tail = &lines[lines.len().saturating_sub(20)..];
            out += &format!(
                "node {} dockerd log, last lines:\n{}\n",
                n.index,
                tail.join("\n")
            );
        }
        out
    }
}
