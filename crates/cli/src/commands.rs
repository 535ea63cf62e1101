//! One table of commands for both front ends: each entry names its fields
//! once, and one builder turns them into a [`Request`] whether they came
//! from a typed line or a JSON object. [`execute`] runs a request on the SDK.

use partyline_client::protocol::Welcome;
use partyline_client::{
    Client, ClientError, InvitePolicy, JoinOutcome, KeyValues, LeaderPolicy, MemberProperties,
    NumberRange, Numbers, Party, PartyBan, PartyId, PartyInvite, PartySearch, PartySettings,
    PartyUpdate, Presence, SearchPage, TicketQuery, TicketRequest, UserStatus,
};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::known::Known;
use base64::Engine as _;

/// What a word of a typed line stands for: decides what Tab offers there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Party,
    User,
    Command,
    Other,
}

/// One command: its name (the JSON `cmd` too), its fields, and its help.
pub struct Spec {
    pub name: &'static str,
    /// A shorter name for typing; the JSON mode takes `name` only.
    pub alias: Option<&'static str>,
    /// Fields taken in order from the words after the command, on a line.
    pub positional: &'static [(&'static str, Slot)],
    /// A field that takes the rest of the line (text, user ids).
    pub rest: Option<(&'static str, Slot)>,
    /// Fields given as `name=value` (`name.key=value` for a map) on a line.
    pub options: &'static [&'static str],
    /// The line syntax after the name, for `help`.
    pub usage: &'static str,
    pub about: &'static str,
    pub build: fn(&Fields<'_>) -> Result<Request, String>,
}

impl Spec {
    pub fn fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.positional
            .iter()
            .map(|(name, _)| *name)
            .chain(self.rest.map(|(name, _)| name))
            .chain(self.options.iter().copied())
    }

    pub fn has_field(&self, field: &str) -> bool {
        self.fields().any(|name| name == field)
    }

    pub fn synopsis(&self) -> String {
        if self.usage.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.usage)
        }
    }
}

/// The command named `name` (or its alias, when `aliases` is set).
pub fn find(name: &str, aliases: bool) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|spec| spec.name == name || (aliases && spec.alias == Some(name)))
}

/// What to do: one SDK call (or one local question).
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Help(Option<String>),
    Quit,
    Whoami,
    Parties,
    CreateParty(PartySettings),
    JoinParty(PartyId),
    JoinByCode(String),
    LeaveParty(PartyId),
    ListJoinRequests(PartyId),
    Accept(PartyId, String),
    Reject(PartyId, String),
    Kick(PartyId, String),
    Promote(PartyId, String),
    CloseParty(PartyId),
    UpdateParty(PartyId, PartyUpdate),
    GetParty(PartyId),
    SendData {
        party_id: PartyId,
        op_code: i64,
        data: Vec<u8>,
        reliable: bool,
    },
    SetStatus {
        status: String,
        visible: bool,
    },
    Follow(Vec<String>),
    Unfollow(Vec<String>),
    Invite(PartyId, String),
    DeclineInvite(PartyId),
    RevokeInvite(PartyId, String),
    ListInvites,
    CreateJoinCode(PartyId),
    ClearJoinCode(PartyId),
    ListParty(PartyId, KeyValues),
    UnlistParty(PartyId),
    SearchParties(PartySearch),
    SetPartyState {
        party_id: PartyId,
        set: KeyValues,
        remove: Vec<String>,
    },
    SetMemberAttributes {
        party_id: PartyId,
        set: KeyValues,
        remove: Vec<String>,
    },
    Ban {
        party_id: PartyId,
        user_id: String,
        duration: Option<Duration>,
    },
    Unban(PartyId, String),
    ListBans(PartyId),
    SubmitTicket(TicketRequest),
    CancelTicket(u64),
    StartReadyCheck {
        party_id: PartyId,
        message: String,
        timeout: Duration,
    },
    /// `check_id` none: the check this client's roster shows running.
    AnswerReadyCheck {
        party_id: PartyId,
        check_id: Option<u64>,
        ready: bool,
    },
    CancelReadyCheck(PartyId),
    Mute {
        party_id: PartyId,
        user_id: String,
        op_codes: Option<NumberRange>,
    },
    Unmute(PartyId, String),
    Block(Vec<String>),
    Unblock(Vec<String>),
    ListBlocks,
}

impl Request {
    /// Whether a party in its reply is one this session now sits in.
    pub fn enters_party(&self) -> bool {
        matches!(
            self,
            Request::CreateParty(_) | Request::JoinParty(_) | Request::JoinByCode(_)
        )
    }
}

/// What a request answered.
#[derive(Clone, Debug)]
pub enum Reply {
    Done,
    Me(Arc<Welcome>),
    Parties(Vec<Party>),
    Party(Party),
    Joined(JoinOutcome),
    Requests {
        party_id: PartyId,
        requests: Vec<Presence>,
    },
    Online(Vec<UserStatus>),
    Invites(Vec<PartyInvite>),
    JoinCode {
        party_id: PartyId,
        code: String,
    },
    Search(SearchPage),
    Bans {
        party_id: PartyId,
        bans: Vec<PartyBan>,
    },
    Ticket(u64),
    /// This session's block list now.
    Blocked(Vec<String>),
}

