//! Start-up and ordered shutdown.
//!
//! Start: open the engine (RocksDB, catalog, users), recover interrupted
//! flushes, start the scheduler, bind, serve. Stop (on SIGINT/SIGTERM): stop
//! accepting connections and let in-flight requests finish, then stop the
//! scheduler, optionally flush every buffered row, give running jobs the
//! configured time (then stop them at a scope boundary), and close RocksDB.

use crate::config::ServerConfig;
use crate::http;
use kalamdb_auth::Authenticator;
use kalamdb_commons::SystemClock;
use kalamdb_core::{KalamDb, ShutdownOptions};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub fn init_logging(config: &ServerConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.logging.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let printed = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_target(true);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(printed)
        .with(crate::log_capture::CaptureLayer)
        .try_init();
}

pub async fn run(config: ServerConfig) -> Result<(), String> {
    // Bound first: `SUBSCRIBE TO` answers with the address clients reach.
    let addr = config.http_addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listen address: {e}"))?;
    let mut engine_config = config.engine();
    engine_config.live.ws_url = format!("ws://{local}/v1/ws");
    let authenticator = Authenticator::new();
    let credentials = authenticator.clone();
    let db = tokio::task::spawn_blocking(move || {
        KalamDb::open(&engine_config, Arc::new(SystemClock), credentials)
    })
    .await
    .map_err(|e| format!("engine start-up panicked: {e}"))?
    .map_err(|e| format!("cannot open the database: {e}"))?;
    // Login sessions live in the engine's store.
    authenticator.attach_store(db.store().clone(), db.clock().clone());
    let db = Arc::new(db);
    if let Some(files) = db
        .finish_restore()
        .await
        .map_err(|e| format!("cannot finish the restore: {e}"))?
    {
        info!(files, "restore finished: cold files written back");
    }
    match db.recover().await {
        Ok(0) => {}
        Ok(n) => info!(jobs = n, "re-running jobs interrupted by the last stop"),
        Err(e) => warn!(error = %e, "cannot resume interrupted jobs"),
    }
    db.start_scheduler();
    let queries = query_runtime()?;
    let state = http::AppState::new(db.clone(), authenticator, &config, queries.handle().clone())?;
    let websockets = state.websockets.clone();
    let app = http::router(state);
    info!(%local, version = env!("CARGO_PKG_VERSION"), "KalamDB listening");
    crate::serve::serve(listener, app, &config.limits, shutdown_signal()).await;
    websockets.close_all(Duration::from_secs(5)).await;
    info!("HTTP stopped; stopping the scheduler and jobs");
    let options = ShutdownOptions {
        flush_all: config.shutdown.flush_on_shutdown,
        timeout: Duration::from_secs(config.shutdown.timeout_secs),
    };
    db.shutdown(options).await;
    match Arc::try_unwrap(db) {
        Ok(db) => {
            drop(db);
            info!("engine closed");
        }
        // Every write is in the WAL already; RocksDB recovers from it.
        Err(_) => warn!("engine still referenced at shutdown; RocksDB closes at exit"),
    }
    // Nothing runs on it any more (requests and jobs have ended).
    queries.shutdown_background();
    info!("shutdown complete");
    Ok(())
}

/// The runtime statements run on, beside the one that serves HTTP. Its
/// threads get a large stack: planning and evaluation recurse over
/// expressions (bounded by the parser, but deep in debug builds).
fn query_runtime() -> Result<tokio::runtime::Runtime, String> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("kalamdb-query")
        .thread_stack_size(32 * 1024 * 1024)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the query runtime: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT received; shutting down"),
        _ = terminate => info!("SIGTERM received; shutting down"),
    }
}
