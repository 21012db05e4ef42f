//! ARM's error format, `{"error": {"code", "message", "target"?, "details"?}}`,
//! and how the control plane's typed errors map onto it.

use gantry_sdk::http_frontend::gantry::plugin::types::Error;
use serde_json::{Value, json};

/// A failed request: HTTP status and CloudError body.
#[derive(Debug)]
pub struct CloudError {
    /// HTTP status.
    pub status: u16,
    /// `error.code`.
    pub code: String,
    /// `error.message`.
    pub message: String,
    /// `error.details`: one `(target, message)` per offending field.
    pub details: Vec<(String, String)>,
}

impl CloudError {
    /// An error without details.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// 400 `InvalidRequestContent`, one detail per field.
    pub fn invalid(details: Vec<(String, String)>) -> Self {
        let message = details
            .iter()
            .map(|(t, m)| format!("{t}: {m}"))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            status: 400,
            code: "InvalidRequestContent".into(),
            message: format!("The request content was invalid: {message}"),
            details,
        }
    }

    /// 404 for a container group that does not exist (or is not the caller's).
    pub fn group_not_found(group: &str, resource_group: &str) -> Self {
        Self::new(
            404,
            "ResourceNotFound",
            format!(
                "The Resource 'Microsoft.ContainerInstance/containerGroups/{group}' under resource group '{resource_group}' was not found."
            ),
        )
    }

    /// 403 `AuthorizationFailed` as ARM words it: `client` may not perform
    /// `action` over `scope` (the resource's path). It says the same whoever
    /// holds the scope, and names nobody else.
    pub fn authorization_failed(client: &str, action: &str, scope: &str) -> Self {
        Self::new(
            403,
            "AuthorizationFailed",
            format!(
                "The client '{client}' with object id '{client}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
            ),
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if !self.details.is_empty() {
            error["details"] = self
                .details
                .iter()
                .map(|(target, message)| {
                    json!({"code": self.code, "target": target, "message": message})
                })
                .collect();
        }
        json!({ "error": error })
    }
}

/// ARM's path of a field the host or a scheduler named in spec terms:
/// `containers[1].gpu.models` is the SKU of the second container's GPU
/// request.
fn arm_field(spec_field: &str) -> String {
    if spec_field == "containers" {
        return "properties.containers".into();
    }
    let Some(rest) = spec_field.strip_prefix("containers[") else {
        return spec_field.to_string();
    };
    let Some((index, field)) = rest.split_once("].") else {
        return spec_field.to_string();
    };
    if field == "name" {
        return format!("properties.containers[{index}].name");
    }
    let resource = match field {
        "gpu.count" => "resources.requests.gpu.count",
        "gpu.models" | "gpu.device-ids" => "resources.requests.gpu.sku",
        "gpu.memory" => "resources.requests.gpu",
        "resources.cpu" => "resources.requests.cpu",
        "resources.memory" => "resources.requests.memoryInGB",
        "env" => "environmentVariables",
        other => other,
    };
    format!("properties.containers[{index}].properties.{resource}")
}

impl From<Error> for CloudError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => Self::new(404, "ResourceNotFound", m),
            Error::Invalid(i) if i.fields.is_empty() => {
                Self::invalid(vec![(String::new(), i.message)])
            }
            Error::Invalid(i) => Self::invalid(
                i.fields
                    .into_iter()
                    .map(|f| (arm_field(&f.field), f.message))
                    .collect(),
            ),
            Error::Forbidden(m) => Self::new(403, "AuthorizationFailed", m),
            Error::Unauthenticated(m) => Self::new(401, "AuthenticationFailed", m),
            Error::Conflict(m) if m.starts_with(gantry_sdk::ingress::NAME_TAKEN) => Self::new(
                409,
                "DnsNameLabelNotAvailable",
                format!("The DNS name label is not available ({m}). Try using a different label."),
            ),
            Error::Conflict(m) => Self::new(409, "Conflict", m),
            Error::Unsupported(m) => Self::new(400, "NotSupported", m),
            Error::Unavailable(m) => Self::new(503, "ServiceUnavailable", m),
            // The runtime refused the deployment (unknown image, bad option):
            // a client-side problem that retrying will not fix.
            Error::Backend(m) => Self::new(400, "ContainerGroupDeploymentFailed", m),
            Error::Internal(m) => Self::new(500, "InternalServerError", m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_carry_targets() {
        let e = CloudError::invalid(vec![("properties.containers".into(), "required".into())]);
        assert_eq!(e.status, 400);
        let body = e.body();
        assert_eq!(body["error"]["code"], "InvalidRequestContent");
        assert_eq!(
            body["error"]["details"][0]["target"],
            "properties.containers"
        );
    }

    #[test]
    fn backend_refusals_are_not_retryable_server_errors() {
        let e = CloudError::from(Error::Backend("no such image".into()));
        assert_eq!(e.status, 400);
    }
}
