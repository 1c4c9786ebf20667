//! The `dipper` command: real-time machine learning on Apache Kafka.
//!
//! Subcommands live in their own modules; this file only parses the command line and maps errors to exit codes
//! (0 success, 1 failure, 2 usage error).

mod demo;
mod export;
mod logcmd;
mod model;
mod predict;
mod run;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dipper",
    version,
    about = "Real-time machine learning on Apache Kafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score a JSON-lines file or stream with a model, one output line per input event.
    Predict(predict::PredictArgs),
    /// Train a model (gbm, rf, tree, glm, nb, mlp) on a file or a Kafka topic, validate it, and write it.
    Train(Box<train::TrainArgs>),
    /// Run a scoring pipeline (PIPELINE.yaml): topic in, model, predictions out, on Kafka or the embedded log.
    Run(run::RunArgs),
    /// The whole loop on synthetic card transactions: train a fraud model, score a live stream, watch it.
    Demo(demo::DemoArgs),
    /// Append JSON lines to a topic of the embedded log.
    Produce(logcmd::ProduceArgs),
    /// Print the records of a topic of the embedded log.
    Consume(logcmd::ConsumeArgs),
    /// The model registry on the log: publish, list, show, promote, rollback, challenge, archive, delete.
    Model(model::ModelArgs),
    /// Write a native model (from `dipper train`) as PMML 4.4, for other tools to score.
    Export(export::ExportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Predict(args) => predict::run(args),
        Command::Train(args) => train::run(*args),
        Command::Run(args) => run::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Produce(args) => logcmd::produce(args),
        Command::Consume(args) => logcmd::consume(args),
        Command::Model(args) => model::run(args),
        Command::Export(args) => export::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dipper: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
