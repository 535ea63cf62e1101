//! The prompt: rustyline reads lines (history, Tab completion) on the main
//! thread while events are printed above the prompt as they arrive.

use crate::commands::{execute, Failure, Request};
use crate::known::Known;
use crate::line;
use crate::render::{self, Style};
use crate::shown::shown;
use partyline_client::{Client, DisconnectReason, Event, Events};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, ExternalPrinter, Helper};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use tokio::runtime::Runtime;

type SharedKnown = Arc<Mutex<Known>>;

fn lock(known: &SharedKnown) -> MutexGuard<'_, Known> {
    known.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What rustyline asks about the line being typed: only completion here.
struct LineHelper {
    known: SharedKnown,
}

impl Completer for LineHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, candidates) = line::complete(line, pos, &lock(&self.known));
        let pairs = candidates
            .into_iter()
            .map(|candidate| Pair {
                display: candidate.trim_end().to_string(),
                replacement: candidate,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for LineHelper {
    type Hint = String;
}
impl Highlighter for LineHelper {}
impl Validator for LineHelper {}
impl Helper for LineHelper {}

/// Colour on a terminal, unless NO_COLOR says otherwise (no-color.org).
pub fn colour_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `$XDG_DATA_HOME/partyline/client_history`, else under
/// `~/.local/share`; none when neither is set (no history then).
pub fn history_path() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let data = non_empty("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(data.join("partyline").join("client_history"))
}

/// Prints event lines on a thread of its own: rustyline's printer can
/// block until the prompt takes the line, and that must never stall the
/// runtime that carries the replies the prompt is waiting for.
fn start_printer(printer: Option<Box<dyn ExternalPrinter + Send>>) -> mpsc::Sender<String> {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut printer = printer;
        for text in rx {
            let printed = printer
                .as_mut()
                .is_some_and(|printer| printer.print(format!("{text}\n")).is_ok());
            if !printed {
                println!("{text}");
            }
        }
    });
    tx
}

pub fn run(runtime: &Runtime, client: Client, mut events: Events, server: &str) -> ExitCode {
    let style = Style {
        colour: colour_wanted(),
        me: client.session_id(),
    };
    let known = SharedKnown::default();
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(true)
        .history_ignore_space(true)
        .build();
    let mut editor: Editor<LineHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(editor) => editor,
        Err(error) => {
            eprintln!("error: cannot start the line editor: {error}");
            runtime.block_on(client.close());
            return ExitCode::FAILURE;
        }
    };
    editor.set_helper(Some(LineHelper {
        known: known.clone(),
    }));
    let history = history_path();
    if let Some(path) = &history {
        // Best effort: a first run has none yet.
        let _ = editor.load_history(path);
    }
    // Only a terminal has a prompt to print above; otherwise plain lines.
    let printer = editor
        .create_external_printer()
        .ok()
        .map(|printer| Box::new(printer) as Box<dyn ExternalPrinter + Send>);
    let print = start_printer(printer);

    let over = Arc::new(AtomicBool::new(false));
    let event_printer = {
        let (known, over) = (known.clone(), over.clone());
        runtime.spawn(async move {
            while let Some(event) = events.next().await {
                lock(&known).learn_from_event(&event);
                let _ = print.send(render::event(&event, &style));
                if let Event::Disconnected { reason } = &event {
                    if *reason != DisconnectReason::ClosedLocally {
                        over.store(true, Ordering::Release);
                        let _ = print.send(style.error("the session is over: press Enter".into()));
                    }
                    return;
                }
            }
        })
    };

    let me = client.presence();
    // The user id is the server's word (a token's, with --token).
    let user_id = shown(&me.user_id);
    println!(
        "connected to {} as {user_id} (session {}).\n`help` lists the commands; Tab completes; Ctrl-D leaves.",
        shown(server),
        me.session_id
    );
    let prompt = format!("{user_id}> ");
    let styled = if style.colour {
        format!("\x1b[1m{prompt}\x1b[0m")
    } else {
        prompt.clone()
    };
    let code = loop {
        let line = editor.readline(&(prompt.as_str(), styled.as_str()));
        if over.load(Ordering::Acquire) {
            break ExitCode::FAILURE;
        }
        let line = match line {
            Ok(line) => line,
            // Ctrl-C drops the line being typed, as in a shell.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: reading the terminal: {error}");
                break ExitCode::FAILURE;
            }
        };
        let parsed = line::parse(&line, &lock(&known));
        match parsed {
            Ok(None) => {}
            Ok(Some(Request::Quit)) => break ExitCode::SUCCESS,
            Ok(Some(Request::Help(topic))) => match line::help(topic.as_deref()) {
                Ok(text) => println!("{text}"),
                Err(message) => println!("{}", style.error(message)),
            },
            Ok(Some(request)) => {
                let entering = request.enters_party();
                match runtime.block_on(execute(&client, request)) {
                    Ok(reply) => {
                        lock(&known).learn_from_reply(&reply, entering);
                        println!("{}", render::reply(&reply, &style));
                    }
                    Err(error) => println!("{}", render::failure(&Failure::Client(error), &style)),
                }
            }
            Err(message) => println!("{}", style.error(message)),
        }
    };

    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    event_printer.abort();
    runtime.block_on(client.close());
    code
}
