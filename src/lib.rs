#![warn(missing_docs)]
//! archgate: a Kubernetes admission webhook that places pods on nodes whose CPU architecture and
//! GPU vendor can run their images, driven by a TOML policy.
//!
//! The flow is one straight line: [`admission`] decodes a review, [`platforms`] resolves each
//! image, [`policy::evaluate`] decides (a pure function), and [`admission::patch`] encodes the
//! JSON Patch. [`server`] is the HTTPS shell around it; [`cli`] the command line.

pub mod admission;
pub mod arch;
pub mod audit;
pub mod cli;
pub mod cluster;
pub mod controller;
pub mod image;
pub mod inventory;
pub mod logging;
pub mod namespace;
pub mod platforms;
pub mod pod;
pub mod policy;
pub mod registry;
pub mod server;
pub mod text;
pub mod workload;
