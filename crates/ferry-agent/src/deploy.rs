//! A deploy on a target, step by step: read `ferry.toml`, stage the release (or check and,
//! if it changed since it was staged ahead, repair it), create the shared paths it adds,
//! run `before_switch`, switch `current`, run `after_switch`, check health, record the
//! success. A failure before the switch leaves `current` as it was; a failure after it
//! switches `current` back. Staging ahead ([`prepare`]) stops after staging: nothing
//! outside `releases/` is touched before the deployment runs. Also: switching to a release
//! already on disk (rollback, checked and repaired first) and comparing a release on disk
//! with its manifest (drift).

use std::path::Path;

use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{EntryKind, Manifest};

use crate::account::Account;
use crate::config_files::{render, ConfigOf, ConfigValues, RenderedFiles};
use crate::error::{AgentError, AgentResult};
use crate::failpoint::failpoint;
use crate::fsutil::remove_tree;
use crate::health::{check_health, probe_label};
use crate::hooks::{run_command, HookEnv};
use crate::isolation::CommandsAs;
use crate::journal::{now, Journal};
use crate::layout::{AppLayout, Installed};
use crate::lock::AppLock;
use crate::shared::{initialise_shared_paths, SharedReport};
use crate::stage::{read_release_config, stage_release, StageReport};
use crate::switch::{switch_back, switch_to};
use crate::tree::differences;
use ferry_cas::release_config::{Probe, ReleaseConfig, CONFIG_FILE, MAX_CONFIG_BYTES};
use ferry_domain::step_log::{bounded_label, StepLog, MAX_COMMAND_BYTES};

/// What the server asks a target to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployRequest {
    pub app: String,
    /// The environment's name, for the hooks.
    pub env: String,
    pub version: String,
    pub manifest: Manifest,
    /// The configuration to render into the release (revision 0: none): each revision
    /// makes its own release directory.
    pub config: ConfigValues,
    /// Who runs the release's commands, and whose its data is.
    pub commands_as: CommandsAs,
}

impl DeployRequest {
    /// The application's own account, or `None` for the agent's; refused when the agent
    /// will not run the application's commands.
    pub fn account(&self) -> AgentResult<Option<&Account>> {
        self.commands_as
            .as_ref()
            .map(Option::as_ref)
            .map_err(|why| AgentError::Refused(why.clone()))
    }

    /// The release directory the request makes the target serve.
    pub fn installed(&self) -> Installed {
        Installed::new(&self.version, self.config.revision())
    }

    /// The configuration rendered for the release `manifest`, whose `ferry.toml` is
    /// `config`, taking templates from `sources` (release directories) or `cache`.
    fn render(
        &self,
        layout: &AppLayout,
        sources: &[Option<&Installed>],
        config: &ReleaseConfig,
        cache: &BlobStore,
    ) -> AgentResult<RenderedFiles> {
        let of = ConfigOf {
            app: &self.app,
            env: &self.env,
            version: &self.version,
        };
        render(
            layout,
            sources,
            &self.manifest,
            config,
            &self.config,
            of,
            cache,
        )
    }
}

/// The steps of a deploy, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    Staged,
    SharedLinked,
    BeforeSwitch,
    Switched,
    AfterSwitch,
    HealthChecked,
}

impl StepKind {
    /// The step's name for people.
    pub fn label(self) -> &'static str {
        match self {
            StepKind::Staged => "staged",
            StepKind::SharedLinked => "shared paths",
            StepKind::BeforeSwitch => "before_switch",
            StepKind::Switched => "switched",
            StepKind::AfterSwitch => "after_switch",
            StepKind::HealthChecked => "health check",
        }
    }
}

/// A step that completed, with a short detail for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub detail: String,
}

/// What a deploy tells its caller as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeployEvent {
    /// A step began; what it does, for people (`running after_switch: ./restart.sh`).
    Started(String),
    /// A step completed.
    Completed(Step),
    /// A hook or the health check ran, successful or not: what it printed.
    Logged(StepLog),
}

