//! The float conv GEMM loop, written once over 16 f32 lanes and instantiated per ISA inside that
//! ISA's `#[target_feature]` entry point (everything here is `#[inline(always)]`, so it is
//! compiled with the caller's features).

use crate::bit_layout::PANEL;
use crate::kernels::float_conv::{ConvGemm, Epilogue, PADDING, PANEL_GROUP};

/// Terms summed in one chain before the chain is added to the output (see
/// [`crate::kernels::float_conv`]'s numerics).
const DEPTH_BLOCK: usize = 256;

/// 16 f32 lanes held in registers: one panel row, or the sums of one output pixel against it.
pub(in crate::kernels) trait Lanes: Copy {
    /// All lanes 0.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn zero() -> Self;

    /// Loads the 16 floats at `ptr`.
    ///
    /// # Safety
    /// `ptr` is valid for 16 f32 reads; the CPU supports the ISA.
    unsafe fn load(ptr: *const f32) -> Self;

    /// `a + b` per lane.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn add(a: Self, b: Self) -> Self;

    /// `a * b` per lane.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn mul(a: Self, b: Self) -> Self;

    /// `max(a, 0)` per lane (0 for NaN).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn relu(a: Self) -> Self;

    /// `acc + x * w` per lane, fused (one rounding).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn mul_add(x: f32, w: Self, acc: Self) -> Self;

    /// Writes the 16 lanes to `out`.
    ///
    /// # Safety
    /// `out` is valid for 16 f32 writes; the CPU supports the ISA.
    unsafe fn store(self, out: *mut f32);
}

/// Input pixels at least this wide (in floats) are packed before the GEMM; narrower ones are
/// read in place. A register block reads `MR x taps` pixels side by side: with a pixel stride of
/// 2 KiB or more they fall into a few L1 sets and evict each other, which packing avoids at the
/// cost of one copy (too dear for the narrow early layers).
const PACK_MIN_CHANNELS: usize = 512;

/// [`crate::kernels::float_conv::conv_gemm`] with `MR` rows and `NP` panels per register block; `packed`
/// is scratch for the packed rows.
///
/// # Safety
/// `gemm` and `out` passed [`crate::kernels::float_conv::conv_gemm`]'s checks; `NP` divides
/// [`PANEL_GROUP`]; the CPU supports `L`'s ISA.
#[inline(always)]
pub(in crate::kernels) unsafe fn conv_gemm<L: Lanes, const MR: usize, const NP: usize>(
    gemm: &ConvGemm,
    packed: &mut Vec<f32>,
    out: &mut [f32],
) {
    debug_assert!(PANEL_GROUP.is_multiple_of(NP));
    let (taps, depth) = (gemm.taps, gemm.taps * gemm.channels);
    let rows = gemm.sources.len() / taps;
    let pack = gemm.channels >= PACK_MIN_CHANNELS;
    if pack {
        pack_rows::<MR>(gemm, packed);
    }
    let zeros = vec![0.0; gemm.channels];
    let mut pixels = vec![[zeros.as_ptr(); MR]; taps];
    let mut block = [[[0.0f32; PANEL]; NP]; MR];
    // Panel-outer: the block's panels stay in cache while the rows stream past them.
    for first_panel in (0..gemm.out_channels.div_ceil(PANEL)).step_by(NP) {
        let first_out = first_panel * PANEL;
        let width = (gemm.out_channels - first_out).min(NP * PANEL);
        // SAFETY: the panel count is a multiple of PANEL_GROUP, hence of NP, so panels
        // first_panel..first_panel + NP are inside `panels`, in one group.
        let panels = unsafe {
            let group = first_panel / PANEL_GROUP * PANEL_GROUP;
            gemm.panels.as_ptr().add(group * depth * PANEL + (first_panel - group) * PANEL)
        };
        for first_row in (0..rows).step_by(MR) {
            let valid = (rows - first_row).min(MR);
            // SAFETY: a packed block holds depth * MR floats; each pixel pointer is a checked
            // source or the zeros, `channels` floats; forwarded from the caller otherwise.
            unsafe {
                if pack {
                    let rows = PackedRows::<MR>(packed.as_ptr().add(first_row * depth));
                    tile::<L, MR, NP>(gemm, &rows, panels, &mut block);
                } else {
                    point_at_pixels(gemm, first_row, valid, zeros.as_ptr(), &mut pixels);
                    tile::<L, MR, NP>(gemm, &PixelRows(&pixels), panels, &mut block);
                }
            }
            for (r, block) in block.iter_mut().enumerate().take(valid) {
                let dst = &mut out[(first_row + r) * gemm.out_channels + first_out..][..width];
                for ((dst, block), p) in dst.chunks_mut(PANEL).zip(block).zip(first_panel..) {
                    // SAFETY: forwarded from the caller, who vouches for the ISA.
                    unsafe { finish::<L>(&gemm.epilogue, p * PANEL, block) };
                    dst.copy_from_slice(&block[..dst.len()]);
                }
            }
        }
    }
}

