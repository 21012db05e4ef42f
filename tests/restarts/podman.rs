//! The Podman service killed and restarted under a running host.

#[test]
fn runtime_killed_and_restarted_is_reconnected_and_reconciled() {
    let _turn = super::one_at_a_time();
    crate::conformance::restarts::runtime_killed_and_restarted_is_reconnected_and_reconciled(
        gantry_tests::backends::Backend::Podman,
    );
}
