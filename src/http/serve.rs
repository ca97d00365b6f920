//! Serving for real: logging, the runtime, the sockets (the public one and, when configured, the
//! admin one), the start-up job, and the shutdown on SIGTERM or ctrl-c: `/readyz` turns 503
//! at once; after SIGTERM requests are still served for `server.shutdown_delay_ms` so a load
//! balancer can stop sending; then the listeners close, idle keep-alive connections close, and
//! in-flight requests get `server.drain_timeout_ms` to finish before the process exits 0. A second
//! signal stops at once. When the start-up job fails there is no model to serve: the listeners
//! close and [`serve`] returns the reason (`mixrec serve` exits 1 with it), since a live process
//! that is never ready hides the fault and a crash loop shows it. Also the tiny `/healthz` client
//! behind `mixrec healthcheck`, for container health checks.
//!
//! Must not import: the handlers (it serves the router it is given), the stores or the training.

use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::listen;
use super::router::{admin_router, router};
use super::state::AppState;
use crate::config::{ServeArgs, ServerSettings, Settings};
use crate::serving::{Ending, JobError, Task, follow};

/// How long the runtime waits for its threads once serving is over. A job still running then
/// (a snapshot being read, a training between iterations) has been told to stop; it is not
/// waited for: whatever it holds is in memory only, and a save under way was waited for
/// already ([`wait_for_saves`]). So the process ends within `shutdown_delay_ms +
/// drain_timeout_ms` plus [`SAVE_GRACE`] and this.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);
/// How long past the drain a save under way may take to finish: a model file is written whole
/// or not at all (temporary file, rename), so one cut short leaves only a temporary file the
/// next start removes, but one that finishes leaves the model it trained.
const SAVE_GRACE: Duration = Duration::from_millis(700);

/// A second signal came before the drain was over: the process stops without waiting.
#[derive(Debug, thiserror::Error)]
#[error("a second signal stopped the service before in-flight requests finished")]
struct Interrupted;

/// The start-up job ended without a model: there is nothing to serve.
#[derive(Debug, thiserror::Error)]
#[error("no model to serve: the start-up job failed: {0}")]
struct NoModel(Arc<JobError>);

/// `mixrec serve`: reads the settings, starts logging and a runtime, and serves until a signal.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let settings = Settings::load(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(settings));
    match &result {
        // Asked twice: do not wait for a training thread either.
        Err(e) if e.is::<Interrupted>() => runtime.shutdown_background(),
        _ => runtime.shutdown_timeout(SHUTDOWN_GRACE),
    }
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

/// Binds, starts the start-up job (job 1), serves until SIGTERM or ctrl-c, then drains; returns
/// [`NoModel`] at once when the start-up job fails.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Before anything else, so a signal during start-up is not lost.
    let mut signals = Signals::new().context("cannot listen for signals")?;
    let public = bind(settings.server.listen).await?;
    let admin = match settings.server.admin_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let state = AppState::new(settings)?;
    let source = state.registry.configured_source();
    tracing::info!(addr = %public.local_addr()?, snapshot = ?source, "listening");
    let mut listeners = vec![Listener {
        socket: public,
        app: router(state.clone()),
        name: "public",
    }];
    if let Some(admin) = admin {
        tracing::info!(admin_addr = %admin.local_addr()?, "admin routes listening");
        listeners.push(Listener {
            socket: admin,
            app: admin_router(state.clone()),
            name: "admin",
        });
    }
    raise_open_file_limit(&state.server, listeners.len());
    // A replica never trains: it follows what the trainer published, and stays unready
    // until its first model is in.
    let startup = match state.registry.is_replica() {
        true => {
            let every = Duration::from_millis(state.registry.policy().models.poll_interval_ms);
            tokio::spawn(follow(state.registry.clone(), every));
            None
        }
        false => Some(state.registry.start(Task::Startup)?.done),
    };
    state.registry.schedule();
    let graceful = Arc::new(GracefulShutdown::new());
    accept_until_stopped(&state, listeners, &graceful, &mut signals, startup).await?;
    let graceful = Arc::into_inner(graceful).expect("the accept loops have ended");
    drain(&state, graceful, &mut signals).await?;
    wait_for_saves(&state, SAVE_GRACE).await;
    Ok(())
}

