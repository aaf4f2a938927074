//! The evaluator Lambda binary (`bootstrap`): settings from the environment, everything built
//! once at init, then the Lambda runtime loop over [`tierwise_evaluator::App::handle`].

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use tierwise::shadow::settings::EvaluatorSettings;
use tierwise_evaluator::App;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Error> {
    let started = Instant::now();
    let settings = EvaluatorSettings::from_env()?;
    tierwise::serve::lambda::init_logging(&settings.log_level);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = match App::init(settings).await {
            Ok(app) => Arc::new(app),
            Err(e) => {
                tracing::error!(error = %e, "evaluator init failed");
                return Err(Error::from(e.to_string()));
            }
        };
        tracing::info!(
            init_ms = started.elapsed().as_secs_f64() * 1e3,
            "evaluator ready"
        );
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
            let app = Arc::clone(&app);
            async move { app.handle(event.payload).await.map_err(Error::from) }
        }))
        .await
    })
}
