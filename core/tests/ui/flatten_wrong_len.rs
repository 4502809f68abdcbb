use microfit_core::prelude::*;

fn main() {
    let _ = Flatten::<[[[f32; 8]; 3]; 3], 64>::new();
}
