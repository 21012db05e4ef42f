//! Container URLs through the host's ingress, reached inside each
//! workload's network namespace (dockerd and containerd run with
//! `--bridge=none`: nothing is published on the host). Real clients: curl
//! over HTTP/1.1, HTTP/2 and TLS to a REST-created busybox httpd at the name
//! in its `urls`; server-sent events streamed as they are written; a
//! WebSocket handshake and echo through the upgrade; an ARM group at its
//! FQDN, its DNS label unique per location; 404 for unknown names, 503 once
//! stopped; per-workload metrics.

use gantry_tests::api::Api;
use gantry_tests::backends::Backend;
use gantry_tests::curl::{Curl, curl};
use gantry_tests::rpc::Rpc;
use gantry_tests::runtimes::{TEST_IMAGE, wait_for};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const API: &str = "api-version=2023-05-01";
const GROUPS: &str = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/urls/providers/Microsoft.ContainerInstance/containerGroups";

/// A busybox httpd on port 80 serving a page, a CGI echoing the request's
/// headers, and a CGI sending one server-sent event, then another 30 s later.
const SITE: &str = r#"mkdir -p /www/cgi-bin
echo hello-from-the-workload > /www/index.html
cat > /www/cgi-bin/events <<'EOF'
#!/bin/sh
printf 'Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n'
printf 'data: first\n\n'
sleep 30
printf 'data: second\n\n'
EOF
cat > /www/cgi-bin/env <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
env
EOF
chmod +x /www/cgi-bin/events /www/cgi-bin/env
exec httpd -f -p 80 -h /www"#;

/// [`SITE`], plus a WebSocket endpoint on port 8081: a real handshake
/// (`Sec-WebSocket-Accept` computed from the key), then every byte echoed.
fn site_with_websocket() -> String {
    let ws = r#"cat > /ws.sh <<'EOF'
#!/bin/sh
key=
while IFS= read -r line; do
  line=$(printf '%s' "$line" | tr -d '\r')
  [ -z "$line" ] && break
  case "$line" in
    [Ss]ec-[Ww]eb[Ss]ocket-[Kk]ey:*) key=$(printf '%s' "${line#*:}" | tr -d ' ') ;;
  esac
done
accept=$(printf '%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11' "$key" | sha1sum | cut -d' ' -f1 | xxd -r -p | base64)
printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n' "$accept"
exec cat
EOF
chmod +x /ws.sh
nc -ll -p 8081 -e /ws.sh &
"#;
    format!("{ws}{SITE}")
}

fn start(backend: Backend) -> Api {
    Api::start_with(&backend.config_builder(30).tls_self_signed().build())
}

/// curl `path` at `host` on gantry's HTTP (or HTTPS) port, the name
/// resolved to 127.0.0.1 as DNS would.
fn at(api: &Api, host: &str, path: &str, https: bool, extra: &[&str]) -> Curl {
    let (port, scheme) = if https {
        (api.g.tls_port, "https")
    } else {
        (api.g.port, "http")
    };
    let resolve = format!("{host}:{port}:127.0.0.1");
    let url = format!("{scheme}://{host}:{port}{path}");
    let ca = api.g.authority();
    let ca = ca.to_string_lossy();
    let mut args = vec!["--resolve", &resolve, "--cacert", &ca];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}

