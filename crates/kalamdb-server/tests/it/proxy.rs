//! A TCP proxy that can slow down or cut the connection to a peer, for
//! injecting storage faults in the middle of a flush.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Faults {
    down: AtomicBool,
    delay_ms: AtomicU64,
    stopped: AtomicBool,
}

pub struct FaultyProxy {
    pub port: u16,
    faults: Arc<Faults>,
}

impl FaultyProxy {
    pub fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Faults::default());
        let accept_faults = faults.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_faults.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if accept_faults.down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let faults = accept_faults.clone();
                    std::thread::spawn(move || pump(from, to, &faults));
                }
            }
        });
        Self { port, faults }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Cuts every connection (open ones at their next byte) and refuses new ones.
    pub fn set_down(&self, down: bool) {
        self.faults.down.store(down, Ordering::SeqCst);
    }

    /// Delays every chunk forwarded.
    pub fn set_delay(&self, delay: Duration) {
        self.faults
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, faults: &Faults) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = faults.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            #[expect(clippy::disallowed_methods, reason = "injected latency is this fault")]
            std::thread::sleep(Duration::from_millis(delay));
        }
        if faults.down.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.faults.stopped.store(true, Ordering::SeqCst);
        self.faults.down.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
