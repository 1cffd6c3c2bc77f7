//! This machine's peak: how many XOR+popcount bits (binary MACs) and FP32 FMAs one core retires
//! per second on each instruction set, so that a kernel's achieved rate can be stated as a share
//! of what the hardware can do.
//!
//! The loops are throughput-bound by construction: several independent accumulators hide the
//! instructions' latency, operands live in registers (no loads or stores in the inner loop), and
//! an empty `asm!` makes the operand opaque at every step so the compiler cannot hoist the
//! loop-invariant popcount out of the loop. The core clock is measured too, with a chain of
//! dependent integer adds (one per cycle on every x86-64 core), so the report can state
//! instructions per cycle and a weak loop shows as an implausibly low figure. Reference
//! throughputs: VPOPCNTQ zmm 1/cycle and 512-bit VPXORQ/VPADDQ 2/cycle on Ice Lake, Sapphire
//! Rapids and Zen 4, which bounds the XOR+popcount+add step at 2/3 zmm (341 bits) per cycle; two
//! 256-bit FMA pipes (32 FP32 FLOP/cycle) on Zen 3/4 and client Intel cores, two 512-bit ones
//! (64 FLOP/cycle) on Xeon Gold/Platinum. Shares of the peak divide measured rates by measured
//! rates, so they do not depend on the clock estimate.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Isa;

/// Minimum wall time of one timed repetition: short, so that some repetitions run without being
/// preempted on a busy machine.
const MIN_REPETITION: Duration = Duration::from_millis(2);
/// Timed repetitions; the fastest counts (the others lost time to interrupts, other processes
/// or a hypervisor).
const REPETITIONS: usize = 31;

/// One vector (or word) of XOR+popcount operands and its popcount accumulators.
pub(super) trait PopcountLane: Copy {
    /// Per-lane popcount counters (possibly narrow, hence [`PopcountLane::FLUSH_STEPS`]).
    type Acc: Copy;
    /// Bits per operand: binary MACs per XOR+popcount.
    const BITS: u64;
    /// Instructions one XOR+popcount+accumulate takes.
    const INSTRUCTIONS: u64;
    /// Steps an accumulator takes before it is summed into the total.
    const FLUSH_STEPS: usize;

    /// Every 64-bit word equal to `word`.
    ///
    /// # Safety
    /// The CPU supports the lane's ISA.
    unsafe fn splat(word: u64) -> Self;

    /// Counters at zero.
    ///
    /// # Safety
    /// The CPU supports the lane's ISA.
    unsafe fn zero() -> Self::Acc;

    /// `acc + popcount(a ^ b)`, per lane.
    ///
    /// # Safety
    /// The CPU supports the lane's ISA.
    unsafe fn xor_popcount_add(acc: Self::Acc, a: Self, b: Self) -> Self::Acc;

    /// The total count held by `acc`.
    ///
    /// # Safety
    /// The CPU supports the lane's ISA.
    unsafe fn sum(acc: Self::Acc) -> u64;

    /// `self`, which the compiler must treat as unknown (it stays in its register).
    ///
    /// # Safety
    /// The CPU supports the lane's ISA.
    unsafe fn opaque(self) -> Self;
}

/// One vector of FP32 FMA operands.
pub(super) trait FmaLane: Copy {
    /// FP32 lanes per vector.
    const LANES: u64;

    /// Every lane equal to `value`.
    ///
    /// # Safety
    /// The CPU supports the lane's ISA.
    unsafe fn splat(value: f32) -> Self;

    /// `acc * a + b`, fused, per lane.
    ///
    /// # Safety
    /// The CPU supports the lane's ISA.
    unsafe fn fma(acc: Self, a: Self, b: Self) -> Self;

    /// The sum of the lanes.
    ///
    /// # Safety
    /// The CPU supports the lane's ISA.
    unsafe fn sum(self) -> f32;
}

