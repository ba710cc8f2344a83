//! The command line: argument parsing and one function per command.

use crate::compile::{self, Compilation, Request};
use crate::targets::{
    self, Format, TargetOptions, cloud_init::BundleUrl, cloud_init::Provider, packer::SourceName,
};
use crate::{bundle, config, diagnostic, explain, modules, output, profile};
use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Exit codes: 0 success; 1 the input is invalid or an output could not be written; 2 usage error.
Errors are coloured on a terminal unless NO_COLOR is set.

Examples:
  phanes init --profile minimal && phanes validate
  phanes render --profile minimal > setup.sh
  phanes render --profile minimal --out out/web
  phanes render --format cloud-init --provider hetzner > user-data.yaml
  phanes render --profile web --provider aws --bundle-url https://HOST/setup.sh --out out/web
  phanes plan --profile minimal --set baseline.hostname=web1";

/// `--version`: the crate version and the git revision it was built from.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("PHANES_GIT_REV"),
    ")"
);

/// Compiles a server profile into a bash bundle, a #cloud-config and a Packer fragment.
#[derive(Debug, Parser)]
#[command(name = "phanes", version = LONG_VERSION, about, after_help = AFTER_HELP)]
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
    /// Write a commented starter config: every option of the profile's modules with its default.
    Init(InitArgs),
    /// Print a shell completion script: `phanes completions bash > /etc/bash_completion.d/phanes`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Profile whose modules to configure [default: minimal]
    #[arg(short, long, conflicts_with = "all")]
    profile: Option<String>,
    /// Every option of every module (this is how config.yaml.example is made)
    #[arg(long)]
    all: bool,
    /// File to write, or `-` for stdout
    #[arg(short, long, value_name = "PATH", default_value = compile::DEFAULT_CONFIG)]
    output: PathBuf,
    /// Replace the file if it exists
    #[arg(long)]
    force: bool,
    /// Folder with your own profiles [default: profiles/ next to the output]
    #[arg(long, value_name = "DIR")]
    profiles_dir: Option<PathBuf>,
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
    /// Download setup.sh from this URL at first boot instead of carrying it in user-data, which
    /// then holds its sha256 and runs it only if it matches (for AWS's 16 KiB: a presigned S3 URL)
    #[arg(long, value_name = "URL")]
    bundle_url: Option<BundleUrl>,
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
    let written = run(cli.command).and_then(|stdout| {
        // A closed pipe (`phanes render | head`) is the reader's choice, not an error.
        match std::io::stdout().lock().write_all(&stdout) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!(
                "{}",
                diagnostic::render_error(&e, diagnostic::color_stderr())
            );
            ExitCode::from(1)
        }
    }
}

/// Runs a command; returns what goes to stdout, written in one piece by `main`.
fn run(command: Command) -> Result<Vec<u8>> {
    let text = match command {
        Command::Render(args) => return render(&args),
        Command::List { what, input } => list(what, &input)?,
        Command::Plan(input) => plan(&compile::compile(&input.request())?)?,
        Command::Explain { module } => {
            let spec = modules::find(&module).ok_or_else(|| modules::unknown(&module))?;
            crate::explain::explain(spec)?
        }
        Command::Schema => serde_json::to_string_pretty(&crate::explain::schema())? + "\n",
        Command::Init(args) => return init(&args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "phanes", &mut script);
            return Ok(script);
        }
        Command::Validate(input) => {
            let c = compile::compile(&input.request())?;
            let names: Vec<&str> = c.modules.iter().map(|m| m.name).collect();
            format!(
                "valid: profile {} with modules {}\n",
                c.profile.name,
                names.join(", ")
            )
        }
    };
    Ok(text.into_bytes())
}

/// `phanes init`: the starter config for a profile (or, with `--all`, the example of every
/// option), written only where no file exists yet unless `--force`.
fn init(args: &InitArgs) -> Result<Vec<u8>> {
    let to_stdout = args.output.as_os_str() == "-";
    if !to_stdout && !args.force && args.output.exists() {
        bail!(
            "{} already exists; phanes init never overwrites a config (use --force to replace it, or --output PATH)",
            args.output.display()
        );
    }
    let text = if args.all {
        example_config()
    } else {
        let name = args.profile.as_deref().unwrap_or(profile::DEFAULT_PROFILE);
        let source = profile::ProfileSource {
            user_dir: Some(
                args.profiles_dir
                    .clone()
                    .unwrap_or_else(|| profile::default_user_dir(&args.output)),
            ),
        };
        let profile = source.load(name)?;
        let modules = modules::resolve(&profile.modules, &[])?;
        let sections: Vec<&str> = modules.iter().map(|m| m.name).collect();
        // The profile's own config defaults count: its file is written with the values the
        // profile would use.
        let (config, _) = config::assemble(&profile.config_layers, &[])?;
        let defaults = serde_json::to_value(config)?;
        let header = vec![
            format!(
                "phanes config for the `{}` profile: {}.",
                profile.name, profile.description
            ),
            format!("Written by `phanes init --profile {}`.", profile.name),
            "Every option of the profile's modules is shown with its default: change what you \
             need, delete what you don't, then `phanes validate` and `phanes render --out out/`."
                .to_string(),
        ];
        explain::starter(&explain::Starter {
            header: &with_common_header(header),
            profile: Some(&profile.name),
            sections: &sections,
            defaults: &defaults,
        })
    };
    if to_stdout {
        return Ok(text.into_bytes());
    }
    let artifact = targets::Artifact {
        path: args
            .output
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .ok_or_else(|| {
                anyhow::anyhow!("--output {} is not a file name", args.output.display())
            })?,
        bytes: text.into_bytes(),
        executable: false,
    };
    let dir = match args.output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    output::write_all(&dir, std::slice::from_ref(&artifact))?;
    eprintln!(
        "wrote {}; check it with: phanes validate --config {}",
        args.output.display(),
        args.output.display()
    );
    Ok(Vec::new())
}

