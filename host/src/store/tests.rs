use super::*;
use crate::bindings::types::{
    ContainerState, ContainerStatus, DesiredState, Timestamp, WorkloadPhase, WorkloadSpec,
};

fn workload(
    n: i64,
    owner: &str,
    namespace: &str,
    annotations: &[(&str, &str)],
) -> (Workload, Revision) {
    let at = Timestamp {
        seconds: 1_700_000_000 + n,
        nanoseconds: 0,
    };
    let w = Workload {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        name: format!("w{n}"),
        owner: owner.into(),
        namespace: namespace.into(),
        revision: 1,
        spec: WorkloadSpec::new(Vec::new()),
        desired: DesiredState::Running,
        phase: WorkloadPhase::Deploying,
        containers: Vec::new(),
        backend: "b".into(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        created_at: at,
        updated_at: None,
        message: None,
    };
    let r = Revision {
        workload_id: w.id.clone(),
        number: 1,
        spec: w.spec.clone(),
        created_at: at,
    };
    (w, r)
}

fn names(ws: &[Workload]) -> Vec<&str> {
    ws.iter().map(|w| w.name.as_str()).collect()
}

#[test]
fn pages_filter_count_and_order_in_sql() {
    let s = StateStore::open(":memory:").expect("store");
    let rows = [
        (
            1,
            "alice",
            "/subscriptions/s/resourceGroups/a",
            &[("env", "prod")][..],
        ),
        (
            2,
            "alice",
            "/subscriptions/s/resourceGroups/b",
            &[("env", "test")][..],
        ),
        (
            3,
            "bob",
            "/subscriptions/s/resourceGroups/a",
            &[("env", "prod"), ("tier", "web")][..],
        ),
        (4, "alice", "", &[][..]),
        (
            5,
            "alice",
            "/subscriptions/t/resourceGroups/a",
            &[("env", "prod")][..],
        ),
    ];
    for (n, owner, ns, ann) in rows {
        let (w, r) = workload(n, owner, ns, ann);
        s.insert(&w, &r).expect("insert");
    }
    let all = Selection::default();
    let (page, total) = s.page(&all, 0, 2).expect("page");
    assert_eq!((names(&page), total), (vec!["w5", "w4"], 5), "newest first");
    let (page, _) = s.page(&all, 4, 2).expect("last page");
    assert_eq!(names(&page), vec!["w1"]);
    let alice = Selection {
        owner: Some("alice"),
        ..Selection::default()
    };
    assert_eq!(s.page(&alice, 0, 10).expect("owner").1, 4);
    let prefix = Selection {
        owner: Some("alice"),
        namespace_prefix: Some("/subscriptions/s/"),
        ..Selection::default()
    };
    assert_eq!(
        names(&s.page(&prefix, 0, 10).expect("prefix").0),
        vec!["w2", "w1"]
    );
    let empty_ns = Selection {
        namespace: Some(""),
        ..Selection::default()
    };
    assert_eq!(names(&s.page(&empty_ns, 0, 10).expect("ns").0), vec!["w4"]);
    let tagged = [("env".to_string(), "prod".to_string())];
    let prod = Selection {
        annotations: &tagged,
        ..Selection::default()
    };
    assert_eq!(
        names(&s.page(&prod, 0, 10).expect("annotations").0),
        vec!["w5", "w3", "w1"]
    );
    let both = [
        ("env".to_string(), "prod".to_string()),
        ("tier".to_string(), "web".to_string()),
    ];
    let web = Selection {
        annotations: &both,
        name: Some("w3"),
        ..Selection::default()
    };
    assert_eq!(s.page(&web, 0, 10).expect("all of them").1, 1);
    // Annotations follow the record: a save that changes them changes what matches.
    let (mut w1, _) = workload(1, "alice", "/subscriptions/s/resourceGroups/a", &[]);
    w1.annotations = vec![("env".into(), "staging".into())];
    s.save(&w1).expect("save");
    assert_eq!(
        names(&s.page(&prod, 0, 10).expect("after save").0),
        vec!["w5", "w3"]
    );
    s.delete(&w1.id).expect("delete");
    assert_eq!(s.page(&all, 0, 10).expect("after delete").1, 4);
}

#[test]
fn a_store_written_before_the_annotations_table_is_indexed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.db");
    let path = path.to_str().expect("utf-8 path");
    let (w, r) = workload(7, "carol", "", &[("app", "x")]);
    {
        let s = StateStore::open(path).expect("store");
        s.insert(&w, &r).expect("insert");
        // What an older host left: the record, no annotation rows, no marker.
        let conn = s.lock();
        conn.execute("DELETE FROM annotations", []).expect("clear");
        conn.execute("DELETE FROM meta WHERE key = 'annotations_indexed'", [])
            .expect("unmark");
    }
    let s = StateStore::open(path).expect("reopen");
    let tagged = [("app".to_string(), "x".to_string())];
    let sel = Selection {
        annotations: &tagged,
        ..Selection::default()
    };
    assert_eq!(s.page(&sel, 0, 10).expect("page").1, 1);
}

