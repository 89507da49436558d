//! The command-line definition, rendered as docs/cli.md. Global flags work before or after the
//! subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

mod config_file;
mod examples;

pub use config_file::{ConfigError, ConfigFile};

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version = VERSION,
    about = "Self-service release management and production support",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// What `ferry --version` says: the version, the commit it was built from and the date.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("FERRY_COMMIT"),
    ", built ",
    env!("FERRY_BUILD_DATE"),
    ")"
);

/// Commands that are not clients of a server, with the global flags each still reads and
/// what each means there: the others are hidden from their help (and from docs/cli.md).
const NOT_CLIENTS: [(&str, &[(&str, &str)]); 4] = [
    (
        "agent",
        &[(
            "server",
            "The ferry server's URL, e.g. http://127.0.0.1:7070; needed with --enroll only, on \
             the first run",
        )],
    ),
    ("demo", &[]),
    ("completions", &[]),
    ("man", &[]),
];

impl Cli {
    /// The command line as ferry parses it and documents it.
    pub fn definition() -> clap::Command {
        let mut root = Cli::command();
        // Global flags reach the subcommands only when the definition is built.
        root.build();
        add_examples(&mut root, "ferry");
        for command in root.get_subcommands_mut() {
            let group = command.get_name().to_owned();
            describe_args(command, &group);
            let Some((_, reads)) = NOT_CLIENTS
                .iter()
                .find(|(name, _)| command.get_name() == *name)
            else {
                continue;
            };
            *command = std::mem::take(command).mut_args(|arg| {
                if !arg.is_global_set() {
                    return arg;
                }
                match reads.iter().find(|(id, _)| arg.get_id() == *id) {
                    Some((_, meaning)) => arg.help(*meaning),
                    None => arg.hide(true),
                }
            });
        }
        root
    }

    /// Parses the process's arguments, with the `--config` file of `ferry server` or
    /// `ferry agent` if one is named, exiting with clap's message when they are wrong (or
    /// with the file's problems).
    pub fn from_process() -> Cli {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        let definition = with_config_file(Cli::definition(), &args).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        });
        Cli::from_arg_matches(&definition.get_matches_from(args)).unwrap_or_else(|e| e.exit())
    }
}

/// `definition` with the `--config` file of `ferry server` or `ferry agent`, when `args`
/// name one, read into that command's flags as their defaults.
fn with_config_file(
    definition: clap::Command,
    args: &[std::ffi::OsString],
) -> Result<clap::Command, ConfigError> {
    // Only `ferry server` and `ferry agent` take one: every other command skips the look.
    if !args
        .iter()
        .skip(1)
        .any(|arg| arg == "server" || arg == "agent")
    {
        return Ok(definition);
    }
    // A first look, past missing flags the file may give, only to find the file.
    let Ok(matches) = definition
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(args)
    else {
        return Ok(definition);
    };
    let Some((name, sub)) = matches.subcommand() else {
        return Ok(definition);
    };
    let Ok(Some(path)) = sub.try_get_one::<PathBuf>("config") else {
        return Ok(definition);
    };
    if sub.subcommand().is_some() {
        return Ok(definition);
    }
    let name = name.to_owned();
    let file = ConfigFile::read(path, subcommand(&definition, &name))?;
    Ok(definition.mut_subcommand(name, |command| file.apply(command)))
}

/// `ferry COMMAND --config PATH` (`ferry server` or `ferry agent`) as it would be parsed
/// here, its flags' environment variables included; with the file as read.
pub fn parse_with_config_file(
    command: &str,
    path: &std::path::Path,
) -> Result<(Cli, ConfigFile), ConfigError> {
    let definition = Cli::definition();
    let file = ConfigFile::read(path, subcommand(&definition, command))?;
    let parsed = definition
        .mut_subcommand(command, |c| file.apply(c))
        .try_get_matches_from(["ferry", command])
        .and_then(|matches| Cli::from_arg_matches(&matches))
        .map_err(|e| {
            // What clap says before its usage line: "the following required arguments were
            // not provided:" is followed by the arguments, each on a line of its own.
            let said = e.render().to_string();
            let what: Vec<&str> = said
                .lines()
                .map(str::trim)
                .take_while(|line| !line.starts_with("Usage:"))
                .filter(|line| !line.is_empty())
                .collect();
            file.problem(what.join(" ").trim_start_matches("error: "))
        })?;
    Ok((parsed, file))
}

/// The config file `path` of `ferry server` or `ferry agent` (`command`), checked.
pub fn read_config_file(command: &str, path: &std::path::Path) -> Result<ConfigFile, ConfigError> {
    ConfigFile::read(path, subcommand(&Cli::definition(), command))
}

/// The subcommand `name` of the definition: `server` or `agent`, which take config files.
fn subcommand<'a>(definition: &'a clap::Command, name: &str) -> &'a clap::Command {
    definition
        .find_subcommand(name)
        .expect("ferry server and ferry agent take config files")
}

/// Puts each command's examples (`cli/examples.rs`) under its help, after what is there.
fn add_examples(command: &mut clap::Command, path: &str) {
    if let Some(examples) = examples::examples_of(command, path) {
        let text = match command.get_after_help() {
            Some(before) => format!("{before}\n\n{examples}"),
            None => examples,
        };
        *command = std::mem::take(command).after_help(text);
    }
    for sub in command.get_subcommands_mut() {
        let path = format!("{path} {}", sub.get_name());
        add_examples(sub, &path);
    }
}

/// Gives every argument of `command` and its subcommands that the definition leaves
/// undescribed its usual meaning, by its name (an `id` by the command group it is in), so
/// every `--help` says what to pass and where to look it up.
fn describe_args(command: &mut clap::Command, group: &str) {
    *command = std::mem::take(command).mut_args(|arg| {
        if arg.get_help().is_some() {
            return arg;
        }
        let help = match (arg.get_id().as_str(), group) {
            ("app", _) => "The application, as `ferry app list` shows it",
            ("env", _) => "The environment, as `ferry env list` shows it",
            ("team", _) => "The team, as `ferry team list` shows it",
            ("user", _) => "The user, as `ferry user list` shows it",
            ("role", _) => "The role, as `ferry role list` shows it",
            ("release", _) => "The release's version, as `ferry release list APP` shows it",
            ("incident", _) | ("id", "incident") => {
                "The incident's number, as `ferry incident list` shows it"
            }
            ("id", "backport") => {
                "The backport obligation's number, as `ferry backport list` shows it"
            }
            ("id", "backlog") => "The backlog item's number, as `ferry backlog list` shows it",
            ("id", "approve" | "reject" | "deployment") => {
                "The deployment's number, as `ferry deployment list` shows it"
            }
            _ => return arg,
        };
        arg.help(help)
    });
    for sub in command.get_subcommands_mut() {
        describe_args(sub, group);
    }
}

/// Flags every client command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The ferry server's URL, e.g. http://127.0.0.1:7070
    #[arg(long, global = true, env = "FERRY_SERVER", hide_env_values = true)]
    pub server: Option<String>,
    /// An API token
    #[arg(long, global = true, env = "FERRY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print exactly one JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Trust exactly this CA certificate (PEM) for an https:// server, e.g. the DATA/tls/ca.pem
    /// of a server started with --tls
    #[arg(
        long,
        global = true,
        env = "FERRY_CA_CERT",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
