//! Which hosted session to join when a device looks for one on its network instead of
//! being given a URL (`jamz node --discover`), and which of the member's groups is the
//! session. Pure: the adapter (jamz-node's mDNS browser, the REST group list) brings
//! what it found, this decides.
//!
//! The rule: exactly one session found is joined; several are joined only when a name
//! was asked for and picks one of them (the same name, or a unique part of a name,
//! letter case ignored); otherwise the person chooses, from the list the error gives.

use std::fmt;

/// A session announced on this network (docs/protocol.md, "Finding a hosted session").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSession {
    /// The name the host announced ("TrafficJamz on ann-laptop").
    pub name: String,
    /// The server's base URL, as this device reaches it (`http://10.42.0.1:5050`).
    pub url: String,
}

/// What to do with the sessions found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionPick<'a> {
    Join(&'a FoundSession),
    /// Nothing answered.
    NoneFound,
    /// More than one fits: the person chooses.
    Several(Vec<&'a FoundSession>),
    /// Some were found, but none is the one asked for.
    NoMatch {
        wanted: String,
    },
}

/// Picks the session to join among `found`; `wanted` is a name the person gave.
pub fn pick_session<'a>(found: &'a [FoundSession], wanted: Option<&str>) -> SessionPick<'a> {
    let mut unique: Vec<&FoundSession> = Vec::new();
    for f in found {
        if !unique.iter().any(|u| u.name == f.name) {
            unique.push(f);
        }
    }
    if unique.is_empty() {
        return SessionPick::NoneFound;
    }
    let Some(wanted) = wanted.map(str::trim).filter(|w| !w.is_empty()) else {
        return match unique.as_slice() {
            [one] => SessionPick::Join(one),
            _ => SessionPick::Several(unique),
        };
    };
    let lower = wanted.to_lowercase();
    let exact: Vec<&FoundSession> = unique
        .iter()
        .copied()
        .filter(|f| f.name.to_lowercase() == lower)
        .collect();
    let candidates = if exact.is_empty() {
        unique
            .iter()
            .copied()
            .filter(|f| f.name.to_lowercase().contains(&lower))
            .collect()
    } else {
        exact
    };
    match candidates.as_slice() {
        [] => SessionPick::NoMatch {
            wanted: wanted.to_owned(),
        },
        [one] => SessionPick::Join(one),
        _ => SessionPick::Several(candidates),
    }
}

/// A group of the member's on the found server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChoice {
    pub id: String,
    pub name: String,
}

/// What to do with the member's groups when none was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupPick<'a> {
    Join(&'a GroupChoice),
    /// The member is in no group there: the host has to add them.
    NoGroup,
    /// The person chooses (`--group`).
    Several(Vec<&'a GroupChoice>),
}

/// A member in one group joins its session; in several, the person names one.
pub fn pick_group(groups: &[GroupChoice]) -> GroupPick<'_> {
    match groups {
        [] => GroupPick::NoGroup,
        [one] => GroupPick::Join(one),
        many => GroupPick::Several(many.iter().collect()),
    }
}

/// A list for an error message: `"Ann's car" (http://10.42.0.1:5050), "Bob" (...)`.
pub struct SessionList<'a>(pub &'a [&'a FoundSession]);

impl fmt::Display for SessionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{}\" ({})", s.name, s.url)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn found(name: &str, port: u16) -> FoundSession {
        FoundSession {
            name: name.into(),
            url: format!("http://10.42.0.1:{port}"),
        }
    }

    #[test]
    fn one_session_is_joined_without_a_name() {
        let list = [found("Ann's car", 5050)];
        assert_eq!(pick_session(&list, None), SessionPick::Join(&list[0]));
    }

    #[test]
    fn nothing_found_is_said() {
        assert_eq!(pick_session(&[], None), SessionPick::NoneFound);
        assert_eq!(pick_session(&[], Some("Ann")), SessionPick::NoneFound);
    }

    #[test]
    fn several_need_a_choice() {
        let list = [found("Ann's car", 5050), found("Bob's van", 5051)];
        assert_eq!(
            pick_session(&list, None),
            SessionPick::Several(vec![&list[0], &list[1]])
        );
        assert_eq!(
            SessionList(&[&list[0], &list[1]]).to_string(),
            "\"Ann's car\" (http://10.42.0.1:5050), \"Bob's van\" (http://10.42.0.1:5051)"
        );
    }

    #[test]
    fn a_name_picks_one_by_exact_name_or_unique_part() {
        let list = [
            found("Ann", 5050),
            found("Ann's van", 5051),
            found("Bob's van", 5052),
        ];
        // "ann" is a whole name: that one, though it is also part of another.
        assert_eq!(
            pick_session(&list, Some("ann")),
            SessionPick::Join(&list[0])
        );
        assert_eq!(
            pick_session(&list, Some("BOB")),
            SessionPick::Join(&list[2])
        );
        assert_eq!(
            pick_session(&list, Some("van")),
            SessionPick::Several(vec![&list[1], &list[2]])
        );
        assert_eq!(
            pick_session(&list, Some("Cara")),
            SessionPick::NoMatch {
                wanted: "Cara".into()
            }
        );
    }

    #[test]
    fn the_same_name_heard_twice_is_one_session() {
        let list = [found("Ann's car", 5050), found("Ann's car", 5050)];
        assert_eq!(pick_session(&list, None), SessionPick::Join(&list[0]));
    }

    #[test]
    fn groups_one_is_joined_none_or_several_are_said() {
        let g = |id: &str| GroupChoice {
            id: id.into(),
            name: format!("trip {id}"),
        };
        assert_eq!(pick_group(&[]), GroupPick::NoGroup);
        let one = [g("a")];
        assert_eq!(pick_group(&one), GroupPick::Join(&one[0]));
        let two = [g("a"), g("b")];
        assert_eq!(pick_group(&two), GroupPick::Several(vec![&two[0], &two[1]]));
    }

    proptest! {
        #![proptest_config(jamz_proto::test_support::proptest_config(256))]

        /// Whatever was announced and asked for, the pick is one of the found sessions,
        /// and joining without a name happens only when exactly one name was heard.
        #[test]
        fn a_pick_is_always_one_of_the_found(
            names in proptest::collection::vec(".{0,12}", 0..6),
            wanted in proptest::option::of(".{0,8}"),
        ) {
            let list: Vec<FoundSession> =
                names.iter().enumerate().map(|(i, n)| found(n, 5000 + i as u16)).collect();
            match pick_session(&list, wanted.as_deref()) {
                SessionPick::Join(s) => prop_assert!(list.contains(s)),
                SessionPick::NoneFound => prop_assert!(list.is_empty()),
                SessionPick::Several(v) => {
                    prop_assert!(v.len() >= 2);
                    prop_assert!(v.iter().all(|s| list.contains(s)));
                }
                SessionPick::NoMatch { .. } => prop_assert!(wanted.is_some() && !list.is_empty()),
            }
        }
    }
}
