//! The booted-VM tests: one test binary, so that libtest's two threads keep both guest slots
//! busy across every case (one binary per suite left a slot idle whenever a suite had one case
//! left, which cost CI a quarter of its budget). Each case is its own test, named
//! `<suite>::<release>_<case>`, so a filter picks one:
//! `PHANES_VM=full cargo test --release --test vm services::trixie_web -- --nocapture`.
//! `PHANES_VM` picks the tier (see `vm::Tier`): which releases boot and which cases run.

#[path = "../common/mod.rs"]
mod common;
#[path = "../support/guest.rs"]
mod guest;
#[path = "../support/profiles.rs"]
mod profiles;
#[path = "../support/vm.rs"]
#[macro_use]
mod vm;

mod app_profiles;
mod aws;
mod e2e;
mod faults;
mod services;
mod smoke;
