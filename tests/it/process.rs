//! The real binary as a child process on free ports, and plain HTTP/1.1 over `std::net` for the
//! tests that need to control every byte on the wire (partial heads, partial bodies, idle
//! keep-alive connections). Every wait has a generous deadline so a failure fails instead of
//! hanging; none is an assertion about speed.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Deadline of every wait: only there so a broken server fails the test instead of hanging it.
pub const PATIENCE: Duration = Duration::from_secs(300);

/// `mixrec serve` as a child; killed (by its own handle, so by pid) if the test fails half-way.
pub struct Server {
    child: Child,
    /// The public address it logged.
    pub addr: String,
    /// The admin address it logged, when `server.admin_listen` is set.
    pub admin_addr: Option<String>,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `mixrec serve --listen 127.0.0.1:0 <args>` with `env` and waits for the address
    /// lines of its log (the admin one too when `MIXREC__SERVER__ADMIN_LISTEN` is in `env`).
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_wrapped(&[], args, env)
    }

    /// [`Server::start`] through a wrapper command that ends by exec'ing its arguments (e.g.
    /// `unshare ... sh -c '...; exec "$0" "$@"'`), so the child's pid is still the server's.
    pub fn start_wrapped(wrap: &[&str], args: &[&str], env: &[(&str, &str)]) -> Self {
        let bin = env!("CARGO_BIN_EXE_mixrec");
        let mut cmd = match wrap.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(args);
        cmd.env("RUST_LOG", "info");
        // No model files unless a test asks for a store (tests/it/store.rs does).
        cmd.env("MIXREC__MODELS__DIR", "");
        cmd.envs(env.iter().copied());
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        // Keep draining the log to the end so the server never blocks on a full pipe.
        let sink = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        let wants_admin = env
            .iter()
            .any(|(k, _)| *k == "MIXREC__SERVER__ADMIN_LISTEN");
        let (mut addr, mut admin_addr) = (None, None);
        while addr.is_none() || (wants_admin && admin_addr.is_none()) {
            let line = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
                panic!(
                    "the server logs its addresses; log:\n{}",
                    log.lock().unwrap()
                )
            });
            addr = addr.or_else(|| field(&line, "addr="));
            admin_addr = admin_addr.or_else(|| field(&line, "admin_addr="));
        }
        Self {
            child,
            addr: addr.unwrap(),
            admin_addr,
            log,
            reader: Some(reader),
        }
    }

    /// Sends `signal` (`TERM`, `INT`) to this child through kill(1): the crate forbids unsafe,
    /// and libc::kill would need it.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// Waits for the exit (failing after [`PATIENCE`]) and returns its status and whole log.
    pub fn exit(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "no exit within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipe is closed now: the reader ends once it has read everything.
        self.reader.take().unwrap().join().unwrap();
        (status, self.log.lock().unwrap().clone())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `GET /readyz` until it answers 200.
    pub fn wait_ready(&self) {
        poll(|| (get(&self.addr, "/readyz").status == 200).then_some(()));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key=value` of a log line, by its exact key.
fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .map(str::to_owned)
}

/// Calls `f` every 20 ms until it gives a value; fails after [`PATIENCE`].
pub fn poll<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up after {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An answer as read off the wire.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// The head, lower-cased (status line and headers).
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts an RFC 9457 problem with `status` and problem type `kind`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        assert_eq!(p["type"], format!("urn:mixrec:problem:{kind}"));
    }
}

/// A connection with [`PATIENCE`] as its read and write deadlines.
pub fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// `GET path` on a fresh connection.
pub fn get(addr: &str, path: &str) -> Reply {
    let mut s = connect(addr);
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    read_reply(&mut s)
}

/// `GET path` with `Authorization: Bearer token` on a fresh connection.
pub fn get_with_token(addr: &str, path: &str, token: &str) -> Reply {
    let mut s = connect(addr);
    let auth = format!("Authorization: Bearer {token}\r\n");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
    read_reply(&mut s)
}

/// Reads one answer with a `Content-Length` body, leaving the connection open.
pub fn read_reply(s: &mut TcpStream) -> Reply {
    let head = read_head(s).to_ascii_lowercase();
    let status = head[9..12].parse().expect("a status code");
    let mut reply = Reply {
        status,
        head,
        body: Vec::new(),
    };
    let len: usize = reply
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    reply.body = vec![0; len];
    s.read_exact(&mut reply.body).unwrap();
    reply
}

/// Reads up to and including the blank line that ends a head.
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "the connection ended inside a head ({other:?}) after {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8(head).unwrap()
}

/// Starts a JSON `POST path` with `Expect: 100-continue` and waits for the server's
/// `100 Continue`, which hyper sends only once the handler reads the body: from then on the
/// request is in flight (and holds a permit). Send `body` to finish it.
pub fn post_in_flight(addr: &str, path: &str, body: &str) -> TcpStream {
    let mut s = connect(addr);
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 100 Continue"), "{head}");
    s
}

/// Asserts the server closes `s`: a read ends with 0 bytes or a reset (within [`PATIENCE`]).
#[track_caller]
pub fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("still open after {PATIENCE:?}: {e}"),
    }
}
