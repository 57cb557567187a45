//! The HTML report: one self-contained page (no network, no external
//! assets) with a capture's statistics and chart, a searchable connection
//! list with tags, and for each connection drawn in full its chat, ladder
//! diagram, time-sequence graph and findings.
//!
//! [`HtmlCollector`] keeps what the page needs as the events pass (within
//! [`ReportLimits`], so that a capture of any size gives a page a browser
//! can open); [`render`] turns it, with what the scripts said, into the
//! page through the askama templates in `templates/`. Askama escapes every
//! value it writes into HTML: bytes from a capture cannot become markup.
//! The page's own script and style are the only raw text, and a
//! Content-Security-Policy lets only that script run.

mod collect;
pub mod explain;
mod list;
pub mod payload;
mod svg;
pub mod tags;
mod view;

use std::collections::HashSet;

use askama::Template;

pub use collect::{HtmlCollector, ReportLimits};

use crate::scripting::output::ScriptOutput;
use collect::Decoded;
use view::CaptureView;

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// A template failed to render.
    #[error("rendering the report: {0}")]
    Template(#[from] askama::Error),
}

/// One capture's material for the report.
pub struct CaptureInput {
    /// The capture's name, as shown.
    pub name: String,
    /// What was collected from its events.
    pub collector: HtmlCollector,
    /// What the scripts said about it.
    pub output: ScriptOutput,
    /// Why it could not be read to the end, and other warnings.
    pub problems: Vec<String>,
}

/// A lesson the report is about.
#[derive(Clone, Debug, Default)]
pub struct LessonIntro {
    /// The example's name.
    pub name: String,
    /// The lesson's title.
    pub title: String,
    /// What it teaches.
    pub summary: String,
}

/// How to draw the report.
#[derive(Clone, Debug, Default)]
pub struct ReportOptions {
    /// The page's title.
    pub title: String,
    /// The lesson shown, for `chattcp lesson NAME --html`.
    pub lesson: Option<LessonIntro>,
    /// Scripts whose notes are commentary (the lessons): shown under the
    /// bubbles when the commentary is on. Other scripts' notes are always shown.
    pub lessons: HashSet<String>,
    /// The lesson asked for: its printed summary comes first.
    pub chosen: Option<String>,
    /// Commentary shown when the page opens.
    pub commentary_on: bool,
}

/// The page's style and script: ours, written into the page unescaped.
const CSS: &str = include_str!("../../../templates/report.css");
const JS: &str = include_str!("../../../templates/report.js");

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    title: &'a str,
    lesson: Option<&'a LessonIntro>,
    commentary_on: bool,
    has_commentary: bool,
    captures: Vec<CaptureView<'a>>,
    /// The connection list, drawn by the page's script.
    list: list::ListData<'a>,
    /// The tags present, with how many connections carry each.
    tag_counts: Vec<(tags::Tag, usize)>,
    /// All connections.
    connections: usize,
    /// The explanations bubbles point to.
    glossary: std::collections::BTreeMap<String, &'static str>,
    css: &'static str,
    js: &'static str,
    nonce: String,
    version: &'static str,
}

/// A value for the script nonce that a capture cannot predict: only the
/// page's own script carries it, so even markup that slipped through could
/// not run a script.
fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let a = h.finish();
    h.write_u64(a);
    format!("{:016x}{:016x}", a, h.finish())
}

/// The whole page for `captures`.
pub fn render(captures: &[CaptureInput], options: &ReportOptions) -> Result<String, HtmlError> {
    let views: Vec<CaptureView> = captures
        .iter()
        .enumerate()
        .map(|(i, c)| view::capture_view(i, c, options))
        .collect();
    let has_commentary = views
        .iter()
        .flat_map(|c| c.conns.iter())
        .any(|c| c.has_commentary);
    let (list, tag_counts) = list::list_data(captures);
    let page = Page {
        connections: list.rows.len(),
        glossary: explain::glossary(),
        list,
        tag_counts,
        title: &options.title,
        lesson: options.lesson.as_ref(),
        commentary_on: options.commentary_on,
        has_commentary,
        captures: views,
        css: CSS,
        js: JS,
        nonce: nonce(),
        version: env!("CARGO_PKG_VERSION"),
    };
    Ok(page.render()?)
}
