//! Which instruction set the kernels run: the [`Isa`] names, the CPU probe and the
//! `BNAS_FORCE_ISA` override.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// The environment variable that forces an instruction set (`scalar`, `avx2` or `avx512`).
pub const FORCE_ISA_ENV: &str = "BNAS_FORCE_ISA";

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
            Isa::Avx2 => super::x86_64::avx2_detected(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => super::x86_64::avx512_detected(),
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
pub(super) fn choose(forced: Option<&str>, supported: &[Isa]) -> Result<Isa, KernelError> {
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
pub(super) fn assert_supported(isa: Isa) {
    assert!(isa.is_supported(), "instruction set {isa} is not supported by this CPU");
}
