//! The pipeline as use cases see it.

use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::pipeline::Environment;

use super::{ServiceError, ServiceResult};
use crate::state::AppState;

/// The environment named; not found, naming `ferry env list`, when the pipeline has none.
pub async fn environment(state: &AppState, env: &str) -> ServiceResult<Environment> {
    validate_name(NameKind::Environment, env)?;
    state
        .store
        .list_environments()
        .await?
        .into_iter()
        .find(|e| e.name == env)
        .ok_or_else(|| {
            ServiceError::not_found(format!(
                "no environment named {env:?}: see `ferry env list`"
            ))
        })
}
