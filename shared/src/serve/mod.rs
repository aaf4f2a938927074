//! What the Lambdas share at their edge: deployment settings read once at init ([`settings`]),
//! the HTTP API's shapes and OpenAI-style error bodies ([`api`]), metrics as EMF log lines
//! ([`metrics`]) and the Lambda glue ([`lambda`], built with the `lambda` feature).
//!
//! May import: [`crate::routing`].

pub mod api;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod metrics;
pub mod settings;
