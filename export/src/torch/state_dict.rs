//! From unpickled objects to the state dict: finding the dict of tensors, reading the tensor
//! rebuild calls `torch.save` writes, and resolving their storages through the format's
//! [`StorageSource`].
//!
//! Only what the state dict reaches is interpreted, so nothing else in the checkpoint (optimizer
//! state, amp, argparse namespaces) can make reading fail.

use super::error::TorchError;
use super::tensor::{gather, Layout, StorageClass, TorchDType, TorchTensor, MAX_RANK};
use super::value::{int, text, Heap, Node, Value};

/// How many rebuild calls may wrap one another (`_rebuild_parameter` around
/// `_rebuild_from_type_v2` around `_rebuild_tensor_v2` is three).
const MAX_REBUILD_DEPTH: usize = 8;

/// A storage as a persistent id names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageRef {
    /// The key of the storage's data (a legacy view's root storage).
    pub key: String,
    /// `module.name` of the storage class.
    pub class_name: String,
    /// The class, if known.
    pub class: Option<StorageClass>,
    /// Elements the persistent id declares.
    pub numel: u64,
    /// A legacy storage view: its offset and length in elements of the root storage.
    pub view: Option<(u64, u64)>,
}

/// Where a checkpoint format keeps its storages' bytes.
pub(crate) trait StorageSource {
    /// All bytes of the storage with this key.
    fn bytes(&mut self, key: &str) -> Result<&[u8], TorchError>;
    /// Whether the elements are stored big-endian.
    fn big_endian(&self) -> bool;
    /// The length of the checkpoint, which bounds tensor sizes.
    fn input_len(&self) -> u64;
}

/// A tensor found in the pickle, before its storage is read.
#[derive(Debug)]
struct TensorRef {
    storage: StorageRef,
    dtype: TorchDType,
    layout: Layout,
}

/// Reads the state dict of an unpickled checkpoint: `top` itself, or `top["state_dict"]` when
/// `top` is a dict holding a dict there.
pub(crate) fn read_state_dict(
    heap: &Heap,
    top: &Value,
    source: &mut dyn StorageSource,
) -> Result<Vec<(String, TorchTensor)>, TorchError> {
    let not_a_dict = || TorchError::NotAStateDict { found: heap.describe(top) };
    let mut dict = heap.mapping(top).ok_or_else(not_a_dict)?;
    // No parameter or buffer can be named `state_dict` (a Module method), so the key marks a
    // training checkpoint.
    if let Some(inner) = heap.lookup(top, "state_dict") {
        dict = heap.mapping(inner).ok_or_else(|| TorchError::NotAStateDict {
            found: format!("{} under 'state_dict'", heap.describe(inner)),
        })?;
    }
    let mut tensors = Vec::with_capacity(dict.len());
    for (index, (key, value)) in dict.iter().enumerate() {
        let key = text(key).ok_or_else(|| TorchError::BadKey { index, found: heap.describe(key) })?;
        let tensor = resolve_tensor(heap, value, 0)
            .and_then(|tensor| materialize(&tensor, source))
            .map_err(|e| e.in_tensor(key))?;
        tensors.push((key.to_owned(), tensor));
    }
    Ok(tensors)
}

/// Parses a storage persistent id: `('storage', class, key, location, numel)` in zip
/// checkpoints, with a sixth item, `None` or `(view_key, offset, size)`, in legacy ones.
pub(crate) fn parse_storage_pid(heap: &Heap, pid: &Value) -> Result<StorageRef, TorchError> {
    let bad = |what: String| TorchError::BadPersistentId { what };
    let items = heap.sequence(pid).ok_or_else(|| bad(format!("{} is not a tuple", heap.describe(pid))))?;
    let [kind, class, key, _location, numel, rest @ ..] = items else {
        return Err(bad(format!("{} items, expected 5 or 6", items.len())));
    };
    if text(kind) != Some("storage") {
        return Err(bad(format!("kind is {}, not 'storage'", heap.describe(kind))));
    }
    let (module, name) =
        heap.global(class).ok_or_else(|| bad(format!("storage class is {}", heap.describe(class))))?;
    let key = text(key).ok_or_else(|| bad(format!("storage key is {}", heap.describe(key))))?.to_owned();
    let numel = int(numel)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| bad(format!("element count is {}", heap.describe(numel))))?;
    let view = match rest {
        [] | [Value::None] => None,
        [view] => {
            let view_items =
                heap.sequence(view).ok_or_else(|| bad(format!("view is {}", heap.describe(view))))?;
            let [_view_key, offset, size] = view_items else {
                return Err(bad(format!("view has {} items, expected 3", view_items.len())));
            };
            let element = |v: &Value| int(v).and_then(|n| u64::try_from(n).ok());
            match (element(offset), element(size)) {
                (Some(offset), Some(size)) => Some((offset, size)),
                _ => return Err(bad("view offset or size is not a count".into())),
            }
        }
        _ => return Err(bad(format!("{} items, expected 5 or 6", items.len()))),
    };
    Ok(StorageRef {
        key,
        class_name: format!("{module}.{name}"),
        class: StorageClass::from_name(name),
        numel,
        view,
    })
}

/// Reads the rebuild call a tensor was pickled as.
fn resolve_tensor(heap: &Heap, value: &Value, depth: usize) -> Result<TensorRef, TorchError> {
    match heap.node(value) {
        Some(Node::Call(call)) => resolve_call(heap, value, &call.callable, &call.args, depth),
        _ => Err(TorchError::NotATensor { found: heap.describe(value) }),
    }
}