/// `blocks * L::FLUSH_STEPS` steps, each XOR-popcounting the opaque operand `a` against `N`
/// fixed operands into `N` independent accumulators; returns the total count.
///
/// # Safety
/// The CPU supports `L`'s ISA.
#[inline(always)]
pub(super) unsafe fn xor_popcount_loop<L: PopcountLane, const N: usize>(
    a: u64,
    b: [u64; N],
    blocks: u64,
) -> u64 {
    // SAFETY: every lane operation needs only the ISA, which the caller vouches for.
    unsafe {
        let (mut a, b) = (L::splat(a), b.map(|w| L::splat(w)));
        let mut total = 0;
        for _ in 0..blocks {
            let mut acc = [L::zero(); N];
            for _ in 0..L::FLUSH_STEPS {
                a = a.opaque();
                for (acc, &b) in acc.iter_mut().zip(&b) {
                    *acc = L::xor_popcount_add(*acc, a, b);
                }
            }
            for acc in acc {
                total += L::sum(acc);
            }
        }
        total
    }
}

/// `steps` rounds of `N` independent FMA chains `acc = acc * a + b`; returns the lanes' sum.
///
/// # Safety
/// The CPU supports `L`'s ISA.
#[inline(always)]
pub(super) unsafe fn fma_loop<L: FmaLane, const N: usize>(a: f32, b: f32, steps: u64) -> f32 {
    // SAFETY: every lane operation needs only the ISA, which the caller vouches for.
    unsafe {
        let (a, b) = (L::splat(a), L::splat(b));
        let mut acc: [L; N] = std::array::from_fn(|i| L::splat(i as f32));
        for _ in 0..steps {
            for acc in &mut acc {
                *acc = L::fma(*acc, a, b);
            }
        }
        acc.into_iter().map(|acc| acc.sum()).sum()
    }
}

/// Independent popcount accumulators of the portable loop: more than the 4 integer ALUs of
/// current cores.
pub(super) const SCALAR_ACCUMULATORS: usize = 8;

impl PopcountLane for u64 {
    type Acc = u64;
    const BITS: u64 = 64;
    /// `xor`, `popcnt`, `add`.
    const INSTRUCTIONS: u64 = 3;
    const FLUSH_STEPS: usize = 256;

    unsafe fn splat(word: u64) -> u64 {
        word
    }

    unsafe fn zero() -> u64 {
        0
    }

    #[inline(always)]
    unsafe fn xor_popcount_add(acc: u64, a: u64, b: u64) -> u64 {
        acc + u64::from((a ^ b).count_ones())
    }

    unsafe fn sum(acc: u64) -> u64 {
        acc
    }

    #[inline(always)]
    unsafe fn opaque(mut self) -> u64 {
        // SAFETY: an empty template: the register is left as it is.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("/* {0} */", inout(reg) self, options(nomem, nostack, preserves_flags))
        };
        #[cfg(not(target_arch = "x86_64"))]
        {
            self = std::hint::black_box(self);
        }
        self
    }
}

/// The portable loop: `count_ones` is one `popcnt` where the target has it.
pub(super) fn scalar_xor_popcount(a: u64, b: [u64; SCALAR_ACCUMULATORS], blocks: u64) -> u64 {
    // SAFETY: the portable lane runs on any CPU.
    unsafe { xor_popcount_loop::<u64, SCALAR_ACCUMULATORS>(a, b, blocks) }
}

/// One instruction set's measured XOR+popcount rate on one core.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PopcountPeak {
    /// The instruction set.
    pub isa: String,
    /// What the loop runs: the instructions of one XOR+popcount+accumulate.
    pub loop_body: &'static str,
    /// Binary MACs (XOR+popcount bits) per second.
    pub binary_macs_per_s: f64,
    /// Binary MACs per core clock cycle.
    pub bits_per_cycle: f64,
    /// Instructions retired per cycle by the loop body.
    pub instructions_per_cycle: f64,
}

/// One instruction set's measured FP32 FMA rate on one core.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FmaPeak {
    /// The instruction set.
    pub isa: String,
    /// FP32 FLOP per second (an FMA is 2).
    pub flops: f64,
    /// FP32 FLOP per core clock cycle.
    pub flops_per_cycle: f64,
    /// FMA instructions per cycle.
    pub fma_per_cycle: f64,
}

