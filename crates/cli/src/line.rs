//! Typed lines: words (with quotes), the command table's fields, and Tab
//! completion. No I/O here, so all of it is unit-tested.

use crate::commands::{find, Fields, LineArgs, Request, Slot, Spec, COMMANDS};
use crate::known::Known;

/// Splits a line into words: whitespace separates, '…' and "…" group
/// (`label="my party"` is one word), a backslash escapes the next character.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => word.extend(chars.next()),
            Some(_) => word.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == '\\' => {
                word.extend(chars.next());
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("a {q} quote is not closed"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A typed line as a request; `None` for a blank line or a `#` comment.
pub fn parse(line: &str, known: &Known) -> Result<Option<Request>, String> {
    let words = words(line)?;
    let Some((name, args)) = words.split_first() else {
        return Ok(None);
    };
    if name.starts_with('#') {
        return Ok(None);
    }
    let spec = find(name, true).ok_or_else(|| {
        format!("unknown command {name:?}: `help` lists them, Tab completes them")
    })?;
    let fields = split_fields(spec, args)
        .map_err(|message| format!("{message}\nusage: {}", spec.synopsis()))?;
    (spec.build)(&Fields::Line(&fields, known))
        .map(Some)
        .map_err(|message| format!("{message}\nusage: {}", spec.synopsis()))
}

/// `name=value` and `name.key=value` words are options when `name` is a
/// field of the command; other words fill the positional fields in order,
/// then the rest field (text, user ids) takes every word left.
fn split_fields(spec: &Spec, args: &[String]) -> Result<LineArgs, String> {
    let mut fields = LineArgs {
        rest_name: spec.rest.map(|(name, _)| name),
        ..LineArgs::default()
    };
    let mut in_rest = false;
    for word in args {
        if in_rest {
            fields.rest.push(word.clone());
            continue;
        }
        if let Some((key, value)) = word.split_once('=') {
            let (field, sub) = match key.split_once('.') {
                Some((field, sub)) => (field, Some(sub)),
                None => (key, None),
            };
            if spec.has_field(field) {
                match sub {
                    Some(sub) => {
                        fields
                            .maps
                            .entry(field.to_string())
                            .or_default()
                            .insert(sub.to_string(), value.to_string());
                    }
                    None => {
                        fields.scalars.insert(field.to_string(), value.to_string());
                    }
                }
                continue;
            }
            if spec.rest.is_none() {
                return Err(format!("{} has no option {field:?}", spec.name));
            }
        }
        let open_slot = spec
            .positional
            .iter()
            .find(|(name, _)| !fields.scalars.contains_key(*name));
        if let Some((name, _)) = open_slot {
            fields.scalars.insert(name.to_string(), word.clone());
        } else if spec.rest.is_some() {
            in_rest = true;
            fields.rest.push(word.clone());
        } else {
            return Err(format!("unexpected {word:?}"));
        }
    }
    Ok(fields)
}

/// Tab completion: `(where the completed word starts, candidates)`.
/// Command names first; then, by position, the party ids or user ids this
/// session knows, or the command's `name=` options.
pub fn complete(line: &str, pos: usize, known: &Known) -> (usize, Vec<String>) {
    let before = line.get(..pos).unwrap_or(line);
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(index, c)| index + c.len_utf8());
    let prefix = &before[start..];
    let earlier: Vec<&str> = before[..start].split_whitespace().collect();
    let Some((name, args)) = earlier.split_first() else {
        let names = COMMANDS
            .iter()
            .flat_map(|spec| std::iter::once(spec.name).chain(spec.alias))
            .map(|name| format!("{name} "));
        return (start, matching(names, prefix));
    };
    let Some(spec) = find(name, true) else {
        return (start, Vec::new());
    };
    let filled = args
        .iter()
        .filter(|word| match word.split_once('=') {
            Some((key, _)) => !spec.has_field(key.split('.').next().unwrap_or(key)),
            None => true,
        })
        .count();
    let slot = match spec.positional.get(filled) {
        Some((_, slot)) => Some(*slot),
        None => spec.rest.map(|(_, slot)| slot),
    };
    let mut candidates: Vec<String> = match slot {
        Some(Slot::Party) => matching(
            known.party_ids().map(|id| format!("{id} ")),
            &prefix.to_ascii_lowercase(),
        ),
        Some(Slot::User) => matching(known.user_ids().map(|id| format!("{id} ")), prefix),
        Some(Slot::Command) => matching(COMMANDS.iter().map(|spec| spec.name.to_string()), prefix),
        Some(Slot::Other) | None => Vec::new(),
    };
    if !prefix.contains('=') {
        let options = spec
            .options
            .iter()
            .map(|option| format!("{option}{}", if is_map(spec, option) { "." } else { "=" }));
        candidates.extend(matching(options, prefix));
    }
    (start, candidates)
}

/// Options written `name.key=value`.
fn is_map(spec: &Spec, option: &str) -> bool {
    spec.usage.contains(&format!("{option}.KEY"))
}

fn matching(candidates: impl Iterator<Item = String>, prefix: &str) -> Vec<String> {
    candidates
        .filter(|candidate| candidate.starts_with(prefix))
        .collect()
}

/// `help`: every command, or one.
pub fn help(topic: Option<&str>) -> Result<String, String> {
    if let Some(topic) = topic {
        let spec = find(topic, true).ok_or_else(|| format!("no command {topic:?}: try `help`"))?;
        return Ok(describe(spec));
    }
    let mut text = String::from(
        "Commands (PARTY: a full party id, a unique prefix of one, or . for the party you last \
         created or joined; Tab completes commands, party ids and user ids):\n",
    );
    for spec in COMMANDS {
        text.push_str(&describe(spec));
    }
    text.push_str(
        "Quote words with spaces: label=\"my party\". Ctrl-C clears the line, Ctrl-D leaves.",
    );
    Ok(text)
}

fn describe(spec: &Spec) -> String {
    let alias = spec
        .alias
        .map(|alias| format!(" Short: {alias}."))
        .unwrap_or_default();
    format!("  {}\n      {}{alias}\n", spec.synopsis(), spec.about)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use partyline_client::{PartyId, PartySettings, PartyUpdate, TicketRequest};

    fn known_with(ids: &[u128]) -> (Known, Vec<PartyId>) {
        let mut known = Known::default();
        let ids: Vec<PartyId> = ids.iter().map(|n| PartyId::from_u128(*n)).collect();
        for id in &ids {
            known.saw_party(*id);
        }
        (known, ids)
    }

    fn parsed(line: &str, known: &Known) -> Request {
        parse(line, known).unwrap().unwrap()
    }

    #[test]
    fn words_split_on_spaces_and_keep_quoted_text_whole() {
        assert_eq!(
            words(r#"create label="my party"  max_size=4 'a b' c\ d"#).unwrap(),
            ["create", "label=my party", "max_size=4", "a b", "c d"]
        );
        assert_eq!(words(r#"x "say \"hi\"""#).unwrap(), ["x", r#"say "hi""#]);
        assert_eq!(words(r#"x """#).unwrap(), ["x", ""]);
        assert!(words("send . \"open").unwrap_err().contains("not closed"));
        assert!(words("   ").unwrap().is_empty());
    }

    #[test]
    fn lines_become_requests() {
        let (known, ids) = known_with(&[0xabcd << 112, 0x1234 << 112]);
        let known = &known;
        assert_eq!(parse("", known).unwrap(), None);
        assert_eq!(parse("# a comment", known).unwrap(), None);
        assert_eq!(
            parsed("create open=false max_size=8 label=\"my party\" state.mode=ranked invite_policy=any_member", known),
            Request::CreateParty(PartySettings {
                open: false,
                max_size: 8,
                label: "my party".into(),
                invite_policy: partyline_client::InvitePolicy::AnyMember,
                state: [("mode".to_string(), "ranked".to_string())].into(),
                leader_policy: Default::default(),
            })
        );
        assert_eq!(
            parsed("create_party", known),
            Request::CreateParty(PartySettings::default())
        );
        assert_eq!(parsed("join abcd", known), Request::JoinParty(ids[0]));
        assert_eq!(
            parsed(&format!("kick {} bob", ids[1]), known),
            Request::Kick(ids[1], "bob".into())
        );
        assert_eq!(
            parsed("send 1234 op_code=7 hello   there", known),
            Request::SendData {
                party_id: ids[1],
                op_code: 7,
                data: b"hello there".to_vec(),
                reliable: false
            }
        );
        // Text that looks like an option of another command stays text.
        assert_eq!(
            parsed("rsend 1234 score=10", known),
            Request::SendData {
                party_id: ids[1],
                op_code: 0,
                data: b"score=10".to_vec(),
                reliable: true
            }
        );
        assert_eq!(
            parsed("send_data 1234 base64=AJ//", known),
            Request::SendData {
                party_id: ids[1],
                op_code: 0,
                data: vec![0, 0x9f, 0xff],
                reliable: false
            }
        );
        assert_eq!(
            parsed("update abcd label=x open=no", known),
            Request::UpdateParty(
                ids[0],
                PartyUpdate {
                    open: Some(false),
                    label: Some("x".into()),
                    ..PartyUpdate::default()
                }
            )
        );
        assert_eq!(
            parsed("follow ana bob", known),
            Request::Follow(vec!["ana".into(), "bob".into()])
        );
        assert_eq!(
            parsed("status visible=false away for lunch", known),
            Request::SetStatus {
                status: "away for lunch".into(),
                visible: false
            }
        );
        assert_eq!(
            parsed(
                "state abcd set.map=dust set.mode=ranked remove=old,older",
                known
            ),
            Request::SetPartyState {
                party_id: ids[0],
                set: [
                    ("map".to_string(), "dust".to_string()),
                    ("mode".to_string(), "ranked".to_string())
                ]
                .into(),
                remove: vec!["old".into(), "older".into()],
            }
        );
        assert_eq!(
            parsed("ban abcd carl seconds=60", known),
            Request::Ban {
                party_id: ids[0],
                user_id: "carl".into(),
                duration: Some(std::time::Duration::from_secs(60)),
            }
        );
        let Request::SubmitTicket(ticket) = parsed(
            "ticket min_count=2 max_count=4 party_id=abcd numbers.skill=1200 query_ranges.skill=1000..1400",
            known,
        ) else {
            panic!("a ticket");
        };
        assert_eq!(
            (
                ticket.party_id,
                ticket.min_count,
                ticket.max_count,
                ticket.count_multiple
            ),
            (Some(ids[0]), 2, 4, 1)
        );
        assert_eq!(ticket.numbers["skill"], 1200);
        assert_eq!(ticket.query.ranges["skill"].max, 1400);
        assert_eq!(ticket.members, TicketRequest::default().members);
        assert_eq!(parsed("cancel 17", known), Request::CancelTicket(17));
        assert_eq!(
            parsed("help join", known),
            Request::Help(Some("join".into()))
        );
        assert_eq!(parsed("exit", known), Request::Quit);
    }

    #[test]
    fn bad_lines_say_what_is_wrong_and_how_the_command_goes() {
        let (known, _) = known_with(&[1]);
        let error = |line: &str| parse(line, &known).unwrap_err();
        assert!(error("fly away").contains("unknown command \"fly\""));
        let missing = error("join");
        assert!(missing.contains("missing party_id"), "{missing}");
        assert!(missing.contains("usage: join_party PARTY"), "{missing}");
        assert!(error("join zz").contains("not a party id"));
        assert!(error("create max_size=lots").contains("whole number"));
        assert!(error("create max_size=70000").contains("out of range"));
        assert!(error("create open=maybe").contains("true or false"));
        assert!(error("create colour=red").contains("no option \"colour\""));
        assert!(error("kick . bob").contains("none yet"));
        assert!(error("get 0000 extra").contains("unexpected \"extra\""));
        assert!(error("ban 0000 bob seconds=-1").contains(">= 0"));
        assert!(error("send 0000 text=a base64=YQ==").contains("not both"));
        assert!(error("ticket min_count=1 max_count=2 query_ranges.x=5").contains("MIN..MAX"));
    }

    #[test]
    fn tab_completes_commands_then_known_ids_then_options() {
        let (mut known, ids) = known_with(&[0xabcd << 112]);
        known.saw_user_id("bob");
        let (start, names) = complete("crea", 4, &known);
        assert_eq!(start, 0);
        assert_eq!(names, ["create_party ", "create ", "create_join_code "]);
        assert_eq!(complete("whoa", 4, &known).1, ["whoami "]);

        let line = "get_party ";
        let (start, parties) = complete(line, line.len(), &known);
        assert_eq!((start, parties), (10, vec![format!("{} ", ids[0])]));
        let line = "kick AB";
        assert_eq!(
            complete(line, line.len(), &known).1,
            [format!("{} ", ids[0])]
        );
        let line = format!("kick {} b", ids[0]);
        assert_eq!(complete(&line, line.len(), &known).1, ["bob "]);
        let line = "follow ana b";
        assert_eq!(complete(line, line.len(), &known).1, ["bob "]);
        let line = "create max";
        assert_eq!(complete(line, line.len(), &known).1, ["max_size="]);
        let line = "create label=x st";
        assert_eq!(complete(line, line.len(), &known).1, ["state."]);
        let line = "help jo";
        assert_eq!(
            complete(line, line.len(), &known).1,
            ["join_party", "join_by_code"]
        );
        assert!(complete("nope ", 5, &known).1.is_empty());
    }

    #[test]
    fn help_lists_every_command_with_its_syntax() {
        let text = help(None).unwrap();
        for spec in COMMANDS {
            assert!(text.contains(&spec.synopsis()), "{}", spec.name);
        }
        assert!(help(Some("rsend"))
            .unwrap()
            .contains("send_data_reliable PARTY"));
        assert!(help(Some("nope")).is_err());
    }
}
