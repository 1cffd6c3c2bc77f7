//! The bit layout of binary activations and filters, the one definition that the format, the
//! CPU kernels, the GPU shaders and the exporter all read.
//!
//! Activations and filters are packed along channels into u64 words, LSB first: channel `c` is
//! bit `c % 64` of word `c / 64`. Bit 1 means +1, bit 0 means -1 (the project's sign:
//! `x >= 0 -> +1`, reference §1). Padding bits (channels `>= C`) are 0 in activations and filters
//! alike, so they never count in `popcount(a ^ w)` and a dot product over `n` valid ±1 pairs is
//! `n - 2 * popcount`. A pixel takes [`words_for`]`(C)` words.
//!
//! Filters are stored in panels of [`PANEL`] output channels. For a conv with `O` outputs, `C`
//! inputs and kernel `K` (`taps = K * K`, `tap = ky * K + kx`, `W = words_for(C)`,
//! `depth = taps * W`), word `((panel * depth) + (tap * W + word)) * PANEL + lane` holds input
//! channels `word * 64 ..` of output channel `panel * PANEL + lane` at that tap
//! ([`PanelLayout::position`]). Lanes past `O` are zero. This puts the 16 lanes of one depth step
//! side by side, which is one 1024-bit vector row (a GPU reads the words as u32 pairs).

/// Channels per packed word.
pub const WORD_BITS: usize = 64;

/// Output channels per filter panel: the lanes of one GEMM column block.
pub const PANEL: usize = 16;

/// Packed u64 words per pixel for `channels` channels: `ceil(channels / 64)`.
pub const fn words_for(channels: usize) -> usize {
    channels.div_ceil(WORD_BITS)
}

/// u64 words of a packed filter tensor: `panels * taps * words_for(in_channels) * PANEL` with
/// `panels = ceil(out_channels / PANEL)` and `taps = kernel * kernel`; `None` if that overflows
/// `usize` (sizes read from a file must not wrap).
pub fn filter_words(out_channels: usize, in_channels: usize, kernel: usize) -> Option<usize> {
    out_channels
        .div_ceil(PANEL)
        .checked_mul(kernel.checked_mul(kernel)?)?
        .checked_mul(words_for(in_channels))?
        .checked_mul(PANEL)
}

/// The first word of packed filters (panel layout, `in_channels` inputs) with a bit set beyond
/// the last channel. Those bits must be 0: they would count in every popcount, and no
/// correction removes them.
pub fn first_nonzero_padding(filters: &[u64], in_channels: usize) -> Option<usize> {
    let (words, used) = (words_for(in_channels), in_channels % WORD_BITS);
    if used == 0 {
        return None;
    }
    let padding = !((1u64 << used) - 1);
    filters.iter().enumerate().position(|(i, &word)| (i / PANEL) % words == words - 1 && word & padding != 0)
}

/// Packs a PyTorch OIHW float weight tensor into the panel layout (see the module docs): the bit of
/// output `o`, input `c` and tap `ky * kernel + kx` is set iff `weight(o, c, ky, kx) >= 0` (NaN
/// packs as -1).
///
/// # Panics
/// If `weights.len() != out_channels * in_channels * kernel * kernel` or the packed size
/// overflows `usize`.
pub fn pack_filters(weights: &[f32], out_channels: usize, in_channels: usize, kernel: usize) -> Vec<u64> {
    let taps = kernel.checked_mul(kernel).expect("kernel * kernel overflows usize");
    let expected = out_channels.checked_mul(in_channels).and_then(|n| n.checked_mul(taps));
    assert_eq!(
        Some(weights.len()),
        expected,
        "pack_filters: weights must be OIHW {out_channels}x{in_channels}x{kernel}x{kernel}"
    );
    let total = filter_words(out_channels, in_channels, kernel).expect("packed filter size overflows usize");
    let mut packed = vec![0u64; total];
    let layout = PanelLayout::new(in_channels, taps);
    for (i, _) in weights.iter().enumerate().filter(|(_, &w)| w >= 0.0) {
        let (word, bit) = layout.position(i);
        packed[word] |= bit;
    }
    packed
}

/// u64 words of a bit-dense filter tensor: `ceil(O * C * K * K / 64)`, or `None` on overflow.
pub fn dense_filter_words(out_channels: usize, in_channels: usize, kernel: usize) -> Option<usize> {
    let bits = out_channels.checked_mul(in_channels)?.checked_mul(kernel.checked_mul(kernel)?)?;
    Some(bits.div_ceil(WORD_BITS))
}

/// Filters in the panel layout re-laid out bit-dense: bit `i` (LSB first, word `i / 64`) is the
/// sign of OIHW element `i`, with no padding between channels; the bits after the last element
/// are 0. The compact `.bnas` storage uses it (no word bits wasted when `C % 64 != 0`).
pub fn dense_from_panels(panels: &[u64], out_channels: usize, in_channels: usize, kernel: usize) -> Vec<u64> {
    let words =
        dense_filter_words(out_channels, in_channels, kernel).expect("dense filter size overflows usize");
    let layout = PanelLayout::new(in_channels, kernel * kernel);
    let mut dense = vec![0u64; words];
    for i in 0..out_channels * in_channels * kernel * kernel {
        let (word, bit) = layout.position(i);
        if panels.get(word).is_some_and(|&w| w & bit != 0) {
            dense[i / WORD_BITS] |= 1 << (i % WORD_BITS);
        }
    }
    dense
}

/// The inverse of [`dense_from_panels`]: bit-dense OIHW signs into the panel layout. Bits of
/// `dense` after the last element are ignored.
pub fn panels_from_dense(dense: &[u64], out_channels: usize, in_channels: usize, kernel: usize) -> Vec<u64> {
    let total = filter_words(out_channels, in_channels, kernel).expect("packed filter size overflows usize");
    let layout = PanelLayout::new(in_channels, kernel * kernel);
    let mut panels = vec![0u64; total];
    for i in 0..out_channels * in_channels * kernel * kernel {
        if dense.get(i / WORD_BITS).is_some_and(|&w| w >> (i % WORD_BITS) & 1 == 1) {
            let (word, bit) = layout.position(i);
            panels[word] |= bit;
        }
    }
    panels
}

/// Where each OIHW element of a conv's filters lives in the panel layout (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanelLayout {
    in_channels: usize,
    taps: usize,
    words: usize,
}

impl PanelLayout {
    /// The layout of filters with `in_channels` inputs and `taps` kernel taps.
    pub fn new(in_channels: usize, taps: usize) -> PanelLayout {
        PanelLayout { in_channels, taps, words: words_for(in_channels) }
    }

    /// The word index and the bit mask of OIHW element `i`.
    pub fn position(&self, i: usize) -> (usize, u64) {
        let (tap, c, o) =
            (i % self.taps, i / self.taps % self.in_channels, i / (self.taps * self.in_channels));
        let (panel, lane) = (o / PANEL, o % PANEL);
        let word = (panel * self.taps * self.words + tap * self.words + c / WORD_BITS) * PANEL + lane;
        (word, 1 << (c % WORD_BITS))
    }

    /// The sign of OIHW element `i` in packed `filters`: +1.0 for a set bit, -1.0 otherwise.
    ///
    /// # Panics
    /// If `filters` is too short for element `i`.
    pub fn sign(&self, filters: &[u64], i: usize) -> f32 {
        let (word, bit) = self.position(i);
        if filters[word] & bit != 0 {
            1.0
        } else {
            -1.0
        }
    }
}
