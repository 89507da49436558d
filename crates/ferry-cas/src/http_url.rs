//! The URL of a health check (`[health] url` in `ferry.toml`): a plain `http://` URL to a
//! local endpoint, read strictly so that a typo is refused when the file is checked rather
//! than fetched as something else. The agent does the GET (`ferry_agent::http`).

use url::{ParseError, Url};

/// An `http://host[:port][/path][?query]` URL, read by the `url` crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// The host (brackets kept for IPv6), for the `Host` header and connecting.
    pub host: String,
    /// The port, 80 unless the URL names another.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses a URL, explaining what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        if text
            .get(..6)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https:"))
        {
            return Err("https is not supported by the built-in check (it speaks plain HTTP to a local endpoint); use `command = \"curl -fsS https://…\"` instead".into());
        }
        // The url crate would quietly trim spaces and drop tabs and newlines, so a URL that
        // has any is refused rather than fetched as something else.
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the URL contains spaces or control characters".into());
        }
        // The URL standard the url crate follows reads `http:x`, `http:///x`, `http://@x/`
        // and `http://x:/` all as `http://x/`; the check keeps asking for the plain form, so
        // a typo is refused rather than fetched as something else.
        let Some(rest) = text
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("http://"))
            .map(|_| &text[7..])
        else {
            return Err(format!("{text:?} is not an http:// URL"));
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if authority.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        if authority.contains('@') {
            return Err("credentials in the URL are not supported".into());
        }
        let not_a_port =
            || format!("the port of {text:?} is not a port: give a number from 1 to 65535");
        if authority.ends_with(':') {
            return Err(not_a_port());
        }
        let url = Url::parse(text).map_err(|error| match error {
            ParseError::EmptyHost => format!("{text:?} has no host"),
            ParseError::InvalidPort => not_a_port(),
            ParseError::InvalidIpv6Address => format!(
                "{text:?} has an invalid IPv6 address: write it in brackets, with the closing ']', like http://[::1]:8080/"
            ),
            error => format!("{text:?} is not a valid URL: {error}"),
        })?;
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| format!("{text:?} has no host"))?;
        let port = url
            .port_or_known_default()
            .filter(|port| *port > 0)
            .ok_or_else(not_a_port)?;
        // The fragment is the client's own business: it is never sent.
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Ok(HttpUrl {
            host: host.to_owned(),
            port,
            path,
        })
    }
}

/// The URL as people write it: `http://host[:port]/path`, the port left out when it is 80.
impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            80 => write!(f, "http://{}{}", self.host, self.path),
            port => write!(f, "http://{}:{port}{}", self.host, self.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ok = |url: &str, host: &str, port: u16, path: &str| {
            assert_eq!(
                HttpUrl::parse(url).unwrap(),
                HttpUrl {
                    host: host.into(),
                    port,
                    path: path.into()
                },
                "{url}"
            );
        };
        ok("http://127.0.0.1:8080/health", "127.0.0.1", 8080, "/health");
        ok("http://localhost", "localhost", 80, "/");
        ok("http://localhost?ready=1", "localhost", 80, "/?ready=1");
        ok("http://[::1]:9000/up?x=1", "[::1]", 9000, "/up?x=1");
        ok("http://x:80/a#section", "x", 80, "/a");
        ok("HTTP://Example.COM/Up", "example.com", 80, "/Up");
        for (url, shown) in [
            (
                "http://127.0.0.1:8080/health?deep=1",
                "http://127.0.0.1:8080/health?deep=1",
            ),
            ("HTTP://Example.COM:80", "http://example.com/"),
            ("http://[::1]:9000/up", "http://[::1]:9000/up"),
        ] {
            assert_eq!(HttpUrl::parse(url).unwrap().to_string(), shown);
        }
        for (bad, reason) in [
            ("https://x/health", "https is not supported"),
            ("ftp://x", "not an http:// URL"),
            ("http://:80/", "no host"),
            ("http://x:port/", "is not a port"),
            ("http://x:0/", "is not a port"),
            ("http://u:p@x/", "credentials"),
            ("http://[::1/", "closing"),
            ("http://x/a b", "spaces"),
            ("http://x/a\tb", "spaces"),
            (" http://x/", "spaces"),
            ("HTTPS://x/", "https is not supported"),
            ("localhost:80", "not an http:// URL"),
            ("/health", "not an http:// URL"),
            ("http:x", "not an http:// URL"),
            ("http:///x", "no host"),
            ("http://@x/", "credentials"),
            ("http://x:/", "is not a port"),
            ("http://x:65536/", "is not a port"),
            ("http://[::1]x/", "IPv6"),
        ] {
            let error = HttpUrl::parse(bad).unwrap_err();
            assert!(error.contains(reason), "{bad}: {error}");
        }
    }
}
