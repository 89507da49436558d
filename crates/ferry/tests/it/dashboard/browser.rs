//! A real headless Chromium, driven through ChromeDriver, one per test: each test gets its
//! own driver on a free port and its own profile, so tests run in parallel and share no
//! cookies. Without Chromium and ChromeDriver the browser tests are skipped, unless
//! `FERRY_TEST_REQUIRE_BROWSER` is set (CI sets it and installs both).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// A browser window of 1280 by 900 pixels (or a phone's, with [`Browser::phone`]).
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    runtime: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A new browser, or `None` (the test is skipped) where Chromium is not installed and
    /// CI does not require it.
    pub fn open() -> Option<Browser> {
        Browser::with_size(1280, 900)
    }

    /// A new browser as wide as a phone.
    pub fn phone() -> Option<Browser> {
        Browser::with_size(390, 844)
    }

    fn with_size(width: u32, height: u32) -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            assert!(
                std::env::var_os("FERRY_TEST_REQUIRE_BROWSER").is_none(),
                "FERRY_TEST_REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing: apt-get install chromium chromium-driver"
            );
            eprintln!("skipped: no {CHROMIUM} and {CHROMEDRIVER}");
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        let client = runtime.block_on(async {
            loop {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await
                {
                    Ok(client) => return client,
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!("chromedriver on port {port} did not start a browser: {e}"),
                }
            }
        });
        Some(Browser {
            client: Some(client),
            driver,
            runtime,
            _profile: profile,
        })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// The element `css`, once the page has it.
    async fn element(&self, css: &str) -> fantoccini::elements::Element {
        (self.client().wait().at_most(PATIENCE))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} on the page: {e}"))
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The address of the page shown.
    pub fn url(&self) -> String {
        self.runtime
            .block_on(self.client().current_url())
            .unwrap()
            .to_string()
    }

    /// Types `text` into the field `css`.
    pub fn fill(&self, css: &str, text: &str) {
        self.runtime.block_on(async {
            let field = self.element(css).await;
            field.clear().await.unwrap();
            field.send_keys(text).await.unwrap();
        });
    }

    /// Clicks the element `css`.
    pub fn click(&self, css: &str) {
        self.runtime.block_on(async {
            let element = self.element(css).await;
            element
                .click()
                .await
                .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
        });
    }

    /// Accepts the confirmation the page asked for.
    pub fn accept_confirmation(&self) {
        let deadline = Instant::now() + PATIENCE;
        self.runtime.block_on(async {
            while let Err(e) = self.client().accept_alert().await {
                assert!(Instant::now() < deadline, "no confirmation was asked: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    /// Whether the page has an element `css`.
    pub fn has(&self, css: &str) -> bool {
        self.runtime
            .block_on(self.client().find_all(Locator::Css(css)))
            .map(|found| !found.is_empty())
            .unwrap_or(false)
    }

    /// Waits until the page has no element `css`.
    pub fn wait_until_gone(&self, css: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.has(css) {
            assert!(
                Instant::now() < deadline,
                "{css} stays on {}: {}",
                self.url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of the element `css`, once it exists.
    pub fn text(&self, css: &str) -> String {
        self.runtime.block_on(async {
            let element = self.element(css).await;
            element.text().await.unwrap()
        })
    }

    /// Waits until the element `css` says `expected`, and returns all it says.
    pub fn wait_for_text(&self, css: &str, expected: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let said = self.runtime.block_on(async {
                match self.client().find(Locator::Css(css)).await {
                    Ok(element) => element.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                }
            });
            if said.contains(expected) {
                return said;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never said {expected:?}; it says {said:?} on {}: {}",
                self.url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's HTML as the browser has it now.
    pub fn source(&self) -> String {
        self.runtime.block_on(self.client().source()).unwrap()
    }

    /// Runs `script` in the page and returns what it returns.
    pub fn run(&self, script: &str) -> serde_json::Value {
        self.runtime
            .block_on(self.client().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("running {script}: {e}"))
    }

    /// Saves a screenshot of the page as `target/screenshots/NAME.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{name}.png"));
        std::fs::write(&file, png).unwrap();
        file
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `target/screenshots`, in the target directory the tests were built in.
pub fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots")
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