/// How a deploy ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeployOutcome {
    /// The new release is served and passed its checks.
    Succeeded { report: StageReport },
    /// The deploy failed after `current` was switched (or while switching); the target
    /// was put back on the release it served before.
    RolledBack { reason: String, output_tail: String },
    /// The deploy failed before `current` was switched (the target serves what it served
    /// before, untouched), or it could not be put back.
    Failed { reason: String, output_tail: String },
}

/// Why a deploy stopped, and whether `current` had been switched by then.
struct Failure {
    reason: String,
    output_tail: String,
    after_switch: bool,
}

impl Failure {
    fn before_switch(reason: impl ToString) -> Failure {
        Failure {
            reason: reason.to_string(),
            output_tail: String::new(),
            after_switch: false,
        }
    }

    fn after_switch(reason: impl ToString) -> Failure {
        Failure {
            after_switch: true,
            ..Failure::before_switch(reason)
        }
    }

    fn with_output(mut self, output_tail: String) -> Failure {
        self.output_tail = output_tail;
        self
    }
}

/// What a deploy starts from.
struct Plan<'r> {
    layout: AppLayout,
    request: &'r DeployRequest,
    /// The release directory the deploy makes and serves.
    installed: Installed,
    /// The release to serve again if the deploy fails.
    fallback: Option<Installed>,
    /// The release whose unchanged files are hard-linked into the new one.
    link_from: Option<Installed>,
    journal: Journal,
}

/// Deploys `request` on the target at `root`, taking content from `cache` (and from the
/// previous release), telling `on_step` of each step as it starts and completes, and of
/// what each hook and the health check printed. A release served already is checked (and
/// repaired if it changed) and deployed again, hooks included.
pub fn deploy(
    root: &Path,
    request: &DeployRequest,
    cache: &BlobStore,
    on_step: &mut dyn FnMut(DeployEvent),
) -> DeployOutcome {
    deploy_unless(root, request, cache, on_step, IfServed::DeployAgain)
}

/// What the agent does to make the target run `request`'s release: [`deploy`], unless the
/// release is served and its deploy or switch finished by the time the application's lock
/// is held. Someone else may have made it live while this waited for the lock (a capture
/// switches to the release it made of the files served, and the server then asks for it);
/// deploying it again would only run its hooks again.
pub fn converge(
    root: &Path,
    request: &DeployRequest,
    cache: &BlobStore,
    on_step: &mut dyn FnMut(DeployEvent),
) -> DeployOutcome {
    deploy_unless(root, request, cache, on_step, IfServed::Done)
}

/// What a deploy does with a release that is served already and complete.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IfServed {
    DeployAgain,
    Done,
}

fn deploy_unless(
    root: &Path,
    request: &DeployRequest,
    cache: &BlobStore,
    on_step: &mut dyn FnMut(DeployEvent),
    served: IfServed,
) -> DeployOutcome {
    let failed = |error: AgentError| DeployOutcome::Failed {
        reason: error.to_string(),
        output_tail: String::new(),
    };
    let layout = match AppLayout::new(root, &request.app).and_then(|layout| {
        request.installed().check()?;
        Ok(layout)
    }) {
        Ok(layout) => layout,
        Err(error) => return failed(error),
    };
    let _lock = match AppLock::acquire(root, &request.app) {
        Ok(lock) => lock,
        Err(error) => return failed(error),
    };
    if served == IfServed::Done && serves_completed(root, &request.app, &request.installed()) {
        return DeployOutcome::Succeeded {
            report: StageReport {
                reused: true,
                ..StageReport::default()
            },
        };
    }
    let mut plan = match Plan::new(layout, request) {
        Ok(plan) => plan,
        Err(error) => return failed(error),
    };
    match run(&mut plan, cache, on_step) {
        Ok(report) => DeployOutcome::Succeeded { report },
        Err(failure) => give_up(&mut plan, failure),
    }
}

