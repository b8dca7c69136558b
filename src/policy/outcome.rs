//! The outcome of a review or an object, one word for metrics, logs, audit annotations, `check`
//! and `archgate test`.

/// What happened to one review or object, as metrics, logs, audit annotations, `check` and
/// `archgate test` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Admitted as it is.
    Allow,
    /// Admitted with a patch that places it.
    Patch,
    /// Admitted behind archgate's scheduling gate.
    Gate,
    /// Refused.
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

    /// The word metrics labels, logs, reports and test suites use.
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
