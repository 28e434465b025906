//! Font.
