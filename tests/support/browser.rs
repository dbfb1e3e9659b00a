//! Headless Chromium for the page's tests: Debian's `chromium` driven by its `chromedriver`
//! through the W3C WebDriver HTTP API on loopback (a few JSON requests over a plain
//! `TcpStream`: navigate, run a script, take a screenshot), so no browser-automation crate.
//! A missing browser fails the test with what to install; it never skips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// One browser session; the driver (and the browser with it) ends on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

fn program(env: &str, default: &str) -> String {
    let program = std::env::var(env).unwrap_or_else(|_| default.into());
    let found = Command::new(&program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "the page's browser test drives Debian's chromium through chromedriver: `{program}` \
         was not found (apt-get install chromium chromium-driver, as .ci/run does; or set {env})"
    );
    program
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium session that
    /// accepts the cluster's self-signed serving certificate.
    pub fn start() -> Browser {
        let chromium = program("CHROMIUM", "chromium");
        let chromedriver = program("CHROMEDRIVER", "chromedriver");
        let mut driver = Command::new(chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let stdout = driver.stdout.take().expect("chromedriver's stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the port it announces, then keeps draining its output so it never blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromedriver announces its port within 30 s");
        let profile = tempfile::tempdir().expect("a browser profile dir");
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
        };
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--ignore-certificate-errors",
            "--window-size=1400,1000",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "acceptInsecureCerts": true,
                "goog:chromeOptions": {"binary": which(&chromium), "args": args},
            }}})),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a WebDriver session: {created}"))
            .to_string();
        browser
    }

    /// Opens `url` (returns once the document has loaded).
    pub fn open(&self, url: &str) {
        self.call("POST", &self.path("url"), Some(json!({ "url": url })));
    }

    /// The value of a script's `return`, run in the page.
    pub fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.path("execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let shot = self.call("GET", &self.path("screenshot"), None);
        base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("base64 PNG"))
            .expect("a PNG")
    }

    fn path(&self, command: &str) -> String {
        format!("/session/{}/{command}", self.session)
    }

    /// One WebDriver command: its response's `value`; panics on an error response.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        // chromedriver keeps the connection open: read the head, then Content-Length bytes.
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .ok_or_else(|| format!("no Content-Length in {head}"))?;
        let mut payload = vec![0; length];
        reader.read_exact(&mut payload).map_err(|e| e.to_string())?;
        let payload = String::from_utf8_lossy(&payload);
        let status = head.split_whitespace().nth(1).unwrap_or("");
        let parsed: Value =
            serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))?;
        if status != "200" {
            return Err(format!("answered {status}: {payload}"));
        }
        Ok(parsed["value"].clone())
    }
}

/// `program`'s path on the PATH (chromedriver wants the browser binary's path).
fn which(program: &str) -> String {
    if program.contains('/') {
        return program.to_string();
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| program.to_string())
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let session = format!("/session/{}", self.session);
            // Ends the browser; the driver's kill below would leave it running.
            let _ = self.try_call("DELETE", &session, None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