/// Why a request did not go through.
#[derive(Debug)]
pub enum Failure {
    /// The line or JSON object itself is wrong; nothing was sent.
    BadInput(String),
    /// The SDK or the server refused.
    Client(ClientError),
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure::Client(error)
    }
}

/// Runs one request. `Help` and `Quit` are the front ends' to act on; here
/// they only answer.
pub async fn execute(client: &Client, request: Request) -> Result<Reply, ClientError> {
    Ok(match request {
        Request::Help(_) | Request::Quit => Reply::Done,
        Request::Whoami => Reply::Me(client.welcome()),
        Request::Parties => {
            let mut parties = client.parties();
            parties.sort_by_key(|party| party.party_id);
            Reply::Parties(parties)
        }
        Request::CreateParty(settings) => Reply::Party(client.create_party(settings).await?),
        Request::JoinParty(party_id) => Reply::Joined(client.join_party(party_id).await?),
        Request::JoinByCode(code) => Reply::Joined(client.join_by_code(&code).await?),
        Request::LeaveParty(party_id) => client.leave_party(party_id).await.map(done)?,
        Request::ListJoinRequests(party_id) => Reply::Requests {
            party_id,
            requests: client.list_join_requests(party_id).await?,
        },
        Request::Accept(party_id, user) => client.accept(party_id, &user).await.map(done)?,
        Request::Reject(party_id, user) => client.reject(party_id, &user).await.map(done)?,
        Request::Kick(party_id, user) => client.kick(party_id, &user).await.map(done)?,
        Request::Promote(party_id, user) => client.promote(party_id, &user).await.map(done)?,
        Request::CloseParty(party_id) => client.close_party(party_id).await.map(done)?,
        Request::UpdateParty(party_id, update) => {
            Reply::Party(client.update_party(party_id, update).await?)
        }
        Request::GetParty(party_id) => Reply::Party(client.get_party(party_id).await?),
        Request::SendData {
            party_id,
            op_code,
            data,
            reliable: false,
        } => client.send_data(party_id, op_code, &data).map(done)?,
        Request::SendData {
            party_id,
            op_code,
            data,
            reliable: true,
        } => client
            .send_data_reliable(party_id, op_code, &data)
            .await
            .map(done)?,
        Request::SetStatus { status, visible } => {
            client.set_status(&status, visible).await.map(done)?
        }
        Request::Follow(users) => {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            Reply::Online(client.follow(&users).await?)
        }
        Request::Unfollow(users) => {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            client.unfollow(&users).await.map(done)?
        }
        Request::Invite(party_id, user) => client.invite(party_id, &user).await.map(done)?,
        Request::DeclineInvite(party_id) => client.decline_invite(party_id).await.map(done)?,
        Request::RevokeInvite(party_id, user) => {
            client.revoke_invite(party_id, &user).await.map(done)?
        }
        Request::ListInvites => Reply::Invites(client.list_invites().await?),
        Request::CreateJoinCode(party_id) => Reply::JoinCode {
            party_id,
            code: client.create_join_code(party_id).await?,
        },
        Request::ClearJoinCode(party_id) => client.clear_join_code(party_id).await.map(done)?,
        Request::ListParty(party_id, properties) => {
            client.list_party(party_id, properties).await.map(done)?
        }
        Request::UnlistParty(party_id) => client.unlist_party(party_id).await.map(done)?,
        Request::SearchParties(mut search) => {
            if search.limit == 0 {
                search.limit = client.limits().max_search_results;
            }
            Reply::Search(client.search_parties(search).await?)
        }
        Request::SetPartyState {
            party_id,
            set,
            remove,
        } => {
            let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
            client
                .set_party_state(party_id, set, &remove)
                .await
                .map(done)?
        }
        Request::SetMemberAttributes {
            party_id,
            set,
            remove,
        } => {
            let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
            client
                .set_member_attributes(party_id, set, &remove)
                .await
                .map(done)?
        }
        Request::Ban {
            party_id,
            user_id,
            duration,
        } => client.ban(party_id, &user_id, duration).await.map(done)?,
        Request::Unban(party_id, user) => client.unban(party_id, &user).await.map(done)?,
        Request::ListBans(party_id) => Reply::Bans {
            party_id,
            bans: client.list_bans(party_id).await?,
        },
        Request::SubmitTicket(ticket) => Reply::Ticket(client.submit_ticket(ticket).await?),
        Request::CancelTicket(ticket_id) => client.cancel_ticket(ticket_id).await.map(done)?,
        Request::StartReadyCheck {
            party_id,
            message,
            timeout,
        } => client
            .start_ready_check(party_id, &message, timeout)
            .await
            .map(done)?,
        Request::AnswerReadyCheck {
            party_id,
            check_id,
            ready,
        } => {
            // None known: 0 names no check, and the server says so.
            let running = || client.party(party_id)?.ready_check.map(|c| c.check_id);
            let check_id = check_id.or_else(running).unwrap_or(0);
            client
                .answer_ready_check(party_id, check_id, ready)
                .await
                .map(done)?
        }
        Request::CancelReadyCheck(party_id) => {
            client.cancel_ready_check(party_id).await.map(done)?
        }
        Request::Mute {
            party_id,
            user_id,
            op_codes,
        } => client.mute(party_id, &user_id, op_codes).await.map(done)?,
        Request::Unmute(party_id, user) => client.unmute(party_id, &user).await.map(done)?,
        Request::Block(users) => {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            Reply::Blocked(client.block(&users).await?)
        }
        Request::Unblock(users) => {
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            Reply::Blocked(client.unblock(&users).await?)
        }
        Request::ListBlocks => Reply::Blocked(client.list_blocks().await?),
    })
}

