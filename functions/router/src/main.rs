//! The router Lambda binary (`bootstrap`): settings from the environment, everything built
//! once at init, then the Lambda runtime loop over [`tierwise_router::App::handle`] (or, with
//! `TIERWISE_RESPONSE_STREAMING=true`, [`tierwise_router::App::handle_streaming`]).

#![recursion_limit = "256"]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::{Error, service_fn};
use tierwise::serve::settings::RouterSettings;
use tierwise_router::App;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Error> {
    let started = Instant::now();
    let settings = RouterSettings::from_env()?;
    tierwise::serve::lambda::init_logging(&settings.log_level);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = match App::init(&settings, started).await {
            Ok(app) => Arc::new(app),
            Err(e) => {
                tracing::error!(error = %e, "router init failed");
                return Err(Error::from(e.to_string()));
            }
        };
        tracing::info!(
            init_ms = started.elapsed().as_secs_f64() * 1e3,
            "router ready"
        );
        if settings.proxy.response_streaming {
            // A function URL with InvokeMode RESPONSE_STREAM: events reach the caller as
            // the provider sends them.
            lambda_http::run_with_streaming_response(service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.handle_streaming(req).await) }
            }))
            .await
        } else {
            lambda_http::run(service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.handle(req).await) }
            }))
            .await
        }
    })
}
