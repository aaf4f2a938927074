//! `tierwise`: the command line — route a query, embed a text, evaluate the router on a
//! routing benchmark, and write the classifier's training features.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tierwise::config::{PoolConfig, Tier};
use tierwise::router::{AllHealthy, RouteRequest, Router};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tierwise",
    version,
    about = "Route each LLM query to the cheapest model tier that answers it well"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `tierwise report --format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Table,
    Html,
}

#[derive(Subcommand)]
enum Command {
    /// Route a query with the bundled model and pool; print the decision JSON.
    Route {
        /// The query text.
        query: String,
        /// A pool file (TOML) instead of the bundled default pool.
        #[arg(long)]
        pool: Option<PathBuf>,
        /// Confidence needed to stay on the predicted tier (default: the pool's).
        #[arg(long)]
        require_confidence: Option<f64>,
        /// Lowest tier allowed.
        #[arg(long)]
        min_tier: Option<Tier>,
        /// Highest tier allowed.
        #[arg(long)]
        max_tier: Option<Tier>,
        /// Tenant to attribute the query to.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Evaluate the router on a routing-benchmark JSONL file (RouteLLM metrics, or --tiers mix).
    Eval {
        /// Routing-benchmark JSONL.
        #[arg(long)]
        data: PathBuf,
        /// The weak model (its scores in the data).
        #[arg(long, requires = "strong", conflicts_with = "tiers")]
        weak: Option<String>,
        /// The strong model.
        #[arg(long, requires = "weak")]
        strong: Option<String>,
        /// `tier1=MODEL,tier2=MODEL,tier3=MODEL`: report the routed mix's quality and cost.
        #[arg(long, required_unless_present = "weak")]
        tiers: Option<String>,
        /// Write `{"id", "score"}` per prompt here.
        #[arg(long)]
        scores_out: Option<PathBuf>,
        /// A pool file (TOML) instead of the bundled default pool.
        #[arg(long)]
        pool: Option<PathBuf>,
        /// Confidence threshold (default: the pool's).
        #[arg(long)]
        threshold: Option<f64>,
        /// Switch the rules off (to measure what they add).
        #[arg(long)]
        no_rules: bool,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Print a text's MiniLM embedding (384 floats, JSON array).
    Embed {
        /// The text to embed.
        text: String,
    },
    /// Write the classifier's feature vectors of a routing-benchmark JSONL file (training input).
    Features {
        /// Routing-benchmark JSONL (`{"id", "prompt", ...}` per line).
        #[arg(long)]
        data: std::path::PathBuf,
        /// Output JSONL: `{"id", "features": [...]}` per line.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// Print the classifier's feature names (JSON array), in vector order.
    #[command(hide = true)]
    FeatureNames,
    /// The cost report (spend, savings against the baseline, tier mix) for a date range: from
    /// the DynamoDB rollups (`--table`, or TIERWISE_TABLE; AWS_ENDPOINT_URL works) or from a
    /// DynamoDB export copied to a local folder (`--export DIR`).
    Report {
        /// First day, YYYY-MM-DD (UTC).
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD (UTC), inclusive.
        #[arg(long)]
        to: String,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Add per-group lines: day, tier or model.
        #[arg(long)]
        group_by: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Write the report here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A DynamoDB export folder (AWSDynamoDB/<export-id>/manifest-summary.json, ...).
        #[arg(long, conflicts_with = "table")]
        export: Option<PathBuf>,
        /// The DynamoDB table (default: TIERWISE_TABLE).
        #[arg(long)]
        table: Option<String>,
    },
    /// Create the cost table and the queues the router writes to (local stack, e.g. moto via
    /// AWS_ENDPOINT_URL); print their names as TIERWISE_* environment lines.
    #[cfg(feature = "aws")]
    SetupLocal {
        /// Table name.
        #[arg(long, default_value = "tierwise-costs")]
        table: String,
        /// Prefix of the queue names.
        #[arg(long, default_value = "tierwise")]
        queue_prefix: String,
    },
    /// Deliver what the router parked on its fallback queue (records and shadow samples),
    /// with the router's settings from the TIERWISE_* environment.
    #[cfg(feature = "aws")]
    Redrive {
        /// Stop after this many messages.
        #[arg(long, default_value_t = 100_000)]
        max_messages: u64,
    },
    /// Export shadow-evaluation verdicts as training labels (routing-benchmark JSONL: `scores`
    /// of the routed and reference models) from the table, for `tierwise train` on a team's
    /// own traffic. Reads with a filtered Scan (needs dynamodb:Scan).
    #[cfg(feature = "aws")]
    Labels {
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// Last day, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        #[arg(long)]
        tenant: Option<String>,
        /// The DynamoDB table (default: TIERWISE_TABLE).
        #[arg(long)]
        table: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Route {
            query,
            pool,
            require_confidence,
            min_tier,
            max_tier,
            tenant,
        } => {
            let router = Router::with_pool(load_pool(pool.as_deref())?)?;
            let req = RouteRequest {
                query: Some(query),
                require_confidence,
                min_tier,
                max_tier,
                tenant,
                ..RouteRequest::default()
            };
            match router.route(&req, &AllHealthy) {
                Ok(d) => println!("{}", serde_json::to_string_pretty(&d)?),
                Err(e) => {
                    eprintln!("tierwise route: {e}");
                    std::process::exit(2);
                }
            }
        }
        Command::Eval {
            data,
            weak,
            strong,
            tiers,
            scores_out,
            pool,
            threshold,
            no_rules,
            threads,
        } => {
            let pool = load_pool(pool.as_deref())?;
            let threshold = threshold.unwrap_or(pool.confidence_threshold());
            anyhow::ensure!(
                (0.0..=1.0).contains(&threshold),
                "--threshold must be between 0 and 1"
            );
            // Check the cheap arguments before loading the model.
            let map = tiers
                .as_deref()
                .map(tierwise::evaluate::parse_tier_map)
                .transpose()?;
            let rows = tierwise::dataset::read_jsonl(&data)?;
            let mut router = Router::with_pool(pool.clone())?;
            if no_rules {
                router = router.with_rules(tierwise::rules::Rules::disabled());
            }
            if let (Some(weak), Some(strong)) = (weak, strong) {
                let r = tierwise::evaluate::weak_strong(
                    &router, &rows, &weak, &strong, threshold, threads,
                )?;
                if let Some(path) = scores_out {
                    write_scores(&path, &r.scores)?;
                }
                eprintln!(
                    "{}: {} prompts ({} skipped: no score for {weak} or {strong}), {} decided by rules; \
                     ECE of P(tier1 wrong) vs {weak} wrong: {:.4}",
                    data.display(),
                    r.metrics.n,
                    r.skipped,
                    r.rule_decided,
                    r.ece_weak_wrong
                );
                eprintln!(
                    "random router (mean of 20 seeds): {}",
                    serde_json::to_string(&r.random)?
                );
                println!("{}", serde_json::to_string(&r.metrics)?);
            } else if let Some(map) = map {
                let r = tierwise::evaluate::tiers(&router, &pool, &rows, &map, threshold, threads)?;
                println!("{}", serde_json::to_string(&r)?);
            }
        }
        Command::Embed { text } => {
            let embedder = tierwise::embed::Embedder::bundled().context("loading the embedder")?;
            let q = embedder.embed(&text).context("embedding the text")?;
            println!("{}", serde_json::to_string(&q.embedding.0)?);
        }
        Command::Features { data, out, threads } => write_features(&data, &out, threads)?,
        Command::FeatureNames => println!(
            "{}",
            serde_json::to_string(&tierwise::features::feature_names())?
        ),
        Command::Report {
            from,
            to,
            tenant,
            group_by,
            format,
            out,
            export,
            table,
        } => {
            let params = tierwise::report::ReportParams::parse(
                Some(&from),
                Some(&to),
                tenant.as_deref(),
                group_by.as_deref(),
            )?;
            let mut builder = tierwise::report::ReportBuilder::new(&params);
            if let Some(dir) = export {
                let summary = tierwise::export::read_export(&dir, |rec| {
                    builder.add(&tierwise::records::RollupRow::of_record(&rec));
                })?;
                eprintln!(
                    "export {}: {} files, {} items, {} cost records",
                    summary.export_id, summary.files, summary.items, summary.cost_records
                );
            } else {
                read_table_rollups(&params, table, &mut builder)?;
            }
            let report = builder.finish();
            let text = match format {
                Format::Json => serde_json::to_string_pretty(&report)?,
                Format::Table => tierwise::report::render_table(&report),
                Format::Html => tierwise::report::render_html(&report),
            };
            match out {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{text}"),
            }
        }
        #[cfg(feature = "aws")]
        Command::SetupLocal {
            table,
            queue_prefix,
        } => aws_cmd::setup_local(&table, &queue_prefix)?,
        #[cfg(feature = "aws")]
        Command::Redrive { max_messages } => aws_cmd::redrive(max_messages)?,
        #[cfg(feature = "aws")]
        Command::Labels {
            from,
            to,
            tenant,
            table,
            out,
        } => aws_cmd::labels(&from, &to, tenant.as_deref(), table, out)?,
    }
    Ok(())
}

/// The commands that talk to AWS (or moto): built with the `aws` feature.
#[cfg(feature = "aws")]
mod aws_cmd {
    use tierwise::aws::{self, dynamo::DynamoCostStore, setup, sqs::SqsQueue};
    use tierwise::settings::{AwsCallSettings, RouterSettings};

    pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
        Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?)
    }

    pub fn setup_local(table: &str, prefix: &str) -> anyhow::Result<()> {
        runtime()?.block_on(async {
            let sdk = aws::sdk_config(&AwsCallSettings::default()).await;
            let ddb = aws::dynamodb_client(&sdk);
            let sqs = aws::sqs_client(&sdk);
            let r = setup::create_router_resources(&ddb, &sqs, table, prefix).await?;
            println!("TIERWISE_TABLE={}", r.table);
            println!("TIERWISE_SHADOW_QUEUE_URL={}", r.shadow_queue_url);
            println!("TIERWISE_FALLBACK_QUEUE_URL={}", r.fallback_queue_url);
            Ok(())
        })
    }

    pub fn labels(
        from: &str,
        to: &str,
        tenant: Option<&str>,
        table: Option<String>,
        out: Option<std::path::PathBuf>,
    ) -> anyhow::Result<()> {
        use anyhow::Context;
        use std::io::Write;
        let table = match table {
            Some(t) => t,
            None => {
                std::env::var("TIERWISE_TABLE").context("give --table or set TIERWISE_TABLE")?
            }
        };
        runtime()?.block_on(async {
            let sdk = aws::sdk_config(&AwsCallSettings {
                operation_timeout: std::time::Duration::from_secs(30),
                attempt_timeout: std::time::Duration::from_secs(10),
                max_attempts: 3,
            })
            .await;
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let summary = aws::evaluations::export_labels(
                &aws::dynamodb_client(&sdk),
                &table,
                from,
                to,
                tenant,
                &mut w,
            )
            .await?;
            w.flush()?;
            eprintln!("{}", serde_json::to_string(&summary)?);
            Ok(())
        })
    }

    pub fn redrive(max_messages: u64) -> anyhow::Result<()> {
        let settings = RouterSettings::from_env()?;
        runtime()?.block_on(async {
            let sdk = aws::sdk_config(&settings.aws).await;
            let ddb = aws::dynamodb_client(&sdk);
            let sqs = aws::sqs_client(&sdk);
            let store = DynamoCostStore::new(
                ddb,
                &settings.table,
                settings.rollup_shards,
                settings.record_ttl_days,
            );
            let fallback = SqsQueue::new(sqs.clone(), &settings.fallback_queue_url);
            let shadow = SqsQueue::new(sqs, &settings.shadow_queue_url);
            let report = aws::sqs::redrive(&fallback, &store, &shadow, max_messages).await?;
            println!(
                "{}",
                serde_json::json!({
                    "records_written": report.records_written,
                    "records_duplicate": report.records_duplicate,
                    "samples_sent": report.samples_sent,
                    "left": report.left,
                })
            );
            anyhow::ensure!(
                report.left == 0,
                "{} messages could not be delivered; they stay on the queue",
                report.left
            );
            Ok(())
        })
    }
}

/// Adds the rollups of the report's days from DynamoDB.
#[cfg(feature = "aws")]
fn read_table_rollups(
    params: &tierwise::report::ReportParams,
    table: Option<String>,
    builder: &mut tierwise::report::ReportBuilder,
) -> anyhow::Result<()> {
    let table = match table {
        Some(t) => t,
        None => std::env::var("TIERWISE_TABLE")
            .context("give --table or set TIERWISE_TABLE (or use --export DIR)")?,
    };
    let rows = aws_cmd::runtime()?.block_on(async {
        let sdk = tierwise::aws::sdk_config(&tierwise::settings::AwsCallSettings {
            operation_timeout: std::time::Duration::from_secs(30),
            attempt_timeout: std::time::Duration::from_secs(10),
            max_attempts: 3,
        })
        .await;
        let client = tierwise::aws::dynamodb_client(&sdk);
        let days = params.day_strings();
        let rows = tierwise::aws::dynamo::read_rollups(
            &client,
            &table,
            &days,
            params.tenant.as_deref(),
            8,
        )
        .await?;
        let verdicts = tierwise::aws::evaluations::read_eval_rollups(
            &client,
            &table,
            &days,
            params.tenant.as_deref(),
        )
        .await?;
        anyhow::Ok((rows, verdicts))
    })?;
    let (rows, verdicts) = rows;
    for row in &rows {
        builder.add(row);
    }
    for row in &verdicts {
        builder.add_evaluations(row);
    }
    Ok(())
}

/// Without the `aws` feature only exports can be read.
#[cfg(not(feature = "aws"))]
fn read_table_rollups(
    _params: &tierwise::report::ReportParams,
    _table: Option<String>,
    _builder: &mut tierwise::report::ReportBuilder,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "this tierwise was built without AWS support: use --export DIR, or build with `--features aws`"
    )
}

fn load_pool(path: Option<&std::path::Path>) -> anyhow::Result<PoolConfig> {
    Ok(match path {
        Some(p) => PoolConfig::load(p)?,
        None => PoolConfig::bundled()?,
    })
}

fn write_scores(path: &std::path::Path, scores: &[(String, f64)]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    for (id, score) in scores {
        writeln!(w, "{}", serde_json::json!({"id": id, "score": score}))?;
    }
    w.flush()?;
    Ok(())
}

fn write_features(
    data: &std::path::Path,
    out: &std::path::Path,
    threads: usize,
) -> anyhow::Result<()> {
    use std::io::Write;
    let rows = tierwise::dataset::read_jsonl(data)?;
    let embedder = tierwise::embed::Embedder::bundled().context("loading the embedder")?;
    let lines = tierwise::parallel::try_map(&rows, threads, |r| {
        let f = tierwise::features::featurize(&embedder, &r.prompt)
            .with_context(|| format!("prompt {}", r.id))?;
        Ok::<_, anyhow::Error>(serde_json::json!({"id": r.id, "features": f}).to_string())
    })?;
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    for line in &lines {
        writeln!(w, "{line}")?;
    }
    w.flush()?;
    eprintln!("{} feature vectors -> {}", rows.len(), out.display());
    Ok(())
}
