//! One module per `bnas` subcommand.

pub mod summary;
