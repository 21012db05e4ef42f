//! The service mapping, checked on its JSON.
use super::*;
use gantry_sdk::backend::gantry::plugin::types::{Mount, PortMapping, WorkloadSpec};

fn settings() -> Settings {
    Settings {
        stop_grace_ms: 2_000,
        restart_delay_ms: 0,
        update_parallelism: 1,
        update_delay_ms: 0,
        update_monitor_ms: 3_000,
    }
}

fn deployment(containers: Vec<ContainerSpec>) -> Deployment {
    Deployment {
        workload_id: "0123456789abcdef".into(),
        revision: 2,
        name: "web-01234567".into(),
        spec: WorkloadSpec::new(containers),
        labels: vec![
            (labels::WORKLOAD.into(), "0123456789abcdef".into()),
            (labels::REVISION.into(), "2".into()),
        ],
    }
}

#[test]
fn a_container_becomes_a_replicated_dnsrr_service_that_rolls_back() {
    let mut c = ContainerSpec::new("main", "busybox:1.36");
    c.command = Some(vec!["sh".into(), "-c".into(), "sleep 1".into()]);
    c.resources.cpu = Some(0.5);
    c.resources.memory_bytes = Some(64 << 20);
    c.resources.memory_reservation_bytes = Some(32 << 20);
    c.labels = vec![
        (gantry_sdk::labels::REPLICAS.into(), "3".into()),
        (
            gantry_sdk::labels::PLACEMENT_CONSTRAINTS.into(),
            "node.labels.gpu.model==a100; node.role==worker".into(),
        ),
        (
            gantry_sdk::labels::PLACEMENT_SPREAD.into(),
            "node.labels.zone".into(),
        ),
    ];
    c.mounts = vec![Mount {
        source: "/srv".into(),
        destination: "/data".into(),
        read_only: true,
        propagation: Some("rprivate".into()),
    }];
    let d = deployment(vec![c]);
    check(&d).expect("allowed");
    let s = spec(&d, 0, 3, "running", &settings());
    assert_eq!(s["Name"], "web-01234567-main");
    assert_eq!(s["Mode"]["Replicated"]["Replicas"], 3);
    assert_eq!(s["EndpointSpec"]["Mode"], "dnsrr");
    assert_eq!(s["Labels"][labels::REVISION], "2");
    assert_eq!(s["Labels"][labels::REPLICAS], "3");
    assert_eq!(s["Labels"][labels::LIFE], "running");
    let t = &s["TaskTemplate"];
    assert_eq!(t["Resources"]["Limits"]["NanoCPUs"], 500_000_000);
    assert_eq!(t["Resources"]["Limits"]["MemoryBytes"], 64 << 20);
    assert_eq!(t["Resources"]["Reservations"]["MemoryBytes"], 32 << 20);
    assert_eq!(t["RestartPolicy"]["Condition"], "none");
    assert_eq!(
        t["Placement"]["Constraints"],
        json!(["node.labels.gpu.model==a100", "node.role==worker"])
    );
    assert_eq!(
        t["Placement"]["Preferences"][0]["Spread"]["SpreadDescriptor"],
        "node.labels.zone"
    );
    assert_eq!(
        t["ContainerSpec"]["Mounts"][0]["BindOptions"]["Propagation"],
        "rprivate"
    );
    assert_eq!(t["ContainerSpec"]["Labels"][labels::CONTAINER], "main");
    assert!(
        t.get("Networks").is_none(),
        "one container needs no network"
    );
    assert_eq!(s["UpdateConfig"]["FailureAction"], "rollback");
    assert_eq!(s["UpdateConfig"]["Monitor"], 3_000_000_000u64);
}

#[test]
fn containers_of_one_workload_share_an_overlay_under_their_names() {
    let d = deployment(vec![
        ContainerSpec::new("server", "busybox:1.36"),
        ContainerSpec::new("client", "busybox:1.36"),
    ]);
    let s = spec(&d, 1, 1, "running", &settings());
    assert_eq!(
        s["TaskTemplate"]["Networks"],
        json!([{"Target": "gantry-0123456789ab", "Aliases": ["client"]}])
    );
    assert_eq!(s["Labels"][labels::INDEX], "1");
}

#[test]
fn what_a_service_cannot_do_is_refused() {
    type Change = Box<dyn Fn(&mut ContainerSpec)>;
    let cases: Vec<(&str, Change)> = vec![
        ("privileged", Box::new(|c| c.privileged = true)),
        (
            "host port",
            Box::new(|c| {
                c.ports = vec![PortMapping {
                    host_port: Some(8080),
                    ..PortMapping::tcp(80)
                }]
            }),
        ),
        (
            "swap",
            Box::new(|c| c.resources.memory_swap_bytes = Some(-1)),
        ),
    ];
    for (what, change) in cases {
        let mut c = ContainerSpec::new("main", "busybox:1.36");
        change(&mut c);
        assert!(
            matches!(check(&deployment(vec![c])), Err(Error::Unsupported(_))),
            "{what}"
        );
    }
    let mut c = ContainerSpec::new("main", "busybox:1.36");
    c.labels = vec![(gantry_sdk::labels::REPLICAS.into(), "0".into())];
    assert!(matches!(
        check(&deployment(vec![c])),
        Err(Error::Invalid(_))
    ));
    let mut d = deployment(vec![ContainerSpec::new("main", "busybox:1.36")]);
    d.spec.network = NetworkMode::Bridge;
    assert!(matches!(check(&d), Err(Error::Unsupported(_))));
}

#[test]
fn service_names_are_what_swarm_accepts() {
    assert_eq!(
        service_name("my app_1-0123", "web.v2"),
        "my-app-1-0123-web-v2"
    );
    assert!(service_name(&"x".repeat(80), "c").len() <= 63);
}
