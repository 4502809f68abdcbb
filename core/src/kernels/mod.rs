//! The numeric kernels: written once, shared by the typed layers and by models built at
//! run time (the std runtime's `Sequential`), so the two cannot drift apart.
//!
//! **Summation order.** Rust never fuses `a*b+c` and LLVM never reorders a float sum, so the
//! order written here is the order executed on every target. Each kernel documents its
//! order; a host build and a Cortex-M build of the same kernel give the same bits.

pub mod conv;
pub mod dense;
pub mod pool;