/// Waits up to `grace` for a save under way; none starts after shutdown has begun.
async fn wait_for_saves(state: &AppState, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    while state.registry.saving() {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                ?grace,
                "a model save outlived its grace; it is dropped unfinished"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Resolves with the reason when the start-up job ends without a model; never otherwise (nor
/// without a start-up job: a replica).
async fn no_model(startup: Option<JoinHandle<Ending>>) -> Arc<JobError> {
    let Some(startup) = startup else {
        return std::future::pending().await;
    };
    match startup.await {
        Ok(Ok(_)) => std::future::pending().await,
        Ok(Err(e)) => e,
        Err(join) => Arc::new(JobError::Lost(join.to_string())),
    }
}

/// A bound socket, the routes it serves, and its name in logs and metrics.
struct Listener {
    socket: TcpListener,
    app: Router,
    name: &'static str,
}

/// Raises the soft limit on open files to the hard limit, as servers that hold many
/// connections do (a desktop's soft limit is often 1024, below the default
/// `server.max_connections`, and a listener out of descriptors stops accepting for a second at
/// a time); warns when even that is below what the listeners may hold open.
fn raise_open_file_limit(s: &ServerSettings, listeners: usize) {
    /// Descriptors besides connections: the runtime, the snapshot, the model store, logs.
    const SPARE: u64 = 64;
    let wanted = s.max_connections as u64 * listeners as u64 + SPARE;
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        // `None` is unlimited; an unlimited hard limit is left alone (the kernel's own cap,
        // fs.nr_open, applies and is not worth guessing).
        if let (Some(before), Some(hard)) = (limit.current, limit.maximum)
            && before < hard
        {
            limit.current = Some(hard);
            match setrlimit(Resource::Nofile, limit) {
                Ok(()) => tracing::debug!(before, after = hard, "raised the open-file limit"),
                Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
            }
        }
        let now = getrlimit(Resource::Nofile).current;
        if let Some(now) = now.filter(|&now| now < wanted) {
            tracing::warn!(
                open_file_limit = now,
                wanted,
                "the open-file limit is below server.max_connections on every listener: \
                 accepting will stall when it is reached; raise the hard limit (ulimit -Hn, \
                 LimitNOFILE=) or lower server.max_connections"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = wanted;
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Serves every listener until a signal (and, after SIGTERM, the shutdown delay), then closes
/// them. `/readyz` answers 503 from the signal on. When `startup` ends without a model first,
/// closes them at once and returns [`NoModel`].
async fn accept_until_stopped(
    state: &AppState,
    listeners: Vec<Listener>,
    graceful: &Arc<GracefulShutdown>,
    signals: &mut Signals,
    startup: Option<JoinHandle<Ending>>,
) -> anyhow::Result<()> {
    let s = &state.server;
    let (stop, loops) = accept_all(s, listeners, graceful);
    let signal = tokio::select! {
        signal = signals.recv() => signal,
        failed = no_model(startup) => {
            state.registry.stop();
            let _ = stop.send(true);
            loops.join_all().await;
            return Err(NoModel(failed).into());
        }
    };
    // Readiness fails and a running training stops at its next iteration.
    state.registry.stop();
    let delay = match signal {
        Signal::Terminate => Duration::from_millis(s.shutdown_delay_ms),
        Signal::Interrupt => Duration::ZERO,
    };
    tracing::info!(
        ?signal,
        ?delay,
        "shutting down: /readyz answers 503; still serving for the delay"
    );
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = signals.recv() => return Err(Interrupted.into()),
    }
    let _ = stop.send(true);
    loops.join_all().await;
    Ok(())
}

/// Starts an accept loop for each listener; they run until the sender turns true.
fn accept_all(
    s: &ServerSettings,
    listeners: Vec<Listener>,
    graceful: &Arc<GracefulShutdown>,
) -> (watch::Sender<bool>, JoinSet<()>) {
    let http = listen::http1(Duration::from_millis(s.header_read_timeout_ms));
    let (stop, stopped) = watch::channel(false);
    let mut loops = JoinSet::new();
    for Listener { socket, app, name } in listeners {
        let (http, graceful, stopped) = (http.clone(), graceful.clone(), stopped.clone());
        let connections = listen::Connections::new(s.max_connections, name);
        loops.spawn(listen::accept(
            socket,
            app,
            http,
            connections,
            graceful,
            stopped,
        ));
    }
    (stop, loops)
}

/// With the listeners closed: closes idle connections, lets in-flight requests finish within
/// `server.drain_timeout_ms`, and drops whatever is still open after it.
async fn drain(
    state: &AppState,
    graceful: GracefulShutdown,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(state.server.drain_timeout_ms);
    let connections = graceful.count();
    tracing::info!(
        connections,
        ?timeout,
        "listeners closed; finishing in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("stopped"),
        () = tokio::time::sleep(timeout) => {
            tracing::warn!(?timeout, "in-flight requests outlived the drain timeout; dropping them");
        }
        _ = signals.recv() => return Err(Interrupted.into()),
    }
    Ok(())
}

/// The signal that asked the service to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// SIGTERM: an orchestrator (Kubernetes, docker stop, systemd).
    Terminate,
    /// SIGINT: ctrl-c in a terminal.
    Interrupt,
}

/// SIGTERM and ctrl-c, listened for once for the whole run: once registered they no longer end
/// the process by themselves, so a second one is seen as well.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        Ok(Self { term, int })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// The next signal.
    #[cfg(unix)]
    async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Terminate,
            _ = self.int.recv() => Signal::Interrupt,
        }
    }

    /// The next signal.
    #[cfg(not(unix))]
    async fn recv(&mut self) -> Signal {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        Signal::Interrupt
    }
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
