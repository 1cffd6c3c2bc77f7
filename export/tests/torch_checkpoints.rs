//! The PyTorch checkpoint reader against real `torch.save` files and hand-made malformed ones.
//!
//! `fixtures/torch/` holds checkpoints written by PyTorch (`generate.py`, in the legacy and the
//! zip serialization) and `expected.json`, every state dict key, dtype, shape and value taken
//! from the tensors that were saved.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use bnas_export::torch::{
    read_state_dict, read_state_dict_bytes, StorageFailure, TorchDType, TorchError, TorchTensor, TorchValues,
};
use proptest::prelude::*;
use serde_json::Value as Json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch")
}

fn expected() -> Json {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fixture_names() -> Vec<String> {
    let expected = expected();
    expected["files"].as_object().unwrap().keys().cloned().collect()
}

fn fixture_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn read(name: &str) -> Vec<(String, TorchTensor)> {
    read_state_dict(&fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {}", chain(&e)))
}

/// An error with its sources, for messages.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text += &format!(": {s}");
        source = s.source();
    }
    text
}

fn dtype_name(dtype: TorchDType) -> &'static str {
    match dtype {
        TorchDType::F32 => "f32",
        TorchDType::F64 => "f64",
        TorchDType::F16 => "f16",
        TorchDType::BF16 => "bf16",
        TorchDType::I64 => "i64",
        TorchDType::I32 => "i32",
        TorchDType::I16 => "i16",
        TorchDType::I8 => "i8",
        TorchDType::U8 => "u8",
        TorchDType::Bool => "bool",
    }
}

/// Compares one tensor with its JSON description, exactly.
fn check_tensor(file: &str, key: &str, tensor: &TorchTensor, expected: &Json) {
    let at = format!("{file} {key}");
    assert_eq!(dtype_name(tensor.dtype()), expected["dtype"], "{at}: dtype");
    let shape: Vec<usize> =
        expected["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    assert_eq!(tensor.shape, shape, "{at}: shape");
    let values = expected["values"].as_array().unwrap();
    assert_eq!(tensor.numel(), values.len(), "{at}: element count");
    assert_eq!(shape.iter().product::<usize>(), values.len(), "{at}");
    let float = |v: &Json| v.as_f64().unwrap();
    let int = |v: &Json| v.as_i64().unwrap();
    match &tensor.values {
        // f32 values are written in their shortest f32 form, f16/bf16/f64 ones exactly.
        TorchValues::F32(v) => {
            let want: Vec<u32> = values.iter().map(|x| (float(x) as f32).to_bits()).collect();
            let got: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, want, "{at}");
        }
        TorchValues::F64(v) => {
            let want: Vec<u64> = values.iter().map(|x| float(x).to_bits()).collect();
            let got: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
            assert_eq!(got, want, "{at}");
        }
        TorchValues::F16(v) => {
            let got: Vec<f64> = v.iter().map(|x| x.to_f64()).collect();
            let want: Vec<f64> = values.iter().map(float).collect();
            assert_eq!(got, want, "{at}");
        }
        TorchValues::BF16(v) => {
            let got: Vec<f64> = v.iter().map(|x| x.to_f64()).collect();
            let want: Vec<f64> = values.iter().map(float).collect();
            assert_eq!(got, want, "{at}");
        }
        TorchValues::Bool(v) => {
            let want: Vec<bool> = values.iter().map(|x| x.as_bool().unwrap()).collect();
            assert_eq!(v, &want, "{at}");
        }
        _ => {
            let want: Vec<i64> = values.iter().map(int).collect();
            assert_eq!(tensor.to_i64().unwrap(), want, "{at}");
        }
    }
    if tensor.dtype().is_float() {
        assert_eq!(tensor.to_f32().unwrap().len(), values.len());
    }
}

#[test]
fn every_fixture_matches_what_pytorch_saved() {
    let expected = expected();
    assert!(expected["torch_version"].as_str().unwrap().starts_with("2."));
    let files = expected["files"].as_object().unwrap();
    assert_eq!(files.len(), 8);
    for (file, entries) in files {
        let tensors = read(file);
        let entries = entries.as_array().unwrap();
        let keys: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
        let want: Vec<&str> = entries.iter().map(|e| e["key"].as_str().unwrap()).collect();
        assert_eq!(keys, want, "{file}: keys in file order");
        for ((key, tensor), entry) in tensors.iter().zip(entries) {
            check_tensor(file, key, tensor, entry);
        }
    }
}

