//! The `softfloat-check` firmware (Cortex-M0 under QEMU): the firmware's `__aeabi_f*` routines
//! ([`crate::aeabi`]) against compiler-builtins' own (`__addsf3`, `__mulsf3`, `__eqsf2`, ...,
//! still linked under their generic names) on [`PAIRS`] operand pairs from
//! [`crate::softfloat::Operands`]: every result must be the same bits. Logs the first mismatches
//! and one summary line:
//! ```text
//! softfloat-check pairs=2000000 mismatches=0
//! ```
//! `tests/tests/softfloat_m0.rs` runs it.

use core::hint::black_box;

use crate::softfloat::Operands;

/// Operand pairs checked (each through the 4 operations and the 6 comparisons).
pub const PAIRS: u32 = 2_000_000;

unsafe extern "C" {
    // compiler-builtins' routines (soft-float AAPCS: the bits in r0, r1).
    fn __addsf3(a: f32, b: f32) -> f32;
    fn __subsf3(a: f32, b: f32) -> f32;
    fn __mulsf3(a: f32, b: f32) -> f32;
    fn __divsf3(a: f32, b: f32) -> f32;
    fn __eqsf2(a: f32, b: f32) -> i32;
    fn __ltsf2(a: f32, b: f32) -> i32;
    fn __lesf2(a: f32, b: f32) -> i32;
    fn __gtsf2(a: f32, b: f32) -> i32;
    fn __gesf2(a: f32, b: f32) -> i32;
    fn __unordsf2(a: f32, b: f32) -> i32;
}

const NAMES: [&str; 10] = [
    "add", "sub", "mul", "div", "eq", "lt", "le", "gt", "ge", "unord",
];

/// Runs the check; true when every result matched.
pub fn run() -> bool {
    let mut ops = Operands::new(0x2545_f491_4f6c_dd1d);
    let mut mismatches = 0u32;
    for _ in 0..PAIRS {
        let (a, b) = (ops.float(), ops.float());
        // `black_box`: the operations must run here, through the run-time routines.
        let (x, y) = (black_box(f32::from_bits(a)), black_box(f32::from_bits(b)));
        let ours = [
            (x + y).to_bits(),
            (x - y).to_bits(),
            (x * y).to_bits(),
            (x / y).to_bits(),
            u32::from(x == y),
            u32::from(x < y),
            u32::from(x <= y),
            u32::from(x > y),
            u32::from(x >= y),
            u32::from(x.is_nan() || y.is_nan()),
        ];
        // SAFETY: compiler-builtins' routines take two `f32`s and return an `f32` or an `i32`,
        // as declared; they touch no memory.
        let theirs = unsafe {
            [
                __addsf3(x, y).to_bits(),
                __subsf3(x, y).to_bits(),
                __mulsf3(x, y).to_bits(),
                __divsf3(x, y).to_bits(),
                u32::from(__eqsf2(x, y) == 0),
                u32::from(__ltsf2(x, y) < 0),
                u32::from(__lesf2(x, y) <= 0),
                u32::from(__gtsf2(x, y) > 0),
                u32::from(__gesf2(x, y) >= 0),
                u32::from(__unordsf2(x, y) != 0),
            ]
        };
        for k in 0..NAMES.len() {
            if ours[k] != theirs[k] {
                if mismatches < 20 {
                    defmt::error!(
                        "mismatch {=str}({=u32:x}, {=u32:x}): ours {=u32:x}, compiler-builtins {=u32:x}",
                        NAMES[k],
                        a,
                        b,
                        ours[k],
                        theirs[k]
                    );
                }
                mismatches += 1;
            }
        }
    }
    defmt::info!(
        "softfloat-check pairs={=u32} mismatches={=u32}",
        PAIRS,
        mismatches
    );
    mismatches == 0
}
