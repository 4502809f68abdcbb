//! Criterion benches (filled in by the host-performance work).
fn main() {}
