//! The backend conformance suite against the containerd plugin on the harness's containerd.

mod conformance;

conformance_suite!(gantry_tests::backends::Backend::Containerd);
