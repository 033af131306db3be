//! Prices for `calltape stats --prices FILE` (TOML or JSON): per model per 1M prompt,
//! completion and cached tokens, per TTS character and per STT minute.
//!
//! ```toml
//! currency = "USD"
//! tts_per_1m_characters = 15.0     # or tts_per_character = 0.000015
//! stt_per_minute = 0.0043
//! [models."gpt-4o-mini"]
//! prompt_per_1m_tokens = 0.15
//! completion_per_1m_tokens = 0.60
//! cached_per_1m_tokens = 0.075     # optional: cached prompt tokens (default: prompt price)
//! [default_model]                  # optional: usage that names no (known) model
//! prompt_per_1m_tokens = 0.15
//! completion_per_1m_tokens = 0.60
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use calltape_read::error::{AppError, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    #[serde(default)]
    pub prompt_per_1m_tokens: f64,
    #[serde(default)]
    pub completion_per_1m_tokens: f64,
    #[serde(default)]
    pub cached_per_1m_tokens: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    #[serde(default = "usd")]
    pub currency: String,
    #[serde(default)]
    pub models: BTreeMap<String, ModelPrice>,
    #[serde(default)]
    pub default_model: Option<ModelPrice>,
    #[serde(default)]
    pub tts_per_character: Option<f64>,
    #[serde(default)]
    pub tts_per_1m_characters: Option<f64>,
    #[serde(default)]
    pub stt_per_minute: f64,
}

fn usd() -> String {
    "USD".into()
}

/// Usage to put a price on.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageSums {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub stt_audio_seconds: f64,
    pub tts_audio_seconds: f64,
    pub tts_characters: i64,
}

impl UsageSums {
    pub fn add(&mut self, o: &UsageSums) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cached_tokens += o.cached_tokens;
        self.stt_audio_seconds += o.stt_audio_seconds;
        self.tts_audio_seconds += o.tts_audio_seconds;
        self.tts_characters += o.tts_characters;
    }
}

/// A cost split by what it pays for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Cost {
    pub llm: f64,
    pub tts: f64,
    pub stt: f64,
    pub total: f64,
    /// Models with tokens but no price (neither listed nor covered by `default_model`).
    pub unpriced_models: Vec<String>,
}

impl Prices {
    pub fn load(path: &Path) -> Result<Prices> {
        let text = std::fs::read_to_string(path).map_err(|e| AppError::Io {
            what: format!("read prices {}", path.display()),
            source: e,
        })?;
        let is_json =
            path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
        let parsed: std::result::Result<Prices, String> = if is_json {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| {
            AppError::Usage(format!(
                "cannot read prices from {}: {e} (see `calltape stats --help` for the format)",
                path.display()
            ))
        })
    }

    fn model(&self, model: Option<&str>) -> Option<&ModelPrice> {
        model
            .and_then(|m| {
                self.models.get(m).or_else(|| {
                    // "openai/gpt-4o-mini" style keys, or a model name with a provider prefix
                    self.models
                        .iter()
                        .find(|(k, _)| {
                            m.ends_with(&format!("/{k}")) || k.ends_with(&format!("/{m}"))
                        })
                        .map(|(_, v)| v)
                })
            })
            .or(self.default_model.as_ref())
    }

    /// The cost of `usage` attributed to `model`, added into `cost`.
    pub fn add_cost(&self, model: Option<&str>, u: &UsageSums, cost: &mut Cost) {
        let tokens = u.prompt_tokens + u.completion_tokens;
        match self.model(model) {
            Some(p) => {
                let cached = u.cached_tokens.clamp(0, u.prompt_tokens);
                let uncached = u.prompt_tokens - cached;
                cost.llm += uncached as f64 * p.prompt_per_1m_tokens / 1e6
                    + cached as f64 * p.cached_per_1m_tokens.unwrap_or(p.prompt_per_1m_tokens)
                        / 1e6
                    + u.completion_tokens as f64 * p.completion_per_1m_tokens / 1e6;
            }
            None if tokens > 0 => {
                let name = model.unwrap_or("(no model)").to_string();
                if !cost.unpriced_models.contains(&name) {
                    cost.unpriced_models.push(name);
                }
            }
            None => {}
        }
        let per_char = self
            .tts_per_character
            .or(self.tts_per_1m_characters.map(|p| p / 1e6))
            .unwrap_or(0.0);
        cost.tts += u.tts_characters as f64 * per_char;
        cost.stt += u.stt_audio_seconds / 60.0 * self.stt_per_minute;
        cost.total = cost.llm + cost.tts + cost.stt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_prices_cost() {
        let p: Prices = toml::from_str(
            r#"
            stt_per_minute = 0.006
            tts_per_1m_characters = 15.0
            [models."gpt-4o-mini"]
            prompt_per_1m_tokens = 0.15
            completion_per_1m_tokens = 0.60
            cached_per_1m_tokens = 0.075
            "#,
        )
        .unwrap();
        let u = UsageSums {
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
            cached_tokens: 500_000,
            stt_audio_seconds: 600.0,
            tts_audio_seconds: 0.0,
            tts_characters: 1_000_000,
        };
        let mut c = Cost::default();
        p.add_cost(Some("gpt-4o-mini"), &u, &mut c);
        assert!((c.llm - (0.075 + 0.0375 + 0.6)).abs() < 1e-9);
        assert!((c.tts - 15.0).abs() < 1e-9);
        assert!((c.stt - 0.06).abs() < 1e-9);
        let mut c2 = Cost::default();
        p.add_cost(Some("other"), &u, &mut c2);
        assert_eq!(c2.unpriced_models, vec!["other".to_string()]);
    }
}
