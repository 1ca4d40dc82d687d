//! Byte-level mutations of seed inputs, as coverage-less fuzzers do them: bit flips,
//! interesting bytes and numbers, tokens of the input's language from a dictionary,
//! deleted, duplicated and repeated ranges (up to oversized inputs), and splices of two
//! seeds. One to four mutations are stacked per input.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

/// Numbers that break parsers: signs, zero, limits of integer widths, overflow, floats.
const NUMBERS: [&[u8]; 14] = [
    b"0",
    b"-1",
    b"1",
    b"255",
    b"256",
    b"65535",
    b"65536",
    b"2147483648",
    b"4294967296",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"1e309",
    b"0.5",
    b"-0",
];

/// Bytes that matter to text formats.
const BYTES: [u8; 12] = [
    0, 0xff, 0x7f, 0x80, b'\n', b'\r', b' ', b':', b'"', b'\\', b'%', b'\t',
];

/// How inputs for one target are made.
#[derive(Debug, Clone)]
pub struct Mutator {
    /// Tokens of the input's language (`": "`, `"\r\n"`, `"Transfer-Encoding: chunked"`).
    pub dictionary: Vec<&'static [u8]>,
    /// Longest input made.
    pub max_len: usize,
}

impl Mutator {
    /// One input: a seed with 1 to 4 mutations (`others` are splice partners).
    pub fn mutate(&self, rng: &mut StdRng, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut data = seed.to_vec();
        for _ in 0..rng.random_range(1..=4) {
            self.once(rng, &mut data, others);
        }
        data.truncate(self.max_len);
        data
    }

    fn once(&self, rng: &mut StdRng, data: &mut Vec<u8>, others: &[Vec<u8>]) {
        let len = data.len();
        let at = if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        };
        match rng.random_range(0..10) {
            0 if len > 0 => data[at] ^= 1 << rng.random_range(0..8),
            1 if len > 0 => data[at] = *BYTES.choose(rng).unwrap_or(&0),
            2 => {
                if let Some(token) = self.dictionary.choose(rng) {
                    data.splice(at..at, token.iter().copied());
                }
            }
            3 => replace_number(rng, data),
            4 if len > 0 => {
                let end = rng.random_range(at..=len.min(at + 64));
                data.drain(at..end);
            }
            5 if len > 0 => {
                let end = rng.random_range(at..=len.min(at + 64));
                let chunk = data[at..end].to_vec();
                data.splice(at..at, chunk);
            }
            // Oversized: a range repeated until the input is large (long headers, deep
            // nesting, huge lists).
            6 if len > 0 => {
                let end = rng.random_range(at..=len.min(at + 16)).max(at + 1).min(len);
                let chunk = data[at..end].to_vec();
                let times =
                    rng.random_range(2..=(self.max_len / chunk.len().max(1)).clamp(2, 4096));
                let repeated: Vec<u8> = chunk
                    .iter()
                    .copied()
                    .cycle()
                    .take(chunk.len() * times)
                    .collect();
                data.splice(at..at, repeated);
            }
            7 => {
                if let Some(other) = others.choose(rng).filter(|o| !o.is_empty()) {
                    let from = rng.random_range(0..other.len());
                    data.truncate(at);
                    data.extend_from_slice(&other[from..]);
                }
            }
            8 if len > 0 => data.truncate(at),
            _ => {
                let n = rng.random_range(1..=8);
                let random: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                data.splice(at..at, random);
            }
        }
    }
}

/// Replaces a run of digits with an interesting number, or inserts one.
fn replace_number(rng: &mut StdRng, data: &mut Vec<u8>) {
    let number = NUMBERS.choose(rng).copied().unwrap_or(b"0");
    let digits: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    match digits.choose(rng) {
        Some(&start) => {
            let end = data[start..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(data.len(), |n| start + n);
            data.splice(start..end, number.iter().copied());
        }
        None => data.extend_from_slice(number),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_inputs_and_they_differ_from_the_seed() {
        let m = Mutator {
            dictionary: vec![b": ", b"\r\n"],
            max_len: 1024,
        };
        let seed = b"GET / HTTP/1.1\r\nContent-Length: 12\r\n\r\n".to_vec();
        let make = |s| {
            let mut rng = StdRng::seed_from_u64(s);
            (0..50)
                .map(|_| m.mutate(&mut rng, &seed, std::slice::from_ref(&seed)))
                .collect::<Vec<_>>()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
        let changed = make(7).iter().filter(|i| **i != seed).count();
        assert!(changed >= 40, "{changed} of 50 inputs differ from the seed");
        assert!(make(9).iter().all(|i| i.len() <= 1024));
    }
}
