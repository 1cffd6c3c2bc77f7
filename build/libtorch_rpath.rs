//! Shared build script for every package whose binaries, tests or benches link libtorch
//! (through `tch`): the root `bnas` package and `bnas-trainer`.
//!
//! `torch-sys` finds libtorch through the `LIBTORCH` environment variable, which
//! `.cargo/config.toml` sets to the absolute path of `.deps/libtorch` (installed by
//! `scripts/setup.sh`). A build script's link arguments only reach its own package, so each
//! package that links libtorch runs this script to embed `$LIBTORCH/lib` as a run path in
//! its executables: they then start without `LD_LIBRARY_PATH`.
//!
//! With the package's `cuda` feature, it also links `libtorch_cuda.so` of the same libtorch.
//! Nothing references that library's symbols directly (it registers the CUDA backend when it
//! loads), so it is linked with `--no-as-needed`; without it libtorch would see no CUDA device.

use std::env;
use std::path::Path;

const SETUP_HINT: &str = "run `bash scripts/setup.sh` from the repository root; it installs \
     libtorch 2.11.0 into .deps/libtorch, and .cargo/config.toml points LIBTORCH at it";

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");

    let Some(libtorch) = env::var_os("LIBTORCH") else {
        fail("the LIBTORCH environment variable is not set");
    };
    let lib = Path::new(&libtorch).join("lib");
    if !lib.join("libtorch_cpu.so").is_file() {
        fail(&format!("no libtorch_cpu.so in {}", lib.display()));
    }
    let lib = lib.to_str().unwrap_or_else(|| fail("the LIBTORCH path is not valid UTF-8"));
    if lib.contains(',') {
        fail("the LIBTORCH path contains a comma, which the linker's -rpath argument cannot carry");
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");

    if env::var_os("CARGO_FEATURE_CUDA").is_some() {
        if !Path::new(lib).join("libtorch_cuda.so").is_file() {
            fail(&format!(
                "the `cuda` feature needs a CUDA libtorch, but there is no libtorch_cuda.so in {lib}"
            ));
        }
        println!("cargo:rustc-link-search=native={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}

fn fail(why: &str) -> ! {
    eprintln!("error: cannot locate libtorch: {why}.\n{SETUP_HINT}.");
    std::process::exit(1);
}
