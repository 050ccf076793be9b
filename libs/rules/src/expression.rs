//! A compiled expression that remembers its source.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};

/// A compiled CEL expression. Compile once (at config load), evaluate many times; clones
/// share the compiled program.
#[derive(Clone)]
pub struct Expression {
    source: Arc<str>,
    program: Arc<cel::Program>,
}

impl Expression {
    pub(crate) fn new(source: &str, program: cel::Program) -> Self {
        Self {
            source: source.into(),
            program: Arc::new(program),
        }
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn ast(&self) -> &IdedExpr {
        self.program.expression()
    }

    /// The variables the expression reads, without the ones its own comprehensions bind
    /// (`c` in `list.exists(c, c.ok)`) or namespaces of functions (`optional`, `strings`).
    /// What a config loader checks against the variables it will bind, so that a typo in a
    /// variable name fails at load rather than on every evaluation.
    pub fn free_variables(&self) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        collect_free(self.ast(), &mut Vec::new(), &mut found);
        found
    }

    /// Which top-level fields of variable `var` the expression reads: every `var.f`,
    /// `has(var.f)` and `var.?f`. Any other use of `var` (passing it whole to a function,
    /// indexing it with a computed key, comparing it) needs all of it. Lets a caller bind
    /// only those fields of a large document ([`Scope::bind_json_fields`](crate::Scope)).
    pub fn field_use(&self, var: &str) -> FieldUse {
        let mut fields = FieldUse::Fields(BTreeSet::new());
        collect_field_use(self.ast(), var, &mut fields);
        fields
    }

    /// The string literals passed as the first argument of every call of `function`, or
    /// `None` if some call passes anything else (so the set cannot be known before
    /// evaluation).
    pub fn literal_arguments(&self, function: &str) -> Option<BTreeSet<String>> {
        let mut found = Some(BTreeSet::new());
        collect_literal_arguments(self.ast(), function, &mut found);
        found
    }

