use microfit_core::prelude::*;

type Cnn = (
    Conv2D<8, 8, 1, 8, 3, 3, 6, 6>,
    MaxPooling2D<6, 6, 8, 2, 2, 3, 3>,
    Flatten<[[[f32; 8]; 3]; 3], 72>,
    Dense<72, 10>,
);

fn main() {
    let layers: Cnn = (
        Conv2D::new(Activation::Relu),
        MaxPooling2D::new(),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    );
    let mut net = Network::new(layers, 1).unwrap();
    let y = net.predict(&[[[0.5; 1]; 8]; 8]);
    assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    // The output size written as a const expression.
    let _ = Conv1D::<7, 2, 3, 3, { conv_out(7, 3, 2, 1, Padding::Same) }, Same, 2>::new(
        Activation::Linear,
    );
}
