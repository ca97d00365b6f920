//! Serving for real: logging, the runtime, the socket, the start-up training and graceful
//! shutdown on SIGTERM or ctrl-c (in-flight requests finish, then exit 0). Also the tiny
//! `/healthz` client behind `mixrec healthcheck`, for container health checks.

use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use super::state::AppState;
use super::{jobs, router};
use crate::config::{ServeArgs, Settings};

/// How long a running training may take to notice shutdown before the runtime gives up on it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `mixrec serve`: reads the settings, starts logging and a runtime, and serves until a signal.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let settings = Settings::load(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(settings));
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to standard error; `try_init` because tests may have installed one already.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Binds, starts the first training as job 1, and serves until SIGTERM or ctrl-c.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let addr = settings.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let state = AppState::new(settings).context("cannot open the model store")?;
    let source = state.configured_source();
    tracing::info!(addr = %local, snapshot = ?source, "listening");
    let training = state.settings.training.clone();
    let _ = jobs::start(&state, jobs::Task::Startup { source, training });
    axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown(state))
        .await
        .context("server error")?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or ctrl-c, and tells a running training to stop.
async fn shutdown(state: AppState) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
    state.stopping.store(true, Ordering::Relaxed);
}

/// `mixrec healthcheck`: `GET /healthz` on `addr`; Ok only for a 200 answer.
pub fn healthcheck(addr: SocketAddr) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    // "HTTP/1.1 200"
    if &head[9..12] != b"200" {
        bail!(
            "{addr} answered {:?}",
            String::from_utf8_lossy(&head[9..12])
        );
    }
    Ok(())
}
