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
    let streaming = settings.proxy.response_streaming;
    let init = App::init(&settings, started);
    tierwise::serve::lambda::start(
        "router",
        &settings.log_level,
        started,
        init,
        |app| async move {
            if streaming {
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
        },
    )
}