/// The machine's single-core peaks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeakReport {
    /// The CPU's model name (`/proc/cpuinfo`), if known.
    pub cpu: Option<String>,
    /// Core clock measured by a dependent add chain, in Hz.
    pub clock_hz: f64,
    /// The clock `/proc/cpuinfo` states, in Hz (often the nominal one under a hypervisor).
    pub stated_clock_hz: Option<f64>,
    /// XOR+popcount per supported instruction set, slowest first.
    pub popcount: Vec<PopcountPeak>,
    /// FP32 FMA per supported vector instruction set.
    pub fma: Vec<FmaPeak>,
}

impl PeakReport {
    /// The highest XOR+popcount rate: the peak that kernels are compared with.
    pub fn binary_macs_per_s(&self) -> f64 {
        self.popcount.iter().map(|p| p.binary_macs_per_s).fold(0.0, f64::max)
    }

    /// The XOR+popcount rate of `isa`, if it was measured.
    pub fn binary_macs_per_s_of(&self, isa: Isa) -> Option<f64> {
        self.popcount.iter().find(|p| p.isa == isa.name()).map(|p| p.binary_macs_per_s)
    }

    /// The highest FP32 FMA rate, in FLOP/s.
    pub fn flops(&self) -> f64 {
        self.fma.iter().map(|p| p.flops).fold(0.0, f64::max)
    }
}

