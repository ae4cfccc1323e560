//! A response's status byte: what Dubbo's codes mean to the proxy, and which code the proxy
//! answers with when it replies itself.
//!
//! The codes are Dubbo's `Response` constants. A Java consumer turns every status but OK into
//! an exception carrying the body's message: `TimeoutException` for the two timeouts,
//! `SerializationException` for 25, `RemotingException` for the rest (all surface as an
//! `RpcException` to the caller).

use crate::protocol::{LocalError, ResponseClass};

pub const OK: u8 = 20;
/// The response was over the provider's payload limit.
pub const SERIALIZATION_ERROR: u8 = 25;
pub const CLIENT_TIMEOUT: u8 = 30;
pub const SERVER_TIMEOUT: u8 = 31;
/// A consumer's own status for calls cut off by a closed connection.
pub const CHANNEL_INACTIVE: u8 = 35;
/// The provider could not decode the request (also: no service matches its version/group).
pub const BAD_REQUEST: u8 = 40;
/// The provider could not encode its response.
pub const BAD_RESPONSE: u8 = 50;
pub const SERVICE_NOT_FOUND: u8 = 60;
/// The provider failed around the call (e.g. "not found exported service").
pub const SERVICE_ERROR: u8 = 70;
pub const SERVER_ERROR: u8 = 80;
pub const CLIENT_ERROR: u8 = 90;
/// The provider's thread pool is full; it did not run the call.
pub const SERVER_THREADPOOL_EXHAUSTED_ERROR: u8 = 100;

/// What a non-OK status says about the call (OK is decided by the body, see `classify`).
///
/// - The host could not take the call and another may: thread pool exhausted, service not
///   found (the code Sluice itself uses for "no route"/"no healthy upstream"). → `Retriable`.
/// - The request is at fault and any host would answer the same: bad request, a response too
///   large to send, a client error. → `ApplicationError`.
/// - Everything else (timeouts, bad response, service/server error, unknown codes) is the
///   host failing. → `ServerError`, counted against it like an HTTP 5xx.
pub fn classify_status(status: u8) -> ResponseClass {
    match status {
        OK => ResponseClass::Success,
        SERVER_THREADPOOL_EXHAUSTED_ERROR | SERVICE_NOT_FOUND => ResponseClass::Retriable,
        BAD_REQUEST | SERIALIZATION_ERROR | CLIENT_ERROR => ResponseClass::ApplicationError,
        _ => ResponseClass::ServerError,
    }
}

/// The status of the reply Sluice sends when it answers a request itself.
pub fn for_local_error(error: LocalError) -> u8 {
    match error {
        LocalError::NoRoute | LocalError::NoHealthyUpstream => SERVICE_NOT_FOUND,
        LocalError::Overflow => SERVER_THREADPOOL_EXHAUSTED_ERROR,
        // SERVER_TIMEOUT makes the Java consumer raise its own TimeoutException.
        LocalError::Timeout => SERVER_TIMEOUT,
        LocalError::UpstreamFailure => SERVER_ERROR,
        LocalError::BadRequest => BAD_REQUEST,
        // Dubbo has no "forbidden"; its own access checks (tokens) fail the call as a
        // service error.
        LocalError::Forbidden => SERVICE_ERROR,
    }
}