/// The input of a register block's rows at depth step `k = c * taps + tap`.
trait BlockRows<const MR: usize> {
    /// Row `r`'s input channel `c` at `tap`.
    ///
    /// # Safety
    /// `c < channels`, `tap < taps`, `k = c * taps + tap`, `r < MR`.
    unsafe fn value(&self, k: usize, c: usize, tap: usize, r: usize) -> f32;
}

/// Rows packed by [`pack_rows`]: `MR` values per depth step, side by side.
struct PackedRows<const MR: usize>(*const f32);

impl<const MR: usize> BlockRows<MR> for PackedRows<MR> {
    #[inline(always)]
    unsafe fn value(&self, k: usize, _: usize, _: usize, r: usize) -> f32 {
        // SAFETY: the block holds depth * MR floats and k < depth, r < MR.
        unsafe { self.0.add(k * MR + r).read() }
    }
}

/// Rows read in place: per tap, the `MR` rows' pixel pointers.
struct PixelRows<'a, const MR: usize>(&'a [[*const f32; MR]]);

impl<const MR: usize> BlockRows<MR> for PixelRows<'_, MR> {
    #[inline(always)]
    unsafe fn value(&self, _: usize, c: usize, tap: usize, r: usize) -> f32 {
        // SAFETY: tap < taps (the slice's length) and every pointer holds `channels` floats.
        unsafe { self.0.get_unchecked(tap)[r].add(c).read() }
    }
}

/// Points `pixels[tap][r]` at the input of row `first_row + r` at `tap`, or at `zeros` for a
/// padded tap or a row past `valid`.
///
/// # Safety
/// The sources passed [`crate::kernels::float_conv::conv_gemm`]'s checks.
unsafe fn point_at_pixels<const MR: usize>(
    gemm: &ConvGemm,
    first_row: usize,
    valid: usize,
    zeros: *const f32,
    pixels: &mut [[*const f32; MR]],
) {
    for (tap, pixels) in pixels.iter_mut().enumerate() {
        *pixels = std::array::from_fn(|r| match gemm.sources.get((first_row + r) * gemm.taps + tap) {
            // SAFETY: conv_gemm checked that source + channels <= input.len().
            Some(&source) if r < valid && source != PADDING => unsafe { gemm.input.as_ptr().add(source) },
            _ => zeros,
        });
    }
}

/// Gathers the rows' input into blocks of `MR` rows, `depth x MR` floats each, interleaved so
/// that the `MR` values of one `(c, tap)` step are adjacent; padded taps and the rows that fill
/// the last block are 0.
fn pack_rows<const MR: usize>(gemm: &ConvGemm, packed: &mut Vec<f32>) {
    let (taps, channels) = (gemm.taps, gemm.channels);
    let block_len = MR * taps * channels;
    let rows = gemm.sources.len() / taps;
    packed.clear();
    packed.resize(rows.div_ceil(MR) * block_len, 0.0);
    for (block, sources) in packed.chunks_exact_mut(block_len).zip(gemm.sources.chunks(MR * taps)) {
        for (r, sources) in sources.chunks_exact(taps).enumerate() {
            for (tap, &source) in sources.iter().enumerate().filter(|&(_, &s)| s != PADDING) {
                let pixel = &gemm.input[source..][..channels];
                for (dst, &x) in block[tap * MR + r..].iter_mut().step_by(taps * MR).zip(pixel) {
                    *dst = x;
                }
            }
        }
    }
}

