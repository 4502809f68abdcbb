//! Training that survives a reset: checkpoints of the weights, the optimizer's slots and step
//! count and the epoch counter in NOR flash (feature `persist`).
//!
//! Storage is [`sequential-storage`](https://docs.rs/sequential-storage)'s key-value map over any
//! [`embedded_storage::nor_flash::NorFlash`] (the STM32F411's flash driver on the Black Pill, a
//! simulated NOR in RAM under QEMU or on the host): it writes pages cyclically (wear
//! levelling), protects every item with CRCs and stays consistent whatever write a power cut
//! interrupts. A checkpoint is **one** item (key [`KEY`]), so it is atomic: after a cut, the
//! map holds either the new checkpoint or the previous one, never a mix of two epochs.
//!
//! A checkpoint is a list of parameter sets of one type `P: Params` ([`ParamSets`]) — the
//! weights, then the optimizer's slots (Adam's `m` and `v`; none for plain SGD) — plus the epoch
//! counter and the optimizer's step count: generic over the core's [`Params`], so it serves any
//! model the core trains. Bytes (little endian): `MFCK`, format version 1, epoch, step count, number of sets,
//! scalars per set, then every set's scalars as `f32` bits. [`Checkpoints::load`] refuses a
//! checkpoint of another shape ([`PersistError::Mismatch`]) instead of loading it.
//!
//! Resuming is exact: the next epoch runs from the same weights, slots and step count as it
//! would have without the reset, so every later epoch has the same bits (tests below: a power
//! cut after every single flash word write, on a simulated NOR flash).
//!
//! ```
//! use microfit_firmware::persist::{Checkpoints, Progress, buffer_len};
//! use microfit_firmware::persist::sim::SimFlash;
//! use microfit_core::layer::dense::DenseParams;
//! use microfit_core::params::{Params, ZeroParams};
//!
//! // Weights and one optimizer slot (an array of parameter sets is a `ParamSets`).
//! let mut state = [DenseParams::<2, 3>::zeroed(), DenseParams::<2, 3>::zeroed()];
//! state[0].tensor_mut(0)[0] = 0.5;
//! let mut buf = [0u8; buffer_len(2, 9)];
//! let mut flash = SimFlash::<8192, 2048>::new();
//! let mut store = Checkpoints::new(&mut flash, 0..8192).unwrap();
//! store.save(&mut buf, Progress { epoch: 3, iterations: 45 }, &state).unwrap();
//!
//! let mut restored = [DenseParams::<2, 3>::zeroed(), DenseParams::<2, 3>::zeroed()];
//! let got = store.load(&mut buf, &mut restored).unwrap();
//! assert_eq!(got, Some(Progress { epoch: 3, iterations: 45 }));
//! assert_eq!(restored, state);
//! ```

use core::ops::Range;

use embassy_embedded_hal::adapter::BlockingAsync;
use embassy_futures::block_on;
use embedded_storage::nor_flash::NorFlash;
use microfit_core::params::Params;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage, SerializationError, Value};

/// The map key of the checkpoint.
pub const KEY: u8 = 0;

/// `MFCK` read as a little-endian `u32`.
const MAGIC: u32 = u32::from_le_bytes(*b"MFCK");
/// Format version of the checkpoint bytes.
const VERSION: u32 = 1;
/// Header words: magic, version, epoch, step count, sets, scalars per set.
const HEADER: usize = 6 * 4;

/// How far training got: the epochs finished and the optimizer's step count after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Progress {
    /// Epochs finished.
    pub epoch: u32,
    /// The optimizer's step count (Keras `optimizer.iterations`).
    pub iterations: u32,
}

/// What went wrong with the flash or a checkpoint.
#[derive(Debug, PartialEq)]
pub enum PersistError<E> {
    /// The flash driver or sequential-storage failed (the flash error inside; a power cut
    /// during a write shows up here).
    Storage(sequential_storage::Error<E>),
    /// The flash range does not suit sequential-storage (not page-aligned or fewer than two
    /// pages).
    Config(sequential_storage::map::MapConfigError),
    /// The stored item is not a checkpoint of this format (magic or version).
    Corrupt,
    /// The checkpoint is of another model: `(sets, scalars per set)` stored vs expected.
    Mismatch {
        /// `(sets, scalars)` in flash.
        stored: (u32, u32),
        /// `(sets, scalars)` of the parameters given.
        expected: (u32, u32),
    },
    /// The buffer is smaller than [`buffer_len`] of the checkpoint.
    BufferTooSmall,
}

