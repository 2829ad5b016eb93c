//! Integration tests: the emulator started in-process on an ephemeral port, driven over HTTP.

mod support;

mod assertion;
mod auth;
mod batch;
mod changes;
mod crud;
mod faults;
mod fetchxml;
mod limits;
mod owners;
mod persist;
mod strict;
mod tls;
