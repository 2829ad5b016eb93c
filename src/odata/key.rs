//! OData key literals and URL percent-encoding for `set(key='value')` segments (PROTOCOL.md §4).
