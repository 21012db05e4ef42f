//! gRPC's length-prefixed message framing.

use super::status::{Code, GrpcResult, Status};
use prost::Message;

/// containerd's largest message, each way.
const MAX_MESSAGE: usize = 16 << 20;

/// Frame one message: flag 0 (uncompressed), big-endian length, bytes.
pub fn frame<M: Message>(msg: &M) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0);
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Split complete messages off the front of `buf`.
pub fn unframe(buf: &mut Vec<u8>) -> GrpcResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 5 {
            return Ok(out);
        }
        if buf[0] != 0 {
            return Err(Status::new(
                Code::Other(13),
                "containerd sent a compressed message, which was not asked for",
            ));
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_MESSAGE {
            return Err(Status::new(
                Code::Other(8),
                format!("containerd sent a {len}-byte message"),
            ));
        }
        if buf.len() < 5 + len {
            return Ok(out);
        }
        out.push(buf[5..5 + len].to_vec());
        buf.drain(..5 + len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_whole_messages() {
        let msg = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        let mut buf = frame(&msg);
        buf.extend(frame(&msg));
        let tail = buf.split_off(buf.len() - 3);
        let got = unframe(&mut buf).expect("unframe");
        assert_eq!(got.len(), 1);
        assert_eq!(
            prost_types::Timestamp::decode(got[0].as_slice()).expect("decode"),
            msg
        );
        buf.extend(tail);
        assert_eq!(unframe(&mut buf).expect("unframe").len(), 1);
        assert!(buf.is_empty());
    }
}
