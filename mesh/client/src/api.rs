//! One method per call of the control plane's API, named after what it does, taking and
//! returning the `mesh_api::wire` types (the table in `docs/control-plane-api.md`).

use std::time::Duration;

use http::Method;
use mesh_api::wire::{
    Analysis, AnalyzeRequest, Applied, CaRoot, CertificateRequest, Deleted, Deregistered,
    ErrorRecord, ExperimentRecorded, ExperimentReport, ExperimentView, FaultCreated, FaultDeleted,
    FaultRequest, FaultsCleared, Graph, Issued, LeaseView, Overview, ProxyConfig, ProxyStatus,
    Registered, ResourceEntry, ServiceDescription, TargetGroup, WorkloadSpec, WorkloadView,
};
use serde::de::DeserializeOwned;

use crate::transport::{Body, Transport};
use crate::{ClientError, ControlClient};

impl<X: Transport> ControlClient<X> {
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        self.call(Method::GET, self.url(path, query), None, Duration::ZERO)
            .await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Body,
    ) -> Result<T, ClientError> {
        self.call(
            Method::POST,
            self.url(path, query),
            Some(body),
            Duration::ZERO,
        )
        .await
    }

    async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::DELETE, self.url(path, &[]), None, Duration::ZERO)
            .await
    }

    /// Applies Istio resources (YAML, one or more documents) under the file name `file`.
    pub async fn apply(&self, file: &str, yaml: String) -> Result<Applied, ClientError> {
        self.post("api/v1/apply", &[("file", file)], Body::yaml(yaml))
            .await
    }

    /// Removes the resources named in `yaml`.
    pub async fn delete_resources(&self, file: &str, yaml: String) -> Result<Deleted, ClientError> {
        self.post("api/v1/delete", &[("file", file)], Body::yaml(yaml))
            .await
    }

    /// Findings about the configuration in force, or about it with `request`'s files
    /// applied on top (nothing is changed).
    pub async fn analyze(&self, request: &AnalyzeRequest) -> Result<Analysis, ClientError> {
        if request.files.is_empty() {
            self.get("api/v1/analyze", &[]).await
        } else {
            self.post("api/v1/analyze", &[], Body::json(request)?).await
        }
    }

    /// The resources in force, of one kind (`VirtualService`, ...) or all.
    pub async fn resources(&self, kind: Option<&str>) -> Result<Vec<ResourceEntry>, ClientError> {
        match kind {
            Some(kind) => self.get("api/v1/resources", &[("kind", kind)]).await,
            None => self.get("api/v1/resources", &[]).await,
        }
    }

    /// Recently rejected configuration changes.
    pub async fn config_errors(&self) -> Result<Vec<ErrorRecord>, ClientError> {
        self.get("api/v1/config-errors", &[]).await
    }

    /// The mesh at a glance (what the dashboard shows).
    pub async fn overview(&self) -> Result<Overview, ClientError> {
        self.get("api/v1/overview", &[]).await
    }

    /// The live service graph (rates, errors, p99, mTLS and shares per edge).
    pub async fn graph(&self) -> Result<Graph, ClientError> {
        self.get("api/v1/graph", &[]).await
    }

    /// Everything about one service as seen from `namespace`.
    pub async fn describe(
        &self,
        service: &str,
        namespace: &str,
    ) -> Result<ServiceDescription, ClientError> {
        let path = format!("api/v1/describe/{service}");
        self.get(&path, &[("namespace", namespace)]).await
    }

    /// Registers (or refreshes) a workload.
    pub async fn register(&self, spec: &WorkloadSpec) -> Result<Registered, ClientError> {
        self.post("api/v1/workloads", &[], Body::json(spec)?).await
    }

    /// Removes a workload from the registry.
    pub async fn deregister(&self, name: &str) -> Result<Deregistered, ClientError> {
        self.delete(&format!("api/v1/workloads/{name}")).await
    }

    /// The registered workloads.
    pub async fn workloads(&self) -> Result<Vec<WorkloadView>, ClientError> {
        self.get("api/v1/workloads", &[]).await
    }

    /// The configuration of `workload`: at once without `held`, else as soon as there is
    /// one newer than `held`, or after `wait` with the current one (the long poll).
    pub async fn proxy_config(
        &self,
        workload: &str,
        held: Option<&str>,
        wait: Duration,
    ) -> Result<ProxyConfig, ClientError> {
        let wait_secs = wait.as_secs().to_string();
        let mut query = vec![("workload", workload), ("wait", wait_secs.as_str())];
        if let Some(version) = held {
            query.push(("version", version));
        }
        self.call(
            Method::GET,
            self.url("api/v1/proxy-config", &query),
            None,
            wait,
        )
        .await
    }

    /// Whether each proxy holds the configuration in force.
    pub async fn proxy_status(&self) -> Result<Vec<ProxyStatus>, ClientError> {
        self.get("api/v1/proxy-status", &[]).await
    }

    /// Where Prometheus scrapes every registered proxy (its HTTP service discovery).
    pub async fn prometheus_targets(&self) -> Result<Vec<TargetGroup>, ClientError> {
        self.get("api/v1/prometheus/targets", &[]).await
    }

    /// The mesh root certificate.
    pub async fn ca_root(&self) -> Result<CaRoot, ClientError> {
        self.get("api/v1/ca/root", &[]).await
    }

    /// Has the CA sign a workload's CSR.
    pub async fn certificate(&self, request: &CertificateRequest) -> Result<Issued, ClientError> {
        self.post("api/v1/certificates", &[], Body::json(request)?)
            .await
    }

    /// Leases a fault.
    pub async fn add_fault(&self, request: &FaultRequest) -> Result<FaultCreated, ClientError> {
        self.post("api/v1/faults", &[], Body::json(request)?).await
    }

    /// The fault leases in force.
    pub async fn faults(&self) -> Result<Vec<LeaseView>, ClientError> {
        self.get("api/v1/faults", &[]).await
    }

    /// Ends one fault lease (404 when it is unknown or already over).
    pub async fn remove_fault(&self, id: &str) -> Result<FaultDeleted, ClientError> {
        self.delete(&format!("api/v1/faults/{id}")).await
    }

    /// Ends every fault lease.
    pub async fn clear_faults(&self) -> Result<FaultsCleared, ClientError> {
        self.delete("api/v1/faults").await
    }

    /// Reports the state of a chaos experiment run (the dashboard's experiment strip).
    pub async fn report_experiment(
        &self,
        report: &ExperimentReport,
    ) -> Result<ExperimentRecorded, ClientError> {
        self.post("api/v1/experiments", &[], Body::json(report)?)
            .await
    }

    /// The experiment runs reported, the most recently updated first.
    pub async fn experiments(&self) -> Result<Vec<ExperimentView>, ClientError> {
        self.get("api/v1/experiments", &[]).await
    }
}
