//! The OpenAI-compatible proxy: `POST /v1/chat/completions` as a domain flow ([`chat`]), the
//! fallback chain across models and tiers ([`chain`]), the upstream HTTP client ([`upstream`],
//! built with the `upstream` feature) and the shared circuit breakers ([`breaker`]).
//!
//! May import: [`crate::routing`], [`crate::ledger`].

pub mod breaker;
#[cfg(feature = "upstream")]
pub mod chain;
#[cfg(feature = "upstream")]
pub mod chat;
#[cfg(feature = "upstream")]
pub mod upstream;
