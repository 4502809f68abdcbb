//! A simulated NOR flash in memory, with power cuts: `N` bytes in erase pages of `PAGE` bytes,
//! written in 4-byte words. Like a real NOR flash, an erase sets every byte of a page to `0xff`
//! and a write can only clear bits (the stored byte becomes `old & new`). A write that would
//! need a bit to go from 0 back to 1 is refused ([`SimError::NotErased`]): the data would not
//! be what was written. Writing a word again with bits cleared is allowed, as on the STM32F4's
//! flash: after a torn write, sequential-storage rewrites a half-written page marker with zeros.
//!
//! [`SimFlash::cut_after`] arms a power cut: the `n`-th write step from then on (a word write or
//! a page erase) is torn — half the word written, half the page erased — and fails with
//! [`SimError::PowerCut`], and every operation fails after it until [`SimFlash::reboot`], as
//! if the chip had lost power. The contents stay, as a flash's do.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// What the simulated flash refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    /// Power was cut (see [`SimFlash::cut_after`]).
    PowerCut,
    /// A write that would need a bit to go from 0 to 1 (an erase first).
    NotErased,
    /// Outside the flash.
    OutOfBounds,
    /// Not aligned to a word (write) or a page (erase).
    NotAligned,
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            SimError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            SimError::NotAligned => NorFlashErrorKind::NotAligned,
            SimError::PowerCut | SimError::NotErased => NorFlashErrorKind::Other,
        }
    }
}

/// The simulated NOR flash (see the module docs).
#[derive(Debug, Clone)]
pub struct SimFlash<const N: usize, const PAGE: usize> {
    bytes: [u8; N],
    /// Write steps left before the power cut (`None`: no cut armed).
    cut_in: Option<u32>,
    /// Power is off (after a cut).
    dead: bool,
    /// Write steps (word writes and page erases) done so far.
    pub steps: u32,
}

impl<const N: usize, const PAGE: usize> Default for SimFlash<N, PAGE> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const PAGE: usize> SimFlash<N, PAGE> {
    /// An erased flash.
    pub const fn new() -> Self {
        SimFlash {
            bytes: [0xff; N],
            cut_in: None,
            dead: false,
            steps: 0,
        }
    }

    /// Cuts the power during the `n`-th write step from now (`n ≥ 1`).
    pub fn cut_after(&mut self, n: u32) {
        self.cut_in = Some(n);
    }

    /// Power back on: operations work again, the contents are what the cut left.
    pub fn reboot(&mut self) {
        self.dead = false;
        self.cut_in = None;
    }

    /// Whether a cut happened and the flash is waiting for [`SimFlash::reboot`].
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// One write step: `Err(PowerCut)` (after tearing it with `tear`) if this is the cut one.
    fn step(&mut self, tear: impl FnOnce(&mut [u8; N])) -> Result<(), SimError> {
        if self.dead {
            return Err(SimError::PowerCut);
        }
        self.steps += 1;
        if let Some(n) = self.cut_in.as_mut() {
            *n -= 1;
            if *n == 0 {
                tear(&mut self.bytes);
                self.dead = true;
                return Err(SimError::PowerCut);
            }
        }
        Ok(())
    }
}

impl<const N: usize, const PAGE: usize> ErrorType for SimFlash<N, PAGE> {
    type Error = SimError;
}

impl<const N: usize, const PAGE: usize> ReadNorFlash for SimFlash<N, PAGE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        if self.dead {
            return Err(SimError::PowerCut);
        }
        let start = offset as usize;
        let src = self
            .bytes
            .get(start..start + bytes.len())
            .ok_or(SimError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        N
    }
}

impl<const N: usize, const PAGE: usize> NorFlash for SimFlash<N, PAGE> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(PAGE) || !to.is_multiple_of(PAGE) || from > to {
            return Err(SimError::NotAligned);
        }
        if to > N {
            return Err(SimError::OutOfBounds);
        }
        for page in (from..to).step_by(PAGE) {
            // A torn erase leaves the first half of the page erased, the rest as it was.
            self.step(|b| b[page..page + PAGE / 2].fill(0xff))?;
            self.bytes[page..page + PAGE].fill(0xff);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        let start = offset as usize;
        if !start.is_multiple_of(4) || !bytes.len().is_multiple_of(4) {
            return Err(SimError::NotAligned);
        }
        if start + bytes.len() > N {
            return Err(SimError::OutOfBounds);
        }
        for (k, word) in bytes.chunks_exact(4).enumerate() {
            let at = start + 4 * k;
            if (0..4).any(|i| self.bytes[at + i] & word[i] != word[i]) {
                return Err(SimError::NotErased);
            }
            // A torn write stores the first half of the word.
            self.step(|b| {
                for i in 0..2 {
                    b[at + i] &= word[i];
                }
            })?;
            for i in 0..4 {
                self.bytes[at + i] &= word[i];
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nor_semantics_and_torn_writes_and_erases() {
        let mut f = SimFlash::<64, 16>::new();
        f.write(0, &[0x0f, 0xf0, 0x12, 0x34]).unwrap();
        let mut b = [0; 4];
        f.read(0, &mut b).unwrap();
        assert_eq!(b, [0x0f, 0xf0, 0x12, 0x34]);
        assert_eq!(f.write(0, &[0xff; 4]), Err(SimError::NotErased));
        f.write(0, &[0x0f, 0x00, 0x12, 0x30]).unwrap(); // clears bits only
        assert_eq!(f.write(2, &[0; 4]), Err(SimError::NotAligned));
        f.cut_after(2);
        assert_eq!(
            f.write(4, &[1, 2, 3, 4, 5, 6, 7, 8]),
            Err(SimError::PowerCut)
        );
        assert!(f.is_dead());
        assert_eq!(f.read(0, &mut b), Err(SimError::PowerCut));
        f.reboot();
        let mut c = [0; 8];
        f.read(4, &mut c).unwrap();
        assert_eq!(
            c,
            [1, 2, 3, 4, 5, 6, 0xff, 0xff],
            "second word torn in half"
        );
        f.cut_after(1);
        assert_eq!(f.erase(0, 16), Err(SimError::PowerCut));
        f.reboot();
        f.read(0, &mut c).unwrap();
        assert_eq!(c, [0xff; 8], "first half of the page erased");
        f.read(8, &mut b).unwrap();
        assert_eq!(b, [5, 6, 0xff, 0xff], "second half of the page as it was");
        assert_eq!(f.steps, 5);
    }
}
