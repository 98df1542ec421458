//! An online bookstore: catalog, cart and checkout for customers; background programs and
//! their results for staff. See README.md for the architecture in a few lines.

pub mod audit;
pub mod backup;
pub mod config;
pub mod db;
pub mod domain;
pub mod housekeeping;
pub mod ids;
pub mod mail;
pub mod monitoring;
pub mod programs;
pub mod seed;
pub mod startup;
pub mod tasks;
pub mod telemetry;
pub mod web;
