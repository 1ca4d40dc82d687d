//! JSON in the exact spelling Bookinfo clients see.
//!
//! productpage's API re-serialises upstream JSON the way Python's `json.dumps` does,
//! with `", "` between items and `": "` after keys, keeping key order. Labs and scripts
//! compare these bodies as text, so we reproduce the spelling rather than serde's
//! compact form.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

/// A `serde_json` formatter with Python's default separators.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Serialises `value` with [`PythonFormatter`].
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut ser)?;
    // serde_json only ever writes valid UTF-8.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_separators_and_key_order() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"id":0,"b":[1,2],"a":{"x":"y"}}"#).unwrap();
        assert_eq!(
            to_python_json(&v).unwrap(),
            r#"{"id": 0, "b": [1, 2], "a": {"x": "y"}}"#
        );
    }
}
