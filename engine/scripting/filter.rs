//! Filters a script declares so that the host skips the events its handler
//! would ignore, without crossing into rhai:
//!
//! ```rhai
//! const ON_CLOSE_WHEN = #{ handshake: "refused" };
//! ```
//!
//! A filter is an object map from field names (those the handler's value
//! has, `timeline.keep_alives_client` for a nested one, or `watched`) to
//! conditions; the handler is called when *any* entry holds. A filter only
//! saves calls: the handler still sees the whole value and decides, and a
//! script must give the same results with its filters ignored
//! (`--no-filters`), which the tests check for every built-in.
//!
//! Conditions:
//! - `true`: the field is set (not `()`, `false`, `0`, `""`, `[]` or `#{}`);
//!   `false`: it is not;
//! - a string, number or boolean: the field equals it (for an array field,
//!   one of its items does);
//! - an array: the field equals one of its items;
//! - a range of integers (`400..600`, `400..=599`): the field lies in it;
//! - `#{ above: x, below: y, at_least: z, at_most: w }`: every bound given holds.
//!
//! `watched: true` holds for the connections the script passed to
//! `watch(conn)` and has not yet closed: a script that keeps state about a
//! few connections asks for `on_close` on those only.
//!
//! The fields filters read most (a summary's `handshake`, a response's
//! `status`, ...) are read typed, through the value's probes
//! (`values::CLOSE_PROBES`, `values::HTTP_PROBES`): a filter on them makes
//! no rhai value at all. Other fields go through their getters.

use rhai::{Dynamic, Map, FLOAT, INT};

use crate::tracking::Flag;

use super::script::Handler;
use super::values::{
    Closed, Data, Getter, HandshakeDone, HttpValue, Opened, Packet, Probe, Probed, SseValue,
    TimelineValue, WsFrameValue, WsMessageValue, ZeroWindowValue, CLOSE_FIELDS, CLOSE_PROBES,
    DATA_FIELDS, HANDSHAKE_FIELDS, HTTP_FIELDS, HTTP_PROBES, OPEN_FIELDS, PACKET_FIELDS,
    SSE_FIELDS, TIMELINE_FIELDS, WS_FRAME_FIELDS, WS_MESSAGE_FIELDS, ZERO_WINDOW_FIELDS,
};

/// The name of the constant holding `handler`'s filter: `ON_CLOSE_WHEN`.
pub fn const_name(handler: Handler) -> String {
    format!("{}_WHEN", handler.name().to_ascii_uppercase())
}

/// The fields of the value `handler` receives (none for `init`, `on_end`).
fn field_names(handler: Handler) -> Vec<&'static str> {
    fn names<T>(table: &[Getter<T>]) -> Vec<&'static str> {
        table.iter().map(|(n, _)| *n).collect()
    }
    match handler {
        Handler::Init | Handler::End => Vec::new(),
        Handler::Packet => names(PACKET_FIELDS),
        Handler::Open => names(OPEN_FIELDS),
        Handler::Handshake => names(HANDSHAKE_FIELDS),
        Handler::Data => names(DATA_FIELDS),
        Handler::Close => names(CLOSE_FIELDS),
        Handler::HttpRequest | Handler::HttpResponse | Handler::HttpUnanswered => {
            names(HTTP_FIELDS)
        }
        Handler::SseEvent => names(SSE_FIELDS),
        Handler::WsMessage => names(WS_MESSAGE_FIELDS),
        Handler::WsFrame => names(WS_FRAME_FIELDS),
    }
}

/// The paths of `handler`'s value that filters read typed (`Probe`).
fn probe_names(handler: Handler) -> Vec<&'static str> {
    fn names<T>(table: &[Probe<T>]) -> Vec<&'static str> {
        table.iter().map(|(n, _)| *n).collect()
    }
    match handler {
        Handler::Close => names(CLOSE_PROBES),
        Handler::HttpRequest | Handler::HttpResponse | Handler::HttpUnanswered => {
            names(HTTP_PROBES)
        }
        _ => Vec::new(),
    }
}

