//! Renderers: the event stream as text or JSON.

pub mod app;
pub mod chat;
pub mod follow;
pub mod json;
pub mod report;
pub mod text;
