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

    /// `payloads` framed, then read back as the answer arrives in pieces
    /// cut at `cuts`.
    fn read_back(payloads: &[Vec<u8>], cuts: &[usize]) -> GrpcResult<Vec<Vec<u8>>> {
        let mut all = Vec::new();
        for p in payloads {
            all.push(0);
            all.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes());
            all.extend_from_slice(p);
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (all.len() + 1)).collect();
        points.sort_unstable();
        let (mut buf, mut got, mut from) = (Vec::new(), Vec::new(), 0);
        for to in points.into_iter().chain([all.len()]) {
            buf.extend_from_slice(&all[from..to]);
            got.extend(unframe(&mut buf)?);
            from = to;
        }
        assert!(buf.is_empty(), "nothing is left once every piece came");
        Ok(got)
    }

    proptest::proptest! {
        /// Messages come out whole and in order, however the body is cut.
        #[test]
        fn messages_do_not_depend_on_how_reads_cut_the_body(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 0..12),
            cuts in proptest::collection::vec(0usize..10_000, 0..12),
        ) {
            proptest::prop_assert_eq!(read_back(&payloads, &cuts).expect("unframed"), payloads);
        }

        /// Any bytes (a broken or hostile answer) are an error or fewer
        /// messages, never a panic or a wait for more than was promised.
        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2_000)) {
            let mut buf = bytes.clone();
            if let Ok(messages) = unframe(&mut buf) {
                let taken: usize = messages.iter().map(|m| m.len() + 5).sum();
                proptest::prop_assert_eq!(taken + buf.len(), bytes.len());
            }
        }
    }
}
