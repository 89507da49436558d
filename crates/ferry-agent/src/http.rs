//! The URL health check: one plain HTTP/1.1 GET over a `TcpStream`, healthy on a 2xx
//! status. Health endpoints are local to the target, so there is no TLS (an `https` URL is
//! refused when `ferry.toml` is read) and no redirects.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ferry_cas::http_url::HttpUrl;

/// One GET; `Ok(status)` if a status line came back within `timeout`.
pub fn get_status(url: &HttpUrl, timeout: Duration) -> Result<u16, String> {
    let timeout = timeout.max(Duration::from_millis(1));
    let host = url.host.trim_start_matches('[').trim_end_matches(']');
    let addresses = (host, url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?;
    let mut last_error = format!("{} resolves to no address", url.host);
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return exchange(url, stream, timeout),
            Err(e) => last_error = format!("cannot connect to {address}: {e}"),
        }
    }
    Err(last_error)
}

fn exchange(url: &HttpUrl, mut stream: TcpStream, timeout: Duration) -> Result<u16, String> {
    let io = |e: std::io::Error| format!("{}:{}: {e}", url.host, url.port);
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let host_header = if url.port == 80 {
        url.host.clone()
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: ferry-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    // Only the status line matters; read until its end (or a sane limit).
    let mut head = Vec::new();
    let mut buffer = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    parse_status_line(&head)
        .ok_or_else(|| format!("{}:{} did not answer with HTTP", url.host, url.port))
}

/// The status of `HTTP/1.x NNN ...`.
fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?;
    (status.len() == 3).then(|| status.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 503\r\n"), Some(503));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 x\r\n"), None);
    }
}
