use microfit_core::prelude::*;

fn main() {
    let _ = Conv1D::<7, 2, 3, 3, 3, Same, 2>::new(Activation::Linear);
}
