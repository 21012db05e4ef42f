//! ARM request paths, matched case-insensitively on their fixed segments as
//! ARM does, with the caller's spelling of names kept for resource ids.

/// The provider namespace every path of this frontend goes through.
pub const PROVIDER: &str = "Microsoft.ContainerInstance";

/// A resource group: subscription and group name, as the caller spelled them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroup {
    /// Subscription id.
    pub subscription: String,
    /// Resource group name.
    pub name: String,
}

impl ResourceGroup {
    /// The control-plane namespace of this resource group. ARM names are
    /// case-insensitive, so the namespace is lower-cased.
    pub fn namespace(&self) -> String {
        format!(
            "{}/resourcegroups/{}",
            subscription_namespace(&self.subscription),
            self.name.to_lowercase()
        )
    }

    /// `/subscriptions/{sub}/resourceGroups/{rg}`.
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.name
        )
    }

    /// The ARM id of a container group in this resource group.
    pub fn group_id(&self, group: &str) -> String {
        format!("{}/providers/{PROVIDER}/containerGroups/{group}", self.id())
    }
}

/// The namespace prefix shared by every resource group of a subscription.
pub fn subscription_namespace(subscription: &str) -> String {
    format!("/subscriptions/{}", subscription.to_lowercase())
}

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/providers/Microsoft.ContainerInstance/operations`
    ProviderOperations,
    /// `/subscriptions/{sub}/providers/Microsoft.ContainerInstance/containerGroups`
    SubscriptionGroups { subscription: String },
    /// `/subscriptions/{sub}/providers/Microsoft.ContainerInstance/locations/{loc}/{what}`
    Location {
        subscription: String,
        location: String,
        what: LocationList,
    },
    /// `.../locations/{loc}/operations/{id}`: a long-running operation's status.
    OperationStatus {
        subscription: String,
        location: String,
        operation: String,
    },
    /// `.../resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups`
    ResourceGroupGroups { group: ResourceGroup },
    /// `.../containerGroups/{name}`
    Group { group: ResourceGroup, name: String },
    /// `.../containerGroups/{name}/{restart|stop|start}`
    GroupAction {
        group: ResourceGroup,
        name: String,
        action: GroupAction,
    },
    /// `.../containerGroups/{name}/containers/{container}/{logs|exec|attach}`
    Container {
        group: ResourceGroup,
        name: String,
        container: String,
        what: ContainerEndpoint,
    },
}

/// Lists served per location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationList {
    /// `usages`
    Usages,
    /// `capabilities`
    Capabilities,
    /// `cachedImages`
    CachedImages,
}

/// POST actions on a container group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    /// `restart`
    Restart,
    /// `stop`
    Stop,
    /// `start`
    Start,
}

/// Endpoints under one container of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEndpoint {
    /// `logs` (GET)
    Logs,
    /// `exec` (POST)
    Exec,
    /// `attach` (POST)
    Attach,
}

impl Route {
    /// The subscription the route lies in; none for provider-wide ones.
    pub fn subscription(&self) -> Option<&str> {
        match self {
            Route::ProviderOperations => None,
            Route::SubscriptionGroups { subscription }
            | Route::Location { subscription, .. }
            | Route::OperationStatus { subscription, .. } => Some(subscription),
            Route::ResourceGroupGroups { group }
            | Route::Group { group, .. }
            | Route::GroupAction { group, .. }
            | Route::Container { group, .. } => Some(&group.subscription),
        }
    }

    /// The authorization action ARM names for this route and `method`
    /// (in an `AuthorizationFailed` message).
    pub fn action(&self, write: bool, delete: bool) -> String {
        let groups = format!("{PROVIDER}/containerGroups");
        match self {
            Route::ProviderOperations => format!("{PROVIDER}/operations/read"),
            Route::Location { .. } | Route::OperationStatus { .. } => {
                format!("{PROVIDER}/locations/read")
            }
            Route::SubscriptionGroups { .. } | Route::ResourceGroupGroups { .. } => {
                format!("{groups}/read")
            }
            Route::Group { .. } if delete => format!("{groups}/delete"),
            Route::Group { .. } if write => format!("{groups}/write"),
            Route::Group { .. } => format!("{groups}/read"),
            Route::GroupAction { action, .. } => {
                let a = match action {
                    GroupAction::Restart => "restart",
                    GroupAction::Stop => "stop",
                    GroupAction::Start => "start",
                };
                format!("{groups}/{a}/action")
            }
            Route::Container { what, .. } => match what {
                ContainerEndpoint::Logs => format!("{groups}/containers/logs/read"),
                ContainerEndpoint::Exec => format!("{groups}/containers/exec/action"),
                ContainerEndpoint::Attach => format!("{groups}/containers/attach/action"),
            },
        }
    }
}

fn is(segment: &str, keyword: &str) -> bool {
    segment.eq_ignore_ascii_case(keyword)
}

/// Match a path (without its query) to a route; `None` for paths outside the API.
pub fn parse(path: &str) -> Option<Route> {
    let s: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    if s.iter().any(|seg| seg.is_empty()) {
        return None;
    }
    match s.as_slice() {
        [p, ns, ops] if is(p, "providers") && is(ns, PROVIDER) && is(ops, "operations") => {
            Some(Route::ProviderOperations)
        }
        [subs, sub, p, ns, rest @ ..]
            if is(subs, "subscriptions") && is(p, "providers") && is(ns, PROVIDER) =>
        {
            let subscription = sub.to_string();
            match rest {
                [cg] if is(cg, "containerGroups") => {
                    Some(Route::SubscriptionGroups { subscription })
                }
                [l, loc, ops, id] if is(l, "locations") && is(ops, "operations") => {
                    Some(Route::OperationStatus {
                        subscription,
                        location: loc.to_string(),
                        operation: id.to_string(),
                    })
                }
                [l, loc, what] if is(l, "locations") => {
                    let what = if is(what, "usages") {
                        LocationList::Usages
                    } else if is(what, "capabilities") {
                        LocationList::Capabilities
                    } else if is(what, "cachedImages") {
                        LocationList::CachedImages
                    } else {
                        return None;
                    };
                    Some(Route::Location {
                        subscription,
                        location: loc.to_string(),
                        what,
                    })
                }
                _ => None,
            }
        }
        [subs, sub, rgs, rg, p, ns, cg, rest @ ..]
            if is(subs, "subscriptions")
                && is(rgs, "resourceGroups")
                && is(p, "providers")
                && is(ns, PROVIDER)
                && is(cg, "containerGroups") =>
        {
            let group = ResourceGroup {
                subscription: sub.to_string(),
                name: rg.to_string(),
            };
            match rest {
                [] => Some(Route::ResourceGroupGroups { group }),
                [name] => Some(Route::Group {
                    group,
                    name: name.to_string(),
                }),
                [name, action] => {
                    let action = if is(action, "restart") {
                        GroupAction::Restart
                    } else if is(action, "stop") {
                        GroupAction::Stop
                    } else if is(action, "start") {
                        GroupAction::Start
                    } else {
                        return None;
                    };
                    Some(Route::GroupAction {
                        group,
                        name: name.to_string(),
                        action,
                    })
                }
                [name, cs, container, what] if is(cs, "containers") => {
                    let what = if is(what, "logs") {
                        ContainerEndpoint::Logs
                    } else if is(what, "exec") {
                        ContainerEndpoint::Exec
                    } else if is(what, "attach") {
                        ContainerEndpoint::Attach
                    } else {
                        return None;
                    };
                    Some(Route::Container {
                        group,
                        name: name.to_string(),
                        container: container.to_string(),
                        what,
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_paths_keep_spelling_and_ignore_keyword_case() {
        let r = parse(
            "/subscriptions/Sub1/resourcegroups/MyRG/providers/microsoft.containerinstance/containerGroups/web",
        );
        let Some(Route::Group { group, name }) = r else {
            panic!("not a group route: {r:?}");
        };
        assert_eq!(name, "web");
        assert_eq!(group.id(), "/subscriptions/Sub1/resourceGroups/MyRG");
        assert_eq!(group.namespace(), "/subscriptions/sub1/resourcegroups/myrg");
    }

    #[test]
    fn every_endpoint_parses() {
        let base = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups";
        assert!(matches!(
            parse(base),
            Some(Route::ResourceGroupGroups { .. })
        ));
        assert!(matches!(
            parse(&format!("{base}/g/restart")),
            Some(Route::GroupAction {
                action: GroupAction::Restart,
                ..
            })
        ));
        assert!(matches!(
            parse(&format!("{base}/g/containers/c/logs")),
            Some(Route::Container {
                what: ContainerEndpoint::Logs,
                ..
            })
        ));
        assert!(matches!(
            parse(
                "/subscriptions/s/providers/Microsoft.ContainerInstance/locations/westeurope/operations/x"
            ),
            Some(Route::OperationStatus { .. })
        ));
        assert!(matches!(
            parse("/providers/Microsoft.ContainerInstance/operations"),
            Some(Route::ProviderOperations)
        ));
        assert_eq!(parse(&format!("{base}/g/reboot")), None);
        assert_eq!(
            parse("/subscriptions/s/providers/Microsoft.Compute/virtualMachines"),
            None
        );
        assert_eq!(
            parse(
                "/subscriptions//resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups"
            ),
            None
        );
    }
}
