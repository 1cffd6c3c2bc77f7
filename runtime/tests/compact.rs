//! The compact `.bnas` storage (`--fp16`): fp16 float tensors and bit-dense binary filters. The
//! same random BNAS-A written both ways must hold the same filter signs, floats that differ only
//! by fp16 rounding, and run exactly like an F32 file holding the rounded values.

use bnas_models::NetworkConfig;
use bnas_runtime::format::{BnasFile, Dtype, FilterLayout, FloatStorage, Writer};
use bnas_runtime::init::random_model;
use bnas_runtime::{Device, Model, Options};

fn open(config: &NetworkConfig, storage: FloatStorage) -> BnasFile {
    BnasFile::from_bytes(random_model(config, 3, storage).unwrap().to_bytes()).unwrap()
}

/// An F32, panel-layout copy of `file` (the values it decodes to).
fn expanded(file: &BnasFile) -> BnasFile {
    let mut writer = Writer::new(file.metadata().clone()).unwrap();
    for info in file.tensors() {
        if info.dtype.is_filters() {
            let [o, c, k, _] = info.shape[..] else { panic!("filters are 4-d") };
            let words = file.filters(&info.name).unwrap().to_vec();
            writer.add_binary_filters(&info.name, [o, c, k, k], words, FilterLayout::Panels).unwrap();
        } else {
            let values = file.floats(&info.name).unwrap().to_vec();
            writer.add_float(&info.name, &info.shape, &values, FloatStorage::F32).unwrap();
        }
    }
    BnasFile::from_bytes(writer.to_bytes()).unwrap()
}

#[test]
fn compact_bnas_a_keeps_signs_and_rounds_floats() {
    let config = NetworkConfig::named("bnas-a").unwrap();
    let (exact, compact) = (open(&config, FloatStorage::F32), open(&config, FloatStorage::F16));
    assert_eq!(exact.tensors().len(), compact.tensors().len());
    for (e, c) in exact.tensors().iter().zip(compact.tensors()) {
        assert_eq!((&e.name, &e.shape), (&c.name, &c.shape));
        match e.dtype {
            Dtype::BinaryFilters => {
                assert_eq!(c.dtype, Dtype::DenseFilters, "{}", c.name);
                let [o, ch, k, _] = c.shape[..] else { panic!("filters are 4-d") };
                assert_eq!(c.size_bits, (o * ch * k * k).div_ceil(64) as u64 * 64, "{}", c.name);
                assert_eq!(
                    *exact.filters(&e.name).unwrap(),
                    *compact.filters(&c.name).unwrap(),
                    "{}",
                    c.name
                );
            }
            dtype => {
                assert_eq!((dtype, c.dtype), (Dtype::F32, Dtype::F16), "{}", c.name);
                let rounded: Vec<f32> =
                    exact.floats(&e.name).unwrap().iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
                assert_eq!(*compact.floats(&c.name).unwrap(), rounded[..], "{}", c.name);
            }
        }
    }
}

#[test]
fn compact_file_runs_like_its_f32_expansion() {
    let config = NetworkConfig::named("bnas-a").unwrap();
    let compact = open(&config, FloatStorage::F16);
    let f32_copy = expanded(&compact);
    let options = Options { threads: Some(1), isa: None, device: Device::Cpu };
    let input: Vec<f32> = (0..3 * 32 * 32).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect();
    let a = Model::from_file(compact, &options).unwrap().run_batch(&input, 1).unwrap();
    let b = Model::from_file(f32_copy, &options).unwrap().run_batch(&input, 1).unwrap();
    assert_eq!(a, b);
}
