//! Image references and platforms, normalised the way Docker and containerd normalise them.

pub mod platform;
pub mod reference;
pub mod variant;

pub use platform::Platform;
pub use reference::{ImageRef, ReferenceError};
pub use variant::{runs_variant, variant_rank};
