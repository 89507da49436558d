//! The deploy engine against real files in temporary directories, real `sh` hooks, a real
//! HTTP server for URL health checks, and real crashes in child processes.

mod cleanup;
mod configuration;
mod crash;
mod deploying;
mod drift;
mod fixture;
mod forged_sizes;
mod hand_edits;
mod health;
mod shared;
mod staging;
