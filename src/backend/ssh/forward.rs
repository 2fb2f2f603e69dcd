//! Local port forwards that live exactly as long as the `ajj` holding them.
//!
//! `ajj` listens on 127.0.0.1 itself and hands each accepted connection to
//! the master (a mux stdio forward with the socket passed as its fd), so:
//! - no ssh process is started, and the master moves the bytes;
//! - when `ajj` exits for any reason, `kill -9` included, the kernel closes
//!   the listeners: nothing is left listening;
//! - a held control connection tells at once when the master dies.
//!
//! Listeners use SO_REUSEPORT, so two `ajj run` in one workspace share the
//! ports (the kernel spreads connections between them, and either may exit
//! first), while any other program on the port makes the bind fail.

use super::mux::{self, MuxError};
use crate::base::error::{CommandError, ErrorCode, Result};
use socket2::{Domain, Socket, Type};
use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

pub use crate::backend::Forward;
use crate::backend::Forwarding;

pub struct Forwarder {
    listeners: Vec<RawFd>,
    closing: Arc<AtomicBool>,
    died: Arc<AtomicBool>,
}

/// Asks the engine where each local port's service is published now:
/// local port → remote port, or `None` when that cannot be known (the
/// engine is unreachable). A service without a running container is left
/// out.
pub type Verify = Arc<dyn Fn() -> Option<HashMap<u16, u16>> + Send + Sync>;

/// Local port → remote port, shared by the accept threads. Until
/// `settled`, connections wait: a mapping read from the last pass is
/// checked against the engine first, so that a port reused by another
/// container is never connected to.
struct Mapping {
    state: Mutex<MapState>,
    settled: Condvar,
    verify: Option<Verify>,
}

struct MapState {
    remote: HashMap<u16, u16>,
    settled: bool,
    /// Bumped at each verification: a refused connection re-verifies only
    /// if nobody did since it read the mapping.
    generation: u64,
}

impl Mapping {
    /// The remote port for `local` once settled, and the generation read.
    fn get(&self, local: u16) -> (Option<u16>, u64) {
        let mut st = self.state.lock().expect("mapping");
        while !st.settled {
            st = self.settled.wait(st).expect("mapping");
        }
        (st.remote.get(&local).copied(), st.generation)
    }

    /// Asks the engine again (unless someone did since `seen`), then
    /// answers as `get`.
    fn refresh(&self, local: u16, seen: u64) -> Option<u16> {
        let verify = self.verify.as_ref()?;
        {
            let st = self.state.lock().expect("mapping");
            if st.generation != seen {
                return st.remote.get(&local).copied();
            }
        }
        let found = verify();
        let mut st = self.state.lock().expect("mapping");
        if let Some(found) = found {
            st.remote = found;
        }
        st.generation += 1;
        st.remote.get(&local).copied()
    }

    fn settle(&self, found: Option<HashMap<u16, u16>>) {
        let mut st = self.state.lock().expect("mapping");
        if let Some(found) = found {
            st.remote = found;
        }
        st.settled = true;
        st.generation += 1;
        self.settled.notify_all();
    }
}

fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    // The master closes forwarded connections from this side, leaving them
    // in TIME_WAIT on the port; the next run must still be able to bind.
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

fn busy(f: &Forward, e: &std::io::Error) -> CommandError {
    CommandError::new(
        ErrorCode::LocalPortBusy,
        format!("cannot listen on 127.0.0.1:{} for {}: {e}", f.local, f.name),
    )
    .hint(format!(
        "another program holds the port (`ss -ltnp 'sport = :{}'` shows which); stop it, or run `ajj reconcile` after `ajj workspace forget` to get new ports",
        f.local
    ))
    .detail("port", f.local)
    .detail("service", &f.name)
}

impl Forwarder {
    /// Binds every forward (all or none), then serves them on threads.
    /// `on_master_died` runs once, from a thread, if the master goes away
    /// while the forwards are open; the listeners are closed first.
    pub fn open(
        control: &Path,
        forwards: &[Forward],
        on_master_died: impl FnOnce() + Send + 'static,
    ) -> Result<Forwarder> {
        Self::open_with(control, forwards, None, on_master_died)
    }

    /// As `open`, with remote ports recorded by the last pass: nothing here
    /// waits on the remote host. `verify` runs at once on a thread of its
    /// own; connections wait for its answer (or for its failure, when the
    /// recorded ports are used as they are). A connection the remote
    /// refuses (its container was recreated on another port since) asks
    /// again and is retried once.
    pub fn open_verifying(
        control: &Path,
        forwards: &[Forward],
        verify: Verify,
        on_master_died: impl FnOnce() + Send + 'static,
    ) -> Result<Forwarder> {
        Self::open_with(control, forwards, Some(verify), on_master_died)
    }

