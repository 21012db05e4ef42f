//! Inputs for `bench-fuzz`: valid requests mutated the way hostile or broken
//! clients mangle them (bits flipped, JSON tokens spliced in, ranges cut or
//! doubled so keys repeat, strings blown up, nesting deepened, paths with
//! empty, encoded or enormous segments). Deterministic from a seed, so a
//! failure is replayed by running with the seed it printed.

/// xorshift64*: small, fast and reproducible; not for secrets.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (zero is moved off the fixed point).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (zero when `n` is zero).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.bits() % n as u64) as usize
        }
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Pieces a JSON parser or a validator must survive.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    ",",
    ":",
    "null",
    "true",
    "-0",
    "1e999",
    "-1",
    "18446744073709551616",
    "0.0000000000000000000001",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\u{202E}",
    "\u{200B}",
    "\u{FEFF}",
    "\"a\":1,\"a\":2",
    "[[[[[[[[[[",
    "{\"\":{}}",
    "\"name\":\"x\"",
    "\"image\":\"\"",
    "\"env\":{\"A\":\"B\",\"A\":\"C\"}",
    "%00",
    "%2F..%2F",
];

/// A mutation of `seed`: one to four edits.
pub fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(9) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = rng.pick(TOKENS).as_bytes().to_vec();
                b.splice(at..at, t);
            }
            2 if !b.is_empty() => {
                let end = (at + 1 + rng.below(32)).min(b.len());
                b.drain(at.min(end)..end);
            }
            3 if !b.is_empty() => {
                let start = rng.below(b.len());
                let end = (start + 1 + rng.below(64)).min(b.len());
                let copy = b[start..end].to_vec();
                b.splice(at..at, copy);
            }
            4 => b.truncate(at),
            5 => {
                let big = "x".repeat(1 << (10 + rng.below(8)));
                b.splice(at..at, big.into_bytes());
            }
            6 => {
                let depth = 1 + rng.below(300);
                let mut nested = "[".repeat(depth).into_bytes();
                nested.extend_from_slice(&b);
                nested.extend_from_slice("]".repeat(depth).as_bytes());
                b = nested;
            }
            7 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = (rng.bits() & 0xff) as u8;
            }
            _ => {
                let t = rng.pick(TOKENS).as_bytes().to_vec();
                let end = (at + t.len()).min(b.len());
                b.splice(at..end, t);
            }
        }
    }
    b
}

/// A mutation of the request path `seed` (its segments; the query kept).
pub fn mutate_path(rng: &mut Rng, seed: &str) -> String {
    let (path, query) = seed.split_once('?').unwrap_or((seed, ""));
    let mut segments: Vec<String> = path.split('/').skip(1).map(str::to_string).collect();
    for _ in 0..=rng.below(3) {
        let i = rng.below(segments.len());
        match rng.below(8) {
            0 => segments[i] = String::new(),
            1 => segments[i] = segments[i].to_uppercase(),
            2 => segments[i] = "a".repeat(1 << (6 + rng.below(9))),
            3 => segments[i] = "..".into(),
            4 => segments[i] = format!("{}%{:02X}", segments[i], rng.below(256)),
            5 => {
                let copy = segments[i].clone();
                segments.insert(i, copy);
            }
            6 if segments.len() > 1 => {
                segments.remove(i);
            }
            _ => {
                let odd = *rng.pick(&["%E2%80%AE", "%00", "%20", "~", "%25"]);
                segments[i].push_str(odd);
            }
        }
    }
    let path = format!("/{}", segments.join("/"));
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// A mutation of the query string `seed`.
pub fn mutate_query(rng: &mut Rng, seed: &str) -> String {
    let bytes = mutate(rng, seed.as_bytes());
    // What a client can put in a URL: everything else percent-encoded.
    bytes
        .iter()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'=' | b'&' => {
                char::from(*b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(mutate(&mut a, b"{\"a\":1}"), mutate(&mut b, b"{\"a\":1}"));
        }
        let p = mutate_path(&mut Rng::new(3), "/v1/containers?rows=1");
        assert_eq!(p, mutate_path(&mut Rng::new(3), "/v1/containers?rows=1"));
        assert!(p.starts_with('/'));
    }
}
