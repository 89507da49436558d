//! Environments as an ordered pipeline, each with its policy.

use serde::{Deserialize, Serialize};

/// What an environment demands of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Approvals a deployment needs before it starts.
    pub approvals_required: u32,
    /// Whether the person who requested a deployment may approve it.
    pub self_approval: bool,
    /// Protected environments are production-like: overrides there are break-glass.
    pub protected: bool,
}

impl Policy {
    /// The policy of an ordinary, unprotected environment.
    pub const OPEN: Policy = Policy {
        approvals_required: 0,
        self_approval: true,
        protected: false,
    };
    /// The policy of production: one approval by someone else.
    pub const PRODUCTION: Policy = Policy {
        approvals_required: 1,
        self_approval: false,
        protected: true,
    };
}

/// One stage of the pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub name: String,
    /// 0 for the first environment; strictly increasing along the pipeline.
    pub position: u32,
    pub policy: Policy,
    /// An optional environment may be skipped: a release that succeeded in the environment
    /// before it may go on past it (`ferry env set ENV --optional true`).
    #[serde(default)]
    pub optional: bool,
}

/// The pipeline a new server starts with: dev → pp → prd.
pub fn default_pipeline() -> Vec<Environment> {
    [
        ("dev", Policy::OPEN),
        ("pp", Policy::OPEN),
        ("prd", Policy::PRODUCTION),
    ]
    .into_iter()
    .enumerate()
    .map(|(position, (name, policy))| Environment {
        name: name.to_owned(),
        position: position as u32,
        policy,
        optional: false,
    })
    .collect()
}

/// Why an environment cannot be added where asked, or deleted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("environment {0:?} already exists")]
    AlreadyExists(String),
    #[error("no environment named {0:?}: see `ferry env list`")]
    UnknownEnvironment(String),
    #[error("the pipeline has no environment yet to insert {0:?} after")]
    Empty(String),
    #[error("{0:?} is the only environment of the pipeline: a pipeline needs one")]
    OnlyEnvironment(String),
    #[error(
        "{env:?} is the production environment (the last of the pipeline): deleting it would \
         make {successor:?} production, and {successor:?} is not protected; protect it first \
         (`ferry env set {successor} --protected true --approvals 1`) if it is to be production"
    )]
    UnprotectedSuccessor { env: String, successor: String },
    #[error(
        "{app} {version} runs in {env:?} (on {target}): an environment where a release runs \
         cannot be deleted; remove its targets first (`ferry target remove {target}`)"
    )]
    ReleaseRuns {
        env: String,
        app: String,
        version: String,
        target: String,
    },
    #[error(
        "deployment {id} is active in {env:?}: wait for it to finish or cancel it \
         (`ferry deployment cancel {id}`) before deleting the environment"
    )]
    ActiveDeployment { env: String, id: i64 },
    #[error(
        "targets are enrolled in {env:?} ({}): remove them first (`ferry target remove NAME`)",
        targets.join(", ")
    )]
    TargetsEnrolled { env: String, targets: Vec<String> },
    #[error(
        "{env:?} has a history ({history}): ferry keeps what happened where, so an environment \
         that was used cannot be deleted; let releases pass it instead: \
         `ferry env set {env} --optional true`"
    )]
    HasHistory { env: String, history: String },
    #[error(
        "{env:?} has a history ({history}): deployments, incidents and the audit trail keep \
         the name it had then, so an environment that was used cannot be renamed; create \
         {new:?} (`ferry env create {new} --after {env}`) and make {env:?} optional \
         (`ferry env set {env} --optional true`) instead"
    )]
    RenameHasHistory {
        env: String,
        new: String,
        history: String,
    },
}

/// What an environment holds, as far as deleting it is concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvironmentUse {
    /// Releases running there: (application, version, target).
    pub running: Vec<(String, String, String)>,
    /// Deployments running or awaiting approval there.
    pub active_deployments: Vec<i64>,
    /// Targets in service there.
    pub targets: Vec<String>,
    /// Deployments ever made there, active ones included.
    pub deployments: u64,
    /// Incidents opened there.
    pub incidents: u64,
}

