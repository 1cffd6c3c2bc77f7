//! Unit tests of the pickle machine on hand-built byte strings (several as Python 3.11's
//! `pickle.dumps` writes them, noted beside each).

use super::*;

fn run(bytes: &[u8]) -> (Heap, Unpickled) {
    let mut heap = Heap::new();
    let out = unpickle(bytes, 0, Stream::File, &mut heap).unwrap_or_else(|e| panic!("{e} for {bytes:?}"));
    assert_eq!(out.end, bytes.len());
    (heap, out)
}

fn run_err(bytes: &[u8]) -> TorchError {
    let mut heap = Heap::new();
    match unpickle(bytes, 0, Stream::File, &mut heap) {
        Ok(out) => panic!("{bytes:?} unpickled to {:?}", out.value),
        Err(e) => e,
    }
}

fn items<'h>(heap: &'h Heap, value: &Value) -> &'h [Value] {
    heap.sequence(value).unwrap_or_else(|| panic!("{} is not a sequence", heap.describe(value)))
}

fn entries<'h>(heap: &'h Heap, value: &Value) -> &'h [(Value, Value)] {
    heap.mapping(value).unwrap_or_else(|| panic!("{} is not a dict", heap.describe(value)))
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

#[test]
fn protocol_2_dict_of_lists() {
    // pickle.dumps({'a': [1, 2], 'b': []}, protocol=2)
    let (heap, out) =
        run(b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02eX\x01\x00\x00\x00bq\x03]q\x04u.");
    let dict = entries(&heap, &out.value);
    assert_eq!(dict.len(), 2);
    assert_eq!(dict[0].0, s("a"));
    assert_eq!(items(&heap, &dict[0].1), &[Value::Int(1), Value::Int(2)]);
    assert_eq!(dict[1].0, s("b"));
    assert!(items(&heap, &dict[1].1).is_empty());
}

#[test]
fn integers_of_every_width() {
    // pickle.dumps([-1, -32768, 255, 0, 2**63, -2**63 - 1, MAGIC_NUMBER], protocol=2)
    let (heap, out) = run(
        b"\x80\x02]q\x00(J\xff\xff\xff\xffJ\x00\x80\xff\xffK\xffK\x00\x8a\t\x00\x00\x00\x00\x00\x00\x00\x80\x00\x8a\t\xff\xff\xff\xff\xff\xff\xff\x7f\xff\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19e.",
    );
    let list = items(&heap, &out.value);
    assert_eq!(&list[..4], &[Value::Int(-1), Value::Int(-32768), Value::Int(255), Value::Int(0)]);
    assert_eq!(list[4], Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0x80, 0].into()));
    assert_eq!(list[5], Value::BigInt(vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff].into()));
    assert_eq!(
        list[6],
        Value::BigInt(vec![0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19].into())
    );
}

#[test]
fn long1_negative_numbers() {
    for (bytes, expected) in [
        (&b"\x8a\x01\xff."[..], -1),
        (b"\x8a\x02\x00\x80.", -32768),
        (b"\x8a\x02\xff\x00.", 255),
        (b"\x8a\x00.", 0),
        (b"\x8a\x03\x00\x00\x80.", -(1 << 23)),
        (b"\x8a\x09\xfe\xff\xff\xff\xff\xff\xff\xff\xff.", -2),
        (b"\x8b\x02\x00\x00\x00\x01\xfe.", -511),
    ] {
        let (_, out) = run(bytes);
        assert_eq!(out.value, Value::Int(expected), "{bytes:?}");
    }
}

#[test]
fn memo_reuse_shares_one_object() {
    // x = [1]; pickle.dumps((x, x), protocol=2): the list is memoized empty, appended to, then
    // fetched again; both tuple items are the same list.
    let (heap, out) = run(b"\x80\x02]q\x00K\x01ah\x00\x86q\x01.");
    let pair = items(&heap, &out.value);
    assert_eq!(pair[0], pair[1]);
    assert_eq!(items(&heap, &pair[1]), &[Value::Int(1)]);
    // MEMOIZE and LONG_BINPUT / LONG_BINGET.
    let (heap, out) = run(b"\x80\x04]\x94r\x07\x00\x00\x00K\x05a(h\x00j\x07\x00\x00\x00t.");
    let pair = items(&heap, &out.value);
    assert_eq!(pair[0], pair[1]);
    assert_eq!(items(&heap, &pair[0]), &[Value::Int(5)]);
}

