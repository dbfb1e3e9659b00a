//! placeholder, see lib.rs