/// A handler's argument as filters read it: typed, before it becomes a
/// rhai value (which only an admitted call needs).
pub trait Filtered: Clone + Send + Sync + 'static {
    /// Its fields, in the order filters number them (`field_names`).
    fn fields() -> &'static [Getter<Self>];

    /// The paths read typed, in the order filters number them (`probe_names`).
    fn probes() -> &'static [Probe<Self>] {
        &[]
    }

    /// The count of analysis flag number `place`, for a connection.
    fn flag_count(&self, _place: usize) -> u64 {
        0
    }

    /// Its anomalies, for an HTTP message: what `anomaly_names` lists.
    fn anomalies(&self) -> &[crate::dissect::http::Anomaly] {
        &[]
    }
}

macro_rules! filtered {
    ($($t:ty => $fields:expr),* $(,)?) => {
        $(impl Filtered for $t {
            fn fields() -> &'static [Getter<Self>] {
                $fields
            }
        })*
    };
}

filtered!(
    Packet => PACKET_FIELDS,
    Opened => OPEN_FIELDS,
    HandshakeDone => HANDSHAKE_FIELDS,
    Data => DATA_FIELDS,
    SseValue => SSE_FIELDS,
    WsMessageValue => WS_MESSAGE_FIELDS,
    WsFrameValue => WS_FRAME_FIELDS,
);

impl Filtered for Closed {
    fn fields() -> &'static [Getter<Self>] {
        CLOSE_FIELDS
    }

    fn probes() -> &'static [Probe<Self>] {
        CLOSE_PROBES
    }

    fn flag_count(&self, place: usize) -> u64 {
        self.0.flag_counts.get(place).copied().unwrap_or(0)
    }
}

impl Filtered for HttpValue {
    fn fields() -> &'static [Getter<Self>] {
        HTTP_FIELDS
    }

    fn probes() -> &'static [Probe<Self>] {
        HTTP_PROBES
    }

    fn anomalies(&self) -> &[crate::dissect::http::Anomaly] {
        &self.0.anomalies
    }
}

/// A field inside a field's value: a map's entry, or a nested value's field.
fn inner_field(value: &Dynamic, name: &str) -> Dynamic {
    fn by_name<T: Clone + Send + Sync + 'static>(
        value: &Dynamic,
        table: &[Getter<T>],
        name: &str,
    ) -> Dynamic {
        let getter = table.iter().find(|(n, _)| *n == name);
        match (getter, value.read_lock::<T>()) {
            (Some((_, get)), Some(v)) => get(&mut v.clone()),
            _ => Dynamic::UNIT,
        }
    }
    if value.is_map() {
        return value
            .read_lock::<Map>()
            .and_then(|m| m.get(name).cloned())
            .unwrap_or(Dynamic::UNIT);
    }
    if value.is::<TimelineValue>() {
        return by_name::<TimelineValue>(value, TIMELINE_FIELDS, name);
    }
    if value.is::<ZeroWindowValue>() {
        return by_name::<ZeroWindowValue>(value, ZERO_WINDOW_FIELDS, name);
    }
    Dynamic::UNIT
}

/// What a condition reads.
#[derive(Clone, Debug)]
enum Field {
    /// The connection was passed to `watch(conn)`: the value's `conn`
    /// (field `conn`, or probe `probe` when the value has one).
    Watched { conn: usize, probe: Option<usize> },
    /// A connection's count of one analysis flag (`flag_counts.NAME`), read
    /// without building the whole map: its place in `flag_counts`.
    FlagCount(usize),
    /// An HTTP message's `anomaly_names`, read without making the array.
    AnomalyNames,
    /// A path read typed: probe number `index` of the value.
    Probe(usize),
    /// Field `index` of the value, then the names inside it.
    Path { index: usize, inner: Vec<String> },
}

/// The fields of one event read so far by the filters of several scripts:
/// each is read once per event.
pub struct FieldCache {
    /// By field number; sized once to the largest number read, so that a
    /// new event does not rebuild it.
    values: Vec<Option<Dynamic>>,
    /// The numbers read for this event.
    read: Vec<usize>,
}

impl FieldCache {
    /// An empty cache, for a new event.
    pub fn new() -> Self {
        FieldCache {
            values: Vec::new(),
            read: Vec::new(),
        }
    }