#[test]
fn protocol_0_text_opcodes() {
    // pickle.dumps({'a': 1, 'b': [1.5, 'x', None, True]}, protocol=0)
    let (heap, out) = run(b"(dp0\nVa\np1\nI1\nsVb\np2\n(lp3\nF1.5\naVx\np4\naNaI01\nas.");
    let dict = entries(&heap, &out.value);
    assert_eq!(dict[0], (s("a"), Value::Int(1)));
    assert_eq!(items(&heap, &dict[1].1), &[Value::Float(1.5), s("x"), Value::None, Value::Bool(true)]);
    // pickle.dumps(2**70, protocol=0) and a negative one.
    let (_, out) = run(b"L1180591620717411303424L\n.");
    assert_eq!(out.value, Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 0x40].into()));
    let (_, out) = run(b"L-1180591620717411303424L\n.");
    assert_eq!(out.value, Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0, 0xc0].into()));
    let (_, out) = run(b"I-42\n.");
    assert_eq!(out.value, Value::Int(-42));
    // STRING with escapes, UNICODE with raw-unicode-escape, GET by text key.
    let (heap, out) = run(b"(S'a\\n\\x41\\'\\101'\np0\nV\\u00e9\\u005c\xe9\np1\ng0\nt.");
    assert_eq!(items(&heap, &out.value), &[s("a\nA'A"), s("\u{e9}\\\u{e9}"), s("a\nA'A")]);
}

#[test]
fn protocol_4_frames_and_stack_global() {
    // pickle.dumps(collections.OrderedDict(a=1), protocol=4)
    let (heap, out) = run(
        b"\x80\x04\x95)\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94\x8c\x01a\x94K\x01s.",
    );
    assert_eq!(entries(&heap, &out.value), &[(s("a"), Value::Int(1))]);
    // pickle.dumps({1, 2}, protocol=4)
    let (heap, out) = run(b"\x80\x04\x95\t\x00\x00\x00\x00\x00\x00\x00\x8f\x94(K\x01K\x02\x90.");
    assert!(matches!(heap.node(&out.value), Some(Node::Set(v)) if v.len() == 2));
}

#[test]
fn bytes_of_every_protocol() {
    // pickle.dumps(b'\x00\xff', protocol=2): _codecs.encode('\x00ÿ', 'latin1').
    let (_, out) = run(
        b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.",
    );
    assert_eq!(out.value, Value::Bytes(vec![0, 0xff].into()));
    let (heap, out) = run(b"\x80\x05(C\x01aB\x01\x00\x00\x00b\x8e\x01\x00\x00\x00\x00\x00\x00\x00c\x96\x01\x00\x00\x00\x00\x00\x00\x00d\x98U\x02\xc3\xa9U\x01\xfft.");
    assert_eq!(
        items(&heap, &out.value),
        &[
            Value::Bytes(b"a"[..].into()),
            Value::Bytes(b"b"[..].into()),
            Value::Bytes(b"c"[..].into()),
            Value::Bytes(b"d"[..].into()),
            s("\u{e9}"),
            Value::Bytes(vec![0xff].into()),
        ]
    );
}

#[test]
fn floats() {
    let (_, out) = run(b"G\x3f\xf8\x00\x00\x00\x00\x00\x00.");
    assert_eq!(out.value, Value::Float(1.5));
    let (_, out) = run(b"F-inf\n.");
    assert_eq!(out.value, Value::Float(f64::NEG_INFINITY));
}

#[test]
fn unknown_classes_are_kept_as_calls() {
    // argparse.Namespace(lr=0.1) at protocol 2: NEWOBJ, then BUILD with its __dict__.
    let (heap, out) = run(
        b"\x80\x02cargparse\nNamespace\nq\x00)\x81q\x01}q\x02X\x02\x00\x00\x00lrq\x03G?\xb9\x99\x99\x99\x99\x99\x9asb.",
    );
    let Some(Node::Call(call)) = heap.node(&out.value) else {
        panic!("{}", heap.describe(&out.value));
    };
    assert_eq!(heap.global(&call.callable), Some(("argparse", "Namespace")));
    let state = call.state.as_ref().expect("BUILD state");
    assert_eq!(entries(&heap, state), &[(s("lr"), Value::Float(0.1))]);
    assert_eq!(heap.describe(&out.value), "argparse.Namespace(...)");
    // Python 2 module names are mapped; INST and OBJ build calls too.
    let (heap, out) = run(b"(c__builtin__\nset\n(i__main__\nPoint\n(c__main__\nPoint\nK\x01K\x02ot.");
    let list = items(&heap, &out.value);
    assert_eq!(heap.describe(&list[0]), "global builtins.set");
    assert_eq!(heap.describe(&list[1]), "__main__.Point(...)");
}