/// Decides whether `name` may be deleted from the pipeline. Refused, naming why and what to
/// do, for the only environment; for production when the environment that would become
/// production is not protected (a pipeline must not end in an unprotected production by
/// accident); while a release runs there, a deployment is active or targets serve there
/// (targets removed before anything was deployed there go with it); and when it has a
/// history of deployments or incidents, which ferry keeps (an optional environment is the
/// way past it).
pub fn check_removal(
    pipeline: &[Environment],
    name: &str,
    usage: &EnvironmentUse,
) -> Result<(), PipelineError> {
    let env = || name.to_owned();
    if !pipeline.iter().any(|e| e.name == name) {
        return Err(PipelineError::UnknownEnvironment(env()));
    }
    if pipeline.len() == 1 {
        return Err(PipelineError::OnlyEnvironment(env()));
    }
    if is_production(pipeline, name) {
        if let Some(successor) = previous_environment(pipeline, name) {
            if !successor.policy.protected {
                return Err(PipelineError::UnprotectedSuccessor {
                    env: env(),
                    successor: successor.name.clone(),
                });
            }
        }
    }
    if let Some((app, version, target)) = usage.running.first() {
        return Err(PipelineError::ReleaseRuns {
            env: env(),
            app: app.clone(),
            version: version.clone(),
            target: target.clone(),
        });
    }
    if let Some(&id) = usage.active_deployments.first() {
        return Err(PipelineError::ActiveDeployment { env: env(), id });
    }
    if !usage.targets.is_empty() {
        return Err(PipelineError::TargetsEnrolled {
            env: env(),
            targets: usage.targets.clone(),
        });
    }
    if let Some(history) = usage.history() {
        return Err(PipelineError::HasHistory {
            env: env(),
            history,
        });
    }
    Ok(())
}

impl EnvironmentUse {
    /// What happened there that ferry keeps, as "3 deployment(s), 1 incident(s)"; `None`
    /// when nothing did.
    fn history(&self) -> Option<String> {
        let history: Vec<String> = [
            (self.deployments, "deployment"),
            (self.incidents, "incident"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}(s)"))
        .collect();
        (!history.is_empty()).then(|| history.join(", "))
    }
}

/// Decides whether `old` may be renamed `new`. Refused when there is no `old`, when `new`
/// exists, and when `old` has a history of deployments or incidents: those records and the
/// audit trail (which is never rewritten) name the environment as it was, so a rename would
/// split its history under two names. Targets, role levels, freeze windows and grants follow
/// the new name.
pub fn check_rename(
    pipeline: &[Environment],
    old: &str,
    new: &str,
    usage: &EnvironmentUse,
) -> Result<(), PipelineError> {
    if !pipeline.iter().any(|e| e.name == old) {
        return Err(PipelineError::UnknownEnvironment(old.to_owned()));
    }
    if pipeline.iter().any(|e| e.name == new) {
        return Err(PipelineError::AlreadyExists(new.to_owned()));
    }
    if let Some(history) = usage.history() {
        return Err(PipelineError::RenameHasHistory {
            env: old.to_owned(),
            new: new.to_owned(),
            history,
        });
    }
    Ok(())
}

/// Where a new environment goes: the position it takes (later ones move up by one) and the
/// environment whose policy and role levels it starts with. Without `after` it is appended.
pub fn plan_insertion<'a>(
    pipeline: &'a [Environment],
    new_name: &str,
    after: Option<&str>,
) -> Result<(u32, &'a Environment), PipelineError> {
    if pipeline.iter().any(|env| env.name == new_name) {
        return Err(PipelineError::AlreadyExists(new_name.to_owned()));
    }
    let predecessor = match after {
        Some(after) => pipeline
            .iter()
            .find(|env| env.name == after)
            .ok_or_else(|| PipelineError::UnknownEnvironment(after.to_owned()))?,
        None => pipeline
            .iter()
            .max_by_key(|env| env.position)
            .ok_or_else(|| PipelineError::Empty(new_name.to_owned()))?,
    };
    Ok((predecessor.position + 1, predecessor))
}

/// The last environment of the pipeline: production, where hotfixes ship and the regression
/// guard's obligations open.
pub fn production(pipeline: &[Environment]) -> Option<&Environment> {
    pipeline.iter().max_by_key(|env| env.position)
}

/// The first environment of the pipeline: development, where fixes are merged.
pub fn development(pipeline: &[Environment]) -> Option<&Environment> {
    pipeline.iter().min_by_key(|env| env.position)
}

/// Whether `env` is the pipeline's production environment.
pub fn is_production(pipeline: &[Environment], env: &str) -> bool {
    production(pipeline).is_some_and(|e| e.name == env)
}

