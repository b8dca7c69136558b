//! The Kubernetes API shell: a client from a kubeconfig or the in-cluster service account, a
//! watch of Nodes that keeps the [`Inventory`](crate::inventory::Inventory) current, and watches
//! of pull Secrets and ServiceAccounts behind [`PullSecrets`](crate::platforms::PullSecrets),
//! and a watch of bound pods for the misplaced-pods gauge ([`pods`]).
//!
//! Everything here is I/O around pure pieces: the node conversion lives in
//! [`inventory::node`](crate::inventory::node), the decision never calls the API server, and
//! nothing is fetched per admission request: each watch keeps a local copy that requests read.

pub mod client;
pub mod events;
pub mod namespaces;
pub mod nodes;
pub mod pods;
pub mod secrets;

pub use client::{ClientError, ConfigOrigin, Connection};
pub use nodes::{NodeProjection, NodeWatch};
pub use secrets::WatchedPullSecrets;
