//! The backend conformance suite against the Docker plugin on the harness's dockerd.

mod conformance;

conformance_suite!(gantry_tests::backends::Backend::Docker);