/// Status line and body of a plain HTTP/1.1 GET with this `Host`.
fn status_and_body(api: &Api, host: &str, path: &str) -> (u16, String) {
    let c = at(
        api,
        host,
        path,
        false,
        &["-w", "\n%{http_code}", "-H", "Connection: close"],
    );
    assert_eq!(c.code, 0, "curl {host}{path}: {}", c.stderr);
    let (body, code) = c.stdout.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn rest_create(api: &Api, token: &str, name: &str, script: &str, port: &str) -> Value {
    let (s, c) = api.send(
        "POST",
        "/v1/containers",
        Some(token),
        Some(json!({
            "name": name, "image": TEST_IMAGE, "cpu": 0.5, "ram": "64Mi", "gpu": 0,
            "port": port, "command": ["sh", "-c", script],
        })),
    );
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().expect("id").to_string();
    let mut last = Value::Null;
    wait_for("deployed", Duration::from_secs(60), || {
        let (s, c) = api.send("GET", &format!("/v1/containers/{id}"), Some(token), None);
        assert_eq!(s, 200, "{c}");
        last = c;
        last["status"] == "deployed"
    })
    .expect("waiting");
    last
}

#[test]
fn a_rest_container_answers_at_its_url_on_docker() {
    rest_container_answers_at_its_url(Backend::Docker);
}

#[test]
fn a_rest_container_answers_at_its_url_on_containerd() {
    rest_container_answers_at_its_url(Backend::Containerd);
}

fn rest_container_answers_at_its_url(backend: Backend) {
    let api = start(backend);
    let t = api.token("url-user", "USER");
    let c = rest_create(&api, &t, "web", SITE, "80");
    let url = c["urls"][0].as_str().expect("a url").to_string();
    let id = c["id"].as_str().expect("id").to_string();
    assert!(url.ends_with(".ingress.gantry.localhost"), "{url}");

    // The server may still be starting when the container runs.
    wait_for("the page answers", Duration::from_secs(20), || {
        status_and_body(&api, &url, "/").0 == 200
    })
    .expect("waiting");
    assert_eq!(
        status_and_body(&api, &url, "/"),
        (200, "hello-from-the-workload\n".into())
    );
    // HTTPS, with HTTP/2 chosen by ALPN, and HTTP/1.1 over TLS.
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let c = at(
            &api,
            &url,
            "/",
            true,
            &[flag, "-w", "\n%{http_version} %{http_code}"],
        );
        assert_eq!(c.code, 0, "{}", c.stderr);
        assert_eq!(
            c.stdout,
            format!("hello-from-the-workload\n\n{version} 200"),
            "over TLS {flag}"
        );
    }
    // What the workload is told of the client.
    let env = at(&api, &url, "/cgi-bin/env", true, &["--http2"]);
    assert_eq!(env.code, 0, "{}", env.stderr);
    let port = api.g.tls_port;
    for line in [
        "HTTP_X_FORWARDED_PROTO=https".to_string(),
        "HTTP_X_FORWARDED_FOR=127.0.0.1".to_string(),
        format!("HTTP_X_FORWARDED_HOST={url}:{port}"),
    ] {
        assert!(
            env.stdout.lines().any(|l| l == line),
            "{line} in:\n{}",
            env.stdout
        );
    }

    // Server-sent events arrive as they are written: the first one long
    // before the script writes the second (30 s later) and ends.
    let mut events = TcpStream::connect(("127.0.0.1", api.g.port)).expect("connect");
    events
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        events,
        "GET /cgi-bin/events HTTP/1.1\r\nHost: {url}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("send");
    let mut reader = BufReader::new(events);
    let mut seen = String::new();
    while !seen.contains("data: first") {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("the first event did not stream ({e}); got:\n{seen}"));
        assert!(n > 0, "the stream ended before the first event:\n{seen}");
        seen.push_str(&line);
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        seen.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{seen}"
    );
    assert!(!seen.contains("data: second"), "{seen}");
    drop(reader);

    // Names that stand for nothing, and a workload that is stopped.
    let (s, body) = status_and_body(&api, "nothing-here.ingress.gantry.localhost", "/");
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("no workload answers"), "{body}");
    // A workload that exposes no port reads exactly as no workload: the
    // answer names nothing (the URL is open to anyone).
    let quiet = rest_create(&api, &t, "quiet-secret-name", "exec sleep 3600", "");
    let quiet_url = quiet["urls"][0].as_str().expect("a url");
    assert_eq!(
        status_and_body(&api, quiet_url, "/"),
        (404, body.clone()),
        "the same answer as for a name nobody holds"
    );
    let metrics = api
        .raw("GET", "/metrics", None, None)
        .text()
        .unwrap_or_default();
    assert!(
        metrics.contains(&format!(
            "gantry_url_requests_total{{workload=\"{id}\",code=\"200\"}}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "gantry_url_bytes_total{{workload=\"{id}\",direction=\"out\"}}"
        )),
        "{metrics}"
    );
    // The REST API has no stop: the control-rpc fixture stops it, as its owner.
    Rpc::new(&api.g, "url-user", &["USER"])
        .stop(&id)
        .expect("stop");
    let (s, body) = status_and_body(&api, &url, "/");
    assert_eq!(s, 503, "{body}");
    assert!(body.contains("is not running"), "{body}");
}

/// An ARM group with a DNS label answers at `<label>.<location>.<domain>`,
/// on each port of its `ipAddress`; WebSocket goes through; the label is
/// unique per location.
#[test]
fn an_arm_group_answers_at_its_fqdn_and_upgrades_to_websocket() {
    let api = start(Backend::Docker);
    let t = api.token("fqdn-user", "USER");
    let group = |label: &str, location: &str| {
        json!({
            "location": location,
            "properties": {
                "osType": "Linux",
                "containers": [{
                    "name": "web",
                    "properties": {
                        "image": TEST_IMAGE,
                        "command": ["sh", "-c", site_with_websocket()],
                        "ports": [{"port": 80}, {"port": 8081}, {"port": 9000}],
                        "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.25}}
                    }
                }],
                "ipAddress": {
                    "type": "Public",
                    "dnsNameLabel": label,
                    "ports": [{"port": 80, "protocol": "TCP"}, {"port": 8081, "protocol": "TCP"}]
                }
            }
        })
    };
    let (s, v) = api.send(
        "PUT",
        &format!("{GROUPS}/web?{API}"),
        Some(&t),
        Some(group("shop", "West Europe")),
    );
    assert_eq!(s, 201, "{v}");
    let mut shown = Value::Null;
    wait_for("Succeeded", Duration::from_secs(60), || {
        let (_, g) = api.send("GET", &format!("{GROUPS}/web?{API}"), Some(&t), None);
        shown = g;
        shown["properties"]["provisioningState"] == "Succeeded"
    })
    .expect("waiting");
    let ip = &shown["properties"]["ipAddress"];
    let fqdn = ip["fqdn"].as_str().expect("fqdn").to_string();
    assert_eq!(fqdn, "shop.westeurope.ingress.gantry.localhost");
    assert_eq!(ip["ip"], "127.0.0.1", "{ip}");
    assert_eq!(ip["dnsNameLabel"], "shop");
    assert_eq!(ip["ports"][1]["port"], 8081, "{ip}");

    wait_for("the group's page answers", Duration::from_secs(20), || {
        status_and_body(&api, &fqdn, "/").0 == 200
    })
    .expect("waiting");
    let page = at(&api, &fqdn, "/", false, &[]);
    assert_eq!(page.stdout, "hello-from-the-workload\n", "{}", page.stderr);
    // Over HTTPS, HTTP/2 included: the FQDN is two labels under the
    // ingress domain, deeper than the dev certificate's wildcard, so the
    // listener presents one the dev authority signs for the location.
    let secure = at(
        &api,
        &fqdn,
        "/",
        true,
        &["--http2", "-w", "\n%{http_version}"],
    );
    assert_eq!(
        secure.stdout, "hello-from-the-workload\n\n2",
        "curl https://{fqdn}: {}",
        secure.stderr
    );
    let other_location = at(
        &api,
        "shop.northeurope.ingress.gantry.localhost",
        "/",
        true,
        &[],
    );
    assert!(
        other_location.code == 0 && other_location.stdout.starts_with("gantry: "),
        "a name with no workload gets a trusted certificate and gantry's 404: {other_location:?}"
    );

    // WebSocket on the group's second port, named in the Host.
    let port = api.g.port;
    let mut ws = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    ws.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        ws,
        "GET /chat HTTP/1.1\r\nHost: {fqdn}:8081\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        ws.read_exact(&mut byte).expect("handshake answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's own example key and answer.
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "Sec-WebSocket-Accept in:\n{head}"
    );
    // A masked text frame "hello", echoed byte for byte by the server.
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | 5];
    frame.extend_from_slice(&mask);
    frame.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    for _ in 0..2 {
        ws.write_all(&frame).expect("frame");
        let mut echo = vec![0u8; frame.len()];
        ws.read_exact(&mut echo).expect("echo");
        assert_eq!(echo, frame);
    }
    drop(ws);

    // A port the group does not expose on its address picks the first one.
    let host = format!("Host: {fqdn}:9000");
    let other = at(&api, &fqdn, "/", false, &["-H", &host]);
    assert_eq!(
        other.stdout, "hello-from-the-workload\n",
        "{}",
        other.stderr
    );

    // The label is the group's in its location: another group cannot take
    // it there (and nothing is created), but can elsewhere.
    let (s, v) = api.send(
        "PUT",
        &format!("{GROUPS}/copy?{API}"),
        Some(&t),
        Some(group("shop", "westeurope")),
    );
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "DnsNameLabelNotAvailable", "{v}");
    let (s, _) = api.send("GET", &format!("{GROUPS}/copy?{API}"), Some(&t), None);
    assert_eq!(s, 404, "a refused group leaves nothing");
    let (s, v) = api.send(
        "PUT",
        &format!("{GROUPS}/copy?{API}"),
        Some(&t),
        Some(group("shop", "East US")),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = api.send("DELETE", &format!("{GROUPS}/copy?{API}"), Some(&t), None);
    assert!(s == 200 || s == 202, "{s} {v}");
    let (s, v) = api.send("DELETE", &format!("{GROUPS}/web?{API}"), Some(&t), None);
    assert!(s == 200 || s == 202, "{s} {v}");
    wait_for("the group gone", Duration::from_secs(60), || {
        status_and_body(&api, &fqdn, "/").0 == 404
    })
    .expect("waiting");
}
