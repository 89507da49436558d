//! Resolving a webhook's host name when a message is sent, refusing one that leads to a
//! loopback, link-local or private address. The HTTP client connects to exactly the
//! addresses checked here, so a name that resolves to a public address when the channel is
//! added and to a private one later (DNS rebinding) is caught when it matters.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::address::private_range;

/// A resolver that answers only public addresses.
pub(crate) struct PublicOnly;

/// A host name resolved to a non-public address.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, {range}")]
pub(crate) struct PrivateAddress {
    pub host: String,
    pub ip: IpAddr,
    pub range: &'static str,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            // One private address is enough to refuse: a name that mixes them is either
            // misconfigured or an attempt to reach inside.
            if let Some((ip, range)) = addrs
                .iter()
                .find_map(|addr| Some((addr.ip(), private_range(addr.ip())?)))
            {
                return Err(Box::new(PrivateAddress { host, ip, range }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
