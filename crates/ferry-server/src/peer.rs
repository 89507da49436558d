//! The address each connection comes from, over plain HTTP and TLS alike
//! (`connections.rs` tells every request): the dashboard throttles failed logins by it, and
//! enrollment failed enrollments.

use std::net::SocketAddr;

/// The peer address of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);
