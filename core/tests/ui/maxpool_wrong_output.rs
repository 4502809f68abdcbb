use microfit_core::prelude::*;

fn main() {
    let _ = MaxPooling2D::<6, 6, 8, 2, 2, 2, 3>::new();
}