/// The fastest of [`REPETITIONS`] timings of `run(work)` after calibrating `work` so that one
/// run lasts at least [`MIN_REPETITION`]; returns `(work, seconds)`.
fn best_time(mut run: impl FnMut(u64)) -> (u64, f64) {
    let mut work = 1u64;
    loop {
        let started = Instant::now();
        run(work);
        if started.elapsed() >= MIN_REPETITION {
            break;
        }
        work *= 2;
    }
    let best = (0..REPETITIONS)
        .map(|_| {
            let started = Instant::now();
            run(work);
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    (work, best)
}

/// Cycles per second of the calling core: a chain of dependent adds retires one per cycle.
#[cfg(target_arch = "x86_64")]
fn measure_clock_hz() -> f64 {
    const ADDS: u64 = 16;
    let (iterations, seconds) = best_time(|iterations| {
        let mut x = 0u64;
        for _ in 0..iterations {
            // SAFETY: register-only integer adds.
            unsafe {
                std::arch::asm!(
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    "add {x}, 1", "add {x}, 1", "add {x}, 1", "add {x}, 1",
                    x = inout(reg) x,
                    options(nomem, nostack),
                )
            };
        }
        std::hint::black_box(x);
    });
    (iterations * ADDS) as f64 / seconds
}

/// Without a cycle-exact chain, the stated clock stands in.
#[cfg(not(target_arch = "x86_64"))]
fn measure_clock_hz() -> f64 {
    cpuinfo_field("cpu MHz").and_then(|mhz| mhz.parse::<f64>().ok()).map_or(f64::NAN, |mhz| mhz * 1e6)
}

/// The first `/proc/cpuinfo` line `key : value`'s value.
fn cpuinfo_field(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

/// Measures [`xor_popcount_loop`] over lane `L` with `N` accumulators; `count(blocks)` runs it.
pub(super) fn popcount_peak<L: PopcountLane, const N: usize>(
    isa: &str,
    loop_body: &'static str,
    clock_hz: f64,
    mut count: impl FnMut(u64) -> u64,
) -> PopcountPeak {
    let (blocks, seconds) = best_time(|blocks| {
        std::hint::black_box(count(std::hint::black_box(blocks)));
    });
    let popcounts = (blocks * L::FLUSH_STEPS as u64 * N as u64) as f64;
    let rate = popcounts * L::BITS as f64 / seconds;
    PopcountPeak {
        isa: isa.to_owned(),
        loop_body,
        binary_macs_per_s: rate,
        bits_per_cycle: rate / clock_hz,
        instructions_per_cycle: popcounts * L::INSTRUCTIONS as f64 / seconds / clock_hz,
    }
}

/// Measures [`fma_loop`] over lane `L` with `N` chains; `run(steps)` runs it.
pub(super) fn fma_peak<L: FmaLane, const N: usize>(
    isa: &str,
    clock_hz: f64,
    mut run: impl FnMut(u64) -> f32,
) -> FmaPeak {
    let (steps, seconds) = best_time(|steps| {
        std::hint::black_box(run(std::hint::black_box(steps)));
    });
    let fmas = (steps * N as u64) as f64 / seconds;
    let flops = 2.0 * fmas * L::LANES as f64;
    FmaPeak { isa: isa.to_owned(), flops, flops_per_cycle: flops / clock_hz, fma_per_cycle: fmas / clock_hz }
}

/// Measures this core's peaks (about a second). Run it on an idle core: another busy thread on
/// the same core halves every figure.
pub fn measure() -> PeakReport {
    let clock_hz = measure_clock_hz();
    let mut popcount = Vec::new();
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
    let mut fma = Vec::new();
    #[cfg(target_arch = "x86_64")]
    super::x86_64::peak::measure(clock_hz, &mut popcount, &mut fma);
    #[cfg(not(target_arch = "x86_64"))]
    popcount.push(popcount_peak::<u64, SCALAR_ACCUMULATORS>(
        "scalar",
        "xor, count_ones, add",
        clock_hz,
        |n| {
            let (a, b) = operands::<SCALAR_ACCUMULATORS>();
            scalar_xor_popcount(a, b, n)
        },
    ));
    let stated_clock_hz =
        cpuinfo_field("cpu MHz").and_then(|mhz| mhz.parse::<f64>().ok()).map(|mhz| mhz * 1e6);
    PeakReport { cpu: cpuinfo_field("model name"), clock_hz, stated_clock_hz, popcount, fma }
}

/// Fixed operands: `a` and `N` words whose XOR with it has 1, 2, .. set bits in turn.
pub(super) fn operands<const N: usize>() -> (u64, [u64; N]) {
    let a = 0x0123_4567_89ab_cdef;
    (a, std::array::from_fn(|i| a ^ ((1u64 << (i % 63 + 1)) - 1)))
}

#[cfg(test)]
/// The count [`xor_popcount_loop`] must return for [`operands`] and `blocks * flush_steps`
/// steps.
pub(super) fn expected_count<const N: usize>(flush_steps: usize, blocks: u64) -> u64 {
    let (a, b) = operands::<N>();
    let per_step: u64 = b.iter().map(|&w| u64::from((a ^ w).count_ones())).sum();
    per_step * flush_steps as u64 * blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portable_popcount_loop_counts_every_bit() {
        let (a, b) = operands::<SCALAR_ACCUMULATORS>();
        // Words differing in 1..=8 low bits: 36 bits per step.
        assert_eq!(expected_count::<SCALAR_ACCUMULATORS>(1, 1), 36);
        assert_eq!(scalar_xor_popcount(a, b, 3), expected_count::<SCALAR_ACCUMULATORS>(256, 3));
    }

    #[test]
    fn the_report_takes_the_fastest_instruction_set() {
        let peak = |isa: &str, rate: f64| PopcountPeak {
            isa: isa.into(),
            loop_body: "",
            binary_macs_per_s: rate,
            bits_per_cycle: 0.0,
            instructions_per_cycle: 0.0,
        };
        let report = PeakReport {
            cpu: None,
            clock_hz: 1e9,
            stated_clock_hz: None,
            popcount: vec![peak("scalar", 1e11), peak("avx512", 3e11)],
            fma: vec![],
        };
        assert_eq!(report.binary_macs_per_s(), 3e11);
        assert_eq!(report.binary_macs_per_s_of(Isa::Scalar), Some(1e11));
        assert_eq!(report.binary_macs_per_s_of(Isa::Avx2), None);
    }
}
