//! Bolt's response status codes (sofa-bolt's `ResponseStatus`; note CONNECTION_CLOSED is 0x10,
//! not 10), what each means for the proxy, and which one answers each local error.

use crate::protocol::{LocalError, ResponseClass};

pub const SUCCESS: u16 = 0x0000;
pub const ERROR: u16 = 0x0001;
pub const SERVER_EXCEPTION: u16 = 0x0002;
pub const UNKNOWN: u16 = 0x0003;
pub const SERVER_THREADPOOL_BUSY: u16 = 0x0004;
pub const ERROR_COMM: u16 = 0x0005;
pub const NO_PROCESSOR: u16 = 0x0006;
pub const TIMEOUT: u16 = 0x0007;
pub const CLIENT_SEND_ERROR: u16 = 0x0008;
pub const CODEC_EXCEPTION: u16 = 0x0009;
pub const CONNECTION_CLOSED: u16 = 0x0010;
pub const SERVER_SERIAL_EXCEPTION: u16 = 0x0011;
pub const SERVER_DESERIAL_EXCEPTION: u16 = 0x0012;

/// The status's name as sofa-bolt spells it, for logs; `None` for a code it does not define.
pub fn name(status: u16) -> Option<&'static str> {
    Some(match status {
        SUCCESS => "SUCCESS",
        ERROR => "ERROR",
        SERVER_EXCEPTION => "SERVER_EXCEPTION",
        UNKNOWN => "UNKNOWN",
        SERVER_THREADPOOL_BUSY => "SERVER_THREADPOOL_BUSY",
        ERROR_COMM => "ERROR_COMM",
        NO_PROCESSOR => "NO_PROCESSOR",
        TIMEOUT => "TIMEOUT",
        CLIENT_SEND_ERROR => "CLIENT_SEND_ERROR",
        CODEC_EXCEPTION => "CODEC_EXCEPTION",
        CONNECTION_CLOSED => "CONNECTION_CLOSED",
        SERVER_SERIAL_EXCEPTION => "SERVER_SERIAL_EXCEPTION",
        SERVER_DESERIAL_EXCEPTION => "SERVER_DESERIAL_EXCEPTION",
        _ => return None,
    })
}

/// What a response status says about the host that sent it.
///
/// SERVER_EXCEPTION is the service's own failure (sofa-rpc-node and sofa-bolt send it when the
/// invoked method throws), and the (de)serialization statuses are failures the same request
/// meets on every host: none of them is held against the host. A busy thread pool is the one
/// answer that says "try another host". Everything else (a missing processor, codec and
/// communication errors, a timeout, unknown codes) counts against the host, like an HTTP 5xx.
pub fn classify(status: u16) -> ResponseClass {
    match status {
        SUCCESS => ResponseClass::Success,
        SERVER_THREADPOOL_BUSY => ResponseClass::Retriable,
        SERVER_EXCEPTION | SERVER_SERIAL_EXCEPTION | SERVER_DESERIAL_EXCEPTION => {
            ResponseClass::ApplicationError
        }
        _ => ResponseClass::ServerError,
    }
}

/// The status a proxy-made response carries for `error`: the code a Bolt client already reads
/// that way (sofa-bolt's client turns TIMEOUT into InvokeTimeoutException, SERVER_THREADPOOL_BUSY
/// into InvokeServerBusyException, CONNECTION_CLOSED into ConnectionClosedException).
pub fn for_local_error(error: LocalError) -> u16 {
    match error {
        LocalError::NoRoute => NO_PROCESSOR,
        LocalError::NoHealthyUpstream => CONNECTION_CLOSED,
        LocalError::Overflow => SERVER_THREADPOOL_BUSY,
        LocalError::Timeout => TIMEOUT,
        LocalError::UpstreamFailure => CONNECTION_CLOSED,
        LocalError::BadRequest => CODEC_EXCEPTION,
        // Bolt has no "forbidden": the server refused to run the call, as a service that
        // throws does; the client shows the message.
        LocalError::Forbidden => SERVER_EXCEPTION,
    }
}
