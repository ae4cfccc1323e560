//! The slice of Hessian 2.0 serialization that a Dubbo proxy needs.
//!
//! A proxy routes on a request's service, method and attachments, which Dubbo writes as
//! Hessian strings and a string map; everything else in a body (the call's arguments, a
//! response's value or exception) is only stepped over. So the reader decodes strings, ints,
//! booleans and null, steps over every other value by its grammar ([`Reader::skip_value`]),
//! and never builds objects; the writer writes strings, null and maps of strings, which is all
//! a rebuilt attachments map or a local reply needs.
//!
//! Strings: Hessian counts a string's length in UTF-16 units, each encoded as UTF-8, so a
//! character outside the BMP travels as two 3-byte surrogates (CESU-8), which is what Java
//! writes and what Java's reader insists on. The reader turns such pairs into real UTF-8 (so
//! header values are valid `str`s) and the writer turns them back ([`string`]).
//!
//! Wire facts come from the Hessian 2.0 serialization grammar; the code is ours.

mod reader;
pub mod string;
mod writer;

pub use reader::{Reader, Value};
pub use writer::{write_int, write_null, write_string, MAP_END, UNTYPED_MAP};

/// How deep lists, maps and objects may nest before a body is refused: bounds the recursion
/// of [`Reader::skip_value`] on hostile input. Real Dubbo payloads (DTOs, exceptions with their
/// causes and stack traces) stay far below it.
pub const MAX_DEPTH: usize = 128;

/// Why Hessian bytes could not be read (or a value could not be written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The bytes end inside a value.
    Eof,
    /// The bytes break the grammar; says what was expected.
    Malformed(&'static str),
    /// Values nest deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Eof => f.write_str("hessian: truncated value"),
            Error::Malformed(what) => write!(f, "hessian: {what}"),
            Error::TooDeep => write!(f, "hessian: values nest deeper than {MAX_DEPTH}"),
        }
    }
}

impl std::error::Error for Error {}
