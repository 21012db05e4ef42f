//! The embedded broker's front door.
//!
//! rumqttd (0.20) leaves Nagle's algorithm on for the connections it accepts
//! and has no setting to turn it off. Every Kanto command paid for it: the
//! broker writes a PUBACK, then the command's answer, and the answer waits
//! for the client's delayed ACK of the PUBACK, 40 ms on Linux. So the host
//! owns the public listener: each client connection (with TCP_NODELAY) is
//! relayed to rumqttd on a private loopback port, and the relay acknowledges
//! what rumqttd sends at once (TCP_QUICKACK after every read), so rumqttd
//! never holds a packet back. The relay only copies bytes; MQTT is rumqttd's.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Accept on `listener` forever, relaying each connection to `upstream`.
pub async fn serve(listener: TcpListener, upstream: SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(async move {
                    if let Err(e) = relay(client, upstream).await {
                        tracing::debug!(%peer, error = %e, "MQTT relay connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "embedded broker: accepting a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    let broker = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    broker.set_nodelay(true)?;
    let (from_client, to_client) = client.into_split();
    let (from_broker, to_broker) = broker.into_split();
    let up = copy(from_client, to_broker, false);
    let down = copy(from_broker, to_client, true);
    // Either side closing ends the connection: the other half is dropped.
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

/// Copy until end of stream; with `quickack`, acknowledge every read at once.
async fn copy(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    quickack: bool,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        if quickack {
            // Linux leaves quick-ACK mode on its own; set it again each time.
            socket2::SockRef::from(from.as_ref()).set_tcp_quickack(true)?;
        }
        to.write_all(&buf[..n]).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_pass_both_ways_and_a_close_reaches_the_broker() -> std::io::Result<()> {
        let broker = TcpListener::bind("127.0.0.1:0").await?;
        let upstream = broker.local_addr()?;
        let public = TcpListener::bind("127.0.0.1:0").await?;
        let front = public.local_addr()?;
        tokio::spawn(serve(public, upstream));
        let mut client = TcpStream::connect(front).await?;
        let (mut inside, _) = broker.accept().await?;
        client.write_all(b"CONNECT").await?;
        let mut buf = [0u8; 7];
        inside.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"CONNECT");
        inside.write_all(b"CONNACK").await?;
        client.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"CONNACK");
        drop(client);
        assert_eq!(inside.read(&mut buf).await?, 0, "the broker sees the close");
        Ok(())
    }
}
