use super::*;

const GIB: u64 = 1 << 30;

fn gpu(index: u32, model: &str, gib: u64) -> Gpu {
    Gpu {
        index,
        uuid: format!("GPU-{index}"),
        model: model.into(),
        memory_bytes: gib * GIB,
        healthy: true,
    }
}

/// 0-1 a100 (40 GiB), 2-3 t4 (16 GiB), 4-6 a40 (48 GiB).
fn inventory() -> Vec<Gpu> {
    vec![
        gpu(0, "a100", 40),
        gpu(1, "a100", 40),
        gpu(2, "t4", 16),
        gpu(3, "t4", 16),
        gpu(4, "a40", 48),
        gpu(5, "a40", 48),
        gpu(6, "a40", 48),
    ]
}

fn req(count: u32, models: &[&str]) -> Request {
    Request {
        count,
        models: models.iter().map(|m| model_code(m)).collect(),
        ..Request::default()
    }
}

fn indexes(v: Option<Vec<&Gpu>>) -> Option<Vec<u32>> {
    v.map(|v| v.iter().map(|g| g.index).collect())
}

fn all(inv: &[Gpu]) -> Vec<&Gpu> {
    inv.iter().collect()
}

#[test]
fn model_codes() {
    assert_eq!(model_code("Nvidia a100"), "a100");
    assert_eq!(model_code("Nvidia tesla-p4"), "p4");
    assert_eq!(model_code("Nvidia rtx-3060-ti"), "3060ti");
    assert_eq!(model_code("Nvidia gtx-1080"), "1080");
    assert_eq!(model_code("K80"), "k80");
    assert_eq!(model_code("a100"), "a100");
    assert_eq!(model_code("NVIDIA Tesla T4"), "t4");
}

#[test]
fn policies_parse_and_name_the_valid_ones() {
    assert_eq!("binpack".parse(), Ok(Policy::Binpack));
    assert_eq!(" Spread ".parse(), Ok(Policy::Spread));
    assert_eq!("first-fit".parse(), Ok(Policy::FirstFit));
    assert_eq!(Policy::default(), Policy::Binpack);
    let e = "best".parse::<Policy>().expect_err("refused");
    assert!(
        e.contains("binpack") && e.contains("spread") && e.contains("first-fit"),
        "{e}"
    );
}

#[test]
fn binpack_takes_the_model_with_fewest_free_that_fits() {
    let inv = inventory();
    // any GPU, 2: a100 and t4 both have 2 free; t4 has less memory.
    assert_eq!(
        indexes(place(&req(2, &[]), &all(&inv), Policy::Binpack)),
        Some(vec![2, 3])
    );
    // 3: only a40 can take it whole.
    assert_eq!(
        indexes(place(&req(3, &[]), &all(&inv), Policy::Binpack)),
        Some(vec![4, 5, 6])
    );
    // 1 over a100 or a40: a100 has fewer free.
    let r = req(1, &["Nvidia a100", "a40"]);
    assert_eq!(
        indexes(place(&r, &all(&inv), Policy::Binpack)),
        Some(vec![0])
    );
}

#[test]
fn spread_takes_the_model_with_most_free() {
    let inv = inventory();
    assert_eq!(
        indexes(place(&req(1, &[]), &all(&inv), Policy::Spread)),
        Some(vec![4])
    );
    // a100 and t4 tie on free count: the larger memory goes first.
    let r = req(2, &["a100", "t4"]);
    assert_eq!(
        indexes(place(&r, &all(&inv), Policy::Spread)),
        Some(vec![0, 1])
    );
}

#[test]
fn first_fit_takes_the_lowest_indexes_mixing_models() {
    let inv = inventory();
    assert_eq!(
        indexes(place(&req(3, &[]), &all(&inv), Policy::FirstFit)),
        Some(vec![0, 1, 2])
    );
}

