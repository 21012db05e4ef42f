//! GPU models: the Container Service API's catalogue of 25, and the short
//! codes the inventory names models by.

use crate::bindings::types::GpuModel;

/// The 25 models of the Container Service API's catalogue: (code, name).
pub const CATALOGUE: [(&str, &str); 25] = [
    ("h100", "Nvidia h100"),
    ("a100", "Nvidia a100"),
    ("a40", "Nvidia a40"),
    ("a16", "Nvidia a16"),
    ("t4", "Nvidia t4"),
    ("v100", "Nvidia v100"),
    ("p4", "Nvidia tesla-p4"),
    ("p100", "Nvidia tesla-p100"),
    ("k80", "Nvidia tesla-k80"),
    ("3050", "Nvidia rtx-3050"),
    ("3060", "Nvidia rtx-3060"),
    ("3060ti", "Nvidia rtx-3060-ti"),
    ("3070", "Nvidia rtx-3070"),
    ("3070ti", "Nvidia rtx-3070-ti"),
    ("3080", "Nvidia rtx-3080"),
    ("3080ti", "Nvidia rtx-3080-ti"),
    ("3090", "Nvidia rtx-3090"),
    ("3090ti", "Nvidia rtx-3090-ti"),
    ("1050", "Nvidia gtx-1050"),
    ("1050ti", "Nvidia gtx-1050-ti"),
    ("1060", "Nvidia gtx-1060"),
    ("1070", "Nvidia gtx-1070"),
    ("1070ti", "Nvidia gtx-1070-ti"),
    ("1080", "Nvidia gtx-1080"),
    ("1080ti", "Nvidia gtx-1080-ti"),
];

/// The short code of a model named by a catalogue code or name, or by the
/// name NVML reports: "Nvidia a100" and "NVIDIA A100-SXM4-80GB" are "a100",
/// "Tesla T4" is "t4", "NVIDIA GeForce RTX 3090 Ti" is "3090ti".
pub fn code_of(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if let Some((code, _)) = CATALOGUE
        .iter()
        .find(|(c, n)| lower == *c || lower == n.to_ascii_lowercase())
    {
        return (*code).to_string();
    }
    let mut words = lower
        .split_whitespace()
        .filter(|w| {
            !matches!(
                *w,
                "nvidia" | "tesla" | "geforce" | "quadro" | "rtx" | "gtx"
            )
        })
        .peekable();
    let Some(first) = words.next() else {
        return lower;
    };
    // "tesla-p4", "rtx-3060-ti": the catalogue's own hyphenated spellings.
    let mut parts = first
        .split('-')
        .filter(|p| !matches!(*p, "tesla" | "rtx" | "gtx"));
    let mut code = parts.next().unwrap_or_default().to_string();
    if parts.next() == Some("ti") || words.peek() == Some(&"ti") {
        code.push_str("ti");
    }
    code
}

/// Models callers may request: those of the inventory (`(vendor, model
/// code)` pairs), or the whole catalogue when the host knows of no GPU.
pub fn models<'a>(inventory: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<GpuModel> {
    let mut out: Vec<GpuModel> = Vec::new();
    for (vendor, model) in inventory {
        let code = code_of(model);
        let name = CATALOGUE
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, n)| (*n).to_string())
            .unwrap_or_else(|| format!("{} {code}", capitalise(vendor)));
        if !out.iter().any(|m| m.code == code) {
            out.push(GpuModel { code, name });
        }
    }
    if out.is_empty() {
        return CATALOGUE
            .iter()
            .map(|(code, name)| GpuModel {
                code: (*code).into(),
                name: (*name).into(),
            })
            .collect();
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_catalogue_and_nvml_names() {
        for (name, code) in [
            ("Nvidia a100", "a100"),
            ("a100", "a100"),
            ("K80", "k80"),
            ("Nvidia tesla-p4", "p4"),
            ("Nvidia rtx-3060-ti", "3060ti"),
            ("NVIDIA A100-SXM4-80GB", "a100"),
            ("NVIDIA H100 80GB HBM3", "h100"),
            ("Tesla T4", "t4"),
            ("Tesla V100-SXM2-16GB", "v100"),
            ("NVIDIA GeForce RTX 3090 Ti", "3090ti"),
            ("NVIDIA L4", "l4"),
        ] {
            assert_eq!(code_of(name), code, "{name}");
        }
    }

    #[test]
    fn catalogue_without_inventory() {
        let m = models([]);
        assert_eq!(m.len(), 25);
        assert_eq!(m[1].name, "Nvidia a100");
    }

    #[test]
    fn inventory_models_are_deduplicated_and_named() {
        let m = models([
            ("nvidia", "a100"),
            ("nvidia", "Nvidia a100"),
            ("nvidia", "NVIDIA L4"),
        ]);
        let codes: Vec<_> = m
            .iter()
            .map(|m| (m.code.as_str(), m.name.as_str()))
            .collect();
        assert_eq!(codes, [("a100", "Nvidia a100"), ("l4", "Nvidia l4")]);
    }
}
