//! Renderers: the event stream as text or JSON.

pub mod chat;
pub mod json;
pub mod report;
pub mod text;