/// One register block: `MR` rows against `NP` panels from `panels`, into `block[r][p]`.
///
/// # Safety
/// `rows` holds `MR` rows of the GEMM's depth and `panels` points at the first of `NP` panels of
/// one group; the CPU supports `L`'s ISA.
#[inline(always)]
unsafe fn tile<L: Lanes, const MR: usize, const NP: usize>(
    gemm: &ConvGemm,
    rows: &impl BlockRows<MR>,
    panels: *const f32,
    block: &mut [[[f32; PANEL]; NP]; MR],
) {
    // SAFETY: the caller vouches for the ISA.
    let mut acc = [[unsafe { L::zero() }; NP]; MR];
    let (mut k, mut left, mut first_run) = (0, DEPTH_BLOCK, true);
    for c in 0..gemm.channels {
        for tap in 0..gemm.taps {
            // SAFETY: k = c * taps + tap < depth: inside each panel and the rows.
            unsafe {
                let w: [L; NP] = std::array::from_fn(|p| L::load(panels.add((k * PANEL_GROUP + p) * PANEL)));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = rows.value(k, c, tap, r);
                    for (acc, &w) in acc.iter_mut().zip(&w) {
                        *acc = L::mul_add(x, w, *acc);
                    }
                }
            }
            k += 1;
            left -= 1;
            if left == 0 {
                // SAFETY: the caller vouches for the ISA.
                unsafe { flush(&mut acc, block, first_run) };
                (left, first_run) = (DEPTH_BLOCK, false);
            }
        }
    }
    if left != DEPTH_BLOCK || first_run {
        // SAFETY: the caller vouches for the ISA.
        unsafe { flush(&mut acc, block, first_run) };
    }
}

/// Applies the epilogue to the 16 sums of outputs `first_out..` in `lanes`, in place.
///
/// # Safety
/// `first_out` is below the length of every epilogue parameter; the CPU supports `L`'s ISA.
#[inline(always)]
unsafe fn finish<L: Lanes>(epilogue: &Epilogue, first_out: usize, lanes: &mut [f32; PANEL]) {
    // SAFETY: as the caller vouches.
    unsafe {
        let mut y = L::load(lanes.as_ptr());
        if let Some(bias) = epilogue.bias {
            y = L::add(y, parameter_lanes(bias, first_out));
        }
        if let Some((scale, shift)) = epilogue.affine {
            let scaled = L::mul(y, parameter_lanes(scale, first_out));
            y = L::add(scaled, parameter_lanes(shift, first_out));
        }
        if epilogue.relu {
            y = L::relu(y);
        }
        y.store(lanes.as_mut_ptr());
    }
}

/// The 16 values of a per-output parameter from output `first_out` on; past its end (the last
/// panel's unused lanes, which are never written out) they are 0.
///
/// # Safety
/// The CPU supports `L`'s ISA.
#[inline(always)]
unsafe fn parameter_lanes<L: Lanes>(values: &[f32], first_out: usize) -> L {
    let values = &values[first_out..];
    // SAFETY: each load reads 16 floats of a slice at least that long; the caller vouches for
    // the ISA.
    unsafe {
        if values.len() >= PANEL {
            L::load(values.as_ptr())
        } else {
            let mut lanes = [0.0; PANEL];
            lanes[..values.len()].copy_from_slice(values);
            L::load(lanes.as_ptr())
        }
    }
}

/// Adds a run's sums to `block` (or stores them, for the first run) and zeroes them.
///
/// # Safety
/// The CPU supports `L`'s ISA.
#[inline(always)]
unsafe fn flush<L: Lanes, const MR: usize, const NP: usize>(
    acc: &mut [[L; NP]; MR],
    block: &mut [[[f32; PANEL]; NP]; MR],
    first_run: bool,
) {
    for (acc, block) in acc.iter_mut().zip(block.iter_mut()) {
        for (acc, block) in acc.iter_mut().zip(block.iter_mut()) {
            // SAFETY: each block entry holds PANEL floats; the caller vouches for the ISA.
            unsafe {
                let sum = if first_run { *acc } else { L::add(*acc, L::load(block.as_ptr())) };
                sum.store(block.as_mut_ptr());
                *acc = L::zero();
            }
        }
    }
}
