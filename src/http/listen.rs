//! The accept loop, in place of `axum::serve`: HTTP/1.1 connections from hyper with a timer, so
//! the header-read timeout works (`axum::serve` installs no timer, which leaves hyper's own
//! 30 s default inert and a slow-header client holding its connection for ever), TCP_NODELAY,
//! connection errors logged at debug, and every connection watched by one graceful shutdown:
//! idle keep-alive connections close at once, in-flight requests finish first.
//!
//! It serves whatever `Router` it is given and knows nothing of routes or settings.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

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

/// Accepts on `listener` until `stop` turns true (or its sender is gone), serving each
/// connection with `app` on a task of its own under `graceful`; then drops the listener, so new
/// connections are refused.
pub(super) async fn accept(
    listener: TcpListener,
    app: Router,
    http: http1::Builder,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((tcp, peer)) => serve_connection(tcp, peer, &app, &http, &graceful),
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
) {
    // Answers are small and written whole: send them without waiting for Nagle's timer.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let service = TowerToHyperService::new(app.clone());
    let connection = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
    tokio::spawn(async move {
        // Timeouts, resets and malformed requests end one connection, never the server.
        if let Err(e) = connection.await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
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
