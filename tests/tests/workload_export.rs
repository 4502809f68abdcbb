//! `microfit export --target firmware`'s workload file for any model the firmware trains: each
//! test workload (W1, W2, the tiny digits CNN, the regression MLP, the SGD-momentum model) read
//! into the schema's types (`TrainConfig`, `VecParams`, `Dataset`), written back by
//! `firmware_workload`, and parsed by the firmware's own reader (`microfit-workload`) to the
//! same workload: the same layers, regularizers, weights' bits, data, optimizer, schedule,
//! clipping, loss, batch size and epochs. (That each of these files trains to the same bits on
//! the host and on the chip is `host_vs_firmware.rs`.)

use std::path::PathBuf;

use microfit::formats::firmware::firmware_workload;
use microfit_tests::workload::train_config;
use microfit_workload::Workload;

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../firmware/data")
        .join(name)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_test_workload_exports_to_itself() {
    for name in [
        "w1.json",
        "w2.json",
        "cnn.json",
        "regression.json",
        "sgd_momentum.json",
        "w2_frozen.json",
    ] {
        let w = Workload::load(&file(name)).unwrap();
        let (cfg, params, frozen, data) = train_config(&w);
        let json = firmware_workload(&cfg, &params, &frozen, &data, w.training.epochs, "test")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = Workload::parse(&json.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back.layers, w.layers, "{name}: layers");
        assert_eq!(back.input_shape, w.input_shape, "{name}: input shape");
        assert_eq!(back.training, w.training, "{name}: training");
        assert_eq!(back.targets, w.targets, "{name}: targets");
        assert_eq!(bits(&back.x), bits(&w.x), "{name}: x");
        assert_eq!(back.weights.len(), w.weights.len(), "{name}: tensors");
        for (a, b) in back.weights.iter().zip(&w.weights) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape), "{name}");
            assert_eq!(bits(&a.data), bits(&b.data), "{name}: {}", a.name);
        }
    }
}

#[test]
fn what_the_firmware_cannot_train_is_refused_with_the_reason() {
    let w = Workload::load(&file("w1.json")).unwrap();
    let (mut cfg, params, frozen, data) = train_config(&w);
    cfg.optimizer.kind = microfit::formats::schema::OptimizerKind::Adam;
    cfg.optimizer.common.weight_decay = Some(0.01);
    let e = firmware_workload(&cfg, &params, &frozen, &data, 3, "test").unwrap_err();
    assert!(e.contains("weight decay"), "{e}");

    let (cfg, mut params, frozen, data) = train_config(&w);
    params.tensors.pop();
    params.shapes.pop();
    let e = firmware_workload(&cfg, &params, &frozen, &data, 3, "test").unwrap_err();
    assert!(e.contains("bias is missing"), "{e}");

    let (cfg, params, frozen, data) = train_config(&w);
    let e = firmware_workload(&cfg, &params, &frozen, &data, 0, "test").unwrap_err();
    assert!(e.contains("epochs"), "{e}");
}
