//! Seeded train/validation/test splits and per-epoch shuffles.
//!
//! Everything here is driven by [`SplitMix64`] with fixed sub-streams, and all counts are
//! computed with integer arithmetic (after one `round` of `n × fraction`), so the same dataset,
//! spec and seed give the same split on every platform.

use serde::{Deserialize, Serialize};

use super::error::SplitPart;
use super::rng::SplitMix64;
use super::{DataError, Dataset, Target};

/// Sub-stream of the unstratified split's shuffle.
const STREAM_RANDOM: u64 = 0x5241_4E44_0000_0000; // "RAND"
/// Base sub-stream of the per-class shuffles of a stratified split (plus the class index).
const STREAM_CLASS: u64 = 0x5354_5241_0000_0000; // "STRA"
/// Base sub-stream of the final shuffle of each part of a stratified split (plus the part).
const STREAM_PART: u64 = 0x5041_5254_0000_0000; // "PART"
/// Sub-stream of the k-fold shuffle (per class: plus the class index).
const STREAM_FOLD: u64 = 0x464F_4C44_0000_0000; // "FOLD"

/// How to split a dataset.
///
/// Serializes with serde as `{"validation": 0.2, "test": 0.0, "seed": 0, "stratify": true}`;
/// missing fields take their [`Default`] values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SplitSpec {
    /// Fraction of the samples for the validation set, in `[0, 1)`; 0 for none.
    pub validation: f32,
    /// Fraction of the samples for the test set, in `[0, 1)`; 0 for none.
    pub test: f32,
    /// Seed of the shuffles: the same seed gives the same split.
    pub seed: u64,
    /// Split each class separately so that every part keeps the class proportions
    /// (classification only; a regression dataset is always split at random).
    pub stratify: bool,
}

impl Default for SplitSpec {
    /// 20 % validation, no test set, seed 0, stratified.
    fn default() -> Self {
        SplitSpec {
            validation: 0.2,
            test: 0.0,
            seed: 0,
            stratify: true,
        }
    }
}

/// The sample indices of each part of a split (each list in shuffled order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SplitIndices {
    /// Indices of the training samples.
    pub train: Vec<usize>,
    /// Indices of the validation samples (empty when the spec asks for none).
    pub validation: Vec<usize>,
    /// Indices of the test samples (empty when the spec asks for none).
    pub test: Vec<usize>,
}

/// A dataset split into its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    /// The training set.
    pub train: Dataset,
    /// The validation set, if the spec asked for one.
    pub validation: Option<Dataset>,
    /// The test set, if the spec asked for one.
    pub test: Option<Dataset>,
}

/// Splits `data` into train, validation and test sets (see [`split_indices`] for how).
///
/// Each part keeps `data`'s feature and class names, so class indices mean the same everywhere.
///
/// # Errors
/// As [`split_indices`].
pub fn split(data: &Dataset, spec: SplitSpec) -> Result<Splits, DataError> {
    let idx = split_indices(data, spec)?;
    let part = |indices: &[usize], fraction: f32| (fraction > 0.0).then(|| data.subset(indices));
    Ok(Splits {
        train: data.subset(&idx.train),
        validation: part(&idx.validation, spec.validation),
        test: part(&idx.test, spec.test),
    })
}

/// The indices of a train/validation/test split of `data`.
///
/// A part with a fraction `f > 0` gets `round(n × f)` samples, but at least one; the training
/// set gets the rest, and at least one.
///
/// With `spec.stratify` on a classification dataset, each class is shuffled on its own and
/// the part totals are shared out between the classes in proportion to their sizes (largest
/// remainder first, ties to the lower class index), with at least one sample of every class in
/// every non-empty part (which can make a part larger than `round(n × f)` when it is smaller
/// than the number of classes). Classes without any sample are ignored. Otherwise all samples are
/// shuffled together and cut in order: validation, test, train.
///
/// The lists come out shuffled, so a dataset sorted by class (like iris) is mixed, except when
/// no part is split off: then the training set is the data as given, in its order.
///
/// # Errors
/// * [`DataError::InvalidSplitSpec`] if a fraction is negative, not finite, or 1 or more, or
///   if the two sum to 1 or more.
/// * [`DataError::TooFewSamples`] if `data` has fewer samples than non-empty parts.
/// * [`DataError::EmptyClassInSplit`] if a class has fewer samples than non-empty parts
///   (stratified only); the error names the class.
pub fn split_indices(data: &Dataset, spec: SplitSpec) -> Result<SplitIndices, DataError> {
    check_spec(&spec)?;
    let n = data.n_samples();
    let parts = active_parts(&spec);
    if n < parts.len() {
        return Err(DataError::TooFewSamples {
            dataset: data.name.clone(),
            available: n,
            needed: parts.len(),
        });
    }
    let n_val = part_size(n, spec.validation);
    let n_test = part_size(n, spec.test);
    let (n_val, n_test) = leave_one_for_training(n, n_val, n_test);
    if n_val == 0 && n_test == 0 {
        // Nothing to split off: the training set is the data as given.
        return Ok(SplitIndices {
            train: (0..n).collect(),
            ..SplitIndices::default()
        });
    }

    match &data.target {
        Target::Classes {
            labels,
            class_names,
        } if spec.stratify => {
            stratified(data, labels, class_names, spec.seed, n_val, n_test, &parts)
        }
        _ => {
            let mut order: Vec<usize> = (0..n).collect();
            SplitMix64::stream(spec.seed, STREAM_RANDOM).shuffle(&mut order);
            let train = order.split_off(n_val + n_test);
            let test = order.split_off(n_val);
            Ok(SplitIndices {
                train,
                validation: order,
                test,
            })
        }
    }
}

