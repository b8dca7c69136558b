//! CPU architectures as Kubernetes names them (`kubernetes.io/arch`), and small sets of them.
//!
//! The decision intersects architecture sets for every container of every pod, so a set is a
//! bitmask: intersection is one instruction and nothing is allocated on the admission path.

use std::borrow::Cow;
use std::fmt;

/// An architecture a node can report in its `kubernetes.io/arch` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// `amd64`: 64-bit x86 (`x86_64`).
    Amd64,
    /// `arm64`: 64-bit Arm (`aarch64`).
    Arm64,
    /// `arm`: 32-bit Arm; images tell `v6` from `v7` by platform variant.
    Arm,
    /// `386`: 32-bit x86 (`i386`/`i686`).
    I386,
    /// `ppc64le`: little-endian 64-bit POWER.
    Ppc64le,
    /// `s390x`: IBM Z.
    S390x,
    /// `riscv64`: 64-bit RISC-V.
    Riscv64,
    /// `mips64le`: little-endian 64-bit MIPS.
    Mips64le,
    /// `loong64`: 64-bit LoongArch.
    Loong64,
}

impl Arch {
    /// Every architecture archgate knows, in the order sets are displayed.
    pub const ALL: [Arch; 9] = [
        Arch::Amd64,
        Arch::Arm64,
        Arch::Arm,
        Arch::I386,
        Arch::Ppc64le,
        Arch::S390x,
        Arch::Riscv64,
        Arch::Mips64le,
        Arch::Loong64,
    ];

    /// The name used in node labels and image platforms.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Arm => "arm",
            Arch::I386 => "386",
            Arch::Ppc64le => "ppc64le",
            Arch::S390x => "s390x",
            Arch::Riscv64 => "riscv64",
            Arch::Mips64le => "mips64le",
            Arch::Loong64 => "loong64",
        }
    }

    /// Parses a normalised architecture name (as in a node label or a normalised platform).
    pub fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// A known name close to `name`, for "did you mean" hints on common aliases and typos.
    pub fn suggest(name: &str) -> Option<Arch> {
        let lower = name.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "aarch64" | "arm64v8" | "armv8" => Some(Arch::Arm64),
            "x86_64" | "x86-64" | "x64" | "amd" => Some(Arch::Amd64),
            "armhf" | "armel" | "armv7" | "armv7l" | "armv6" => Some(Arch::Arm),
            "i386" | "i686" | "x86" => Some(Arch::I386),
            _ => Arch::from_name(&lower),
        };
        alias.or_else(|| {
            Arch::ALL
                .into_iter()
                .find(|a| crate::text::edit_distance(a.as_str(), &lower) <= 2)
        })
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of architectures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ArchSet(u16);

impl ArchSet {
    /// No architecture: what a pod gets when its images share none.
    pub const EMPTY: ArchSet = ArchSet(0);
    /// Every architecture in [`Arch::ALL`].
    pub const ALL: ArchSet = ArchSet((1 << Arch::ALL.len()) - 1);

    /// The set holding exactly `archs`; duplicates are harmless.
    pub fn of(archs: impl IntoIterator<Item = Arch>) -> ArchSet {
        archs.into_iter().fold(ArchSet::EMPTY, |s, a| s.with(a))
    }

    /// This set plus `arch`.
    pub fn with(self, arch: Arch) -> ArchSet {
        ArchSet(self.0 | arch.bit())
    }

    /// Whether `arch` is in the set.
    pub fn contains(self, arch: Arch) -> bool {
        self.0 & arch.bit() != 0
    }

    /// The architectures in both sets: where containers that must share a node can all run.
    pub fn intersect(self, other: ArchSet) -> ArchSet {
        ArchSet(self.0 & other.0)
    }

    /// The architectures in either set.
    pub fn union(self, other: ArchSet) -> ArchSet {
        ArchSet(self.0 | other.0)
    }

    /// The architectures in this set but not in `other`.
    pub fn minus(self, other: ArchSet) -> ArchSet {
        ArchSet(self.0 & !other.0)
    }

    /// Whether the set holds no architecture.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every architecture in this set is also in `other` (true for the empty set).
    pub fn is_subset(self, other: ArchSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The members in display order (that of [`Arch::ALL`]).
    pub fn iter(self) -> impl Iterator<Item = Arch> {
        Arch::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    /// Names in display order, for label values and patches.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Arch::as_str).collect()
    }

    /// The names joined with commas ("amd64,arm64"), as logs and audit annotations carry them;
    /// borrowed when there is at most one, which is most pods.
    pub fn joined(self) -> Cow<'static, str> {
        let mut names = self.iter().map(Arch::as_str);
        match (names.next(), names.next()) {
            (None, _) => Cow::Borrowed(""),
            (Some(one), None) => Cow::Borrowed(one),
            _ => Cow::Owned(self.names().join(",")),
        }
    }
}

impl fmt::Display for ArchSet {
    /// "amd64, arm64", or "none" for the empty set, as messages want it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, a) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(a.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for ArchSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

impl FromIterator<Arch> for ArchSet {
    fn from_iter<I: IntoIterator<Item = Arch>>(iter: I) -> Self {
        ArchSet::of(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_follow_set_algebra() {
        let a = ArchSet::of([Arch::Amd64, Arch::Arm64]);
        let b = ArchSet::of([Arch::Arm64, Arch::Arm]);
        assert_eq!(a.intersect(b), ArchSet::of([Arch::Arm64]));
        assert_eq!(a.union(b).names(), ["amd64", "arm64", "arm"]);
        assert_eq!(a.minus(b), ArchSet::of([Arch::Amd64]));
        assert!(ArchSet::of([Arch::Arm64]).is_subset(a));
        assert!(!b.is_subset(a));
        assert!(ArchSet::EMPTY.is_subset(a));
        assert_eq!(ArchSet::ALL.iter().count(), Arch::ALL.len());
    }

    #[test]
    fn names_round_trip_and_aliases_suggest_the_kubernetes_name() {
        for a in Arch::ALL {
            assert_eq!(Arch::from_name(a.as_str()), Some(a));
        }
        assert_eq!(Arch::from_name("aarch64"), None);
        assert_eq!(Arch::suggest("aarch64"), Some(Arch::Arm64));
        assert_eq!(Arch::suggest("x86_64"), Some(Arch::Amd64));
        assert_eq!(Arch::suggest("amd46"), Some(Arch::Amd64));
        assert_eq!(Arch::suggest("sparc"), None);
    }

    #[test]
    fn display_lists_names_or_none() {
        assert_eq!(ArchSet::EMPTY.to_string(), "none");
        assert_eq!(
            ArchSet::of([Arch::Arm64, Arch::Amd64]).to_string(),
            "amd64, arm64"
        );
    }

    #[test]
    fn joined_names_are_comma_separated_and_borrowed_when_single() {
        assert_eq!(ArchSet::EMPTY.joined(), "");
        let one = ArchSet::of([Arch::Arm64]).joined();
        assert!(matches!(one, Cow::Borrowed("arm64")), "{one:?}");
        assert_eq!(
            ArchSet::of([Arch::Arm, Arch::Amd64, Arch::Arm64]).joined(),
            "amd64,arm64,arm"
        );
    }
}
