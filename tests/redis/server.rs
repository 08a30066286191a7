//! A `redis-server` of our own on a free loopback port, killed on drop;
//! nothing persists. Shared by `tests/redis.rs` (which may install the
//! server first) and `benches/store.rs` (which skips without one).
#![allow(dead_code, reason = "each includer uses the part it needs")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `program` on `PATH` (or in /usr/bin, /usr/sbin).
pub(crate) fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a plain-text Redis on `port` answers PING.
fn pings(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok()
        && s.read_exact(&mut reply).is_ok()
        && reply.as_slice() == b"+PONG\r\n"
}

/// A `redis-server` child on loopback, killed on drop. Nothing persists.
pub(crate) struct Server {
    bin: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    /// `bin` running on `port` (else a free one), answering PING.
    pub(crate) fn start_with(bin: &Path, port: Option<u16>) -> Server {
        // A port picked free can be taken before the server binds it: a few tries.
        for _ in 0..3 {
            let mut server = Server {
                bin: bin.to_path_buf(),
                port: port.unwrap_or_else(free_port),
                dir: tempfile::tempdir().unwrap(),
                child: None,
            };
            if server.run() {
                return server;
            }
        }
        panic!("redis-server did not answer PING on three ports");
    }

    /// Start the process on `self.port` and wait (at most 5 s) for PING.
    fn run(&mut self) -> bool {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if pings(self.port) {
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                break; // exited: the port was taken
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        false
    }

    /// Kill the server (the data goes with it).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port.
    pub(crate) fn restart(&mut self) {
        assert!(
            self.run(),
            "redis-server did not come back on {}",
            self.port
        );
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A plain client, to look at what the store wrote.
    pub(crate) async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
