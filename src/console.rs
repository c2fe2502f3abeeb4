//! The person running a login, for the two logins that need one. The library never reads
//! stdin nor writes to the terminal: the program hands it a `Console`, or nothing, and
//! then no login waits for a person.

use std::future::Future;
use std::pin::Pin;

use secrecy::SecretString;

/// A future a `Console` returns.
pub type ConsoleFuture<'a, T> = Pin<Box<dyn Future<Output = std::io::Result<T>> + Send + 'a>>;

/// What a login may ask of a person: the manual login shows the consent page's address
/// and reads back the URL the browser was redirected to; a consent page that asks for
/// the code Dhan sent by SMS or e-mail has it typed, unseen.
///
/// The `dhan-login` binary provides one over its terminal. A program with its own user
/// interface implements it there; one that must never wait for a person passes none.
pub trait Console: Send + Sync {
    /// Shows `text` (one or more lines) to the person.
    fn say(&self, text: &str);

    /// The next line the person typed or pasted, without its line end; `None` once the
    /// input has ended. The future may be dropped before it completes (a redirect caught
    /// meanwhile) and asked again later: no line may be lost in between.
    fn read_line(&self) -> ConsoleFuture<'_, Option<String>>;

    /// Shows `prompt` and reads one line without showing what is typed (a one-time code).
    fn read_hidden<'a>(&'a self, prompt: &'a str) -> ConsoleFuture<'a, SecretString>;
}
