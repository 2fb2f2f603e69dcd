//! Distance for the remote tests: a TCP relay on loopback that delays every
//! chunk by a one-way time in each direction (this kernel has no netem).
//! Order is kept and throughput is not limited: each direction has a
//! reader that stamps chunks and a writer that sends each when it is due.
//! `hold` stops the relay from passing anything on until `release`, so a
//! test can show that something happened before any byte got through.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct DelayProxy {
    pub port: u16,
    gate: Arc<(Mutex<bool>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl DelayProxy {
    /// Listens on a free loopback port and relays to `127.0.0.1:target`.
    pub fn start(target: u16, one_way: Duration) -> DelayProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (gate.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    one_way,
                    g.clone(),
                );
                pump(server, client, one_way, g.clone());
            }
        });
        DelayProxy { port, gate, stop }
    }

    /// From now on, nothing is passed on (chunks wait) until `release`.
    pub fn hold(&self) {
        *self.gate.0.lock().unwrap() = true;
    }

    pub fn release(&self) {
        *self.gate.0.lock().unwrap() = false;
        self.gate.1.notify_all();
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.release();
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// One direction: `from` → `to`, each chunk sent `delay` after it was read.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
    gate: Arc<(Mutex<bool>, Condvar)>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Dropping `tx` ends the writer once it has sent what is queued.
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            {
                let (held, cv) = &*gate;
                let mut held = held.lock().unwrap();
                while *held {
                    held = cv.wait(held).unwrap();
                }
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
