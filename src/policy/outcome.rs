//! The outcome of a review or an object, one word for metrics, logs, audit annotations, `check`
//! and `archgate test`.

/// What happened to one review or object, as metrics, logs, audit annotations, `check` and
/// `archgate test` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Patch,
    /// Admitted behind archgate's scheduling gate.
    Gate,
    Deny,
    /// Allowed, with warnings.
    Warn,
    /// Nothing for archgate to decide (an UPDATE, a kind without pods).
    Skip,
    /// A kind archgate does not handle, allowed with a warning.
    Unhandled,
}

impl Outcome {
    /// Every outcome, in the order metrics list them.
    pub const ALL: [Outcome; 7] = [
        Outcome::Allow,
        Outcome::Patch,
        Outcome::Gate,
        Outcome::Deny,
        Outcome::Warn,
        Outcome::Skip,
        Outcome::Unhandled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Patch => "patch",
            Outcome::Gate => "gate",
            Outcome::Deny => "deny",
            Outcome::Warn => "warn",
            Outcome::Skip => "skip",
            Outcome::Unhandled => "unhandled",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so `{:<5}` lines outcomes up in `check`'s text output.
        f.pad(self.as_str())
    }
}
