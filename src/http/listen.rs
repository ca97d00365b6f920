//! The accept loop, in place of `axum::serve`: HTTP/1.1 connections from hyper with a timer, so
//! the header-read timeout works (`axum::serve` installs no timer, which leaves hyper's own
//! 30 s default inert and a slow-header client holding its connection for ever), TCP_NODELAY,
//! connection errors logged at debug, at most `server.max_connections` connections open on each
//! listener (past it a new connection is closed at once and counted; the open ones are
//! unaffected), and every connection watched by one graceful shutdown: idle keep-alive
//! connections close at once, in-flight requests finish first.
//!
//! It serves whatever `Router` it is given and knows nothing of routes or settings.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How long to wait before accepting again after the listener failed (out of file descriptors,
/// say): long enough not to spin, short enough to recover quickly.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// The connection settings of every listener: HTTP/1.1 with keep-alive, and a client must send a
/// whole request head within `header_read_timeout`. The same bound runs from the end of one
/// answer to the head of the next request, so it also closes idle keep-alive connections.
pub(super) fn http1(header_read_timeout: Duration) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    http
}

/// The bound on the connections one listener holds open (`server.max_connections`), and
/// what it records: `mixrec_connections_open` and `mixrec_connections_refused_total`, labelled
/// with the listener's name.
#[derive(Debug)]
pub(super) struct Connections {
    /// One permit per open connection; a connection task holds its permit until it ends.
    slots: Arc<Semaphore>,
    max: u32,
    name: &'static str,
    /// Whether the bound was reached and no connection was taken since: the warning is logged
    /// once per such episode, not once per refused connection.
    full: AtomicBool,
    /// Connections refused in the current episode, for the log line that ends it.
    refused: AtomicU64,
    open: metrics::Gauge,
    refused_total: metrics::Counter,
}

impl Connections {
    /// At most `max` connections open at once on the listener called `name`.
    pub(super) fn new(max: u32, name: &'static str) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
            name,
            full: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            open: metrics::gauge!("mixrec_connections_open", "listener" => name),
            refused_total: metrics::counter!("mixrec_connections_refused_total", "listener" => name),
        }
    }

    /// A slot for a new connection, or `None` when `max` are open (the refusal is counted).
    fn admit(&self, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                if self.full.swap(false, Ordering::Relaxed) {
                    let refused = self.refused.swap(0, Ordering::Relaxed);
                    tracing::info!(
                        listener = self.name,
                        refused,
                        "below server.max_connections again; accepting connections"
                    );
                }
                Some(slot)
            }
            Err(_) => {
                self.refused_total.increment(1);
                self.refused.fetch_add(1, Ordering::Relaxed);
                if !self.full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        listener = self.name,
                        max_connections = self.max,
                        %peer,
                        "server.max_connections are open; closing new connections at once"
                    );
                }
                None
            }
        }
    }
}

/// Accepts on `listener` until `stop` turns true (or its sender is gone), serving each
/// connection with `app` on a task of its own under `graceful` while `connections` has room,
/// closing it at once otherwise; then drops the listener, so new connections are refused.
pub(super) async fn accept(
    listener: TcpListener,
    app: Router,
    http: http1::Builder,
    connections: Connections,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((tcp, peer)) => match connections.admit(peer) {
                Some(slot) => {
                    let open = connections.open.clone();
                    serve_connection(tcp, peer, &app, &http, &graceful, slot, open);
                }
                // Dropped unread: closed before a byte of it is read, nothing is answered.
                None => drop(tcp),
            },
            Err(e) => accept_failed(&e).await,
        }
    }
}

fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: &Router,
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    slot: OwnedSemaphorePermit,
    open: metrics::Gauge,
) {
    // Answers are small and written whole: send them without waiting for Nagle's timer.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let service = TowerToHyperService::new(app.clone());
    let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
    open.increment(1);
    tokio::spawn(async move {
        // Timeouts, resets and malformed requests end one connection, never the server.
        if let Err(e) = connection.await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
        open.decrement(1);
        drop(slot);
    });
}

async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    // A client that went away before its connection was accepted: nothing to do.
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        tracing::debug!(error = %e, "connection lost before it was accepted");
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; retrying in {ACCEPT_RETRY:?}");
    tokio::time::sleep(ACCEPT_RETRY).await;
}