fn done(_: ()) -> Reply {
    Reply::Done
}

/// A typed line, split into fields by the command's spec.
#[derive(Debug, Default)]
pub struct LineArgs {
    pub scalars: BTreeMap<String, String>,
    pub maps: BTreeMap<String, KeyValues>,
    /// The words of the spec's `rest` field.
    pub rest: Vec<String>,
    pub rest_name: Option<&'static str>,
}

/// Where a command's fields come from: a JSON object (typed values, party
/// ids in full) or a typed line (text, party ids as `Known` resolves them).
pub enum Fields<'a> {
    Json(&'a Map<String, Value>),
    Line(&'a LineArgs, &'a Known),
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(name: &str, expected: &str, got: &Value) -> String {
    format!("{name} must be {expected}, not {}", describe(got))
}

fn whole_number(name: &str, value: &Value) -> Result<i128, String> {
    match value {
        Value::Number(number) => number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from))
            .ok_or_else(|| format!("{name} must be a whole number, not {number}")),
        // Ids above 2^53 are written as strings (a JavaScript number cannot
        // hold them), so a bot echoes them back as strings.
        Value::String(text) => parse_whole(name, text),
        other => Err(wrong_type(name, "a whole number", other)),
    }
}

fn in_range<T: TryFrom<i128>>(name: &str, value: i128) -> Result<T, String> {
    T::try_from(value).map_err(|_| format!("{name}: {value} is out of range"))
}

fn parse_whole(name: &str, text: &str) -> Result<i128, String> {
    text.trim()
        .parse::<i128>()
        .map_err(|_| format!("{name} must be a whole number, not {text:?}"))
}

fn parse_range(name: &str, text: &str) -> Result<NumberRange, String> {
    let (min, max) = text
        .split_once("..")
        .ok_or_else(|| format!("{name} must be MIN..MAX, not {text:?}"))?;
    Ok(NumberRange {
        min: in_range(name, parse_whole(name, min)?)?,
        max: in_range(name, parse_whole(name, max)?)?,
    })
}

