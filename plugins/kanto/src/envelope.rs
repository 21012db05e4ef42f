//! Ditto protocol envelopes: commands in, responses and errors out.

use serde_json::{Map, Value, json};

/// Kanto's error codes.
pub mod codes {
    /// Malformed input: not JSON, missing fields, bad argument, unknown feature.
    pub const PARAMETER_INVALID: &str = "messages:parameter.invalid";
    /// Unknown thing or operation.
    pub const SUBJECT_NOT_FOUND: &str = "messages:subject.notfound";
    /// The operation failed.
    pub const EXECUTION_FAILED: &str = "messages:execution.failed";
}

/// A command envelope.
#[derive(Debug, Clone)]
pub struct Command {
    /// Ditto topic, `<ns>/<name>/things/live/messages/<op>`.
    pub topic: String,
    /// `/features/<featureId>/inbox/messages/<op>`.
    pub path: String,
    /// `correlation-id` header.
    pub correlation_id: String,
    /// `response-required` header (absent = false, as in Kanto).
    pub response_required: bool,
    /// The argument, if any.
    pub value: Option<Value>,
}

/// A failed operation, answered as `{"error", "status", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP-like status.
    pub status: u16,
    /// Kanto's error code.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// 400 `messages:parameter.invalid`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code: codes::PARAMETER_INVALID,
            message: message.into(),
        }
    }

    /// 404 `messages:subject.notfound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            code: codes::SUBJECT_NOT_FOUND,
            message: message.into(),
        }
    }

    /// 500 `messages:execution.failed`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            status: 500,
            code: codes::EXECUTION_FAILED,
            message: message.into(),
        }
    }

    /// The error value.
    pub fn value(&self) -> Value {
        json!({"error": self.code, "status": self.status, "message": self.message})
    }
}

/// Parse a command payload. On failure, the correlation id (when one could be
/// read) comes back with the error.
pub fn parse(payload: &[u8]) -> Result<Command, (Failure, Option<String>)> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| {
        (
            Failure::invalid(format!("the payload is not a Ditto JSON envelope: {e}")),
            None,
        )
    })?;
    let headers = v
        .get("headers")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let correlation_id = headers
        .get("correlation-id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let fail = |m: &str| (Failure::invalid(m.to_string()), correlation_id.clone());
    // Read leniently first, for the correlation id the refusal carries;
    // then by every frontend's rule: a key given twice means nothing.
    gantry_sdk::json::check(payload)
        .map_err(|e| fail(&format!("the payload is not a Ditto JSON envelope: {e}")))?;
    let topic = v
        .get("topic")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("the envelope has no topic"))?;
    let path = v
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("the envelope has no path"))?;
    let Some(cid) = correlation_id.clone() else {
        return Err(fail("the envelope has no correlation-id header"));
    };
    let value = v.get("value").cloned();
    if value.is_some()
        && let Some(ct) = headers.get("content-type").and_then(Value::as_str)
        && !ct.to_ascii_lowercase().contains("json")
    {
        return Err(fail("a value needs content-type application/json"));
    }
    let response_required = match headers.get("response-required") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    Ok(Command {
        topic: topic.to_string(),
        path: path.to_string(),
        correlation_id: cid,
        response_required,
        value,
    })
}

/// The outbox path answering an inbox path.
pub fn outbox(path: &str) -> String {
    path.replacen("/inbox/", "/outbox/", 1)
}

/// A response envelope: 200 with a value, 204 without, or an error.
pub fn response(cmd: &Command, result: &Result<Option<Value>, Failure>) -> (u16, Value) {
    let (status, value) = match result {
        Ok(Some(v)) => (200, Some(v.clone())),
        Ok(None) => (204, None),
        Err(f) => (f.status, Some(f.value())),
    };
    let mut headers = Map::new();
    headers.insert("correlation-id".into(), cmd.correlation_id.clone().into());
    if status != 204 {
        headers.insert("content-type".into(), "application/json".into());
    }
    let mut env = Map::new();
    env.insert("topic".into(), cmd.topic.clone().into());
    env.insert("headers".into(), Value::Object(headers));
    env.insert("path".into(), outbox(&cmd.path).into());
    if let Some(v) = value {
        env.insert("value".into(), v);
    }
    env.insert("status".into(), status.into());
    (status, Value::Object(env))
}

/// The answer to an envelope that could not be read.
pub fn unreadable(failure: &Failure, correlation_id: Option<String>) -> Value {
    let mut headers = Map::new();
    if let Some(c) = correlation_id {
        headers.insert("correlation-id".into(), c.into());
    }
    headers.insert("content-type".into(), "application/json".into());
    json!({
        "topic": "unknown/unknown/things/twin/errors",
        "headers": headers,
        "path": "/",
        "value": failure.value(),
        "status": failure.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_start_example_parses_and_answers_204() {
        let cmd = parse(br#"{"topic":"edge/device/things/live/messages/start","headers":{"response-required":true,"content-type":"application/json","correlation-id":"c1"},"path":"/features/Container:x/inbox/messages/start","value":{}}"#)
            .expect("the seed's envelope");
        assert!(cmd.response_required);
        let (status, env) = response(&cmd, &Ok(None));
        assert_eq!(status, 204);
        assert_eq!(env["path"], "/features/Container:x/outbox/messages/start");
        assert!(env["headers"].get("content-type").is_none());
        assert!(env.get("value").is_none());
    }

    #[test]
    fn malformed_envelopes_are_parameter_invalid() {
        assert_eq!(
            parse(b"{not json").map_err(|e| e.0.code).err(),
            Some(codes::PARAMETER_INVALID)
        );
        let (f, cid) =
            parse(br#"{"topic":"a/b/things/live/messages/x","headers":{"correlation-id":"c"}}"#)
                .expect_err("no path");
        assert_eq!((f.status, cid.as_deref()), (400, Some("c")));
        let (f, _) = parse(br#"{"topic":"t","path":"/p","headers":{"correlation-id":"c","content-type":"text/plain"},"value":1}"#)
            .expect_err("a value needs JSON");
        assert_eq!(f.code, codes::PARAMETER_INVALID);
    }

    #[test]
    fn a_key_given_twice_is_parameter_invalid_with_the_correlation_id() {
        let (f, cid) = parse(br#"{"topic":"edge/device/things/live/messages/create","headers":{"correlation-id":"c2"},"path":"/features/ContainerFactory/inbox/messages/create","value":{"imageRef":"a","imageRef":"b"}}"#)
            .expect_err("imageRef twice");
        assert_eq!(
            (f.status, f.code, cid.as_deref()),
            (400, codes::PARAMETER_INVALID, Some("c2"))
        );
        assert!(
            f.message.contains("duplicate key `value.imageRef`"),
            "{}",
            f.message
        );
    }
}
