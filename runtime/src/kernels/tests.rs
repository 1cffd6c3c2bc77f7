//! Kernel tests: every supported ISA bit-exactly against scalar through one harness, and scalar
//! against independent naive expectations.

use std::fmt::Debug;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::isa::choose;
use super::*;
use crate::bit_layout::*;

/// The instruction sets the harness covers: all this CPU supports. If `BNAS_FORCE_ISA` names one
/// the CPU lacks, this fails rather than skip it.
fn covered_isas() -> Vec<Isa> {
    let isas = Isa::supported();
    assert_eq!(isas.first(), Some(&Isa::Scalar), "scalar must always be supported");
    if let Some(forced) = std::env::var_os(FORCE_ISA_ENV) {
        let forced = forced.to_string_lossy();
        if !forced.trim().is_empty() {
            let isa: Isa = forced.parse().expect("BNAS_FORCE_ISA names an instruction set");
            assert!(isas.contains(&isa), "BNAS_FORCE_ISA={isa} but this CPU cannot run it");
        }
    }
    isas
}

/// The shared harness: runs `kernel` under every covered ISA and asserts each result equals
/// scalar's, which it returns for checks against a naive expectation.
pub(super) fn assert_isas_agree<T: PartialEq + Debug>(case: &str, kernel: impl Fn(Isa) -> T) -> T {
    let reference = kernel(Isa::Scalar);
    for isa in covered_isas().into_iter().filter(|&isa| isa != Isa::Scalar) {
        assert_eq!(kernel(isa), reference, "{isa} differs from scalar on {case}");
    }
    reference
}

/// ±1 of a float by the project's rule (x >= 0 -> +1), independent of any packing.
fn sign_of(x: f32) -> i32 {
    if x >= 0.0 {
        1
    } else {
        -1
    }
}

/// The GEMM as its definition reads.
fn naive_xnor_gemm(a: &[u64], rows: usize, depth: usize, panels: &[u64], panel_count: usize) -> Vec<u32> {
    let mut out = vec![0; rows * panel_count * PANEL];
    for r in 0..rows {
        for p in 0..panel_count {
            for lane in 0..PANEL {
                out[r * panel_count * PANEL + p * PANEL + lane] = (0..depth)
                    .map(|l| (a[r * depth + l] ^ panels[(p * depth + l) * PANEL + lane]).count_ones())
                    .sum();
            }
        }
    }
    out
}

fn gemm(isa: Isa, a: &[u64], rows: usize, depth: usize, panels: &[u64], panel_count: usize) -> Vec<u32> {
    let mut out = vec![u32::MAX; rows * panel_count * PANEL];
    xnor_gemm(isa, a, rows, depth, panels, panel_count, &mut out);
    out
}

fn pack(isa: Isa, x: &[f32], pixels: usize, channels: usize, sign: &[f32], threshold: &[f32]) -> Vec<u64> {
    let mut out = vec![u64::MAX; pixels * words_for(channels)];
    pack_activations(isa, x, pixels, channels, sign, threshold, &mut out);
    out
}

