//! Feature `powf-check`: the chip computes TensorFlow's `β^t` (`microfit_core::math::powf`,
//! what Adam uses) for a sample of a Keras golden file and logs the bits, for
//! `tests/tests/powf_on_chip.rs` to compare with the file. Nothing is trained.
//!
//! The sample is compiled in from `MICROFIT_POWF_SAMPLE` (set by the test; the expected bits stay
//! on the host): comma-separated items, all numbers hexadecimal f32 bits or decimal integers:
//! * `beta:t` — log `powf beta=<bits> t=<t> bits=<bits of powf(beta, t)>`;
//! * `H:beta:n` — log `powf_hash beta=<bits> n=<n> fnv=<hash>`, the 64-bit FNV-1a of the bits of
//!   `powf(beta, t)` for every `t` in `1..=n` (one `u32` word per step:
//!   `h = (h ^ bits) · 0x100000001b3`, from `0xcbf29ce484222325`).
//!
//! Then `powf_done n=<values computed> ok=<whether every item parsed>`.

use defmt::{error, info};
use microfit_core::math::powf;

/// The sample, compiled in.
const SAMPLE: &str = match option_env!("MICROFIT_POWF_SAMPLE") {
    Some(s) => s,
    None => "",
};

fn hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 16).ok()
}

/// Computes and logs the sample; `true` when it was non-empty and every item parsed.
pub fn run() -> bool {
    let (mut n, mut ok) = (0u32, true);
    for item in SAMPLE.split(',').filter(|i| !i.is_empty()) {
        let mut parts = item.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("H"), Some(b), Some(steps)) => {
                let (Some(b), Ok(steps)) = (hex(b), steps.parse::<u32>()) else {
                    ok = false;
                    continue;
                };
                let beta = f32::from_bits(b);
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for t in 1..=steps {
                    h ^= u64::from(powf(beta, t as f32).to_bits());
                    h = h.wrapping_mul(0x0000_0100_0000_01b3);
                }
                n += steps;
                info!("powf_hash beta={=u32:x} n={=u32} fnv={=u64:x}", b, steps, h);
            }
            (Some(b), Some(t), None) => {
                let (Some(b), Ok(t)) = (hex(b), t.parse::<u32>()) else {
                    ok = false;
                    continue;
                };
                let bits = powf(f32::from_bits(b), t as f32).to_bits();
                n += 1;
                info!("powf beta={=u32:x} t={=u32} bits={=u32:x}", b, t, bits);
            }
            _ => ok = false,
        }
    }
    if !ok {
        error!("powf-check: a sample item did not parse");
    }
    info!("powf_done n={=u32} ok={=bool}", n, ok);
    ok && n > 0
}
