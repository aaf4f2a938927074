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
    let log_level = settings.log_level.clone();
    let init = App::init(settings);
    tierwise::serve::lambda::start("evaluator", &log_level, started, init, |app| async move {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
            let app = Arc::clone(&app);
            async move { app.handle(event.payload).await.map_err(Error::from) }
        }))
        .await
    })
}