    /// The functions and methods the expression calls, operators excluded.
    pub fn functions(&self) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        collect_functions(self.ast(), &mut found);
        found
    }
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Expression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Which fields of a variable an expression reads; see [`Expression::field_use`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldUse {
    /// The variable is used whole.
    Whole,
    /// Only these top-level fields.
    Fields(BTreeSet<String>),
}

impl FieldUse {
    /// Both uses together.
    pub fn merge(&mut self, other: &FieldUse) {
        match (&mut *self, other) {
            (FieldUse::Whole, _) => {}
            (_, FieldUse::Whole) => *self = FieldUse::Whole,
            (FieldUse::Fields(mine), FieldUse::Fields(theirs)) => {
                mine.extend(theirs.iter().cloned())
            }
        }
    }

    /// Adds one field.
    pub fn insert(&mut self, field: &str) {
        if let FieldUse::Fields(fields) = self {
            fields.insert(field.to_owned());
        }
    }

    pub fn includes(&self, field: &str) -> bool {
        match self {
            FieldUse::Whole => true,
            FieldUse::Fields(fields) => fields.contains(field),
        }
    }
}

fn is_ident(expr: &IdedExpr, name: &str) -> bool {
    matches!(&expr.expr, Expr::Ident(n) if n == name)
}

fn collect_field_use(expr: &IdedExpr, var: &str, use_: &mut FieldUse) {
    if *use_ == FieldUse::Whole {
        return;
    }
    match &expr.expr {
        Expr::Ident(name) if name == var => *use_ = FieldUse::Whole,
        Expr::Select(select) if is_ident(&select.operand, var) => use_.insert(&select.field),
        // `var.?f` is the call `_?._(var, "f")`.
        Expr::Call(call)
            if call.func_name == "_?._"
                && call.args.len() == 2
                && is_ident(&call.args[0], var)
                && matches!(
                    &call.args[1].expr,
                    Expr::Literal(cel::common::ast::LiteralValue::String(_))
                ) =>
        {
            if let Expr::Literal(cel::common::ast::LiteralValue::String(field)) = &call.args[1].expr
            {
                use_.insert(field.inner());
            }
        }
        _ => for_each_child(expr, &mut |child| collect_field_use(child, var, use_)),
    }
}

fn collect_literal_arguments(
    expr: &IdedExpr,
    function: &str,
    found: &mut Option<BTreeSet<String>>,
) {
    if let Expr::Call(call) = &expr.expr
        && call.func_name == function
        && call.target.is_none()
    {
        match call.args.first().map(|a| &a.expr) {
            Some(Expr::Literal(cel::common::ast::LiteralValue::String(s))) => {
                if let Some(set) = found {
                    set.insert(s.inner().to_owned());
                }
            }
            _ => *found = None,
        }
    }
    for_each_child(expr, &mut |child| {
        collect_literal_arguments(child, function, found)
    });
}

/// Calls `f` on every direct sub-expression.
fn for_each_child(expr: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    match &expr.expr {
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                f(target);
            }
            call.args.iter().for_each(&mut *f);
        }
        Expr::Select(select) => f(&select.operand),
        Expr::List(list) => list.elements.iter().for_each(&mut *f),
        Expr::Map(map) => map.entries.iter().for_each(|e| match &e.expr {
            EntryExpr::MapEntry(m) => {
                f(&m.key);
                f(&m.value);
            }
            EntryExpr::StructField(s) => f(&s.value),
        }),
        Expr::Struct(s) => s.entries.iter().for_each(|e| match &e.expr {
            EntryExpr::MapEntry(m) => {
                f(&m.key);
                f(&m.value);
            }
            EntryExpr::StructField(s) => f(&s.value),
        }),
        Expr::Comprehension(c) => {
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                f(part);
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Namespaces of the functions of the standard library and its extensions.
pub(crate) const FUNCTION_NAMESPACES: &[&str] = &["optional", "strings", "lists", "math", "base64"];

/// Identifiers that name types or function namespaces rather than variables.
const NOT_VARIABLES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "uint",
    "string",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "optional",
    "strings",
    "lists",
    "math",
    "base64",
    "google",
];

fn collect_free(expr: &IdedExpr, bound: &mut Vec<String>, found: &mut BTreeSet<String>) {
    match &expr.expr {
        Expr::Ident(name) => {
            if !bound.iter().any(|b| b == name) && !NOT_VARIABLES.contains(&name.as_str()) {
                found.insert(name.clone());
            }
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                collect_free(target, bound, found);
            }
            for arg in &call.args {
                collect_free(arg, bound, found);
            }
        }
        Expr::Select(select) => collect_free(&select.operand, bound, found),
        Expr::List(list) => {
            for element in &list.elements {
                collect_free(element, bound, found);
            }
        }
        Expr::Map(map) => collect_entries(&map.entries, bound, found),
        Expr::Struct(s) => collect_entries(&s.entries, bound, found),
        Expr::Comprehension(c) => {
            collect_free(&c.iter_range, bound, found);
            collect_free(&c.accu_init, bound, found);
            let depth = bound.len();
            bound.push(c.accu_var.clone());
            bound.push(c.iter_var.clone());
            if let Some(second) = &c.iter_var2 {
                bound.push(second.clone());
            }
            collect_free(&c.loop_cond, bound, found);
            collect_free(&c.loop_step, bound, found);
            collect_free(&c.result, bound, found);
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn collect_entries(
    entries: &[cel::common::ast::IdedEntryExpr],
    bound: &mut Vec<String>,
    found: &mut BTreeSet<String>,
) {
    for entry in entries {
        match &entry.expr {
            EntryExpr::MapEntry(e) => {
                collect_free(&e.key, bound, found);
                collect_free(&e.value, bound, found);
            }
            EntryExpr::StructField(f) => collect_free(&f.value, bound, found),
        }
    }
}

fn collect_functions(expr: &IdedExpr, found: &mut BTreeSet<String>) {
    match &expr.expr {
        Expr::Call(call) => {
            // Operators are spelled `_+_`, `!_`, `@in`, ...; functions are identifiers.
            let is_function = call
                .func_name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
            match call.target.as_deref() {
                // `optional.of(x)` calls the function `optional.of`.
                Some(IdedExpr {
                    expr: Expr::Ident(namespace),
                    ..
                }) if FUNCTION_NAMESPACES.contains(&namespace.as_str()) => {
                    found.insert(format!("{namespace}.{}", call.func_name));
                }
                target => {
                    if is_function {
                        found.insert(call.func_name.clone());
                    }
                    if let Some(target) = target {
                        collect_functions(target, found);
                    }
                }
            }
            for arg in &call.args {
                collect_functions(arg, found);
            }
        }
        Expr::Select(select) => collect_functions(&select.operand, found),
        Expr::List(list) => list
            .elements
            .iter()
            .for_each(|e| collect_functions(e, found)),
        Expr::Map(map) => map.entries.iter().for_each(|e| match &e.expr {
            EntryExpr::MapEntry(e) => {
                collect_functions(&e.key, found);
                collect_functions(&e.value, found);
            }
            EntryExpr::StructField(f) => collect_functions(&f.value, found),
        }),
        Expr::Struct(s) => s.entries.iter().for_each(|e| {
            if let EntryExpr::StructField(f) = &e.expr {
                collect_functions(&f.value, found);
            }
        }),
        Expr::Comprehension(c) => {
            for part in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                collect_functions(part, found);
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}