#[test]
fn a_request_spans_accepted_models_only() {
    let inv = inventory();
    let free: Vec<&Gpu> = vec![&inv[1], &inv[2], &inv[3], &inv[4]];
    // Nomad #26584: 2 over a100 or a40, one free of each.
    let r = req(2, &["a100", "a40"]);
    for p in Policy::ALL {
        let mut got = indexes(place(&r, &free, p)).expect("accepted");
        got.sort();
        assert_eq!(got, vec![1, 4], "{p}");
    }
    // 3 over a100 or a40: never a t4.
    assert_eq!(
        place(&req(3, &["a100", "a40"]), &free, Policy::Binpack),
        None
    );
    // Binpack mixes smallest groups first; first fit by index.
    let free: Vec<&Gpu> = vec![&inv[1], &inv[4], &inv[5], &inv[2]];
    let r = req(3, &["a100", "a40"]);
    assert_eq!(
        indexes(place(&r, &free, Policy::Binpack)),
        Some(vec![1, 4, 5])
    );
    let r = req(3, &[]);
    assert_eq!(
        indexes(place(&r, &free, Policy::Spread)),
        Some(vec![4, 5, 1])
    );
}

#[test]
fn unhealthy_and_duplicate_gpus_are_not_placed() {
    let mut inv = inventory();
    inv[0].healthy = false;
    let free: Vec<&Gpu> = vec![&inv[0], &inv[1], &inv[1]];
    assert_eq!(place(&req(2, &["a100"]), &free, Policy::FirstFit), None);
    assert_eq!(
        indexes(place(&req(1, &["a100"]), &free, Policy::Binpack)),
        Some(vec![1])
    );
}

#[test]
fn memory_filter() {
    let inv = inventory();
    let r = Request {
        min_memory_bytes: Some(41 * GIB),
        ..req(2, &[])
    };
    assert_eq!(
        indexes(place(&r, &all(&inv), Policy::Binpack)),
        Some(vec![4, 5])
    );
    assert!(!eligible(&r, &inv[0]));
    assert!(eligible(&r, &inv[6]));
}

#[test]
fn device_ids_take_exactly_those() {
    let inv = inventory();
    let r = Request {
        device_ids: vec!["GPU-5".into(), "2".into()],
        ..Request::default()
    };
    assert_eq!(r.wanted(), 2);
    let mut got = indexes(place(&r, &all(&inv), Policy::Binpack)).expect("accepted");
    got.sort();
    assert_eq!(got, vec![2, 5]);
    let free: Vec<&Gpu> = vec![&inv[5], &inv[4]];
    assert_eq!(place(&r, &free, Policy::Binpack), None);
}

#[test]
fn never_fits_names_the_field() {
    let mut inv = inventory();
    inv[1].healthy = false; // health aside: still counts
    let f = |r: &Request| never_fits(r, &inv).map(|p| p.field);
    assert_eq!(f(&req(2, &["a100"])), None);
    assert_eq!(f(&req(0, &[])), None);
    assert_eq!(f(&req(1, &["k80"])), Some(field::MODELS));
    assert_eq!(f(&req(1, &["k80", "t4"])), None);
    let p = never_fits(&req(3, &["a100"]), &inv).expect("accepted");
    assert_eq!(p.field, field::COUNT);
    assert_eq!(p.message, "asks for 3 × a100 but this host has 2");
    assert_eq!(f(&req(8, &[])), Some(field::COUNT));
    let big = Request {
        min_memory_bytes: Some(41 * GIB),
        ..req(1, &["a100", "t4"])
    };
    assert_eq!(f(&big), Some(field::MEMORY));
    let few = Request {
        min_memory_bytes: Some(41 * GIB),
        ..req(4, &[])
    };
    assert_eq!(f(&few), Some(field::COUNT));
    let ids = |ids: &[&str], count: u32| Request {
        count,
        device_ids: ids.iter().map(|s| s.to_string()).collect(),
        ..Request::default()
    };
    assert_eq!(f(&ids(&["GPU-1", "GPU-9"], 0)), Some(field::DEVICE_IDS));
    assert_eq!(f(&ids(&["GPU-1", "1"], 0)), Some(field::DEVICE_IDS));
    assert_eq!(f(&ids(&["GPU-1", "4"], 0)), None);
    assert_eq!(f(&ids(&["GPU-1", "4"], 2)), None);
    assert_eq!(f(&ids(&["GPU-1", "4"], 3)), Some(field::COUNT));
    let t4 = Request {
        models: vec!["a100".into()],
        ..ids(&["GPU-1", "GPU-2"], 0)
    };
    assert_eq!(f(&t4), Some(field::MODELS));
    let mem = Request {
        min_memory_bytes: Some(20 * GIB),
        ..ids(&["GPU-1", "GPU-2"], 0)
    };
    assert_eq!(f(&mem), Some(field::MEMORY));
}