#[cfg(target_os = "none")]
impl<E> defmt::Format for PersistError<E> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            PersistError::Storage(e) => defmt::write!(f, "storage: {}", StorageError(e)),
            PersistError::Config(_) => defmt::write!(f, "flash range unsuitable"),
            PersistError::Corrupt => defmt::write!(f, "not a checkpoint"),
            PersistError::Mismatch { stored, expected } => defmt::write!(
                f,
                "checkpoint of another model: {=u32}x{=u32} stored, {=u32}x{=u32} expected",
                stored.0,
                stored.1,
                expected.0,
                expected.1
            ),
            PersistError::BufferTooSmall => defmt::write!(f, "buffer too small"),
        }
    }
}

/// sequential-storage's error without its flash error (which need not be `defmt::Format`).
#[cfg(target_os = "none")]
struct StorageError<'a, E>(&'a sequential_storage::Error<E>);

#[cfg(target_os = "none")]
impl<E> defmt::Format for StorageError<'_, E> {
    fn format(&self, f: defmt::Formatter<'_>) {
        use sequential_storage::Error as S;
        let what = match self.0 {
            S::Storage { .. } => "flash driver error",
            S::FullStorage => "full",
            S::Corrupted { .. } => "corrupted",
            S::LogicBug { .. } => "logic bug",
            S::BufferTooBig => "buffer too big",
            S::BufferTooSmall(_) => "buffer too small",
            S::SerializationError(_) => "serialization",
            S::ItemTooBig => "item too big",
            _ => "other",
        };
        defmt::write!(f, "{=str}", what)
    }
}

/// What a checkpoint holds besides [`Progress`]: parameter sets of one type, all of one length
/// — the weights first, then the optimizer's slots. Written and read one set at a time, so an
/// implementation can hand out the optimizer's slots one after the other (`Adam::m_mut`, then
/// `Adam::v_mut`).
pub trait ParamSets {
    /// The parameter type.
    type P: Params;
    /// Number of sets.
    fn sets(&self) -> usize;
    /// Set `i < sets()`.
    fn set(&self, i: usize) -> &Self::P;
    /// Set `i < sets()`, mutable.
    fn set_mut(&mut self, i: usize) -> &mut Self::P;
}

impl<P: Params, const K: usize> ParamSets for [P; K] {
    type P = P;
    fn sets(&self) -> usize {
        K
    }
    fn set(&self, i: usize) -> &P {
        &self[i]
    }
    fn set_mut(&mut self, i: usize) -> &mut P {
        &mut self[i]
    }
}

/// Bytes of the buffer [`Checkpoints::save`] and [`Checkpoints::load`] need for `sets`
/// parameter sets of `scalars` values each: the key, the header and the values, rounded up to
/// 32 bytes (the largest flash word sequential-storage supports).
pub const fn buffer_len(sets: usize, scalars: usize) -> usize {
    (1 + HEADER + 4 * sets * scalars).div_ceil(32) * 32
}

/// A checkpoint being written: serialized straight from the parameter sets into
/// sequential-storage's buffer.
struct Snapshot<'p, S> {
    progress: Progress,
    sets: &'p S,
}

impl<S: ParamSets> Value<'_> for Snapshot<'_, S> {
    fn serialize_into(&self, buffer: &mut [u8]) -> Result<usize, SerializationError> {
        let n = self.sets.sets();
        let scalars = if n == 0 { 0 } else { self.sets.set(0).len() };
        let len = HEADER + 4 * n * scalars;
        let out = buffer
            .get_mut(..len)
            .ok_or(SerializationError::BufferTooSmall)?;
        let header = [
            MAGIC,
            VERSION,
            self.progress.epoch,
            self.progress.iterations,
            n as u32,
            scalars as u32,
        ];
        let (head, mut body) = out.split_at_mut(HEADER);
        for (chunk, word) in head.chunks_exact_mut(4).zip(header) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        for i in 0..n {
            let set = self.sets.set(i);
            if set.len() != scalars {
                return Err(SerializationError::InvalidData);
            }
            for t in 0..set.tensor_count() {
                for &x in set.tensor(t) {
                    let (word, rest) = body.split_at_mut(4);
                    word.copy_from_slice(&x.to_bits().to_le_bytes());
                    body = rest;
                }
            }
        }
        Ok(len)
    }

