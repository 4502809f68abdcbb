use microfit_core::prelude::*;

fn main() {
    // The pooled map is 3×3×8 = 72 values; the Dense layer expects 64.
    let layers = (
        Conv2D::<8, 8, 1, 8, 3, 3, 6, 6>::new(Activation::Relu),
        MaxPooling2D::<6, 6, 8, 2, 2, 3, 3>::new(),
        Dense::<64, 10>::new(Activation::Softmax),
    );
    let _ = Network::new(layers, 0);
}