#[test]
fn both_serializations_read_the_same_state_dict() {
    let legacy = read("cifar_legacy.pt");
    assert_eq!(legacy, read("cifar_zip.pt"));
    // The ImageNet-style checkpoints hold the same network under `state_dict`.
    assert_eq!(legacy, read("imagenet_legacy.pt"));
    assert_eq!(legacy, read("imagenet_zip.pt"));
    // A deflated archive reads as the stored one would.
    assert_eq!(read("views_deflated_zip.pt").len(), read("views_zip.pt").len());
}

#[test]
fn reference_key_layout() {
    let tensors = read("cifar_legacy.pt");
    let get = |key: &str| {
        tensors.iter().find(|(k, _)| k == key).map(|(_, t)| t).unwrap_or_else(|| panic!("no {key}"))
    };
    assert!(tensors.iter().all(|(k, _)| k.starts_with("module.")));
    assert_eq!(get("module.stem.op.0.weight").shape, vec![4, 3, 3, 3]);
    let tracked = get("module.stem.bn.num_batches_tracked");
    assert_eq!((tracked.shape.as_slice(), tracked.dtype()), (&[][..], TorchDType::I64));
    assert_eq!(tracked.to_i64().unwrap(), vec![7]);
    assert!(tracked.to_f32().is_err());
    // affine=False: running stats, no weight or bias.
    let preprocess0: Vec<&str> = tensors
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("module.cells.0.preprocess0.bn."))
        .collect();
    assert_eq!(
        preprocess0,
        [
            "module.cells.0.preprocess0.bn.running_mean",
            "module.cells.0.preprocess0.bn.running_var",
            "module.cells.0.preprocess0.bn.num_batches_tracked",
        ]
    );
}

#[test]
fn views_are_made_contiguous() {
    for file in ["views_legacy.pt", "views_zip.pt"] {
        let tensors = read(file);
        let get = |key: &str| {
            let (_, t) = tensors.iter().find(|(k, _)| k == key).unwrap();
            t.to_f32().unwrap()
        };
        let base = get("base");
        let base_at = |r: usize, c: usize| base[r * 6 + c];
        let transposed = get("transposed");
        for r in 0..6 {
            for c in 0..4 {
                assert_eq!(transposed[r * 4 + c], base_at(c, r), "{file}");
            }
        }
        assert_eq!(
            get("sliced"),
            [base_at(1, 0), base_at(1, 2), base_at(1, 4), base_at(2, 0), base_at(2, 2), base_at(2, 4)]
        );
        assert_eq!(get("column"), [base_at(0, 5), base_at(1, 5), base_at(2, 5), base_at(3, 5)]);
        assert_eq!(get("expanded"), [1.5, 1.5, 1.5, -2.5, -2.5, -2.5]);
    }
}