    /// Forgets the previous event's fields.
    pub fn clear(&mut self) {
        for index in self.read.drain(..) {
            self.values[index] = None;
        }
    }

    fn get<T: Filtered>(&mut self, index: usize, value: &mut T) -> Option<&Dynamic> {
        if self.values.len() <= index {
            self.values.resize_with(index + 1, || None);
        }
        if self.values[index].is_none() {
            self.values[index] = T::fields().get(index).map(|(_, get)| get(value));
            self.read.push(index);
        }
        self.values[index].as_ref()
    }
}

impl Default for FieldCache {
    fn default() -> Self {
        Self::new()
    }
}

/// What a condition asks of the field.
#[derive(Clone, Debug)]
enum Test {
    Set(bool),
    OneOf(OneOf),
    Range {
        low: INT,
        high: INT,
        inclusive: bool,
    },
    Bounds(Vec<(Bound, FLOAT)>),
}

/// The values a field may equal, sorted by type once, so that a field's
/// value is compared with those of its own type only.
#[derive(Clone, Debug, Default)]
struct OneOf {
    numbers: Vec<FLOAT>,
    strings: Vec<rhai::ImmutableString>,
}

impl OneOf {
    /// From values that are numbers or strings (what `Test::parse` lets through).
    fn of(items: &[Dynamic]) -> OneOf {
        let mut one_of = OneOf::default();
        for item in items {
            if let Some(n) = number(item) {
                one_of.numbers.push(n);
            } else if let Some(s) = item.read_lock::<rhai::ImmutableString>() {
                one_of.strings.push(s.clone());
            }
        }
        one_of
    }