impl Fields<'_> {
    fn json_value(&self, name: &str) -> Option<&Value> {
        match self {
            Fields::Json(object) => object.get(name).filter(|value| !value.is_null()),
            Fields::Line(..) => None,
        }
    }

    fn word(&self, name: &str) -> Option<String> {
        match self {
            Fields::Json(_) => None,
            Fields::Line(args, _) => args.scalars.get(name).cloned().or_else(|| {
                (args.rest_name == Some(name) && !args.rest.is_empty()).then(|| args.rest.join(" "))
            }),
        }
    }

    pub fn party(&self, name: &str) -> Result<Option<PartyId>, String> {
        match self {
            Fields::Json(_) => match self.json_value(name) {
                None => Ok(None),
                Some(Value::String(text)) => text.parse().map(Some).map_err(|_| {
                    format!("{name}: {text:?} is not a party id (8-4-4-4-12 hex digits)")
                }),
                Some(other) => Err(wrong_type(name, "a party id string", other)),
            },
            Fields::Line(_, known) => self
                .word(name)
                .map(|word| known.resolve_party(&word))
                .transpose(),
        }
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, String> {
        match self {
            Fields::Json(_) => match self.json_value(name) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(other) => Err(wrong_type(name, "a string", other)),
            },
            Fields::Line(..) => Ok(self.word(name)),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, String> {
        match self {
            Fields::Json(_) => match self.json_value(name) {
                None => Ok(None),
                Some(Value::Bool(value)) => Ok(Some(*value)),
                Some(other) => Err(wrong_type(name, "true or false", other)),
            },
            Fields::Line(..) => match self.word(name) {
                None => Ok(None),
                Some(word) => match word.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "on" | "1" => Ok(Some(true)),
                    "false" | "no" | "off" | "0" => Ok(Some(false)),
                    _ => Err(format!("{name} must be true or false, not {word:?}")),
                },
            },
        }
    }

    pub fn integer<T: TryFrom<i128>>(&self, name: &str) -> Result<Option<T>, String> {
        let value = match self {
            Fields::Json(_) => self
                .json_value(name)
                .map(|value| whole_number(name, value))
                .transpose()?,
            Fields::Line(..) => self
                .word(name)
                .map(|word| parse_whole(name, &word))
                .transpose()?,
        };
        value.map(|value| in_range(name, value)).transpose()
    }

    pub fn seconds(&self, name: &str) -> Result<Option<f64>, String> {
        let value =
            match self {
                Fields::Json(_) => match self.json_value(name) {
                    None => None,
                    Some(Value::Number(number)) => number.as_f64(),
                    Some(other) => return Err(wrong_type(name, "a number of seconds", other)),
                },
                Fields::Line(..) => match self.word(name) {
                    None => None,
                    Some(word) => Some(word.trim().parse::<f64>().map_err(|_| {
                        format!("{name} must be a number of seconds, not {word:?}")
                    })?),
                },
            };
        match value {
            Some(seconds) if !seconds.is_finite() || seconds < 0.0 => Err(format!(
                "{name} must be a number of seconds >= 0, not {seconds}"
            )),
            other => Ok(other),
        }
    }

    /// A map of `key: value` text: a JSON object, or `name.key=value` words.
    pub fn map(&self, name: &str) -> Result<Option<KeyValues>, String> {
        match self {
            Fields::Json(_) => match self.json_value(name) {
                None => Ok(None),
                Some(Value::Object(object)) => object
                    .iter()
                    .map(|(key, value)| match value {
                        Value::String(text) => Ok((key.clone(), text.clone())),
                        other => Err(wrong_type(&format!("{name}.{key}"), "a string", other)),
                    })
                    .collect::<Result<KeyValues, _>>()
                    .map(Some),
                Some(other) => Err(wrong_type(name, "an object of strings", other)),
            },
            Fields::Line(args, _) => Ok(args.maps.get(name).cloned()),
        }
    }

    /// A map of whole numbers (ticket properties).
    pub fn numbers(&self, name: &str) -> Result<Option<Numbers>, String> {
        let entries: Vec<(String, i128)> = match self {
            Fields::Json(_) => match self.json_value(name) {
                None => return Ok(None),
                Some(Value::Object(object)) => object
                    .iter()
                    .map(|(key, value)| {
                        whole_number(&format!("{name}.{key}"), value).map(|n| (key.clone(), n))
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(wrong_type(name, "an object of numbers", other)),
            },
            Fields::Line(args, _) => match args.maps.get(name) {
                None => return Ok(None),
                Some(map) => map
                    .iter()
                    .map(|(key, text)| {
                        parse_whole(&format!("{name}.{key}"), text).map(|n| (key.clone(), n))
                    })
                    .collect::<Result<_, _>>()?,
            },
        };
        entries
            .into_iter()
            .map(|(key, n)| {
                let value = in_range(&format!("{name}.{key}"), n)?;
                Ok((key, value))
            })
            .collect::<Result<Numbers, String>>()
            .map(Some)
    }

    /// Ranges: `{"key": {"min": 1, "max": 2}}`, or `name.key=1..2` words.
    pub fn ranges(&self, name: &str) -> Result<Option<BTreeMap<String, NumberRange>>, String> {
        match self {
            Fields::Json(_) => match self.json_value(name) {
                None => Ok(None),
                Some(Value::Object(object)) => object
                    .iter()
                    .map(|(key, value)| {
                        let field = format!("{name}.{key}");
                        let Value::Object(range) = value else {
                            return Err(wrong_type(&field, "{\"min\": N, \"max\": N}", value));
                        };
                        let bound = |end: &str| -> Result<i64, String> {
                            let label = format!("{field}.{end}");
                            let value = range.get(end).ok_or_else(|| format!("missing {label}"))?;
                            in_range(&label, whole_number(&label, value)?)
                        };
                        Ok((
                            key.clone(),
                            NumberRange {
                                min: bound("min")?,
                                max: bound("max")?,
                            },
                        ))
                    })
                    .collect::<Result<_, _>>()
                    .map(Some),
                Some(other) => Err(wrong_type(name, "an object of ranges", other)),
            },
            Fields::Line(args, _) => args
                .maps
                .get(name)
                .map(|map| {
                    map.iter()
                        .map(|(key, text)| {
                            Ok((key.clone(), parse_range(&format!("{name}.{key}"), text)?))
                        })
                        .collect::<Result<_, String>>()
                })
                .transpose(),
        }
    }

    /// A list of words: a JSON array of strings, the rest of a line, or
    /// `name=a,b` on a line.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        match self {
            Fields::Json(_) => match self.json_value(name) {
                None => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(text) => Ok(text.clone()),
                        other => Err(wrong_type(&format!("{name}[]"), "a string", other)),
                    })
                    .collect::<Result<_, _>>()
                    .map(Some),
                Some(other) => Err(wrong_type(name, "an array of strings", other)),
            },
            Fields::Line(args, _) => {
                if args.rest_name == Some(name) && !args.rest.is_empty() {
                    return Ok(Some(args.rest.clone()));
                }
                Ok(args.scalars.get(name).map(|text| {
                    text.split(',')
                        .map(str::trim)
                        .filter(|word| !word.is_empty())
                        .map(str::to_string)
                        .collect()
                }))
            }
        }
    }

    /// Per-member ticket properties: JSON only (a line has no room for them).
    pub fn members(&self, name: &str) -> Result<Option<Vec<MemberProperties>>, String> {
        let Some(value) = self.json_value(name) else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            return Err(wrong_type(name, "an array of members", value));
        };
        items
            .iter()
            .map(|item| {
                let Value::Object(object) = item else {
                    return Err(wrong_type(&format!("{name}[]"), "an object", item));
                };
                let member = Fields::Json(object);
                Ok(MemberProperties {
                    user_id: required(member.string("user_id")?, "members[].user_id")?,
                    strings: member.map("strings")?.unwrap_or_default(),
                    numbers: member.numbers("numbers")?.unwrap_or_default(),
                })
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    pub fn invite_policy(&self, name: &str) -> Result<Option<InvitePolicy>, String> {
        self.string(name)?
            .map(|text| match text.as_str() {
                "leader" => Ok(InvitePolicy::Leader),
                "any_member" => Ok(InvitePolicy::AnyMember),
                _ => Err(format!("{name} must be leader or any_member, not {text:?}")),
            })
            .transpose()
    }

    pub fn leader_policy(&self, name: &str) -> Result<Option<LeaderPolicy>, String> {
        self.string(name)?
            .map(|text| match text.as_str() {
                "tenure" => Ok(LeaderPolicy::Tenure),
                "connection_quality" => Ok(LeaderPolicy::ConnectionQuality),
                _ => Err(format!(
                    "{name} must be tenure or connection_quality, not {text:?}"
                )),
            })
            .transpose()
    }

    /// Party data: `text` (UTF-8) or `base64` (any bytes); none is empty.
    fn payload(&self) -> Result<Vec<u8>, String> {
        match (self.string("text")?, self.string("base64")?) {
            (Some(_), Some(_)) => Err("give text or base64, not both".into()),
            (Some(text), None) => Ok(text.into_bytes()),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|error| format!("base64: {error}")),
            (None, None) => Ok(Vec::new()),
        }
    }
}

