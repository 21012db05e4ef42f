//! The few `Microsoft.Resources` calls ACI clients make around the
//! container-instance provider: the Azure CLI lists the caller's
//! subscriptions at `az login`, and reads a resource group's location when
//! `az container create` is given none.
//!
//! In gantry both are implicit namespaces (any subscription and resource
//! group may hold container groups), so what is answered is what the control
//! plane knows: the subscriptions this frontend is configured to offer
//! (`subscriptions`) and those the caller's container groups are in; a
//! resource group is where its container groups are, or `default-location`.

use crate::cloud_error::CloudError;
use crate::path::ResourceGroup;
use crate::{Answer, Ctx, Reply, spec, view};
use gantry_sdk::http_frontend::gantry::plugin::config;
use gantry_sdk::http_frontend::gantry::plugin::control::{self, PageRequest, WorkloadFilter};
use serde_json::{Value, json};

/// Versions of the subscriptions API (`Microsoft.Resources/subscriptions`)
/// answered, the Azure CLI 2.66's (2022-12-01) among them.
pub const SUBSCRIPTION_VERSIONS: &[&str] = &[
    "2016-06-01",
    "2019-06-01",
    "2019-11-01",
    "2020-01-01",
    "2021-01-01",
    "2022-12-01",
];

/// Versions of the resource-groups API (`Microsoft.Resources/resourceGroups`)
/// answered, the Azure CLI 2.66's (2022-09-01) among them.
pub const RESOURCE_GROUP_VERSIONS: &[&str] = &[
    "2019-10-01",
    "2020-06-01",
    "2020-10-01",
    "2021-01-01",
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
];

/// Tenant reported when `tenant-id` is not configured.
const NO_TENANT: &str = "00000000-0000-0000-0000-000000000000";

/// Container groups read per page while collecting subscriptions.
const SCAN_ROWS: u32 = 1000;

/// A `Microsoft.Resources` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/subscriptions`
    Subscriptions,
    /// `/subscriptions/{sub}`
    Subscription { subscription: String },
    /// `/subscriptions/{sub}/resourcegroups/{rg}`
    ResourceGroup { group: ResourceGroup },
}

impl Route {
    /// The resource type, for api-version errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::ResourceGroup { .. } => "resourceGroups",
            _ => "subscriptions",
        }
    }

    /// The subscription the route lies in; none for the list of them and
    /// for a subscription itself (one the caller cannot see is not found,
    /// as ARM answers).
    pub fn subscription(&self) -> Option<&str> {
        match self {
            Route::Subscriptions | Route::Subscription { .. } => None,
            Route::ResourceGroup { group } => Some(&group.subscription),
        }
    }

    /// The authorization action ARM names for this route.
    pub fn action(&self) -> &'static str {
        match self {
            Route::ResourceGroup { .. } => "Microsoft.Resources/subscriptions/resourceGroups/read",
            _ => "Microsoft.Resources/subscriptions/read",
        }
    }

    /// The api-versions this route answers.
    pub fn versions(&self) -> &'static [&'static str] {
        match self {
            Route::ResourceGroup { .. } => RESOURCE_GROUP_VERSIONS,
            _ => SUBSCRIPTION_VERSIONS,
        }
    }
}

/// Match a path to a `Microsoft.Resources` route.
pub fn parse(path: &str) -> Option<Route> {
    let s: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    if s.iter().any(|seg| seg.is_empty()) {
        return None;
    }
    let is = |seg: &str, keyword: &str| seg.eq_ignore_ascii_case(keyword);
    match s.as_slice() {
        [subs] if is(subs, "subscriptions") => Some(Route::Subscriptions),
        [subs, sub] if is(subs, "subscriptions") => Some(Route::Subscription {
            subscription: sub.to_string(),
        }),
        [subs, sub, rgs, rg] if is(subs, "subscriptions") && is(rgs, "resourceGroups") => {
            Some(Route::ResourceGroup {
                group: ResourceGroup {
                    subscription: sub.to_string(),
                    name: rg.to_string(),
                },
            })
        }
        _ => None,
    }
}

