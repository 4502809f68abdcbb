use microfit_core::prelude::*;

fn main() {
    let _ = Conv1D::<4, 1, 2, 5, 1>::new(Activation::Linear);
}
