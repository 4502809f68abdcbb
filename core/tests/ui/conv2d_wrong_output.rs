use microfit_core::prelude::*;

fn main() {
    let _ = Conv2D::<8, 8, 1, 8, 3, 3, 7, 6>::new(Activation::Relu);
}
