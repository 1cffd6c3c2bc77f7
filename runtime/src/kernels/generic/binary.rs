//! The XNOR-popcount GEMM loop, written once over a 16-lane filter-panel row and instantiated per
//! ISA inside that ISA's `#[target_feature]` entry point (everything here is `#[inline(always)]`,
//! so it is compiled with the caller's features).

use crate::bit_layout::PANEL;

/// The [`PANEL`] filter words of one depth step, held in registers, with the per-lane popcount
/// counters that go with them.
pub(in crate::kernels) trait PanelRow: Copy {
    /// Per-lane popcount counters. They may be narrower than the u32 output, hence
    /// [`PanelRow::FLUSH_STEPS`].
    type Acc: Copy;

    /// The most depth steps an accumulator takes before it must be flushed to the output.
    const FLUSH_STEPS: usize;

    /// Loads the 16 words at `ptr`.
    ///
    /// # Safety
    /// `ptr` is valid for 16 u64 reads; the CPU supports the ISA.
    unsafe fn load(ptr: *const u64) -> Self;

    /// Counters at zero.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn zero() -> Self::Acc;

    /// Adds `popcount(a ^ row[lane])` to each lane of `acc`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn xor_popcount_add(acc: Self::Acc, a: u64, row: Self) -> Self::Acc;

    /// Writes the 16 counts to `out`.
    ///
    /// # Safety
    /// `out` is valid for 16 u32 writes; the CPU supports the ISA.
    unsafe fn store(acc: Self::Acc, out: *mut u32);

    /// Adds the 16 counts to `out`.
    ///
    /// # Safety
    /// `out` is valid for 16 u32 reads and writes; the CPU supports the ISA.
    unsafe fn accumulate(acc: Self::Acc, out: *mut u32);
}

/// [`crate::kernels::xnor_gemm`] with `MR` rows per register block.
///
/// # Safety
/// The lengths are those [`crate::kernels::xnor_gemm`] checks, `depth * 64 <= u32::MAX`, and the CPU
/// supports `R`'s ISA.
#[inline(always)]
pub(in crate::kernels) unsafe fn xnor_gemm<R: PanelRow, const MR: usize>(
    a: &[u64],
    rows: usize,
    depth: usize,
    panels: &[u64],
    panel_count: usize,
    out: &mut [u32],
) {
    debug_assert!(a.len() == rows * depth && panels.len() == panel_count * depth * PANEL);
    debug_assert!(out.len() == rows * panel_count * PANEL);
    let out_stride = panel_count * PANEL;
    let (a, out) = (a.as_ptr(), out.as_mut_ptr());
    // Panel-outer: one panel (depth * 128 bytes) stays in L1 while the rows stream past it.
    for p in 0..panel_count {
        // SAFETY: p < panel_count, so the panel's depth * PANEL words lie inside `panels`.
        let panel = unsafe { panels.as_ptr().add(p * depth * PANEL) };
        let mut r = 0;
        while r + MR <= rows {
            // SAFETY: rows r..r + MR lie inside `a` and `out`; the caller vouches for the ISA.
            unsafe {
                tile::<R, MR>(a.add(r * depth), depth, panel, out.add(r * out_stride + p * PANEL), out_stride)
            };
            r += MR;
        }
        while r < rows {
            // SAFETY: row r lies inside `a` and `out`; the caller vouches for the ISA.
            unsafe {
                tile::<R, 1>(a.add(r * depth), depth, panel, out.add(r * out_stride + p * PANEL), out_stride)
            };
            r += 1;
        }
    }
}

/// One register block: `MR` rows of `a` against one panel, `MR x PANEL` counts to `out`.
///
/// # Safety
/// `a` is valid for `MR` rows of `depth` words, `panel` for `depth * PANEL` words, `out` for `MR`
/// rows of `out_stride` counts whose first `PANEL` are written; `depth * 64 <= u32::MAX`; the CPU
/// supports `R`'s ISA.
#[inline(always)]
unsafe fn tile<R: PanelRow, const MR: usize>(
    a: *const u64,
    depth: usize,
    panel: *const u64,
    out: *mut u32,
    out_stride: usize,
) {
    let mut start = 0usize;
    loop {
        let end = depth.min(start.saturating_add(R::FLUSH_STEPS));
        // SAFETY: the caller vouches for the ISA.
        let mut acc = [unsafe { R::zero() }; MR];
        for l in start..end {
            // SAFETY: l < depth, so the PANEL words of step l lie inside the panel.
            let row = unsafe { R::load(panel.add(l * PANEL)) };
            for (i, acc) in acc.iter_mut().enumerate() {
                // SAFETY: i < MR and l < depth, so the word lies inside the block's rows.
                *acc = unsafe { R::xor_popcount_add(*acc, a.add(i * depth + l).read(), row) };
            }
        }
        for (i, acc) in acc.into_iter().enumerate() {
            // SAFETY: i < MR, so the PANEL counts at row i lie inside `out`.
            unsafe {
                let dst = out.add(i * out_stride);
                if start == 0 {
                    R::store(acc, dst);
                } else {
                    R::accumulate(acc, dst);
                }
            }
        }
        if end == depth {
            break;
        }
        start = end;
    }
}