fn required<T>(value: Option<T>, name: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing {name}"))
}

fn party(fields: &Fields<'_>) -> Result<PartyId, String> {
    required(fields.party(PARTY)?, PARTY)
}

fn user(fields: &Fields<'_>) -> Result<String, String> {
    required(fields.string(USER)?, USER)
}

fn send(fields: &Fields<'_>, reliable: bool) -> Result<Request, String> {
    Ok(Request::SendData {
        party_id: party(fields)?,
        op_code: fields.integer("op_code")?.unwrap_or(0),
        data: fields.payload()?,
        reliable,
    })
}

fn ban(fields: &Fields<'_>) -> Result<Request, String> {
    let duration = match fields.seconds("seconds")? {
        None => None,
        Some(0.0) => None,
        Some(seconds) => Some(
            Duration::try_from_secs_f64(seconds)
                .map_err(|_| format!("seconds: {seconds} is out of range"))?,
        ),
    };
    Ok(Request::Ban {
        party_id: party(fields)?,
        user_id: user(fields)?,
        duration,
    })
}

/// A mute: every op code, or `from` to `to` (one alone: that op code).
fn mute(fields: &Fields<'_>) -> Result<Request, String> {
    let (from, to): (Option<i64>, Option<i64>) = (fields.integer("from")?, fields.integer("to")?);
    let op_codes = match (from, to) {
        (None, None) => None,
        (Some(min), None) | (None, Some(min)) => Some(NumberRange { min, max: min }),
        (Some(min), Some(max)) => Some(NumberRange { min, max }),
    };
    Ok(Request::Mute {
        party_id: party(fields)?,
        user_id: user(fields)?,
        op_codes,
    })
}

fn ready_check(fields: &Fields<'_>) -> Result<Request, String> {
    let seconds = fields.seconds("seconds")?.unwrap_or(30.0);
    Ok(Request::StartReadyCheck {
        party_id: party(fields)?,
        message: fields.string("message")?.unwrap_or_default(),
        timeout: Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("seconds: {seconds} is out of range"))?,
    })
}

fn ticket(fields: &Fields<'_>) -> Result<Request, String> {
    Ok(Request::SubmitTicket(TicketRequest {
        party_id: fields.party(PARTY)?,
        min_count: required(fields.integer("min_count")?, "min_count")?,
        max_count: required(fields.integer("max_count")?, "max_count")?,
        count_multiple: fields.integer("count_multiple")?.unwrap_or(1),
        relaxed_min_count: fields.integer("relaxed_min_count")?.unwrap_or(0),
        strings: fields.map("strings")?.unwrap_or_default(),
        numbers: fields.numbers("numbers")?.unwrap_or_default(),
        query: TicketQuery {
            strings: fields.map("query_strings")?.unwrap_or_default(),
            ranges: fields.ranges("query_ranges")?.unwrap_or_default(),
        },
        members: fields.members("members")?.unwrap_or_default(),
    }))
}

const PARTY: &str = "party_id";
const USER: &str = "user_id";
const P: (&str, Slot) = (PARTY, Slot::Party);
const U: (&str, Slot) = (USER, Slot::User);

