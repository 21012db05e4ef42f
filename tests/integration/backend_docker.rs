//! The backend conformance suite against the Docker plugin on the harness's dockerd.

crate::conformance_suite!(gantry_tests::backends::Backend::Docker);

/// The backends view on a backend of one machine: what it declares, and no
/// nodes (`unsupported`, 501); an unknown backend is not found; a caller
/// without a token is turned away.
#[test]
fn the_backends_view_shows_what_docker_declares_and_no_nodes() {
    use gantry_tests::api::Api;
    use gantry_tests::backends::Backend;
    let api = Api::start_on(Backend::Docker, 30);
    let token = api.token("viewer", "USER");
    let (status, all) = api.send("GET", "/-/backends", Some(&token), None);
    assert_eq!(status, 200, "{all}");
    let docker = &all["backends"][0];
    assert_eq!(docker["name"], "docker", "{all}");
    assert_eq!(docker["cluster"], false, "{all}");
    assert_eq!(docker["shared_network_namespace"], true, "{all}");
    let caps = &docker["capabilities"];
    assert!(
        caps["runtime"]
            .as_str()
            .is_some_and(|r| r.starts_with("docker")),
        "{caps}"
    );
    for declared in ["multi_container", "pause", "stats", "rename"] {
        assert_eq!(caps[declared], true, "{declared}: {caps}");
    }
    let (status, one) = api.send("GET", "/-/backends/docker", Some(&token), None);
    assert_eq!((status, &one), (200, docker));
    let (status, body) = api.send("GET", "/-/backends/docker/nodes", Some(&token), None);
    assert_eq!(
        (status, body["kind"].as_str()),
        (501, Some("unsupported")),
        "{body}"
    );
    for unknown in ["/-/backends/nope", "/-/backends/nope/nodes"] {
        let (status, body) = api.send("GET", unknown, Some(&token), None);
        assert_eq!(
            (status, body["kind"].as_str()),
            (404, Some("not-found")),
            "{body}"
        );
    }
    let (status, _) = api.send("GET", "/-/backends", None, None);
    assert_eq!(status, 401);
}
