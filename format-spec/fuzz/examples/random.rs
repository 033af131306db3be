//! A libFuzzer-free harness for the `reader` target, on stable Rust:
//!
//!     cargo run --release --manifest-path format-spec/fuzz/Cargo.toml --example random -- [SECONDS] [SEED]
//!
//! Mutates the conformance vectors (and pure random bytes) with a small xorshift PRNG and
//! runs each result through `calltape_hostile::check::check`, the same body as the libFuzzer
//! target. On a panic it writes the input to `fuzz/artifacts/random/crash-<n>` and the panic
//! (with `RUST_BACKTRACE=1`, its stack) goes to stderr.

use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u32] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = if rng.below(20) == 0 {
        (0..rng.below(512)).map(|_| rng.next() as u8).collect()
    } else {
        seeds[rng.below(seeds.len())].clone()
    };
    for _ in 0..1 + rng.below(8) {
        if v.is_empty() {
            v.push(rng.next() as u8);
        }
        let at = rng.below(v.len());
        match rng.below(7) {
            0 => v[at] ^= 1 << rng.below(8),
            1 => v[at] = rng.next() as u8,
            2 => {
                let x = INTERESTING[rng.below(INTERESTING.len())].to_le_bytes();
                let n = rng.below(4) + 1;
                for (i, b) in x.iter().take(n).enumerate() {
                    if at + i < v.len() {
                        v[at + i] = *b;
                    }
                }
            }
            3 => v.truncate(at),
            4 => {
                let n = rng.below(16).min(v.len() - at);
                v.drain(at..at + n);
            }
            5 => {
                let n = rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            _ => {
                // copy a slice of another seed over this one
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let n = rng.below(64).min(other.len() - from).min(v.len() - at);
                v[at..at + n].copy_from_slice(&other[from..from + n]);
            }
        }
    }
    v
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for e in std::fs::read_dir(root.join("../vectors")).expect("vectors dir") {
        let p = e.expect("dir entry").path();
        if p.extension().is_some_and(|x| x == "calltape") {
            seeds.push(std::fs::read(&p).expect("read vector"));
        }
    }
    assert!(!seeds.is_empty(), "no seeds in format-spec/vectors");
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut runs, mut crashes) = (0u64, 0u64);
    let artifacts = root.join("artifacts/random");
    while Instant::now() < deadline {
        let input = mutate(&mut rng, &seeds);
        runs += 1;
        if std::panic::catch_unwind(|| calltape_hostile::check::check(&input)).is_err() {
            crashes += 1;
            std::fs::create_dir_all(&artifacts).expect("artifacts dir");
            let path = artifacts.join(format!("crash-{crashes}"));
            std::fs::write(&path, &input).expect("write artifact");
            eprintln!("panic on input saved to {}", path.display());
        }
    }
    println!("{runs} runs in {secs} s, {crashes} panics");
    if crashes > 0 {
        std::process::exit(1);
    }
}
