//! Just enough Hessian for a proxy: write the one error object a local reply carries, and read
//! the method name out of a request body whose header map lacks it.
//!
//! SOFARPC speaks the Hessian 2 *draft* that Hessian 3.x implemented (sofa-hessian in Java,
//! hessian.js-1 behind sofa-rpc-node's default), not final Hessian 2.0: a class definition is
//! `'O'`, an int length and the raw type name, an int field count and the field names; an
//! instance is `'o'` and an int reference to its definition. Lists are `'V'` [`'t'` u16 type]
//! [`'n'` u8 | `'l'` u32 length] values `'z'`, maps `'M'` [`'t'` type] pairs `'z'`. Strings and
//! ints use the compact forms final 2.0 kept (0x00-0x1f short strings, 0x80-0xd7 ints), which
//! is why final-2.0 object markers (`'C'`, 0x60-0x6f) must not be written: the decoder
//! sofa-rpc-node uses by default (hessian.js-1) accepts only `'O'` and `'o'` there.

mod reader;
mod writer;

pub use reader::method_name;
pub use writer::server_exception;

/// Java's `SofaRequest`, the class of every SOFARPC request body.
pub const SOFA_REQUEST: &str = "com.alipay.sofa.rpc.core.request.SofaRequest";
/// sofa-bolt's `RpcServerException`: what its servers send with an error status.
pub const RPC_SERVER_EXCEPTION: &str = "com.alipay.remoting.rpc.exception.RpcServerException";
