"""schemathesis hooks for .ci/api-properties (loaded through SCHEMATHESIS_HOOKS).

FERRY_API_CALLER names the user whose token schemathesis sends.
"""

import os

import schemathesis

CALLER = os.environ.get("FERRY_API_CALLER", "")

# What a user may do to themselves, whatever their role: rotating their own token would
# leave the rest of the run without one, and a viewer's new password would be a change.
# schemathesis sends these for someone else.
TO_THEMSELVES = {"/api/v1/users/{name}/token", "/api/v1/users/{name}/password"}
SOMEONE_ELSE = "nobody-else"

# POSTs that only read, which a viewer may send: which blobs the server lacks and their
# content are questions, and asking agents to check for drift changes nothing they serve.
READS_BY_POST = {
    "POST /api/v1/drift/check",
    "POST /api/v1/apps/{app}/blobs/fetch",
    "POST /api/v1/backups/{id}/blobs/fetch",
}
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@schemathesis.hook
def before_call(ctx, case, kwargs):
    params = case.path_parameters or {}
    if case.operation.path in TO_THEMSELVES and params.get("name") == CALLER:
        params["name"] = SOMEONE_ELSE


@schemathesis.check
def refused_to_a_viewer(ctx, response, case):
    """A viewer's request to change something is refused: never a success."""
    label = f"{case.method.upper()} {case.operation.path}"
    if case.method.upper() not in MUTATING or label in READS_BY_POST:
        return None
    if response.status_code < 400:
        raise AssertionError(
            f"a viewer's {label} answered {response.status_code}: "
            "every change must be refused to a viewer (403, or 404 for what they cannot see)"
        )
    return None


@schemathesis.check
def agents_only_reach_the_agent_api(ctx, response, case):
    """An agent's credential is refused everywhere but the agent API: never a success."""
    label = f"{case.method.upper()} {case.operation.path}"
    if case.operation.path.startswith("/api/v1/agent/"):
        return None
    if response.status_code < 400:
        raise AssertionError(
            f"an agent's credential got {response.status_code} from {label}: "
            "outside /api/v1/agent/ it must be refused (401)"
        )
    return None
