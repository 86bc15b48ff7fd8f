//! Tokenizer and chat template of a model folder.
use std::path::Path;

use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;

use crate::PolicyError;

/// One chat message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message { role: role.to_string(), content: content.to_string() }
    }
}

/// The model's chat template (Jinja, as in `tokenizer_config.json` or `chat_template.jinja`).
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

fn token_text(config: &serde_json::Value, key: &str) -> String {
    match config.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(obj) => obj.get("content").and_then(|c| c.as_str()).unwrap_or("").to_string(),
        None => String::new(),
    }
}

impl ChatTemplate {
    /// Reads the template of a model folder: `chat_template.jinja`, else the `chat_template`
    /// field of `tokenizer_config.json`.
    pub fn load(dir: &Path) -> Result<ChatTemplate, PolicyError> {
        let config_path = dir.join("tokenizer_config.json");
        let config: serde_json::Value = if config_path.is_file() {
            let text = std::fs::read_to_string(&config_path).map_err(|e| PolicyError::io(&config_path, e))?;
            serde_json::from_str(&text).map_err(|e| PolicyError::Format { path: config_path.clone(), cause: e.to_string() })?
        } else {
            serde_json::Value::Null
        };
        let file = dir.join("chat_template.jinja");
        let source = if file.is_file() {
            std::fs::read_to_string(&file).map_err(|e| PolicyError::io(&file, e))?
        } else {
            config.get("chat_template").and_then(|t| t.as_str()).map(String::from).ok_or_else(|| PolicyError::Format {
                path: dir.to_path_buf(),
                cause: "no chat template (chat_template.jinja or tokenizer_config.json's chat_template)".into(),
            })?
        };
        Self::from_source(&source, &token_text(&config, "bos_token"), &token_text(&config, "eos_token"))
            .map_err(|e| PolicyError::Format { path: dir.to_path_buf(), cause: format!("chat template: {e}") })
    }

    /// A template from its Jinja source.
    pub fn from_source(source: &str, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, Error> {
        let mut env = Environment::new();
        // Hugging Face templates call Python string methods (.strip(), .startswith()...).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        // Llama 3 templates stamp today's date; a fixed date keeps prompts reproducible.
        env.add_function("strftime_now", |_fmt: String| -> Value { Value::from("26 Jul 2024") });
        env.add_template_owned("chat", source.to_string())?;
        Ok(ChatTemplate { env, bos_token: bos_token.to_string(), eos_token: eos_token.to_string() })
    }

    /// The prompt text for `messages`, ending with the assistant header when asked.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, Error> {
        let template = self.env.get_template("chat")?;
        template.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
        })
    }
}