/// Answer a `Microsoft.Resources` route; `None` for a method it does not take.
pub fn dispatch(ctx: &Ctx, route: &Route) -> Option<Answer> {
    use gantry_sdk::wasip2::http::types::Method;
    let get = matches!(ctx.req.method, Method::Get);
    let head = matches!(ctx.req.method, Method::Head);
    Some(match route {
        Route::Subscriptions if get => subscriptions(ctx).map(|subs| {
            let value: Vec<Value> = subs.iter().map(|s| subscription(s)).collect();
            Reply::ok(200, json!({ "value": value }))
        }),
        Route::Subscription { subscription: id } if get => subscriptions(ctx).and_then(|subs| {
            match subs.iter().find(|s| s.eq_ignore_ascii_case(id)) {
                Some(s) => Ok(Reply::ok(200, subscription(s))),
                None => Err(CloudError::new(
                    404,
                    "SubscriptionNotFound",
                    format!("The subscription '{id}' could not be found."),
                )),
            }
        }),
        Route::ResourceGroup { group } if get => {
            location(ctx, group).map(|l| Reply::ok(200, resource_group(group, &l)))
        }
        // `az group exists`: every resource group exists in gantry.
        Route::ResourceGroup { .. } if head => Ok(Reply::empty(204)),
        _ => return None,
    })
}

/// The methods a route answers, for 405s.
pub fn allowed(route: &Route) -> &'static str {
    match route {
        Route::ResourceGroup { .. } => "GET, HEAD",
        _ => "GET",
    }
}

/// The configured subscriptions, then those the caller's container groups
/// are in, each once (ARM ids compare case-insensitively).
fn subscriptions(ctx: &Ctx) -> Result<Vec<String>, CloudError> {
    let mut found: Vec<String> = config::get("subscriptions")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let filter = WorkloadFilter {
        namespace_prefix: Some("/subscriptions/".into()),
        ..ctx.filter()
    };
    let mut seen = 0u64;
    for page in 1.. {
        let result = control::list(
            &filter,
            PageRequest {
                page,
                rows: SCAN_ROWS,
            },
        )?;
        seen += result.items.len() as u64;
        for w in &result.items {
            let sub = view::annotation(w, spec::keys::SUBSCRIPTION)
                .map(str::to_string)
                .or_else(|| {
                    w.namespace
                        .strip_prefix("/subscriptions/")
                        .and_then(|rest| rest.split('/').next())
                        .map(str::to_string)
                });
            if let Some(sub) = sub
                && !found.iter().any(|f| f.eq_ignore_ascii_case(&sub))
            {
                found.push(sub);
            }
        }
        if result.items.is_empty() || seen >= result.total {
            break;
        }
    }
    Ok(found)
}

/// ARM's subscription resource.
fn subscription(id: &str) -> Value {
    let tenant = config::get("tenant-id").unwrap_or_else(|| NO_TENANT.into());
    json!({
        "id": format!("/subscriptions/{id}"),
        "subscriptionId": id,
        "tenantId": tenant,
        "displayName": config::get("subscription-name").unwrap_or_else(|| "gantry".into()),
        "state": "Enabled",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionPolicies": {"spendingLimit": "Off"},
    })
}

/// Where `group`'s container groups are (the first one's location), or
/// `default-location` (`local` when unset) for a group with none.
fn location(ctx: &Ctx, group: &ResourceGroup) -> Result<String, CloudError> {
    let filter = WorkloadFilter {
        namespace: Some(group.namespace()),
        ..ctx.filter()
    };
    let first = control::list(&filter, PageRequest { page: 1, rows: 1 })?
        .items
        .into_iter()
        .next();
    Ok(first
        .as_ref()
        .and_then(|w| view::annotation(w, spec::keys::LOCATION))
        .map(str::to_string)
        .or_else(|| config::get("default-location"))
        .unwrap_or_else(|| "local".into()))
}

/// ARM's resource-group resource.
fn resource_group(group: &ResourceGroup, location: &str) -> Value {
    json!({
        "id": group.id(),
        "name": group.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": location,
        "properties": {"provisioningState": "Succeeded"},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_manager_paths_parse() {
        assert_eq!(parse("/subscriptions"), Some(Route::Subscriptions));
        assert_eq!(parse("/Subscriptions/"), Some(Route::Subscriptions));
        assert_eq!(
            parse("/subscriptions/Sub1"),
            Some(Route::Subscription {
                subscription: "Sub1".into()
            })
        );
        let Some(Route::ResourceGroup { group }) = parse("/subscriptions/s/resourcegroups/My-RG")
        else {
            panic!("not a resource group");
        };
        assert_eq!(group.id(), "/subscriptions/s/resourceGroups/My-RG");
        assert_eq!(parse("/subscriptions/s/resourcegroups"), None);
        assert_eq!(parse("/subscriptions//resourcegroups/rg"), None);
        assert_eq!(parse("/subscriptions/s/providers/Microsoft.Compute"), None);
    }

    #[test]
    fn versions_are_per_resource_type() {
        assert!(Route::Subscriptions.versions().contains(&"2022-12-01"));
        let rg = parse("/subscriptions/s/resourceGroups/rg").expect("route");
        assert!(rg.versions().contains(&"2022-09-01"));
        assert_eq!(rg.kind(), "resourceGroups");
    }
}
