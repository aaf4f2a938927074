//! Who may call, as which tenant, and how much they may spend.
//!
//! Lives here: API keys bound to one tenant and stored only as a hash ([`key`]), the port the
//! keys and their counters are kept behind with its memory fake ([`store`]), and the checks a
//! request passes before any provider is called — authentication with a bounded cache, the
//! tenant, allowed models and tiers, requests per minute, and budgets reserved atomically
//! ([`guard`]).
//!
//! May import: [`crate::routing`] (tiers), [`crate::ledger`] (money, time, store errors).

pub mod admin;
pub mod guard;
pub mod key;
pub mod store;
