//! Keras' `exclude_from_weight_decay`: which variables the decoupled weight decay
//! (`Common::weight_decay`) leaves alone.

use crate::error::Error;

/// Keras `optimizer.exclude_from_weight_decay(var_names=[…])`: the variables whose name matches
/// one of the patterns get no decoupled weight decay.
///
/// Keras 3 searches each pattern in the variable's **name** (`re.search`), and the variables
/// of Dense and convolution layers are named `kernel` and `bias` (their path, `dense_1/bias`,
/// is not searched). So a set of patterns is exactly which of the two it matches: `["bias"]`
/// exempts every bias, `["b"]` too, `["dense_1"]` nothing. Patterns are matched as plain
/// substrings; one with a regular-expression character is refused
/// ([`ExcludeFromWeightDecay::from_var_names`]).
///
/// ```
/// use microfit_core::optim::ExcludeFromWeightDecay;
/// let e = ExcludeFromWeightDecay::from_var_names(&["bias"])?;
/// assert!(e.excludes("bias") && !e.excludes("kernel"));
/// assert_eq!(ExcludeFromWeightDecay::from_var_names(&["dense_1"])?, ExcludeFromWeightDecay::default());
/// assert!(ExcludeFromWeightDecay::from_var_names(&["bi.s"]).is_err());
/// # Ok::<(), microfit_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExcludeFromWeightDecay {
    /// Kernels get no weight decay.
    pub kernel: bool,
    /// Biases get no weight decay.
    pub bias: bool,
}

impl ExcludeFromWeightDecay {
    /// Nothing excluded (Keras' default).
    pub const NONE: Self = ExcludeFromWeightDecay {
        kernel: false,
        bias: false,
    };

    /// The variables Keras' `var_names` patterns exclude (plain substrings of the variable
    /// names `kernel` and `bias`).
    ///
    /// # Errors
    /// [`Error::InvalidHyperparameter`] for a pattern with a regular-expression character
    /// (`.^$*+?{}[]\|()`), which Keras would read as a regular expression.
    pub fn from_var_names<S: AsRef<str>>(var_names: &[S]) -> Result<Self, Error> {
        let mut e = ExcludeFromWeightDecay::default();
        for p in var_names {
            let p = p.as_ref();
            if p.contains(|c: char| ".^$*+?{}[]\\|()".contains(c)) {
                return Err(Error::InvalidHyperparameter {
                    name: "exclude_from_weight_decay",
                    reason: crate::error::Reason::PlainSubstrings,
                });
            }
            e.kernel |= "kernel".contains(p);
            e.bias |= "bias".contains(p);
        }
        Ok(e)
    }

    /// Whether the variable named `name` (`kernel`, `bias`, or a path ending in one) is
    /// excluded.
    pub fn excludes(&self, name: &str) -> bool {
        // The last `/`-separated segment compared without splitting (`rsplit` links
        // slice-index panic paths into every firmware that clips or decays).
        let last_is = |s: &str| {
            name.strip_suffix(s)
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('/'))
        };
        (self.kernel && last_is("kernel")) || (self.bias && last_is("bias"))
    }
}
