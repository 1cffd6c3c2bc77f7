//! Bit-packed XNOR/popcount kernels: the bit layout of binary activations and filters, the packing
//! from floats, and the binary GEMM that every binary convolution reduces to.
//!
//! Layout. Activations and filters are packed along channels into u64 words, LSB first: channel `c`
//! is bit `c % 64` of word `c / 64`. Bit 1 means +1, bit 0 means -1 (the project's sign:
//! `x >= 0 -> +1`). Padding bits (channels `>= C`) are 0 in activations and filters alike, so they
//! never count in `popcount(a ^ w)` and a dot product over `n` valid ±1 pairs is
//! `n - 2 * popcount`.
//!
//! Filters are stored in panels of [`PANEL`] output channels. For a conv with `O` outputs, `C`
//! inputs and kernel `K` (`taps = K * K`, `tap = ky * K + kx`, `W = words_for(C)`,
//! `depth = taps * W`), word `((panel * depth) + (tap * W + word)) * PANEL + lane` holds input
//! channels `word * 64 ..` of output channel `panel * PANEL + lane` at that tap. Lanes past `O` are
//! zero. This puts the 16 lanes of one depth step side by side, which is one 1024-bit vector row.
//!
//! Every kernel takes an explicit [`Isa`], so tests and benches can run each path in one process;
//! [`select`] probes the CPU once and picks the best. The XNOR-popcount inner loop is written once
//! (`generic`) over a 16-lane panel-row trait and instantiated per ISA (`scalar`, `x86_64`).

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

pub mod float_conv;
mod float_tile;
mod generic;
pub mod peak;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86_64;

/// Channels per packed word.
pub const WORD_BITS: usize = 64;

/// Output channels per filter panel: the lanes of one GEMM column block.
pub const PANEL: usize = 16;

/// The environment variable that forces an instruction set (`scalar`, `avx2` or `avx512`).
pub const FORCE_ISA_ENV: &str = "BNAS_FORCE_ISA";

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

/// Where OIHW filter element `i` lives in the panel layout (see the module docs).
struct PanelLayout {
    in_channels: usize,
    taps: usize,
    words: usize,
}

impl PanelLayout {
    fn new(in_channels: usize, taps: usize) -> PanelLayout {
        PanelLayout { in_channels, taps, words: words_for(in_channels) }
    }

    /// The word index and the bit mask of OIHW element `i`.
    fn position(&self, i: usize) -> (usize, u64) {
        let (tap, c, o) =
            (i % self.taps, i / self.taps % self.in_channels, i / (self.taps * self.in_channels));
        let (panel, lane) = (o / PANEL, o % PANEL);
        let word = (panel * self.taps * self.words + tap * self.words + c / WORD_BITS) * PANEL + lane;
        (word, 1 << (c % WORD_BITS))
    }
}

/// An instruction set the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, any CPU.
    Scalar,
    /// x86-64 AVX2 (with FMA): popcount by a nibble lookup (`vpshufb`) and `vpsadbw`.
    Avx2,
    /// x86-64 AVX-512F with VPOPCNTDQ: 512-bit popcount.
    Avx512,
}

impl Isa {
    /// Every instruction set, slowest first.
    pub const ALL: [Isa; 3] = [Isa::Scalar, Isa::Avx2, Isa::Avx512];

    /// The name used by [`FORCE_ISA_ENV`], [`FromStr`] and [`fmt::Display`].
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether this CPU runs the instruction set (detected at run time; `avx512` needs AVX-512F and
    /// AVX-512 VPOPCNTDQ). Off x86-64 only [`Isa::Scalar`] is supported.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86_64::avx2_detected(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86_64::avx512_detected(),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// The instruction sets this CPU supports, slowest first (always starts with
    /// [`Isa::Scalar`]).
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.is_supported()).collect()
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = KernelError;

    /// Parses a name as printed by [`Isa::name`], ignoring ASCII case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| KernelError::UnknownIsa { value: s.to_owned() })
    }
}

/// Why no kernel could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// A name that is not an instruction set.
    #[error("unknown instruction set `{value}` (expected scalar, avx2 or avx512)")]
    UnknownIsa {
        /// The name as given.
        value: String,
    },
    /// An instruction set was requested (`BNAS_FORCE_ISA`, `--isa`) that this CPU lacks.
    #[error("instruction set {isa} was requested, but this CPU does not support it")]
    UnsupportedIsa {
        /// The requested instruction set.
        isa: Isa,
    },
}

/// The instruction set the runtime uses: the best one this CPU supports, or the one named by
/// [`FORCE_ISA_ENV`] (an empty value counts as unset). Probed once and cached for the process.
pub fn select() -> Result<Isa, KernelError> {
    static SELECTED: OnceLock<Result<Isa, KernelError>> = OnceLock::new();
    SELECTED
        .get_or_init(|| {
            let forced = std::env::var_os(FORCE_ISA_ENV).map(|v| v.to_string_lossy().into_owned());
            choose(forced.as_deref(), &Isa::supported())
        })
        .clone()
}

/// [`select`] without the environment and the CPU probe: `forced` is the variable's value,
/// `supported` the instruction sets available.
fn choose(forced: Option<&str>, supported: &[Isa]) -> Result<Isa, KernelError> {
    match forced.filter(|v| !v.trim().is_empty()) {
        Some(value) => {
            let isa: Isa = value.parse()?;
            if supported.contains(&isa) {
                Ok(isa)
            } else {
                Err(KernelError::UnsupportedIsa { isa })
            }
        }
        None => Ok(Isa::ALL.into_iter().rev().find(|isa| supported.contains(isa)).unwrap_or(Isa::Scalar)),
    }
}

