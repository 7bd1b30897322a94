//! A chat completion request as OpenAI's clients send it, plus provdb's retrieval fields, and
//! its checks.

use provdb::inference::llama::ChatRole;
use serde::Deserialize;
use serde_json::Value;

use crate::http::error::{ApiError, ApiResult};

/// Longest accepted conversation, in bytes of message text.
pub(super) const MAX_CONVERSATION_BYTES: usize = 64 << 10;
/// Most messages in one request.
const MAX_MESSAGES: usize = 256;
/// Most new tokens one request may ask for.
pub(super) const MAX_NEW_TOKENS: usize = 1024;

/// One message.
#[derive(Deserialize)]
pub(super) struct Message {
    role: String,
    /// A string, or OpenAI's array of parts (`{"type": "text", "text": ...}`).
    content: Value,
}

/// `POST /v1/chat/completions` body. Unknown fields are ignored: OpenAI's clients send many.
#[derive(Deserialize)]
pub(crate) struct ChatRequest {
    pub(super) model: String,
    messages: Vec<Message>,
    #[serde(default)]
    pub(super) stream: bool,
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
    pub(super) temperature: Option<f64>,
    pub(super) top_p: Option<f64>,
    pub(super) seed: Option<u64>,
    n: Option<u32>,
    /// provdb: answer from these Datanets, with citations.
    pub(super) datanets: Option<Vec<String>>,
    /// provdb: sources to retrieve.
    pub(super) k: Option<usize>,
    /// provdb: retrievers (hybrid, bm25, vector).
    pub(super) mode: Option<String>,
    /// No longer accepted: fees come from prices (refused with a message saying so).
    fee_wei: Option<Value>,
    /// provdb: the most the caller will pay for the answer, in wei (a decimal string, or a
    /// number); an answer priced above it is refused with 402 before any work.
    max_fee_wei: Option<Value>,
    /// provdb: cited or loo.
    pub(super) attribution: Option<String>,
}

/// A checked conversation.
pub(super) struct Conversation {
    pub(super) messages: Vec<(ChatRole, String)>,
}

impl Conversation {
    /// The last user message: the question a cited answer answers.
    pub(super) fn question(&self) -> ApiResult<&str> {
        self.messages
            .iter()
            .rev()
            .find(|(role, _)| *role == ChatRole::User)
            .map(|(_, text)| text.as_str())
            .ok_or_else(|| ApiError::bad_request("the messages hold no user message"))
    }
}

fn text_of(content: &Value) -> ApiResult<String> {
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(t))) => text.push_str(t),
                    _ => {
                        return Err(ApiError::bad_request(
                            "only text message parts are supported",
                        ));
                    }
                }
            }
            Ok(text)
        }
        Value::Null => Ok(String::new()),
        _ => Err(ApiError::bad_request(
            "a message's content must be a string or an array of text parts",
        )),
    }
}

