//! What the proxy tells about each request once it is over.
//!
//! Every protocol handler (HTTP, the RPC protocols, TCP) fills one [`RequestRecord`] per request
//! (per connection for TCP) and hands it, when the exchange ends, to the consumers configured
//! on its listener: access logs and tracing. The record is only made when some consumer is
//! configured, so a listener without them pays nothing.

pub mod access_log;
pub mod flags;
pub mod observer;
pub mod record;
pub mod text;
pub mod trace;

pub use flags::ResponseFlags;
pub use observer::{Observer, Observers};
pub use record::{Protocol, RequestRecord, TraceContext};
pub use text::Text;
