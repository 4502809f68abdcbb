//! The batched host path (`microfit::fast`) and the core's per-sample `Trainer` end every
//! epoch with the same reports and every run with the same weight bits: on the three host
//! workloads, on W1 with every kind of regularizer, with shuffled orders, with tiles smaller
//! than the batch, and on errors.

use microfit::core::layer::Layer;
use microfit::core::params::weights_hash;
use microfit::core::prelude::*;
use microfit::fast::{BatchLayer, BatchNetwork, BatchTrainer, HostOptimizer};

#[path = "../examples/host_data/workloads.rs"]
mod workloads;
use workloads::*;

/// Trains both paths side by side and compares every epoch report and the final weights.
fn same_training<L, O, const T: usize>(
    layers: L,
    init: L::Params,
    opt: impl Fn(&L::Params) -> O,
    loss: Loss,
    data: &Samples<'_>,
    batch: usize,
    epochs: usize,
    order: Option<&[u32]>,
) -> u64
where
    L: BatchLayer<T> + Clone,
    O: HostOptimizer<L::Params>,
    L::Params: PartialEq + core::fmt::Debug,
{
    let typed = Network::with_params(layers.clone(), init.clone());
    let mut a = Trainer::new(typed, opt(&init), loss);
    let fast = BatchNetwork::<L, T>::with_params(layers, init.clone());
    let mut b = BatchTrainer::new(fast, opt(&init), loss);
    for e in 0..epochs {
        let ra = a.fit_epoch(data, batch, order).unwrap();
        let rb = b.fit_epoch(data, batch, order).unwrap();
        assert_eq!(
            ra.loss.to_bits(),
            rb.loss.to_bits(),
            "epoch {e}: loss {} vs {}",
            ra.loss,
            rb.loss
        );
        assert_eq!(ra, rb, "epoch {e}");
    }
    assert_eq!(a.model.params, b.model.params, "final weights");
    assert_eq!(a.optimizer.iterations(), b.optimizer.iterations());
    let ea = a.evaluate(data, 64).unwrap();
    let eb = b.evaluate(data, 64).unwrap();
    assert_eq!(ea, eb, "evaluation");
    weights_hash(&a.model.params)
}

#[test]
fn model_a_batched_equals_per_sample() {
    let d = Data::read("digits.csv");
    same_training::<_, _, 32>(
        a_layers(),
        a_init(),
        a_opt,
        LOSS,
        &d.samples(),
        A_BATCH,
        2,
        None,
    );
}

#[test]
fn model_a_with_tiles_smaller_than_the_batch() {
    let d = Data::read("digits.csv");
    same_training::<_, _, 7>(
        a_layers(),
        a_init(),
        a_opt,
        LOSS,
        &d.samples(),
        A_BATCH,
        1,
        None,
    );
}

#[test]
fn model_b_batched_equals_per_sample() {
    let d = Data::read("iris.csv");
    same_training::<_, _, 32>(
        b_layers(),
        b_init(),
        b_opt,
        LOSS,
        &d.samples(),
        B_BATCH,
        30,
        None,
    );
}

#[test]
fn model_c_batched_equals_per_sample() {
    let d = Data::read("digits.csv");
    same_training::<_, _, 32>(
        c_layers(),
        c_init(),
        c_opt,
        LOSS,
        &d.samples(),
        C_BATCH,
        1,
        None,
    );
}