/// Stages `request`'s release next to the one served, without switching to it or running
/// hooks, so that deploying it later is only a switch. Nothing outside `releases/` (and the
/// agent's state) is written: not `current`, not `shared/`.
pub fn prepare(
    root: &Path,
    request: &DeployRequest,
    cache: &BlobStore,
) -> AgentResult<StageReport> {
    let layout = AppLayout::new(root, &request.app)?;
    request.installed().check()?;
    let _lock = AppLock::acquire(root, &request.app)?;
    let plan = Plan::new(layout, request)?;
    remove_tree(&plan.layout.scratch_dir())?;
    request.manifest.validate()?;
    let (installed, link_from) = (&plan.installed, plan.link_from.as_ref());
    let config = read_release_config(&plan.layout, installed, &request.manifest, link_from, cache)?;
    let rendered = request.render(&plan.layout, &[Some(installed), link_from], &config, cache)?;
    stage_release(
        &plan.layout,
        installed,
        &request.manifest,
        &config,
        &rendered,
        link_from,
        cache,
    )
}

impl<'r> Plan<'r> {
    fn new(layout: AppLayout, request: &'r DeployRequest) -> AgentResult<Plan<'r>> {
        let journal = Journal::load(layout.root(), layout.app())?;
        let installed = request.installed();
        let serving = layout.current();
        // `current` already on the requested release without a recorded success means an
        // earlier attempt was interrupted after its switch: the release to fall back to is
        // the last one that succeeded, not the unchecked one being served.
        let fallback = if serving.as_ref() == Some(&installed) && journal.last_succeeded != serving
        {
            journal
                .last_succeeded
                .clone()
                .filter(|v| layout.has_release(v))
        } else {
            serving.clone()
        };
        let link_from = serving
            .filter(|v| *v != installed)
            .or_else(|| fallback.clone());
        Ok(Plan {
            layout,
            request,
            installed,
            fallback,
            link_from,
            journal,
        })
    }

    fn hook_env(&self) -> HookEnv {
        HookEnv {
            app: self.request.app.clone(),
            env: self.request.env.clone(),
            version: self.request.version.clone(),
            previous_version: self.fallback.as_ref().map(|f| f.version.clone()),
            release_dir: self.layout.release_dir(&self.installed),
            shared_dir: self.layout.shared_dir(),
            config: self.request.config.clone(),
            account: self.request.account().ok().flatten().cloned(),
        }
    }
}

/// The deploy's steps; the first failure stops them.
fn run(
    plan: &mut Plan,
    cache: &BlobStore,
    on_step: &mut dyn FnMut(DeployEvent),
) -> Result<StageReport, Failure> {
    let (layout, request, installed) = (&plan.layout, plan.request, &plan.installed);
    let version = request.version.as_str();
    let scratch = layout.scratch_dir();
    // Whatever is there was left by an interrupted deploy of this application.
    remove_tree(&scratch).map_err(Failure::before_switch)?;
    failpoint("deploy.before_stage");
    // Before anything reads it: `Manifest::get` relies on sorted, valid entries.
    request
        .manifest
        .validate()
        .map_err(Failure::before_switch)?;
    let link_from = plan.link_from.as_ref();
    let config = read_release_config(layout, installed, &request.manifest, link_from, cache)
        .map_err(Failure::before_switch)?;
    // A missing key or a template naming an unknown one fails here, before anything is
    // written.
    let rendered = request
        .render(layout, &[Some(installed), link_from], &config, cache)
        .map_err(Failure::before_switch)?;
    let account = account_for(request, &config).map_err(Failure::before_switch)?;
    on_step(DeployEvent::Started(format!("staging {installed}")));
    let report = stage_release(
        layout,
        installed,
        &request.manifest,
        &config,
        &rendered,
        link_from,
        cache,
    )
    .map_err(Failure::before_switch)?;
    emit(on_step, StepKind::Staged, describe_staging(&report));
    // From here on the deployment runs (approved where policy says): live data may change.
    let live = Live {
        layout,
        installed,
        rendered: &rendered,
        account,
    };
    let shared = live
        .prepare(&request.manifest, &config, cache)
        .map_err(Failure::before_switch)?;
    emit(on_step, StepKind::SharedLinked, describe_shared(&shared));

    let env = plan.hook_env();
    failpoint("deploy.before_hook");
    let detail = run_hook(
        "before_switch",
        &config.hooks.before_switch,
        &config.hooks,
        &env,
        &scratch,
        on_step,
    )
    .map_err(|f| Failure {
        after_switch: false,
        ..f
    })?;
    emit(on_step, StepKind::BeforeSwitch, detail);
    failpoint("deploy.after_hook");

    on_step(DeployEvent::Started(format!("switching to {version}")));
    switch_to(layout, installed).map_err(Failure::before_switch)?;
    emit(
        on_step,
        StepKind::Switched,
        format!("current -> {}", AppLayout::current_target(installed)),
    );
    let detail = run_hook(
        "after_switch",
        &config.hooks.after_switch,
        &config.hooks,
        &env,
        &scratch,
        on_step,
    )?;
    emit(on_step, StepKind::AfterSwitch, detail);
    failpoint("deploy.before_health");
    let detail = run_health_check(&config, &env, &scratch, on_step)?;
    emit(on_step, StepKind::HealthChecked, detail);

    failpoint("deploy.before_journal");
    plan.journal.record_success(installed, now());
    plan.journal
        .save(layout.root(), layout.app())
        .map_err(Failure::after_switch)?;
    Ok(report)
}

/// Who runs the commands of a release whose `ferry.toml` is `config`: the agent's refusal
/// to run them stands only when there is a command to run.
fn account_for<'r>(
    request: &'r DeployRequest,
    config: &ReleaseConfig,
) -> AgentResult<Option<&'r Account>> {
    let hooks = &config.hooks;
    let runs_commands = hooks.before_switch.is_some()
        || hooks.after_switch.is_some()
        || config
            .health
            .as_ref()
            .is_some_and(|check| matches!(check.probe, Probe::Command(_)));
    match request.account() {
        Err(refused) if runs_commands => Err(refused),
        Err(_) => Ok(None),
        account => account,
    }
}

