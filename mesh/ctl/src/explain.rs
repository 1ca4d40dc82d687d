//! `meshctl explain <FLAG>`: what an Envoy response flag in our access log or in the
//! `response_flags` metric label means, which Bookinfo situation typically produces it,
//! and what to do about it.

/// One response flag explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagHelp {
    /// Envoy's short code, e.g. `UF`.
    pub code: &'static str,
    /// Envoy's long name.
    pub name: &'static str,
    /// What happened.
    pub cause: &'static str,
    /// When Bookinfo shows it.
    pub example: &'static str,
    /// What to do.
    pub fix: &'static str,
}

/// Every flag our proxy emits, plus the ones users meet in Istio docs.
pub const FLAGS: &[FlagHelp] = &[
    FlagHelp {
        code: "UH",
        name: "NoHealthyUpstream",
        cause: "The destination had no healthy endpoint: none is registered, or outlier detection ejected every one.",
        example: "All reviews pods crash-looping, or `reviews` selected with --workloads left out; a DestinationRule with outlierDetection after ratings v1 returned 5xx repeatedly.",
        fix: "Check `meshctl describe <service>` for endpoints; start the workload or wait for the ejection time to pass; relax outlierDetection (consecutive5xxErrors, baseEjectionTime, maxEjectionPercent).",
    },
    FlagHelp {
        code: "UF",
        name: "UpstreamConnectionFailure",
        cause: "Connecting to the chosen endpoint failed (refused, reset, or TLS handshake failure), or the TLS a DestinationRule asks for (SIMPLE, MUTUAL) could not be set up, so nothing was sent.",
        example: "`meshctl kill reviews-v2`: until the supervisor restarts it, calls routed to reviews v2 fail to connect; also an mTLS mismatch (STRICT PeerAuthentication with a client sending plain text), or tls.mode SIMPLE with a caCertificates file that does not exist.",
        fix: "Wait for the restart (`meshctl proxy-status`, the up log), add retries on connect-failure in the VirtualService, or fix the TLS mode (DestinationRule trafficPolicy.tls / PeerAuthentication); the x-mesh-error header names a TLS file that is missing or unreadable.",
    },
    FlagHelp {
        code: "UO",
        name: "UpstreamOverflow",
        cause: "A circuit breaker tripped: the DestinationRule's connectionPool limit (connections, pending or concurrent requests) was reached, and the proxy answered 503 without calling upstream.",
        example: "The circuit-breaking task: a DestinationRule with maxConnections: 1 and http1MaxPendingRequests: 1 under a load of several concurrent clients.",
        fix: "Raise connectionPool limits, lower the client's concurrency, or keep the limit and treat the 503 as the intended shedding (clients should back off).",
    },
    FlagHelp {
        code: "NR",
        name: "NoRouteFound",
        cause: "No route matched the request, or the matched route points at a subset that does not exist.",
        example: "Applying virtual-service-all-v1.yaml before destination-rule-all.yaml: the routes name subset v1 but no DestinationRule defines it. Also a gateway request for a path the bookinfo VirtualService does not match.",
        fix: "Apply the DestinationRule defining the subsets (`meshctl apply -f mesh/config/destination-rule-all.yaml`), check `meshctl describe <service>`, or add a match for the path.",
    },
    FlagHelp {
        code: "URX",
        name: "UpstreamRetryLimitExceeded",
        cause: "Every attempt failed and the retry budget (attempts or perTryTimeout) is used up; the last failure is returned.",
        example: "Ratings aborting with 503 for all users while the reviews route retries 5xx: each call is tried attempts+1 times, then fails with URX.",
        fix: "Fix the failing upstream; retries only help transient faults. Tune retries.attempts / perTryTimeout / retryOn so their total fits inside the caller's timeout.",
    },
    FlagHelp {
        code: "UT",
        name: "UpstreamRequestTimeout",
        cause: "The route's timeout elapsed before the upstream answered; the proxy answered 504.",
        example: "A 7 s delay on ratings for jason with a 0.5 s timeout on the reviews route (the timeout task), or a perTryTimeout shorter than a slow service.",
        fix: "Raise the route timeout, make the upstream faster, or make timeouts consistent along the call chain (an inner timeout shorter than the outer one).",
    },
    FlagHelp {
        code: "UC",
        name: "UpstreamConnectionTermination",
        cause: "The upstream closed the connection before sending a complete response.",
        example: "A reviews process killed while answering, or an app restarted under load; keep-alive connections reused after the app closed them.",
        fix: "Usually transient: retry on reset (retryOn: reset,connect-failure); if constant, look at the app's log for crashes.",
    },
    FlagHelp {
        code: "DC",
        name: "DownstreamConnectionTermination",
        cause: "The client went away before the response was sent.",
        example: "A load generator or browser giving up on a page slowed by an injected delay (productpage's own 3 s timeout on reviews closes its side).",
        fix: "Nothing on the server side: the client's timeout is shorter than the service's latency. Align the client timeout or remove the delay.",
    },
    FlagHelp {
        code: "LR",
        name: "LocalReset",
        cause: "The proxy itself reset the request (for instance while draining on shutdown or on an internal error).",
        example: "Requests in flight while a sidecar was stopped with Ctrl-C or restarted by the supervisor.",
        fix: "Expected during restarts; if it persists, read the sidecar's log (`.run/meshctl/logs/<workload>-proxy.log`).",
    },
    FlagHelp {
        code: "DI",
        name: "DelayInjected",
        cause: "Fault injection delayed the request on purpose (the request may still succeed).",
        example: "virtual-service-ratings-test-delay.yaml or `meshctl fault add ratings --delay 7s --header end-user=jason --ttl 2m`: jason's page waits, then shows the ratings error.",
        fix: "Intended during an experiment; `meshctl fault clear` removes fault leases, `meshctl delete -f` removes a delay from YAML.",
    },
    FlagHelp {
        code: "FI",
        name: "FaultInjected",
        cause: "Fault injection aborted the request with the configured HTTP status instead of calling upstream.",
        example: "virtual-service-ratings-test-abort.yaml or `meshctl fault add ratings --abort 500 --ttl 1m`: reviews shows \"Ratings service is currently unavailable\".",
        fix: "Intended during an experiment; `meshctl fault clear` or `meshctl delete -f` the VirtualService with the abort.",
    },
    FlagHelp {
        code: "RL",
        name: "RateLimited",
        cause: "A rate limit rejected the request with 429.",
        example: "Istio's local rate limit EnvoyFilter on productpage (4 tokens every 60s): the fifth request within the minute gets `429 local_rate_limited`.",
        fix: "Lower the request rate or raise the filter's token_bucket; clients should back off on 429.",
    },
    FlagHelp {
        code: "UAEX",
        name: "UnauthorizedExternalService",
        cause: "An external authorizer (AuthorizationPolicy action CUSTOM) denied the request.",
        example: "A CUSTOM AuthorizationPolicy on productpage whose provider rejects requests without a token.",
        fix: "Send the credentials the provider expects, or change the policy; `meshctl get authorizationpolicies` lists what is in force.",
    },
    FlagHelp {
        code: "NC",
        name: "NoClusterFound",
        cause: "The route's destination host is not a known service: no registered workload and no ServiceEntry for it.",
        example: "A VirtualService routing to `reviews` while no reviews workload runs (`meshctl up --workloads productpage,details`), or a typo in destination.host.",
        fix: "Start the workload, fix the host name, or declare external hosts with a ServiceEntry; `meshctl get workloads` shows what is registered.",
    },
];

