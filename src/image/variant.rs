//! CPU variants (`v3` of amd64, `v7` of arm, `v8.2` of arm64) and their order: a CPU of a
//! variant runs code built for that variant and every lower one of its architecture.

/// The rank of a variant, for comparison: "v3" is (3, 0), "v8.2" (8, 2). `None` for what is
/// not a numbered variant ("sve", ""), which archgate cannot order and does not check.
pub fn variant_rank(variant: &str) -> Option<(u32, u32)> {
    let digits = variant.strip_prefix('v')?;
    let (major, minor) = digits.split_once('.').unwrap_or((digits, "0"));
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Whether a CPU of variant `node` runs code built for variant `image`; `None` when either
/// cannot be ordered.
pub fn runs_variant(node: &str, image: &str) -> Option<bool> {
    Some(variant_rank(node)? >= variant_rank(image)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_order_by_number_and_minor() {
        assert_eq!(variant_rank("v3"), Some((3, 0)));
        assert_eq!(variant_rank("v8.2"), Some((8, 2)));
        assert_eq!(variant_rank("sve"), None);
        assert_eq!(variant_rank("v"), None);
        assert_eq!(runs_variant("v4", "v3"), Some(true));
        assert_eq!(runs_variant("v2", "v3"), Some(false));
        assert_eq!(runs_variant("v8.2", "v8.1"), Some(true));
        assert_eq!(runs_variant("v6", "v7"), Some(false));
        assert_eq!(runs_variant("v3", "sve"), None);
    }
}
