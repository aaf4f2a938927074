//! The reporter Lambda binary (`bootstrap`): settings from the environment, the DynamoDB client
//! built once, then the Lambda runtime loop over [`tierwise_reporter::App::handle`].

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, service_fn};
use tierwise::serve::settings::ReporterSettings;
use tierwise_reporter::App;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Error> {
    let settings = ReporterSettings::from_env()?;
    tierwise::serve::lambda::init_logging(&settings.log_level);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = Arc::new(App::init(&settings).await);
        lambda_http::run(service_fn(move |req| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.handle(req).await) }
        }))
        .await
    })
}
