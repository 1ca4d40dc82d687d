//! The bytes of `x-envoy-peer-metadata`: base64 (standard alphabet, padded) of a
//! `google.protobuf.Struct` in protobuf's wire format, as Istio's proxies write it.
//!
//! Only the two `Value` kinds the exchange uses are understood, strings and nested
//! structs; other kinds (numbers, booleans, lists, null) are skipped, like any field we
//! do not know. The encoder writes map entries in key order (protobuf's deterministic
//! serialization), so one node always encodes to the same bytes.
//!
//! The wire format, for the record: `Struct { map<string, Value> fields = 1; }`, a map
//! entry being `{ string key = 1; Value value = 2; }`, and `Value` a oneof of which
//! `string_value = 3` and `struct_value = 5` are used here.

use std::collections::BTreeMap;

use base64::Engine;

/// A `google.protobuf.Value` of the kinds the exchange uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `string_value`.
    Str(String),
    /// `struct_value`.
    Struct(Fields),
}

/// The fields of a `google.protobuf.Struct`.
pub type Fields = BTreeMap<String, Value>;

/// Why a metadata header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not base64.
    #[error("not base64: {0}")]
    Base64(String),
    /// The protobuf ends in the middle of a field.
    #[error("the protobuf ends in the middle of a field")]
    Truncated,
    /// A wire type protobuf does not define (or the deprecated groups).
    #[error("unsupported protobuf wire type {0}")]
    WireType(u64),
    /// A string that is not UTF-8.
    #[error("a string is not UTF-8")]
    Utf8,
    /// Structs nested deeper than the exchange ever nests them.
    #[error("structs nested more than {MAX_DEPTH} deep")]
    TooDeep,
    /// More fields than any node description has.
    #[error("more than {MAX_FIELDS} fields in a struct")]
    TooManyFields,
}

/// How deep structs may nest: the node, and its `LABELS`.
const MAX_DEPTH: usize = 2;

/// Fields per struct we accept: a node has about ten, its labels a handful.
const MAX_FIELDS: usize = 64;

/// `fields` as the header's text.
pub fn encode(fields: &Fields) -> String {
    let mut out = Vec::new();
    encode_struct(fields, &mut out);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// The fields of a header's text.
pub fn decode(text: &[u8]) -> Result<Fields, WireError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| WireError::Base64(e.to_string()))?;
    decode_struct(&bytes, 1)
}

fn encode_struct(fields: &Fields, out: &mut Vec<u8>) {
    for (key, value) in fields {
        let mut entry = Vec::new();
        put_bytes(1, key.as_bytes(), &mut entry);
        let mut v = Vec::new();
        match value {
            Value::Str(s) => put_bytes(3, s.as_bytes(), &mut v),
            Value::Struct(inner) => {
                let mut nested = Vec::new();
                encode_struct(inner, &mut nested);
                put_bytes(5, &nested, &mut v);
            }
        }
        put_bytes(2, &v, &mut entry);
        put_bytes(1, &entry, out);
    }
}

/// A length-delimited field (wire type 2).
fn put_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    put_varint((field << 3) | 2, out);
    put_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn put_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads protobuf fields off a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
}

/// One field: its number and, for length-delimited ones, its bytes.
enum Field<'a> {
    Bytes(u64, &'a [u8]),
    Other,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.rest.split_first().ok_or(WireError::Truncated)?;
            self.rest = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(WireError::Truncated)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], WireError> {
        let n = usize::try_from(n).map_err(|_| WireError::Truncated)?;
        if n > self.rest.len() {
            return Err(WireError::Truncated);
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    /// The next field, or `None` at the end.
    fn field(&mut self) -> Result<Option<Field<'a>>, WireError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => {
                self.varint()?;
                Field::Other
            }
            1 => {
                self.take(8)?;
                Field::Other
            }
            2 => {
                let len = self.varint()?;
                Field::Bytes(key >> 3, self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Field::Other
            }
            other => return Err(WireError::WireType(other)),
        };
        Ok(Some(field))
    }
}

