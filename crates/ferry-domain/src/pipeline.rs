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
    })
    .collect()
}

/// Why an environment cannot be added where asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    #[error("environment {0:?} already exists")]
    AlreadyExists(String),
    #[error("no environment named {0:?}: see `ferry env list`")]
    UnknownEnvironment(String),
    #[error("the pipeline has no environment yet to insert {0:?} after")]
    Empty(String),
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