impl ChatRequest {
    /// The messages, checked.
    pub(super) fn conversation(&self) -> ApiResult<Conversation> {
        if self.messages.is_empty() || self.messages.len() > MAX_MESSAGES {
            return Err(ApiError::bad_request(format!(
                "send 1 to {MAX_MESSAGES} messages, got {}",
                self.messages.len()
            )));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::bad_request("only n = 1 is supported"));
        }
        let mut messages = Vec::with_capacity(self.messages.len());
        let mut bytes = 0;
        for m in &self.messages {
            let role: ChatRole =
                m.role
                    .parse()
                    .map_err(|e: provdb::inference::InferenceError| {
                        ApiError::bad_request(e.to_string())
                    })?;
            let text = text_of(&m.content)?;
            bytes += text.len();
            messages.push((role, text));
        }
        if bytes > MAX_CONVERSATION_BYTES {
            return Err(ApiError::bad_request(format!(
                "the messages hold {bytes} bytes of text, at most {MAX_CONVERSATION_BYTES}"
            )));
        }
        Ok(Conversation { messages })
    }

    /// New tokens wanted (default 256).
    pub(super) fn max_new_tokens(&self) -> ApiResult<usize> {
        let wanted = self
            .max_completion_tokens
            .or(self.max_tokens)
            .unwrap_or(256);
        if wanted == 0 || wanted > MAX_NEW_TOKENS {
            return Err(ApiError::bad_request(format!(
                "max_tokens must be in 1..={MAX_NEW_TOKENS}, got {wanted}"
            )));
        }
        Ok(wanted)
    }

    /// The most the caller will pay, in wei. A `fee_wei` is refused: no caller names its fee.
    pub(super) fn max_fee(&self) -> ApiResult<Option<u128>> {
        if self.fee_wei.is_some() {
            return Err(ApiError::bad_request(
                "fee_wei is not accepted: an answer's fee comes from the prices its model, \
                 Datanets and adapters' owners set (GET /v1/prices); send max_fee_wei to cap it",
            ));
        }
        self.max_fee_wei
            .as_ref()
            .map(|v| crate::http::money::wei_of("max_fee_wei", v))
            .transpose()
    }

    /// `base` or `base:ADAPTER[:WEIGHT][+ADAPTER[:WEIGHT]]...` → the adapter specs, checked
    /// against the served model's name.
    pub(super) fn adapter_specs(&self, base: &str) -> ApiResult<Vec<String>> {
        let (name, adapters) = match self.model.split_once(':') {
            Some((name, rest)) => (name, rest),
            None => (self.model.as_str(), ""),
        };
        if name != base {
            return Err(ApiError::not_found(format!(
                "model '{}' not found: this server serves '{base}' (and '{base}:ADAPTER_ID')",
                self.model
            )));
        }
        Ok(adapters
            .split('+')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> ChatRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn model_names_carry_adapters_after_the_base() {
        let r = request(serde_json::json!({"model": "m:0xab12cd:0.5+0xef0012", "messages": []}));
        assert_eq!(r.adapter_specs("m").unwrap(), ["0xab12cd:0.5", "0xef0012"]);
        let r = request(serde_json::json!({"model": "m", "messages": []}));
        assert!(r.adapter_specs("m").unwrap().is_empty());
        let r = request(serde_json::json!({"model": "gpt-4", "messages": []}));
        assert_eq!(r.adapter_specs("m").err().unwrap().status().as_u16(), 404);
    }

    #[test]
    fn conversations_take_strings_and_text_parts_and_refuse_the_rest() {
        let r = request(serde_json::json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}]}
        ]}));
        let c = r.conversation().unwrap();
        assert_eq!(c.question().unwrap(), "hello");
        for bad in [
            serde_json::json!([]),
            serde_json::json!([{"role": "robot", "content": "x"}]),
            serde_json::json!([{"role": "user", "content": [{"type": "image_url"}]}]),
            serde_json::json!([{"role": "user", "content": 5}]),
        ] {
            let r = request(serde_json::json!({"model": "m", "messages": bad}));
            assert!(r.conversation().is_err(), "{bad}");
        }
        let r = request(
            serde_json::json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}),
        );
        assert!(r.conversation().unwrap().question().is_err());
    }

    #[test]
    fn fees_and_token_limits_are_checked() {
        let r = request(
            serde_json::json!({"model": "m", "messages": [], "max_fee_wei": "10000000000000000000000", "max_tokens": 5}),
        );
        assert_eq!(r.max_fee().unwrap(), Some(10_000_000_000_000_000_000_000));
        assert_eq!(r.max_new_tokens().unwrap(), 5);
        for bad in [
            serde_json::json!("-1"),
            serde_json::json!(1.5),
            serde_json::json!("ten"),
        ] {
            let r = request(serde_json::json!({"model": "m", "messages": [], "max_fee_wei": bad}));
            assert!(r.max_fee().is_err());
        }
        // A caller never names its fee.
        let r = request(serde_json::json!({"model": "m", "messages": [], "fee_wei": "1"}));
        let refused = r.max_fee().unwrap_err();
        assert!(
            refused.message().contains("GET /v1/prices"),
            "{}",
            refused.message()
        );
        let r = request(serde_json::json!({"model": "m", "messages": [], "max_tokens": 0}));
        assert!(r.max_new_tokens().is_err());
    }
}
