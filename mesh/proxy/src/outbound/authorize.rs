//! A gateway's authorization: the AuthorizationPolicies selecting it apply to the
//! requests it receives (Istio's `allow-nothing` in the gateway's namespace answers 403
//! at the front door). Sidecars authorize on their inbound side instead.

use std::ops::ControlFlow;

use http::StatusCode;
use http::request::Parts;

use crate::http::respond;
use crate::inbound::authz::{DENIED_BODY, Decision, RequestAttributes};
use crate::outbound::Phase;
use crate::outbound::ctx::Ctx;
use crate::snapshot::Snapshot;

/// Passes, or answers 403 naming the policy that denied the request.
pub(super) fn gateway(snap: &Snapshot, parts: &Parts, authority: &str, ctx: &mut Ctx) -> Phase<()> {
    let (_, port) = mesh_api::host::split_authority(authority);
    let attrs = RequestAttributes {
        peer: None,
        source_ip: ctx.remote_ip,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        host: authority,
        port: port.unwrap_or(80),
        headers: &parts.headers,
    };
    match snap.authorizer().authorize(&attrs) {
        Decision::Allow => ControlFlow::Continue(()),
        Decision::Deny { policy } => {
            let cause = format!("- rbac_access_denied_matched_policy[{policy}]: {policy}");
            ctx.note_details(format_args!("rbac_access_denied_matched_policy[{policy}]"));
            ControlFlow::Break(respond::text(StatusCode::FORBIDDEN, DENIED_BODY, &cause))
        }
    }
}
