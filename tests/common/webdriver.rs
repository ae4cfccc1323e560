//! Headless Chromium driven through chromedriver's W3C WebDriver HTTP API, with curl as the
//! HTTP client: enough to open a page and read its DOM with JavaScript. Both programs come
//! from Debian (`chromium`, `chromium-driver`; .ci/run installs them).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};

use super::curl::curl_raw;
use super::{free_port, DEADLINE};

/// A browser session; the session and chromedriver end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session in it.
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (.ci/run installs chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
        };
        let start = std::time::Instant::now();
        loop {
            let out = std::process::Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "2",
                    &format!("{}/status", browser.base),
                ])
                .output()
                .unwrap();
            let ready = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .map(|v| v["value"]["ready"] == true)
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "chromedriver did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // As root Chromium needs --no-sandbox; /dev/shm may be small in containers.
        let caps = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            },
        } } });
        let v = browser.call("POST", "/session", Some(&caps));
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        browser
    }

    /// One WebDriver command; returns its `value`, failing the test on a WebDriver error.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| b.to_string());
        let mut args = vec![
            "--max-time",
            "60",
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
        ];
        if let Some(b) = &body {
            args.extend(["-d", b.as_str()]);
        }
        args.push(&url);
        let out = curl_raw(&args);
        let v: serde_json::Value = serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&out)));
        assert!(
            v["value"]["error"].is_null(),
            "{method} {path}: WebDriver error: {}",
            v["value"]
        );
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Navigates to `url` and waits for the page's load event (WebDriver does).
    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(&serde_json::json!({ "url": url })),
        );
    }

    /// Runs `script` (a function body: `return ...`) in the page; its result as JSON.
    pub fn eval(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(&serde_json::json!({ "script": script, "args": [] })),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = Command::new("curl")
                .args(["-sS", "--max-time", "10", "-X", "DELETE"])
                .arg(format!("{}/session/{}", self.base, self.session))
                .output();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
