//! Helpers shared by the integration test files (`mod common;` in each).
#![allow(dead_code)]
use std::process::{Child, Command, Stdio};

/// A free loopback port (bound, read, released: the server binds it next).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `cmd` (a `harness serve` on `port`, its stderr discarded) and returns once the port
/// accepts connections; panics after `patience_secs`.
pub fn spawn_listening(mut cmd: Command, port: u16, patience_secs: u64) -> Child {
    let server = cmd.stderr(Stdio::null()).spawn().unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < patience_secs, "{cmd:?} did not listen on {port} within {patience_secs} s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    server
}
