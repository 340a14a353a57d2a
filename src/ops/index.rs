//! Joining, padding and indexing ops.
