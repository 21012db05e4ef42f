//! TLS on the listener, checked with curl (OpenSSL, nghttp2): a self-signed
//! dev certificate made at first start and reused after, HTTP/2 and HTTP/1.1
//! chosen by ALPN, the API served over both, the HTTP listener beside it, a
//! certificate from files, and configs that cannot work refused by name.

use gantry_tests::config::ConfigBuilder;
use gantry_tests::gantry::Gantry;
use gantry_tests::plugins::{self, gantry_bin};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `curl` with `args`; its exit code and what `-w` wrote.
fn curl(args: &[&str]) -> (i32, String) {
    let mut all = vec!["-o", "/dev/null", "-w", "%{http_version} %{http_code}"];
    all.extend_from_slice(args);
    let c = gantry_tests::curl::curl(&all);
    (c.code, c.stdout)
}

fn config() -> ConfigBuilder {
    ConfigBuilder::new("tls-tests")
        .tls_self_signed()
        .http_frontend("rest", &plugins::rest(), "/v1")
}

#[test]
fn a_self_signed_listener_speaks_http2_and_http1_and_keeps_its_authority() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = Gantry::start_in(dir.path(), &config().build());
    let ca = g.authority();
    assert!(ca.exists(), "the authority is kept beside the state");
    let ca_arg = ca.display().to_string();
    let made = "made a self-signed dev certificate";
    assert_eq!(g.log().matches(made).count(), 1, "said once:\n{}", g.log());

    let health = g.https_url("/healthz");
    assert_eq!(curl(&["--cacert", &ca_arg, &health]), (0, "2 200".into()));
    assert_eq!(
        curl(&["--http1.1", "--cacert", &ca_arg, &health]),
        (0, "1.1 200".into())
    );
    // The API over HTTP/2, as the caller the token names.
    let token = g.token("tls-user", &["USER"]);
    let auth = format!("Authorization: Bearer {token}");
    assert_eq!(
        curl(&[
            "--cacert",
            &ca_arg,
            "-H",
            &auth,
            &g.https_url("/v1/containers")
        ]),
        (0, "2 200".into())
    );
    // Not trusted without its authority (curl: 60, peer certificate cannot be authenticated).
    assert_eq!(curl(&[&health]).0, 60);
    // The HTTP listener still serves.
    assert_eq!(curl(&[&g.url("/healthz")]), (0, "1.1 200".into()));

    // A restart reuses the identity: clients keep trusting it.
    let before = std::fs::read_to_string(&ca).expect("ca");
    g.restart();
    assert_eq!(std::fs::read_to_string(&ca).expect("ca"), before);
    assert_eq!(g.log().matches(made).count(), 1, "not made again");
    assert_eq!(curl(&["--cacert", &ca_arg, &health]), (0, "2 200".into()));

    // The same certificate given as files.
    let files = tempfile::tempdir().expect("tempdir");
    let tls = dir.path().join("gantry-tls");
    let text = ConfigBuilder::new("tls-files")
        .http_frontend("rest", &plugins::rest(), "/v1")
        .build()
        .replace(
            "\n[auth]",
            &format!(
                "\n[server.tls]\nlisten = \"127.0.0.1:{{tls_port}}\"\ncert = \"{}\"\nkey = \"{}\"\n\n[auth]",
                tls.join("cert.pem").display(),
                tls.join("key.pem").display()
            ),
        );
    let h = Gantry::start_in(files.path(), &text);
    assert_eq!(
        curl(&["--cacert", &ca_arg, &h.https_url("/healthz")]),
        (0, "2 200".into())
    );
    assert!(!h.authority().exists(), "nothing made when files are given");
}

/// `gantry serve` on `text` in `dir`: it must exit at once, failing; its stderr.
fn refused(dir: &Path, text: &str) -> String {
    let path = dir.join("gantry.toml");
    std::fs::write(
        &path,
        text.replace("{port}", &gantry_tests::free_port().to_string())
            .replace("{tls_port}", &gantry_tests::free_port().to_string())
            .replace("{dir}", &dir.display().to_string()),
    )
    .expect("config");
    let mut child = Command::new(gantry_bin())
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("RUST_BACKTRACE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gantry serve");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(!status.success(), "gantry served a config it cannot");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("gantry kept running on a config it cannot serve");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("stderr");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn configs_that_cannot_work_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let both = config().build().replace(
        "self_signed = true",
        "self_signed = true\ncert = \"/nonexistent/cert.pem\"",
    );
    let e = refused(dir.path(), &both);
    assert!(
        e.contains("[server.tls] takes `cert` and `key`, or `self_signed = true`"),
        "{e}"
    );

    std::fs::write(dir.path().join("garbage.pem"), "not a certificate").expect("write");
    let garbage = config().build().replace(
        "self_signed = true",
        &format!(
            "cert = \"{0}/garbage.pem\"\nkey = \"{0}/garbage.pem\"",
            dir.path().display()
        ),
    );
    let e = refused(dir.path(), &garbage);
    assert!(e.contains("garbage.pem"), "the file is named: {e}");
}
