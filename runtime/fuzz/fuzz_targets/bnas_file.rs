//! Arbitrary bytes into `BnasFile::from_slice`, then into the execution planner: an error or a
//! valid file and plan, never a panic.
//!
//! Each input is tried twice: as given, which exercises the header and checksum checks, and with
//! its CRC-32 trailer recomputed, so that mutations get past the checksum into the metadata, index
//! and tensor checks (random bytes would almost never carry a matching CRC).
#![no_main]

use bnas_runtime::format::{BnasFile, Dtype, TRAILER_LEN};
use bnas_runtime::plan::Plan;
use libfuzzer_sys::fuzz_target;

fn touch_everything(bytes: &[u8]) {
    let Ok(file) = BnasFile::from_slice(bytes) else { return };
    for info in file.tensors() {
        match info.dtype {
            Dtype::F32 | Dtype::F16 => {
                let values = file.floats_shaped(&info.name, &info.shape).expect("validated float tensor");
                assert_eq!(values.len(), info.shape.iter().product::<usize>());
                std::hint::black_box(values.iter().map(|v| v.to_bits()).fold(0u32, u32::wrapping_add));
            }
            Dtype::BinaryFilters => {
                let words = file.filters_shaped(&info.name, &info.shape).expect("validated filter tensor");
                assert_eq!(words.len() as u64 * 64, info.size_bits);
                std::hint::black_box(words.iter().fold(0u64, |a, w| a ^ w));
            }
        }
    }
    // A valid file's config builds (the reader checks it); planning then checks every tensor
    // the network needs.
    let spec = file.metadata().config.spec().expect("validated config");
    let _ = std::hint::black_box(Plan::build(&spec, &file, file.metadata().bn_eps));
}

fuzz_target!(|data: &[u8]| {
    touch_everything(data);
    if data.len() >= TRAILER_LEN {
        let mut sealed = data.to_vec();
        let body = sealed.len() - TRAILER_LEN;
        let crc = crc32fast::hash(&sealed[..body]);
        sealed[body..].copy_from_slice(&crc.to_le_bytes());
        touch_everything(&sealed);
    }
});
