//! Deciding whether a finished request is logged. Runs on the worker, before anything is
//! queued, so it only compares numbers and flags.

use sluice_config::access_log::LogFilter;

use crate::{RequestRecord, ResponseFlags};

/// The prefix of the `health_check` filter's response details (`health_check_ok`,
/// `health_check_failed`).
pub const HEALTH_CHECK_DETAILS: &str = "health_check";

/// A [`LogFilter`] with its flag codes made a bit set.
#[derive(Debug)]
pub enum Filter {
    StatusCode(sluice_config::access_log::Comparison),
    Duration(sluice_config::access_log::Comparison),
    /// Any of these flags; empty: any flag at all.
    Flags(ResponseFlags),
    /// A percentage.
    Sample(f64),
    /// Not answered by the `health_check` filter (when true).
    NotHealthCheck(bool),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    pub fn new(config: &LogFilter) -> Result<Filter, String> {
        Ok(match config {
            LogFilter::StatusCode(c) => Filter::StatusCode(*c),
            LogFilter::Duration(c) => Filter::Duration(*c),
            LogFilter::ResponseFlags(codes) => {
                let mut set = ResponseFlags::empty();
                for code in codes {
                    set.insert(
                        ResponseFlags::from_code(code)
                            .ok_or_else(|| format!("unknown response flag \"{code}\""))?,
                    );
                }
                Filter::Flags(set)
            }
            LogFilter::Sample(p) => Filter::Sample(*p),
            LogFilter::NotHealthCheck(on) => Filter::NotHealthCheck(*on),
            LogFilter::And(list) => {
                Filter::And(list.iter().map(Filter::new).collect::<Result<_, _>>()?)
            }
            LogFilter::Or(list) => {
                Filter::Or(list.iter().map(Filter::new).collect::<Result<_, _>>()?)
            }
        })
    }

    pub fn matches(&self, r: &RequestRecord) -> bool {
        match self {
            Filter::StatusCode(c) => c.holds(u64::from(r.response_code.unwrap_or(0))),
            Filter::Duration(c) => c.holds(
                r.duration
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            ),
            Filter::Flags(set) if set.is_empty() => !r.response_flags.is_empty(),
            Filter::Flags(set) => ResponseFlags::ALL
                .iter()
                .any(|(f, _)| set.contains(*f) && r.response_flags.contains(*f)),
            Filter::Sample(p) => *p >= 100.0 || fastrand::f64() * 100.0 < *p,
            // The health_check filter's answers carry its details.
            Filter::NotHealthCheck(on) => {
                !on || !r.response_code_details.starts_with(HEALTH_CHECK_DETAILS)
            }
            Filter::And(list) => list.iter().all(|f| f.matches(r)),
            Filter::Or(list) => list.iter().any(|f| f.matches(r)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Protocol;
    use sluice_config::access_log::{CmpOp, Comparison, RESPONSE_FLAG_CODES};
    use std::time::Duration;

    #[test]
    fn config_codes_are_the_flags_codes() {
        let ours: Vec<&str> = ResponseFlags::ALL.iter().map(|(_, c)| *c).collect();
        assert_eq!(ours, RESPONSE_FLAG_CODES);
    }

    #[test]
    fn status_duration_flags_and_combinations() {
        let mut r = RequestRecord::new(Protocol::Http11, "l".into());
        r.response_code = Some(503);
        r.duration = Some(Duration::from_millis(20));
        r.response_flags = ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
        let ge500 = LogFilter::StatusCode(Comparison {
            op: CmpOp::Ge,
            value: 500,
        });
        let slow = LogFilter::Duration(Comparison {
            op: CmpOp::Gt,
            value: 1000,
        });
        let f = |c: &LogFilter| Filter::new(c).unwrap().matches(&r);
        assert!(f(&ge500));
        assert!(!f(&slow));
        assert!(f(&LogFilter::ResponseFlags(vec!["UT".into(), "UF".into()])));
        assert!(!f(&LogFilter::ResponseFlags(vec!["NR".into()])));
        assert!(f(&LogFilter::ResponseFlags(vec![])));
        assert!(!f(&LogFilter::And(vec![ge500.clone(), slow.clone()])));
        assert!(f(&LogFilter::Or(vec![ge500, slow])));
        assert!(!f(&LogFilter::Sample(0.0)));
        assert!(f(&LogFilter::Sample(100.0)));
        let mut ok = RequestRecord::new(Protocol::Http11, "l".into());
        ok.response_code = Some(200);
        assert!(!Filter::new(&LogFilter::ResponseFlags(vec![]))
            .unwrap()
            .matches(&ok));
        let mut hc = RequestRecord::new(Protocol::Http11, "l".into());
        hc.flag(ResponseFlags::empty(), "health_check_ok");
        let not_hc = Filter::new(&LogFilter::NotHealthCheck(true)).unwrap();
        assert!(!not_hc.matches(&hc));
        assert!(not_hc.matches(&ok));
        assert!(Filter::new(&LogFilter::NotHealthCheck(false))
            .unwrap()
            .matches(&hc));
        let hits = (0..10_000)
            .filter(|_| Filter::Sample(10.0).matches(&ok))
            .count();
        assert!((500..1500).contains(&hits), "{hits}");
    }
}
