use super::*;
use crate::request::ContainerDemand;

fn gpu(index: u32, model: &str) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-{index}"),
        model: model.into(),
        memory_bytes: 40 << 30,
        healthy: true,
    }
}

/// 0-1 a100, 2-3 t4.
fn inventory() -> Vec<Gpu> {
    vec![gpu(0, "a100"), gpu(1, "a100"), gpu(2, "t4"), gpu(3, "t4")]
}

fn demand(asks: &[(&str, u32, &[&str])]) -> Demand {
    Demand {
        containers: asks
            .iter()
            .map(|(name, count, models)| ContainerDemand {
                name: name.to_string(),
                gpu: (*count > 0).then(|| Request {
                    count: *count,
                    models: models.iter().map(|m| m.to_string()).collect(),
                    ..Request::default()
                }),
            })
            .collect(),
    }
}

fn holding(w: &str, rev: u32, container: &str, indexes: &[u32]) -> Claim {
    let inv = inventory();
    Claim {
        workload_id: w.into(),
        revision: rev,
        gpus: indexes
            .iter()
            .map(|&i| GpuAssignment {
                container: container.into(),
                index: i,
                uuid: format!("GPU-{i}"),
                model: inv[i as usize].model.clone(),
                memory_bytes: 40 << 30,
            })
            .collect(),
        ticket: None,
        request: String::new(),
    }
}

fn waiting(w: &str, ticket: u64, d: &Demand) -> Claim {
    Claim {
        workload_id: w.into(),
        revision: 1,
        gpus: Vec::new(),
        ticket: Some(ticket),
        request: d.to_json(),
    }
}

fn decide(claims: &[Claim], d: &Demand) -> Decision {
    let inv = inventory();
    Situation {
        workload_id: "me",
        revision: 2,
        inventory: &inv,
        claims,
        policy: Policy::Binpack,
    }
    .decide(d)
}

fn placed(d: Decision) -> Vec<(String, u32)> {
    match d {
        Decision::Place(a) => a.into_iter().map(|a| (a.container, a.index)).collect(),
        d => panic!("not placed: {d:?}"),
    }
}

fn waits(d: Decision) -> Vec<String> {
    match d {
        Decision::Wait(m) => m,
        d => panic!("not waiting: {d:?}"),
    }
}

#[test]
fn places_on_gpus_no_other_workload_holds() {
    let d = demand(&[("web", 0, &[]), ("train", 2, &["a100"])]);
    let got = placed(decide(&[], &d));
    assert_eq!(got, vec![("train".into(), 0), ("train".into(), 1)]);
    // Its own previous revision's GPUs are free for it.
    let claims = [holding("me", 1, "train", &[0, 1])];
    assert_eq!(placed(decide(&claims, &d)).len(), 2);
    // Another workload's are not.
    let claims = [holding("other", 1, "x", &[0])];
    let m = waits(decide(&claims, &d));
    assert_eq!(m, vec!["waiting for 2 × a100, 1 free"; 2]);
}

#[test]
fn a_retried_deploy_keeps_what_it_holds() {
    let d = demand(&[("train", 1, &["t4"])]);
    let claims = [Claim {
        request: d.to_json(),
        ..holding("me", 2, "train", &[3])
    }];
    match decide(&claims, &d) {
        Decision::Reuse(a) => assert_eq!(a[0].index, 3),
        d => panic!("{d:?}"),
    }
    // Held for another request under the same revision number (an update
    // rolled back, its number used again): placed afresh.
    let a100 = demand(&[("train", 1, &["a100"])]);
    let claims = [Claim {
        request: a100.to_json(),
        ..holding("me", 2, "train", &[0])
    }];
    assert!(matches!(decide(&claims, &d), Decision::Place(_)));
    // Holding the wrong number: placed again.
    let claims = [holding("me", 2, "train", &[2, 3])];
    assert_eq!(placed(decide(&claims, &d)).len(), 1);
}

#[test]
fn earlier_competing_waiters_go_first() {
    let d = demand(&[("train", 1, &["a100"])]);
    let a100 = demand(&[("x", 2, &["a100"])]);
    let any = demand(&[("x", 1, &[])]);
    let t4 = demand(&[("x", 1, &["t4"])]);
    // No ticket yet: any competing waiter goes first.
    let m = waits(decide(&[waiting("a", 5, &a100)], &d));
    assert_eq!(m, vec!["waiting for 1 × a100, 2 free, 1 request ahead"]);
    let claims = [waiting("a", 5, &a100), waiting("b", 6, &any)];
    assert!(waits(decide(&claims, &d))[0].ends_with(", 2 requests ahead"));
    // One that wants other models does not.
    assert_eq!(placed(decide(&[waiting("c", 1, &t4)], &d)).len(), 1);
    // Nor does a later ticket than its own, nor a claim it cannot read.
    let mine = Claim {
        revision: 2,
        ..waiting("me", 3, &d)
    };
    let unreadable = Claim {
        request: "other words".into(),
        ..waiting("d", 1, &a100)
    };
    let claims = [mine, waiting("a", 5, &a100), unreadable];
    assert_eq!(placed(decide(&claims, &d)).len(), 1);
}

#[test]
fn waiting_states_are_creating_with_the_message() {
    let inv = inventory();
    let d = demand(&[("web", 0, &[]), ("train", 3, &["a100", "t4"])]);
    let claims = [
        holding("other", 1, "x", &[0, 2]),
        Claim {
            revision: 2,
            ..waiting("me", 1, &d)
        },
    ];
    let s = Situation {
        workload_id: "me",
        revision: 2,
        inventory: &inv,
        claims: &claims,
        policy: Policy::Spread,
    };
    let states = s.waiting_states().expect("accepted");
    assert_eq!(states.len(), 2);
    assert_eq!(states[0].name, "web");
    assert!(matches!(states[1].status, ContainerStatus::Creating));
    assert_eq!(states[1].restart_count, 0);
    let m = "waiting for 3 × a100 or t4, 2 free";
    assert_eq!(states[0].error.as_deref(), Some(m));
    assert_eq!(states[1].error.as_deref(), Some(m));
    // Not for a revision that holds its GPUs.
    let claims = [holding("me", 2, "train", &[0])];
    let s = Situation {
        claims: &claims,
        ..s
    };
    assert!(s.waiting_states().is_none());
}

#[test]
fn a_new_revision_takes_over_its_predecessors_gpus_without_queueing() {
    let d = demand(&[("main", 1, &["a100"])]);
    let other = demand(&[("main", 2, &["a100"])]);
    // Revision 1 of `me` holds GPU 1; `them` waits for two a100s.
    let claims = [holding("me", 1, "main", &[1]), waiting("them", 1, &other)];
    assert_eq!(placed(decide(&claims, &d)), [("main".to_string(), 1)]);
    // Asking for more than it holds, it queues behind `them`.
    let more = demand(&[("main", 2, &["a100"])]);
    assert!(matches!(decide(&claims, &more), Decision::Wait(_)));
}