    /// Whether `v` equals one of the values: a number one of the numbers
    /// (integers and floats alike), a string one of the strings.
    fn holds(&self, v: &Dynamic) -> bool {
        if v.is_string() {
            v.read_lock::<rhai::ImmutableString>()
                .is_some_and(|s| self.strings.iter().any(|x| x.as_str() == s.as_str()))
        } else {
            number(v).is_some_and(|n| self.numbers.contains(&n))
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Bound {
    Above,
    Below,
    AtLeast,
    AtMost,
}

#[derive(Clone, Debug)]
struct Condition {
    field: Field,
    test: Test,
}

/// A handler's filter: the handler is called when any condition holds.
#[derive(Clone, Debug)]
pub struct Filter {
    conditions: Vec<Condition>,
}

fn number(v: &Dynamic) -> Option<FLOAT> {
    v.as_int()
        .map(|i| i as FLOAT)
        .ok()
        .or_else(|| v.as_float().ok())
}

fn is_set(v: &Dynamic) -> bool {
    if v.is_unit() {
        false
    } else if let Ok(b) = v.as_bool() {
        b
    } else if let Some(n) = number(v) {
        n != 0.0
    } else if v.is_string() {
        v.read_lock::<rhai::ImmutableString>()
            .is_some_and(|s| !s.is_empty())
    } else if v.is_array() {
        v.read_lock::<rhai::Array>().is_some_and(|a| !a.is_empty())
    } else if v.is_map() {
        v.read_lock::<Map>().is_some_and(|m| !m.is_empty())
    } else {
        true
    }
}

impl Test {
    fn parse(v: &Dynamic) -> Result<Test, String> {
        if let Ok(b) = v.as_bool() {
            return Ok(Test::Set(b));
        }
        if number(v).is_some() || v.is_string() || v.is_char() {
            let v = if v.is_char() {
                Dynamic::from(v.to_string())
            } else {
                v.clone()
            };
            return Ok(Test::OneOf(OneOf::of(&[v])));
        }
        if let Some(a) = v.read_lock::<rhai::Array>() {
            if a.iter().any(|x| number(x).is_none() && !x.is_string()) {
                return Err("an array of values to match holds strings and numbers only".into());
            }
            return Ok(Test::OneOf(OneOf::of(&a)));
        }
        if let Some(r) = v.read_lock::<std::ops::Range<INT>>() {
            return Ok(Test::Range {
                low: r.start,
                high: r.end,
                inclusive: false,
            });
        }
        if let Some(r) = v.read_lock::<std::ops::RangeInclusive<INT>>() {
            return Ok(Test::Range {
                low: *r.start(),
                high: *r.end(),
                inclusive: true,
            });
        }
        if let Some(m) = v.read_lock::<Map>() {
            let mut bounds = Vec::new();
            for (k, x) in m.iter() {
                let bound = match k.as_str() {
                    "above" => Bound::Above,
                    "below" => Bound::Below,
                    "at_least" => Bound::AtLeast,
                    "at_most" => Bound::AtMost,
                    other => {
                        return Err(format!(
                        "`{other}`: a map of bounds has `above`, `below`, `at_least` and `at_most`"
                    ))
                    }
                };
                let n = number(x).ok_or_else(|| format!("`{k}` must be a number"))?;
                bounds.push((bound, n));
            }
            return Ok(Test::Bounds(bounds));
        }
        Err(format!(
            "`{}` is not a condition: use true/false, a value, an array of values, a range or #{{ above: .., below: .. }}",
            v.type_name()
        ))
    }

    fn holds_for_one(&self, v: &Dynamic) -> bool {
        match self {
            Test::Set(want) => is_set(v) == *want,
            Test::OneOf(one_of) => one_of.holds(v),
            Test::Range { .. } | Test::Bounds(_) => {
                number(v).is_some_and(|n| self.holds_for_number(n))
            }
        }
    }

    /// `holds_for_one` for a value that is the number `n`, without making
    /// a rhai value of it.
    fn holds_for_number(&self, n: FLOAT) -> bool {
        match self {
            Test::Set(want) => (n != 0.0) == *want,
            Test::OneOf(one_of) => one_of.numbers.contains(&n),
            Test::Range {
                low,
                high,
                inclusive,
            } => n >= *low as FLOAT && (n < *high as FLOAT || (*inclusive && n == *high as FLOAT)),
            Test::Bounds(bounds) => bounds.iter().all(|(b, x)| match b {
                Bound::Above => n > *x,
                Bound::Below => n < *x,
                Bound::AtLeast => n >= *x,
                Bound::AtMost => n <= *x,
            }),
        }
    }

    /// `holds` for a value read typed: the same answer as for the rhai
    /// value it stands for.
    fn holds_probed(&self, v: Probed<'_>) -> bool {
        let number = match v {
            Probed::Int(n) => Some(n as FLOAT),
            Probed::Float(f) => Some(f),
            _ => None,
        };
        match self {
            Test::Set(want) => {
                let set = match v {
                    Probed::Unit => false,
                    Probed::Bool(b) => b,
                    Probed::Int(_) | Probed::Float(_) => number != Some(0.0),
                    Probed::Text(s) => !s.is_empty(),
                    Probed::Object => true,
                };
                set == *want
            }
            Test::OneOf(one_of) => match v {
                Probed::Text(s) => one_of.strings.iter().any(|x| x.as_str() == s),
                _ => number.is_some_and(|n| self.holds_for_number(n)),
            },
            Test::Range { .. } | Test::Bounds(_) => {
                number.is_some_and(|n| self.holds_for_number(n))
            }
        }
    }

    /// `holds_for_one` for a string, without making a rhai value of it.
    fn holds_for_name(&self, name: &str) -> bool {
        match self {
            Test::Set(want) => name.is_empty() != *want,
            Test::OneOf(one_of) => one_of.strings.iter().any(|s| s.as_str() == name),
            // A string is no number: no range or bound holds for it.
            Test::Range { .. } | Test::Bounds(_) => false,
        }
    }

    fn holds(&self, v: &Dynamic) -> bool {
        match self {
            Test::Set(want) => is_set(v) == *want,
            // An array field (anomaly names, say) matches through its items.
            _ if v.is_array() => v
                .read_lock::<rhai::Array>()
                .is_some_and(|a| a.iter().any(|x| self.holds_for_one(x))),
            _ => self.holds_for_one(v),
        }
    }
}

impl Filter {
    /// Reads `handler`'s filter from the value of its constant, or says
    /// what is wrong with it.
    pub fn parse(handler: Handler, value: &Dynamic) -> Result<Filter, String> {
        let name = const_name(handler);
        let fields = field_names(handler);
        let probes = probe_names(handler);
        if fields.is_empty() {
            return Err(format!("`{name}`: {} takes no filter", handler.name()));
        }
        let Some(map) = value.read_lock::<Map>() else {
            return Err(format!(
                "`{name}` must be an object map of field: condition, like #{{ handshake: \"refused\" }}"
            ));
        };
        let mut conditions = Vec::new();
        for (key, v) in map.iter() {
            let test = Test::parse(v).map_err(|e| format!("`{name}`, `{key}`: {e}"))?;
            let field = if key.as_str() == "watched" {
                let conn = fields.iter().position(|f| *f == "conn").ok_or_else(|| {
                    format!("`{name}`: {} is not about one connection", handler.name())
                })?;
                Field::Watched {
                    conn,
                    probe: probes.iter().position(|p| *p == "conn"),
                }
            } else if let (Handler::Close, Some(flag_name)) =
                (handler, key.strip_prefix("flag_counts."))
            {
                let flag = Flag::from_name(flag_name).ok_or_else(|| {
                    let names: Vec<&str> = Flag::ALL.iter().map(|f| f.name()).collect();
                    format!(
                        "`{name}`, `{key}`: no analysis flag `{flag_name}`; the flags are {}",
                        names.join(", ")
                    )
                })?;
                Field::FlagCount(Flag::ALL.iter().position(|f| *f == flag).unwrap_or(0))
            } else if key.as_str() == "anomaly_names"
                && matches!(
                    handler,
                    Handler::HttpRequest | Handler::HttpResponse | Handler::HttpUnanswered
                )
            {
                Field::AnomalyNames
            } else if let Some(index) = probes.iter().position(|p| *p == key.as_str()) {
                Field::Probe(index)
            } else {
                let mut parts = key.split('.');
                let first = parts.next().unwrap_or("");
                let index = fields.iter().position(|f| *f == first).ok_or_else(|| {
                    format!(
                        "`{name}`: {}'s value has no field `{first}` (it has {})",
                        handler.name(),
                        fields.join(", ")
                    )
                })?;
                Field::Path {
                    index,
                    inner: parts.map(str::to_string).collect(),
                }
            };
            conditions.push(Condition { field, test });
        }
        Ok(Filter { conditions })
    }

    /// Whether the handler should see `value` (of the type its handler
    /// takes); `watched` says whether the script watches a connection.
    pub fn admits<T: Filtered>(
        &self,
        value: &mut T,
        cache: &mut FieldCache,
        watched: impl Fn(u64) -> bool,
    ) -> bool {
        self.conditions.iter().any(|c| match &c.field {
            Field::Watched { conn, probe } => {
                let conn = match probe.and_then(|p| T::probes().get(p)) {
                    Some((_, read)) => match read(value) {
                        Probed::Int(n) => Some(n),
                        _ => None,
                    },
                    None => cache.get(*conn, value).and_then(|v| v.as_int().ok()),
                };
                let is_watched = conn.is_some_and(|n| watched(n.max(0) as u64));
                matches!(c.test, Test::Set(want) if want == is_watched)
            }
            Field::FlagCount(place) => c.test.holds_for_number(value.flag_count(*place) as FLOAT),
            Field::AnomalyNames => {
                let anomalies = value.anomalies();
                match c.test {
                    // An array is set when it is not empty.
                    Test::Set(want) => anomalies.is_empty() != want,
                    // An array field matches through its items.
                    _ => anomalies.iter().any(|a| c.test.holds_for_name(a.name)),
                }
            }
            Field::Probe(index) => T::probes()
                .get(*index)
                .is_some_and(|(_, read)| c.test.holds_probed(read(value))),
            Field::Path { index, inner } => {
                let Some(v) = cache.get(*index, value) else {
                    return false;
                };
                let Some((first, rest)) = inner.split_first() else {
                    return c.test.holds(v);
                };
                let mut v = inner_field(v, first);
                for name in rest {
                    v = inner_field(&v, name);
                }
                c.test.holds(&v)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::events::{Event, EventSink};
    use std::sync::Arc;

    /// Every summary and HTTP message of the example captures.
    fn example_values() -> (Vec<Closed>, Vec<HttpValue>) {
        #[derive(Default)]
        struct Keep(Vec<Closed>, Vec<HttpValue>);
        impl EventSink for Keep {
            fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
                match event {
                    Event::Closed(c) => self.0.push(Closed(Arc::new((*c).clone()))),
                    Event::App(crate::dissect::AppEvent::Http(m))
                    | Event::App(crate::dissect::AppEvent::HttpUnanswered(m)) => {
                        self.1.push(HttpValue(m.clone(), Timestamp(0)))
                    }
                    _ => {}
                }
                Ok(())
            }
        }
        let mut keep = crate::dissect::Dissector::new(Keep::default());
        let root = env!("CARGO_MANIFEST_DIR");
        let mut paths: Vec<_> = ["captures", "tests/data/rerecorded"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(format!("{root}/{dir}")).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
            .collect();
        paths.sort();
        for path in paths {
            let file = std::fs::File::open(&path).unwrap();
            crate::pipeline::run(file, crate::pipeline::Limits::default(), &mut keep).unwrap();
        }
        let keep = keep.into_inner();
        (keep.0, keep.1)
    }

    /// What the getters give for `path` (`a.b` reads `b` inside `a`).
    fn by_getters<T: Filtered>(value: &T, path: &str) -> Dynamic {
        let mut parts = path.split('.');
        let first = parts.next().unwrap();
        let (_, get) = T::fields().iter().find(|(n, _)| *n == first).unwrap();
        let mut v = get(&mut value.clone());
        for name in parts {
            v = inner_field(&v, name);
        }
        v
    }

    fn stands_for(p: Probed<'_>, v: &Dynamic) -> bool {
        match p {
            Probed::Unit => v.is_unit(),
            Probed::Bool(b) => v.as_bool() == Ok(b),
            Probed::Int(n) => v.as_int() == Ok(n),
            Probed::Float(f) => v.as_float() == Ok(f),
            Probed::Text(s) => v
                .read_lock::<rhai::ImmutableString>()
                .is_some_and(|x| *x == s),
            Probed::Object => {
                !v.is_unit()
                    && number(v).is_none()
                    && v.as_bool().is_err()
                    && !v.is_string()
                    && !v.is_array()
                    && !v.is_map()
            }
        }
    }

    /// Each probe reads what the getters give, and every kind of test
    /// answers the same for both readings.
    fn check_probes<T: Filtered>(values: &[T], tests: &[Test]) -> usize {
        let mut checked = 0;
        for value in values {
            for (path, read) in T::probes() {
                let probed = read(value);
                let got = by_getters(value, path);
                assert!(
                    stands_for(probed, &got),
                    "{path}: probe {probed:?}, getter {got:?}"
                );
                for test in tests {
                    assert_eq!(
                        test.holds_probed(probed),
                        test.holds(&got),
                        "{path} = {got:?}, {test:?}"
                    );
                }
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn probes_read_what_the_getters_read() {
        let (closed, http) = example_values();
        assert!(
            closed.len() >= 30 && http.len() >= 30,
            "{} {}",
            closed.len(),
            http.len()
        );
        let tests: Vec<Test> = [
            Dynamic::TRUE,
            Dynamic::FALSE,
            text("refused"),
            text("closed"),
            text("GET"),
            text("client"),
            Dynamic::from_int(0),
            Dynamic::from_int(1),
            Dynamic::from_int(200),
            Dynamic::from_float(0.0),
            Dynamic::from_array(vec![text("open"), Dynamic::from_int(2)]),
            Dynamic::from(400..1000 as INT),
            Dynamic::from(0..=3 as INT),
        ]
        .into_iter()
        .map(test_of)
        .chain([
            Test::Bounds(vec![(Bound::Above, 0.001)]),
            Test::Bounds(vec![(Bound::AtMost, 2.0)]),
        ])
        .collect();
        let checked = check_probes(&closed, &tests) + check_probes(&http, &tests);
        assert!(checked > 500, "{checked}");
        // A probe takes over only a path the getters have.
        for (path, _) in CLOSE_PROBES {
            let _ = by_getters(&closed[0], path);
        }
    }

    #[test]
    fn a_filter_reads_a_probed_path_typed() {
        let map: Map = [("timeline.zero_window_client".into(), Dynamic::TRUE)]
            .into_iter()
            .collect();
        let f = Filter::parse(Handler::Close, &Dynamic::from_map(map)).unwrap();
        assert!(matches!(f.conditions[0].field, Field::Probe(_)), "{f:?}");
        let map: Map = [("flag_counts".into(), Dynamic::TRUE)]
            .into_iter()
            .collect();
        let f = Filter::parse(Handler::Close, &Dynamic::from_map(map)).unwrap();
        assert!(matches!(f.conditions[0].field, Field::Path { .. }), "{f:?}");
    }

    fn test_of(v: Dynamic) -> Test {
        Test::parse(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn text(s: &str) -> Dynamic {
        Dynamic::from(s.to_string())
    }

    #[test]
    fn set_means_something_is_there() {
        let set = test_of(Dynamic::TRUE);
        for v in [
            Dynamic::UNIT,
            Dynamic::FALSE,
            Dynamic::from_int(0),
            text(""),
        ] {
            assert!(!set.holds(&v), "{v:?}");
        }
        for v in [
            Dynamic::TRUE,
            Dynamic::from_int(3),
            Dynamic::from_float(0.5),
            text("x"),
        ] {
            assert!(set.holds(&v), "{v:?}");
        }
        assert!(!set.holds(&Dynamic::from_array(vec![])));
        assert!(test_of(Dynamic::FALSE).holds(&Dynamic::UNIT));
    }

    #[test]
    fn values_ranges_and_bounds_compare_as_written() {
        let refused = test_of(text("refused"));
        assert!(refused.holds(&text("refused")));
        assert!(!refused.holds(&text("complete")));
        let either = test_of(Dynamic::from_array(vec![text("open"), text("half_closed")]));
        assert!(either.holds(&text("half_closed")) && !either.holds(&text("fin")));
        let errors = test_of(Dynamic::from(400 as INT..600));
        assert!(errors.holds(&Dynamic::from_int(404)));
        assert!(!errors.holds(&Dynamic::from_int(600)) && !errors.holds(&Dynamic::UNIT));
        let inclusive = test_of(Dynamic::from(400 as INT..=599));
        assert!(inclusive.holds(&Dynamic::from_int(599)));
        let mut bounds = Map::new();
        bounds.insert("above".into(), Dynamic::from_float(1.0));
        bounds.insert("at_most".into(), Dynamic::from_int(5));
        let slow = test_of(Dynamic::from_map(bounds));
        assert!(slow.holds(&Dynamic::from_float(1.5)));
        assert!(!slow.holds(&Dynamic::from_float(1.0)) && !slow.holds(&Dynamic::from_int(6)));
        // An array field matches through its items.
        let names = Dynamic::from_array(vec![text("bare_lf"), text("obs_fold")]);
        assert!(test_of(text("obs_fold")).holds(&names));
        assert!(!test_of(text("incomplete")).holds(&names));
    }

    #[test]
    fn a_filter_that_cannot_be_read_says_why() {
        let mut m = Map::new();
        m.insert("handshak".into(), Dynamic::TRUE);
        let e = Filter::parse(Handler::Close, &Dynamic::from_map(m)).unwrap_err();
        assert!(e.contains("no field `handshak`"), "{e}");
        let mut m = Map::new();
        m.insert("flag_counts.retransmision".into(), Dynamic::TRUE);
        let e = Filter::parse(Handler::Close, &Dynamic::from_map(m)).unwrap_err();
        assert!(e.contains("no analysis flag `retransmision`"), "{e}");
        let e = Filter::parse(Handler::Close, &text("refused")).unwrap_err();
        assert!(e.contains("must be an object map"), "{e}");
        let mut m = Map::new();
        m.insert("status".into(), Dynamic::from_blob(vec![1]));
        let e = Filter::parse(Handler::HttpResponse, &Dynamic::from_map(m)).unwrap_err();
        assert!(e.contains("is not a condition"), "{e}");
    }
}
