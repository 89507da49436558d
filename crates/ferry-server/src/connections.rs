//! Serving connections, plain or TLS: HTTP/1.1 with a deadline for each request's headers
//! (a client that opens connections and sends its headers slowly, or not at all, cannot hold
//! them), at most as many connections at once as the process may open files for (the rest
//! wait in the kernel's queue), each request told the peer's address, and a graceful end at
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustix::process::{getrlimit, setrlimit, Resource};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::peer::Peer;

/// File descriptors kept for the database, blobs and logs when connections take the rest.
const RESERVED_FILES: u64 = 256;

/// The most open files a server asks for (the soft limit is raised to the hard one, up to
/// this).
const WANTED_FILES: u64 = 65_536;

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests under
/// way finish. A client gets `header_timeout` to send each request's headers (the wait for
/// the next request on a kept-alive connection included).
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    L: Listener<Addr = SocketAddr>,
{
    let slots = Arc::new(Semaphore::new(max_connections()));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(Peer(peer)));
            router.clone().oneshot(request.map(Body::new))
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(io), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// As many connections as the open-file limit allows, past what the server keeps for
/// itself; the soft limit is raised first, as far as the hard limit lets it.
fn max_connections() -> usize {
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(WANTED_FILES);
    let wanted = hard.min(WANTED_FILES);
    let soft = match limit.current {
        Some(soft) if soft < wanted => {
            let raised = rustix::process::Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => wanted,
                Err(_) => soft,
            }
        }
        Some(soft) => soft,
        None => wanted,
    };
    let connections = soft.saturating_sub(RESERVED_FILES).max(16);
    tracing::debug!("serving at most {connections} connections at once (open files: {soft})");
    usize::try_from(connections).unwrap_or(usize::MAX)
}