#[test]
fn supported_isas_start_with_scalar_and_are_reported() {
    let isas = covered_isas();
    let names: Vec<_> = isas.iter().map(|isa| isa.name()).collect();
    println!("kernel tests cover: {}", names.join(", "));
    for isa in Isa::ALL {
        assert_eq!(isas.contains(&isa), isa.is_supported());
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn is_supported_follows_cpu_flags() {
    assert!(Isa::Scalar.is_supported());
    assert_eq!(Isa::Avx2.is_supported(), std::arch::is_x86_feature_detected!("avx2"));
    assert_eq!(
        Isa::Avx512.is_supported(),
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
    );
}

#[test]
fn isa_names_round_trip() {
    for isa in Isa::ALL {
        assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
        assert_eq!(isa.to_string(), isa.name());
        assert_eq!(format!(" {} ", isa.name().to_uppercase()).parse::<Isa>(), Ok(isa));
    }
    assert_eq!("sse4".parse::<Isa>(), Err(KernelError::UnknownIsa { value: "sse4".into() }));
}

#[test]
fn choose_defaults_to_the_best_supported() {
    assert_eq!(choose(None, &Isa::ALL), Ok(Isa::Avx512));
    assert_eq!(choose(None, &[Isa::Scalar, Isa::Avx2]), Ok(Isa::Avx2));
    assert_eq!(choose(Some(""), &[Isa::Scalar]), Ok(Isa::Scalar));
    assert_eq!(choose(Some("  "), &Isa::ALL), Ok(Isa::Avx512));
}

#[test]
fn choose_honours_a_forced_isa() {
    assert_eq!(choose(Some("scalar"), &Isa::ALL), Ok(Isa::Scalar));
    assert_eq!(choose(Some("avx2"), &Isa::ALL), Ok(Isa::Avx2));
    assert_eq!(choose(Some("AVX512"), &Isa::ALL), Ok(Isa::Avx512));
}

#[test]
fn choose_rejects_unknown_and_unsupported_isas() {
    let unknown = choose(Some("neon2"), &Isa::ALL).unwrap_err();
    assert_eq!(unknown, KernelError::UnknownIsa { value: "neon2".into() });
    assert!(unknown.to_string().contains("neon2"));
    let unsupported = choose(Some("avx512"), &[Isa::Scalar, Isa::Avx2]).unwrap_err();
    assert_eq!(unsupported, KernelError::UnsupportedIsa { isa: Isa::Avx512 });
    assert!(unsupported.to_string().contains("avx512"));
}

#[test]
fn select_is_cached_and_agrees_with_choose() {
    let forced = std::env::var_os(FORCE_ISA_ENV).map(|v| v.to_string_lossy().into_owned());
    assert_eq!(select(), choose(forced.as_deref(), &Isa::supported()));
    assert_eq!(select(), select());
}

#[test]
fn words_and_filter_sizes() {
    assert_eq!([0, 1, 63, 64, 65, 128, 130].map(words_for), [0, 1, 1, 1, 2, 2, 3]);
    assert_eq!(filter_words(17, 65, 3), Some(2 * 9 * 2 * PANEL));
    assert_eq!(filter_words(16, 64, 1), Some(PANEL));
    assert_eq!(filter_words(0, 64, 3), Some(0));
    assert_eq!(filter_words(usize::MAX, 64, 3), None);
    assert_eq!(filter_words(16, 64, usize::MAX), None);
    assert!(pack_filters(&[], 0, 3, 3).is_empty());
    assert!(pack_filters(&[], 4, 0, 3).is_empty());
    assert!(pack_filters(&[], 4, 3, 0).is_empty());
}

#[test]
fn pack_filters_matches_oihw_signs() {
    let mut rng = StdRng::seed_from_u64(1);
    for kernel in [1, 3] {
        let taps = kernel * kernel;
        for out_channels in [1, 16, 17, 36] {
            for in_channels in [3, 64, 65] {
                let mut weights: Vec<f32> =
                    (0..out_channels * in_channels * taps).map(|_| rng.gen_range(-1.0..1.0)).collect();
                weights[0] = 0.0;
                weights[1] = -0.0;
                let packed = pack_filters(&weights, out_channels, in_channels, kernel);
                assert_eq!(Some(packed.len()), filter_words(out_channels, in_channels, kernel));
                let words = words_for(in_channels);
                let depth = taps * words;
                for panel in 0..out_channels.div_ceil(PANEL) {
                    for lane in 0..PANEL {
                        let o = panel * PANEL + lane;
                        for tap in 0..taps {
                            for word in 0..words {
                                let bits = packed[((panel * depth) + (tap * words + word)) * PANEL + lane];
                                for bit in 0..WORD_BITS {
                                    let c = word * WORD_BITS + bit;
                                    let (ky, kx) = (tap / kernel, tap % kernel);
                                    let expected = o < out_channels
                                        && c < in_channels
                                        && weights[((o * in_channels + c) * kernel + ky) * kernel + kx]
                                            >= 0.0;
                                    assert_eq!(bits >> bit & 1 == 1, expected, "o {o} c {c} tap {tap}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn dense_filters_hold_the_oihw_signs_and_invert_to_panels() {
    let mut rng = StdRng::seed_from_u64(2);
    for (out_channels, in_channels, kernel) in [(1, 3, 1), (17, 36, 3), (16, 64, 3), (5, 65, 5)] {
        let n = out_channels * in_channels * kernel * kernel;
        let weights: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let panels = pack_filters(&weights, out_channels, in_channels, kernel);
        let dense = dense_from_panels(&panels, out_channels, in_channels, kernel);
        assert_eq!(Some(dense.len()), dense_filter_words(out_channels, in_channels, kernel));
        assert_eq!(dense.len(), n.div_ceil(64));
        for (i, &w) in weights.iter().enumerate() {
            assert_eq!(dense[i / 64] >> (i % 64) & 1 == 1, w >= 0.0, "element {i}");
        }
        if n % 64 != 0 {
            assert_eq!(dense[dense.len() - 1] >> (n % 64), 0, "bits after the last element");
        }
        assert_eq!(panels_from_dense(&dense, out_channels, in_channels, kernel), panels);
    }
}

#[test]
#[should_panic(expected = "OIHW")]
fn pack_filters_rejects_a_wrong_length() {
    pack_filters(&[1.0; 26], 1, 3, 3);
}

#[test]
#[should_panic(expected = "rows x depth")]
fn xnor_gemm_rejects_a_short_input() {
    xnor_gemm(Isa::Scalar, &[0; 3], 2, 2, &[0; 2 * PANEL], 1, &mut [0; 2 * PANEL]);
}

#[test]
#[should_panic(expected = "pixels x words_for")]
fn pack_activations_rejects_a_short_output() {
    pack_activations(Isa::Scalar, &[0.0; 130], 2, 65, &[1.0; 65], &[0.0; 65], &mut [0; 3]);
}

/// A 1x1 conv, 3 channels, two outputs, with the ±1 dot products written by hand.
#[test]
fn hand_computed_1x1_conv() {
    // x -> +1, +1, -1. Filter 0 -> +1, -1, +1 (0.0 counts as +1); filter 1 -> +1, +1, -1.
    let x = [1.0, 2.0, -3.0];
    let weights = [0.5, -0.2, 0.0, 1.0, 1.0, -1.0];
    // Dots: (+1)(+1) + (+1)(-1) + (-1)(+1) = -1, and 1 + 1 + 1 = 3.
    let expected_dots = [-1, 3];
    let filters = pack_filters(&weights, 2, 3, 1);
    let counts = assert_isas_agree("1x1 conv", |isa| {
        let a = pack(isa, &x, 1, 3, &[1.0; 3], &[0.0; 3]);
        assert_eq!(a, [0b011]);
        gemm(isa, &a, 1, 1, &filters, 1)
    });
    let dots: Vec<i32> = counts[..2].iter().map(|&n| 3 - 2 * n as i32).collect();
    assert_eq!(dots, expected_dots);
    assert!(counts[2..].iter().all(|&n| n == 2), "empty lanes count the 2 set activation bits");
}

/// A valid (unpadded) 3x3 conv through pack -> im2col -> GEMM equals the i32 dot of the ±1 values
/// taken straight from the floats: `taps * C - 2 * popcount`.
#[test]
fn im2col_gemm_matches_a_naive_signed_dot() {
    let mut rng = StdRng::seed_from_u64(2);
    let (height, width, channels, out_channels, kernel) = (5, 6, 65, 17, 3);
    let (taps, words) = (kernel * kernel, words_for(channels));
    let (out_h, out_w) = (height - kernel + 1, width - kernel + 1);
    let x: Vec<f32> = (0..height * width * channels)
        .map(|i| if i % 7 == 0 { 0.0 } else { rng.gen_range(-1.0..1.0) })
        .collect();
    let weights: Vec<f32> = (0..out_channels * channels * taps).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let filters = pack_filters(&weights, out_channels, channels, kernel);
    let panel_count = out_channels.div_ceil(PANEL);
    let counts = assert_isas_agree("im2col conv", |isa| {
        let packed = pack(isa, &x, height * width, channels, &vec![1.0; channels], &vec![0.0; channels]);
        let mut columns = Vec::new();
        for (oy, ox) in (0..out_h).flat_map(|oy| (0..out_w).map(move |ox| (oy, ox))) {
            for (ky, kx) in (0..kernel).flat_map(|ky| (0..kernel).map(move |kx| (ky, kx))) {
                let pixel = (oy + ky) * width + ox + kx;
                columns.extend_from_slice(&packed[pixel * words..][..words]);
            }
        }
        gemm(isa, &columns, out_h * out_w, taps * words, &filters, panel_count)
    });
    for oy in 0..out_h {
        for ox in 0..out_w {
            for o in 0..out_channels {
                let mut dot = 0;
                for c in 0..channels {
                    for ky in 0..kernel {
                        for kx in 0..kernel {
                            let xv = x[((oy + ky) * width + ox + kx) * channels + c];
                            let wv = weights[((o * channels + c) * kernel + ky) * kernel + kx];
                            dot += sign_of(xv) * sign_of(wv);
                        }
                    }
                }
                let count = counts[(oy * out_w + ox) * panel_count * PANEL + o] as i32;
                assert_eq!((taps * channels) as i32 - 2 * count, dot, "output ({oy}, {ox}, {o})");
            }
        }
    }
}

#[test]
fn xnor_gemm_isas_agree_on_edge_sizes() {
    let mut rng = StdRng::seed_from_u64(3);
    // Row counts around every block height (1, 2, 4, 8) and a long run; depths around the AVX2
    // flush interval (31) and the conv shapes 3x3 and 5x5 x 3 words.
    let rows_cases = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100];
    let depth_cases = [0, 1, 9, 18, 30, 31, 32, 36, 62, 63, 75];
    for &rows in &rows_cases {
        for &depth in &depth_cases {
            for panel_count in [0, 1, 3] {
                // Sub-slices at odd word offsets: no vector load may rely on alignment.
                let offset = (rows + depth) % 3;
                let a: Vec<u64> = (0..rows * depth + offset).map(|_| rng.gen()).collect();
                let panels: Vec<u64> = (0..panel_count * depth * PANEL + offset).map(|_| rng.gen()).collect();
                let (a, panels) = (&a[offset..], &panels[offset..]);
                let case = format!("rows {rows} depth {depth} panels {panel_count} offset {offset}");
                let counts = assert_isas_agree(&case, |isa| gemm(isa, a, rows, depth, panels, panel_count));
                assert_eq!(counts, naive_xnor_gemm(a, rows, depth, panels, panel_count), "scalar: {case}");
            }
        }
    }
}

#[test]
fn xnor_gemm_isas_agree_on_extreme_words() {
    // All-ones against all-zeros counts 64 a word: the largest per-step sums, long enough to
    // cross several AVX2 flushes.
    let (rows, depth, panel_count) = (9, 200, 2);
    let a = vec![u64::MAX; rows * depth];
    let panels = vec![0; panel_count * depth * PANEL];
    let counts = assert_isas_agree("all ones", |isa| gemm(isa, &a, rows, depth, &panels, panel_count));
    assert!(counts.iter().all(|&n| n == 64 * depth as u32));
}

/// Floats that stress the comparison: signed zeros, infinities, NaN, subnormals, near-threshold.
fn awkward_float(rng: &mut StdRng) -> f32 {
    match rng.gen_range(0..12) {
        0 => 0.0,
        1 => -0.0,
        2 => f32::INFINITY,
        3 => f32::NEG_INFINITY,
        4 => f32::NAN,
        5 => f32::MIN_POSITIVE / 4.0,
        6 => 0.25,
        _ => rng.gen_range(-2.0..2.0),
    }
}

#[test]
fn pack_activations_isas_agree_and_match_the_rule() {
    let mut rng = StdRng::seed_from_u64(4);
    for channels in [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 130] {
        for pixels in [0, 1, 15, 16, 17] {
            let offset = channels % 3;
            let x: Vec<f32> = (0..pixels * channels + offset).map(|_| awkward_float(&mut rng)).collect();
            let x = &x[offset..];
            let sign: Vec<f32> = (0..channels).map(|c| [1.0, -1.0, 0.0][(c * 7 + pixels) % 3]).collect();
            let threshold: Vec<f32> = (0..channels)
                .map(|c| {
                    if c % 5 == 0 {
                        [0.0, -0.0, 0.25, f32::NAN, -1.5][c / 5 % 5]
                    } else {
                        rng.gen_range(-1.0..1.0)
                    }
                })
                .collect();
            let case = format!("channels {channels} pixels {pixels}");
            let packed = assert_isas_agree(&case, |isa| pack(isa, x, pixels, channels, &sign, &threshold));
            let words = words_for(channels);
            for p in 0..pixels {
                for bit in 0..words * WORD_BITS {
                    let set = packed[p * words + bit / WORD_BITS] >> (bit % WORD_BITS) & 1 == 1;
                    let expected = bit < channels && sign[bit] * x[p * channels + bit] >= threshold[bit];
                    assert_eq!(set, expected, "{case}: pixel {p} channel {bit}");
                }
            }
        }
    }
}

#[test]
fn pack_activations_special_values() {
    // (x, sign, threshold, bit)
    let cases = [
        (0.0, 1.0, 0.0, true),
        (-0.0, 1.0, 0.0, true),
        (-0.0, -1.0, 0.0, true),
        (f32::NAN, 1.0, -1.0, false),
        (1.0, 1.0, f32::NAN, false),
        (f32::INFINITY, 1.0, 0.0, true),
        (f32::NEG_INFINITY, 1.0, 0.0, false),
        (f32::NEG_INFINITY, -1.0, 0.0, true),
        (5.0, 0.0, 0.0, true),
        (5.0, 0.0, 0.5, false),
        (f32::INFINITY, 0.0, -1.0, false),
        (0.5, 1.0, 0.5, true),
        (0.5, -1.0, -0.5, true),
        (0.4, -1.0, -0.3, false),
    ];
    let x: Vec<f32> = cases.iter().map(|c| c.0).collect();
    let sign: Vec<f32> = cases.iter().map(|c| c.1).collect();
    let threshold: Vec<f32> = cases.iter().map(|c| c.2).collect();
    let expected = cases.iter().enumerate().fold(0u64, |w, (i, c)| w | u64::from(c.3) << i);
    let packed = assert_isas_agree("special values", |isa| pack(isa, &x, 1, cases.len(), &sign, &threshold));
    assert_eq!(packed, [expected], "got {:#b}, expected {expected:#b}", packed[0]);
}

#[test]
fn scale_counts_isas_agree_with_the_dot_product_formula() {
    let mut rng = StdRng::seed_from_u64(23);
    for n in [0, 1, 7, 8, 15, 16, 17, 36, 100] {
        let base: Vec<i32> = (0..n).map(|_| rng.gen_range(0..600)).collect();
        let counts: Vec<u32> = base.iter().map(|&b| rng.gen_range(0..=b as u32)).collect();
        let alpha: Vec<f32> = (0..n).map(|_| rng.gen_range(-2.0..2.0)).collect();
        for floor in [0.0, f32::NEG_INFINITY] {
            let y = assert_isas_agree(&format!("scale_counts n={n} floor={floor}"), |isa| {
                let mut y = vec![f32::NAN; n];
                scale_counts(isa, &base, &counts, &alpha, floor, &mut y);
                y
            });
            for i in 0..n {
                let dot = f64::from(base[i]) - 2.0 * f64::from(counts[i]);
                let want = (f64::from(alpha[i]) * dot).max(f64::from(floor));
                assert!(
                    (f64::from(y[i]) - want).abs() <= want.abs() * 1e-6,
                    "n={n} output {i}: {} vs {want}",
                    y[i]
                );
            }
        }
    }
}