/// A release staged and about to go live, with who owns the application's files.
struct Live<'a> {
    layout: &'a AppLayout,
    installed: &'a Installed,
    rendered: &'a RenderedFiles,
    account: Option<&'a Account>,
}

impl Live<'_> {
    /// Readies the application's files for the switch: with an account, its directory
    /// closed to other users and its `shared/` and the configuration rendered into the
    /// release its own (see [`crate::account`]); then the shared paths the release adds.
    fn prepare(
        &self,
        manifest: &Manifest,
        config: &ReleaseConfig,
        cache: &BlobStore,
    ) -> AgentResult<SharedReport> {
        if let Some(account) = self.account {
            let layout = self.layout;
            account.arrange(&layout.app_dir(), &layout.shared_dir())?;
            let release = layout.release_dir(self.installed);
            for path in self.rendered.paths() {
                account.own(&release.join(path))?;
            }
        }
        initialise_shared_paths(self.layout, manifest, config, cache, self.account)
    }
}

/// Runs a hook if the release has one, logging it; a failure counts as after the switch
/// (the caller corrects that for `before_switch`).
fn run_hook(
    name: &str,
    command: &Option<String>,
    hooks: &ferry_cas::release_config::Hooks,
    env: &HookEnv,
    scratch: &Path,
    on_step: &mut dyn FnMut(DeployEvent),
) -> Result<String, Failure> {
    let Some(command) = command else {
        return Ok(format!("no {name} hook"));
    };
    on_step(DeployEvent::Started(format!("running {name}: {command}")));
    let outcome = run_command(command, env, hooks.timeout, scratch)
        .map_err(|e| Failure::after_switch(format!("{name} hook: {e}")))?;
    let elapsed = format!("in {:.1}s", outcome.elapsed.as_secs_f64());
    on_step(DeployEvent::Logged(StepLog {
        step: format!("hook {name}"),
        command: bounded_label(command, MAX_COMMAND_BYTES),
        ended: match outcome.success {
            true => format!("exited with status 0 {elapsed}"),
            false => format!("{} {elapsed}", outcome.failure),
        },
        succeeded: outcome.success,
        output: outcome.output,
    }));
    if !outcome.success {
        return Err(
            Failure::after_switch(format!("{name} hook `{command}` {}", outcome.failure))
                .with_output(outcome.output_tail),
        );
    }
    Ok(format!(
        "{name} hook `{command}` succeeded in {:.1}s",
        outcome.elapsed.as_secs_f64()
    ))
}

