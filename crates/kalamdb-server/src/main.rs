use clap::Parser;
use kalamdb_server::config::{Cli, ServerConfig};
use std::process::ExitCode;

// Statement handling allocates many small, short-lived objects (tokens, AST
// nodes, cells); the system allocator spends a quarter of ingest time there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match ServerConfig::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kalamdb-server: {e}");
            return ExitCode::from(2);
        }
    };
    kalamdb_server::lifecycle::init_logging(&config);
    if let Some(from) = &cli.restore_from {
        // Applied by the engine as it opens, like RESTORE DATABASE's.
        if let Err(e) = kalamdb_core::backup::stage_restore(&config.storage.data_dir, from) {
            eprintln!("kalamdb-server: cannot restore: {e}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // DataFusion plans recursively; deep (but parser-bounded) queries
        // need more than the default 2 MiB.
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kalamdb-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(kalamdb_server::lifecycle::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            eprintln!("kalamdb-server: {e}");
            ExitCode::FAILURE
        }
    }
}
