//! The bundle: the runtime library, one section per module, and `main "$@"` — the one engine
//! every target wraps.

use crate::compile::Compilation;
use crate::render;
use anyhow::Result;
use minijinja::context;

pub mod shrink;

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

/// The bundle's own code around the runtime and the sections: what it calls is reached.
const WRAPPER: &str = include_str!("../templates/targets/setup.sh.j2");

/// The runtime files a bundle with `sections` carries, as written in templates/runtime.
pub fn runtime_source(sections: &[Section]) -> String {
    RUNTIME_FILES
        .iter()
        .map(|(_, text)| *text)
        .filter(|text| {
            !text.contains(OPTIONAL)
                || defined_functions(text)
                    .any(|name| sections.iter().any(|s| s.text.contains(name)))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One module's rendered steps.
#[derive(Debug, Clone)]
pub struct Section {
    /// The module's name.
    pub module: &'static str,
    /// The rendered bash of its steps.
    pub text: String,
}

/// Renders each selected module's template with its own settings, compacted (see
/// [`shrink::compact`]).
pub fn sections(c: &Compilation) -> Result<Vec<Section>> {
    let mut sections = readable_sections(c)?;
    for section in &mut sections {
        section.text = shrink::compact(&section.text);
    }
    Ok(sections)
}

/// The sections as the templates render them, comments and indentation included.
pub fn readable_sections(c: &Compilation) -> Result<Vec<Section>> {
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

/// Assembles `setup.sh`: the runtime and the sections shrunk together, so functions of either
/// that nothing reaches are left out (see [`shrink::shrink_all`]).
pub fn setup_sh(c: &Compilation, sections: &[Section]) -> Result<String> {
    let runtime = runtime_source(sections);
    let mut texts = vec![runtime.as_str()];
    texts.extend(sections.iter().map(|s| s.text.as_str()));
    texts.push(WRAPPER);
    let mut shrunk = shrink::shrink_all(&texts, 0..texts.len() - 1).into_iter();
    let runtime = shrunk.next().unwrap_or_default();
    let sections: Vec<Section> = sections
        .iter()
        .zip(shrunk)
        .map(|(s, text)| Section {
            module: s.module,
            text,
        })
        .collect();
    assemble(c, &sections, &runtime)
}

/// `setup.sh` before any shrinking: every runtime file as written, every comment. What ships
/// is [`setup_sh`]; this is for reading it and for the tests that prove the two define the same.
pub fn readable_setup_sh(c: &Compilation) -> Result<String> {
    let sections = readable_sections(c)?;
    assemble(c, &sections, &runtime_source(&sections))
}

fn assemble(c: &Compilation, sections: &[Section], runtime: &str) -> Result<String> {
    let ctx = context! {
        version => crate::VERSION,
        profile => &c.profile.name,
        description => &c.profile.description,
        modules => c.modules.iter().map(|m| m.name).collect::<Vec<_>>(),
        config_sha256 => &c.config_sha256,
        packages => crate::modules::all_packages(&c.modules, &c.config),
        package_modules => crate::modules::package_modules(&c.modules, &c.config),
        runtime => runtime,
        sections => sections.iter().map(|s| context! { name => s.module, text => &s.text }).collect::<Vec<_>>(),
    };
    render::render(&c.env, "targets/setup.sh", ctx)
}