/// Whether `env` is the pipeline's development environment.
pub fn is_development(pipeline: &[Environment], env: &str) -> bool {
    development(pipeline).is_some_and(|e| e.name == env)
}

/// The environment that comes right before `name` in the pipeline, if any.
pub fn previous_environment<'a>(
    pipeline: &'a [Environment],
    name: &str,
) -> Option<&'a Environment> {
    let position = pipeline.iter().find(|env| env.name == name)?.position;
    pipeline
        .iter()
        .filter(|env| env.position < position)
        .max_by_key(|env| env.position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_is_the_last_environment_and_development_the_first() {
        let mut pipeline = default_pipeline();
        pipeline.reverse();
        for (env, production, development) in [
            ("dev", false, true),
            ("pp", false, false),
            ("prd", true, false),
            ("qa", false, false),
        ] {
            assert_eq!(is_production(&pipeline, env), production, "{env}");
            assert_eq!(is_development(&pipeline, env), development, "{env}");
        }
        assert_eq!(production(&[]), None);
        assert_eq!(development(&[]), None);
    }

    fn names(pipeline: &[Environment]) -> Vec<&str> {
        let mut sorted: Vec<&Environment> = pipeline.iter().collect();
        sorted.sort_by_key(|env| env.position);
        sorted.iter().map(|env| env.name.as_str()).collect()
    }

    /// Applies an insertion the way a store does: later environments move up by one.
    fn insert(
        pipeline: &mut Vec<Environment>,
        name: &str,
        after: Option<&str>,
    ) -> Result<(), PipelineError> {
        let (position, predecessor) = plan_insertion(pipeline, name, after)?;
        let policy = predecessor.policy;
        for env in pipeline.iter_mut().filter(|env| env.position >= position) {
            env.position += 1;
        }
        pipeline.push(Environment {
            name: name.to_owned(),
            position,
            policy,
            optional: false,
        });
        Ok(())
    }

    #[test]
    fn default_is_dev_pp_prd_with_production_protected() {
        let pipeline = default_pipeline();
        assert_eq!(names(&pipeline), ["dev", "pp", "prd"]);
        assert_eq!(pipeline[2].policy, Policy::PRODUCTION);
        assert_eq!(pipeline[0].policy, Policy::OPEN);
    }

    /// Environments to insert, each with the one it goes after.
    type Steps<'a> = &'a [(&'a str, Option<&'a str>)];

    #[test]
    fn insertions() {
        let cases: [(Steps, &[&str]); 4] = [
            (&[("qa", Some("dev"))], &["dev", "qa", "pp", "prd"]),
            (&[("dr", Some("prd"))], &["dev", "pp", "prd", "dr"]),
            (&[("dr", None)], &["dev", "pp", "prd", "dr"]),
            (
                &[
                    ("qa", Some("dev")),
                    ("uat", Some("qa")),
                    ("sandbox", Some("dev")),
                ],
                &["dev", "sandbox", "qa", "uat", "pp", "prd"],
            ),
        ];
        for (steps, expected) in cases {
            let mut pipeline = default_pipeline();
            for (name, after) in steps {
                insert(&mut pipeline, name, *after).unwrap();
            }
            assert_eq!(names(&pipeline), expected, "{steps:?}");
        }
    }

    #[test]
    fn a_new_environment_starts_with_the_policy_before_it() {
        let mut pipeline = default_pipeline();
        insert(&mut pipeline, "dr", Some("prd")).unwrap();
        insert(&mut pipeline, "qa", Some("dev")).unwrap();
        let policy = |name: &str| pipeline.iter().find(|env| env.name == name).unwrap().policy;
        assert_eq!(policy("dr"), Policy::PRODUCTION);
        assert_eq!(policy("qa"), Policy::OPEN);
    }

    #[test]
    fn refusals() {
        let pipeline = default_pipeline();
        assert_eq!(
            plan_insertion(&pipeline, "pp", Some("dev")).unwrap_err(),
            PipelineError::AlreadyExists("pp".into())
        );
        assert_eq!(
            plan_insertion(&pipeline, "qa", Some("test")).unwrap_err(),
            PipelineError::UnknownEnvironment("test".into())
        );
        assert_eq!(
            plan_insertion(&[], "dev", None).unwrap_err(),
            PipelineError::Empty("dev".into())
        );
    }

    #[test]
    fn removals() {
        let unused = EnvironmentUse::default();
        let mut with_dr = default_pipeline();
        insert(&mut with_dr, "dr", Some("prd")).unwrap();
        let mut with_qa = default_pipeline();
        insert(&mut with_qa, "qa", Some("dev")).unwrap();
        let only = &default_pipeline()[..1];
        let used = |usage: EnvironmentUse| usage;
        // (pipeline, env, what it holds, expected: "ok" or the start of the refusal)
        let cases: [(&[Environment], &str, EnvironmentUse, &str); 11] = [
            (&with_qa, "qa", unused.clone(), "ok"),
            (&with_qa, "dev", unused.clone(), "ok"),
            // dr after prd: prd is protected, so deleting dr leaves a protected production.
            (&with_dr, "dr", unused.clone(), "ok"),
            (
                &with_qa,
                "prd",
                unused.clone(),
                "\"prd\" is the production environment",
            ),
            (
                only,
                "dev",
                unused.clone(),
                "\"dev\" is the only environment",
            ),
            (
                &with_qa,
                "uat",
                unused.clone(),
                "no environment named \"uat\"",
            ),
            (
                &with_qa,
                "qa",
                used(EnvironmentUse {
                    running: vec![("shop".into(), "1.0".into(), "web1".into())],
                    targets: vec!["web1".into()],
                    ..EnvironmentUse::default()
                }),
                "shop 1.0 runs in \"qa\" (on web1)",
            ),
            (
                &with_qa,
                "qa",
                used(EnvironmentUse {
                    active_deployments: vec![7],
                    deployments: 1,
                    ..EnvironmentUse::default()
                }),
                "deployment 7 is active in \"qa\"",
            ),
            (
                &with_qa,
                "qa",
                used(EnvironmentUse {
                    targets: vec!["web1".into(), "web2".into()],
                    ..EnvironmentUse::default()
                }),
                "targets are enrolled in \"qa\" (web1, web2)",
            ),
            (
                &with_qa,
                "qa",
                used(EnvironmentUse {
                    deployments: 3,
                    incidents: 1,
                    ..EnvironmentUse::default()
                }),
                "\"qa\" has a history (3 deployment(s), 1 incident(s))",
            ),
            (
                &with_qa,
                "qa",
                used(EnvironmentUse {
                    incidents: 2,
                    ..EnvironmentUse::default()
                }),
                "\"qa\" has a history (2 incident(s))",
            ),
        ];
        for (pipeline, env, usage, expected) in cases {
            let result = match check_removal(pipeline, env, &usage) {
                Ok(()) => "ok".to_owned(),
                Err(err) => err.to_string(),
            };
            assert!(result.starts_with(expected), "{env} {usage:?}: {result}");
        }
    }

    #[test]
    fn renames() {
        let pipeline = default_pipeline();
        let used = EnvironmentUse {
            deployments: 2,
            ..EnvironmentUse::default()
        };
        let enrolled = EnvironmentUse {
            targets: vec!["pp-1".into()],
            ..EnvironmentUse::default()
        };
        // (old, new, what old holds, expected: "ok" or the start of the refusal)
        let cases = [
            ("pp", "staging", &EnvironmentUse::default(), "ok"),
            ("pp", "staging", &enrolled, "ok"),
            (
                "qa",
                "uat",
                &EnvironmentUse::default(),
                "no environment named \"qa\"",
            ),
            (
                "pp",
                "prd",
                &EnvironmentUse::default(),
                "environment \"prd\" already exists",
            ),
            (
                "pp",
                "staging",
                &used,
                "\"pp\" has a history (2 deployment(s))",
            ),
        ];
        for (old, new, usage, expected) in cases {
            let result = match check_rename(&pipeline, old, new, usage) {
                Ok(()) => "ok".to_owned(),
                Err(err) => err.to_string(),
            };
            assert!(result.starts_with(expected), "{old} → {new}: {result}");
        }
    }

    #[test]
    fn previous_environments() {
        let mut pipeline = default_pipeline();
        insert(&mut pipeline, "qa", Some("dev")).unwrap();
        let previous = |name| previous_environment(&pipeline, name).map(|env| env.name.as_str());
        assert_eq!(previous("dev"), None);
        assert_eq!(previous("qa"), Some("dev"));
        assert_eq!(previous("pp"), Some("qa"));
        assert_eq!(previous("prd"), Some("pp"));
        assert_eq!(previous("nope"), None);
    }
}
