//! Route resolution: which `route` label a request gets. In this order:
//! 1. excluded paths are not recorded at all;
//! 2. configured templates, first match in configuration order (path, and method if the
//!    rule names any);
//! 3. templates from the upstream's OpenAPI document, most specific first;
//! 4. Envoy's route name, when `use_route_name` is set and the route has one;
//! 5. learned templates ([`learn`]): ids collapse at once, other parameters are learned
//!    from the traffic, shared by every worker ([`shared`]);
//! 6. `__other__`, when the cap on labels is reached.
//!
//! 4 and 5 are dynamic labels and share the cap; template labels are bounded by the
//! configuration and the document.

pub mod config;
pub mod labels;
pub mod learn;
mod path;
pub mod shape;
pub mod shared;
mod template;
mod templates;

pub use crate::metrics::label_value::{finish_label, is_label_safe, push_sanitized};
pub use config::RawRoute;
pub use labels::{LabelId, LabelTable, OTHER, OTHER_LABEL};
pub use learn::Limits;
pub use shape::{is_id_like, PARAM};
pub use shared::SharedLearned;
pub use template::Template;
pub use templates::TemplateSet;

use crate::attribute::AttributeLabel;
use crate::host::{SharedStore, StreamHost};
use crate::method::{Method, MethodSet};
use crate::transfer::Transfer;

/// Route names longer than this are cut; they come from config, but not ours.
const MAX_ROUTE_NAME_LEN: usize = 128;
/// Labels one VM may hand out (templates, learned, names; far above what the sources allow).
const MAX_LABELS: usize = 50_000;

/// A configured route: template, optional methods, the transfers it carries, if any, and its
/// own attribute labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub template: Template,
    pub methods: Option<MethodSet>,
    pub transfer: Option<Transfer>,
    pub attributes: Vec<AttributeLabel>,
}

impl RouteRule {
    /// A plain rule for every method (OpenAPI templates).
    pub fn plain(template: Template) -> RouteRule {
        RouteRule { template, methods: None, transfer: None, attributes: Vec::new() }
    }
}

/// Index of a route rule (a template) in the order the configuration gives them: the rule a
/// request matched. Rules and their index tables are built once per configuration.
pub type RuleId = usize;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Excluded,
    Route { id: LabelId, rule: Option<RuleId> },
}

/// Per-VM resolver: the rules, the learned routes and the labels they feed.
#[derive(Debug)]
pub struct RouteResolver {
    /// Configured rules, then the OpenAPI templates.
    rules: Vec<RouteRule>,
    rule_routes: Vec<LabelId>,
    configured: usize,
    /// Distinct templates among the OpenAPI rules.
    openapi_templates: usize,
    templates: TemplateSet,
    exclusions: TemplateSet,
    use_route_name: bool,
    learned: SharedLearned,
    /// Label ids of learned terminals, by node id; valid for `node_generation`.
    node_routes: Vec<Option<LabelId>>,
    node_generation: u64,
    labels: LabelTable,
    /// Reused for every dynamic label, so resolving a known route does not allocate.
    scratch: String,
}

impl RouteResolver {
    /// `learned_key`: where the learned routes are shared ([`crate::shared::Keys`]).
    pub fn new(
        rules: Vec<RouteRule>,
        exclusions: Vec<Template>,
        use_route_name: bool,
        (limits, learned_key): (Limits, String),
    ) -> RouteResolver {
        let mut resolver = RouteResolver {
            configured: rules.len(),
            openapi_templates: 0,
            rules: Vec::new(),
            rule_routes: Vec::new(),
            templates: TemplateSet::default(),
            exclusions: TemplateSet::new(exclusions.iter()),
            use_route_name,
            learned: SharedLearned::new(limits, learned_key),
            node_routes: Vec::new(),
            node_generation: 0,
            labels: LabelTable::new(MAX_LABELS),
            scratch: String::with_capacity(128),
        };
        resolver.set_rules(rules);
        resolver
    }

    fn set_rules(&mut self, rules: Vec<RouteRule>) {
        self.rule_routes = rules.iter().map(|r| self.labels.intern(r.template.text())).collect();
        self.templates = TemplateSet::new(rules.iter().map(|r| &r.template));
        self.rules = rules;
    }

    /// Replaces the OpenAPI templates (after the configured rules, in the order given):
    /// `templates` distinct ones in these rules.
    pub fn set_openapi_templates(&mut self, openapi: Vec<RouteRule>, templates: usize) {
        let mut rules: Vec<RouteRule> = self.rules.drain(..self.configured).collect();
        rules.extend(openapi);
        self.set_rules(rules);
        self.openapi_templates = templates;
    }

    /// Templates in use from the OpenAPI document.
    pub fn openapi_templates(&self) -> usize {
        self.openapi_templates
    }

    pub fn resolve(&mut self, method: Method, path: &[u8], host: &(impl StreamHost + SharedStore)) -> Resolution {
        if self.exclusions.find(path, |_| true).is_some() {
            return Resolution::Excluded;
        }
        let rules = &self.rules;
        let allows = |r: RuleId| rules.get(r).is_some_and(|rule| rule.methods.is_none_or(|set| set.contains(method)));
        if let Some(rule) = self.templates.find(path, allows) {
            let id = self.rule_routes.get(rule).copied().unwrap_or(OTHER);
            return Resolution::Route { id, rule: Some(rule) };
        }
        if self.use_route_name {
            if let Some(name) = host.route_name().filter(|n| !n.is_empty()) {
                self.scratch.clear();
                push_sanitized(name.get(..MAX_ROUTE_NAME_LEN).unwrap_or(&name), &mut self.scratch);
                finish_label(&mut self.scratch);
                let name = std::mem::take(&mut self.scratch);
                let id = match self.learned.resolve_name(&name, host) {
                    Some(_) => self.labels.intern(&name),
                    None => OTHER,
                };
                self.scratch = name;
                return Resolution::Route { id, rule: None };
            }
        }
        let id = match self.learned.resolve_path(path, host) {
            Some(node) => self.node_route(node),
            None => OTHER,
        };
        Resolution::Route { id, rule: None }
    }

    /// The label id of a learned terminal (rendered once per node and state generation).
    fn node_route(&mut self, node: learn::NodeId) -> LabelId {
        if self.node_generation != self.learned.generation() {
            self.node_routes.clear();
            self.node_generation = self.learned.generation();
        }
        let i = node as usize;
        if let Some(Some(id)) = self.node_routes.get(i) {
            return *id;
        }
        self.learned.state().render(node, &mut self.scratch);
        let id = self.labels.intern(&self.scratch);
        if self.node_routes.len() <= i {
            self.node_routes.resize(i + 1, None);
        }
        if let Some(slot) = self.node_routes.get_mut(i) {
            *slot = Some(id);
        }
        id
    }

    /// Adopts what other workers learned (called on the periodic tick).
    pub fn refresh(&mut self, store: &impl SharedStore) {
        self.learned.refresh(store);
    }

    pub fn rule(&self, id: RuleId) -> Option<&RouteRule> {
        self.rules.get(id)
    }

    /// The label of a configured rule (its template).
    pub fn rule_label(&self, id: RuleId) -> LabelId {
        self.rule_routes.get(id).copied().unwrap_or(OTHER)
    }

    pub fn label(&self, id: LabelId) -> &str {
        self.labels.label(id)
    }

    /// Labels known to this VM (templates, `__other__`, learned and named ones).
    pub fn known_labels(&self) -> usize {
        self.labels.len()
    }

    /// The learned state (for diagnostics and tests).
    pub fn learned(&self) -> &SharedLearned {
        &self.learned
    }
}
