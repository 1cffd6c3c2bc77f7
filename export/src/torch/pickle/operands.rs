//! Decoding of pickle operands: integers in two's complement or decimal text, and the string
//! encodings of the text opcodes.

use crate::torch::value::Value;

/// An integer from little-endian two's complement bytes (LONG1, LONG4).
pub(crate) fn int_from_le(bytes: &[u8]) -> Value {
    let bytes = strip_sign_extension(bytes);
    if bytes.len() <= 8 {
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut word = if negative { [0xff; 8] } else { [0; 8] };
        for (w, b) in word.iter_mut().zip(bytes) {
            *w = *b;
        }
        Value::Int(i64::from_le_bytes(word))
    } else {
        Value::BigInt(bytes.into())
    }
}

/// Drops high bytes that only repeat the sign.
fn strip_sign_extension(bytes: &[u8]) -> &[u8] {
    let mut len = bytes.len();
    while len >= 2 {
        let (Some(&last), Some(&next)) = (bytes.get(len - 1), bytes.get(len - 2)) else {
            break;
        };
        let redundant = (last == 0 && next & 0x80 == 0) || (last == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        len -= 1;
    }
    if len == 1 && bytes.first() == Some(&0) {
        len = 0;
    }
    bytes.get(..len).unwrap_or_default()
}

/// Decimal digits to little-endian two's complement.
pub(super) fn decimal_to_le(digits: &[u8], negative: bool) -> Vec<u8> {
    let mut magnitude: Vec<u8> = Vec::new();
    for &digit in digits {
        let mut carry = u32::from(digit - b'0');
        for byte in magnitude.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            magnitude.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    magnitude.push(0); // room for the sign bit
    if negative {
        let mut carry = 1u16;
        for byte in magnitude.iter_mut() {
            let v = u16::from(!*byte) + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
    }
    magnitude
}

/// Bytes of a Python 2 `str` (STRING, BINSTRING, SHORT_BINSTRING): text if UTF-8, as
/// `torch.load`'s default `encoding='utf-8'` decodes them, bytes otherwise.
pub(super) fn byte_string(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::Str(s.into()),
        Err(_) => Value::Bytes(bytes.into()),
    }
}

/// UTF-8 text; Python's `surrogatepass` lets lone surrogates through, which become U+FFFD here.
pub(super) fn unicode(bytes: &[u8]) -> Value {
    Value::Str(String::from_utf8_lossy(bytes).into())
}

pub(super) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Python's `codecs.escape_decode`, as the STRING opcode uses it.
pub(super) fn escape_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = s.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hex = s
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.extend_from_slice(b"\\x"),
                }
            }
            other => out.extend_from_slice(&[b'\\', other]),
        }
    }
    out
}

/// Python's `raw_unicode_escape` decoding (the UNICODE opcode): `\uXXXX` and `\UXXXXXXXX`
/// escapes, every other byte a Latin-1 character.
pub(super) fn raw_unicode_escape_decode(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let digits = match (b, s.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        let code = (digits > 0)
            .then(|| s.get(i + 2..i + 2 + digits))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        match code {
            Some(code) => {
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                i += 2 + digits;
            }
            None => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
    out
}
