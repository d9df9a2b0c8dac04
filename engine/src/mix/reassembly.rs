//! (being written; see /work/spec)