#[test]
fn persistent_ids_are_listed() {
    let (heap, out) = run(b"\x80\x02(X\x01\x00\x00\x00kQPtext\nt.");
    assert_eq!(out.persistent_ids, vec![s("k"), s("text")]);
    let list = items(&heap, &out.value);
    assert!(matches!(heap.node(&list[0]), Some(Node::Persistent(v)) if *v == s("k")));
}

#[test]
fn dict_keys_replace_in_place() {
    let (heap, out) = run(b"}(K\x01N\x88K\x02X\x01\x00\x00\x00aK\x03u.");
    // True == 1, so the second item replaces the first.
    assert_eq!(entries(&heap, &out.value), &[(Value::Int(1), Value::Int(2)), (s("a"), Value::Int(3))]);
}

#[test]
fn pop_and_pop_mark() {
    let (heap, out) = run(b"(K\x01K\x020t.");
    assert_eq!(items(&heap, &out.value), &[Value::Int(1)]);
    let (_, out) = run(b"K\x07(K\x01K\x021.");
    assert_eq!(out.value, Value::Int(7));
    // POP with nothing above the mark drops the mark (as Python's load_pop does).
    let (heap, out) = run(b"((0K\x03t.");
    assert_eq!(items(&heap, &out.value), &[Value::Int(3)]);
}

#[test]
fn deep_nesting_does_not_recurse() {
    let mut bytes = vec![b')'];
    bytes.extend(std::iter::repeat_n(0x85u8, 200_000));
    bytes.push(b'.');
    let (heap, out) = run(&bytes);
    assert_eq!(items(&heap, &out.value).len(), 1);
    drop(heap);
    // A list that contains itself.
    let (heap, out) = run(b"]q\x00h\x00a.");
    assert_eq!(items(&heap, &out.value), std::slice::from_ref(&out.value));
}

#[test]
fn malformed_pickles_are_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "truncated"),
        (b"\x80\x02", "truncated"),
        (b"\x80\x02.", "underflow"),
        (b"(.", "underflow"),
        (b"K\x01(a.", "underflow"),
        (b"t.", "no MARK"),
        (b"\xff", "unknown pickle opcode"),
        (b"X\x05\x00\x00\x00ab", "truncated"),
        (b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff", "truncated"),
        (b"\x8b\xff\xff\xff\xff", "negative"),
        (b"T\x00\x00\x00\x80", "negative"),
        (b"h\x05.", "memo key 5"),
        (b"K\x00K\x01K\x02s.", "not a dict"),
        (b"K\x01K\x02a.", "not a list"),
        (b"(K\x01d.", "odd number"),
        (b"\x80\x06", "protocol above 5"),
        (b"\x97", "out-of-band"),
        (b"S'abc\n.", "not quoted"),
        (b"Iabc\n.", "not a decimal"),
        (b"Fx\n.", "not a number"),
        (b"K\x01K\x02\x93.", "not strings"),
        (b"(o.", "OBJ without a class"),
        (b"cmodule\n", "truncated"),
        (b"\x95\x10\x00\x00\x00\x00\x00\x00\x00N.", "truncated"),
    ];
    for (bytes, needle) in cases {
        let message = run_err(bytes).to_string();
        assert!(message.contains(needle), "{bytes:?}: {message}");
    }
    let long: Vec<u8> = [b"I".as_slice(), &[b'9'; 5000], b"\n."].concat();
    assert!(matches!(run_err(&long), TorchError::TooLarge { .. }));
}

#[test]
fn errors_carry_offsets() {
    match run_err(b"\x80\x02K\x01\xfe") {
        TorchError::UnknownOpcode { opcode: 0xfe, offset: 4, stream: Stream::File } => {}
        other => panic!("{other:?}"),
    }
    match run_err(b"\x80\x02N(K\x01K\x02s") {
        TorchError::MalformedPickle { opcode: b's', offset: 8, .. } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn pickles_run_in_sequence() {
    let bytes = b"\x80\x02K\x01.\x80\x02K\x02.";
    let mut heap = Heap::new();
    let first = unpickle(bytes, 0, Stream::File, &mut heap).unwrap();
    let second = unpickle(bytes, first.end, Stream::File, &mut heap).unwrap();
    assert_eq!((first.value, second.value), (Value::Int(1), Value::Int(2)));
    assert_eq!(second.end, bytes.len());
}