/// Panics unless `isa` runs here: the ISA entry points below are only sound on such a CPU.
fn assert_supported(isa: Isa) {
    assert!(isa.is_supported(), "instruction set {isa} is not supported by this CPU");
}

/// Binarizes and packs pixel-major activations (the folded BatchNorm + sign).
///
/// `x` is `pixels x channels` (NHWC) and `out` is `pixels x words_for(channels)`. Bit `(p, c)` is
/// set iff `sign[c] * x[p * channels + c] >= threshold[c]`, evaluated in f32 exactly so (`sign` is
/// +1, -1 or 0; a NaN product or threshold gives 0). Padding bits are 0. Every ISA is bit-identical.
///
/// # Panics
/// If a slice length disagrees with `pixels` and `channels`, or `isa` is not supported here.
pub fn pack_activations(
    isa: Isa,
    x: &[f32],
    pixels: usize,
    channels: usize,
    sign: &[f32],
    threshold: &[f32],
    out: &mut [u64],
) {
    assert_eq!(Some(x.len()), pixels.checked_mul(channels), "pack_activations: x must be pixels x channels");
    assert_eq!(sign.len(), channels, "pack_activations: sign must have one entry per channel");
    assert_eq!(threshold.len(), channels, "pack_activations: threshold must have one entry per channel");
    assert_eq!(
        Some(out.len()),
        pixels.checked_mul(words_for(channels)),
        "pack_activations: out must be pixels x words_for(channels)"
    );
    assert_supported(isa);
    match isa {
        Isa::Scalar => scalar::pack_activations(x, channels, sign, threshold, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 (asserted above); the lengths are checked above.
        Isa::Avx2 => unsafe { x86_64::avx2::pack_activations(x, channels, sign, threshold, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F (asserted above); the lengths are checked above.
        Isa::Avx512 => unsafe { x86_64::avx512::pack_activations(x, channels, sign, threshold, out) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("asserted supported"),
    }
}

/// The XNOR-popcount GEMM: `out[r * (panel_count * PANEL) + p * PANEL + lane]` is the sum over
/// `l < depth` of `popcount(a[r * depth + l] ^ panels[(p * depth + l) * PANEL + lane])`.
///
/// `a` is `rows x depth` words, row-major (an im2col of packed activations); `panels` holds
/// `panel_count` filter panels in the layout of [`pack_filters`]. Single-threaded: callers split
/// rows across threads.
///
/// # Panics
/// If a slice length disagrees with the sizes, `depth * 64` exceeds `u32::MAX`, or `isa` is not
/// supported here.
pub fn xnor_gemm(
    isa: Isa,
    a: &[u64],
    rows: usize,
    depth: usize,
    panels: &[u64],
    panel_count: usize,
    out: &mut [u32],
) {
    assert_eq!(Some(a.len()), rows.checked_mul(depth), "xnor_gemm: a must be rows x depth words");
    assert_eq!(
        Some(panels.len()),
        panel_count.checked_mul(depth).and_then(|n| n.checked_mul(PANEL)),
        "xnor_gemm: panels must be panel_count x depth x PANEL words"
    );
    assert_eq!(
        Some(out.len()),
        rows.checked_mul(panel_count).and_then(|n| n.checked_mul(PANEL)),
        "xnor_gemm: out must be rows x panel_count x PANEL counts"
    );
    assert!(depth <= u32::MAX as usize / WORD_BITS, "xnor_gemm: depth {depth} overflows u32 counts");
    assert_supported(isa);
    match isa {
        // SAFETY: the lengths and the depth bound are checked above.
        Isa::Scalar => unsafe { scalar::xnor_gemm(a, rows, depth, panels, panel_count, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 (asserted above); lengths and depth are checked above.
        Isa::Avx2 => unsafe { x86_64::avx2::xnor_gemm(a, rows, depth, panels, panel_count, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F + VPOPCNTDQ (asserted above); lengths and depth are
        // checked above.
        Isa::Avx512 => unsafe { x86_64::avx512::xnor_gemm(a, rows, depth, panels, panel_count, out) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("asserted supported"),
    }
}

/// The binary conv's output transform on one pixel: `y[o] = max(alpha[o] * (base[o] - 2 *
/// counts[o]), floor)` for every `o < y.len()`, the dot product `base - 2 * popcount` converted
/// exactly to f32 (|dot| < 2^24) and scaled with one rounding. Every ISA is bit-identical.
///
/// # Panics
/// If `base`, `counts` or `alpha` is shorter than `y`, or `isa` is not supported here.
pub fn scale_counts(isa: Isa, base: &[i32], counts: &[u32], alpha: &[f32], floor: f32, y: &mut [f32]) {
    let n = y.len();
    let (base, counts, alpha) = (&base[..n], &counts[..n], &alpha[..n]);
    assert_supported(isa);
    match isa {
        Isa::Scalar => scalar::scale_counts(base, counts, alpha, floor, y),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX2 (asserted above); the slices have y's length.
        Isa::Avx2 => unsafe { x86_64::avx2::scale_counts(base, counts, alpha, floor, y) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU supports AVX-512F (asserted above); the slices have y's length.
        Isa::Avx512 => unsafe { x86_64::avx512::scale_counts(base, counts, alpha, floor, y) },
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("asserted supported"),
    }
}
