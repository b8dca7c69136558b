//! `archgate check` on a DaemonSet whose template the mutating webhook places: the report shows
//! the template patch as the webhook sends it, as it shows a pod's.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value;
use std::process::Command;

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: report-agent, namespace: monitoring}
spec:
  selector: {matchLabels: {app: report-agent}}
  template:
    metadata: {labels: {app: report-agent}}
    spec:
      containers: [{name: agent, image: registry.example/shop/report:0.9.0}]
"#;

fn check(format: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = common::write_file(dir.path(), "ds.yaml", DAEMONSET);
    let out = Command::new(common::bin())
        .args(["check", "--policy"])
        .arg(common::homelab_policy())
        .arg("--platforms")
        .arg(common::homelab_platforms())
        .args(["-o", format])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn an_amd64_only_daemonset_reports_its_template_patch() {
    let (code, text) = check("text");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "patch  DaemonSet monitoring/report-agent  [amd64]  its template gets affinity kubernetes.io/arch In [amd64]"
        ),
        "{text}"
    );

    let (_, json) = check("json");
    let report: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let object = &report["objects"][0];
    assert_eq!(object["patchTarget"], "object", "{object}");
    assert_eq!(object["decision"], "patch");
    let mut daemonset: Value = serde_yaml_ng::from_str(DAEMONSET).unwrap();
    let patch: json_patch::Patch = serde_json::from_value(object["patch"].clone()).unwrap();
    json_patch::patch(&mut daemonset, &patch).unwrap();
    assert_eq!(
        daemonset["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
            ["matchExpressions"][0]["values"],
        serde_json::json!(["amd64"])
    );

    let (_, yaml) = check("yaml");
    assert!(
        yaml.contains("kubernetes.io/arch"),
        "the placed DaemonSet: {yaml}"
    );
}
