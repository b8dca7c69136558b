//! Local structs for what k8s-openapi lacks: kustomize, cert-manager and Prometheus Operator
//! objects. Only the fields the manifests use (and a few close relatives); `deny_unknown_fields`
//! makes anything else an error. Options need no skip_serializing_if: the comparison only asks
//! whether the original's fields came back.

use super::*;

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Kustomization {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: Option<Vec<KustomizeLabels>>,
    pub(crate) resources: Option<Vec<String>>,
    pub(crate) components: Option<Vec<String>>,
    pub(crate) patches: Option<Vec<KustomizePatch>>,
    pub(crate) config_map_generator: Option<Vec<Generator>>,
    pub(crate) secret_generator: Option<Vec<Generator>>,
    pub(crate) images: Option<Vec<KustomizeImage>>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct KustomizeLabels {
    pub(crate) pairs: BTreeMap<String, String>,
    pub(crate) include_selectors: Option<bool>,
    pub(crate) include_templates: Option<bool>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct KustomizePatch {
    pub(crate) path: Option<String>,
    pub(crate) patch: Option<String>,
    pub(crate) target: Option<PatchTarget>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PatchTarget {
    pub(crate) group: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) label_selector: Option<String>,
    pub(crate) annotation_selector: Option<String>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Generator {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) behavior: Option<String>,
    #[serde(rename = "type")]
    pub(crate) type_: Option<String>,
    pub(crate) files: Option<Vec<String>>,
    pub(crate) literals: Option<Vec<String>>,
    pub(crate) envs: Option<Vec<String>>,
    pub(crate) options: Option<GeneratorOptions>,
}

impl Generator {
    /// (key in the object, file path) of each `files` entry: `key=path` or `path`.
    pub(crate) fn file_entries(&self) -> Vec<(String, String)> {
        self.files
            .iter()
            .flatten()
            .map(|f| match f.split_once('=') {
                Some((k, p)) => (k.to_string(), p.to_string()),
                None => (basename(f).to_string(), f.clone()),
            })
            .collect()
    }
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct GeneratorOptions {
    pub(crate) disable_name_suffix_hash: Option<bool>,
    pub(crate) immutable: Option<bool>,
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct KustomizeImage {
    pub(crate) name: String,
    pub(crate) new_name: Option<String>,
    pub(crate) new_tag: Option<String>,
    pub(crate) digest: Option<String>,
}

/// One JSON6902 operation (a patch file is a list of them).
#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct JsonPatchOp {
    pub(crate) op: String,
    pub(crate) path: String,
    pub(crate) value: Option<Value>,
    pub(crate) from: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Issuer {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: ObjectMeta,
    pub(crate) spec: IssuerSpec,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct IssuerSpec {
    pub(crate) self_signed: Option<SelfSignedIssuer>,
    pub(crate) ca: Option<CaIssuer>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SelfSignedIssuer {
    pub(crate) crl_distribution_points: Option<Vec<String>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CaIssuer {
    pub(crate) secret_name: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Certificate {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: ObjectMeta,
    pub(crate) spec: CertificateSpec,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CertificateSpec {
    pub(crate) secret_name: String,
    pub(crate) common_name: Option<String>,
    pub(crate) dns_names: Option<Vec<String>>,
    pub(crate) duration: Option<String>,
    pub(crate) renew_before: Option<String>,
    // cert-manager spells it `isCA`, which camelCase renaming would make `isCa`.
    #[serde(rename = "isCA")]
    pub(crate) is_ca: Option<bool>,
    pub(crate) usages: Option<Vec<String>>,
    pub(crate) private_key: Option<CertificatePrivateKey>,
    pub(crate) issuer_ref: IssuerRef,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CertificatePrivateKey {
    pub(crate) algorithm: Option<String>,
    pub(crate) size: Option<u32>,
    pub(crate) encoding: Option<String>,
    pub(crate) rotation_policy: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct IssuerRef {
    pub(crate) name: String,
    pub(crate) kind: Option<String>,
    pub(crate) group: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ServiceMonitor {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: ObjectMeta,
    pub(crate) spec: ServiceMonitorSpec,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ServiceMonitorSpec {
    pub(crate) selector: LabelSelector,
    pub(crate) namespace_selector: Option<MonitorNamespaceSelector>,
    pub(crate) job_label: Option<String>,
    pub(crate) endpoints: Vec<MonitorEndpoint>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MonitorNamespaceSelector {
    pub(crate) any: Option<bool>,
    pub(crate) match_names: Option<Vec<String>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MonitorEndpoint {
    pub(crate) port: Option<String>,
    pub(crate) target_port: Option<IntOrString>,
    pub(crate) scheme: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) interval: Option<String>,
    pub(crate) scrape_timeout: Option<String>,
    pub(crate) honor_labels: Option<bool>,
    pub(crate) tls_config: Option<MonitorTlsConfig>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MonitorTlsConfig {
    pub(crate) insecure_skip_verify: Option<bool>,
    pub(crate) server_name: Option<String>,
    pub(crate) ca: Option<SecretOrConfigMapKey>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SecretOrConfigMapKey {
    pub(crate) secret: Option<KeyRef>,
    pub(crate) config_map: Option<KeyRef>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct KeyRef {
    pub(crate) name: String,
    pub(crate) key: String,
    pub(crate) optional: Option<bool>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PrometheusRule {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: ObjectMeta,
    pub(crate) spec: PrometheusRuleSpec,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PrometheusRuleSpec {
    pub(crate) groups: Vec<RuleGroup>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RuleGroup {
    pub(crate) name: String,
    pub(crate) interval: Option<String>,
    pub(crate) rules: Vec<AlertRule>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct AlertRule {
    pub(crate) alert: Option<String>,
    pub(crate) record: Option<String>,
    pub(crate) expr: String,
    #[serde(rename = "for")]
    pub(crate) for_: Option<String>,
    pub(crate) labels: Option<BTreeMap<String, String>>,
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}
