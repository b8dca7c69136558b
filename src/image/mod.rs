//! Image references and platforms, normalised the way Docker and containerd normalise them.

pub mod platform;
pub mod reference;

pub use platform::Platform;
pub use reference::{ImageRef, ReferenceError};
