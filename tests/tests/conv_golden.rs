//! `conv_step_k3.json` (Keras 3.15.1, TensorFlow 2.21) through the **typed** front door: each
//! case on a `Network<Conv…D<…>>` whose sizes are written in the type (the case is matched to
//! its type by its geometry, and the typed geometry is checked against the file's
//! `out`/`pad_before`/`pad_after`), with every check of the file-driven runner
//! (`microfit_tests::golden::run_conv_case`: forward, losses, penalties, gradients, one step of
//! each optimizer, the update from Keras' gradients bit-exact) — and the typed and run-time
//! models must agree to the bit (`to_bits` of every value). The run-time half of every conv file
//! is `golden_files.rs`'s. The types are the shipped file's: with `MICROFIT_GOLDEN_DIR` pointing
//! at other files this test skips with a message.

use microfit::core::activation::Activation;
use microfit::core::kernels::conv::ConvGeometry;
use microfit::core::layer::Layer;
use microfit::core::layer::conv::{Conv1D, Conv2D, Conv3D, Same, Valid};
use microfit::core::layer::dense::DenseConfig;
use microfit::core::model::Network;
use microfit::core::params::ZeroParams;
use microfit::core::regularizer::Reg;
use microfit_tests::golden::{
    self, Checker, ConvCase, ConvOutcome, check_geometry, conv_cases, run_conv_case, run_runtime,
};

const FILE: &str = "conv_step_k3.json";

/// The geometry keys of the typed instantiations below.
const TYPED: [&str; 10] = [
    "Conv1D in [7, 2] filters 3 kernel [3] strides [1] valid",
    "Conv1D in [7, 2] filters 3 kernel [3] strides [2] valid",
    "Conv1D in [7, 2] filters 3 kernel [3] strides [1] same",
    "Conv1D in [7, 2] filters 3 kernel [3] strides [2] same",
    "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [1, 1] valid",
    "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [2, 2] valid",
    "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [1, 1] same",
    "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [2, 2] same",
    "Conv3D in [4, 4, 3, 2] filters 2 kernel [2, 2, 2] strides [1, 1, 1] valid",
    "Conv3D in [4, 4, 3, 2] filters 2 kernel [2, 2, 2] strides [2, 2, 2] same",
];

/// The typed front door: a `Network` of the layer type `L`, with the case's regularizers.
fn typed<L>(
    c: &mut Checker,
    case: &ConvCase,
    mut layer: L,
    config: impl Fn(&mut L) -> &mut DenseConfig<Reg>,
    geometry: ConvGeometry,
) -> ConvOutcome
where
    L: Layer + Clone,
    L::Params: ZeroParams,
{
    *config(&mut layer) = case.config;
    check_geometry(
        c,
        &format!("typed {}", case.label),
        &geometry,
        &case.json["geometry_per_spatial_dim"],
    );
    run_conv_case(c, "typed", case, &|| {
        Network::with_params(layer.clone(), L::Params::zeroed())
    })
}

macro_rules! typed_case {
    ($c:expr, $case:expr, $t:ty) => {
        typed(
            $c,
            $case,
            <$t>::new(Activation::Linear),
            |l| &mut l.config,
            <$t>::GEOMETRY,
        )
    };
}

/// The typed instantiation of each case, found by its geometry.
fn typed_run(c: &mut Checker, case: &ConvCase) -> ConvOutcome {
    match case.key.as_str() {
        "Conv1D in [7, 2] filters 3 kernel [3] strides [1] valid" => {
            typed_case!(c, case, Conv1D<7, 2, 3, 3, 5>)
        }
        "Conv1D in [7, 2] filters 3 kernel [3] strides [2] valid" => {
            typed_case!(c, case, Conv1D<7, 2, 3, 3, 3, Valid, 2>)
        }
        "Conv1D in [7, 2] filters 3 kernel [3] strides [1] same" => {
            typed_case!(c, case, Conv1D<7, 2, 3, 3, 7, Same>)
        }
        "Conv1D in [7, 2] filters 3 kernel [3] strides [2] same" => {
            typed_case!(c, case, Conv1D<7, 2, 3, 3, 4, Same, 2>)
        }
        "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [1, 1] valid" => {
            typed_case!(c, case, Conv2D<6, 5, 2, 2, 3, 2, 4, 4>)
        }
        "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [2, 2] valid" => {
            typed_case!(c, case, Conv2D<6, 5, 2, 2, 3, 2, 2, 2, Valid, 2, 2>)
        }
        "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [1, 1] same" => {
            typed_case!(c, case, Conv2D<6, 5, 2, 2, 3, 2, 6, 5, Same>)
        }
        "Conv2D in [6, 5, 2] filters 2 kernel [3, 2] strides [2, 2] same" => {
            typed_case!(c, case, Conv2D<6, 5, 2, 2, 3, 2, 3, 3, Same, 2, 2>)
        }
        "Conv3D in [4, 4, 3, 2] filters 2 kernel [2, 2, 2] strides [1, 1, 1] valid" => {
            typed_case!(c, case, Conv3D<4, 4, 3, 2, 2, 2, 2, 2, 3, 3, 2>)
        }
        "Conv3D in [4, 4, 3, 2] filters 2 kernel [2, 2, 2] strides [2, 2, 2] same" => {
            typed_case!(c, case, Conv3D<4, 4, 3, 2, 2, 2, 2, 2, 2, 2, 2, Same, 2, 2, 2>)
        }
        key => panic!("no typed instantiation for the golden case `{key}`: add one to typed_run"),
    }
}

#[test]
fn conv_step_typed_and_identical_to_runtime() {
    let Some(v) = golden::shipped_or_skip("conv_step_typed", FILE, |v| {
        match conv_cases(v)
            .iter()
            .find(|c| !TYPED.contains(&c.key.as_str()))
        {
            None => Ok(()),
            Some(c) => Err(format!("no typed instantiation for `{}`", c.key)),
        }
    }) else {
        return;
    };
    let mut c = Checker::new(FILE);
    let cases = conv_cases(&v);
    for case in &cases {
        let t = typed_run(&mut c, case);
        let mut quiet = Checker::new(FILE);
        let r = run_runtime(&mut quiet, case);
        if let Err(e) = t.same_bits(&r) {
            c.fail(format!(
                "{}: typed and run-time models differ: {e}",
                case.label
            ));
        } else {
            c.truth(
                &format!("{}: typed == run-time, bit for bit", case.label),
                true,
            );
        }
    }
    let s = c.finish();
    assert_eq!(s.cases, cases.len());
}
