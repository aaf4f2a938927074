//! `tierwise`: the command line (embed now; route, eval, report and serve build on it).

use anyhow::Context;
use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "tierwise", version, about = "Route each LLM query to the cheapest model tier that answers it well")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a text's MiniLM embedding (384 floats, JSON array).
    Embed {
        /// The text to embed.
        text: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Embed { text } => {
            let embedder = tierwise::embed::Embedder::bundled().context("loading the embedder")?;
            let q = embedder.embed(&text).context("embedding the text")?;
            println!("{}", serde_json::to_string(&q.embedding.0)?);
        }
    }
    Ok(())
}
