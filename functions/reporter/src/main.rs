//! The reporter Lambda binary (`bootstrap`): settings from the environment, the DynamoDB client
//! built once, then the Lambda runtime loop over [`tierwise_reporter::App::handle`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::{Error, service_fn};
use tierwise::serve::settings::ReporterSettings;
use tierwise_reporter::App;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Error> {
    let started = Instant::now();
    let settings = ReporterSettings::from_env()?;
    let init = async { Ok(App::init(&settings).await) };
    tierwise::serve::lambda::start(
        "reporter",
        &settings.log_level,
        started,
        init,
        |app| async move {
            lambda_http::run(service_fn(move |req| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(app.handle(req).await) }
            }))
            .await
        },
    )
}
