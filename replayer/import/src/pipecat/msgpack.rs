//! A bounded MessagePack reader for Whisker recordings: decodes one value at a time from a
//! byte slice into JSON. Binary and extension values become a short description (Whisker
//! writes none in frame records); nesting, lengths and counts are checked against the bytes
//! left, so no input sizes an allocation beyond the file itself.

use serde_json::{Map, Number, Value};

/// Deepest nesting accepted (Whisker's frame payloads are a few levels deep).
const MAX_DEPTH: usize = 64;

/// Why a value could not be read, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub offset: usize,
    pub reason: String,
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError {
            offset: self.pos,
            reason: reason.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() - self.pos {
            return self.fail(format!(
                "needs {n} bytes, only {} left (file cut short?)",
                self.bytes.len() - self.pos
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// Reads the next value.
    pub fn value(&mut self) -> Result<Value, DecodeError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return self.fail(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let b = self.take(1)?[0];
        Ok(match b {
            0x00..=0x7f => Value::from(b),
            0x80..=0x8f => self.map(usize::from(b & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(b & 0x0f), depth)?,
            0xa0..=0xbf => self.str(usize::from(b & 0x1f))?,
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.uint(1 << (b - 0xc4))? as usize;
                self.take(n)?;
                Value::String(format!("<binary, {n} bytes>"))
            }
            0xc7..=0xc9 => {
                let n = self.uint(1 << (b - 0xc7))? as usize;
                self.take(1 + n)?;
                Value::String(format!("<extension, {n} bytes>"))
            }
            0xca => {
                let bits = self.uint(4)? as u32;
                float(f64::from(f32::from_bits(bits)))
            }
            0xcb => float(f64::from_bits(self.uint(8)?)),
            0xcc..=0xcf => Value::from(self.uint(1 << (b - 0xcc))?),
            0xd0..=0xd3 => {
                let n = 1usize << (b - 0xd0);
                let raw = self.uint(n)?;
                let shift = 64 - 8 * n as u32;
                Value::from(((raw << shift) as i64) >> shift)
            }
            0xd4..=0xd8 => {
                let n = 1usize << (b - 0xd4);
                self.take(1 + n)?;
                Value::String(format!("<extension, {n} bytes>"))
            }
            0xd9..=0xdb => {
                let n = self.uint(1 << (b - 0xd9))? as usize;
                self.str(n)?
            }
            0xdc | 0xdd => {
                let n = self.uint(if b == 0xdc { 2 } else { 4 })? as usize;
                self.array(n, depth)?
            }
            0xde | 0xdf => {
                let n = self.uint(if b == 0xde { 2 } else { 4 })? as usize;
                self.map(n, depth)?
            }
            0xe0..=0xff => Value::from(i64::from(b as i8)),
            0xc1 => return self.fail("byte 0xc1 is never used in MessagePack"),
        })
    }

    fn str(&mut self, n: usize) -> Result<Value, DecodeError> {
        let raw = self.take(n)?;
        Ok(Value::String(String::from_utf8_lossy(raw).into_owned()))
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        // every element takes at least one byte
        if n > self.bytes.len() - self.pos {
            return self.fail(format!("an array of {n} items is longer than the file"));
        }
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value_at(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        if n > (self.bytes.len() - self.pos) / 2 {
            return self.fail(format!("a map of {n} entries is longer than the file"));
        }
        let mut m = Map::new();
        for _ in 0..n {
            let key = match self.value_at(depth + 1)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let v = self.value_at(depth + 1)?;
            m.insert(key, v);
        }
        Ok(Value::Object(m))
    }
}

fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_types_whisker_writes() {
        // {"a": 1, "b": [true, null, -3], "c": 1.5, "d": "hé"}
        let mut bytes = vec![0x84, 0xa1, b'a', 0x01, 0xa1, b'b', 0x93, 0xc3, 0xc0, 0xfd];
        bytes.extend([0xa1, b'c', 0xcb]);
        bytes.extend(1.5f64.to_bits().to_be_bytes());
        bytes.extend([0xa1, b'd', 0xa3, b'h', 0xc3, 0xa9]);
        let mut r = Reader::new(&bytes);
        assert_eq!(
            r.value().unwrap(),
            json!({"a": 1, "b": [true, null, -3], "c": 1.5, "d": "hé"})
        );
        assert!(r.at_end());
    }

    #[test]
    fn cut_and_oversized_input_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        assert!(r
            .value()
            .unwrap_err()
            .reason
            .contains("longer than the file"));
        let mut r = Reader::new(&[0xa5, b'a']);
        assert!(r.value().unwrap_err().reason.contains("cut short"));
        let deep = vec![0x91; 200];
        assert!(Reader::new(&deep)
            .value()
            .unwrap_err()
            .reason
            .contains("nested"));
        let mut r = Reader::new(&[0xc1]);
        assert!(r.value().is_err());
    }
}