/// A CNN that exercises every conv/pool path of the batched code: `same` padding (per-sample
/// fallback), overlapping max pooling (stride 1), a second conv (its input gradient, strides,
/// activity and bias regularizers), average pooling, with ties in the pooling windows (the
/// digits have many equal pixels).
#[test]
fn cnn_variants() {
    type Cnn = (
        Conv2D<8, 8, 1, 4, 3, 3, 8, 8, Same>,
        MaxPooling2D<8, 8, 4, 2, 2, 7, 7, Valid, 1, 1>,
        Conv2D<7, 7, 4, 6, 3, 3, 3, 3, Valid, 2, 2>,
        MaxPooling2D<3, 3, 6, 2, 2, 1, 1>,
        Flatten<[[[f32; 6]; 1]; 1], 6>,
        Dense<6, 10>,
    );
    let layers: Cnn = (
        Conv2D::new(Activation::Relu).kernel_regularizer(Reg::l2(1e-3)),
        MaxPooling2D::new(),
        Conv2D::new(Activation::Tanh)
            .activity_regularizer(Reg::l1(1e-4))
            .bias_regularizer(Reg::l2(1e-3)),
        MaxPooling2D::new(),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    );
    let init = Network::new(layers, 5).unwrap().params;
    let d = Data::read("digits.csv");
    let x = &d.x[..64 * 300];
    let data = Samples::new(x, 64, Targets::Classes(&d.y[..300])).unwrap();
    same_training::<_, _, 16>(
        layers,
        init,
        |p| Adam::new(3e-3, p).unwrap(),
        LOSS,
        &data,
        24,
        2,
        None,
    );

    type Avg = (
        Conv2D<8, 8, 1, 3, 3, 3, 6, 6>,
        AveragePooling2D<6, 6, 3, 2, 2, 3, 3>,
        Flatten<[[[f32; 3]; 3]; 3], 27>,
        Dense<27, 10>,
    );
    let layers: Avg = (
        Conv2D::new(Activation::Relu),
        AveragePooling2D::new(),
        Flatten::new(),
        Dense::new(Activation::Softmax),
    );
    let init = Network::new(layers, 9).unwrap().params;
    same_training::<_, _, 32>(
        layers,
        init,
        |p| Adam::new(3e-3, p).unwrap(),
        LOSS,
        &data,
        32,
        2,
        None,
    );
}

/// W1 with kernel, bias and activity regularizers on both layers (the activity gradient goes
/// through the fused softmax path), sparse labels, shuffled order.
#[test]
fn every_regularizer_and_a_shuffled_order() {
    let d = Data::read("iris.csv");
    let k = Reg::l2(1e-3);
    let b = Reg::l1(1e-4);
    let a = Reg::l1l2(1e-5, 1e-4);
    let layers: (Dense<4, 16>, Dense<16, 3>) = (
        Dense::new(Activation::Relu)
            .kernel_regularizer(k)
            .bias_regularizer(b)
            .activity_regularizer(a),
        Dense::new(Activation::Softmax)
            .kernel_regularizer(k)
            .activity_regularizer(a),
    );
    let init = Network::new(layers, 7).unwrap().params;
    let mut order: Vec<u32> = (0..d.y.len() as u32).collect();
    Rng::new(3).shuffle(&mut order);
    for loss in [
        LOSS,
        Loss::SparseCategoricalCrossentropy { from_logits: false },
    ] {
        same_training::<_, _, 4>(
            layers,
            init.clone(),
            |p| Adam::new(0.01, p).unwrap(),
            loss,
            &d.samples(),
            10,
            15,
            Some(&order),
        );
    }
}

/// Losses without the fused path, tanh/sigmoid hidden layers and SGD with Nesterov.
#[test]
fn unfused_losses_and_other_activations() {
    let d = Data::read("iris.csv");
    let onehot: Vec<f32> =
        d.y.iter()
            .flat_map(|&c| (0..3).map(move |j| if j == c { 1.0 } else { 0.0 }))
            .collect();
    let data = Samples::new(
        &d.x,
        4,
        Targets::Dense {
            values: &onehot,
            width: 3,
        },
    )
    .unwrap();
    let layers: (Dense<4, 8>, Dense<8, 5>, Dense<5, 3>) = (
        Dense::new(Activation::Tanh).kernel_regularizer(Reg::l1(1e-4)),
        Dense::new(Activation::LeakyRelu(0.2)).activity_regularizer(Reg::l2(1e-4)),
        Dense::new(Activation::Sigmoid),
    );
    let init = Network::new(layers, 11).unwrap().params;
    for loss in [
        Loss::MeanSquaredError,
        Loss::BinaryCrossentropy { from_logits: false },
        LOSS,
    ] {
        same_training::<_, _, 16>(
            layers,
            init.clone(),
            |p| Momentum::new(0.05, 0.9, true, p).unwrap(),
            loss,
            &data,
            16,
            10,
            None,
        );
    }
}

