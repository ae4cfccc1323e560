//! A zero-copy Hessian 2.0 reader over one message body.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::string::{cesu_to_utf8, char_shape, supplementary};
use super::{Error, MAX_DEPTH};

/// A value as the reader hands it out: the scalars a header can hold, or `Other` for
/// anything else (stepped over, not built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    /// An int or a long.
    Int(i64),
    /// A string's bytes as UTF-8 (surrogate pairs joined); a slice of the body unless the
    /// string came in chunks or held such pairs.
    Str(Bytes),
    /// A double, date, binary, list, map, object or reference.
    Other,
}

/// Reads values one after another from a body. Keeps the class definitions it has seen,
/// since an object refers to one defined earlier anywhere in the same body.
pub struct Reader<'a> {
    src: &'a Bytes,
    pos: usize,
    /// Field counts of the class definitions so far, by definition number.
    classes: Vec<usize>,
}

type Result<T> = std::result::Result<T, Error>;

impl<'a> Reader<'a> {
    pub fn new(src: &'a Bytes) -> Self {
        Reader {
            src,
            pos: 0,
            classes: Vec::new(),
        }
    }

    /// The offset of the next value in the body.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub fn peek(&self) -> Result<u8> {
        self.src.get(self.pos).copied().ok_or(Error::Eof)
    }

    fn byte(&mut self) -> Result<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<Range<usize>> {
        let end = self.pos.checked_add(n).ok_or(Error::Eof)?;
        if end > self.src.len() {
            return Err(Error::Eof);
        }
        let range = self.pos..end;
        self.pos = end;
        Ok(range)
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N]> {
        let range = self.take(N)?;
        self.src
            .get(range)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::Eof)
    }

    fn u8_as_i64(&mut self) -> Result<i64> {
        self.byte().map(i64::from)
    }

    fn u16(&mut self) -> Result<usize> {
        self.be::<2>().map(|b| usize::from(u16::from_be_bytes(b)))
    }

    /// An int or a long in any of their encodings (Java's reader converts between them too).
    pub fn read_int(&mut self) -> Result<i64> {
        let tag = self.byte()?;
        self.int_after(tag)
    }

    fn int_after(&mut self, tag: u8) -> Result<i64> {
        let t = i64::from(tag);
        Ok(match tag {
            0x80..=0xbf => t - 0x90,
            0xc0..=0xcf => ((t - 0xc8) << 8) + self.u8_as_i64()?,
            0xd0..=0xd7 => ((t - 0xd4) << 16) + (self.u8_as_i64()? << 8) + self.u8_as_i64()?,
            b'I' | 0x59 => i64::from(i32::from_be_bytes(self.be()?)),
            0xd8..=0xef => t - 0xe0,
            0xf0..=0xff => ((t - 0xf8) << 8) + self.u8_as_i64()?,
            0x38..=0x3f => ((t - 0x3c) << 16) + (self.u8_as_i64()? << 8) + self.u8_as_i64()?,
            b'L' => i64::from_be_bytes(self.be()?),
            _ => return Err(Error::Malformed("integer expected")),
        })
    }

    /// A non-negative int that counts something (a list length, a field count).
    fn read_count(&mut self) -> Result<usize> {
        let n = self.read_int()?;
        usize::try_from(n).map_err(|_| Error::Malformed("negative length"))
    }

    /// A string, or `None` for null.
    pub fn read_string(&mut self) -> Result<Option<Bytes>> {
        match self.byte()? {
            b'N' => Ok(None),
            tag if is_string_tag(tag) => self.string_after(tag).map(Some),
            _ => Err(Error::Malformed("string expected")),
        }
    }

    fn string_after(&mut self, tag: u8) -> Result<Bytes> {
        let mut first: Option<Range<usize>> = None;
        let mut joined: Option<BytesMut> = None;
        self.string_chunks(tag, |src, range| match (&first, &mut joined) {
            (None, _) => first = Some(range),
            (Some(f), None) => {
                let mut j = BytesMut::new();
                j.extend_from_slice(src.get(f.clone()).unwrap_or_default());
                j.extend_from_slice(src.get(range).unwrap_or_default());
                joined = Some(j);
            }
            (Some(_), Some(j)) => j.extend_from_slice(src.get(range).unwrap_or_default()),
        })?;
        let bytes = match (joined, first) {
            (Some(j), _) => j.freeze(),
            (None, Some(f)) => self.src.slice(f),
            (None, None) => Bytes::new(),
        };
        Ok(match cesu_to_utf8(&bytes) {
            Some(v) => Bytes::from(v),
            None => bytes,
        })
    }

    /// Walks a string's chunks (the first chunk's tag already read), handing each chunk's byte
    /// range to `on_chunk`.
    fn string_chunks(
        &mut self,
        mut tag: u8,
        mut on_chunk: impl FnMut(&Bytes, Range<usize>),
    ) -> Result<()> {
        loop {
            let (units, last) = match tag {
                0x00..=0x1f => (usize::from(tag), true),
                0x30..=0x33 => (
                    (usize::from(tag - 0x30) << 8) | usize::from(self.byte()?),
                    true,
                ),
                b'S' => (self.u16()?, true),
                b'R' => (self.u16()?, false),
                _ => return Err(Error::Malformed("string chunk expected")),
            };
            let range = self.chars(units)?;
            on_chunk(self.src, range);
            if last {
                return Ok(());
            }
            tag = self.byte()?;
        }
    }

    /// Steps over `units` UTF-16 units of characters; their byte range.
    fn chars(&mut self, mut units: usize) -> Result<Range<usize>> {
        let start = self.pos;
        while units > 0 {
            let (len, n) = char_shape(self.peek()?)?;
            if n > units {
                return Err(Error::Malformed("a character straddles a string's length"));
            }
            let range = self.take(len)?;
            if len == 4 && supplementary(self.src.get(range).unwrap_or_default()).is_none() {
                return Err(Error::Malformed("bad 4-byte UTF-8 character"));
            }
            units -= n;
        }
        Ok(start..self.pos)
    }

    fn binary_chunks(&mut self, mut tag: u8) -> Result<()> {
        loop {
            let (len, last) = match tag {
                0x20..=0x2f => (usize::from(tag - 0x20), true),
                0x34..=0x37 => (
                    (usize::from(tag - 0x34) << 8) | usize::from(self.byte()?),
                    true,
                ),
                b'B' => (self.u16()?, true),
                b'A' => (self.u16()?, false),
                _ => return Err(Error::Malformed("binary chunk expected")),
            };
            self.take(len)?;
            if last {
                return Ok(());
            }
            tag = self.byte()?;
        }
    }

    /// The next value if it is a scalar; anything else is stepped over and reported as
    /// `Other`. `depth` is how deep the value already sits (for the nesting limit).
    pub fn read_value(&mut self, depth: usize) -> Result<Value> {
        let tag = self.peek()?;
        Ok(match tag {
            b'N' => {
                self.pos += 1;
                Value::Null
            }
            b'T' | b'F' => {
                self.pos += 1;
                Value::Bool(tag == b'T')
            }
            0x80..=0xd7 | b'I' | 0xd8..=0xff | 0x38..=0x3f | 0x59 | b'L' => {
                Value::Int(self.read_int()?)
            }
            _ if is_string_tag(tag) => {
                self.pos += 1;
                Value::Str(self.string_after(tag)?)
            }
            _ => {
                self.skip_at(depth)?;
                Value::Other
            }
        })
    }

    /// Steps over one value of any type without building it.
    pub fn skip_value(&mut self) -> Result<()> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        // Class definitions precede the object that first uses them; a loop, not recursion,
        // so a run of them cannot grow the stack.
        let mut tag = self.byte()?;
        while tag == b'C' {
            self.class_def()?;
            tag = self.byte()?;
        }
        let fixed = match tag {
            b'N' | b'T' | b'F' | 0x80..=0xbf | 0xd8..=0xef | 0x5b | 0x5c => 0,
            0xc0..=0xcf | 0xf0..=0xff | 0x5d => 1,
            0xd0..=0xd7 | 0x38..=0x3f | 0x5e => 2,
            b'I' | 0x59 | 0x5f | 0x4b => 4,
            b'L' | b'D' | 0x4a => 8,
            _ => return self.skip_variable(tag, depth),
        };
        self.take(fixed).map(drop)
    }

    fn skip_variable(&mut self, tag: u8, depth: usize) -> Result<()> {
        match tag {
            _ if is_string_tag(tag) => self.string_chunks(tag, |_, _| ()),
            0x20..=0x2f | 0x34..=0x37 | b'A' | b'B' => self.binary_chunks(tag),
            b'H' => self.skip_map_entries(depth),
            b'M' => {
                self.skip_type()?;
                self.skip_map_entries(depth)
            }
            b'W' => self.skip_until_end(depth),
            b'U' => {
                self.skip_type()?;
                self.skip_until_end(depth)
            }
            b'X' => {
                let n = self.read_count()?;
                self.skip_n(n, depth)
            }
            b'V' => {
                self.skip_type()?;
                let n = self.read_count()?;
                self.skip_n(n, depth)
            }
            0x70..=0x77 => {
                self.skip_type()?;
                self.skip_n(usize::from(tag - 0x70), depth)
            }
            0x78..=0x7f => self.skip_n(usize::from(tag - 0x78), depth),
            b'O' => {
                let class = self.read_count()?;
                self.skip_object(class, depth)
            }
            0x60..=0x6f => self.skip_object(usize::from(tag - 0x60), depth),
            b'Q' => self.read_int().map(drop),
            _ => Err(Error::Malformed("unknown value tag")),
        }
    }

    /// `n` values one level down. Each value takes at least one byte, so a huge `n` from the
    /// wire ends at the body's end, not in a long loop.
    fn skip_n(&mut self, n: usize, depth: usize) -> Result<()> {
        for _ in 0..n {
            self.skip_at(depth + 1)?;
        }
        Ok(())
    }

    fn skip_until_end(&mut self, depth: usize) -> Result<()> {
        while self.peek()? != b'Z' {
            self.skip_at(depth + 1)?;
        }
        self.pos += 1;
        Ok(())
    }

    fn skip_map_entries(&mut self, depth: usize) -> Result<()> {
        while self.peek()? != b'Z' {
            self.skip_at(depth + 1)?;
            self.skip_at(depth + 1)?;
        }
        self.pos += 1;
        Ok(())
    }

    fn skip_object(&mut self, class: usize, depth: usize) -> Result<()> {
        let fields = *self
            .classes
            .get(class)
            .ok_or(Error::Malformed("object of an undefined class"))?;
        self.skip_n(fields, depth)
    }

    /// `'C'` (already read) type-name field-count field-name*.
    fn class_def(&mut self) -> Result<()> {
        self.skip_string()?;
        let fields = self.read_count()?;
        for _ in 0..fields {
            self.skip_string()?;
        }
        self.classes.push(fields);
        Ok(())
    }

    fn skip_string(&mut self) -> Result<()> {
        match self.byte()? {
            tag if is_string_tag(tag) => self.string_chunks(tag, |_, _| ()),
            _ => Err(Error::Malformed("string expected")),
        }
    }

    /// A list's or map's type: a type name, or an int referring to one seen before.
    fn skip_type(&mut self) -> Result<()> {
        if is_string_tag(self.peek()?) {
            self.skip_string()
        } else {
            self.read_int().map(drop)
        }
    }

    /// Opens a map: `Ok(true)` past `'H'` or `'M'` and its type, `Ok(false)` past a null.
    pub fn map_begin(&mut self) -> Result<bool> {
        match self.byte()? {
            b'N' => Ok(false),
            b'H' => Ok(true),
            b'M' => self.skip_type().map(|()| true),
            _ => Err(Error::Malformed("map expected")),
        }
    }

    /// Whether the open map or list ends here (and, if so, steps past its `'Z'`).
    pub fn at_map_end(&mut self) -> Result<bool> {
        let end = self.peek()? == b'Z';
        if end {
            self.pos += 1;
        }
        Ok(end)
    }
}

