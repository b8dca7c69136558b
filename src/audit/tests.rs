//! Unit tests of the audit rules, on plain values.