#[test]
fn same_errors() {
    let d = Data::read("iris.csv");
    let mut y = d.y.clone();
    y[13] = 7;
    let data = Samples::new(&d.x, 4, Targets::Classes(&y)).unwrap();
    let init = b_init();
    let mut a = Trainer::new(
        Network::with_params(b_layers(), init.clone()),
        b_opt(&init),
        LOSS,
    );
    let mut b = BatchTrainer::new(
        BatchNetwork::<ModelB, 8>::with_params(b_layers(), init.clone()),
        b_opt(&init),
        LOSS,
    );
    let ea = a.fit_epoch(&data, 8, None).unwrap_err();
    let eb = b.fit_epoch(&data, 8, None).unwrap_err();
    assert_eq!(ea, eb);
    assert_eq!(
        a.model.params, b.model.params,
        "the steps before the error were applied alike"
    );
    let mut x = d.x.clone();
    x[4 * 9 + 2] = f32::NAN;
    let data = Samples::new(&x, 4, Targets::Classes(&d.y)).unwrap();
    assert_eq!(
        a.fit_epoch(&data, 8, None).unwrap_err(),
        b.fit_epoch(&data, 8, None).unwrap_err()
    );
}

/// Inside an epoch the batched path may report a bound of an L2 penalty until the end of the
/// epoch: with penalties near overflow (another layer's L1 of 1e37, 1e38, 3e38; an L2 of 1e35)
/// the reports, the weights and the `NonFiniteLoss` errors are still the core's.
#[test]
fn huge_penalties_decide_like_the_core() {
    let d = Data::read("iris.csv");
    for (l2, l1) in [
        (1e-3f32, 1e37f32),
        (1e-3, 1e38),
        (1e-3, 3e38),
        (1e35, 0.0),
        (1e30, 1e-3),
    ] {
        let layers: ModelB = (
            Dense::new(Activation::Relu).kernel_regularizer(Reg::l2(l2)),
            Dense::new(Activation::Softmax).kernel_regularizer(Reg::l1(l1)),
        );
        let init = b_init();
        let mut a = Trainer::new(
            Network::with_params(layers, init.clone()),
            b_opt(&init),
            LOSS,
        );
        let mut b = BatchTrainer::new(
            BatchNetwork::<ModelB, 8>::with_params(layers, init.clone()),
            b_opt(&init),
            LOSS,
        );
        for e in 0..3 {
            let (ra, rb) = (
                a.fit_epoch(&d.samples(), 8, None),
                b.fit_epoch(&d.samples(), 8, None),
            );
            assert_eq!(ra, rb, "l2 {l2} l1 {l1} epoch {e}");
        }
        assert_eq!(a.model.params, b.model.params, "l2 {l2} l1 {l1}");
    }
}

/// The batched network is also a per-sample `Trainable`: the core's own step runs on it.
#[test]
fn core_step_on_the_batched_network() {
    let d = Data::read("iris.csv");
    let init = b_init();
    let mut a = Trainer::new(
        Network::with_params(b_layers(), init.clone()),
        b_opt(&init),
        LOSS,
    );
    let mut b = Trainer::new(
        BatchNetwork::<ModelB, 8>::with_params(b_layers(), init.clone()),
        b_opt(&init),
        LOSS,
    );
    for _ in 0..3 {
        assert_eq!(
            a.fit_epoch(&d.samples(), 8, None).unwrap(),
            b.fit_epoch(&d.samples(), 8, None).unwrap()
        );
    }
    assert_eq!(a.model.params, b.model.params);
    let _ = <ModelB as Layer>::LAYERS;
}
