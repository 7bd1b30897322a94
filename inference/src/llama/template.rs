//! [`ChatTemplate`]: the chat format a model was tuned on, recognised from its vocabulary's
//! special tokens (the same for GGUF and safetensors models), and the one-turn prompt in it.

use tokenizers::Tokenizer;

/// A chat prompt format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>user ... <|im_end|>` (SmolLM2, Qwen, many instruct tunes).
    ChatMl,
    /// `<|start_header_id|>user<|end_header_id|> ... <|eot_id|>` (Llama 3).
    Llama3,
    /// `[INST] ... [/INST]` (Llama 2 chat, Mistral instruct).
    Inst,
    /// No chat tokens: `User: ...\nAssistant:` as plain text.
    Plain,
}

impl ChatTemplate {
    /// The template a tokenizer's special tokens call for.
    pub fn detect(tokenizer: &Tokenizer) -> Self {
        let has = |token: &str| tokenizer.token_to_id(token).is_some();
        if has("<|start_header_id|>") && has("<|eot_id|>") {
            Self::Llama3
        } else if has("<|im_start|>") && has("<|im_end|>") {
            Self::ChatMl
        } else if has("[INST]") {
            Self::Inst
        } else {
            Self::Plain
        }
    }

    /// A one-turn prompt: the user's message, then the start of the assistant's turn.
    pub fn prompt(self, user: &str) -> String {
        match self {
            Self::ChatMl => format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"),
            Self::Llama3 => format!(
                "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>\
                 <|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
            Self::Inst => format!("[INST] {user} [/INST]"),
            Self::Plain => format!("User: {user}\nAssistant:"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChatTemplate;

    #[test]
    fn every_template_puts_the_message_before_the_assistant_turn() {
        for template in [
            ChatTemplate::ChatMl,
            ChatTemplate::Llama3,
            ChatTemplate::Inst,
            ChatTemplate::Plain,
        ] {
            let prompt = template.prompt("hello there");
            let at = prompt.find("hello there").unwrap();
            assert!(at > 0 && at + 11 < prompt.len(), "{template:?}: {prompt}");
        }
    }
}
