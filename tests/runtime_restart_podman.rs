//! The Podman service killed and restarted under a running host. Alone in
//! its test binary, because it restarts the service every Podman test of
//! the run shares.

mod conformance;

#[test]
fn runtime_killed_and_restarted_is_reconnected_and_reconciled() {
    conformance::restarts::runtime_killed_and_restarted_is_reconnected_and_reconciled(
        gantry_tests::backends::Backend::Podman,
    );
}
