//! The device's Ditto thing and the topics that carry it.
//!
//! Kanto's container thing is `<deviceId>:edge:containers`; Ditto splits a
//! thing id at its first colon into namespace and name. Seed 003 documents
//! the same commands addressed to the device id itself (`edge:device`,
//! Ditto topic `edge/device/...`): both spellings are served.

/// Suffix Kanto appends to the device id for the containers thing.
pub const CONTAINERS_SUFFIX: &str = ":edge:containers";

/// Who the device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Hono device id, e.g. `edge:device`.
    pub device_id: String,
    /// Hono tenant.
    pub tenant_id: String,
}

/// Which spelling of the thing a command used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// `<deviceId>:edge:containers`, as Kanto runs.
    Kanto,
    /// `<deviceId>`, as seed 003 documents.
    Documented,
}

impl Device {
    /// The containers thing id.
    pub fn thing_id(&self) -> String {
        format!("{}{CONTAINERS_SUFFIX}", self.device_id)
    }

    /// The thing a Hono command addresses, if it is this device's.
    pub fn spelling_of(&self, thing: &str) -> Option<Spelling> {
        if thing == self.thing_id() {
            Some(Spelling::Kanto)
        } else if thing == self.device_id {
            Some(Spelling::Documented)
        } else {
            None
        }
    }

    /// The thing id a spelling stands for.
    pub fn thing_for(&self, spelling: Spelling) -> String {
        match spelling {
            Spelling::Kanto => self.thing_id(),
            Spelling::Documented => self.device_id.clone(),
        }
    }

    /// Where twin updates and live messages go: `e/<tenant>/<thingId>`.
    pub fn event_topic(&self) -> String {
        format!("e/{}/{}", self.tenant_id, self.thing_id())
    }
}

/// `<namespace>/<name>` of a thing id, split at its first colon.
pub fn ditto_prefix(thing: &str) -> String {
    match thing.split_once(':') {
        Some((ns, name)) => format!("{ns}/{name}"),
        None => format!("/{thing}"),
    }
}

/// A parsed Hono command topic `command//<thingId>/req/<reqId>/<subject>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTopic {
    /// The addressed thing.
    pub thing: String,
    /// Request id; empty means "no response".
    pub req_id: String,
    /// Hono subject (the operation, informational only).
    pub subject: String,
}

/// Parse a command topic; `None` for other topics.
pub fn parse_command(topic: &str) -> Option<CommandTopic> {
    let rest = topic.strip_prefix("command//")?;
    let (thing, rest) = rest.split_once("/req/")?;
    let (req_id, subject) = rest.split_once('/').unwrap_or((rest, ""));
    Some(CommandTopic {
        thing: thing.to_string(),
        req_id: req_id.to_string(),
        subject: subject.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_and_ditto_prefixes() {
        let d = Device {
            device_id: "edge:device".into(),
            tenant_id: "t1".into(),
        };
        assert_eq!(d.thing_id(), "edge:device:edge:containers");
        assert_eq!(ditto_prefix(&d.thing_id()), "edge/device:edge:containers");
        assert_eq!(ditto_prefix("edge:device"), "edge/device");
        assert_eq!(d.spelling_of("edge:device"), Some(Spelling::Documented));
        assert_eq!(d.spelling_of("other:device"), None);
        assert_eq!(d.event_topic(), "e/t1/edge:device:edge:containers");
    }

    #[test]
    fn command_topics() {
        let c = parse_command("command//edge:device/req//start").expect("a command");
        assert_eq!(
            (c.thing.as_str(), c.req_id.as_str(), c.subject.as_str()),
            ("edge:device", "", "start")
        );
        let c =
            parse_command("command//edge:device:edge:containers/req/r-17/stop").expect("a command");
        assert_eq!(c.req_id, "r-17");
        assert!(parse_command("edge/thing/response").is_none());
    }
}
