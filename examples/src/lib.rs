//! Holder for the kantup examples; see `examples/*.rs`.
