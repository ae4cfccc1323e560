//! curl as the client of the black-box suites: one request, its final response parsed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// A response as curl printed it (`-D -`): the final status, headers with lowercased names,
/// and the body bytes.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// `HTTP/1.1` or `HTTP/2`.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl with `args` (bounded by `--max-time 10`) and returns its raw stdout; fails the
/// test with curl's stderr if curl itself fails (connection refused, timeout, ...).
pub fn curl_raw(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl must be installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One request with curl; `args` holds the URL and any options.
pub fn curl(args: &[&str]) -> Reply {
    let mut all = vec!["-D", "-"];
    all.extend_from_slice(args);
    let raw = curl_raw(&all);
    parse_curl_output(&raw).unwrap_or_else(|| {
        panic!(
            "curl {args:?}: cannot parse output {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// The same request over HTTP/2 without TLS (prior knowledge).
pub fn curl_h2(args: &[&str]) -> Reply {
    let mut all = vec!["--http2-prior-knowledge"];
    all.extend_from_slice(args);
    let r = curl(&all);
    assert_eq!(r.version, "HTTP/2", "curl did not speak HTTP/2: {r:?}");
    r
}

/// Splits `-D -` output into header blocks and body, skipping interim (1xx) responses.
pub fn parse_curl_output(raw: &[u8]) -> Option<Reply> {
    let mut rest = raw;
    loop {
        let end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..end]).ok()?;
        rest = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let mut status_line = lines.next()?.split_whitespace();
        let version = status_line.next()?.to_string();
        let status: u16 = status_line.next()?.parse().ok()?;
        if (100..200).contains(&status) {
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Some(Reply {
            status,
            version,
            headers,
            body: rest.to_vec(),
        });
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `n` GETs of `url` by one curl process (one keep-alive connection): for each, the status
/// (0 when curl got no response) and the value of response header `header` ("" if absent).
pub fn curl_many(url: &str, n: usize, header: &str, extra: &[&str]) -> Vec<(u16, String)> {
    let mut args: Vec<String> = vec![
        "-s".into(),
        "--max-time".into(),
        "30".into(),
        "-w".into(),
        format!("%{{http_code}} %header{{{header}}}\\n"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    for _ in 0..n {
        args.extend(["-o".into(), "/dev/null".into(), url.into()]);
    }
    let out = Command::new("curl")
        .args(&args)
        .output()
        .expect("curl must be installed (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let (code, value) = line.split_once(' ').unwrap_or((line, ""));
            (code.parse().unwrap_or(0), value.trim().to_string())
        })
        .collect()
}