/// The folds of a k-fold cross-validation of `data`: `k` disjoint lists of sample indices that
/// together hold every sample once, sorted ascending.
///
/// The samples are shuffled with `seed` and dealt out in turn (fold 0, 1, …, k-1, 0, …), so
/// fold sizes differ by at most one. With `stratify` on a classification dataset each class is
/// shuffled and dealt on its own, continuing where the previous class stopped, so that every
/// fold keeps the class proportions (scikit-learn's `StratifiedKFold` with shuffling does the
/// same in spirit, not in the same order).
///
/// ```
/// use microfit::data::{Bundled, kfold_indices};
/// let iris = Bundled::Iris.load()?;
/// let folds = kfold_indices(&iris, 3, 7, true)?;
/// assert_eq!(folds.iter().map(Vec::len).collect::<Vec<_>>(), [50, 50, 50]);
/// // 50 of each class, so every fold holds 16 or 17 of each.
/// assert!(folds[0].iter().filter(|&&i| iris.label(i) == Some(0)).count() >= 16);
/// # Ok::<(), microfit::data::DataError>(())
/// ```
///
/// # Errors
/// [`DataError::InvalidSplitSpec`] when `k < 2`, [`DataError::TooFewSamples`] when there are
/// fewer samples than folds, [`DataError::EmptyClassInSplit`] when stratifying and a class has
/// fewer samples than folds.
pub fn kfold_indices(
    data: &Dataset,
    k: usize,
    seed: u64,
    stratify: bool,
) -> Result<Vec<Vec<usize>>, DataError> {
    if k < 2 {
        return Err(DataError::InvalidSplitSpec {
            reason: format!("k-fold cross-validation needs at least 2 folds, got {k}"),
        });
    }
    let n = data.n_samples();
    if n < k {
        return Err(DataError::TooFewSamples {
            dataset: data.name.clone(),
            available: n,
            needed: k,
        });
    }
    let groups: Vec<Vec<usize>> = match &data.target {
        Target::Classes {
            labels,
            class_names,
        } if stratify => {
            let mut g = vec![Vec::new(); class_names.len()];
            for (i, &l) in labels.iter().enumerate() {
                g[l as usize].push(i);
            }
            for (c, members) in g.iter_mut().enumerate() {
                if !members.is_empty() && members.len() < k {
                    return Err(DataError::EmptyClassInSplit {
                        dataset: data.name.clone(),
                        class: class_names[c].clone(),
                        samples: members.len(),
                        part: SplitPart::Validation,
                        parts: k,
                    });
                }
                SplitMix64::stream(seed, STREAM_FOLD + c as u64).shuffle(members);
            }
            g
        }
        _ => {
            let mut all: Vec<usize> = (0..n).collect();
            SplitMix64::stream(seed, STREAM_FOLD).shuffle(&mut all);
            vec![all]
        }
    };
    let mut folds = vec![Vec::with_capacity(n / k + 1); k];
    let mut next = 0;
    for i in groups.into_iter().flatten() {
        folds[next].push(i);
        next = (next + 1) % k;
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

/// A new order of `0..n` for epoch `epoch`: the Fisher–Yates shuffle of `0..n` by
/// `SplitMix64::stream(seed, epoch)`. The same `(n, seed, epoch)` always gives the same order,
/// on every platform; different epochs give unrelated orders.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    SplitMix64::stream(seed, epoch).shuffle(&mut order);
    order
}

/// Rejects unusable fractions.
fn check_spec(spec: &SplitSpec) -> Result<(), DataError> {
    for (name, f) in [("validation", spec.validation), ("test", spec.test)] {
        if !f.is_finite() || !(0.0..1.0).contains(&f) {
            return Err(DataError::InvalidSplitSpec {
                reason: format!("the {name} fraction {f} is not in [0, 1)"),
            });
        }
    }
    let sum = f64::from(spec.validation) + f64::from(spec.test);
    if sum >= 1.0 {
        return Err(DataError::InvalidSplitSpec {
            reason: format!(
                "the validation and test fractions sum to {sum}, leaving nothing for training"
            ),
        });
    }
    Ok(())
}

/// The parts that get samples, training first.
fn active_parts(spec: &SplitSpec) -> Vec<SplitPart> {
    let mut parts = vec![SplitPart::Train];
    if spec.validation > 0.0 {
        parts.push(SplitPart::Validation);
    }
    if spec.test > 0.0 {
        parts.push(SplitPart::Test);
    }
    parts
}

/// `round(n × fraction)`, at least 1 when the fraction is positive.
fn part_size(n: usize, fraction: f32) -> usize {
    if fraction > 0.0 {
        ((n as f64 * f64::from(fraction)).round() as usize).max(1)
    } else {
        0
    }
}

/// Shrinks the larger of two held-out counts (never below 1) until training keeps a sample.
///
/// Terminates with `a + b < n` whenever `n` exceeds the number of non-zero counts.
fn leave_one_for_training(n: usize, mut a: usize, mut b: usize) -> (usize, usize) {
    while a + b >= n {
        if a >= b && a > 1 {
            a -= 1;
        } else if b > 1 {
            b -= 1;
        } else if a > 1 {
            a -= 1;
        } else {
            break;
        }
    }
    (a, b)
}

/// Shares `total` out between groups of sizes `sizes` (summing to `n`) in proportion, by
/// largest remainder, ties to the lower index.
///
/// When `total > 0`, every non-empty group then gets at least one; the extra ones are taken
/// back, where possible, from the groups furthest above their exact share (keeping at least one
/// each), so the sum stays `total` unless there are more non-empty groups than `total`.
fn apportion(sizes: &[usize], n: usize, total: usize) -> Vec<usize> {
    if n == 0 || total == 0 {
        return vec![0; sizes.len()];
    }
    let (n128, total128) = (n as u128, total as u128);
    // Exact share of group c: shares[c] / n.
    let shares: Vec<u128> = sizes.iter().map(|&size| size as u128 * total128).collect();
    // `share / n <= total`, so it fits in usize.
    let mut counts: Vec<usize> = shares
        .iter()
        .map(|&share| (share / n128) as usize)
        .collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&x, &y| (shares[y] % n128).cmp(&(shares[x] % n128)).then(x.cmp(&y)));
    let mut left = total.saturating_sub(counts.iter().sum());
    for &c in &order {
        if left == 0 || shares[c].is_multiple_of(n128) {
            break;
        }
        counts[c] += 1;
        left -= 1;
    }

    for (count, &size) in counts.iter_mut().zip(sizes) {
        if size > 0 && *count == 0 {
            *count = 1;
        }
    }
    let mut sum: usize = counts.iter().sum();
    while sum > total {
        // The group with the largest excess `count - share / n`, in units of 1 / n.
        let excess = |c: usize| (counts[c] as u128 * n128) as i128 - shares[c] as i128;
        let Some(c) = (0..counts.len())
            .filter(|&c| counts[c] > 1)
            .max_by(|&x, &y| excess(x).cmp(&excess(y)).then(y.cmp(&x)))
        else {
            break;
        };
        counts[c] -= 1;
        sum -= 1;
    }
    counts
}

