//! A client for OpenSSH's multiplexing protocol (PROTOCOL.mux), spoken over
//! a ControlMaster's control socket. Aether uses two requests:
//!
//! - stdio forwarding (`ssh -W`): the master connects to host:port on the
//!   remote and pipes it to a file descriptor we pass it. We pass the
//!   accepted TCP socket itself, so the master moves the bytes and no ssh
//!   process is started per connection;
//! - a bare hello, held open: it returns EOF the moment the master dies.
//!
//! Blocking I/O on purpose: each call is a few small messages on a local
//! socket, made from `ajj run`'s threads or a blocking task.

use sendfd::SendWithFd;
use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

const MUX_MSG_HELLO: u32 = 0x0000_0001;
const MUX_C_ALIVE_CHECK: u32 = 0x1000_0004;
const MUX_C_NEW_STDIO_FWD: u32 = 0x1000_0008;
const MUX_S_PERMISSION_DENIED: u32 = 0x8000_0002;
const MUX_S_FAILURE: u32 = 0x8000_0003;
const MUX_S_ALIVE: u32 = 0x8000_0005;
const MUX_S_SESSION_OPENED: u32 = 0x8000_0006;
const VERSION: u32 = 4;

#[derive(Debug)]
pub enum MuxError {
    /// The control socket is gone or closed: the master is not running.
    Master(io::Error),
    /// The master is up, but the remote side refused (nothing listens there).
    Refused(String),
}

impl std::fmt::Display for MuxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MuxError::Master(e) => write!(f, "the SSH master is not reachable: {e}"),
            MuxError::Refused(why) => write!(f, "the remote refused the connection: {why}"),
        }
    }
}

fn packet(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn read_packet(stream: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 256 * 1024 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "oversized mux packet",
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(body)
}

fn u32_at(body: &[u8], at: usize) -> Option<u32> {
    body.get(at..at + 4)
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
}

/// The reason string of a failure reply: type, request id, string.
fn reason(body: &[u8]) -> String {
    let len = u32_at(body, 8).unwrap_or(0) as usize;
    body.get(12..12 + len)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| "no reason given".into())
}

/// Connects to the control socket and exchanges hellos.
pub fn connect(control: &Path) -> io::Result<UnixStream> {
    let mut stream = UnixStream::connect(control)?;
    let mut hello = Vec::with_capacity(8);
    hello.extend_from_slice(&MUX_MSG_HELLO.to_be_bytes());
    hello.extend_from_slice(&VERSION.to_be_bytes());
    stream.write_all(&packet(&hello))?;
    let reply = read_packet(&mut stream)?;
    if u32_at(&reply, 0) != Some(MUX_MSG_HELLO) || u32_at(&reply, 4) != Some(VERSION) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the control socket does not speak mux protocol 4",
        ));
    }
    Ok(stream)
}

/// The master's pid, proving it answers.
pub fn alive(control: &Path) -> io::Result<u32> {
    let mut stream = connect(control)?;
    let mut req = Vec::with_capacity(8);
    req.extend_from_slice(&MUX_C_ALIVE_CHECK.to_be_bytes());
    req.extend_from_slice(&1u32.to_be_bytes());
    stream.write_all(&packet(&req))?;
    let reply = read_packet(&mut stream)?;
    match u32_at(&reply, 0) {
        Some(MUX_S_ALIVE) => u32_at(&reply, 8)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short alive reply")),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected alive reply",
        )),
    }
}

/// Asks the master to connect `host:port` on the remote and pipe it to `fd`
/// (both directions). Returns the control connection, which must stay open
/// as long as the forwarded connection lives: the master ties the two.
pub fn stdio_forward(
    control: &Path,
    host: &str,
    port: u16,
    fd: RawFd,
) -> Result<UnixStream, MuxError> {
    let mut stream = connect(control).map_err(MuxError::Master)?;
    let mut req = Vec::with_capacity(32 + host.len());
    req.extend_from_slice(&MUX_C_NEW_STDIO_FWD.to_be_bytes());
    req.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut req, "");
    put_string(&mut req, host);
    req.extend_from_slice(&(port as u32).to_be_bytes());
    stream.write_all(&packet(&req)).map_err(MuxError::Master)?;
    // The protocol's stdin then stdout, one control message each.
    for _ in 0..2 {
        stream.send_with_fd(&[0], &[fd]).map_err(MuxError::Master)?;
    }
    let reply = read_packet(&mut stream).map_err(MuxError::Master)?;
    match u32_at(&reply, 0) {
        Some(MUX_S_SESSION_OPENED) => Ok(stream),
        Some(MUX_S_FAILURE | MUX_S_PERMISSION_DENIED) => Err(MuxError::Refused(reason(&reply))),
        other => Err(MuxError::Master(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected mux reply {other:?}"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_reads_replies() {
        let mut body = Vec::new();
        body.extend_from_slice(&MUX_S_FAILURE.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut body, "Session open refused by peer");
        assert_eq!(reason(&body), "Session open refused by peer");
        assert_eq!(reason(&body[..8]), "no reason given");
        assert_eq!(&packet(b"ab")[..], &[0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn a_peer_that_is_not_a_master_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&packet(&[0, 0, 0, 9])).unwrap();
        });
        assert!(connect(&path).is_err());
        server.join().unwrap();
        assert!(connect(&dir.path().join("missing")).is_err());
    }
}
