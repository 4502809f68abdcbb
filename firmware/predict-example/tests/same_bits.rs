//! The example's predictions are the core's forward pass with the module's weights: the bits
//! of a `Network` holding a copy of them, for every sample of the bundled W1.

use microfit_core::Network;
use microfit_core::layer::constant::Const;
use microfit_predict_example::{ACTIVATION_BYTES, classify, model};

#[test]
fn predictions_have_the_networks_bits() {
    let w = microfit_workload_data();
    let mut net: Network<model::Layers> =
        Network::with_params(Const::new(), model::WEIGHTS.clone());
    for row in w.chunks_exact(model::INPUTS) {
        let x: [f32; model::INPUTS] = row.try_into().unwrap();
        let (class, y) = classify(&x);
        let want = net.predict(&x);
        assert_eq!(y.map(f32::to_bits), want.map(f32::to_bits));
        assert_eq!(class, microfit_core::loss::argmax(want));
    }
    // W1 is a fused Dense pair: the 16 hidden units' outputs only (`PairCache`), and the 3
    // outputs' pre-activations, outputs and gradients; 4 B each.
    assert_eq!(ACTIVATION_BYTES, 4 * (16 + 3 * 3));
}

/// The inputs of the bundled W1 file (read with serde_json, as a host test may).
fn microfit_workload_data() -> Vec<f32> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/w1.json")).unwrap();
    let w = microfit_workload::Workload::parse(&text).unwrap();
    w.x
}
