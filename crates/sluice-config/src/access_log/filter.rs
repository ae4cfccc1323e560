//! An access-log sink's `filter:`: which finished requests it writes.
//!
//! One mapping is a conjunction of its keys (`{ status_code: {op: ge, value: 500}, sample: 10 }`
//! holds when both do); `and:`/`or:` nest lists of such mappings. Envoy's `access_log_filter`
//! does the same with one filter per message; the YAML here is meant to be written by hand.

use crate::decode::{join, keyword, seq, Cx, Decode, Fields};
use crate::yaml::Node;

/// The response flags' letter codes, as `sluice-observe`'s `ResponseFlags` prints them (a test
/// there checks the two lists agree).
pub const RESPONSE_FLAG_CODES: &[&str] = &[
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC",
    "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF",
];

#[derive(Debug, Clone, PartialEq)]
pub enum LogFilter {
    /// The response code (0 when none was sent) compared with a value.
    StatusCode(Comparison),
    /// The duration in milliseconds compared with a value.
    Duration(Comparison),
    /// Any of these flags is set; an empty list: any flag at all.
    ResponseFlags(Vec<String>),
    /// A random `percent` of requests (0 to 100, fractions allowed).
    Sample(f64),
    /// Requests the `health_check` filter did not answer (Envoy's `not_health_check_filter`);
    /// `false` passes everything.
    NotHealthCheck(bool),
    And(Vec<LogFilter>),
    Or(Vec<LogFilter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    pub op: CmpOp,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub const NAMES: [&'static str; 6] = ["eq", "ne", "lt", "le", "gt", "ge"];

    fn from_name(name: &str) -> Option<CmpOp> {
        Some(match name {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            _ => return None,
        })
    }
}

impl Comparison {
    pub fn holds(&self, actual: u64) -> bool {
        match self.op {
            CmpOp::Eq => actual == self.value,
            CmpOp::Ne => actual != self.value,
            CmpOp::Lt => actual < self.value,
            CmpOp::Le => actual <= self.value,
            CmpOp::Gt => actual > self.value,
            CmpOp::Ge => actual >= self.value,
        }
    }
}

impl Decode for Comparison {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let op = match f.node("op") {
            Some(n) => keyword(
                n,
                &join(path, "op"),
                cx,
                "comparison",
                &CmpOp::NAMES,
                CmpOp::from_name,
            ),
            None => {
                cx.error(f.line(), path, "missing required field \"op\"");
                None
            }
        };
        let value = f.required::<u64>("value", cx);
        f.finish(cx);
        Some(Comparison {
            op: op?,
            value: value?,
        })
    }
}

impl Decode for LogFilter {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let mut all = Vec::new();
        let mut ok = true;
        let mut push = |v: Option<LogFilter>| match v {
            Some(v) => all.push(v),
            None => ok = false,
        };
        if let Some(n) = f.node("status_code") {
            push(Comparison::decode(n, &join(path, "status_code"), cx).map(LogFilter::StatusCode));
        }
        if let Some(n) = f.node("duration") {
            push(Comparison::decode(n, &join(path, "duration"), cx).map(LogFilter::Duration));
        }
        if let Some(n) = f.node("response_flags") {
            push(flags(n, &join(path, "response_flags"), cx).map(LogFilter::ResponseFlags));
        }
        if let Some(n) = f.node("sample") {
            push(crate::decode::percent(n, &join(path, "sample"), cx).map(LogFilter::Sample));
        }
        if let Some(n) = f.node("not_health_check") {
            push(
                bool::decode(n, &join(path, "not_health_check"), cx).map(LogFilter::NotHealthCheck),
            );
        }
        if let Some(n) = f.node("and") {
            push(seq(n, &join(path, "and"), cx, LogFilter::decode).map(LogFilter::And));
        }
        if let Some(n) = f.node("or") {
            push(seq(n, &join(path, "or"), cx, LogFilter::decode).map(LogFilter::Or));
        }
        let line = f.line();
        let clean = f.finish(cx);
        if all.is_empty() && ok && clean {
            cx.error(
                line,
                path,
                "an empty filter: give status_code, duration, response_flags, sample, not_health_check, and or or",
            );
            return None;
        }
        if !ok {
            return None;
        }
        Some(if all.len() == 1 {
            all.remove(0)
        } else {
            LogFilter::And(all)
        })
    }
}

fn flags(node: &Node, path: &str, cx: &mut Cx) -> Option<Vec<String>> {
    seq(node, path, cx, |n, p, cx| {
        let code = String::decode(n, p, cx)?;
        if RESPONSE_FLAG_CODES.contains(&code.as_str()) {
            return Some(code);
        }
        let hint = crate::decode::did_you_mean(&code, RESPONSE_FLAG_CODES.iter().copied());
        cx.error(
            n.line,
            p,
            format!(
                "unknown response flag \"{code}\"{hint}; expected one of: {}",
                RESPONSE_FLAG_CODES.join(", ")
            ),
        );
        None
    })
}
