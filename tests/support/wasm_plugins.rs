//! The one list of components the workspace builds for wasm32-wasip2,
//! compiled into both `cargo xtask` (which builds them) and the test support
//! (which finds them): plugins and test fixtures, by package and file stem.

/// Library crates linked as `cdylib` components: (package, file stem of the `.wasm`).
pub const WASM_LIBS: &[(&str, &str)] = &[
    ("gantry-docker", "gantry_docker"),
    ("gantry-rest", "gantry_rest"),
    ("gantry-arm", "gantry_arm"),
    ("gantry-kanto", "gantry_kanto"),
    ("gantry-containerd", "gantry_containerd"),
    ("gantry-gpu-scheduler", "gantry_gpu_scheduler"),
    ("gantry-swarm", "gantry_swarm"),
    ("fixture-misbehave", "fixture_misbehave"),
    ("fixture-control-rpc", "fixture_control_rpc"),
    ("fixture-compat-0-1-0", "fixture_compat_0_1_0"),
    (
        "fixture-passthrough-scheduler",
        "fixture_passthrough_scheduler",
    ),
    ("fixture-stall-backend", "fixture_stall_backend"),
];

/// Binary crates built for wasm32-wasip2 (test fixtures): (package, file stem).
pub const WASM_BINS: &[(&str, &str)] = &[("fixture-wrong-world", "fixture-wrong-world")];
