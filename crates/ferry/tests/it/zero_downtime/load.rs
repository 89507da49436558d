//! Clients requesting pages without pause, as browsers would: each on a keep-alive HTTP/1.1
//! connection of its own, fetching a page and then the asset the page references, and
//! counting what they got.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a release may take to be seen once it was switched to.
const PATIENCE: Duration = Duration::from_secs(30);

/// How many failures a tally keeps, to show.
const EXAMPLES: usize = 10;

/// What the clients got.
#[derive(Debug, Default)]
pub struct Tally {
    /// Pages whose every stamp, and the asset's, named one release: by that release.
    pub pages: BTreeMap<String, u64>,
    /// Requests answered other than 200, or not answered.
    pub failed: u64,
    /// Pages whose stamps named more than one release.
    pub mixed: u64,
    /// Pages whose asset came from another release than the page.
    pub mismatched_assets: u64,
    /// The first failures of any kind, described.
    pub examples: Vec<String>,
}

impl Tally {
    fn note(&mut self, problem: String) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(problem);
        }
    }

    /// Every page complete and of one release.
    pub fn clean(&self) -> bool {
        self.failed == 0 && self.mixed == 0 && self.mismatched_assets == 0
    }

    /// The pages counted of one release.
    pub fn seen(&self, release: &str) -> u64 {
        self.pages.get(release).copied().unwrap_or(0)
    }
}

/// Clients requesting `/` from `127.0.0.1:PORT` until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    runtime: tokio::runtime::Runtime,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients.
    pub fn start(port: u16, clients: usize) -> Load {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let clients = (0..clients)
            .map(|_| runtime.spawn(client(port, stop.clone(), tally.clone())))
            .collect();
        Load {
            stop,
            tally,
            runtime,
            clients,
        }
    }

    /// Runs `switch`, then waits until the clients were served a page of `release` they
    /// had not been served before it started: `release` was served after the switch.
    pub fn switching_to(&self, release: &str, switch: impl FnOnce()) {
        let before = self.tally.lock().unwrap().seen(release);
        switch();
        let deadline = Instant::now() + PATIENCE;
        while self.tally.lock().unwrap().seen(release) == before {
            assert!(
                Instant::now() < deadline,
                "no page of {release} was served after the switch: {:#?}",
                self.tally.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the clients and returns what they got.
    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            self.runtime.block_on(client).unwrap();
        }
        let tally = std::mem::take(&mut *self.tally.lock().unwrap());
        tally
    }
}

/// One client: a page, then its asset, again and again on one connection.
async fn client(port: u16, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    while !stop.load(Ordering::Relaxed) {
        let outcome = visit(&http, &base).await;
        let mut tally = tally.lock().unwrap();
        match outcome {
            Visit::Served(release) => *tally.pages.entry(release).or_default() += 1,
            Visit::Failed(problem) => {
                tally.failed += 1;
                tally.note(problem);
            }
            Visit::Mixed(problem) => {
                tally.mixed += 1;
                tally.note(problem);
            }
            Visit::MismatchedAsset(problem) => {
                tally.mismatched_assets += 1;
                tally.note(problem);
            }
        }
    }
}

/// What one page and its asset came to.
enum Visit {
    /// Both of this release.
    Served(String),
    Failed(String),
    Mixed(String),
    MismatchedAsset(String),
}

async fn visit(http: &reqwest::Client, base: &str) -> Visit {
    let page = match get(http, &format!("{base}/")).await {
        Ok(page) => page,
        Err(problem) => return Visit::Failed(problem),
    };
    let (releases, asset) = stamps(&page);
    let release = match releases.as_slice() {
        [release] => *release,
        [] => return Visit::Failed(format!("a page of no release: {page:?}")),
        _ => return Visit::Mixed(format!("a page of {releases:?}: {page:?}")),
    };
    if !asset.starts_with("/assets/") {
        return Visit::Failed(format!("a page without its asset: {page:?}"));
    }
    let css = match get(http, &format!("{base}{asset}")).await {
        Ok(css) => css,
        Err(problem) => return Visit::Failed(problem),
    };
    if stamps(&css).0 == [release] {
        Visit::Served(release.to_owned())
    } else {
        Visit::MismatchedAsset(format!("the page of {release} got {asset} as {css:?}"))
    }
}

/// The body of a 200 answer to GET `url`, or what went wrong.
async fn get(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e:?}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET {url}: {status}, then {e:?}"))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET {url}: {status} {body:?}"));
    }
    Ok(body)
}

/// The releases `body` is stamped with, each once and sorted: by every `release=VERSION`,
/// and by the asset it references (`/assets/VERSION/…`); and that asset's path.
pub fn stamps(body: &str) -> (Vec<&str>, &str) {
    fn version(rest: &str) -> &str {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._+-".contains(c)))
            .unwrap_or(rest.len());
        &rest[..end]
    }
    let mut releases: Vec<&str> = body.split("release=").skip(1).map(version).collect();
    let asset = body.split_once("href=\"").map_or("", |(_, rest)| {
        &rest[..rest.find('"').unwrap_or(rest.len())]
    });
    if let Some(rest) = asset.strip_prefix("/assets/") {
        releases.push(version(rest));
    }
    releases.sort_unstable();
    releases.dedup();
    (releases, asset)
}

#[test]
fn a_page_is_stamped_with_the_releases_of_its_text_and_its_asset() {
    let page = "<title>release=1.0.0</title>\n\
                <link rel=\"stylesheet\" href=\"/assets/1.0.0/site.css\">\n\
                <p>release=1.0.0</p>";
    assert_eq!(stamps(page), (vec!["1.0.0"], "/assets/1.0.0/site.css"));
    assert_eq!(stamps("/* release=2.0.0 */"), (vec!["2.0.0"], ""));
    let mixed = "<p>release=2.0.0</p><title>release=1.0.0</title><p>release=2.0.0</p>";
    assert_eq!(stamps(mixed).0, ["1.0.0", "2.0.0"]);
    let other_asset = "<title>release=1.0.0</title><link href=\"/assets/2.0.0/site.css\">";
    assert_eq!(stamps(other_asset).0, ["1.0.0", "2.0.0"]);
    assert_eq!(stamps("<title>no stamp</title>"), (vec![], ""));
}