/// Every command, in the order `help` lists them.
pub static COMMANDS: &[Spec] = &[
    Spec {
        name: "help",
        alias: Some("?"),
        positional: &[("command", Slot::Command)],
        rest: None,
        options: &[],
        usage: "[COMMAND]",
        about: "List the commands, or show one.",
        build: |f| Ok(Request::Help(f.string("command")?)),
    },
    Spec {
        name: "whoami",
        alias: None,
        positional: &[],
        rest: None,
        options: &[],
        usage: "",
        about: "This session: user, session id, the server's limits.",
        build: |_| Ok(Request::Whoami),
    },
    Spec {
        name: "parties",
        alias: None,
        positional: &[],
        rest: None,
        options: &[],
        usage: "",
        about: "The parties this session is in, as the client knows them (no request sent).",
        build: |_| Ok(Request::Parties),
    },
    Spec {
        name: "create_party",
        alias: Some("create"),
        positional: &[],
        rest: None,
        options: &["open", "max_size", "label", "invite_policy", "state", "leader_policy"],
        usage: "[open=true|false] [max_size=N] [label=TEXT] [invite_policy=leader|any_member] [leader_policy=tenure|connection_quality] [state.KEY=VALUE]...",
        about: "Create a party led by you (open, 4 seats unless told).",
        build: |f| {
            let defaults = PartySettings::default();
            Ok(Request::CreateParty(PartySettings {
                open: f.boolean("open")?.unwrap_or(defaults.open),
                max_size: f.integer("max_size")?.unwrap_or(defaults.max_size),
                label: f.string("label")?.unwrap_or_default(),
                invite_policy: f
                    .invite_policy("invite_policy")?
                    .unwrap_or(defaults.invite_policy),
                state: f.map("state")?.unwrap_or_default(),
                leader_policy: f
                    .leader_policy("leader_policy")?
                    .unwrap_or(defaults.leader_policy),
            }))
        },
    },
    Spec {
        name: "join_party",
        alias: Some("join"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Join an open party, or ask a closed party's leader (an invite seats you even there).",
        build: |f| Ok(Request::JoinParty(party(f)?)),
    },
    Spec {
        name: "join_by_code",
        alias: Some("code"),
        positional: &[("code", Slot::Other)],
        rest: None,
        options: &[],
        usage: "CODE",
        about: "Join (or ask to join) the party with this join code.",
        build: |f| Ok(Request::JoinByCode(required(f.string("code")?, "code")?)),
    },
    Spec {
        name: "leave_party",
        alias: Some("leave"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Leave a party, or withdraw your join request.",
        build: |f| Ok(Request::LeaveParty(party(f)?)),
    },
    Spec {
        name: "list_join_requests",
        alias: Some("requests"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Leader: the join requests waiting, oldest first.",
        build: |f| Ok(Request::ListJoinRequests(party(f)?)),
    },
    Spec {
        name: "accept",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &[],
        usage: "PARTY USER",
        about: "Leader: seat a user whose join request waits.",
        build: |f| Ok(Request::Accept(party(f)?, user(f)?)),
    },
    Spec {
        name: "reject",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &[],
        usage: "PARTY USER",
        about: "Leader: turn a waiting join request down.",
        build: |f| Ok(Request::Reject(party(f)?, user(f)?)),
    },
    Spec {
        name: "kick",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &[],
        usage: "PARTY USER",
        about: "Leader: take a member's seat away.",
        build: |f| Ok(Request::Kick(party(f)?, user(f)?)),
    },
    Spec {
        name: "promote",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &[],
        usage: "PARTY USER",
        about: "Leader: hand leadership to another member.",
        build: |f| Ok(Request::Promote(party(f)?, user(f)?)),
    },
    Spec {
        name: "close_party",
        alias: Some("close"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Leader: end the party for everyone.",
        build: |f| Ok(Request::CloseParty(party(f)?)),
    },
    Spec {
        name: "update_party",
        alias: Some("update"),
        positional: &[P],
        rest: None,
        options: &["open", "max_size", "label", "invite_policy", "leader_policy"],
        usage: "PARTY [open=true|false] [max_size=N] [label=TEXT] [invite_policy=leader|any_member] [leader_policy=tenure|connection_quality]",
        about: "Leader: change settings (those not given stay).",
        build: |f| {
            Ok(Request::UpdateParty(
                party(f)?,
                PartyUpdate {
                    open: f.boolean("open")?,
                    max_size: f.integer("max_size")?,
                    label: f.string("label")?,
                    invite_policy: f.invite_policy("invite_policy")?,
                    leader_policy: f.leader_policy("leader_policy")?,
                },
            ))
        },
    },
    Spec {
        name: "get_party",
        alias: Some("get"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "The party as the server has it now (members only).",
        build: |f| Ok(Request::GetParty(party(f)?)),
    },
    Spec {
        name: "send_data",
        alias: Some("send"),
        positional: &[P],
        rest: Some(("text", Slot::Other)),
        options: &["op_code", "base64"],
        usage: "PARTY [op_code=N] [base64=BYTES] TEXT...",
        about: "Party data to the other members as one datagram (unreliable; op_code 0 unless told).",
        build: |f| send(f, false),
    },
    Spec {
        name: "send_data_reliable",
        alias: Some("rsend"),
        positional: &[P],
        rest: Some(("text", Slot::Other)),
        options: &["op_code", "base64"],
        usage: "PARTY [op_code=N] [base64=BYTES] TEXT...",
        about: "Party data on the reliable control stream, in order.",
        build: |f| send(f, true),
    },
    Spec {
        name: "set_status",
        alias: Some("status"),
        positional: &[],
        rest: Some(("status", Slot::Other)),
        options: &["visible"],
        usage: "[visible=true|false] [TEXT...]",
        about: "The status text your followers see (none clears it); visible=false appears offline.",
        build: |f| {
            Ok(Request::SetStatus {
                status: f.string("status")?.unwrap_or_default(),
                visible: f.boolean("visible")?.unwrap_or(true),
            })
        },
    },
    Spec {
        name: "follow",
        alias: None,
        positional: &[],
        rest: Some(("user_ids", Slot::User)),
        options: &[],
        usage: "USER...",
        about: "Be told when these users come online, change status, go offline.",
        build: |f| Ok(Request::Follow(required(f.list("user_ids")?, "user_ids")?)),
    },
    Spec {
        name: "unfollow",
        alias: None,
        positional: &[],
        rest: Some(("user_ids", Slot::User)),
        options: &[],
        usage: "USER...",
        about: "Stop following these users.",
        build: |f| Ok(Request::Unfollow(required(f.list("user_ids")?, "user_ids")?)),
    },
    Spec {
        name: "invite",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &[],
        usage: "PARTY USER",
        about: "Invite a user: the invite seats them once, even in a closed party.",
        build: |f| Ok(Request::Invite(party(f)?, user(f)?)),
    },
    Spec {
        name: "decline_invite",
        alias: Some("decline"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Turn down an invite to that party; the inviter is told.",
        build: |f| Ok(Request::DeclineInvite(party(f)?)),
    },
    Spec {
        name: "revoke_invite",
        alias: Some("revoke"),
        positional: &[P, U],
        rest: None,
        options: &[],
        usage: "PARTY USER",
        about: "Take back a pending invite.",
        build: |f| Ok(Request::RevokeInvite(party(f)?, user(f)?)),
    },
    Spec {
        name: "list_invites",
        alias: Some("invites"),
        positional: &[],
        rest: None,
        options: &[],
        usage: "",
        about: "Your pending invites, oldest first.",
        build: |_| Ok(Request::ListInvites),
    },
    Spec {
        name: "create_join_code",
        alias: Some("newcode"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Leader: a new join code (the old one stops working).",
        build: |f| Ok(Request::CreateJoinCode(party(f)?)),
    },
    Spec {
        name: "clear_join_code",
        alias: Some("clearcode"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Leader: remove the party's join code.",
        build: |f| Ok(Request::ClearJoinCode(party(f)?)),
    },
    Spec {
        name: "list_party",
        alias: Some("list"),
        positional: &[P],
        rest: None,
        options: &["properties"],
        usage: "PARTY [properties.KEY=VALUE]...",
        about: "Leader: list the party for search, with these properties.",
        build: |f| {
            Ok(Request::ListParty(
                party(f)?,
                f.map("properties")?.unwrap_or_default(),
            ))
        },
    },
    Spec {
        name: "unlist_party",
        alias: Some("unlist"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Leader: take the party out of search.",
        build: |f| Ok(Request::UnlistParty(party(f)?)),
    },
    Spec {
        name: "search_parties",
        alias: Some("search"),
        positional: &[],
        rest: None,
        options: &["open_only", "min_free_seats", "properties", "limit", "cursor"],
        usage: "[open_only=true] [min_free_seats=N] [properties.KEY=VALUE]... [limit=N] [cursor=N]",
        about: "Search listed parties: one page (the server's most unless limit is given).",
        build: |f| {
            Ok(Request::SearchParties(PartySearch {
                open_only: f.boolean("open_only")?.unwrap_or(false),
                min_free_seats: f.integer("min_free_seats")?.unwrap_or(0),
                properties: f.map("properties")?.unwrap_or_default(),
                limit: f.integer("limit")?.unwrap_or(0),
                cursor: f.integer("cursor")?.unwrap_or(0),
            }))
        },
    },
    Spec {
        name: "set_party_state",
        alias: Some("state"),
        positional: &[P],
        rest: None,
        options: &["set", "remove"],
        usage: "PARTY [set.KEY=VALUE]... [remove=KEY,KEY]",
        about: "Leader: set and remove keys of the party state.",
        build: |f| {
            Ok(Request::SetPartyState {
                party_id: party(f)?,
                set: f.map("set")?.unwrap_or_default(),
                remove: f.list("remove")?.unwrap_or_default(),
            })
        },
    },
    Spec {
        name: "set_member_attributes",
        alias: Some("attrs"),
        positional: &[P],
        rest: None,
        options: &["set", "remove"],
        usage: "PARTY [set.KEY=VALUE]... [remove=KEY,KEY]",
        about: "Set and remove keys of your own attributes in the party.",
        build: |f| {
            Ok(Request::SetMemberAttributes {
                party_id: party(f)?,
                set: f.map("set")?.unwrap_or_default(),
                remove: f.list("remove")?.unwrap_or_default(),
            })
        },
    },
    Spec {
        name: "ban",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &["seconds"],
        usage: "PARTY USER [seconds=N]",
        about: "Leader: ban a user for N seconds (none or 0: the party's life).",
        build: ban,
    },
    Spec {
        name: "unban",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &[],
        usage: "PARTY USER",
        about: "Leader: lift a ban.",
        build: |f| Ok(Request::Unban(party(f)?, user(f)?)),
    },
    Spec {
        name: "list_bans",
        alias: Some("bans"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Leader: the party's bans, oldest first.",
        build: |f| Ok(Request::ListBans(party(f)?)),
    },
    Spec {
        name: "submit_ticket",
        alias: Some("ticket"),
        positional: &[],
        rest: None,
        options: &[
            PARTY,
            "min_count",
            "max_count",
            "count_multiple",
            "relaxed_min_count",
            "strings",
            "numbers",
            "query_strings",
            "query_ranges",
            "members",
        ],
        usage: "min_count=N max_count=N [party_id=PARTY] [count_multiple=N] [relaxed_min_count=N] [strings.KEY=VALUE]... [numbers.KEY=N]... [query_strings.KEY=VALUE]... [query_ranges.KEY=MIN..MAX]...",
        about: "Start matchmaking, solo or (leader, with party_id) for the whole party. Per-member properties: --json only.",
        build: ticket,
    },
    Spec {
        name: "cancel_ticket",
        alias: Some("cancel"),
        positional: &[("ticket_id", Slot::Other)],
        rest: None,
        options: &[],
        usage: "TICKET",
        about: "Stop a waiting ticket.",
        build: |f| {
            Ok(Request::CancelTicket(required(
                f.integer("ticket_id")?,
                "ticket_id",
            )?))
        },
    },
    Spec {
        name: "start_ready_check",
        alias: Some("readycheck"),
        positional: &[P],
        rest: Some(("message", Slot::Other)),
        options: &["seconds"],
        usage: "PARTY [seconds=N] [MESSAGE...]",
        about: "Leader: ask every member whether it is ready, for N seconds (5 to 120; 30 unless told).",
        build: ready_check,
    },
    Spec {
        name: "answer_ready_check",
        alias: Some("ready"),
        positional: &[P],
        rest: None,
        options: &["ready", "check_id"],
        usage: "PARTY [ready=false] [check_id=N]",
        about: "Answer the party's ready check: ready (ready=false: not ready); again to change it. The running check unless check_id is given.",
        build: |f| {
            Ok(Request::AnswerReadyCheck {
                party_id: party(f)?,
                check_id: f.integer("check_id")?,
                ready: f.boolean("ready")?.unwrap_or(true),
            })
        },
    },
    Spec {
        name: "cancel_ready_check",
        alias: Some("cancelcheck"),
        positional: &[P],
        rest: None,
        options: &[],
        usage: "PARTY",
        about: "Leader: end the running ready check now.",
        build: |f| Ok(Request::CancelReadyCheck(party(f)?)),
    },
    Spec {
        name: "mute",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &["from", "to"],
        usage: "PARTY USER [from=N to=N]",
        about: "Stop a member's party data reaching you: all of it, or op codes from N to N (voice, say). They are not told.",
        build: mute,
    },
    Spec {
        name: "unmute",
        alias: None,
        positional: &[P, U],
        rest: None,
        options: &[],
        usage: "PARTY USER",
        about: "Hear a muted member again.",
        build: |f| Ok(Request::Unmute(party(f)?, user(f)?)),
    },
    Spec {
        name: "block",
        alias: None,
        positional: &[],
        rest: Some(("user_ids", Slot::User)),
        options: &[],
        usage: "USER...",
        about: "Block users: no data, status or invites between you, and your parties are closed to them. They are not told.",
        build: |f| Ok(Request::Block(required(f.list("user_ids")?, "user_ids")?)),
    },
    Spec {
        name: "unblock",
        alias: None,
        positional: &[],
        rest: Some(("user_ids", Slot::User)),
        options: &[],
        usage: "USER...",
        about: "Take users off your block list.",
        build: |f| Ok(Request::Unblock(required(f.list("user_ids")?, "user_ids")?)),
    },
    Spec {
        name: "list_blocks",
        alias: Some("blocks"),
        positional: &[],
        rest: None,
        options: &[],
        usage: "",
        about: "Your block list (the game's server may have set it).",
        build: |_| Ok(Request::ListBlocks),
    },
    Spec {
        name: "quit",
        alias: Some("exit"),
        positional: &[],
        rest: None,
        options: &[],
        usage: "",
        about: "Leave: close the session and exit (Ctrl-D, or EOF in --json mode, too).",
        build: |_| Ok(Request::Quit),
    },
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique_and_every_field_is_named_once() {
        let mut names = std::collections::BTreeSet::new();
        for spec in COMMANDS {
            assert!(names.insert(spec.name), "{} twice", spec.name);
            if let Some(alias) = spec.alias {
                assert!(names.insert(alias), "{alias} twice");
            }
            let fields: Vec<_> = spec.fields().collect();
            let unique: std::collections::BTreeSet<_> = fields.iter().collect();
            assert_eq!(fields.len(), unique.len(), "{}", spec.name);
            assert!(!spec.about.is_empty());
        }
    }
}
