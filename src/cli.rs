//! The command line: argument parsing and one function per command.

use crate::compile::{self, Compilation, Request};
use crate::targets::{self, Format, TargetOptions, cloud_init::Provider, packer::SourceName};
use crate::{bundle, modules, output, profile};
use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Exit codes: 0 success; 1 the input is invalid or an output could not be written; 2 usage error.

Examples:
  phanes render --profile web > setup.sh
  phanes render --profile web --out out/web
  phanes render --format cloud-init --provider hetzner > user-data.yaml
  phanes plan --profile minimal --set baseline.hostname=web1";

/// Compiles a server profile into a bash bundle, a #cloud-config and a Packer fragment.
#[derive(Debug, Parser)]
#[command(name = "phanes", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Show the compiler's own diagnostics (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Render the artifacts: setup.sh to stdout, or every artifact with --out.
    Render(RenderArgs),
    /// List the available profiles or modules.
    List {
        #[arg(value_enum)]
        what: ListWhat,
        #[command(flatten)]
        input: InputArgs,
    },
    /// Show the ordered steps a profile would run, and what each one checks.
    Plan(InputArgs),
    /// Check the config and profile without writing anything.
    Validate(InputArgs),
    /// Explain a module: its options with types and defaults, and the steps it runs.
    Explain {
        /// Module name (see `phanes list modules`)
        module: String,
    },
    /// Print the JSON Schema of phanes.yaml (for editors: yaml-language-server).
    Schema,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ListWhat {
    Profiles,
    Modules,
}

/// Where the input comes from; shared by every command.
#[derive(Debug, Args)]
struct InputArgs {
    /// Config file [default: phanes.yaml if it exists, else the built-in defaults]
    #[arg(short, long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Profile to use [default: the config's `profile`, else minimal]
    #[arg(short, long)]
    profile: Option<String>,
    /// Folder with your own profiles [default: profiles/ next to the config]
    #[arg(long, value_name = "DIR")]
    profiles_dir: Option<PathBuf>,
    /// Override a config value, e.g. --set swap.size=2G (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Add modules to the profile's (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "MODULES")]
    modules: Vec<String>,
    /// Leave modules out (comma-separated)
    #[arg(long = "skip-module", value_delimiter = ',', value_name = "MODULES")]
    skip_modules: Vec<String>,
}

#[derive(Debug, Args)]
struct RenderArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Write every artifact (or the --format ones) into this folder
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Render one kind of artifact only
    #[arg(short, long, value_enum)]
    format: Option<Format>,
    /// Check user-data against this provider's size limit
    #[arg(long, value_enum, default_value = "generic")]
    provider: Provider,
    /// The Packer source the fragment builds, as TYPE.NAME
    #[arg(long, value_name = "TYPE.NAME", default_value = "null.phanes")]
    packer_source: String,
}

impl InputArgs {
    fn request(&self) -> Request {
        Request {
            config: self.config.clone(),
            profiles_dir: self.profiles_dir.clone(),
            profile: self.profile.clone(),
            sets: self.sets.clone(),
            modules: self.modules.clone(),
            skip_modules: self.skip_modules.clone(),
        }
    }
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Render(args) => render(&args),
        Command::List { what, input } => list(what, &input),
        Command::Plan(input) => plan(&compile::compile(&input.request())?),
        Command::Explain { module } => {
            let spec = modules::find(&module).ok_or_else(|| modules::unknown(&module))?;
            print!("{}", crate::explain::explain(spec)?);
            Ok(())
        }
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::explain::schema())?
            );
            Ok(())
        }
        Command::Validate(input) => {
            let c = compile::compile(&input.request())?;
            let names: Vec<&str> = c.modules.iter().map(|m| m.name).collect();
            println!(
                "valid: profile {} with modules {}",
                c.profile.name,
                names.join(", ")
            );
            Ok(())
        }
    }
}

fn render(args: &RenderArgs) -> Result<()> {
    let packer_source: SourceName = args.packer_source.parse().map_err(anyhow::Error::msg)?;
    let compilation = compile::compile(&args.input.request())?;
    let options = TargetOptions {
        provider: args.provider,
        packer_source,
    };
    let all = targets::render_all(&compilation, &options)?;
    match (&args.out, args.format) {
        (Some(dir), format) => {
            let chosen = match format {
                Some(format) => targets::select(all, format),
                None => all,
            };
            output::write_all(dir, &chosen)?;
            for artifact in &chosen {
                eprintln!("wrote {}", dir.join(&artifact.path).display());
            }
        }
        (None, Some(Format::Archive)) => {
            bail!("--format archive writes three files: add --out DIR")
        }
        (None, format) => {
            let format = format.unwrap_or(Format::Shell);
            let chosen = targets::select(all, format);
            let main_file = chosen
                .iter()
                .find(|a| !a.path.ends_with("setup.sh") || format == Format::Shell)
                .expect("every format has a main file");
            std::io::stdout().write_all(&main_file.bytes)?;
        }
    }
    Ok(())
}

fn list(what: ListWhat, input: &InputArgs) -> Result<()> {
    match what {
        ListWhat::Modules => {
            for module in modules::ALL {
                println!("{:<12} {}", module.name, module.description);
            }
        }
        ListWhat::Profiles => {
            let request = input.request();
            let dir = request.profiles_dir.clone().or_else(|| {
                Some(profile::default_user_dir(
                    request
                        .config
                        .as_deref()
                        .unwrap_or(compile::DEFAULT_CONFIG.as_ref()),
                ))
            });
            let source = profile::ProfileSource { user_dir: dir };
            for name in source.names() {
                let profile = source.load(&name)?;
                println!(
                    "{:<12} {} [{}]",
                    profile.name,
                    profile.description,
                    profile.modules.join(", ")
                );
            }
        }
    }
    Ok(())
}

fn plan(c: &Compilation) -> Result<()> {
    println!(
        "profile {} ({})",
        c.profile.name,
        c.profile.lineage.join(" > ")
    );
    let mut n = 0;
    for section in bundle::sections(c)? {
        println!("\n{}:", section.module);
        for (id, description) in step_declarations(&section.text) {
            n += 1;
            println!("  {n:>3}. {id:<28} {description}");
        }
    }
    Ok(())
}

/// Reads the `phanes_step ID 'description'` registrations from a rendered module section.
pub fn step_declarations(section: &str) -> Vec<(String, String)> {
    section
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("phanes_step "))
        .filter_map(|rest| {
            let (id, quoted) = rest.split_once(' ')?;
            Some((id.to_string(), unquote(quoted)))
        })
        .collect()
}

/// Reverses the `sh` filter's single quoting.
fn unquote(quoted: &str) -> String {
    let inner = quoted
        .trim()
        .trim_start_matches('\'')
        .trim_end_matches('\'');
    inner.replace(r"'\''", "'")
}
