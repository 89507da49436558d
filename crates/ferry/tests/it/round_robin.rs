//! A round-robin TCP load balancer for the tests: each new connection goes to the next
//! server in turn, as a layer-4 load balancer in front of several `ferry server`s does, and
//! it counts how many connections each server got.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Listens on a free port of 127.0.0.1 and forwards each connection, whole, to one of the
/// upstream ports in turn. Stops listening when dropped (connections under way go on until
/// either side closes them).
pub struct RoundRobin {
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    upstreams: Vec<u16>,
    /// Connections forwarded to each upstream, in the order of `upstreams`.
    connections: Vec<AtomicUsize>,
    stopped: AtomicBool,
}

impl RoundRobin {
    pub fn start(upstreams: &[u16]) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(Shared {
            upstreams: upstreams.to_vec(),
            connections: upstreams.iter().map(|_| AtomicUsize::new(0)).collect(),
            stopped: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || accept(listener, &accepting));
        RoundRobin { port, shared }
    }

    /// How many connections each upstream got, in the order they were given.
    pub fn connections(&self) -> Vec<usize> {
        self.shared
            .connections
            .iter()
            .map(|count| count.load(Ordering::SeqCst))
            .collect()
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
    }
}

fn accept(listener: TcpListener, shared: &Shared) {
    let mut next = 0;
    while !shared.stopped.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        client.set_nonblocking(false).unwrap();
        let turn = next % shared.upstreams.len();
        next += 1;
        // An upstream that does not answer drops the connection, as a balancer without
        // health checks would: the client sees it closed.
        let Ok(server) = TcpStream::connect(("127.0.0.1", shared.upstreams[turn])) else {
            continue;
        };
        shared.connections[turn].fetch_add(1, Ordering::SeqCst);
        let (client_reader, server_writer) =
            (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || pump(client_reader, server_writer));
        std::thread::spawn(move || pump(server, client));
    }
}

/// Copies `from` to `to` until `from` ends, then passes the end on.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 || to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
