//! The numeric kernels: written once, shared by the typed layers and by models built at
//! run time (the std runtime's `Sequential`), so the two cannot drift apart.
//!
//! **Summation order.** Rust never fuses `a*b+c` and LLVM never reorders a float sum, so the
//! order written here is the order executed on every target. Each kernel documents its
//! order; a host build and a Cortex-M build of the same kernel give the same bits.
//!
//! * [`dense`]: one sample through a Dense layer (a microcontroller's tile of one);
//! * [`gemm`]: a tile of samples through a Dense layer, with the per-sample order;
//! * [`conv`], [`pool`]: convolutions and pooling, one sample;
//! * [`reduce`]: the penalties' sums; [`exp`]: `exp`/`ln` without branches (vectorizable).

pub mod conv;
pub mod dense;
pub mod exp;
pub mod gemm;
pub mod pool;
pub mod reduce;
