//! Route resolution: which `route` label a request gets, in this order:
//! 1. excluded paths are not recorded at all;
//! 2. the first configured template that matches (path, and method if the rule names any);
//! 3. Envoy's route name, when `use_route_name` is set and the route has one;
//! 4. the path heuristic ([`normalize`]).
//!
//! 3 and 4 are dynamic labels, admitted under the global cap by [`table::RouteTable`].

mod normalize;
mod path;
mod sanitize;
mod table;
mod template;

pub use normalize::{is_id_like, normalize_path, DEEPER, ID_PLACEHOLDER};
pub use sanitize::{finish_label, is_label_safe, push_sanitized};
pub use table::{RouteId, RouteTable, OTHER_LABEL, SHARED_KEY};
pub use template::Template;

use crate::host::{Property, SharedStore, StreamHost};
use crate::method::{Method, MethodSet};
use crate::outcome::{OutcomePolicy, RouteKind};

/// Route names longer than this are cut; they come from config, but not ours.
const MAX_ROUTE_NAME_LEN: usize = 128;

/// A configured route: template, optional methods, and what kind of route it is.
#[derive(Debug, Clone)]
pub struct RouteRule {
    pub template: Template,
    pub methods: Option<MethodSet>,
    pub kind: RouteKind,
    pub outcomes: OutcomePolicy,
}

impl RouteRule {
    fn matches(&self, method: Method, path: &[u8]) -> bool {
        self.methods.is_none_or(|set| set.contains(method)) && self.template.matches(path)
    }
}

/// Index of the rule a request matched.
pub type RuleId = usize;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Excluded,
    Route { id: RouteId, rule: Option<RuleId> },
}

/// Per-VM resolver: the rules plus the label table they feed.
#[derive(Debug)]
pub struct RouteResolver {
    rules: Vec<RouteRule>,
    rule_routes: Vec<RouteId>,
    exclusions: Vec<Template>,
    use_route_name: bool,
    max_depth: usize,
    table: RouteTable,
    /// Reused for every dynamic label, so resolving a known route does not allocate.
    scratch: String,
}

impl RouteResolver {
    pub fn new(
        rules: Vec<RouteRule>,
        exclusions: Vec<Template>,
        use_route_name: bool,
        max_routes: usize,
        max_depth: usize,
    ) -> RouteResolver {
        let table = RouteTable::new(rules.iter().map(|r| r.template.text()), max_routes);
        let rule_routes = rules.iter().map(|r| table.get(r.template.text()).unwrap_or(0)).collect();
        RouteResolver {
            rules,
            rule_routes,
            exclusions,
            use_route_name,
            max_depth,
            table,
            scratch: String::with_capacity(128),
        }
    }

    pub fn resolve(&mut self, method: Method, path: &[u8], host: &(impl StreamHost + SharedStore)) -> Resolution {
        if self.exclusions.iter().any(|t| t.matches(path)) {
            return Resolution::Excluded;
        }
        if let Some(rule) = self.rules.iter().position(|r| r.matches(method, path)) {
            let id = self.rule_routes.get(rule).copied().unwrap_or(0);
            return Resolution::Route { id, rule: Some(rule) };
        }
        self.scratch.clear();
        if self.use_route_name {
            if let Some(name) = host.property(Property::RouteName).filter(|n| !n.is_empty()) {
                push_sanitized(&name[..name.len().min(MAX_ROUTE_NAME_LEN)], &mut self.scratch);
            }
        }
        if self.scratch.is_empty() {
            normalize_path(path, self.max_depth, &mut self.scratch);
        }
        finish_label(&mut self.scratch);
        let id = self.table.admit(&self.scratch, host);
        Resolution::Route { id, rule: None }
    }

    pub fn rule(&self, id: RuleId) -> Option<&RouteRule> {
        self.rules.get(id)
    }

    pub fn label(&self, id: RouteId) -> &str {
        self.table.label(id)
    }

    /// Labels known to this VM (templates, `__other__`, admitted dynamic labels).
    pub fn known_labels(&self) -> usize {
        self.table.len()
    }
}