/// Runs the release's health check if it has one, logging it. A failure names the command
/// or URL, as a hook's does.
fn run_health_check(
    config: &ReleaseConfig,
    env: &HookEnv,
    scratch: &Path,
    on_step: &mut dyn FnMut(DeployEvent),
) -> Result<String, Failure> {
    let Some(check) = &config.health else {
        return Ok("no health check".to_owned());
    };
    let probe = probe_label(&check.probe);
    on_step(DeployEvent::Started(format!("checking health: {probe}")));
    let report = check_health(check, env, scratch)
        .map_err(|e| Failure::after_switch(format!("health check `{probe}`: {e}")))?;
    let attempts = match report.attempts {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    let took = format!("{attempts} in {:.1}s", report.elapsed.as_secs_f64());
    on_step(DeployEvent::Logged(StepLog {
        step: "health check".to_owned(),
        command: bounded_label(&probe, MAX_COMMAND_BYTES),
        ended: match report.healthy {
            true => format!("healthy: {} ({took})", report.last_ended),
            false => format!(
                "unhealthy: {} ({took}, its timeout of {:?} ran out)",
                report.last_ended, check.timeout
            ),
        },
        succeeded: report.healthy,
        output: report.output,
    }));
    if !report.healthy {
        return Err(Failure::after_switch(format!(
            "health check `{probe}` failed after {took}: {}",
            report.last_ended
        ))
        .with_output(report.output_tail));
    }
    Ok(format!(
        "healthy after {} attempt(s) in {:.1}s",
        report.attempts,
        report.elapsed.as_secs_f64()
    ))
}

/// Puts the fallback release back if `current` no longer points at it, records the
/// failure, and says how the deploy ended.
fn give_up(plan: &mut Plan, failure: Failure) -> DeployOutcome {
    let layout = &plan.layout;
    let mut reason = failure.reason;
    let switched = layout.current() != plan.fallback;
    if switched {
        failpoint("deploy.before_switch_back");
        if let Err(error) = switch_back(layout, plan.fallback.as_ref()) {
            return DeployOutcome::Failed {
                reason: format!("{reason}; switching back failed too: {error}"),
                output_tail: failure.output_tail,
            };
        }
        failpoint("deploy.after_switch_back");
    }
    plan.journal.record_failure(&plan.installed, now());
    if let Err(error) = plan.journal.save(layout.root(), layout.app()) {
        reason = format!("{reason} (and the journal could not be written: {error})");
    }
    // Nothing switched: the target serves what it served before and never stopped, so the
    // deploy failed rather than rolled back (there was nothing to roll back).
    if switched || failure.after_switch {
        DeployOutcome::RolledBack {
            reason,
            output_tail: failure.output_tail,
        }
    } else {
        DeployOutcome::Failed {
            reason,
            output_tail: failure.output_tail,
        }
    }
}

fn emit(on_step: &mut dyn FnMut(DeployEvent), kind: StepKind, detail: String) {
    on_step(DeployEvent::Completed(Step { kind, detail }));
}

fn describe_staging(report: &StageReport) -> String {
    if report.reused {
        return "the release was already on disk, exactly as staged".to_owned();
    }
    let mut repaired = String::new();
    if !report.repaired.is_empty() {
        repaired = format!(
            " (repaired: changed on the target since staging: {})",
            report.repaired.join(", ")
        );
    } else if report.recreated > 0 {
        repaired = format!(
            " (re-created {} paths touched on the target since staging)",
            report.recreated
        );
    }
    format!(
        "{} files linked, {} copied ({} bytes){repaired}",
        report.files_linked, report.files_copied, report.bytes_copied
    )
}

fn describe_shared(report: &SharedReport) -> String {
    if report.linked.is_empty() {
        return "no shared paths".to_owned();
    }
    let mut described = format!("shared paths linked: {}", report.linked.join(", "));
    if !report.initialised.is_empty() {
        described.push_str(&format!("; created: {}", report.initialised.join(", ")));
    }
    described
}

/// Switches `current` to `request`'s release, already on disk, without hooks or health
/// check (a rollback). The release is checked against its manifest and stat index first,
/// and repaired if anything in it changed since it was staged (its blobs taken from
/// `cache`; one missing is `AgentError::Missing`), so what is switched to is exactly the
/// release. Refused when the release is not on disk.
pub fn rollback(
    root: &Path,
    request: &DeployRequest,
    cache: &BlobStore,
) -> AgentResult<StageReport> {
    let (app, installed) = (request.app.as_str(), &request.installed());
    let layout = AppLayout::new(root, app)?;
    installed.check()?;
    let _lock = AppLock::acquire(root, app)?;
    if !layout.has_release(installed) {
        return Err(AgentError::Refused(format!(
            "release {installed} of {app} is not on this target"
        )));
    }
    request.manifest.validate()?;
    let serving = layout.current();
    let config = read_release_config(
        &layout,
        installed,
        &request.manifest,
        serving.as_ref(),
        cache,
    )?;
    // The rendered files are checked (and repaired) like the rest.
    let rendered = request.render(
        &layout,
        &[Some(installed), serving.as_ref()],
        &config,
        cache,
    )?;
    let report = stage_release(
        &layout,
        installed,
        &request.manifest,
        &config,
        &rendered,
        serving.as_ref(),
        cache,
    )?;
    // A rollback runs no command, so an application the agent would refuse to run
    // commands for still goes back; with an account, its files are arranged as a deploy
    // arranges them (the repair may have written its configuration again).
    let live = Live {
        layout: &layout,
        installed,
        rendered: &rendered,
        account: request.account().ok().flatten(),
    };
    live.prepare(&request.manifest, &config, cache)?;
    switch_to(&layout, installed)?;
    let mut journal = Journal::load(root, app)?;
    journal.record_switch(installed, now());
    journal.save(root, app)?;
    Ok(report)
}

/// Whether `app` serves `installed` (the release with its configuration revision) and the
/// deploy or switch that put it there finished. `current` alone is not enough: an agent
/// killed after the switch but before `after_switch` or the health check left it pointing
/// at a release whose deploy must run again.
pub fn serves_completed(root: &Path, app: &str, installed: &Installed) -> bool {
    let Ok(layout) = AppLayout::new(root, app) else {
        return false;
    };
    layout.current().as_ref() == Some(installed)
        && Journal::load(root, app).is_ok_and(|journal| journal.completed(installed))
}

/// The paths of release directory `installed` on disk whose content, mode or kind differ
/// from `manifest` (added and missing paths included, so rendered configuration files count
/// unless `manifest` has them), sorted. Shared paths and paths the
/// release's `ferry.toml` ignores are not counted. `["."]` when the release is not on disk.
/// Every file is read (no stat index is trusted): a full verification for tests and audits,
/// seconds on a large release. The periodic drift check is [`crate::drift::check`], which
/// trusts the stat index and classifies each path.
pub fn verify_release(
    root: &Path,
    app: &str,
    installed: &Installed,
    manifest: &Manifest,
) -> Vec<String> {
    let Ok(layout) = AppLayout::new(root, app) else {
        return vec![".".to_owned()];
    };
    if installed.check().is_err() || !layout.has_release(installed) {
        return vec![".".to_owned()];
    }
    let dir = layout.release_dir(installed);
    // A full verification reads every file: it trusts no stat index.
    differences(&dir, manifest, &config_on_disk(&dir, manifest))
}

/// The release's `ferry.toml` as found in its directory, if it is the one the manifest
/// describes (content checked, at most [`MAX_CONFIG_BYTES`]) and valid; else the defaults
/// (then a changed `ferry.toml` is itself drift).
fn config_on_disk(dir: &Path, manifest: &Manifest) -> ReleaseConfig {
    let path = dir.join(CONFIG_FILE);
    let Some(EntryKind::File { size, hash, .. }) = manifest.get(CONFIG_FILE).map(|e| &e.kind)
    else {
        return ReleaseConfig::default();
    };
    let plausible = *size <= MAX_CONFIG_BYTES
        && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == *size);
    plausible
        .then(|| std::fs::read(&path).ok())
        .flatten()
        .filter(|data| ContentHash::of(data) == *hash)
        .and_then(|data| ReleaseConfig::parse_bytes(&data).ok())
        .unwrap_or_default()
}