fn decode_struct(bytes: &[u8], depth: usize) -> Result<Fields, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    let mut fields = Fields::new();
    let mut r = Reader { rest: bytes };
    while let Some(field) = r.field()? {
        let Field::Bytes(1, entry) = field else {
            continue;
        };
        let (mut key, mut value) = (None, None);
        let mut e = Reader { rest: entry };
        while let Some(field) = e.field()? {
            match field {
                Field::Bytes(1, k) => {
                    key = Some(std::str::from_utf8(k).map_err(|_| WireError::Utf8)?)
                }
                Field::Bytes(2, v) => value = decode_value(v, depth)?,
                _ => {}
            }
        }
        if let (Some(key), Some(value)) = (key, value) {
            if fields.len() >= MAX_FIELDS {
                return Err(WireError::TooManyFields);
            }
            fields.insert(key.to_owned(), value);
        }
    }
    Ok(fields)
}

/// A `Value`: `None` for the kinds the exchange does not use.
fn decode_value(bytes: &[u8], depth: usize) -> Result<Option<Value>, WireError> {
    let mut r = Reader { rest: bytes };
    let mut value = None;
    while let Some(field) = r.field()? {
        match field {
            Field::Bytes(3, s) => {
                let s = std::str::from_utf8(s).map_err(|_| WireError::Utf8)?;
                value = Some(Value::Str(s.to_owned()));
            }
            Field::Bytes(5, s) => value = Some(Value::Struct(decode_struct(s, depth + 1)?)),
            _ => value = None,
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.to_owned())
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let labels: Fields = [
            ("app".to_owned(), s("reviews")),
            ("version".to_owned(), s("v2")),
        ]
        .into();
        let node: Fields = [
            ("NAMESPACE".to_owned(), s("default")),
            ("LABELS".to_owned(), Value::Struct(labels)),
            ("WORKLOAD_NAME".to_owned(), s("reviews-v2")),
        ]
        .into();
        let text = encode(&node);
        assert_eq!(text, encode(&node.clone()));
        assert_eq!(decode(text.as_bytes()).unwrap(), node);
    }

    #[test]
    fn reads_the_bytes_protobuf_writes() {
        // Struct{fields: {"NAME": string_value "a"}}, as protoc --encode writes it:
        // 0a 0b (entry) 0a 04 "NAME" 12 03 (value) 1a 01 "a".
        let bytes = [
            0x0a, 0x0b, 0x0a, 0x04, b'N', b'A', b'M', b'E', 0x12, 0x03, 0x1a, 0x01, b'a',
        ];
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(
            decode(text.as_bytes()).unwrap(),
            [("NAME".to_owned(), s("a"))].into()
        );
        let mut ours = Vec::new();
        encode_struct(&[("NAME".to_owned(), s("a"))].into(), &mut ours);
        assert_eq!(ours, bytes);
    }

    #[test]
    fn skips_other_kinds_and_refuses_garbage() {
        // {"n": number_value 1.0 (field 2, wire type 1)}: skipped.
        let mut entry = Vec::new();
        put_bytes(1, b"n", &mut entry);
        let mut v = vec![0x11];
        v.extend_from_slice(&1.0f64.to_le_bytes());
        put_bytes(2, &v, &mut entry);
        let mut bytes = Vec::new();
        put_bytes(1, &entry, &mut bytes);
        let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(decode(text.as_bytes()).unwrap(), Fields::new());

        assert!(matches!(decode(b"not base64!"), Err(WireError::Base64(_))));
        let cut = base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() - 2]);
        assert_eq!(decode(cut.as_bytes()), Err(WireError::Truncated));
        let group = base64::engine::general_purpose::STANDARD.encode([0x0b]);
        assert_eq!(decode(group.as_bytes()), Err(WireError::WireType(3)));
        // Three levels of structs: deeper than a node goes.
        let deep: Fields = [(
            "a".to_owned(),
            Value::Struct(
                [(
                    "b".to_owned(),
                    Value::Struct([("c".to_owned(), s("d"))].into()),
                )]
                .into(),
            ),
        )]
        .into();
        assert_eq!(decode(encode(&deep).as_bytes()), Err(WireError::TooDeep));
    }
}
