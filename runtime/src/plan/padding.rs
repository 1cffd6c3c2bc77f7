//! Exact zero padding for XNOR convolutions. The packed im2col fills padded taps with zero
//! words, which read as -1 against every filter bit; a per-border-position correction turns the
//! popcount back into the sum over valid taps only (padded positions contribute 0, reference §1).
//!
//! With `S` the popcount of `a ^ w` over all taps, the true dot product is
//! `valid_taps * C - 2 * (S - pc_pad)`, where `pc_pad` counts the filter's +1 bits at the padded
//! taps. Output positions with the same set of padded taps share one class, and
//! `base[class][o] = valid_taps * C + 2 * pc_pad` is precomputed, so `dot = base - 2 * S`.

use super::Window;
use crate::bit_layout::{words_for, PANEL};

/// Per-class base values of the dot product; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddingCorrection {
    /// Class of each output row, `out_h` entries.
    row_class: Vec<u16>,
    /// Class of each output column, `out_w` entries.
    col_class: Vec<u16>,
    /// Number of column classes.
    col_classes: usize,
    /// `base[(row_class * col_classes + col_class) * out_channels + o]`.
    base: Vec<i32>,
    /// Output channels.
    out_channels: usize,
}

/// Which kernel offsets along one axis read real input, as a bit set, per output position.
fn valid_offsets(window: &Window, out_size: usize, in_size: usize) -> Vec<u32> {
    (0..out_size)
        .map(|out| {
            (0..window.kernel)
                .filter(|&k| window.source(out, k, in_size).is_some())
                .fold(0u32, |mask, k| mask | 1 << k)
        })
        .collect()
}

/// Distinct masks and the class index of each position.
fn classes(masks: &[u32]) -> (Vec<u32>, Vec<u16>) {
    let mut distinct: Vec<u32> = Vec::new();
    let class = masks
        .iter()
        .map(|mask| {
            let index = distinct.iter().position(|d| d == mask).unwrap_or_else(|| {
                distinct.push(*mask);
                distinct.len() - 1
            });
            index as u16
        })
        .collect();
    (distinct, class)
}

impl PaddingCorrection {
    /// Precomputes the correction of a conv from its packed filters (panel layout).
    pub fn new(window: &Window, filters: &[u64]) -> PaddingCorrection {
        let (row_masks, row_class) = classes(&valid_offsets(window, window.output.0, window.input.0));
        let (col_masks, col_class) = classes(&valid_offsets(window, window.output.1, window.input.1));
        let words = words_for(window.in_channels);
        let depth = window.taps() * words;
        let out_channels = window.out_channels;
        // +1 bits of filter `o` at tap `t`.
        let tap_ones = |o: usize, tap: usize| -> i32 {
            let (panel, lane) = (o / PANEL, o % PANEL);
            (0..words)
                .map(|word| filters[(panel * depth + tap * words + word) * PANEL + lane].count_ones() as i32)
                .sum()
        };
        let mut base = Vec::with_capacity(row_masks.len() * col_masks.len() * out_channels);
        for &rows in &row_masks {
            for &cols in &col_masks {
                let valid = (rows.count_ones() * cols.count_ones()) as i32;
                for o in 0..out_channels {
                    let padded_ones: i32 = (0..window.kernel)
                        .flat_map(|ky| (0..window.kernel).map(move |kx| (ky, kx)))
                        .filter(|&(ky, kx)| rows & (1 << ky) == 0 || cols & (1 << kx) == 0)
                        .map(|(ky, kx)| tap_ones(o, ky * window.kernel + kx))
                        .sum();
                    base.push(valid * window.in_channels as i32 + 2 * padded_ones);
                }
            }
        }
        PaddingCorrection { row_class, col_class, col_classes: col_masks.len(), base, out_channels }
    }

    /// The base values (one per output channel) at output position (`y`, `x`).
    pub fn base(&self, y: usize, x: usize) -> &[i32] {
        let class = usize::from(self.row_class[y]) * self.col_classes + usize::from(self.col_class[x]);
        &self.base[class * self.out_channels..][..self.out_channels]
    }
}