/// The stratified split (see [`split_indices`]).
fn stratified(
    data: &Dataset,
    labels: &[u32],
    class_names: &[String],
    seed: u64,
    n_val: usize,
    n_test: usize,
    parts: &[SplitPart],
) -> Result<SplitIndices, DataError> {
    let n_classes = labels
        .iter()
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0)
        .max(class_names.len());
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        members[l as usize].push(i);
    }
    let class_name = |c: usize| {
        class_names
            .get(c)
            .cloned()
            .unwrap_or_else(|| format!("class {c}"))
    };
    for (c, m) in members.iter().enumerate() {
        if !m.is_empty() && m.len() < parts.len() {
            return Err(DataError::EmptyClassInSplit {
                dataset: data.name.clone(),
                class: class_name(c),
                samples: m.len(),
                part: parts[m.len()],
                parts: parts.len(),
            });
        }
    }

    let sizes: Vec<usize> = members.iter().map(Vec::len).collect();
    let n = labels.len();
    let val_counts = apportion(&sizes, n, n_val);
    let test_counts = apportion(&sizes, n, n_test);

    let mut out = SplitIndices::default();
    for (c, mut m) in members.into_iter().enumerate() {
        if m.is_empty() {
            continue;
        }
        let (v, t) = leave_one_for_training(m.len(), val_counts[c], test_counts[c]);
        SplitMix64::stream(seed, STREAM_CLASS.wrapping_add(c as u64)).shuffle(&mut m);
        out.validation.extend_from_slice(&m[..v]);
        out.test.extend_from_slice(&m[v..v + t]);
        out.train.extend_from_slice(&m[v + t..]);
    }
    for (k, list) in [&mut out.train, &mut out.validation, &mut out.test]
        .into_iter()
        .enumerate()
    {
        SplitMix64::stream(seed, STREAM_PART.wrapping_add(k as u64)).shuffle(list);
    }
    Ok(out)
}
