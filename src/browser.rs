//! A small W3C WebDriver client for the browser tests: it starts Debian's `chromedriver` on a free port, opens
//! a headless Chromium session and drives it over HTTP/JSON (the protocol is a handful of endpoints, so the
//! test needs no WebDriver crate).

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The W3C element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether Chromium and its driver are installed (`MAILPUSH_REQUIRE_BROWSER=1` makes their absence fail).
pub fn browser_available() -> bool {
    crate::tool_available(
        "chromedriver",
        &["--version"],
        "MAILPUSH_REQUIRE_BROWSER",
        "apt-get install chromium chromium-driver",
    ) && crate::tool_available(
        "chromium",
        &["--version"],
        "MAILPUSH_REQUIRE_BROWSER",
        "apt-get install chromium chromium-driver",
    )
}

/// A headless Chromium driven through chromedriver.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    driver: Child,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless browser whose preferred language is `accept_language`.
    pub async fn start(accept_language: &str) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while http.get(format!("{root}/status")).send().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1400,1000", format!("--lang={accept_language}")],
                "prefs": { "intl.accept_languages": accept_language },
            }
        }}});
        let r: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session reply");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        Browser {
            http,
            base: format!("{root}/session/{id}"),
            driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req
            .send()
            .await
            .expect("webdriver request")
            .json()
            .await
            .expect("webdriver reply");
        r["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let v = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(v.get("error").is_none(), "webdriver {path}: {v}");
        v
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT_KEY].as_str().map(|id| Element(id.to_string()))
    }

    /// The first element matching `css`, waiting up to 10 s for it.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if tokio::time::Instant::now() > deadline {
                let source = self.call(reqwest::Method::GET, "/source", None).await;
                panic!(
                    "no element {css} at {}: {}",
                    self.url().await,
                    source.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .post("/elements", json!({ "using": "css selector", "value": css }))
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_string())))
            .collect()
    }

    /// Clicks an element.
    pub async fn click(&self, e: &Element) {
        self.post(&format!("/element/{}/click", e.0), json!({})).await;
    }

    /// Clears a field and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/clear", e.0), json!({})).await;
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    /// Types into a field without clearing it (a file input takes a path this way).
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await;
    }

    /// An element's visible text.
    pub async fn text(&self, e: &Element) -> String {
        self.call(reqwest::Method::GET, &format!("/element/{}/text", e.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The visible text of the first element matching `css` (waiting for it).
    pub async fn text_of(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.text(&e).await
    }

    /// An element's attribute or property.
    pub async fn attr(&self, e: &Element, name: &str) -> Option<String> {
        let v = self
            .call(reqwest::Method::GET, &format!("/element/{}/property/{name}", e.0), None)
            .await;
        match v {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value. Async scripts call
    /// `arguments[arguments.length - 1](value)`.
    pub async fn execute(&self, script: &str, args: Value, asynchronous: bool) -> Value {
        let path = if asynchronous {
            "/execute/async"
        } else {
            "/execute/sync"
        };
        self.post(path, json!({ "script": script, "args": args })).await
    }

    /// Clicks the first element matching `css`.
    pub async fn click_on(&self, css: &str) {
        let e = self.find(css).await;
        self.click(&e).await;
    }

    /// Waits until `probe` answers `Some`, at most `limit`.
    pub async fn wait<T, F, Fut>(&self, what: &str, limit: Duration, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(v) = probe().await {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                let body = match self.try_find("body").await {
                    Some(b) => self.text(&b).await,
                    None => String::new(),
                };
                panic!("waited {limit:?} for {what} at {}:\n{body}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Writes a PNG of the page to `path`.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Deletes every cookie (a new visitor).
    pub async fn clear_cookies(&self) {
        self.call(reqwest::Method::DELETE, "/cookie", None).await;
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        self.call(reqwest::Method::DELETE, "", None).await;
        let _ = self.driver.kill().await;
    }
}