#[test]
fn never_fits_together_finds_the_smallest_group() {
    let inv = inventory();
    let (a, b, c) = (
        req(2, &["a100"]),
        req(1, &["a100", "t4"]),
        req(1, &["a100"]),
    );
    assert_eq!(never_fits_together(&[&a, &b], &inv), None);
    let s = never_fits_together(&[&b, &a, &c], &inv).expect("accepted");
    assert_eq!((s.members, s.wanted, s.have), (vec![1, 2], 3, 2));
}

#[test]
fn place_all_places_the_most_constrained_first() {
    let inv = inventory();
    let free: Vec<&Gpu> = vec![&inv[0], &inv[2]];
    // The first takes any GPU; the second needs the a100.
    let (any, a100) = (req(1, &[]), req(1, &["a100"]));
    let got = place_all(&[&any, &a100], &free, Policy::Spread).expect("accepted");
    assert_eq!((got[0][0].index, got[1][0].index), (2, 0));
    assert_eq!(place_all(&[&a100, &a100], &free, Policy::Spread), None);
}

#[test]
fn competing_and_largest_fit() {
    let inv = inventory();
    assert!(competes(&req(1, &[]), &req(1, &["t4"]), &inv));
    assert!(!competes(&req(1, &["a100"]), &req(1, &["t4"]), &inv));
    let free: Vec<&Gpu> = vec![&inv[0], &inv[4], &inv[5], &inv[2]];
    assert_eq!(largest_fit(&free), 2);
    assert_eq!(largest_fit(&[]), 0);
    assert_eq!(inventory_summary(&inv), "2 × a100, 2 × t4, 3 × a40");
    assert_eq!(inventory_summary(&[]), "no GPUs");
}

#[test]
fn describes_requests() {
    let r = Request {
        min_memory_bytes: Some(40 * GIB),
        ..req(2, &["a100", "Nvidia a40"])
    };
    assert_eq!(r.describe(), "2 × a100 or a40 with at least 40 GiB");
    assert_eq!(req(1, &[]).describe(), "1 × any GPU");
    assert_eq!(bytes(512 << 20), "512 MiB");
    assert_eq!(bytes(1000), "1000 bytes");
}

#[test]
fn a_deployment_that_fits_is_placed_even_when_the_policy_order_would_corner_it() {
    // A wants 2 of x or y, B 2 of y or z; binpack and spread both give A the
    // two y, leaving B nothing; the exact fallback gives A x0 and one y.
    let inv = vec![
        gpu(0, "x", 16),
        gpu(1, "y", 16),
        gpu(2, "y", 16),
        gpu(3, "z", 16),
    ];
    let a = req(2, &["x", "y"]);
    let b = req(2, &["y", "z"]);
    for policy in Policy::ALL {
        let got = place_all(&[&a, &b], &all(&inv), policy)
            .unwrap_or_else(|| panic!("{policy}: no placement"));
        let got: Vec<Vec<u32>> = got
            .iter()
            .map(|v| v.iter().map(|g| g.index).collect())
            .collect();
        assert_eq!(got[0].len() + got[1].len(), 4, "{policy}: {got:?}");
        assert!(
            got[0].contains(&0) && got[1].contains(&3),
            "{policy}: {got:?}"
        );
    }
    // Three wanting two each of four GPUs: no assignment.
    assert!(place_all(&[&a, &b, &req(2, &[])], &all(&inv), Policy::Binpack).is_none());
}
