//! The `gantry` command: serve, check, reload, new, devices, token.

use anyhow::Context;
use clap::{Parser, Subcommand};
use gantry::config::Config;
use gantry::runtime::RuntimeError;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "Container orchestration host with WebAssembly protocol frontends and runtime backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: load plugins, run the control plane and the ingress.
    Serve {
        /// Config file (TOML); the embedded dev profile when absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate the config and every plugin it names, without serving; or,
    /// with `--plugin`, one component file against a world, naming every
    /// missing or mismatched export and import.
    Check {
        /// Config file (TOML); the embedded dev profile when absent.
        #[arg(long, short, conflicts_with = "plugin")]
        config: Option<PathBuf>,
        /// A component (`.wasm`) to check on its own, without a config.
        #[arg(long)]
        plugin: Option<PathBuf>,
        /// The world it must implement (`backend`, `scheduler`,
        /// `http-frontend`, `mqtt-frontend`); read from its exports when absent.
        #[arg(long, requires = "plugin")]
        world: Option<String>,
        /// Print the report as JSON (with `--plugin`).
        #[arg(long, requires = "plugin")]
        json: bool,
    },
    /// Ask the host serving this config to reload it: plugins whose
    /// component, settings, endpoints or limits changed are compiled and
    /// checked, then swapped without dropping a request; a plugin that fails
    /// its check is refused and the running one keeps serving. Prints the
    /// host's report (JSON); fails when the reload was refused. SIGHUP to the
    /// host reloads too.
    Reload {
        /// Config file (TOML) the host serves; the embedded dev profile when absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Bearer token with the ADMIN role; by default one is minted with
        /// the config's HS256 secret.
        #[arg(long, env = "GANTRY_ADMIN_TOKEN")]
        token: Option<String>,
    },
    /// Generate a plugin project: a standalone Cargo project depending on
    /// the SDK, with a README, a profile and a test that loads it into a
    /// real host.
    New {
        #[command(subcommand)]
        what: NewPlugin,
    },
    /// Print the GPU inventory as JSON: where it comes from (NVML or the
    /// config's `[devices]`), versions, and each GPU with its health.
    Devices {
        /// Config file (TOML); the embedded dev profile when absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Mint a dev JWT with the configured HS256 secret.
    Token {
        /// Subject (user id).
        #[arg(long)]
        sub: String,
        /// Roles (repeatable), e.g. --role ADMIN.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Validity in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Tenant id written as the token's `tid` claim, which Azure
        /// clients read (the Azure CLI's `az login --identity` needs one).
        #[arg(long)]
        tenant: Option<String>,
        /// Config file (TOML); the embedded dev profile when absent.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum NewPlugin {
    /// A runtime backend (world `backend`).
    Backend {
        #[command(flatten)]
        project: NewProject,
    },
    /// A protocol frontend, over HTTP (world `http-frontend`) or MQTT
    /// (world `mqtt-frontend`).
    Frontend {
        #[command(flatten)]
        project: NewProject,
        /// Served over HTTP under a path prefix.
        #[arg(long, conflicts_with = "mqtt", required_unless_present = "mqtt")]
        http: bool,
        /// Served over MQTT.
        #[arg(long)]
        mqtt: bool,
        /// The HTTP path prefix (default `/NAME`).
        #[arg(long, requires = "http")]
        prefix: Option<String>,
    },
}

#[derive(clap::Args)]
struct NewProject {
    /// Plugin and package name: lowercase letters, digits and '-'.
    name: String,
    /// Directory to create (default `./NAME`); must be absent or empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The gantry SDK (`plugins/sdk` of gantry's sources) to depend on.
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// `gantry new`: write the project and say what to do next.
fn new_plugin(what: NewPlugin) -> anyhow::Result<std::process::ExitCode> {
    use gantry::worlds::template::{Kind, Template, default_sdk};
    let (kind, project, prefix) = match what {
        NewPlugin::Backend { project } => (Kind::Backend, project, None),
        NewPlugin::Frontend {
            project,
            http: true,
            prefix,
            ..
        } => (Kind::HttpFrontend, project, prefix),
        NewPlugin::Frontend { project, .. } => (Kind::MqttFrontend, project, None),
    };
    let sdk = project.sdk.unwrap_or_else(default_sdk);
    let template = Template::new(kind, &project.name, prefix.as_deref(), &sdk)?;
    let dir = project.dir.unwrap_or_else(|| PathBuf::from(&project.name));
    for file in template.write(&dir)? {
        println!("created {}", file.display());
    }
    println!(
        "\nnext:\n  cd {}\n  cargo build --target wasm32-wasip2 --release\n  cargo test",
        dir.display()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::load(&p)?,
        None => {
            let cwd = std::env::current_dir().context("current directory")?;
            Config::embedded(cwd.join("examples/profiles"))?
        }
    })
}

/// A token signed with the config's HS256 secret.
fn mint(
    config: &Config,
    sub: &str,
    roles: &[String],
    tenant: Option<&str>,
    ttl: u64,
) -> anyhow::Result<String> {
    let v = gantry::auth::Verifier::from_config(&config.auth)?;
    let env = config
        .auth
        .hs256_secret_env
        .clone()
        .unwrap_or_else(|| "GANTRY_JWT_SECRET".into());
    Ok(v.mint(sub, roles, tenant, ttl, &env)?)
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG").unwrap_or_else(|_| {
        // wasmtime-wasi-http warns at every failed connect, and rumqttd logs each
        // client at info: the host reports both itself, once (backend health,
        // MQTT connection state).
        tracing_subscriber::EnvFilter::new(
            "info,wasmtime=warn,cranelift=warn,wasmtime_wasi_http=error,rumqttd=warn",
        )
    });
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// `gantry check --plugin FILE`: one component against a world.
fn check_plugin(
    file: &std::path::Path,
    world: Option<&str>,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    use gantry::worlds::authoring;
    let world = match world {
        None => None,
        Some(w) => Some(authoring::world_named(w).with_context(|| {
            format!("unknown world `{w}`: backend, scheduler, http-frontend or mqtt-frontend")
        })?),
    };
    let engine = gantry::runtime::engine::PluginEngine::new(128 << 20, None)?;
    let component = engine.load(&file.display().to_string(), file)?;
    let report = authoring::inspect(engine.engine(), &component, world);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: world {}{}",
            file.display(),
            report.world,
            if report.inferred {
                " (read from its exports)"
            } else {
                ""
            }
        );
        for p in &report.problems {
            println!("error   {}", p.message);
            for e in &p.expected {
                println!("          {e}");
            }
        }
        println!(
            "{}",
            if report.problems.is_empty() {
                "ok"
            } else {
                "problems found"
            }
        );
    }
    Ok(if report.problems.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gantry: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            let config = load(config)?;
            init_tracing(config.server.log_format == "json");
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let host = gantry::server::build(&config, true)?;
                host.serve().await
            })?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Check {
            plugin: Some(file),
            world,
            json,
            ..
        } => check_plugin(&file, world.as_deref(), json),
        Command::Check { config, .. } => {
            let config = load(config)?;
            let loaded = gantry::server::load_plugins(&config)?;
            let mut ok = true;
            for r in &loaded.reports {
                match &r.result {
                    Ok(()) => println!("ok      {} ({})", r.name, r.world.name()),
                    Err(e) => {
                        ok = false;
                        println!("error   {e}");
                        if let RuntimeError::Missing { path, .. } = e
                            && let Some(hint) = gantry::server::build_hint(path)
                        {
                            println!("        {hint}");
                        }
                    }
                }
            }
            println!(
                "{}: {}",
                config.origin,
                if ok { "ok" } else { "problems found" }
            );
            Ok(if ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Reload { config, token } => {
            let config = load(config)?;
            let token = match token {
                Some(t) => t,
                None => mint(&config, "gantry-reload", &["ADMIN".to_string()], None, 60)?,
            };
            let rt = tokio::runtime::Runtime::new()?;
            let (status, body) = rt.block_on(async {
                let address = gantry::reload::client::address_of(&config.server.listen).await?;
                gantry::reload::client::request_reload(address, &token).await
            })?;
            println!("{body}");
            Ok(if status == 200 {
                std::process::ExitCode::SUCCESS
            } else {
                eprintln!("gantry: the host answered {status}");
                std::process::ExitCode::FAILURE
            })
        }
        Command::New { what } => new_plugin(what),
        Command::Devices { config } => {
            let config = load(config)?;
            let inventory = gantry::gpu::Inventory::discover(&config.devices);
            println!("{}", serde_json::to_string_pretty(&inventory.report())?);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Token {
            sub,
            roles,
            ttl,
            tenant,
            config,
        } => {
            let config = load(config)?;
            println!("{}", mint(&config, &sub, &roles, tenant.as_deref(), ttl)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
