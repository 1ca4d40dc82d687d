//! The Bookinfo workloads `meshctl up` knows how to run, and the `--workloads` selection.
//!
//! Each workload has a fixed slot so its ports do not move when a subset is selected:
//! `reviews-v2` is always in the same place, whatever else runs.

use crate::CtlError;

/// One Bookinfo workload (a Deployment in Kubernetes terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Name, as Istio's Bookinfo deployments are named: `reviews-v2`.
    pub name: &'static str,
    /// The service (and binary) it belongs to: `reviews`.
    pub service: &'static str,
    /// Its version label: `v2`.
    pub version: &'static str,
    /// Its service account: `bookinfo-reviews`.
    pub service_account: &'static str,
    /// Its port slot (see `ports`).
    pub slot: u16,
}

/// Every workload, in start order (leaves first is not needed: apps retry nothing at
/// start, and readiness is waited for as a whole).
pub const ALL: [Workload; 6] = [
    workload(
        "productpage-v1",
        "productpage",
        "v1",
        "bookinfo-productpage",
        0,
    ),
    workload("details-v1", "details", "v1", "bookinfo-details", 1),
    workload("reviews-v1", "reviews", "v1", "bookinfo-reviews", 2),
    workload("reviews-v2", "reviews", "v2", "bookinfo-reviews", 3),
    workload("reviews-v3", "reviews", "v3", "bookinfo-reviews", 4),
    workload("ratings-v1", "ratings", "v1", "bookinfo-ratings", 5),
];

/// The slot of the ingress gateway, after the workloads.
pub const GATEWAY_SLOT: u16 = 6;

const fn workload(
    name: &'static str,
    service: &'static str,
    version: &'static str,
    service_account: &'static str,
    slot: u16,
) -> Workload {
    Workload {
        name,
        service,
        version,
        service_account,
        slot,
    }
}

impl Workload {
    /// `app=reviews,version=v2`, the `MESH_PROXY_LABELS` value.
    pub fn labels(&self) -> String {
        format!("app={},version={}", self.service, self.version)
    }
}

/// Resolves `--workloads productpage,details,reviews-v1,reviews-v3,ratings`. A service
/// name alone means all its versions; names may repeat; the result keeps start order.
pub fn select(names: &[String]) -> Result<Vec<Workload>, CtlError> {
    let mut chosen = Vec::new();
    for raw in names {
        let name = raw.trim();
        if name.is_empty() {
            continue;
        }
        let matched: Vec<Workload> = ALL
            .iter()
            .filter(|w| w.name == name || w.service == name)
            .copied()
            .collect();
        if matched.is_empty() {
            let known: Vec<&str> = ALL.iter().map(|w| w.name).collect();
            return Err(CtlError::Usage(format!(
                "unknown workload {name:?} in --workloads: expected a service (productpage, details, reviews, ratings) or one of {}",
                known.join(", ")
            )));
        }
        chosen.extend(matched);
    }
    if chosen.is_empty() {
        return Err(CtlError::Usage(
            "--workloads selects nothing: name at least one workload".to_owned(),
        ));
    }
    Ok(ALL.iter().filter(|w| chosen.contains(w)).copied().collect())
}

/// The workload `--reviews v1|v2|v3` picks for `--no-mesh`.
pub fn reviews_version(version: &str) -> Result<Workload, CtlError> {
    ALL.iter()
        .find(|w| w.service == "reviews" && w.version == version)
        .copied()
        .ok_or_else(|| {
            CtlError::Usage(format!(
                "invalid --reviews {version:?}: expected v1, v2 or v3"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ws: &[Workload]) -> Vec<&'static str> {
        ws.iter().map(|w| w.name).collect()
    }

    #[test]
    fn services_expand_to_their_versions_in_start_order() {
        let got = select(&["ratings".into(), "reviews-v3".into(), "productpage".into()]).unwrap();
        assert_eq!(names(&got), ["productpage-v1", "reviews-v3", "ratings-v1"]);
        let got = select(&["reviews".into(), "reviews-v1".into()]).unwrap();
        assert_eq!(names(&got), ["reviews-v1", "reviews-v2", "reviews-v3"]);
    }

    #[test]
    fn unknown_names_are_named_in_the_error() {
        let e = select(&["reviews-v9".into()]).unwrap_err().to_string();
        assert!(e.contains("\"reviews-v9\""), "{e}");
        assert!(select(&[" ".into()]).is_err());
    }

    #[test]
    fn labels_and_reviews_choice() {
        assert_eq!(ALL[3].labels(), "app=reviews,version=v2");
        assert_eq!(reviews_version("v3").unwrap().name, "reviews-v3");
        assert!(reviews_version("v4").is_err());
    }
}
