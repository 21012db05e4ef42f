//! How many replicas of a container a spec asks for: the container label
//! [`crate::labels::REPLICAS`] (since 0.1.4), 1 when absent. The host
//! refuses a malformed count before any backend sees it; a backend that runs
//! one copy of each container refuses more with [`refuse_many`].

/// The most replicas one container may ask for.
pub const MAX: u32 = 1000;

/// The count `value` asks for, or why it is not one (`1..=MAX`, decimal).
pub fn parse(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=MAX).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{value}` is not a replica count (a whole number from 1 to {MAX})"
        )),
    }
}

/// The replicas asked for by a container with `labels`; 1 when not asked.
pub fn of(labels: &[(String, String)]) -> Result<u32, String> {
    labels
        .iter()
        .find(|(k, _)| k == crate::labels::REPLICAS)
        .map_or(Ok(1), |(_, v)| parse(v))
}

/// For a backend that runs one copy of a container: the message of the
/// `unsupported` error refusing the first container asking for more.
pub fn refuse_many<'a>(
    containers: impl IntoIterator<Item = (&'a str, &'a [(String, String)])>,
    runtime: &str,
) -> Option<String> {
    containers
        .into_iter()
        .find_map(|(name, labels)| match of(labels) {
            Ok(1) => None,
            Ok(n) => Some(format!(
                "container `{name}` asks for {n} replicas ({}); {runtime} runs one copy of each \
             container: use a cluster backend (swarm) for replicas",
                crate::labels::REPLICAS
            )),
            Err(e) => Some(format!("container `{name}`: {e}")),
        })
}

/// For a backend that runs one copy of a container: `unsupported` when a
/// container of `spec` asks for more ([`refuse_many`]); `runtime` names the
/// backend in the message ("the docker backend").
#[cfg(feature = "backend")]
pub fn one_copy_each(
    spec: &crate::backend::gantry::plugin::types::WorkloadSpec,
    runtime: &str,
) -> Result<(), crate::backend::gantry::plugin::types::Error> {
    let containers = spec
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.labels.as_slice()));
    match refuse_many(containers, runtime) {
        Some(why) => Err(crate::backend::gantry::plugin::types::Error::Unsupported(
            why,
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &str) -> Vec<(String, String)> {
        vec![(crate::labels::REPLICAS.to_string(), v.to_string())]
    }

    #[test]
    fn counts_are_whole_numbers_from_one() {
        assert_eq!(of(&[]), Ok(1));
        assert_eq!(of(&l("3")), Ok(3));
        assert_eq!(of(&l(" 7 ")), Ok(7));
        for bad in ["0", "-1", "1.5", "x", "", "1001"] {
            assert!(of(&l(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_copy_backends_refuse_more_than_one() {
        let one = l("1");
        let three = l("3");
        assert_eq!(refuse_many([("a", one.as_slice())], "docker"), None);
        let msg = refuse_many([("a", one.as_slice()), ("b", three.as_slice())], "docker")
            .expect("refused");
        assert!(msg.contains("`b` asks for 3 replicas"), "{msg}");
    }
}
