//! One module per `bnas` subcommand.

pub mod bench;
pub mod eval;
pub mod export;
pub mod search;
pub mod summary;
pub mod train;