/// The lines every generated config starts with (after its own).
fn with_common_header(mut lines: Vec<String>) -> Vec<String> {
    lines.extend([
        "`phanes explain MODULE` says more about each option. Keep secrets (passwords, tokens) out \
         of this file: it ends up in user-data, which any process on the server can read from \
         the provider's metadata service."
            .to_string(),
        "Editors complete and check this file after `phanes schema > phanes.schema.json` with:"
            .to_string(),
        "yaml-language-server: $schema=phanes.schema.json".to_string(),
    ]);
    lines
}

/// config.yaml.example: every option of every module, with the built-in defaults. Regenerate the
/// committed file with `cargo run -- init --all --output - > config.yaml.example`.
pub fn example_config() -> String {
    let header = with_common_header(vec![
        "Every option of every phanes module, with its default and what it does.".to_string(),
        "Generated by `phanes init --all --output - > config.yaml.example`; do not edit by hand."
            .to_string(),
    ]);
    let sections = modules::names();
    let defaults =
        serde_json::to_value(crate::config::Config::default()).expect("the defaults serialize");
    explain::starter(&explain::Starter {
        header: &header,
        profile: None,
        sections: &sections,
        defaults: &defaults,
    })
}

fn render(args: &RenderArgs) -> Result<Vec<u8>> {
    let packer_source: SourceName = args.packer_source.parse().map_err(anyhow::Error::msg)?;
    let compilation = compile::compile(&args.input.request())?;
    let options = TargetOptions {
        provider: args.provider,
        bundle_url: args.bundle_url.clone(),
        packer_source,
    };
    let all = targets::render_all(&compilation, &options)?;
    let upload_hint = upload_hint(args, &all);
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
            if let Some(hint) = upload_hint {
                eprintln!("{hint}: upload {} there", dir.join("setup.sh").display());
            }
            Ok(Vec::new())
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
            if main_file.path.ends_with(".gz")
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
            {
                bail!(
                    "{} is gzip (binary): redirect stdout to a file or use --out DIR",
                    main_file.path
                );
            }
            if let Some(hint) = upload_hint {
                eprintln!(
                    "{hint}: upload the setup.sh `phanes render` writes with the same config there"
                );
            }
            Ok(main_file.bytes.clone())
        }
    }
}

/// With `--bundle-url`, what the user must do before the server boots, when the user-data is
/// among what this render gives them: the URL without its query (a presigned URL's signature
/// stays off the terminal) and the sha256 the user-data will accept.
fn upload_hint(args: &RenderArgs, artifacts: &[targets::Artifact]) -> Option<String> {
    let url = args.bundle_url.as_ref()?;
    if !matches!(args.format, None | Some(Format::CloudInit)) {
        return None;
    }
    let setup = artifacts.iter().find(|a| a.path == targets::shell::PATH)?;
    let sha256 = compile::hex(&<sha2::Sha256 as sha2::Digest>::digest(&setup.bytes));
    let without_query = url.as_str().split(['?', '#']).next().unwrap_or_default();
    Some(format!(
        "user-data.yaml downloads setup.sh from {without_query} at first boot and runs it only if its sha256 is {sha256}"
    ))
}

fn list(what: ListWhat, input: &InputArgs) -> Result<String> {
    let mut out = String::new();
    match what {
        ListWhat::Modules => {
            for module in modules::ALL {
                out += &format!("{:<12} {}\n", module.name, module.description);
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
                out += &format!(
                    "{:<12} {} [{}]\n",
                    profile.name,
                    profile.description,
                    profile.modules.join(", ")
                );
            }
        }
    }
    Ok(out)
}

fn plan(c: &Compilation) -> Result<String> {
    let mut out = format!(
        "profile {} ({})\n",
        c.profile.name,
        c.profile.lineage.join(" > ")
    );
    // Read from the bundle itself, so the plan is exactly what will run.
    let setup = bundle::setup_sh(c, &bundle::sections(c)?)?;
    let mut module = "";
    for (n, (id, description)) in step_declarations(&setup).iter().enumerate() {
        let owner = id.split('.').next().unwrap_or(id);
        if owner != module {
            out += &format!("\n{owner}:\n");
            module = owner;
        }
        out += &format!("  {:>3}. {id:<28} {description}\n", n + 1);
    }
    Ok(out)
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
