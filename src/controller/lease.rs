//! One placement controller at a time: a `coordination.k8s.io/v1` Lease in archgate's namespace,
//! held by the replica that renews it. A replica that stops renewing (killed, partitioned) loses
//! it once `leaseDurationSeconds` pass without a renewal, and another takes it over.
//!
//! Written here because kube-rs has no leader election; the algorithm is client-go's: read the
//! Lease, take it when it is free or expired, renew it while held, and let the API server's
//! resourceVersion check decide every race.

use chrono::Utc;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::Duration;

/// The Lease's name in archgate's namespace.
pub const LEASE_NAME: &str = "archgate-placement-controller";

/// A Lease this replica competes for.
pub struct LeaseLock {
    api: Api<Lease>,
    identity: String,
    duration: Duration,
}

impl LeaseLock {
    /// The lock on [`LEASE_NAME`] in `namespace`, for this replica's `identity`.
    pub fn new(client: kube::Client, namespace: &str, identity: &str, duration: Duration) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            identity: identity.to_string(),
            duration,
        }
    }

    /// One attempt to take the Lease or renew it: true when this replica holds it afterwards.
    /// Losing a race (409 Conflict or AlreadyExists) is a plain `false`.
    pub async fn acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Utc::now();
        let seconds = i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let result = match self.api.get_opt(LEASE_NAME).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.into()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                let held_by_us = spec.holder_identity.as_deref() == Some(&self.identity);
                if !held_by_us && !free(spec, now) {
                    return Ok(false);
                }
                if !held_by_us {
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                    spec.holder_identity = Some(self.identity.clone());
                }
                spec.renew_time = Some(MicroTime(now));
                spec.lease_duration_seconds = Some(seconds);
                self.api
                    .replace(LEASE_NAME, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up when this replica holds it, so another takes over at once instead of
    /// after the lease duration (a graceful shutdown).
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        self.api
            .replace(LEASE_NAME, &PostParams::default(), &lease)
            .await
            .map(drop)
    }
}

/// Whether nobody holds the Lease now: no holder, or a holder that stopped renewing it.
fn free(spec: &LeaseSpec, now: chrono::DateTime<Utc>) -> bool {
    let Some(holder) = spec.holder_identity.as_deref() else {
        return true;
    };
    if holder.is_empty() {
        return true;
    }
    let Some(renewed) = &spec.renew_time else {
        return true;
    };
    let duration = chrono::Duration::seconds(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    renewed.0 + duration < now
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed_ago: Option<i64>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(Into::into),
            lease_duration_seconds: Some(15),
            renew_time: renewed_ago.map(|s| MicroTime(Utc::now() - chrono::Duration::seconds(s))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_free_when_unheld_or_expired_and_taken_while_renewed() {
        let now = Utc::now();
        assert!(free(&spec(None, Some(1)), now));
        assert!(free(&spec(Some(""), Some(1)), now));
        assert!(free(&spec(Some("a"), None), now));
        assert!(free(&spec(Some("a"), Some(16)), now));
        assert!(!free(&spec(Some("a"), Some(5)), now));
    }
}