/// The help for `code` (case-insensitive).
pub fn lookup(code: &str) -> Option<&'static FlagHelp> {
    FLAGS
        .iter()
        .find(|f| f.code.eq_ignore_ascii_case(code.trim()))
}

/// The known codes, comma-separated.
pub fn known_codes() -> String {
    FLAGS.iter().map(|f| f.code).collect::<Vec<_>>().join(", ")
}

/// The text `meshctl explain` prints.
pub fn render(help: &FlagHelp) -> String {
    format!(
        "{} ({})\n\nCause:   {}\nExample: {}\nFix:     {}\n",
        help.code, help.name, help.cause, help.example, help.fix
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proxy's flag table, read at compile time, so a flag added to the proxy
    /// without an explanation here fails this test.
    const PROXY_FLAGS: &str = include_str!("../../proxy/src/telemetry/flags.rs");

    fn proxy_codes() -> Vec<String> {
        PROXY_FLAGS
            .lines()
            .filter_map(|l| {
                let (_, rest) = l.split_once("=> \"")?;
                let (code, _) = rest.split_once('"')?;
                Some(code.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_flag_the_proxy_emits_is_explained() {
        let codes = proxy_codes();
        assert!(
            codes.len() >= 10,
            "could not read the proxy's flags: {codes:?}"
        );
        for code in codes {
            assert!(lookup(&code).is_some(), "no explanation for {code}");
        }
    }

    #[test]
    fn the_asked_for_flags_are_all_there_once() {
        let want = [
            "UH", "UF", "UO", "NR", "URX", "UT", "UC", "DC", "LR", "DI", "FI", "RL", "UAEX", "NC",
        ];
        for code in want {
            assert_eq!(FLAGS.iter().filter(|f| f.code == code).count(), 1, "{code}");
        }
        assert_eq!(FLAGS.len(), want.len());
    }

    #[test]
    fn lookup_ignores_case_and_render_has_every_part() {
        let h = lookup("uf").unwrap();
        assert_eq!(h.code, "UF");
        let text = render(h);
        assert!(text.starts_with("UF (UpstreamConnectionFailure)"));
        assert!(text.contains("Cause:") && text.contains("Example:") && text.contains("Fix:"));
        assert!(lookup("XX").is_none());
        assert!(known_codes().starts_with("UH, UF, UO"));
    }
}