// Built once per process from the command line: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the server, or operate on a running one
    Server(ServerCommandArgs),
    /// Run a server, one agent per environment and a sample application deployed to dev
    Demo(DemoArgs),
    /// Check that this client can work with its server and the server's targets can: the
    /// server answers, TLS and the CA it is pinned to, the token, the clocks, every target's
    /// agent and drift; each problem with what to fix (exit 1 when there is one)
    Doctor,
    /// Check a release tree's ferry.toml as the server and the agent will read it
    Check {
        /// The directory holding the release's files
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Check a server and token and store them for later commands
    Login,
    /// Show who the token belongs to
    Whoami,
    /// Teams: users and the applications they own
    #[command(subcommand)]
    Team(TeamCommand),
    /// Users and their API tokens
    #[command(subcommand)]
    User(UserCommand),
    /// Roles: a permission level per environment
    #[command(subcommand)]
    Role(RoleCommand),
    /// The environment pipeline and its policy
    #[command(subcommand)]
    Env(EnvCommand),
    /// Applications
    #[command(subcommand)]
    App(AppCommand),
    /// Releases: immutable, versioned trees of an application
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Targets: the servers that run applications
    #[command(subcommand)]
    Target(TargetCommand),
    /// Run the agent on a target server (no root needed), or check its config file
    Agent(AgentCommandArgs),
    /// Deploy a release to an environment
    Deploy(DeployArgs),
    /// Go back to a release the targets already have
    Rollback(RollbackArgs),
    /// Deploy what runs in one environment to the next one
    Promote(PromoteArgs),
    /// Approve a deployment awaiting approval
    Approve {
        id: i64,
        /// Why, for the audit trail
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a deployment awaiting approval (or withdraw your own)
    Reject {
        id: i64,
        /// Why (required)
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deployments
    #[command(subcommand)]
    Deployment(DeploymentCommand),
    /// What runs where
    Status {
        /// Only this application
        app: Option<String>,
        /// Draw it again every INTERVAL (2s without one) until Ctrl-C
        #[arg(long, value_name = "INTERVAL", num_args = 0..=1,
              default_missing_value = crate::watch::DEFAULT_EVERY, value_parser = duration)]
        watch: Option<std::time::Duration>,
    },
    /// Files on targets that differ from the release they run (hand edits), as their agents
    /// last found
    #[command(args_conflicts_with_subcommands = true)]
    Drift {
        #[command(subcommand)]
        command: Option<DriftCommand>,
        /// Only this application
        app: Option<String>,
        /// Only targets in this environment
        #[arg(long)]
        env: Option<String>,
        /// Only this target
        #[arg(long)]
        target: Option<String>,
        /// Ask the targets' agents to check now, and wait for what they find (instead of
        /// what they found at their last periodic check)
        #[arg(long)]
        refresh: bool,
    },
    /// Backups of applications' data on their targets (the `backup` paths of a release's
    /// ferry.toml): take, list, show, restore
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Configuration per application and environment: values and secrets, in revisions,
    /// delivered with each deployment
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The audit trail of every change
    Audit(AuditArgs),
    /// Where a team's notifications go (webhooks, e-mail), and the delivery log
    #[command(subcommand)]
    Channel(ChannelCommand),
    /// Production problems: open, route, acknowledge, resolve
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Hotfixes of critical incidents, from production's exact release
    #[command(subcommand)]
    Hotfix(HotfixCommand),
    /// Work for the maintaining team from non-critical incidents
    #[command(subcommand)]
    Backlog(BacklogCommand),
    /// Hotfixes that reached production and must reach dev too
    #[command(subcommand)]
    Backport(BackportCommand),
    /// Routing rules: incidents of a category go to a team
    #[command(subcommand)]
    Route(RouteCommand),
    /// Print the completion script for a shell, e.g.
    /// `ferry completions bash > /etc/bash_completion.d/ferry`
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write a man page for every command into a directory (ferry.1, ferry-server.1,
    /// ferry-server-backup.1, …), e.g. `ferry man --out /usr/local/share/man/man1`
    Man {
        /// The directory to write the pages into (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Open an incident: it is routed to the on-call person of the right team, and ferry
    /// plans its support path (backlog, hotfix-backport or hotfix-merge)
    Open {
        app: String,
        #[arg(long)]
        env: String,
        /// critical, high, medium or low
        #[arg(long)]
        severity: String,
        /// What is wrong, in one line
        #[arg(long)]
        title: String,
        /// Routes it by the routing rules (`ferry route list`)
        #[arg(long)]
        category: Option<String>,
        /// What happens, in more words
        #[arg(long)]
        description: Option<String>,
    },
    /// Unresolved incidents you can see, newest first
    List {
        /// Only this application's
        app: Option<String>,
        /// Include resolved ones
        #[arg(long)]
        all: bool,
    },
    /// One incident with its history
    Show { id: i64 },
    /// Acknowledge an incident: you are on it, so it stops escalating
    Ack {
        id: i64,
        /// A note for the incident's history
        #[arg(long)]
        note: Option<String>,
    },
    /// Resolve an incident
    Resolve {
        id: i64,
        /// What was done, for the incident's history
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HotfixCommand {
    /// Make pp run production's release and print the hotfix plan
    Start {
        incident: i64,
        /// Wait until pp runs it
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BacklogCommand {
    /// Backlog items, newest first
    List { app: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// Make a release of the hand edits on a target: a hotfix of the release it runs, which
    /// it runs from then on without a file rewritten
    ///
    /// Only the content the server lacks is uploaded. On a production target the hotfix
    /// opens a backport obligation. Needs the right to create releases of the application
    /// and to deploy it to the target's environment.
    Capture {
        /// The target whose hand edits to capture
        target: String,
        app: String,
        /// The new release's version (later than the running one, e.g. 1.4.2-captured.1)
        #[arg(long = "as", id = "as", value_name = "VERSION")]
        version: String,
        /// The hotfix incident the edits fix (its base must be the release the target runs)
        #[arg(long)]
        incident: Option<i64>,
    },
    /// Undo the hand edits on a target: the release it runs gets its exact content back
    ///
    /// What the drifted paths hold is kept first, as a backup of the application (`ferry
    /// backup show`), so nothing is lost. Needs deploy level on the application in the
    /// target's environment.
    Revert {
        /// The target whose hand edits to undo
        target: String,
        app: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum BackportCommand {
    /// Backport obligations, newest first
    List { app: Option<String> },
    /// Close an obligation by hand: the fix will not reach dev (approve level in production)
    ///
    /// A waiver says the fix need not reach the product line, so the regression guard stops
    /// holding later releases to it: a release without the fix may go to pp and prd again.
    Waive {
        id: i64,
        /// Why (required)
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// The routing rules
    List,
    /// Send every incident of CATEGORY to TEAM (release managers and admins)
    Set {
        /// The incident category, as `ferry incident open --category` takes it
        category: String,
        #[arg(long)]
        team: String,
    },
    /// Remove the rule of a category
    Remove {
        /// The category whose rule goes; its incidents go to the maintaining team again
        category: String,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps everything: database, content, and the targets' roots
    #[arg(long, default_value = "./ferry-demo")]
    pub data: PathBuf,
    /// The address the demo server listens on
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// Print a one-time token with which a new server's agent enrolls
    Enroll {
        env: String,
        /// The new target's name
        name: String,
    },
    /// List targets with environment, last contact and health
    List {
        #[arg(long)]
        env: Option<String>,
    },
    /// Take a target out of service (release manager or admin): its agent's credential stops
    /// working at once; its history stays. `ferry target enroll ENV NAME` brings the name back
    /// for a new server, whose agent takes over what it ran
    Remove {
        /// The target, as `ferry target list` shows it
        name: String,
    },
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = DURATIONS_HELP
)]
pub struct AgentCommandArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    #[command(flatten)]
    pub run: AgentArgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Exchange a one-time enrollment token (`ferry target enroll`) for this target's
    /// credential, then exit: for an agent started as a service afterwards. The root and the
    /// server come from the flags, else from the config file
    Enroll {
        /// The token `ferry target enroll` printed
        #[arg(value_name = "TOKEN")]
        token: String,
        /// The directory the agent manages (as `ferry agent --root`)
        #[arg(long, env = "FERRY_AGENT_ROOT")]
        root: Option<PathBuf>,
        /// The agent's config file, for `root` and `server`
        #[arg(long, env = "FERRY_AGENT_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Check a `--config` file without starting anything: its syntax, that every key is a
    /// flag of `ferry agent` (or `server`), every value what that flag takes; each problem
    /// is printed with its line and column (exit 1)
    CheckConfig {
        /// The config file, e.g. /etc/ferry/agent.toml
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The directory the agent manages: ROOT/apps/APP/… and its state in ROOT/.ferry
    #[arg(long, env = "FERRY_AGENT_ROOT", required = true)]
    pub root: Option<PathBuf>,
    /// A one-time enrollment token (`ferry target enroll`); needed on the first run only
    #[arg(long, env = "FERRY_AGENT_ENROLL", hide_env_values = true)]
    pub enroll: Option<String>,
    /// How often to compare the files of each release served with the release and report
    /// what differs (drift) to the server; files whose size, inode and times are as staged
    /// are not read again, so a check of an unchanged release takes milliseconds
    #[arg(long, env = "FERRY_AGENT_DRIFT_EVERY", default_value = "60s", value_parser = duration)]
    pub drift_every: std::time::Duration,
    /// Run as root, run the hooks and health checks of applications without a `--run-as`
    /// user as root too, instead of refusing to deploy them. Those applications can then
    /// read and change each other's files and this agent's credential
    #[arg(
        long,
        env = "FERRY_AGENT_HOOKS_AS_ROOT",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub hooks_as_root: bool,
    /// A TOML file of settings, each key one of the flags above or `server`
    /// (`root = "/srv/ferry"`): a flag on the command line wins, then its environment
    /// variable, then the file. `ferry agent check-config FILE` checks one
    #[arg(long, env = "FERRY_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The application, as `ferry app list` shows it
    pub app: String,
    /// The release to deploy, as `ferry release list APP` shows it
    #[arg(value_name = "VERSION")]
    pub release: String,
    /// The environment to deploy to
    #[arg(long)]
    pub to: String,
    /// Wait until the deployment finishes, printing its id first and, on a terminal, each
    /// target's step as it changes; exit 1 unless it succeeded
    #[arg(long)]
    pub wait: bool,
    /// One target after another (rolling) or all at once (parallel)
    #[arg(long, value_enum, default_value = "rolling")]
    pub strategy: StrategyArg,
    /// Why, for the audit trail
    #[arg(long)]
    pub reason: Option<String>,
    /// Only fetch and stage the release on every target, switching none; deploying the
    /// same release later is then only a switch
    #[arg(long)]
    pub stage_only: bool,
    /// Deploy a release older than the one running
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Override approvals and freezes, by window or `ferry env freeze` (admin on the
    /// environment; needs --reason)
    #[arg(long)]
    pub break_glass: bool,
    /// Deploy even though the release would undo a hotfix shipped to production (approve
    /// level on the environment; needs --reason)
    #[arg(long)]
    pub override_guard: bool,
    /// Leave out targets whose agent is offline (missed three heartbeats) instead of
    /// refusing; refused all the same when every target is offline
    #[arg(long)]
    pub skip_offline: bool,
    /// Go ahead without backing up the application's data first, which targets of a
    /// protected environment otherwise do before they switch (audited, and told to the
    /// team): why
    #[arg(long, value_name = "REASON")]
    pub skip_backup: Option<String>,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    pub app: String,
    /// The environment whose running release is promoted
    #[arg(long)]
    pub from: String,
    /// The next environment, where it goes
    #[arg(long)]
    pub to: String,
    /// Wait until the deployment finishes (approvals included); exit 1 unless it succeeded
    #[arg(long)]
    pub wait: bool,
    /// One target after another (rolling) or all at once (parallel)
    #[arg(long, value_enum, default_value = "rolling")]
    pub strategy: StrategyArg,
    /// Why, for the audit trail
    #[arg(long)]
    pub reason: Option<String>,
    /// Promote a release older than the one running in the target environment
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Override approvals and freezes, by window or `ferry env freeze` (admin on the
    /// environment; needs --reason)
    #[arg(long)]
    pub break_glass: bool,
    /// Promote even though the release would undo a hotfix shipped to production (approve
    /// level on the environment; needs --reason)
    #[arg(long)]
    pub override_guard: bool,
    /// Leave out targets whose agent is offline (missed three heartbeats) instead of
    /// refusing; refused all the same when every target is offline
    #[arg(long)]
    pub skip_offline: bool,
    /// Go ahead without backing up the application's data first, which targets of a
    /// protected environment otherwise do before they switch (audited, and told to the
    /// team): why
    #[arg(long, value_name = "REASON")]
    pub skip_backup: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    Rolling,
    Parallel,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub app: String,
    #[arg(long)]
    pub env: String,
    /// The version to go back to, one that ran in the environment before (default: the
    /// release and configuration before the current ones); VERSION@REVISION names a
    /// configuration revision too; any other release goes through `ferry deploy`
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Wait until the rollback finishes
    #[arg(long)]
    pub wait: bool,
    /// Why, for the audit trail
    #[arg(long)]
    pub reason: Option<String>,
    /// Override a freeze, by window or `ferry env freeze` (admin on the environment; needs
    /// --reason)
    #[arg(long)]
    pub break_glass: bool,
    /// Go back even though it would undo a hotfix shipped to production (approve level on
    /// the environment; needs --reason)
    #[arg(long)]
    pub override_guard: bool,
    /// Leave out targets whose agent is offline (missed three heartbeats) instead of
    /// refusing; refused all the same when every target is offline
    #[arg(long)]
    pub skip_offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up an application's data now on its targets in an environment (deploy level):
    /// after the release's pre_backup hook, only what changed since the last backup is sent
    Create {
        app: String,
        #[arg(long)]
        env: String,
        /// Only this target
        #[arg(long)]
        target: Option<String>,
    },
    /// Backups you may see, newest first
    List {
        /// Only this application's
        app: Option<String>,
        /// Only this environment's
        #[arg(long)]
        env: Option<String>,
    },
    /// One backup: its paths, files, bytes and the bytes it added
    Show {
        /// The backup's number (`ferry backup list`)
        id: i64,
    },
    /// Restore a backup on its target (or another of its environment that runs the
    /// application), after backing up the data it replaces (deploy level)
    Restore {
        /// The backup's number (`ferry backup list`)
        id: i64,
        /// Restore on this target instead
        #[arg(long)]
        target: Option<String>,
        /// Only this path (a backup path or a path inside one, relative to shared/)
        #[arg(long)]
        path: Option<String>,
    },
    /// Write a backup's files into a new or empty directory on this machine, each checked
    /// against its hash (deploy level): to look at what it holds, or to take data elsewhere
    Export {
        /// The backup's number (`ferry backup list`)
        id: i64,
        /// Where to write it: a new or empty directory
        dir: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set keys of an application's configuration in an environment (deploy level): one new
    /// revision, which reaches the targets with the next deployment (`ferry config apply`)
    Set {
        app: String,
        #[arg(long)]
        env: String,
        /// KEY=VALUE pairs; a KEY alone (one only) reads its value from standard input, so a
        /// secret stays out of the shell's history and the process list
        #[arg(value_name = "KEY=VALUE")]
        assignments: Vec<String>,
        /// The keys set are secrets: encrypted at rest, masked when shown, never in the audit
        /// trail, logs or notifications
        #[arg(long)]
        secret: bool,
        /// Also set every KEY=VALUE line of this file (# comments, `export`, quotes allowed)
        #[arg(long, value_name = "FILE")]
        from_env_file: Option<PathBuf>,
    },
    /// Remove keys from an application's configuration in an environment (deploy level):
    /// one new revision
    Unset {
        app: String,
        #[arg(long)]
        env: String,
        /// The keys to remove
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// An application's configuration in an environment, secrets masked (view level)
    Show {
        app: String,
        #[arg(long)]
        env: String,
        /// This revision instead of the newest (`ferry config history`)
        #[arg(long)]
        revision: Option<u64>,
        /// Show secrets' values too (admins only; audited, and the owning team is told)
        #[arg(long)]
        reveal: bool,
    },
    /// Every revision of an application's configuration in an environment: who, when, and
    /// which keys changed
    History {
        app: String,
        #[arg(long)]
        env: String,
    },
    /// Deploy the release an environment runs with its newest configuration (deploy level):
    /// a deployment like any other, under the environment's freezes and approvals, health
    /// checked and rolled back on failure; `ferry rollback` goes back to the previous values
    Apply {
        app: String,
        #[arg(long)]
        env: String,
        /// Wait until the deployment finishes (approvals included); exit 1 unless it succeeded
        #[arg(long)]
        wait: bool,
        /// One target after another (rolling) or all at once (parallel)
        #[arg(long, value_enum, default_value = "rolling")]
        strategy: StrategyArg,
        /// Why, for the audit trail
        #[arg(long)]
        reason: Option<String>,
        /// Override approvals and freezes (admin on the environment; needs --reason)
        #[arg(long)]
        break_glass: bool,
        /// Leave out targets whose agent is offline instead of refusing
        #[arg(long)]
        skip_offline: bool,
        /// Go ahead without the backup a protected environment's targets take first: why
        #[arg(long, value_name = "REASON")]
        skip_backup: Option<String>,
    },
    /// Keys one environment has and the other lacks, and which differ (never a value)
    Diff {
        app: String,
        /// The first environment
        first: String,
        /// The second environment
        second: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// One deployment, target by target
    Show {
        id: i64,
        /// Wait until it finishes (after its approvals, say); exit 1 unless it succeeded
        #[arg(long, conflicts_with = "watch")]
        wait: bool,
        /// Draw it again every INTERVAL (2s without one) until it finishes or Ctrl-C; exit 1
        /// unless it succeeded
        #[arg(long, value_name = "INTERVAL", num_args = 0..=1,
              default_missing_value = crate::watch::DEFAULT_EVERY, value_parser = duration)]
        watch: Option<std::time::Duration>,
    },
    /// Recent deployments, newest first
    List { app: Option<String> },
    /// What each target's hooks and health check printed in a deployment, step by step:
    /// the command or URL, how it ended, and its output (the last 64 KiB of each)
    Logs {
        id: i64,
        /// Only this target's steps, as `ferry deployment show ID` lists its targets
        #[arg(long)]
        target: Option<String>,
    },
    /// Stop a deployment awaiting approval or running (deploy level): targets not switched
    /// yet stay as they are, switched ones go back to their previous release, and it ends
    /// `cancelled`
    Cancel {
        id: i64,
        /// Why, for the audit trail and the team's notification
        #[arg(long)]
        reason: Option<String>,
        /// Wait until the switched targets are back and the deployment has ended
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Create a release from a directory, a .tar/.tar.gz/.tar.zst file, git+URL#REF or
    /// svn+URL@REV; only content the server lacks is uploaded
    Create {
        app: String,
        #[arg(value_name = "VERSION")]
        release: String,
        /// Where the tree comes from
        #[arg(long, value_name = "SOURCE")]
        from: String,
        /// What changed, for people
        #[arg(long)]
        notes: Option<String>,
        /// Accept a tree with no files
        #[arg(long)]
        allow_empty: bool,
        /// Make it a hotfix of release BASE: it starts at pp, not dev
        #[arg(long, value_name = "BASE")]
        hotfix_of: Option<String>,
        /// The incident the hotfix fixes (with --hotfix-of)
        #[arg(long, value_name = "ID", requires = "hotfix_of")]
        incident: Option<i64>,
        /// A backlog item this release closes (repeatable)
        #[arg(long = "closes", value_name = "ID")]
        closes: Vec<i64>,
        /// Refuse trees (or archives expanding) past this many bytes
        #[arg(long, default_value_t = ferry_cas::ingest::Limits::default().max_bytes)]
        max_bytes: u64,
        /// Refuse trees (or archives) with more entries than this
        #[arg(long, default_value_t = ferry_cas::ingest::Limits::default().max_entries)]
        max_entries: u64,
    },
    /// List an application's releases, newest first
    List { app: String },
    /// Remove the releases retention no longer keeps (all but the newest --keep of the
    /// app) and the content only they used
    Prune { app: String },
    /// Show one release
    Show {
        app: String,
        #[arg(value_name = "VERSION")]
        release: String,
    },
    /// Paths added, removed and modified from one release to another
    Diff {
        app: String,
        /// The older release's version
        from: String,
        /// The newer release's version
        to: String,
    },
    /// Write a release's exact tree (modes and symlinks included) to a new directory
    Export {
        app: String,
        #[arg(value_name = "VERSION")]
        release: String,
        /// A directory that does not exist yet, or is empty
        dir: PathBuf,
    },
}

impl Command {
    /// Whether this command runs a server in this process (`ferry server`, `ferry demo`).
    pub fn runs_a_server(&self) -> bool {
        matches!(
            self,
            Command::Server(ServerCommandArgs { command: None, .. }) | Command::Demo(_)
        )
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = DURATIONS_HELP)]
pub struct ServerCommandArgs {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    #[command(flatten)]
    pub run: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Check a `--config` file without starting anything: its syntax, that every key is a
    /// flag of `ferry server`, every value what that flag takes, and no two that conflict;
    /// each problem is printed with its line and column (exit 1)
    CheckConfig {
        /// The config file, e.g. /etc/ferry/server.toml
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Re-hash every stored blob, quarantine corrupt ones and list missing ones (admin);
    /// exit 1 if anything is wrong
    Fsck,
    /// Move a stopped server's state from SQLite in its data directory to an empty
    /// PostgreSQL database, history and audit chain included (run on the server's machine)
    Migrate {
        /// The data directory of the server to move (stop that server first)
        #[arg(long, value_name = "DATA_DIR")]
        from: PathBuf,
        /// The empty PostgreSQL database to move into
        /// (postgres://USER:PASSWORD@HOST:PORT/DATABASE), by default the one the servers
        /// will use (FERRY_DATABASE)
        #[arg(
            long,
            env = "FERRY_DATABASE",
            value_name = "URL",
            hide_env_values = true
        )]
        to: String,
        /// The audit trail's key, if it does not live in the data directory
        #[arg(long, value_name = "FILE")]
        audit_key: Option<PathBuf>,
        /// Also copy release content from DATA/blobs to where the servers will keep it
        /// (s3://bucket/prefix with the AWS_* environment variables, or file:///dir);
        /// content already there is not copied again
        #[arg(long, value_name = "URL")]
        blobs: Option<ferry_server::BlobLocation>,
    },
    /// Write the state of a server on SQLite and its release content to one file, while the
    /// server runs (run on the server's machine); the audit trail is verified, and the audit
    /// key is not in the file: keep it apart
    Backup {
        /// The server's data directory
        #[arg(long, default_value = "./ferry-data")]
        data: PathBuf,
        /// The file to write (a new one)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The audit trail's key, if it does not live in the data directory
        #[arg(long, value_name = "FILE")]
        audit_key: Option<PathBuf>,
        /// Where the server keeps release content, if not DATA/blobs (file:///dir)
        #[arg(long, value_name = "URL")]
        blobs: Option<ferry_server::BlobLocation>,
    },
    /// Make a new secret key and encrypt every configuration secret again under it, in one
    /// transaction (run on the server's machine with the server stopped; with PostgreSQL,
    /// stop every server, then copy the new key file to each before starting them). The old
    /// key is kept beside it as secret-key.retired-ID for backups made before
    RotateSecretKey {
        /// The server's data directory
        #[arg(long, default_value = "./ferry-data")]
        data: PathBuf,
        /// The server's PostgreSQL database, if its state is not in SQLite in the data
        /// directory
        #[arg(
            long,
            env = "FERRY_DATABASE",
            value_name = "URL",
            hide_env_values = true
        )]
        database: Option<String>,
        /// The audit trail's key, if it does not live in the data directory
        #[arg(long, value_name = "FILE")]
        audit_key: Option<PathBuf>,
        /// The secret key's file, if it does not live in the data directory
        #[arg(long, value_name = "FILE")]
        secret_key: Option<PathBuf>,
    },
    /// Bring a backup back into a new data directory, checking every blob and the audit
    /// trail before anything is put in place; then start `ferry server --data DIR`
    Restore {
        /// The backup, as `ferry server backup` wrote it
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The new data directory (it must hold no database)
        #[arg(long)]
        data: PathBuf,
        /// The installation's audit key, if it is not in the new data directory
        #[arg(long, value_name = "FILE")]
        audit_key: Option<PathBuf>,
        /// The installation's secret key, if it is not in the new data directory (needed
        /// once a server started on the installation: its secrets are sealed with it)
        #[arg(long, value_name = "FILE")]
        secret_key: Option<PathBuf>,
    },
}

/// Under the help of every command that takes a duration: the syntax is described once, in
/// the README, and read by one parser, `ferry_domain::duration`.
const DURATIONS_HELP: &str = "Durations are whole numbers with units, added up: 500ms, 30s, \
                              15m, 2h, 1d, 1h30m (the README's \"Durations\" section has \
                              the full syntax)";

/// An address to listen on: `IP:PORT`, or `localhost:PORT` for 127.0.0.1.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let text = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_owned(),
    };
    text.parse().map_err(|_| {
        "give an IP address and a port, like 127.0.0.1:7070 (this machine only) or \
         0.0.0.0:7070 (every address; with --tls, or --insecure behind a proxy)"
            .to_owned()
    })
}

fn duration(text: &str) -> Result<std::time::Duration, String> {
    ferry_domain::duration::parse_duration(text)
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The data directory: database, admin token, and the audit key unless --audit-key
    /// names another file
    #[arg(long, env = "FERRY_DATA", default_value = "./ferry-data")]
    pub data: PathBuf,
    /// Keep the state in PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DATABASE) instead
    /// of SQLite in the data directory; several servers may share one database
    #[arg(
        long,
        env = "FERRY_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// The audit trail's key (64 hex digits; created, mode 0600, on the first start if it
    /// does not exist). Recommended: a file outside the data directory, so that a copy of
    /// the data directory cannot forge or cut the trail (default: DATA/audit-key)
    #[arg(long, env = "FERRY_AUDIT_KEY", value_name = "FILE")]
    pub audit_key: Option<PathBuf>,
    /// The key configuration secrets are encrypted with (64 hex digits; created, mode 0600,
    /// on the first start if it does not exist). Servers sharing a database share the file.
    /// Recommended: a file outside the data directory (default: DATA/secret-key)
    #[arg(long, env = "FERRY_SECRET_KEY", value_name = "FILE")]
    pub secret_key: Option<PathBuf>,
    /// Where release content is kept: file:///absolute/dir, or s3://bucket/prefix for a
    /// bucket of an S3-compatible service, reached with the AWS_* environment variables
    /// (credentials, AWS_REGION, AWS_ENDPOINT_URL) [default: DATA/blobs]
    #[arg(long, env = "FERRY_BLOBS", value_name = "URL")]
    pub blobs: Option<ferry_server::BlobLocation>,
    /// The address to listen on: an IP address and a port (`localhost` stands for
    /// 127.0.0.1; port 0 picks a free one)
    #[arg(long, env = "FERRY_LISTEN", default_value = "127.0.0.1:7070", value_parser = listen_address)]
    pub listen: SocketAddr,
    /// How often retention and garbage collection run
    #[arg(long, env = "FERRY_MAINTENANCE_EVERY", default_value = "1h", value_parser = duration)]
    pub maintenance_every: std::time::Duration,
    /// How old content no release uses must be before it is deleted (protects uploads
    /// whose release is not created yet)
    #[arg(long, env = "FERRY_GC_GRACE", default_value = "1h", value_parser = duration)]
    pub gc_grace: std::time::Duration,
    /// How long a deployment waits for a silent target before giving up on it
    #[arg(long, env = "FERRY_DEPLOY_TIMEOUT", default_value = "10m", value_parser = duration)]
    pub deploy_timeout: std::time::Duration,
    /// How long a deployment may run from its start: past it, targets still switching fail
    /// and switched ones go back, and it ends failed (progress does not extend it)
    #[arg(long, env = "FERRY_DEPLOYMENT_DEADLINE", default_value = "1h", value_parser = duration)]
    pub deployment_deadline: std::time::Duration,
    /// How often agents send a heartbeat; a target whose agent missed three is offline:
    /// new deployments are not sent to it, and a deployment waiting on it fails its step
    #[arg(long, env = "FERRY_HEARTBEAT_EVERY", default_value = "5s", value_parser = duration)]
    pub heartbeat_every: std::time::Duration,
    /// How long a client may take to send a request's headers, or leave a kept-alive
    /// connection idle, before the server closes the connection (1s to 10m)
    #[arg(long, env = "FERRY_HEADER_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub header_timeout: std::time::Duration,
    /// Serve HTTPS with a certificate signed by a CA the server creates in DATA/tls (agents
    /// pin it through their enrollment token; clients pass --ca-cert DATA/tls/ca.pem)
    #[arg(long, env = "FERRY_TLS", value_parser = clap::builder::BoolishValueParser::new())]
    pub tls: bool,
    /// Another DNS name or IP address the certificate is valid for, besides localhost,
    /// 127.0.0.1, ::1 and this machine's host name (repeatable)
    #[arg(
        long = "tls-name",
        env = "FERRY_TLS_NAMES",
        value_name = "NAME",
        value_delimiter = ',',
        requires = "tls"
    )]
    pub tls_names: Vec<String>,
    /// Serve plain HTTP on a non-loopback address (when a proxy in front terminates TLS)
    #[arg(
        long,
        env = "FERRY_INSECURE",
        value_parser = clap::builder::BoolishValueParser::new(),
        conflicts_with = "tls"
    )]
    pub insecure: bool,
    /// For tests and drills: a file holding milliseconds added to the clock, read at every
    /// use (escalations, timeouts and freeze windows then see time pass)
    #[arg(long, hide = true, value_name = "FILE")]
    pub clock_offset_file: Option<PathBuf>,
    /// Say what starting this version on the data directory (or --database) would do to it
    /// (the schema changes it would apply, or that a newer ferry wrote it), and which agents
    /// it serves, then exit without starting or changing anything: exit 1 when it could not
    /// start on it
    #[arg(long)]
    pub check_upgrade: bool,
    /// A TOML file of settings, each key one of the flags above (`listen = "0.0.0.0:7070"`,
    /// `tls = true`): a flag on the command line wins, then its environment variable, then
    /// the file. `ferry server check-config FILE` checks one
    #[arg(long, env = "FERRY_SERVER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team
    Create { team: String },
    /// List the teams you can see
    List,
    /// List a team's members and their roles there
    Members { team: String },
    /// Add a user to a team, or change their role there (team leads: up to their own role)
    Add {
        team: String,
        user: String,
        /// The role inside the team (default: the user's default role applies)
        #[arg(long)]
        role: Option<String>,
    },
    /// Take a user out of a team
    Remove { team: String, user: String },
    /// Show a team's support rotation, who is on call, and its escalation time
    Support { team: String },
    /// Set a team's support rotation and escalation time (the team's lead)
    #[command(after_help = DURATIONS_HELP)]
    Rotation {
        team: String,
        /// Members in the order they take turns, comma-separated (empty: no rotation)
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<String>>,
        /// Each member's turn, like 7d or 12h (default 7d)
        #[arg(long)]
        shift: Option<String>,
        /// When the first turn starts, RFC 3339 (default: now)
        #[arg(long)]
        start: Option<String>,
        /// How long a critical incident may stay unacknowledged before it escalates
        /// (default 15m)
        #[arg(long)]
        escalate_after: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print their API token (shown once)
    Create {
        /// The new user's name
        name: String,
        /// The default role
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Membership of a team, with a role there that replaces the default one:
        /// TEAM:ROLE, or TEAM to keep the default role (repeatable)
        #[arg(long = "team", value_name = "TEAM[:ROLE]")]
        teams: Vec<String>,
    },
    /// List users, with who is disabled
    List,
    /// Replace a user's API token with a new one, printed once; the old one stops working at
    /// once. Without NAME, your own (admins: anyone's)
    RotateToken {
        /// The user (default: you)
        name: Option<String>,
    },
    /// Set a user's dashboard password (at least 12 characters), read from the terminal
    /// without echo (typed twice) or from standard input. Without NAME, your own (admins:
    /// anyone's)
    SetPassword {
        /// The user (default: you)
        name: Option<String>,
    },
    /// Disable a user (admin): their tokens are refused until an admin enables them. Not
    /// your own account, nor the last enabled admin
    Disable {
        /// The user, as `ferry user list` shows it
        name: String,
    },
    /// Enable a disabled user again (admin): their tokens work again
    Enable {
        /// The user, as `ferry user list` shows it
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// List roles with their level in each environment
    List,
    /// Set a role's level in one environment
    Set {
        role: String,
        #[arg(long)]
        env: String,
        /// none, view, deploy, approve or admin
        #[arg(long)]
        level: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AllowDeny {
    Allow,
    Deny,
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Show the pipeline and each environment's policy
    List,
    /// Insert an environment into the pipeline
    Create {
        env: String,
        /// The environment it comes after; its policy and role levels are copied
        /// (default: the last one)
        #[arg(long)]
        after: Option<String>,
    },
    /// Delete an environment from the pipeline with its role levels and freeze windows;
    /// refused while it is in use (targets, a running release, an active deployment) or has a
    /// history, and for production when what would follow it is not protected
    Delete { env: String },
    /// Rename an environment; its targets, role levels, freeze windows and grants follow.
    /// Refused once something was deployed there (its history keeps the name)
    Rename {
        env: String,
        /// The environment's new name
        new_name: String,
    },
    /// Change an environment's policy
    #[command(after_help = DURATIONS_HELP)]
    Set {
        env: String,
        /// Approvals a deployment needs before it starts
        #[arg(long)]
        approvals: Option<u32>,
        /// Whether the requester of a deployment may approve it
        #[arg(long)]
        self_approval: Option<AllowDeny>,
        /// Whether the environment is protected (production-like)
        #[arg(long)]
        protected: Option<bool>,
        /// Whether releases may skip the environment: past an optional environment, success in
        /// the one before it is enough
        #[arg(long)]
        optional: Option<bool>,
        /// Add a freeze window, "CRON DURATION" in UTC, like "0 18 * * FRI 64h" (repeatable)
        #[arg(long, value_name = "CRON DURATION")]
        freeze: Vec<String>,
        /// Remove a freeze window, as `ferry env list` shows it (repeatable)
        #[arg(long, value_name = "CRON DURATION")]
        unfreeze: Vec<String>,
    },
    /// Freeze an environment from now: deployments, stage-only deployments and rollbacks are
    /// refused until the freeze ends, naming its reason, as during a freeze window (an admin
    /// may still --break-glass). Freezing again replaces the freeze when the new one ends as
    /// late or later; to shorten it, unfreeze first
    #[command(after_help = DURATIONS_HELP)]
    #[command(group = clap::ArgGroup::new("end").required(true).args(["lasting", "until"]))]
    Freeze {
        env: String,
        /// How long, like 4h or 1h30m (at most 31 days); the end is rounded up to the minute.
        /// Give this or --until
        #[arg(long = "for", value_name = "DURATION")]
        lasting: Option<String>,
        /// Until when, "YYYY-MM-DD HH:MM" in UTC (at most 31 days ahead). Give this or --for
        #[arg(long, value_name = "YYYY-MM-DD HH:MM")]
        until: Option<String>,
        /// Why: shown with every refusal while the freeze lasts (at most 200 characters)
        #[arg(long)]
        reason: String,
    },
    /// End an environment's freeze made with `ferry env freeze` now; says so when freeze
    /// windows still hold it. Refused when it is not frozen that way
    Unfreeze {
        env: String,
        /// Why it ends early, for the audit trail
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an application owned by a team
    Create {
        app: String,
        #[arg(long)]
        team: String,
        /// Releases kept by retention (default 10)
        #[arg(long)]
        keep: Option<u32>,
    },
    /// Change an application's settings (its team's lead, or an admin)
    Set {
        app: String,
        /// Releases kept by retention, 1 to 1000 (`ferry release prune` removes the rest)
        #[arg(long)]
        keep: Option<u32>,
        /// Back up its data on each target this often (`24h`), or `off`
        #[arg(long)]
        backup_every: Option<String>,
        /// Backups retention keeps: the newest N, one a day for N days, one a week for N
        /// weeks (default 7,7d,4w)
        #[arg(long)]
        backup_keep: Option<String>,
        /// The Unix user its hooks and health checks run as on targets whose agent runs as
        /// root, one user per application (an admin's setting); `''` clears it
        #[arg(long, value_name = "USER")]
        run_as: Option<String>,
    },
    /// List the applications you can see
    List,
    /// Show one application
    Show { app: String },
    /// Run an application on exactly these targets of an environment
    Place {
        app: String,
        #[arg(long)]
        env: String,
        /// Comma-separated target names
        #[arg(long, value_delimiter = ',', required = true)]
        targets: Vec<String>,
    },
    /// Grant one user a level on this application in one environment, beside team roles
    /// (`--level none` removes it)
    Grant {
        app: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        env: String,
        /// none, view, deploy, approve or admin
        #[arg(long)]
        level: String,
    },
    /// The per-app grants of an application
    Grants { app: String },
    /// Name the team that maintains an application and gets its incidents
    Maintainer {
        app: String,
        /// The maintaining team
        #[arg(long, conflicts_with = "owner")]
        team: Option<String>,
        /// Back to the owning team
        #[arg(long)]
        owner: bool,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// Only events about this application
    #[arg(long)]
    pub app: Option<String>,
    /// Only events by this user (or agent, agent:TARGET)
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events of this action, such as deployment.approve
    #[arg(long)]
    pub action: Option<String>,
    /// Only events at or after this time (RFC 3339, such as 2026-12-01T00:00:00Z)
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339)
    #[arg(long)]
    pub until: Option<String>,
    /// Only the last N events
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; exit 1 naming the first bad event if it is broken
    Verify,
}

/// `ferry channel`: a team's notification channels and its delivery log.
#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Add a channel to a team (its lead or an admin): a signed webhook
    /// (--webhook URL --secret SECRET) or e-mail (--email ADDR[,ADDR…] --smtp URL --from ADDR)
    Add {
        /// The team whose notifications go there
        team: String,
        /// POST each message as JSON to this http:// or https:// URL
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
        /// The webhook's HMAC-SHA256 key (X-Ferry-Signature), at least 16 bytes, e.g. from
        /// `openssl rand -hex 32`
        #[arg(long)]
        secret: Option<String>,
        /// Mail each message to these addresses (comma-separated)
        #[arg(long, value_name = "ADDR[,ADDR…]", value_delimiter = ',')]
        email: Vec<String>,
        /// The mail server: smtp://[USER:PASSWORD@]HOST[:PORT] or
        /// smtp+starttls://USER:PASSWORD@HOST[:PORT]
        #[arg(long, value_name = "URL")]
        smtp: Option<String>,
        /// The sender address of the mail
        #[arg(long, value_name = "ADDR")]
        from: Option<String>,
        /// Let the webhook reach loopback, link-local and private addresses (127/8, 10/8,
        /// 172.16/12, 192.168/16, 169.254/16, fc00::/7, fe80::/10, …), also through a host
        /// name that resolves to one; admins only
        #[arg(long, requires = "webhook")]
        allow_private: bool,
    },
    /// List the channels of a team, or of every team you can see (secrets never shown)
    List {
        /// Only this team's
        team: Option<String>,
    },
    /// Remove a channel of a team (its lead or an admin); its delivery log stays
    Remove {
        team: String,
        /// The channel's id, as `ferry channel list` shows it
        id: i64,
    },
    /// Send a test message to one channel of a team (its lead or an admin)
    Test {
        team: String,
        /// The channel's id, as `ferry channel list` shows it
        id: i64,
        /// Wait for the first attempt; exit 1 unless the message was delivered
        #[arg(long)]
        wait: bool,
    },
    /// A team's delivery log, newest first: channel, event, status, attempts, last error
    Deliveries {
        team: String,
        /// Only the newest N (1 to 1000)
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests {
    use super::{with_config_file, Cli, Command};
    use clap::FromArgMatches;

    /// The command line `line` with the config file holding `toml`.
    fn with_file(toml: &str, line: &[&str]) -> Result<Cli, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, toml).unwrap();
        let mut args: Vec<std::ffi::OsString> = line.iter().map(Into::into).collect();
        args.extend(["--config".into(), path.into_os_string()]);
        let definition = with_config_file(Cli::definition(), &args).map_err(|e| {
            e.to_string()
                .replace(&dir.path().display().to_string(), "DIR")
        })?;
        let matches = definition
            .try_get_matches_from(args)
            .map_err(|e| e.to_string())?;
        Cli::from_arg_matches(&matches).map_err(|e| e.to_string())
    }

    fn server(cli: Cli) -> super::ServerArgs {
        match cli.command {
            Command::Server(args) => args.run,
            other => panic!("not the server: {other:?}"),
        }
    }

    #[test]
    fn a_config_file_gives_what_the_command_line_does_not() {
        let file = "listen = \"0.0.0.0:7443\"\ndata = \"/var/lib/ferry\"\ntls = true\n\
                    tls-name = [\"a.example\", \"b.example\"]\ndeploy-timeout = \"5m\"\n";
        let args = server(with_file(file, &["ferry", "server", "--data", "/elsewhere"]).unwrap());
        assert_eq!(args.listen.to_string(), "0.0.0.0:7443");
        assert_eq!(
            args.data.display().to_string(),
            "/elsewhere",
            "the flag wins"
        );
        assert!(args.tls);
        assert_eq!(args.tls_names, ["a.example", "b.example"]);
        assert_eq!(args.deploy_timeout, std::time::Duration::from_secs(300));
        assert_eq!(
            args.heartbeat_every,
            std::time::Duration::from_secs(5),
            "what neither gives keeps its default"
        );
    }

    #[test]
    fn listen_addresses_are_ip_addresses_or_localhost() {
        for (text, expected) in [
            ("127.0.0.1:7070", Some("127.0.0.1:7070")),
            ("localhost:7070", Some("127.0.0.1:7070")),
            ("[::1]:0", Some("[::1]:0")),
            ("0.0.0.0:443", Some("0.0.0.0:443")),
            ("ferry.example.com:7070", None),
            ("7070", None),
        ] {
            let got = super::listen_address(text).ok().map(|a| a.to_string());
            assert_eq!(got.as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn a_relative_path_in_a_config_file_is_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "data = \"state\"\naudit-key = \"/keys/audit\"\n").unwrap();
        let args: Vec<std::ffi::OsString> = vec![
            "ferry".into(),
            "server".into(),
            "--config".into(),
            path.into(),
        ];
        let definition = with_config_file(Cli::definition(), &args).unwrap();
        let cli = Cli::from_arg_matches(&definition.try_get_matches_from(args).unwrap()).unwrap();
        let args = server(cli);
        assert_eq!(args.data, dir.path().join("state"));
        assert_eq!(args.audit_key.unwrap(), std::path::Path::new("/keys/audit"));
    }

    #[test]
    fn an_agent_config_file_gives_its_root_and_server() {
        let file = "root = \"/srv/ferry\"\nserver = \"https://ferry.example:7070\"\n";
        let cli = with_file(file, &["ferry", "agent"]).unwrap();
        assert_eq!(
            cli.global.server.as_deref(),
            Some("https://ferry.example:7070")
        );
        let Command::Agent(agent) = cli.command else {
            panic!("not the agent")
        };
        assert_eq!(agent.run.root.unwrap().display().to_string(), "/srv/ferry");
    }

    #[test]
    fn a_wrong_config_file_says_where_and_what() {
        for (file, expected) in [
            ("listen = ", "DIR/ferry.toml:1:10: "),
            (
                "data = \"/d\"\nlisen = \"0.0.0.0:1\"",
                "DIR/ferry.toml:2:1: unknown key `lisen`: the keys are data, database, \
                 audit-key, secret-key, blobs, listen",
            ),
            ("lisen = \"x\"", "; did you mean `listen`?"),
            (
                "tls = \"yes\"",
                "DIR/ferry.toml:1:7: `tls` takes true or false, not string",
            ),
            (
                "listen = 7070",
                "DIR/ferry.toml:1:10: `listen`: invalid value '7070'",
            ),
            (
                "gc-grace = \"1 hour\"",
                "DIR/ferry.toml:1:12: `gc-grace`: invalid value",
            ),
            (
                "tls-name = [1]",
                "`tls-name` takes a list of strings, not integer",
            ),
            (
                "clock-offset-file = \"/f\"",
                "unknown key `clock-offset-file`",
            ),
            ("server = \"http://s\"", "unknown key `server`"),
            (
                "tls = true\ninsecure = true",
                "DIR/ferry.toml:2:1: the argument '--insecure' cannot be used with '--tls'",
            ),
        ] {
            let error = with_file(file, &["ferry", "server"])
                .err()
                .unwrap_or_default();
            assert!(error.contains(expected), "{file:?}: {error}");
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::definition().debug_assert();
    }

    /// The global flags each command's help lists.
    fn globals_shown(path: &[&str]) -> Vec<String> {
        let mut command = Cli::definition();
        for name in path {
            command = command.find_subcommand(name).unwrap().clone();
        }
        command
            .get_arguments()
            .filter(|arg| arg.is_global_set() && !arg.is_hide_set())
            .map(|arg| arg.get_id().to_string())
            .collect()
    }

    /// Every command's path (`ferry env set`) below `command`, the help pseudo-command left
    /// out.
    fn command_paths(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        found.push(path.to_owned());
        for sub in command.get_subcommands() {
            if sub.get_name() != "help" && !sub.is_hide_set() {
                command_paths(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
    }

    /// An example line as the shell splits it: words, "quoted words", up to a redirection.
    fn words(line: &str) -> Vec<String> {
        let line = line.split(" > ").next().unwrap();
        let mut words = Vec::new();
        let mut word = String::new();
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ' ' if !quoted => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                c => word.push(c),
            }
        }
        words.push(word);
        words
    }

    #[test]
    fn every_command_has_an_example_that_parses() {
        let definition = Cli::definition();
        let mut paths = Vec::new();
        command_paths(&definition, "ferry", &mut paths);
        let command_at = |path: &str| {
            path.split(' ').skip(1).fold(&definition, |command, name| {
                command.find_subcommand(name).unwrap()
            })
        };
        let examples: Vec<(&String, Vec<String>)> = paths
            .iter()
            .map(|path| (path, super::examples::lines_of(command_at(path), path)))
            .collect();
        let missing: Vec<&String> = examples
            .iter()
            .filter(|(_, lines)| lines.is_empty())
            .map(|(path, _)| *path)
            .collect();
        assert!(
            missing.is_empty(),
            "commands without an example: {missing:?}"
        );
        let unknown: Vec<&str> = super::examples::EXAMPLES
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| !paths.iter().any(|q| q == p))
            .collect();
        assert!(unknown.is_empty(), "examples of no command: {unknown:?}");
        for (path, lines) in &examples {
            assert!(!lines.is_empty(), "{path}");
            for line in lines {
                let words = words(line);
                assert!(line.starts_with("ferry"), "{line}");
                match Cli::definition().try_get_matches_from(&words) {
                    Ok(_) => {}
                    // The agent's root may come from its config file.
                    Err(e)
                        if e.kind() == clap::error::ErrorKind::MissingRequiredArgument
                            && line.contains("--config") => {}
                    Err(e) => panic!("{path}: {line}: {e}"),
                }
            }
        }
        let help = Cli::definition()
            .find_subcommand_mut("deploy")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.contains("Examples:\n  ferry deploy shop-web 1.4.0 --to dev --wait"),
            "{help}"
        );
    }

    #[test]
    fn every_config_file_key_has_its_environment_variable() {
        let definition = Cli::definition();
        for (command, prefix) in [("server", "FERRY_"), ("agent", "FERRY_AGENT_")] {
            let command = definition.find_subcommand(command).unwrap();
            let keys = super::config_file::keys(command);
            assert!(keys.len() >= 4, "{keys:?}");
            for key in keys {
                let arg = command
                    .get_arguments()
                    .find(|arg| arg.get_long() == Some(key))
                    .unwrap();
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                let expected = if key == "server" { "FERRY_" } else { prefix };
                assert!(
                    env.as_deref().is_some_and(|e| e.starts_with(expected)),
                    "{key}: {env:?}"
                );
            }
        }
    }

    #[test]
    fn commands_that_are_not_clients_list_only_the_global_flags_they_read() {
        let client = ["server", "token", "json", "ca_cert"];
        for (path, shown) in [
            (&["agent"][..], &["server"][..]),
            (&["demo"], &[]),
            (&["deploy"], &client),
            (&["env", "list"], &client),
        ] {
            assert_eq!(globals_shown(path), shown, "{path:?}");
        }
    }

    /// Every argument of every command, as `command path: argument`, that `--help` leaves
    /// undescribed.
    fn undescribed(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if arg.get_help().is_none() && !arg.is_hide_set() {
                found.push(format!("{path}: {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            undescribed(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }

    #[test]
    fn every_argument_is_described() {
        let mut found = Vec::new();
        undescribed(&Cli::definition(), "ferry", &mut found);
        assert_eq!(found, Vec::<String>::new());
    }

    #[test]
    fn hidden_global_flags_still_parse() {
        let line = [
            "ferry", "agent", "--root", "/r", "--server", "http://s", "--json",
        ];
        assert!(Cli::definition().try_get_matches_from(line).is_ok());
    }
}