    fn open_with(
        control: &Path,
        forwards: &[Forward],
        verify: Option<Verify>,
        on_master_died: impl FnOnce() + Send + 'static,
    ) -> Result<Forwarder> {
        let mapping = Arc::new(Mapping {
            state: Mutex::new(MapState {
                remote: forwards.iter().map(|f| (f.local, f.remote)).collect(),
                settled: verify.is_none(),
                generation: 0,
            }),
            settled: Condvar::new(),
            verify,
        });
        let mut sentinel = mux::connect(control).map_err(|e| master_died(&e.to_string()))?;
        let mut bound = Vec::with_capacity(forwards.len());
        for f in forwards {
            // On error the listeners bound so far drop here: all or none.
            bound.push((f.clone(), bind(f.local).map_err(|e| busy(f, &e))?));
        }
        let closing = Arc::new(AtomicBool::new(false));
        let died = Arc::new(AtomicBool::new(false));
        let listeners: Vec<RawFd> = bound.iter().map(|(_, l)| l.as_raw_fd()).collect();
        for (f, listener) in bound {
            let control = control.to_path_buf();
            let mapping = mapping.clone();
            std::thread::spawn(move || serve(listener, control, f, mapping));
        }
        if let Some(verify) = mapping.verify.clone() {
            let mapping = mapping.clone();
            std::thread::spawn(move || mapping.settle(verify()));
        }
        {
            let (closing, died, fds) = (closing.clone(), died.clone(), listeners.clone());
            std::thread::spawn(move || {
                // The master never writes to an idle control connection: any
                // return is the master closing it, i.e. exiting.
                let _ = sentinel.read(&mut [0u8; 1]);
                if !closing.load(Ordering::SeqCst) {
                    died.store(true, Ordering::SeqCst);
                    shutdown(&fds);
                    on_master_died();
                }
            });
        }
        Ok(Forwarder {
            listeners,
            closing,
            died,
        })
    }
}

impl crate::backend::Forwarding for Forwarder {
    fn lost(&self) -> bool {
        self.died.load(Ordering::SeqCst)
    }

    /// Stops listening now; connections in flight finish on their own.
    fn close(&self) {
        if !self.closing.swap(true, Ordering::SeqCst) {
            shutdown(&self.listeners);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.close();
    }
}

/// Wakes the accept loops: on Linux, shutdown() makes a blocked accept()
/// return, after which the loop ends and the listener is closed.
fn shutdown(fds: &[RawFd]) {
    for fd in fds {
        // SAFETY: the fds are listeners owned by live accept threads; a
        // shutdown on one that has just closed fails harmlessly.
        unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
    }
}

fn serve(listener: TcpListener, control: PathBuf, f: Forward, mapping: Arc<Mapping>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            break;
        };
        let control = control.clone();
        let name = f.name.clone();
        let local = f.local;
        let mapping = mapping.clone();
        std::thread::spawn(move || {
            let (mut remote, seen) = mapping.get(local);
            let mut retried = false;
            loop {
                let Some(port) = remote else {
                    tracing::warn!(service = %name, "no running container to forward to");
                    return;
                };
                match mux::stdio_forward(&control, "127.0.0.1", port, stream.as_raw_fd()) {
                    Ok(mut held) => {
                        // The master has its own copy of the socket now.
                        drop(stream);
                        let _ = std::io::copy(&mut held, &mut std::io::sink());
                        return;
                    }
                    // The master closed its copy; ours is still whole, so
                    // the same connection can be handed over again.
                    Err(MuxError::Refused(why)) if !retried && mapping.verify.is_some() => {
                        tracing::debug!(service = %name, port, "forward refused ({why}); asking the engine again");
                        retried = true;
                        remote = mapping.refresh(local, seen);
                    }
                    Err(MuxError::Refused(why)) => {
                        tracing::warn!(service = %name, port, "forward refused: {why}");
                        return;
                    }
                    Err(MuxError::Master(e)) => {
                        tracing::debug!(service = %name, "master gone: {e}");
                        return;
                    }
                }
            }
        });
    }
}

pub fn master_died(cause: &str) -> CommandError {
    CommandError::new(
        ErrorCode::SshMasterDied,
        "the SSH connection to the Docker host closed; the port forwards are gone",
    )
    .hint("check the network or the remote host, then run the command again: `ajj` reconnects on its next run")
    .detail("cause", cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_is_shared_with_ajj_but_refused_to_others() {
        let ours = bind(0).unwrap();
        let port = ours.local_addr().unwrap().port();
        // A second ajj forwarder (SO_REUSEPORT) shares it...
        let twin = bind(port).unwrap();
        drop(twin);
        drop(ours);
        // ...while a plain listener excludes it.
        let other = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let taken = other.local_addr().unwrap().port();
        let err = bind(taken).unwrap_err();
        let f = Forward {
            name: "db".into(),
            local: taken,
            remote: 1,
        };
        assert_eq!(busy(&f, &err).code, ErrorCode::LocalPortBusy);
    }

    #[test]
    fn no_master_no_listeners() {
        let dir = tempfile::tempdir().unwrap();
        let probe = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let f = Forward {
            name: "db".into(),
            local: port,
            remote: 1,
        };
        let err = Forwarder::open(&dir.path().join("ctl"), &[f], || {})
            .err()
            .unwrap();
        assert_eq!(err.code, ErrorCode::SshMasterDied);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