#[test]
fn path_and_bytes_agree_and_io_errors_name_the_file() {
    let name = "views_legacy.pt";
    assert_eq!(read(name), read_state_dict_bytes(&fixture_bytes(name)).unwrap());
    let missing = fixtures().join("no_such_file.pt");
    match read_state_dict(&missing) {
        Err(TorchError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_truncation_is_an_error_or_a_state_dict() {
    for name in fixture_names() {
        let bytes = fixture_bytes(&name);
        // Zip archives lose their central directory, and the CIFAR files need every storage.
        let must_fail = name.ends_with("_zip.pt") || name.starts_with("cifar");
        // Each truncation of a legacy file reparses its pickles; one in seven lengths of the
        // largest keeps the unoptimized test fast.
        let step = if name == "imagenet_legacy.pt" { 7 } else { 1 };
        for len in (0..bytes.len()).step_by(step) {
            let result = read_state_dict_bytes(&bytes[..len]);
            if must_fail {
                assert!(result.is_err(), "{name} truncated to {len} bytes read");
            }
        }
    }
}

#[test]
fn results_cross_threads() {
    fn check<T: Send + Sync + 'static>() {}
    check::<TorchError>();
    check::<TorchTensor>();
}

#[test]
fn garbage_is_not_a_checkpoint() {
    for bytes in [&b""[..], b"hello", b"\x00\x01\x02\x03", b"PK"] {
        match read_state_dict_bytes(bytes) {
            Err(TorchError::NotACheckpoint { found }) => assert!(found.len() <= 4),
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
}

// --- Hand-made legacy checkpoints -------------------------------------------------------------

/// A protocol 2 pickle under construction.
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Pickle {
        Pickle(vec![0x80, 2])
    }
    fn op(mut self, bytes: &[u8]) -> Pickle {
        self.0.extend_from_slice(bytes);
        self
    }
    fn int(self, v: i64) -> Pickle {
        let bytes = v.to_le_bytes();
        self.op(&[0x8a, 8]).op(&bytes)
    }
    fn str(self, s: &str) -> Pickle {
        let len = (s.len() as u32).to_le_bytes();
        self.op(b"X").op(&len).op(s.as_bytes())
    }
    fn global(self, module: &str, name: &str) -> Pickle {
        self.op(b"c").op(module.as_bytes()).op(b"\n").op(name.as_bytes()).op(b"\n")
    }
    fn ints(self, values: &[i64]) -> Pickle {
        values.iter().fold(self.op(b"("), |p, &v| p.int(v)).op(b"t")
    }
    fn ordered_dict(self) -> Pickle {
        self.global("collections", "OrderedDict").op(b")R")
    }
    /// A storage persistent id, with an optional legacy view `(offset, size)`. `class` is a
    /// name in `torch`, or a full path (`torch.cuda.HalfStorage`).
    fn storage(self, class: &str, key: &str, numel: i64, view: Option<(i64, i64)>) -> Pickle {
        let (module, class) = class.rsplit_once('.').unwrap_or(("torch", class));
        let p = self.op(b"(").str("storage").global(module, class).str(key).str("cpu").int(numel);
        let p = match view {
            None => p.op(b"N"),
            Some((offset, size)) => p.op(b"(").str("view").int(offset).int(size).op(b"t"),
        };
        p.op(b"tQ")
    }
    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
    fn tensor(
        self,
        storage: impl FnOnce(Pickle) -> Pickle,
        offset: i64,
        size: &[i64],
        stride: &[i64],
    ) -> Pickle {
        let p = self.global("torch._utils", "_rebuild_tensor_v2").op(b"(");
        storage(p).int(offset).ints(size).ints(stride).op(b"\x89").ordered_dict().op(b"tR")
    }
    fn stop(self) -> Vec<u8> {
        self.op(b".").0
    }
}

/// A legacy file: magic, protocol, sys_info, the object, the storage keys and the records.
fn legacy_file(object: Vec<u8>, keys: &[&str], records: &[(u64, Vec<u8>)], little_endian: bool) -> Vec<u8> {
    let mut file =
        Pickle::new().op(&[0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]).stop();
    file.extend(Pickle::new().op(b"M\xe9\x03").stop());
    let flag: &[u8] = if little_endian { b"\x88" } else { b"\x89" };
    file.extend(Pickle::new().op(b"}(").str("little_endian").op(flag).op(b"u").stop());
    file.extend(object);
    file.extend(keys.iter().fold(Pickle::new().op(b"]("), |p, k| p.str(k)).op(b"e").stop());
    for (count, data) in records {
        let count = if little_endian { count.to_le_bytes() } else { count.to_be_bytes() };
        file.extend_from_slice(&count);
        file.extend_from_slice(data);
    }
    file
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A one-tensor state dict `{"w": tensor}` over a FloatStorage "0" of six elements.
fn one_tensor(offset: i64, size: &[i64], stride: &[i64]) -> Vec<u8> {
    let object = Pickle::new()
        .ordered_dict()
        .op(b"(")
        .str("w")
        .tensor(|p| p.storage("FloatStorage", "0", 6, None), offset, size, stride)
        .op(b"u")
        .stop();
    legacy_file(object, &["0"], &[(6, f32_bytes(&[0., 1., 2., 3., 4., 5.]))], true)
}

fn tensor_error(bytes: &[u8]) -> (String, TorchError) {
    match read_state_dict_bytes(bytes) {
        Err(TorchError::Tensor { key, source }) => (key, *source),
        other => panic!("{other:?}"),
    }
}

#[test]
fn hand_made_legacy_checkpoint() {
    let tensors = read_state_dict_bytes(&one_tensor(1, &[2, 2], &[1, 2])).unwrap();
    assert_eq!(tensors.len(), 1);
    assert_eq!(tensors[0].0, "w");
    assert_eq!(tensors[0].1.shape, vec![2, 2]);
    assert_eq!(tensors[0].1.values, TorchValues::F32(vec![1., 3., 2., 4.]));
    // Checkpoints saved from GPU tensors name CUDA storage classes.
    let object = Pickle::new()
        .ordered_dict()
        .op(b"(")
        .str("h")
        .tensor(|p| p.storage("torch.cuda.HalfStorage", "0", 2, None), 0, &[2], &[1])
        .op(b"u")
        .stop();
    let data =
        [half::f16::from_f32(0.25), half::f16::from_f32(-8.0)].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = read_state_dict_bytes(&legacy_file(object, &["0"], &[(2, data)], true)).unwrap();
    assert_eq!(tensors[0].1.to_f32().unwrap(), vec![0.25, -8.0]);
}

#[test]
fn out_of_bounds_views_are_errors() {
    for (offset, size, stride) in [
        (6, vec![1], vec![1]),
        (0, vec![7], vec![1]),
        (0, vec![2, 3], vec![3, 2]),
        (i64::MAX, vec![1], vec![1]),
        (0, vec![2], vec![i64::MAX]),
    ] {
        let (key, e) = tensor_error(&one_tensor(offset, &size, &stride));
        assert_eq!(key, "w");
        assert!(matches!(e, TorchError::ViewOutOfBounds { .. }), "{e}");
    }
    let (_, e) = tensor_error(&one_tensor(0, &[1 << 40, 1 << 40], &[0, 0]));
    assert!(matches!(e, TorchError::TooLarge { .. }), "{e}");
    let (_, e) = tensor_error(&one_tensor(-1, &[1], &[1]));
    assert!(matches!(e, TorchError::BadTensorArgs { .. }), "{e}");
    let (_, e) = tensor_error(&one_tensor(0, &[2], &[-1]));
    assert!(matches!(e, TorchError::BadTensorArgs { .. }), "{e}");
    let (_, e) = tensor_error(&one_tensor(0, &[2, 3], &[1]));
    assert!(matches!(e, TorchError::BadTensorArgs { .. }), "{e}");
    let rank_65 = vec![1; 65];
    let (_, e) = tensor_error(&one_tensor(0, &rank_65, &rank_65));
    assert!(matches!(e, TorchError::TooLarge { what: "tensor rank", .. }), "{e}");
}

#[test]
fn storage_records_are_checked() {
    let object = |numel: i64| {
        Pickle::new()
            .ordered_dict()
            .op(b"(")
            .str("w")
            .tensor(|p| p.storage("FloatStorage", "0", numel, None), 0, &[2], &[1])
            .op(b"u")
            .stop()
    };
    // The persistent id declares more elements than the record holds.
    let bytes = legacy_file(object(100), &["0"], &[(6, f32_bytes(&[0.; 6]))], true);
    let (_, e) = tensor_error(&bytes);
    assert!(
        matches!(e, TorchError::StorageTooSmall { ref key, needed: 400, available: 24 } if key == "0"),
        "{e}"
    );
    // The record's count runs past the end of the file.
    let bytes = legacy_file(object(6), &["0"], &[(1 << 60, f32_bytes(&[0.; 6]))], true);
    let (_, e) = tensor_error(&bytes);
    assert!(matches!(e, TorchError::StorageData { reason: StorageFailure::Truncated { .. }, .. }), "{e}");
    // The key list does not name the storage.
    let bytes = legacy_file(object(6), &["1"], &[(6, f32_bytes(&[0.; 6]))], true);
    let (_, e) = tensor_error(&bytes);
    assert!(matches!(e, TorchError::MissingStorage { ref key } if key == "0"), "{e}");
    // An unknown storage class.
    let object = Pickle::new()
        .ordered_dict()
        .op(b"(")
        .str("w")
        .tensor(|p| p.storage("FancyStorage", "0", 6, None), 0, &[2], &[1])
        .op(b"u")
        .stop();
    let bytes = legacy_file(object, &["0"], &[(6, f32_bytes(&[0.; 6]))], true);
    let (_, e) = tensor_error(&bytes);
    assert!(matches!(e, TorchError::UnknownStorageType { ref name } if name == "torch.FancyStorage"), "{e}");
}

#[test]
fn unrelated_storages_of_other_types_are_skipped() {
    // {"optimizer": complex tensor, "state_dict": {"w": float tensor}}; the complex storage's
    // record comes first and must be skipped by its element size.
    let object = Pickle::new()
        .op(b"}(")
        .str("optimizer")
        .tensor(|p| p.storage("ComplexDoubleStorage", "a", 1, None), 0, &[1], &[1])
        .str("state_dict")
        .ordered_dict()
        .op(b"(")
        .str("w")
        .tensor(|p| p.storage("FloatStorage", "b", 2, None), 0, &[2], &[1])
        .op(b"u")
        .str("epoch")
        .int(3)
        .op(b"u")
        .stop();
    let records = [(1, vec![0xee; 16]), (2, f32_bytes(&[0.5, -1.0]))];
    let bytes = legacy_file(object.clone(), &["a", "b"], &records, true);
    let tensors = read_state_dict_bytes(&bytes).unwrap();
    assert_eq!(
        tensors,
        vec![("w".to_owned(), TorchTensor { shape: vec![2], values: TorchValues::F32(vec![0.5, -1.0]) })]
    );
    // A complex tensor in the state dict itself is an error naming its key.
    let object = Pickle::new()
        .op(b"}(")
        .str("c")
        .tensor(|p| p.storage("ComplexDoubleStorage", "a", 1, None), 0, &[1], &[1])
        .op(b"u")
        .stop();
    let (key, e) = tensor_error(&legacy_file(object, &["a"], &records[..1], true));
    assert_eq!(key, "c");
    assert!(
        matches!(e, TorchError::UnsupportedDtype { ref name } if name == "torch.ComplexDoubleStorage"),
        "{e}"
    );
}

#[test]
fn big_endian_legacy_files_are_swapped() {
    let object = Pickle::new()
        .ordered_dict()
        .op(b"(")
        .str("w")
        .tensor(|p| p.storage("DoubleStorage", "0", 2, None), 0, &[2], &[1])
        .op(b"u")
        .stop();
    let data: Vec<u8> = [2.5f64, -0.75].iter().flat_map(|v| v.to_be_bytes()).collect();
    let bytes = legacy_file(object, &["0"], &[(2, data)], false);
    let tensors = read_state_dict_bytes(&bytes).unwrap();
    assert_eq!(tensors[0].1.values, TorchValues::F64(vec![2.5, -0.75]));
}

#[test]
fn legacy_storage_views() {
    // PyTorch 1.x could save storage views: (view_key, offset, size) in root elements.
    let object = Pickle::new()
        .ordered_dict()
        .op(b"(")
        .str("w")
        .tensor(|p| p.storage("FloatStorage", "0", 6, Some((2, 3))), 1, &[2], &[1])
        .op(b"u")
        .stop();
    let bytes = legacy_file(object, &["0"], &[(6, f32_bytes(&[0., 1., 2., 3., 4., 5.]))], true);
    let tensors = read_state_dict_bytes(&bytes).unwrap();
    assert_eq!(tensors[0].1.values, TorchValues::F32(vec![3., 4.]));
    // A view reaching past its root storage.
    let object = Pickle::new()
        .ordered_dict()
        .op(b"(")
        .str("w")
        .tensor(|p| p.storage("FloatStorage", "0", 6, Some((5, 3))), 0, &[1], &[1])
        .op(b"u")
        .stop();
    let bytes = legacy_file(object, &["0"], &[(6, f32_bytes(&[0.; 6]))], true);
    let (_, e) = tensor_error(&bytes);
    assert!(matches!(e, TorchError::StorageTooSmall { .. }), "{e}");
}

#[test]
fn rebuild_v3_and_unsupported_tensor_kinds() {
    // _rebuild_tensor_v3(untyped storage, offset, size, stride, False, hooks, torch.float16).
    let object = Pickle::new()
        .ordered_dict()
        .op(b"(")
        .str("h")
        .global("torch._utils", "_rebuild_tensor_v3")
        .op(b"(")
        .storage("UntypedStorage", "0", 4, None)
        .int(1)
        .ints(&[1])
        .ints(&[1])
        .op(b"\x89")
        .ordered_dict()
        .global("torch", "float16")
        .op(b"tR")
        .str("s")
        .global("torch._utils", "_rebuild_sparse_tensor")
        .op(b")R")
        .op(b"u")
        .stop();
    let data =
        [half::f16::from_f32(1.0), half::f16::from_f32(-2.0)].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = legacy_file(object, &["0"], &[(4, data)], true);
    let (key, e) = tensor_error(&bytes);
    assert_eq!(key, "s");
    assert!(
        matches!(e, TorchError::UnsupportedTensor { ref function } if function == "torch._utils._rebuild_sparse_tensor"),
        "{e}"
    );
}

#[test]
fn rebuild_v3_reads_its_dtype() {
    let object = Pickle::new()
        .ordered_dict()
        .op(b"(")
        .str("h")
        .global("torch._utils", "_rebuild_tensor_v3")
        .op(b"(")
        .storage("UntypedStorage", "0", 4, None)
        .int(1)
        .ints(&[1])
        .ints(&[1])
        .op(b"\x89")
        .ordered_dict()
        .global("torch", "float16")
        .op(b"tR")
        .op(b"u")
        .stop();
    let data =
        [half::f16::from_f32(1.0), half::f16::from_f32(-2.0)].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bytes = legacy_file(object, &["0"], &[(4, data)], true);
    let tensors = read_state_dict_bytes(&bytes).unwrap();
    assert_eq!(tensors[0].1.to_f32().unwrap(), vec![-2.0]);
}

#[test]
fn top_level_objects_that_are_not_state_dicts() {
    type Check = fn(&TorchError) -> bool;
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (Pickle::new().op(b"]").stop(), |e| matches!(e, TorchError::NotAStateDict { .. })),
        (Pickle::new().op(b"}(K\x01").int(1).op(b"u").stop(), |e| {
            matches!(e, TorchError::BadKey { index: 0, .. })
        }),
        (
            Pickle::new().op(b"}(").str("epoch").int(1).op(b"u").stop(),
            |e| matches!(e, TorchError::Tensor { key, source } if key == "epoch" && matches!(**source, TorchError::NotATensor { .. })),
        ),
    ];
    for (object, check) in cases {
        let bytes = legacy_file(object, &[], &[], true);
        let e = read_state_dict_bytes(&bytes).unwrap_err();
        assert!(check(&e), "{e:?}");
    }
    let bytes = legacy_file(Pickle::new().op(b"}(").str("state_dict").int(3).op(b"u").stop(), &[], &[], true);
    match read_state_dict_bytes(&bytes) {
        Err(TorchError::NotAStateDict { found }) => assert_eq!(found, "int 3 under 'state_dict'"),
        other => panic!("{other:?}"),
    }
    // An empty state dict is a state dict.
    let bytes = legacy_file(Pickle::new().ordered_dict().stop(), &[], &[], true);
    assert_eq!(read_state_dict_bytes(&bytes).unwrap(), vec![]);
}

#[test]
fn legacy_header_is_checked() {
    let mut bytes = one_tensor(0, &[1], &[1]);
    bytes[5] ^= 1; // inside the magic number
    assert!(matches!(read_state_dict_bytes(&bytes), Err(TorchError::BadMagic { .. })));
    let mut bytes = one_tensor(0, &[1], &[1]);
    let version_at = bytes.windows(3).position(|w| w == b"M\xe9\x03").unwrap();
    bytes[version_at + 1] = 0xea;
    assert!(matches!(read_state_dict_bytes(&bytes), Err(TorchError::UnsupportedVersion { .. })));
}

// --- Hand-edited zip checkpoints --------------------------------------------------------------

/// Rewrites a zip checkpoint, entry by entry: `edit` returns the new content, or None to drop it.
fn rewrite_zip(name: &str, edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let bytes = fixture_bytes(name);
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let entry = file.name().unwrap().into_owned();
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        if let Some(data) = edit(&entry, data) {
            out.start_file(entry, options).unwrap();
            out.write_all(&data).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

#[test]
fn zip_entries_are_checked() {
    let name = "cifar_zip.pt";
    // Unchanged, the rewrite reads like the original.
    assert_eq!(read_state_dict_bytes(&rewrite_zip(name, |_, d| Some(d))).unwrap(), read(name));
    let bytes =
        rewrite_zip(name, |e, d| Some(if e.ends_with("/byteorder") { b"middle".to_vec() } else { d }));
    assert!(
        matches!(read_state_dict_bytes(&bytes), Err(TorchError::UnsupportedByteOrder { ref found }) if found == "middle")
    );
    // No byteorder entry: little-endian, as before PyTorch 1.13.
    let bytes = rewrite_zip(name, |e, d| (!e.ends_with("/byteorder")).then_some(d));
    assert_eq!(read_state_dict_bytes(&bytes).unwrap(), read(name));
    let bytes = rewrite_zip(name, |e, d| (!e.ends_with("/data.pkl")).then_some(d));
    assert!(matches!(read_state_dict_bytes(&bytes), Err(TorchError::MissingEntry { .. })));
    let bytes = rewrite_zip(name, |e, d| (!e.ends_with("/data/3")).then_some(d));
    let (key, e) = tensor_error(&bytes);
    assert!(key.starts_with("module."));
    assert!(matches!(e, TorchError::MissingStorage { ref key } if key == "3"), "{e}");
    let bytes = rewrite_zip(name, |e, d| Some(if e.ends_with("/data/0") { d[..8].to_vec() } else { d }));
    let (_, e) = tensor_error(&bytes);
    assert!(matches!(e, TorchError::StorageTooSmall { available: 8, .. }), "{e}");
    let bytes =
        rewrite_zip(name, |e, d| Some(if e.ends_with("/data.pkl") { d[..d.len() - 1].to_vec() } else { d }));
    assert!(matches!(
        read_state_dict_bytes(&bytes),
        Err(TorchError::MalformedPickle { .. } | TorchError::Truncated { .. })
    ));
}

#[test]
fn zip_crc_mismatches_are_errors() {
    // Flip a byte inside the first storage's data: the entry's CRC no longer matches.
    let mut bytes = fixture_bytes("cifar_zip.pt");
    let data_at = bytes.windows(16).position(|w| w == b"cifar_zip/data/0").unwrap();
    // The local header (30 bytes + name + extra field) precedes the data; flip well past it.
    let target = data_at + 200;
    bytes[target] ^= 0x55;
    let e = read_state_dict_bytes(&bytes).unwrap_err();
    assert!(
        matches!(&e, TorchError::Tensor { source, .. } if matches!(**source, TorchError::ZipEntry { .. })),
        "{}",
        chain(&e)
    );
}

// --- Random corruption ------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn byte_flips_never_panic(
        file in 0usize..8,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let names = fixture_names();
        let mut bytes = fixture_bytes(&names[file % names.len()]);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = read_state_dict_bytes(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        head in prop::sample::select(vec![&b""[..], b"\x80\x02", b"PK\x03\x04"]),
        tail in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let bytes = [head, &tail[..]].concat();
        let _ = read_state_dict_bytes(&bytes);
    }

    #[test]
    fn pickle_splices_never_panic(
        file in prop::sample::select(vec!["cifar_legacy.pt", "imagenet_legacy.pt", "views_legacy.pt"]),
        at in any::<prop::sample::Index>(),
        insert in prop::collection::vec(any::<u8>(), 1..16),
        remove in 0usize..16,
    ) {
        // Insertions and deletions shift everything after them, which flips cannot.
        let mut bytes = fixture_bytes(file);
        let i = at.index(bytes.len());
        let end = (i + remove).min(bytes.len());
        bytes.splice(i..end, insert);
        let _ = read_state_dict_bytes(&bytes);
    }
}
