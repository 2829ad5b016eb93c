//! `Operation`: one Web API request that the mapping made from one source row, as the writer sends it.

use crate::source::RowPos;

/// The HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Create (`POST {set}`).
    Post,
    /// Update or upsert (`PATCH {set}(key)`).
    Patch,
    /// Delete (`DELETE {set}(key)`).
    Delete,
}

impl Method {
    /// The method as it appears on a request line.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// The conditional header an operation carries, which decides create/update/upsert semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No condition: a `PATCH` is an upsert.
    None,
    /// `If-Match: *`: update only; a missing record is a 404.
    IfMatchAny,
    /// `If-None-Match: *`: create only; an existing record is a 412.
    IfNoneMatchAny,
}

/// One request made from one source row. The writer sends it as it is, inside a `$batch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// The source row it came from; every outcome is reported against it.
    pub row: RowPos,
    /// The HTTP method.
    pub method: Method,
    /// The URL relative to the Web API root (`https://org.crm.dynamics.com/api/data/v9.2/`),
    /// already percent-encoded: `accounts` or `accounts(accountnumber='A-1')`.
    pub url: String,
    /// The conditional header.
    pub precondition: Precondition,
    /// The JSON body, serialised (no body for `DELETE`).
    pub body: Option<String>,
    /// A stable identity of the target record: the key literal (`accountnumber='A-1'`) or the
    /// record id; used by the ledger and in messages. Empty when the operation has no key.
    pub key: String,
    /// Lookups by `match` whose target is not known yet: [`crate::resolve`] fills them in
    /// before the row is admitted; the writer never sends an operation that has any.
    pub lookups: Vec<Unresolved>,
}

/// A lookup by `match` in an operation's body, waiting for its target's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// Where the target's `(id)` goes in the body: just after `"/<entity set>`.
    pub at: usize,
    /// Which of the plan's match lookups it is ([`crate::mapping::Plan::match_lookups`]).
    pub lookup: usize,
    /// The OData literal of each of the lookup's columns, in their order (`'Contoso'`, `42`).
    pub values: Vec<String>,
}

impl Operation {
    /// The body with every unresolved lookup shown as the condition it stands for
    /// (`/accounts(<name eq 'Contoso'>)`): what a dry run writes, having nothing to resolve with.
    pub fn body_with_conditions(&self, columns: &dyn Fn(usize) -> Vec<String>) -> Option<String> {
        let mut body = self.body.clone()?;
        for u in self.lookups.iter().rev() {
            let condition: Vec<String> = columns(u.lookup)
                .iter()
                .zip(&u.values)
                .map(|(c, v)| format!("{c} eq {v}"))
                .collect();
            body.insert_str(u.at, &format!("(<{}>)", condition.join(" and ")));
        }
        Some(body)
    }
}
