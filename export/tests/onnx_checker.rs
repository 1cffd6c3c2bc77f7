//! Exported models pass the `onnx` package's full checker (`onnx.checker.check_model(...,
//! full_check=True)`: structure, opset schemas and strict shape inference against the value
//! infos the exporter writes), in the venv that `scripts/setup.sh` creates. Also: `write_onnx`'s
//! file and size, and the errors for files that cannot be exported.

mod onnx_support;

use bnas_export::onnx::{to_onnx, write_onnx, OnnxError};
use bnas_models::{NetworkConfig, Overrides};
use bnas_runtime::format::{BnasFile, FilterLayout, FloatStorage, Writer};
use onnx_protobuf::Message;
use onnx_support::{onnx_check, random_bnas, test_configs};

#[test]
fn exported_models_pass_the_full_onnx_checker() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, (label, config)) in test_configs().into_iter().enumerate() {
        let file = BnasFile::from_bytes(random_bnas(&config, 40 + i as u64)).unwrap();
        let path = dir.path().join(format!("model{i}.onnx"));
        let bytes = write_onnx(&file, &path).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len(), "{label}");
        eprintln!("{label}: {bytes} bytes of ONNX");
        paths.push((label, path));
    }
    let results = onnx_check(&paths.iter().map(|(_, p)| p.as_path()).collect::<Vec<_>>());
    for ((label, _), (ok, stderr)) in paths.iter().zip(results) {
        assert!(ok, "{label}: onnx.checker (full_check) failed:\n{stderr}");
    }
}

#[test]
fn the_checker_rejects_a_broken_model() {
    // The check is not vacuous: a node reading an undefined value fails it.
    let (_, config) = test_configs().swap_remove(0);
    let file = BnasFile::from_bytes(random_bnas(&config, 1)).unwrap();
    let mut model = to_onnx(&file).unwrap();
    model.graph.mut_or_insert_default().node[3].input[0] = "nowhere".into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.onnx");
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
    let (ok, stderr) = onnx_check(&[&path]).remove(0);
    assert!(!ok && stderr.contains("nowhere"), "the checker accepted a broken model: {stderr}");
}

#[test]
fn write_onnx_replaces_the_file_whole_and_reports_its_size() {
    let (_, config) = test_configs().swap_remove(2);
    let file = BnasFile::from_bytes(random_bnas(&config, 2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, b"old").unwrap();
    let bytes = write_onnx(&file, &path).unwrap();
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written.len() as u64, bytes);
    assert_eq!(written, to_onnx(&file).unwrap().write_to_bytes().unwrap());
    // Only the model is left: no temporary file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A directory that does not exist is an I/O error naming the path.
    let missing = dir.path().join("no/such/dir/m.onnx");
    match write_onnx(&file, &missing) {
        Err(OnnxError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// `file` rewritten without tensor `skip` (and with `replace` applied to float tensors).
fn rewrite(file: &BnasFile, skip: &str, replace: impl Fn(&str, &mut Vec<f32>)) -> BnasFile {
    let mut writer = Writer::new(file.metadata().clone()).unwrap();
    for info in file.tensors().iter().filter(|t| t.name != skip) {
        let shape = info.shape.clone();
        if info.dtype.is_filters() {
            let [o, c, k, _] = shape[..] else { panic!("filters are 4-d") };
            let words = file.filters(&info.name).unwrap().to_vec();
            writer.add_binary_filters(&info.name, [o, c, k, k], words, FilterLayout::Panels).unwrap();
        } else {
            let mut values = file.floats(&info.name).unwrap().to_vec();
            replace(&info.name, &mut values);
            writer.add_float(&info.name, &shape, &values, FloatStorage::F32).unwrap();
        }
    }
    BnasFile::from_bytes(writer.to_bytes()).unwrap()
}

#[test]
fn missing_or_bad_tensors_are_errors_that_name_them() {
    let overrides = Overrides { layers: Some(3), channels: Some(4), ..Overrides::default() };
    let config = NetworkConfig::resolve("bnas-a", &overrides).unwrap();
    let file = BnasFile::from_bytes(random_bnas(&config, 3)).unwrap();
    let spec = config.spec().unwrap();
    let binary = spec.live_layers().find(|l| l.precision == bnas_models::Precision::Binary).unwrap();
    let weight = binary.conv().unwrap().weight.clone();
    for missing in [weight.clone(), bnas_runtime::format::alpha_name(&weight), "classifier.bias".into()] {
        match to_onnx(&rewrite(&file, &missing, |_, _| {})) {
            Err(OnnxError::Tensor { tensor, layer, .. }) => {
                assert_eq!(tensor, missing);
                assert!(layer == binary.name || layer == "classifier", "{layer}");
            }
            other => panic!("without {missing}: expected a tensor error, got {other:?}"),
        }
    }
    let var = format!("{}.running_var", binary.conv().unwrap().input_bn.as_ref().unwrap().prefix);
    let negative = rewrite(&file, "", |name, v| {
        if name == var {
            v[1] = -0.5;
        }
    });
    match to_onnx(&negative) {
        Err(e @ OnnxError::BadTensor { .. }) => assert!(e.to_string().contains(&var), "{e}"),
        other => panic!("expected a bad-tensor error, got {other:?}"),
    }
    let nan = rewrite(&file, "", |name, v| {
        if name == "classifier.weight" {
            v[0] = f32::NAN;
        }
    });
    assert!(
        matches!(to_onnx(&nan), Err(OnnxError::BadTensor { tensor, .. }) if tensor == "classifier.weight")
    );
}
