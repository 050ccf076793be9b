//! A real browser for UI tests (feature `browser`): Debian's `chromium`, headless, driven by
//! `chromedriver` over W3C WebDriver — plain JSON over HTTP, so this is a small client on the
//! workspace's reqwest rather than another dependency.
//!
//! [`Browser::start`] returns `None` when chromedriver or chromium is not installed, so a test
//! can say it skipped; [`require_browser`] turns that into a failure where a browser must exist
//! (`STEADFAST_REQUIRE_BROWSER=1`, set by `scripts/test.sh` after installing them).
//!
//! Chromium runs with a fresh profile and without its background networking: this machine's
//! network is closed, and a browser that keeps dialling Google slows every page.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::eventually_async;

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long to wait for a page, an element or the driver.
pub const BROWSER_WAIT: Duration = Duration::from_secs(20);

fn find_program(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Whether the environment demands a real browser (CI, `scripts/test.sh`).
pub fn require_browser() -> bool {
    std::env::var("STEADFAST_REQUIRE_BROWSER").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A headless Chromium session. Dropping it ends chromedriver (and so the browser).
pub struct Browser {
    client: reqwest::Client,
    session: String,
    driver_url: String,
    _driver: Child,
    /// Where [`Browser::screenshot`] writes.
    pub screenshots: PathBuf,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a browser session, or `None` when either is not installed.
    /// Screenshots go to `screenshots` (created if missing).
    pub async fn start(screenshots: &Path) -> Option<Self> {
        let driver = find_program(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"])?;
        let chromium = find_program(&["/usr/bin/chromium", "/usr/lib/chromium/chromium"])?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let driver_url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        eventually_async("chromedriver to answer", BROWSER_WAIT, || async {
            let status: Value = client
                .get(format!("{driver_url}/status"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            status["value"]["ready"].as_bool().filter(|r| *r)
        })
        .await;
        let profile = std::env::temp_dir().join(crate::unique_name("chromium-profile"));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let created: Value = client
            .post(format!("{driver_url}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("create a browser session")
            .json()
            .await
            .expect("a session answer");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused the session: {created}"))
            .to_owned();
        std::fs::create_dir_all(screenshots).expect("screenshot directory");
        Some(Self {
            client,
            session,
            driver_url,
            _driver: child,
            screenshots: screenshots.to_owned(),
        })
    }

    /// One WebDriver command; `Err` carries the driver's error (a page that navigated away
    /// under an element is one, and is worth retrying while waiting).
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.driver_url, self.session);
        let mut request = self.client.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{method} {path}: not JSON: {e}"))?;
        match answer["value"]["error"].as_str() {
            Some(error) => Err(format!(
                "WebDriver {method} {path} failed: {error}: {}",
                answer["value"]["message"]
            )),
            None => Ok(answer["value"].clone()),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    pub async fn current_url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's HTML as the browser has it now (after scripts ran).
    pub async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every element matching the CSS selector, now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_array()
            .map(|elements| {
                elements
                    .iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str())
                    .map(|id| Element(id.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching the CSS selector, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        eventually_async(&format!("an element `{css}`"), BROWSER_WAIT, || async {
            self.find_all(css).await.into_iter().next()
        })
        .await
    }

    /// Waits until the page's visible text contains `text` (through navigations: a page
    /// being replaced is just not there yet).
    pub async fn wait_for_text(&self, text: &str) {
        eventually_async(
            &format!("the page to show `{text}`"),
            BROWSER_WAIT,
            || async {
                let shown = self
                    .try_call(
                        reqwest::Method::POST,
                        "/execute/sync",
                        Some(json!({
                            "script": "return document.body ? document.body.innerText : '';",
                            "args": [],
                        })),
                    )
                    .await
                    .ok()?;
                shown.as_str()?.contains(text).then_some(())
            },
        )
        .await;
    }

    pub async fn click(&self, element: &Element) {
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await;
    }

    pub async fn type_into(&self, element: &Element, text: &str) {
        self.post(
            &format!("/element/{}/value", element.0),
            json!({"text": text}),
        )
        .await;
    }

    pub async fn text(&self, element: &Element) -> String {
        self.get(&format!("/element/{}/text", element.0))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.get(&format!("/element/{}/attribute/{name}", element.0))
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns what it returns;
    /// a returned promise is awaited.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.post(
            "/execute/async",
            json!({
                "script": format!(
                    "const done = arguments[arguments.length - 1];\
                     Promise.resolve((async (...a) => {{ {script} }})(...Array.from(arguments).slice(0, -1)))\
                     .then(done, e => done({{error: String(e)}}));"
                ),
                "args": args,
            }),
        )
        .await
    }

    /// Resizes the window (a phone is about 390×844).
    pub async fn resize(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Every cookie the browser holds for the current page, as WebDriver describes them.
    pub async fn cookies(&self) -> Value {
        self.get("/cookie").await
    }

    pub async fn delete_cookie(&self, name: &str) {
        self.call(reqwest::Method::DELETE, &format!("/cookie/{name}"), None)
            .await;
    }

    /// Saves a PNG of the window as `<screenshots>/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = self.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: chromedriver ends with its process (kill_on_drop), and the browser with it.
        let url = format!("{}/session/{}", self.driver_url, self.session);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    let _ = reqwest::Client::new().delete(url).send().await;
                });
            }
        })
        .join();
    }
}