    fn deserialize_from(_buffer: &[u8]) -> Result<(Self, usize), SerializationError> {
        // Checkpoints are read back as bytes (`Checkpoints::load`), never as a `Snapshot`.
        Err(SerializationError::InvalidFormat)
    }
}

/// The flash type sequential-storage works on: the blocking driver behind its async API.
type Storage<F> = MapStorage<u8, BlockingAsync<F>, Cache<Uncached, Uncached, Uncached, u8>>;

/// Checkpoints in a range of a NOR flash (see the module docs). `F` may be a `&mut` to the
/// driver (`embedded-storage` implements `NorFlash` for it), to keep the driver.
pub struct Checkpoints<F: NorFlash> {
    map: Storage<F>,
}

impl<F: NorFlash> core::fmt::Debug for Checkpoints<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Checkpoints")
    }
}

impl<F: NorFlash> Checkpoints<F> {
    /// Checkpoints in `range` of `flash` (byte offsets; whole erase pages, at least two). The
    /// range may hold earlier checkpoints (they are found by [`Checkpoints::load`]) or be
    /// erased.
    ///
    /// # Errors
    /// [`PersistError::Config`] for a range sequential-storage cannot use.
    pub fn new(flash: F, range: Range<u32>) -> Result<Self, PersistError<F::Error>> {
        let config = MapConfig::try_new(range).map_err(PersistError::Config)?;
        Ok(Checkpoints {
            map: MapStorage::new(BlockingAsync::new(flash), config, Cache::new_uncached()),
        })
    }

    /// Stores a checkpoint: `progress` and the parameter sets `sets` (the weights, then the
    /// optimizer's slots), all of the same length. It replaces the previous checkpoint
    /// atomically. `buffer` must hold [`buffer_len`] bytes.
    ///
    /// # Errors
    /// Flash errors (a power cut), or sets of different lengths.
    pub fn save<S: ParamSets>(
        &mut self,
        buffer: &mut [u8],
        progress: Progress,
        sets: &S,
    ) -> Result<(), PersistError<F::Error>> {
        let snapshot = Snapshot { progress, sets };
        block_on(self.map.store_item(buffer, &KEY, &snapshot)).map_err(PersistError::Storage)
    }

    /// Loads the last checkpoint into `sets` (the same order and types as saved): `None` when
    /// there is none, and then `sets` are untouched.
    ///
    /// # Errors
    /// Flash errors, a damaged item ([`PersistError::Corrupt`]) or a checkpoint of another
    /// shape ([`PersistError::Mismatch`]); `sets` are untouched then too (the shape is checked
    /// before anything is copied).
    pub fn load<S: ParamSets>(
        &mut self,
        buffer: &mut [u8],
        sets: &mut S,
    ) -> Result<Option<Progress>, PersistError<F::Error>> {
        let found =
            block_on(self.map.fetch_item::<&[u8]>(buffer, &KEY)).map_err(PersistError::Storage)?;
        let Some(bytes) = found else {
            return Ok(None);
        };
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                bytes.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        let header: [Option<u32>; 6] = core::array::from_fn(word);
        let [
            Some(MAGIC),
            Some(VERSION),
            Some(epoch),
            Some(iterations),
            Some(n_sets),
            Some(scalars),
        ] = header
        else {
            return Err(PersistError::Corrupt);
        };
        let k = sets.sets();
        let expected = (k as u32, if k == 0 { 0 } else { sets.set(0).len() as u32 });
        let body_len = 4 * n_sets as usize * scalars as usize;
        if (n_sets, scalars) != expected
            || (0..k).any(|i| sets.set(i).len() as u32 != scalars)
            || bytes.len() != HEADER + body_len
        {
            return Err(PersistError::Mismatch {
                stored: (n_sets, scalars),
                expected,
            });
        }
        let mut body = bytes.get(HEADER..).unwrap_or(&[]).chunks_exact(4);
        for i in 0..k {
            let set = sets.set_mut(i);
            for t in 0..set.tensor_count() {
                for x in set.tensor_mut(t) {
                    let w = body.next().ok_or(PersistError::Corrupt)?;
                    *x = f32::from_bits(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
                }
            }
        }
        Ok(Some(Progress { epoch, iterations }))
    }

    /// Erases the whole range (every checkpoint).
    ///
    /// # Errors
    /// Flash errors.
    pub fn erase_all(&mut self) -> Result<(), PersistError<F::Error>> {
        block_on(self.map.erase_all()).map_err(PersistError::Storage)
    }
}

pub mod sim;
