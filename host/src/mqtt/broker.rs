//! The embedded broker (rumqttd), for deployments that name no broker.

use super::MqttError;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A running embedded broker. It lives as long as the process.
pub struct EmbeddedBroker {
    /// Where it listens.
    pub listen: SocketAddr,
}

impl EmbeddedBroker {
    /// Start a broker on `listen` (MQTT 3.1.1) and wait until it accepts connections.
    pub fn start(listen: &str) -> Result<EmbeddedBroker, MqttError> {
        let fail = |message: String| MqttError::Embedded {
            listen: listen.to_string(),
            message,
        };
        let addr: SocketAddr = listen
            .parse()
            .map_err(|e| fail(format!("not a socket address: {e}")))?;
        // The host owns the public listener (see `relay`); rumqttd listens on
        // a private loopback port behind it.
        let public = std::net::TcpListener::bind(addr).map_err(|e| fail(e.to_string()))?;
        public
            .set_nonblocking(true)
            .map_err(|e| fail(e.to_string()))?;
        let addr = public.local_addr().map_err(|e| fail(e.to_string()))?;
        let private = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| fail(format!("no private port for the broker: {e}")))?;
        let server = rumqttd::ServerSettings {
            name: "gantry-embedded".into(),
            listen: private,
            tls: None,
            next_connection_delay_ms: 1,
            connections: rumqttd::ConnectionSettings {
                connection_timeout_ms: 60_000,
                max_payload_size: super::MAX_PACKET,
                max_inflight_count: 500,
                auth: None,
                external_auth: None,
                dynamic_filters: true,
            },
        };
        let config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 1_000,
                max_outgoing_packet_count: 200,
                max_segment_size: 10 << 20,
                max_segment_count: 10,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(HashMap::from([("1".to_string(), server)])),
            ..Default::default()
        };
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(e) = broker.start() {
                    tracing::error!(error = %e, "embedded MQTT broker stopped");
                }
            })
            .map_err(|e| fail(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_mqtt(private) {
            if Instant::now() > deadline {
                return Err(fail("did not start answering MQTT within 10 s".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::Builder::new()
            .name("mqtt-relay".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(async {
                        match tokio::net::TcpListener::from_std(public) {
                            Ok(l) => super::relay::serve(l, private).await,
                            Err(e) => tracing::error!(error = %e, "embedded broker listener"),
                        }
                    }),
                    Err(e) => tracing::error!(error = %e, "embedded broker relay runtime"),
                }
            })
            .map_err(|e| fail(e.to_string()))?;
        tracing::info!(%addr, "embedded MQTT broker listening");
        Ok(EmbeddedBroker { listen: addr })
    }
}

/// Whether an MQTT 3.1.1 broker answers on `addr`: a CONNECT gets a CONNACK.
/// (A bare TCP connect that closes at once makes rumqttd log an error about a
/// truncated connect packet; a DISCONNECT right after the CONNACK races its
/// router into another. A plain close is an ordinary disconnection.)
fn answers_mqtt(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    const CLIENT_ID: &[u8] = b"gantry-probe";
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    // Variable header: protocol "MQTT", level 4, clean session, keep-alive 10 s.
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10];
    body.extend_from_slice(&(CLIENT_ID.len() as u16).to_be_bytes());
    body.extend_from_slice(CLIENT_ID);
    let mut connect = vec![0x10, body.len() as u8];
    connect.extend_from_slice(&body);
    let mut connack = [0u8; 4];
    s.write_all(&connect).is_ok()
        && s.read_exact(&mut connack).is_ok()
        && connack[0] == 0x20
        && connack[3] == 0
}
