//! The training step's no-panic contract: NaN/∞ inputs, out-of-range labels, bad shapes and
//! divergence give errors, never panics, and a failed step leaves the weights unchanged.

use microfit_core::layer::dense::DenseParams;
use microfit_core::prelude::*;
use microfit_core::train::train_step;
use proptest::prelude::*;

type Net = (Dense<3, 5>, Dense<5, 2>);

fn trainer(lr: f32) -> Trainer<Network<Net>, Adam<(DenseParams<3, 5>, DenseParams<5, 2>)>> {
    trainer_with(lr, Activation::Tanh)
}

fn trainer_with(
    lr: f32,
    hidden: Activation,
) -> Trainer<Network<Net>, Adam<(DenseParams<3, 5>, DenseParams<5, 2>)>> {
    let net = Network::new(
        (
            Dense::new(hidden)
                .kernel_regularizer(Reg::l2(0.01))
                .activity_regularizer(Reg::l1(0.01)),
            Dense::new(Activation::Softmax).bias_regularizer(Reg::l1(0.1)),
        ),
        3,
    )
    .unwrap();
    let opt = Adam::new(lr, &net.params).unwrap();
    Trainer::new(
        net,
        opt,
        Loss::SparseCategoricalCrossentropy { from_logits: false },
    )
}

#[test]
fn nan_and_inf_inputs_are_rejected_before_any_update() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut t = trainer(0.01);
        let before = t.model.params.clone();
        let x = [0.1, 0.2, 0.3, bad, 0.0, 1.0];
        let y = [0u32, 1];
        let s = Samples::new(&x, 3, Targets::Classes(&y)).unwrap();
        let e = t.step(&s, Rows::Range(0, 2)).unwrap_err();
        assert_eq!(e, Error::NonFiniteInput { sample: 1 });
        assert_eq!(t.model.params, before);
        assert_eq!(t.optimizer.iterations(), 0);
    }
}

#[test]
fn label_out_of_range_and_shape_errors() {
    let mut t = trainer(0.01);
    let x = [0.1f32; 6];
    let y = [0u32, 2];
    let s = Samples::new(&x, 3, Targets::Classes(&y)).unwrap();
    assert_eq!(
        t.step(&s, Rows::Range(0, 2)).unwrap_err(),
        Error::LabelOutOfRange {
            label: 2,
            classes: 2
        }
    );
    let s4 = Samples::new(&[0.0; 8], 4, Targets::Classes(&[0, 1])).unwrap();
    assert!(matches!(
        t.step(&s4, Rows::Range(0, 2)),
        Err(Error::ShapeMismatch { .. })
    ));
    assert_eq!(
        t.step(&s, Rows::Range(1, 1)).unwrap_err(),
        Error::EmptyBatch
    );
    assert!(matches!(
        t.step(&s, Rows::Indices(&[7])),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(Samples::new(&[0.0; 7], 3, Targets::Classes(&[0, 1])).is_err());
}

#[test]
fn divergence_returns_an_error_and_keeps_the_last_good_weights() {
    // Huge inputs overflow the linear first layer to ±∞ → the loss or the gradients become NaN/∞.
    let mut t = trainer_with(0.01, Activation::Linear);
    let x = [3e38f32, 3e38, 3e38, -3e38, 3e38, -3e38];
    let y = [0u32, 1];
    let s = Samples::new(&x, 3, Targets::Classes(&y)).unwrap();
    let before = t.model.params.clone();
    let r = t.step(&s, Rows::Range(0, 2));
    match r {
        Err(Error::NonFiniteLoss) | Err(Error::NonFiniteGradient { .. }) => {}
        other => panic!("expected a non-finite error, got {other:?}"),
    }
    assert_eq!(t.model.params, before);
    assert_eq!(t.optimizer.iterations(), 0);
}

#[test]
fn invalid_hyperparameters_are_rejected_at_construction() {
    let p = DenseParams::<1, 1>::zeroed();
    assert!(Adam::new(f32::NAN, &p).is_err());
    assert!(Adam::new(-0.1, &p).is_err());
    let c = microfit_core::optim::AdamConfig {
        beta_1: 1.0,
        ..Default::default()
    };
    assert!(Adam::with_config(c, &p).is_err());
    assert!(Momentum::new(0.1, 1.5, false, &p).is_err());
    assert!(Sgd::new(f32::INFINITY).is_err());
    assert!(Reg::try_l2(-1e-3).is_err());
    assert!(Reg::try_l1(f32::NAN).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any values — finite most of the time (ordinary, extreme up to `f32::MAX`, subnormal,
    /// ±0), any f32 (NaN, ±∞) one time in six — and any labels: a step returns, never panics,
    /// and on error the weights are unchanged. (`tests/tests/no_panic_runtime.rs` does the same
    /// for the run-time `Sequential`, conv and pooling layers, every loss and optimizer.)
    #[test]
    fn any_batch_never_panics(
        xs in proptest::collection::vec(prop_oneof![
            3 => -4.0f32..4.0,
            1 => proptest::num::f32::NORMAL | proptest::num::f32::SUBNORMAL | proptest::num::f32::ZERO,
            1 => proptest::sample::select(vec![f32::MAX, f32::MIN, 3e38, -3e38, 1e-40, -0.0]),
            1 => proptest::num::f32::ANY,
        ], 3..30),
        labels in proptest::collection::vec(0u32..4, 1..10),
    ) {
        let n = (xs.len() / 3).min(labels.len()).max(1);
        let x = &xs[..(n * 3).min(xs.len())];
        if x.len() < 3 { return Ok(()); }
        let n = x.len() / 3;
        let s = match Samples::new(&x[..n * 3], 3, Targets::Classes(&labels[..n.min(labels.len())])) {
            Ok(s) => s,
            Err(_) => return Ok(()),
        };
        let mut t = trainer(0.5);
        let before = t.model.params.clone();
        let mut model = t.model.clone();
        let r = train_step::<microfit_core::backend::Portable, _, _>(&mut model, &mut t.optimizer, t.loss, &s, Rows::Range(0, n));
        if r.is_err() {
            prop_assert_eq!(
                microfit_core::params::weights_hash(&model.params),
                microfit_core::params::weights_hash(&before)
            );
        } else {
            prop_assert!(model.params.first_non_finite().is_none());
        }
    }
}
