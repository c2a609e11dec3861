//! Relocation naming: where an image of a bundle goes in the target registry. The rule lives
//! in [`kantup_bundle::relocation`] (so that the chart's values are rewritten by the same
//! rule the images are pushed by); it is re-exported here.

pub use kantup_bundle::relocation::{RelocationRule, repository_under};
