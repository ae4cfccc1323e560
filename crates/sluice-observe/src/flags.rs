//! Envoy's response flags: why a request ended the way it did, as short letter codes
//! (`UF`, `UT`, `NR`, ...) that access logs print in `%RESPONSE_FLAGS%`.

/// A set of response flags, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags(u32);

macro_rules! flags {
    ($($name:ident = $bit:literal, $code:literal, $why:literal;)*) => {
        impl ResponseFlags {
            $(#[doc = $why] pub const $name: ResponseFlags = ResponseFlags(1 << $bit);)*

            /// Every flag with its letter code, in Envoy's printing order.
            pub const ALL: &'static [(ResponseFlags, &'static str)] = &[$((ResponseFlags::$name, $code),)*];
        }
    };
}

flags! {
    FAILED_LOCAL_HEALTH_CHECK = 0, "LH", "The upstream host failed its active health check.";
    NO_HEALTHY_UPSTREAM = 1, "UH", "No healthy upstream host in the cluster.";
    UPSTREAM_REQUEST_TIMEOUT = 2, "UT", "The upstream did not answer within the route timeout.";
    LOCAL_RESET = 3, "LR", "The proxy reset the stream itself.";
    UPSTREAM_REMOTE_RESET = 4, "UR", "The upstream reset the stream.";
    UPSTREAM_CONNECTION_FAILURE = 5, "UF", "No connection to the upstream could be made.";
    UPSTREAM_CONNECTION_TERMINATION = 6, "UC", "The upstream connection closed mid-request.";
    UPSTREAM_OVERFLOW = 7, "UO", "A circuit breaker refused the request.";
    NO_ROUTE_FOUND = 8, "NR", "No route matched (or no filter chain, for a connection).";
    DELAY_INJECTED = 9, "DI", "A fault filter delayed the request.";
    FAULT_INJECTED = 10, "FI", "A fault filter aborted the request.";
    RATE_LIMITED = 11, "RL", "A rate limiter refused the request.";
    UNAUTHORIZED_EXTERNAL_SERVICE = 12, "UAEX", "An authorization service or RBAC denied the request.";
    RATE_LIMIT_SERVICE_ERROR = 13, "RLSE", "The rate-limit service failed.";
    DOWNSTREAM_CONNECTION_TERMINATION = 14, "DC", "The client went away before the response was done.";
    UPSTREAM_RETRY_LIMIT_EXCEEDED = 15, "URX", "Retries ran out (or the retry budget did).";
    STREAM_IDLE_TIMEOUT = 16, "SI", "The stream was idle too long.";
    INVALID_ENVOY_REQUEST_HEADERS = 17, "IH", "A request header had an invalid value.";
    DOWNSTREAM_PROTOCOL_ERROR = 18, "DPE", "The client broke the protocol.";
    UPSTREAM_MAX_STREAM_DURATION_REACHED = 19, "UMSDR", "The upstream stream lived past its limit.";
    RESPONSE_FROM_CACHE_FILTER = 20, "RFCF", "A cache answered.";
    NO_FILTER_CONFIG_FOUND = 21, "NFCF", "A filter's config was missing.";
    DURATION_TIMEOUT = 22, "DT", "The request lived past its maximum duration.";
    UPSTREAM_PROTOCOL_ERROR = 23, "UPE", "The upstream broke the protocol.";
    NO_CLUSTER_FOUND = 24, "NC", "The route named a cluster that does not exist.";
    OVERLOAD_MANAGER = 25, "OM", "The proxy was overloaded.";
    DNS_RESOLUTION_FAILURE = 26, "DF", "The upstream's name did not resolve.";
}

impl ResponseFlags {
    pub const fn empty() -> ResponseFlags {
        ResponseFlags(0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: ResponseFlags) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn insert(&mut self, other: ResponseFlags) {
        self.0 |= other.0;
    }

    /// The flag with this letter code (`"UF"`), for access-log filters.
    pub fn from_code(code: &str) -> Option<ResponseFlags> {
        Self::ALL.iter().find(|(_, c)| *c == code).map(|(f, _)| *f)
    }

    /// The letter codes joined with commas, `-` when none (as Envoy prints them).
    pub fn write_codes(self, out: &mut String) {
        if self.is_empty() {
            out.push('-');
            return;
        }
        let mut first = true;
        for (flag, code) in Self::ALL {
            if self.contains(*flag) {
                if !first {
                    out.push(',');
                }
                out.push_str(code);
                first = false;
            }
        }
    }
}

impl std::ops::BitOr for ResponseFlags {
    type Output = ResponseFlags;
    fn bitor(self, rhs: ResponseFlags) -> ResponseFlags {
        ResponseFlags(self.0 | rhs.0)
    }
}

impl std::fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write_codes(&mut s);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_print_in_order_and_dash_when_empty() {
        assert_eq!(ResponseFlags::empty().to_string(), "-");
        let f = ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED
            | ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
        assert_eq!(f.to_string(), "UF,URX");
        assert_eq!(
            ResponseFlags::from_code("NR"),
            Some(ResponseFlags::NO_ROUTE_FOUND)
        );
        assert_eq!(ResponseFlags::from_code("XX"), None);
    }
}