fn is_string_tag(tag: u8) -> bool {
    matches!(tag, 0x00..=0x1f | 0x30..=0x33 | b'R' | b'S')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Value> {
        let b = Bytes::copy_from_slice(bytes);
        let mut r = Reader::new(&b);
        let v = r.read_value(0)?;
        assert!(r.is_at_end(), "trailing bytes after {v:?}");
        Ok(v)
    }

    fn skip(bytes: &[u8]) -> Result<usize> {
        let b = Bytes::copy_from_slice(bytes);
        let mut r = Reader::new(&b);
        r.skip_value()?;
        Ok(r.position())
    }

    #[test]
    fn ints_and_longs_in_every_encoding() {
        for (bytes, want) in [
            (&[0x90][..], 0),
            (&[0x80], -16),
            (&[0xbf], 47),
            (&[0xc8, 0x30], 48),
            (&[0xc0, 0x00], -2048),
            (&[0xd4, 0x08, 0x00], 2048),
            (&[0xd0, 0x00, 0x00], -262_144),
            (&[b'I', 0x7f, 0xff, 0xff, 0xff], i64::from(i32::MAX)),
            (&[0xe0], 0),
            (&[0xd8], -8),
            (&[0xf8, 0x10], 16),
            (&[0x3c, 0x08, 0x00], 2048),
            (&[0x59, 0x80, 0, 0, 0], i64::from(i32::MIN)),
            (&[b'L', 0x80, 0, 0, 0, 0, 0, 0, 0], i64::MIN),
        ] {
            assert_eq!(read(bytes), Ok(Value::Int(want)), "{bytes:02x?}");
            assert_eq!(skip(bytes), Ok(bytes.len()), "{bytes:02x?}");
        }
    }

    #[test]
    fn strings_short_medium_long_and_chunked() {
        assert_eq!(read(b"\x00"), Ok(Value::Str(Bytes::new())));
        assert_eq!(read(b"\x05hello"), Ok(Value::Str("hello".into())));
        let mid = "m".repeat(300);
        let mut b = vec![0x31, 0x2c];
        b.extend_from_slice(mid.as_bytes());
        assert_eq!(read(&b), Ok(Value::Str(mid.into())));
        // 'R' non-final chunk, then a short final chunk.
        let v = read(b"R\x00\x03abc\x02de").unwrap();
        assert_eq!(v, Value::Str("abcde".into()));
        assert_eq!(read(b"S\x00\x02h\xc3\xa9"), Ok(Value::Str("hé".into())));
        // Lengths count UTF-16 units: a surrogate pair is two, and comes out as UTF-8.
        let v = read(&[0x02, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]).unwrap();
        assert_eq!(v, Value::Str("😀".into()));
        assert_eq!(
            read(&[0x02, 0xf0, 0x9f, 0x98, 0x80]),
            Ok(Value::Str("😀".into()))
        );
    }

    #[test]
    fn bad_strings_are_errors() {
        assert_eq!(read(b"\x05hell"), Err(Error::Eof));
        assert!(matches!(read(&[0x01, 0x80]), Err(Error::Malformed(_))));
        assert!(matches!(
            read(&[0x01, 0xf0, 0x9f, 0x98, 0x80]),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            read(&[0x02, 0xf0, 0x80, 0x80, 0x80]),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(read(b"R\x00\x01aN"), Err(Error::Malformed(_))));
        assert_eq!(read(b"R\x00\x01a"), Err(Error::Eof));
    }

    #[test]
    fn containers_objects_and_refs_are_stepped_over() {
        for bytes in [
            &b"H\x01a\x91\x01b\x03xyzZ"[..],
            b"M\x04type\x01aNZ",
            b"M\x90Z", // a type given as a reference
            b"W\x91\x92TZ",
            b"U\x04type\x91Z",
            b"X\x92\x91\x92",
            b"V\x04type\x92\x91\x92",
            b"\x72\x04type\x91\x92",
            b"\x79\x91",
            b"C\x03Car\x92\x05color\x05model\x60\x03red\x08corvette",
            b"C\x01A\x91\x01xC\x01B\x90\x61",
            b"C\x01A\x91\x01xO\x90\x91",
            b"Q\x90",
            b"\x23abc",
            b"A\x00\x01xB\x00\x02yz",
            b"\x34\x03abc",
            b"D\x40\x28\x80\x00\x00\x00\x00\x00",
            b"\x5f\x00\x00\x00\x01",
            b"\x4a\x00\x00\x00\x00\x00\x00\x00\x01",
            b"\x4b\x00\x00\x00\x01",
        ] {
            assert_eq!(skip(bytes), Ok(bytes.len()), "{bytes:02x?}");
            assert_eq!(read(bytes).map(|_| ()), Ok(()), "{bytes:02x?}");
        }
    }

    #[test]
    fn hostile_containers_are_errors_not_hangs() {
        // An object of a class never defined.
        assert!(matches!(skip(b"\x60"), Err(Error::Malformed(_))));
        // A list that claims two billion elements and has none.
        assert_eq!(skip(b"X\x49\x7f\xff\xff\xff"), Err(Error::Eof));
        assert!(matches!(skip(b"X\x80"), Err(Error::Malformed(_))));
        // Reserved and misplaced tags.
        for tag in [0x40, 0x45, 0x47, 0x50, b'Z'] {
            assert!(
                matches!(skip(&[tag]), Err(Error::Malformed(_))),
                "{tag:02x}"
            );
        }
        // Nesting past the limit: untyped lists inside untyped lists.
        let bomb: Vec<u8> = std::iter::repeat_n(b'W', 10_000).collect();
        assert_eq!(skip(&bomb), Err(Error::TooDeep));
        let ok: Vec<u8> = std::iter::repeat_n(b'W', MAX_DEPTH + 1)
            .chain(std::iter::repeat_n(b'Z', MAX_DEPTH + 1))
            .collect();
        assert_eq!(skip(&ok), Ok(ok.len()));
        // A long run of class definitions is a loop, not a deep recursion.
        let defs: Vec<u8> = std::iter::repeat_n(&b"C\x01A\x90"[..], 100_000)
            .flatten()
            .copied()
            .chain([0x60])
            .collect();
        assert_eq!(skip(&defs), Ok(defs.len()));
    }
}