fn resolve_call(
    heap: &Heap,
    value: &Value,
    callable: &Value,
    args: &Value,
    depth: usize,
) -> Result<TensorRef, TorchError> {
    if depth >= MAX_REBUILD_DEPTH {
        return Err(TorchError::TooDeep { limit: MAX_REBUILD_DEPTH });
    }
    let not_a_tensor = || TorchError::NotATensor { found: heap.describe(value) };
    let (module, name) = heap.global(callable).ok_or_else(not_a_tensor)?;
    let function = || format!("{module}.{name}");
    let args = heap.sequence(args).ok_or_else(|| TorchError::BadTensorArgs {
        what: format!("{} takes {}", function(), heap.describe(args)),
    })?;
    let arg = |i: usize| {
        args.get(i).ok_or_else(|| TorchError::BadTensorArgs {
            what: format!("{} has {} arguments, needs {}", function(), args.len(), i + 1),
        })
    };
    match (module, name) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => rebuild(heap, args, None),
        ("torch._utils", "_rebuild_tensor_v3") => {
            let dtype = arg(6)?;
            let dtype = match heap.global(dtype) {
                Some(("torch", name)) => TorchDType::from_torch_name(name)
                    .ok_or_else(|| TorchError::UnsupportedDtype { name: format!("torch.{name}") })?,
                _ => {
                    return Err(TorchError::BadTensorArgs {
                        what: format!("dtype is {}", heap.describe(dtype)),
                    })
                }
            };
            rebuild(heap, args, Some(dtype))
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            resolve_tensor(heap, arg(0)?, depth + 1)
        }
        ("torch._tensor" | "torch._utils", "_rebuild_from_type_v2" | "_rebuild_from_type") => {
            // (func, type, args, state): the tensor is func(*args).
            resolve_call(heap, value, arg(0)?, arg(2)?, depth + 1)
        }
        (module, name) if module.starts_with("torch") && name.starts_with("_rebuild") => {
            Err(TorchError::UnsupportedTensor { function: function() })
        }
        _ => Err(not_a_tensor()),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`, and v3 with its dtype.
fn rebuild(heap: &Heap, args: &[Value], dtype: Option<TorchDType>) -> Result<TensorRef, TorchError> {
    let bad = |what: String| TorchError::BadTensorArgs { what };
    let [storage, offset, size, stride, ..] = args else {
        return Err(bad(format!("{} arguments, needs 4", args.len())));
    };
    let pid = match heap.node(storage) {
        Some(Node::Persistent(pid)) => pid,
        _ => return Err(bad(format!("storage is {}", heap.describe(storage)))),
    };
    let storage = parse_storage_pid(heap, pid)?;
    let dtype = match dtype {
        Some(dtype) => dtype,
        None => storage.class.and_then(|class| class.dtype).ok_or_else(|| match storage.class {
            Some(_) => TorchError::UnsupportedDtype { name: storage.class_name.clone() },
            None => TorchError::UnknownStorageType { name: storage.class_name.clone() },
        })?,
    };
    let offset = int(offset)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| bad(format!("storage offset is {}", heap.describe(offset))))?;
    let shape: Vec<usize> = counts(heap, size, "size")?
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| bad(format!("dimension {d} too large"))))
        .collect::<Result<_, _>>()?;
    let stride = counts(heap, stride, "stride")?;
    if stride.len() != shape.len() {
        return Err(bad(format!("{} strides for {} dimensions", stride.len(), shape.len())));
    }
    Ok(TensorRef { storage, dtype, layout: Layout { offset, shape, stride } })
}

/// A tuple (or list) of non-negative ints: a size or a stride.
fn counts(heap: &Heap, value: &Value, what: &str) -> Result<Vec<u64>, TorchError> {
    let bad = || TorchError::BadTensorArgs { what: format!("{what} is {}", heap.describe(value)) };
    let items = heap.sequence(value).ok_or_else(bad)?;
    if items.len() > MAX_RANK {
        return Err(TorchError::TooLarge {
            what: "tensor rank",
            size: items.len() as u64,
            limit: MAX_RANK as u64,
        });
    }
    items.iter().map(|item| int(item).and_then(|n| u64::try_from(n).ok()).ok_or_else(bad)).collect()
}

/// Reads a tensor's storage and gathers its elements.
fn materialize(tensor: &TensorRef, source: &mut dyn StorageSource) -> Result<TorchTensor, TorchError> {
    let storage = &tensor.storage;
    let element_size = match storage.class {
        Some(class) => class.element_size as u64,
        // v3 tensors name an untyped storage; other unknown classes fail in `rebuild`.
        None => tensor.dtype.size() as u64,
    };
    let big_endian = source.big_endian();
    let input_len = source.input_len();
    let bytes = source.bytes(&storage.key)?;
    let too_small = |needed: u64| TorchError::StorageTooSmall {
        key: storage.key.clone(),
        needed,
        available: bytes.len() as u64,
    };
    let (start, len) = match storage.view {
        Some((offset, size)) => (offset, size),
        None => (0, storage.numel),
    };
    let start = start.checked_mul(element_size);
    let end = len.checked_mul(element_size).zip(start).and_then(|(len, start)| len.checked_add(start));
    let (Some(start), Some(end)) = (start, end) else {
        return Err(too_small(u64::MAX));
    };
    let view = usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(start, end)| bytes.get(start..end))
        .ok_or_else(|| too_small(end))?;
    gather(view, tensor.dtype, &tensor.layout, big_endian, input_len)
}