#[test]
fn heads_read_what_a_resync_compares() {
    let store = StateStore::open(":memory:").expect("store");
    let (mut w, r) = workload(1, "alice", "", &[]);
    store.insert(&w, &r).expect("insert");
    w.revision = 2;
    w.phase = WorkloadPhase::Deployed;
    w.containers = vec![ContainerState {
        name: "main".into(),
        runtime_id: Some("r1".into()),
        status: ContainerStatus::Running,
        pid: Some(7),
        exit_code: None,
        started_at: None,
        finished_at: None,
        oom_killed: false,
        restart_count: 0,
        error: None,
    }];
    store.save(&w).expect("save");
    let (other, r2) = workload(2, "bob", "ns", &[]);
    store.insert(&other, &r2).expect("insert");
    let mut heads = store.heads().expect("heads");
    heads.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(heads, vec![RecordHead::from(&w), RecordHead::from(&other)]);
    assert_eq!(heads[0].containers[0].status, ContainerStatus::Running);
}

fn gpu(container: &str, uuid: &str) -> crate::bindings::types::GpuAssignment {
    crate::bindings::types::GpuAssignment {
        container: container.into(),
        index: 0,
        uuid: uuid.into(),
        model: "a100".into(),
        memory_bytes: 80 << 30,
    }
}

#[test]
fn a_gpu_is_held_by_one_workload_at_a_time_and_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db").display().to_string();
    let s = StateStore::open(&path).expect("open");
    assert_eq!(
        s.gpu_hold("w1", 1, &[gpu("main", "G0")], "r")
            .expect("hold"),
        Ok(())
    );
    // Another workload cannot take it; another revision of the same one can.
    let refused = s.gpu_hold("w2", 1, &[gpu("main", "G1"), gpu("main", "G0")], "r");
    assert_eq!(
        refused.expect("store"),
        Err(HeldElsewhere {
            uuid: "G0".into(),
            workload_id: "w1".into()
        })
    );
    assert_eq!(
        s.gpu_hold("w1", 2, &[gpu("main", "G0")], "r")
            .expect("hold"),
        Ok(())
    );
    drop(s);
    let s = StateStore::open(&path).expect("reopen");
    let claims = s.gpu_claims().expect("claims");
    assert_eq!(claims.len(), 2, "{claims:?}");
    assert!(
        claims
            .iter()
            .all(|c| c.ticket.is_none() && c.gpus[0].uuid == "G0")
    );
    // Nothing of the refused hold was kept.
    assert!(!claims.iter().any(|c| c.workload_id == "w2"));
    assert!(s.gpu_release("w1", Some(1)).expect("release"));
    assert!(s.gpu_release("w1", Some(2)).expect("release"));
    assert!(!s.gpu_release("w1", Some(2)).expect("release twice"));
    assert_eq!(
        s.gpu_hold("w2", 1, &[gpu("main", "G0")], "r")
            .expect("hold"),
        Ok(())
    );
}

#[test]
fn waiters_keep_their_ticket_across_revisions_and_lose_it_when_deleted() {
    let s = StateStore::open(":memory:").expect("open");
    assert_eq!(s.gpu_wait("w1", 1, "r").expect("wait"), 1);
    assert_eq!(s.gpu_wait("w2", 1, "r").expect("wait"), 2);
    assert_eq!(s.gpu_wait("w1", 2, "r").expect("wait again"), 1, "kept");
    let order: Vec<_> = s
        .gpu_claims()
        .expect("claims")
        .into_iter()
        .map(|c| (c.workload_id, c.revision, c.ticket))
        .collect();
    assert_eq!(
        order,
        [
            ("w1".to_string(), 1, Some(1)),
            ("w1".to_string(), 2, Some(1)),
            ("w2".to_string(), 1, Some(2))
        ]
    );
    // Placed: it holds and no longer waits.
    s.gpu_hold("w2", 1, &[gpu("main", "G0")], "r")
        .expect("hold")
        .expect("free");
    let (w, r) = workload(1, "o", "", &[]);
    let w = Workload {
        id: "w1".into(),
        ..w
    };
    s.insert(
        &w,
        &Revision {
            workload_id: "w1".into(),
            ..r
        },
    )
    .expect("insert");
    s.delete("w1").expect("delete");
    let left: Vec<_> = s
        .gpu_claims()
        .expect("claims")
        .into_iter()
        .map(|c| (c.workload_id, c.ticket))
        .collect();
    assert_eq!(left, [("w2".to_string(), None)]);
}
