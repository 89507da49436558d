//! The web dashboard: in a real headless Chromium (`browser.rs`) where what a person sees
//! and clicks matters, over plain HTTP (`Web`) where a request a page would never send
//! matters (a forged form, a session after its user's token was rotated).

mod app;
mod approvals;
mod audit;
pub mod browser;
mod demo;
mod incidents;
mod login;

use std::time::Duration;

use crate::config::with_input;
use crate::harness::Server;
use browser::Browser;

/// A password for the users of these tests.
pub const PASSWORD: &str = "a long enough password";

/// Gives `user` (holding `token`) the test password.
pub fn set_password(server: &Server, token: &str) {
    with_input(server, token, &["user", "set-password"], PASSWORD).success();
}

/// Logs `user` in with the test password through the login form, and lands on the overview.
pub fn log_in(browser: &Browser, server: &Server, user: &str) {
    browser.goto(&format!("{}/login", server.url));
    browser.fill("input[name=user]", user);
    browser.fill("input[name=password]", PASSWORD);
    browser.click("button[type=submit]");
    browser.wait_for_text("header .who", user);
}

/// A logged-in session over plain HTTP: requests a browser on a page of ferry would send,
/// and ones it never would.
pub struct Web {
    url: String,
    cookie: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a session on {}", self.url)
    }
}

/// A response: its status, its `Location` and its body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: String,
    pub body: String,
}

impl Web {
    /// Logs in by posting the login form; the refusal's answer when it is refused.
    pub fn log_in(server: &Server, fields: &[(&str, &str)]) -> Result<Web, Answer> {
        let mut web = Web {
            url: server.url.clone(),
            cookie: String::new(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        };
        let answer = web.send(reqwest::Method::POST, "/login", Some(fields), &[]);
        match answer.0 {
            Some(cookie) if answer.1.status == 303 => {
                web.cookie = cookie;
                Ok(web)
            }
            _ => Err(answer.1),
        }
    }

    /// The same session, sent to another server (one sharing this one's database).
    pub fn at(&self, server: &Server) -> Web {
        Web {
            url: server.url.clone(),
            cookie: self.cookie.clone(),
            client: self.client.clone(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// `GET path` with the session.
    pub fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, &[]).1
    }

    /// Posts `fields` to `path` with the session, and `headers`.
    pub fn post(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
        self.send(reqwest::Method::POST, path, Some(fields), headers)
            .1
    }

    /// Opens `path` with the session and keeps it open (a live stream): its status, and the
    /// response whose body is still coming, which closes the request when dropped.
    pub fn open(&self, path: &str) -> (u16, reqwest::Response) {
        self.runtime.block_on(async {
            let response = self
                .client
                .get(format!("{}{path}", self.url))
                .header("cookie", &self.cookie)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response)
        })
    }

    /// The body of a response [`Web::open`] gave, once the server ended it (within a
    /// minute, or the test fails).
    pub fn text_of(&self, response: reqwest::Response) -> String {
        self.runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(60), response.text()).await
            })
            .expect("the server never ended the response")
            .unwrap()
    }

    /// The form token the session's pages carry, read from the overview.
    pub fn form_token(&self) -> String {
        let page = self.get("/").body;
        let at = page
            .find("name=\"form_token\" value=\"")
            .expect("the overview has a form");
        page[at + 25..at + 25 + 64].to_owned()
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        fields: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> (Option<String>, Answer) {
        self.runtime.block_on(async {
            let mut request = self
                .client
                .request(method, format!("{}{path}", self.url))
                .header("cookie", &self.cookie);
            if let Some(fields) = fields {
                request = request.form(fields);
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            let cookie = response
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(str::to_owned);
            let answer = Answer {
                status: response.status().as_u16(),
                location: response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                body: response.text().await.unwrap_or_default(),
            };
            (cookie, answer)
        })
    }
}
