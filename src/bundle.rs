//! The bundle: the runtime library, one section per module, and `main "$@"` — the one engine
//! every target wraps.

use crate::compile::Compilation;
use crate::render;
use anyhow::Result;
use minijinja::context;

include!(concat!(env!("OUT_DIR"), "/runtime_files.rs"));

/// The bash runtime every bundle starts with.
pub fn runtime() -> String {
    RUNTIME_FILES
        .iter()
        .map(|(_, text)| *text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One module's rendered steps.
#[derive(Debug, Clone)]
pub struct Section {
    pub module: &'static str,
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
        runtime => runtime(),
        sections => sections.iter().map(|s| context! { name => s.module, text => &s.text }).collect::<Vec<_>>(),
    };
    render::render(&c.env, "targets/setup.sh", ctx)
}
