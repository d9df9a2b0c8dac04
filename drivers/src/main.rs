//! `allium-node`: init, run and control an Allium node.

#[cfg(madsim)]
fn main() {
    // Under madsim only the library (the driver loop) is exercised, by tests.
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(madsim))]
mod cli {
    use allium_node::config::{self, FileConfig, LogFormat, NodeSettings, RunFlags};
    use allium_node::ctl::{self, CtlCommand};
    use allium_node::store::Store;
    use allium_node::{NodeRuntime, election, http, socks};
    use anyhow::{Context, bail};
    use clap::{Parser, Subcommand};
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::process::ExitCode;

    /// Allium node: join the network, hold records, answer peers.
    #[derive(Debug, Parser)]
    #[command(name = "allium-node", version, about)]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Debug, Subcommand)]
    enum Top {
        /// Create a data directory with a new identity and a commented config.toml.
        Init {
            /// Directory to create.
            #[arg(long, default_value = "~/.allium")]
            dir: String,
            /// UDP listen address written to the config.
            #[arg(long, default_value_t = FileConfig::default().listen)]
            listen: SocketAddr,
            /// Control API address written to the config.
            #[arg(long, default_value_t = FileConfig::default().control)]
            control: SocketAddr,
            /// Metrics address written to the config.
            #[arg(long, default_value_t = FileConfig::default().metrics)]
            metrics: SocketAddr,
            /// Overwrite an existing config.toml.
            #[arg(long)]
            force: bool,
        },
        /// Run the node until Ctrl-C or SIGTERM.
        Run(RunFlags),
        /// Make founder keys, membership lists and join tokens for election groups.
        #[command(subcommand)]
        Election(election::ElectionCli),
        /// Talk to a running node.
        Ctl {
            /// The node's control API address.
            #[arg(long, env = "ALLIUM_CONTROL", default_value_t = FileConfig::default().control)]
            control: SocketAddr,
            #[command(subcommand)]
            command: CtlCommand,
        },
    }

    fn expand_home(path: &str) -> PathBuf {
        match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(path),
        }
    }

    pub fn main() -> ExitCode {
        let cli = Cli::parse();
        let result = match cli.command {
            Top::Init { dir, listen, control, metrics, force } => {
                init(expand_home(&dir), listen, control, metrics, force)
            }
            Top::Run(flags) => run(flags),
            Top::Election(command) => election::run(command),
            Top::Ctl { control, command } => ctl::run(control, command),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("allium-node: {error:#}");
                ExitCode::FAILURE
            }
        }
    }

    fn init(
        dir: PathBuf,
        listen: SocketAddr,
        control: SocketAddr,
        metrics: SocketAddr,
        force: bool,
    ) -> anyhow::Result<()> {
        let config_path = dir.join("config.toml");
        if config_path.exists() && !force {
            bail!("{} exists; pass --force to overwrite it", config_path.display());
        }
        if !control.ip().is_loopback() {
            bail!("the control API must listen on a loopback address, not {control}");
        }
        let mut store = Store::open(&dir)?;
        let (identity, created) = store.load_or_create_identity()?;
        std::fs::write(&config_path, config::commented_config(listen, control, metrics))
            .with_context(|| format!("writing {}", config_path.display()))?;
        println!("node id  {}", identity.id().to_hex());
        println!("signing  {}", allium_engine::identity::hex(&identity.public().signing_key));
        println!("identity {}", if created { "created" } else { "kept (already present)" });
        println!("config   {}", config_path.display());
        println!("run it:  allium-node run --config {}", config_path.display());
        Ok(())
    }

    fn init_logging(format: LogFormat) {
        let filter = tracing_subscriber::EnvFilter::try_from_env("ALLIUM_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
        match format {
            LogFormat::Json => builder.json().init(),
            LogFormat::Text => builder.init(),
        }
    }

    async fn shutdown_signal() {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutdown requested");
    }

    fn run(flags: RunFlags) -> anyhow::Result<()> {
        let settings = NodeSettings::resolve(&flags)?;
        init_logging(settings.log_format);
        let store = if settings.amnesia { Store::memory() } else { Store::open(&settings.data_dir)? };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("OS entropy unavailable: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let (node, handle) = NodeRuntime::start(
                settings.listen,
                settings.bootstrap.clone(),
                settings.params.clone(),
                settings.relay.clone(),
                settings.mix,
                settings.election.clone(),
                settings.rewards.clone(),
                store,
                allium_engine::NodeSeed::from_bytes(seed),
            )
            .await?;
            let max_upload = settings.params.overlay.max_object_bytes;
            let max_message = u64::from(settings.params.mix.max_message_bytes);
            let control = tokio::spawn(http::control::serve(settings.control, handle.clone(), max_upload, max_message));
            let metrics = tokio::spawn(http::metrics::serve(settings.metrics, handle.clone()));
            let socks = async {
                match settings.socks {
                    Some(addr) => {
                        socks::listener::serve(addr, handle.clone(), settings.params.circuit.hops as usize).await
                    }
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                result = node.run(shutdown_signal()) => result,
                Err(error) = socks => Err(error.context("SOCKS listener")),
                Ok(Err(error)) = control => Err(error.context("control API")),
                Ok(Err(error)) = metrics => Err(error.context("metrics endpoint")),
            };
            tracing::info!("stopped");
            result
        })
    }
}
