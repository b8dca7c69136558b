//! The mode x stage matrix. What each action decides for real pods, with the patch applied, is
//! tested where the patch is built: src/admission/tests/.

#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn pod(annotations: serde_json::Value, gates: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "x"}], "schedulingGates": gates}
    }))
    .unwrap()
}

#[test]
fn each_mode_acts_at_one_stage() {
    let fresh = pod(json!({}), json!([]));
    let cases = [
        (Mode::Off, Stage::Mutate, None),
        (Mode::Off, Stage::Validate, None),
        (Mode::Mutate, Stage::Mutate, Some(Action::Place)),
        (Mode::Mutate, Stage::Validate, Some(Action::Catch)),
        (Mode::Validate, Stage::Mutate, None),
        (
            Mode::Validate,
            Stage::Validate,
            Some(Action::Judge { deny: true }),
        ),
        (Mode::Warn, Stage::Mutate, None),
        (
            Mode::Warn,
            Stage::Validate,
            Some(Action::Judge { deny: false }),
        ),
    ];
    for (mode, stage, action) in cases {
        assert_eq!(
            Action::of(mode, stage, &fresh),
            action,
            "{mode:?} at {stage:?}"
        );
    }
}

#[test]
fn a_pod_the_mutating_stage_placed_or_gated_is_not_judged_again() {
    let placed = pod(json!({ARCH_ANNOTATION: "amd64"}), json!([]));
    let gated = pod(json!({}), json!([{"name": gate::GATE}]));
    let other_gate = pod(json!({}), json!([{"name": "example.com/other"}]));
    assert_eq!(Action::of(Mode::Mutate, Stage::Validate, &placed), None);
    assert_eq!(Action::of(Mode::Mutate, Stage::Validate, &gated), None);
    assert_eq!(
        Action::of(Mode::Mutate, Stage::Validate, &other_gate),
        Some(Action::Catch)
    );
    // Only the mode that placed it trusts the placement.
    assert_eq!(
        Action::of(Mode::Validate, Stage::Validate, &placed),
        Some(Action::Judge { deny: true })
    );
}

#[test]
fn only_warn_mode_turns_problems_into_warnings() {
    assert!(Action::Place.denies());
    assert!(Action::Catch.denies());
    assert!(Action::Judge { deny: true }.denies());
    assert!(!Action::Judge { deny: false }.denies());
}
