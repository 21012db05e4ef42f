//! The `api-version` every ARM request must carry.

use crate::cloud_error::CloudError;

/// Versions of `Microsoft.ContainerInstance` this frontend answers: the GA
/// and preview versions of the published REST specification, including the
/// Python SDK's default (2023-05-01) and the Azure CLI's (2024-05-01-preview).
pub const SUPPORTED: &[&str] = &[
    "2018-10-01",
    "2019-12-01",
    "2020-11-01",
    "2021-03-01",
    "2021-07-01",
    "2021-09-01",
    "2021-10-01",
    "2022-09-01",
    "2022-10-01-preview",
    "2023-02-01-preview",
    "2023-05-01",
    "2024-05-01-preview",
    "2024-09-01-preview",
    "2024-10-01-preview",
    "2024-11-01-preview",
    "2025-09-01",
];

/// Check the request's `api-version` values against this provider's.
pub fn check(values: &[&str]) -> Result<String, CloudError> {
    check_for(values, "Microsoft.ContainerInstance", SUPPORTED)
}

/// Check the request's `api-version` values against `supported`, the
/// versions of resource type `kind`.
pub fn check_for(values: &[&str], kind: &str, supported: &[&str]) -> Result<String, CloudError> {
    match values {
        [] => Err(CloudError::new(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        [v] if supported.contains(v) => Ok(v.to_string()),
        [v] => Err(CloudError::new(
            400,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for API version '{v}' and type '{kind}'. The supported api-versions are '{}'.",
                supported.join(", ")
            ),
        )),
        _ => Err(CloudError::new(
            400,
            "InvalidApiVersionParameter",
            "The api-version query parameter must be given once.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_and_cli_versions_pass() {
        assert!(check(&["2023-05-01"]).is_ok());
        assert!(check(&["2024-05-01-preview"]).is_ok());
    }

    #[test]
    fn missing_unknown_and_repeated_fail() {
        assert_eq!(
            check(&[]).expect_err("must fail").code,
            "MissingApiVersionParameter"
        );
        assert_eq!(
            check(&["1999-01-01"]).expect_err("must fail").code,
            "NoRegisteredProviderFound"
        );
        assert_eq!(
            check(&["2023-05-01", "2023-05-01"])
                .expect_err("must fail")
                .code,
            "InvalidApiVersionParameter"
        );
    }
}
