//! What the Lambdas share at their edge: deployment settings read once at init ([`settings`]),
//! the HTTP API's shapes ([`api`]), every error it answers with and the one mapping of errors
//! to HTTP statuses and OpenAI-style bodies ([`errors`]), metrics as EMF log lines and their
//! emitter ([`metrics`]) and the Lambda glue ([`lambda`], built with the `lambda` feature).
//!
//! May import: the folders below it (it maps [`crate::routing`]'s and [`crate::proxy`]'s
//! errors); none of them imports it.

pub mod api;
pub mod errors;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod metrics;
pub mod settings;
