//! `stylerd bench --mix`: what style strength and colour preservation ([`crate::mix`])
//! cost per frame, per size. Pure CPU work on two fixed pictures (the content does not
//! change the arithmetic); prints JSON, asserts nothing.

use std::time::Instant;

use serde_json::{Value, json};

use super::{gradient, stats};
use crate::config::Size;
use crate::frame::RgbImage;
use crate::mix::Mix;

/// Warm-up runs before timing.
const WARMUP: usize = 10;

pub fn run(sizes: &[Size], iters: usize) -> Value {
    let cases = [
        (
            "strength 0.5",
            Mix {
                strength: 0.5,
                preserve_color: false,
            },
        ),
        (
            "preserve-color",
            Mix {
                strength: 1.0,
                preserve_color: true,
            },
        ),
        (
            "both (strength 0.5 + preserve-color)",
            Mix {
                strength: 0.5,
                preserve_color: true,
            },
        ),
    ];
    let mut rows = Vec::new();
    for &size in sizes {
        let original = gradient(size);
        // A stand-in for a stylized frame: the same gradient, channels rotated.
        let stylized = RgbImage {
            data: original
                .data
                .chunks_exact(3)
                .flat_map(|p| [p[2], p[0], p[1]])
                .collect(),
            ..original.clone()
        };
        for (name, mix) in cases {
            let mut ms = Vec::with_capacity(iters);
            for i in 0..iters + WARMUP {
                let mut out = stylized.clone();
                let started = Instant::now();
                mix.apply(&original, &mut out);
                if i >= WARMUP {
                    ms.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            let s = stats(ms);
            eprintln!(
                "mix {name} at {size}: min {:.3} ms, median {:.3} ms, p95 {:.3} ms",
                s.min, s.median, s.p95
            );
            rows.push(json!({"case": name, "size": size.to_string(), "ms": s}));
        }
    }
    json!({"mix": rows, "iters": iters})
}
