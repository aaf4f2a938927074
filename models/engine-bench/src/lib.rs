//! Engine comparison support.
