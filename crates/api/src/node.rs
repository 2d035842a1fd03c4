//! The start the server binaries share: the one-option command line of `mailpush-api`, `mailpush-smtp` and
//! `mailpush-worker` with their settings and logging, then (for `mailpush serve` too) the open-file limit their
//! listeners need and the core, and the admin listener of the nodes that serve no API.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};
use mailpush_core::settings::{self, Settings, SettingsError, ShutdownSignal};
use mailpush_core::{CoreError, Mailpush};

/// The command line of a node binary.
#[derive(Debug, Parser)]
#[command(version)]
pub struct NodeArgs {
    /// TOML configuration file; every key can also be set as MAILPUSH_<KEY>.
    #[arg(long, env = "MAILPUSH_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The listeners a process serves: what its open-file limit must cover.
#[derive(Debug, Clone, Copy, Default)]
pub struct Serves {
    /// The HTTP API.
    pub api: bool,
    /// SMTP submission and the inbound MX.
    pub smtp: bool,
    /// The delivery worker's outgoing connections.
    pub worker: bool,
}

impl Serves {
    /// `mailpush-api`: the HTTP API only.
    pub const API: Serves = Serves {
        api: true,
        smtp: false,
        worker: false,
    };
    /// `mailpush-smtp`: SMTP submission and the inbound MX only.
    pub const SMTP: Serves = Serves {
        api: false,
        smtp: true,
        worker: false,
    };
    /// `mailpush-worker`: the delivery worker only.
    pub const WORKER: Serves = Serves {
        api: false,
        smtp: false,
        worker: true,
    };
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The settings or the log filter are invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The core (database, keys) could not be opened.
    #[error("opening mailpush")]
    Open(#[source] CoreError),
    /// The admin listener could not be bound.
    #[error("binding the admin listener to {addr}")]
    AdminListener {
        /// `admin_listen`.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Parses the command line of the node binary `name` (`about` is its `--help` line), loads its settings (the
/// configuration file, then `MAILPUSH_*` variables) and starts logging.
pub fn settings_from_args(name: &'static str, about: &'static str) -> Result<Settings, NodeError> {
    let matches = NodeArgs::command().name(name).bin_name(name).about(about).get_matches();
    let args = NodeArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let settings = settings::load_for_process(args.config.as_deref())?;
    mailpush_core::logging::init(&settings)?;
    Ok(settings)
}

/// Warns about risky settings, raises the open-file limit to what `serves` needs (before any socket: the
/// connection caps, not the default soft limit, often 1,024, bound the clients) and opens the core.
pub async fn open_core(settings: &Settings, serves: Serves) -> Result<Mailpush, NodeError> {
    mailpush_core::logging::warn_about(settings);
    mailpush_core::listener::raise_fd_limit_logged(settings.fd_needed(serves.api, serves.smtp, serves.worker));
    Mailpush::open(settings.clone(), settings.clock())
        .await
        .map_err(NodeError::Open)
}

/// Serves the admin endpoints ([`crate::admin_router`]) on `admin_listen`, when it is set, until `stop`;
/// `name` starts the line that says where.
pub async fn spawn_admin(name: &str, core: &Mailpush, stop: &ShutdownSignal) -> Result<(), NodeError> {
    let Some(addr) = core.settings().admin_listen else {
        return Ok(());
    };
    let bind_error = |source| NodeError::AdminListener { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind_error)?;
    println!(
        "{name}: admin listening on http://{}",
        listener.local_addr().map_err(bind_error)?
    );
    tokio::spawn(crate::serve_admin(listener, core.clone(), stop.clone().stopped()));
    Ok(())
}

/// The start shared by the nodes that serve no API (`mailpush-smtp`, `mailpush-worker`): the settings from the
/// command line, the core, and the admin listener when `admin_listen` is set, served until `stop`.
pub async fn open_admin_node(
    name: &'static str,
    about: &'static str,
    serves: Serves,
    stop: &ShutdownSignal,
) -> Result<Mailpush, NodeError> {
    let settings = settings_from_args(name, about)?;
    let core = open_core(&settings, serves).await?;
    spawn_admin(name, &core, stop).await?;
    Ok(core)
}
