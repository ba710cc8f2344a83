//! The bundle: the runtime library, one section per module, and `main "$@"` — the one engine
//! every target wraps.

use crate::compile::Compilation;
use crate::render;
use anyhow::Result;
use minijinja::context;

include!(concat!(env!("OUT_DIR"), "/runtime_files.rs"));

/// Marks a runtime file that only bundles calling one of its functions carry (user-data size
/// limits are tight: the minimal profile must fit Hetzner's 32 KiB).
const OPTIONAL: &str = "\n# optional:";

/// The public functions (`name() {` at the start of a line, not `_internal`) a runtime file defines.
fn defined_functions(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|line| {
        let name = line.strip_suffix("() {")?;
        let public = !name.starts_with('_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        public.then_some(name)
    })
}

/// The bash runtime a bundle starts with: every file, except optional ones whose functions
/// none of `sections` calls, without its comments (see [`strip_comments`]).
pub fn runtime(sections: &[Section]) -> String {
    RUNTIME_FILES
        .iter()
        .map(|(_, text)| *text)
        .filter(|text| {
            !text.contains(OPTIONAL)
                || defined_functions(text)
                    .any(|name| sections.iter().any(|s| s.text.contains(name)))
        })
        .map(strip_comments)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Drops comment-only and blank lines from runtime code. The comments are for the engineers
/// who read templates/runtime; in the bundle they cost user-data bytes that providers limit
/// (Hetzner 32 KiB). shellcheck directives stay. A test proves that bash defines exactly the same
/// functions and variables with and without them.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Inside a here-document every line is data, kept as it is.
    let mut heredoc_end: Option<String> = None;
    for line in text.lines() {
        let code = line.trim_start();
        let keep = match &heredoc_end {
            Some(end) => {
                if code == end {
                    heredoc_end = None;
                }
                true
            }
            None => {
                heredoc_end = heredoc_terminator(line);
                !code.is_empty() && (!code.starts_with('#') || code.starts_with("# shellcheck"))
            }
        };
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The word that ends a here-document opened on this line (`<<EOF`, `<<-'EOF'`), if any.
fn heredoc_terminator(line: &str) -> Option<String> {
    let rest = line.split_once("<<")?.1;
    if rest.starts_with('<') {
        return None; // a here-string, `<<<`
    }
    let word: String = rest
        .trim_start_matches('-')
        .trim_start()
        .trim_matches(|c| c == '\'' || c == '"')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// One module's rendered steps.
#[derive(Debug, Clone)]
pub struct Section {
    /// The module's name.
    pub module: &'static str,
    /// The rendered bash of its steps.
    pub text: String,
}

/// Renders each selected module's template with its own settings.
pub fn sections(c: &Compilation) -> Result<Vec<Section>> {
    let all_settings = serde_json::to_value(&c.config)?;
    c.modules
        .iter()
        .map(|module| {
            let ctx = context! {
                module => module.name,
                settings => render::value(&all_settings[module.name]),
                packages => (module.packages)(&c.config),
                module_ports => crate::modules::all_ports(&c.modules, &c.config),
                config => render::value(&all_settings),
            };
            let text = render::render(&c.env, &render::module_template_id(module.name), ctx)?;
            Ok(Section {
                module: module.name,
                text,
            })
        })
        .collect()
}

/// Assembles `setup.sh`.
pub fn setup_sh(c: &Compilation, sections: &[Section]) -> Result<String> {
    let ctx = context! {
        version => crate::VERSION,
        profile => &c.profile.name,
        description => &c.profile.description,
        modules => c.modules.iter().map(|m| m.name).collect::<Vec<_>>(),
        config_sha256 => &c.config_sha256,
        packages => crate::modules::all_packages(&c.modules, &c.config),
        package_modules => crate::modules::package_modules(&c.modules, &c.config),
        runtime => runtime(sections),
        sections => sections.iter().map(|s| context! { name => s.module, text => &s.text }).collect::<Vec<_>>(),
    };
    render::render(&c.env, "targets/setup.sh", ctx)
}
